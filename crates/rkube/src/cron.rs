//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), as k3s's
//! `--etcd-snapshot-schedule-cron` takes them, evaluated in UTC.
//!
//! Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of
//! those. As in cron, when both day fields are restricted a day matching either fires.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A parsed expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, min: u32, max: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in {part:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {part:?}"));
        }
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a.parse().map_err(|_| format!("bad number in {part:?}"))?;
            let b = b.parse().map_err(|_| format!("bad number in {part:?}"))?;
            (a, b)
        } else {
            let v = range.parse().map_err(|_| format!("bad number in {part:?}"))?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            set |= 1 << v;
        }
    }
    Ok(set)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("{expr:?}: expected 5 fields (minute hour day month weekday)"));
        };
        let mut weekdays = field(weekday, 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Cron {
            minutes: field(minute, 0, 59)?,
            hours: field(hour, 0, 23)?,
            days: field(day, 1, 31)?,
            months: field(month, 1, 12)?,
            weekdays,
            days_restricted: day != "*",
            weekdays_restricted: weekday != "*",
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first time strictly after `after` the expression fires (UTC), within 5 years.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(TimeZone::UTC).datetime();
        let mut date = start.date();
        for _ in 0..(366 * 5) {
            if self.day_matches(date) {
                for hour in 0..24i8 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    for minute in 0..60i8 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        let at = DateTime::from_parts(date, jiff::civil::time(hour, minute, 0, 0));
                        if at > start {
                            return at.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(expr: &str, after: &str) -> String {
        let after: Timestamp = after.parse().unwrap();
        Cron::parse(expr).unwrap().next_after(after).unwrap().to_string()
    }

    #[test]
    fn next_fire_times() {
        let cases = [
            ("0 */12 * * *", "2026-03-01T05:30:00Z", "2026-03-01T12:00:00Z"),
            ("0 */12 * * *", "2026-03-01T12:00:00Z", "2026-03-02T00:00:00Z"),
            ("* * * * *", "2026-03-01T05:30:10Z", "2026-03-01T05:31:00Z"),
            ("*/15 9-17 * * 1-5", "2026-03-06T17:50:00Z", "2026-03-09T09:00:00Z"),
            ("30 2 29 2 *", "2026-01-01T00:00:00Z", "2028-02-29T02:30:00Z"),
            ("0 0 1 * 0", "2026-03-02T00:00:00Z", "2026-03-08T00:00:00Z"),
            ("0 0 * * 7", "2026-03-02T00:00:00Z", "2026-03-08T00:00:00Z"),
            ("5,10 0 * * *", "2026-03-02T00:05:00Z", "2026-03-02T00:10:00Z"),
        ];
        for (expr, after, want) in cases {
            assert_eq!(next(expr, after), want, "{expr} after {after}");
        }
    }

    #[test]
    fn bad_expressions_are_refused() {
        for bad in ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"] {
            assert!(Cron::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
