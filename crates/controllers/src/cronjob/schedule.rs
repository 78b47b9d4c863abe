//! CronJob schedules as upstream parses them (`robfig/cron`'s `ParseStandard`): five fields
//! `minute hour day-of-month month day-of-week`, each `*`, `?`, a value, a range `a-b`, a
//! step `*/n`, `a/n`, `a-b/n`, or a comma list; month and weekday names (`JAN`, `mon`); the
//! descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//! `@hourly`; and a `TZ=Zone`/`CRON_TZ=Zone` prefix. As in robfig/cron, when either day field
//! starts with `*` or `?` both day fields must match, otherwise either one may.
//!
//! Times are evaluated in the schedule's time zone (UTC by default) minute by minute on the
//! civil clock; a minute that does not exist (a DST gap) resolves forward, as Go's time does.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Either day field started with `*` or `?`: both must match.
    days_and: bool,
    tz: TimeZone,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
/// How far `next` and `prev` search (upstream gives up after five years too).
const SEARCH_YEARS: i16 = 5;

fn value(text: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + offset);
    }
    text.parse().map_err(|_| format!("failed to parse int from {text}"))
}

/// One field as a bit set, and whether it starts with `*`/`?`.
fn field(text: &str, min: u32, max: u32, names: &[&str], offset: u32) -> Result<(u64, bool), String> {
    let mut set = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s.parse::<u32>().map_err(|_| format!("failed to parse int from {s}"))?)),
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            star = true;
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?)
        } else {
            let v = value(range, names, offset)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo < min {
            return Err(format!("beginning of range ({lo}) below minimum ({min}): {part}"));
        }
        if hi > max {
            return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
        }
        if lo > hi {
            return Err(format!("beginning of range ({lo}) beyond end of range ({hi}): {part}"));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            set |= 1 << v;
        }
    }
    Ok((set, star))
}

impl Schedule {
    /// Parses `spec`; `time_zone` (the CronJob's `spec.timeZone`) wins over a `TZ=` prefix.
    pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let mut spec = spec.trim();
        let mut zone = None;
        if let Some(rest) = spec.strip_prefix("TZ=").or_else(|| spec.strip_prefix("CRON_TZ=")) {
            let (z, r) = rest.split_once(char::is_whitespace).ok_or("missing fields after the time zone")?;
            zone = Some(z);
            spec = r.trim();
        }
        let zone = time_zone.or(zone);
        let tz = match zone {
            None | Some("UTC") | Some("Etc/UTC") => TimeZone::UTC,
            Some(z) => TimeZone::get(z).map_err(|e| format!("provided bad location {z}: {e}"))?,
        };
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(format!("expected exactly 5 fields, found {}: {expanded}", fields.len()));
        };
        let (days, dom_star) = field(dom, 1, 31, &[], 0)?;
        let (weekdays, dow_star) = field(dow, 0, 6, &WEEKDAYS, 0)?;
        Ok(Schedule {
            minutes: field(minute, 0, 59, &[], 0)?.0,
            hours: field(hour, 0, 23, &[], 0)?.0,
            days,
            months: field(month, 1, 12, &MONTHS, 1)?.0,
            weekdays,
            days_and: dom_star || dow_star,
            tz,
        })
    }

    fn day_matches(&self, dt: DateTime) -> bool {
        let dom = self.days & (1 << dt.day()) != 0;
        let dow = self.weekdays & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
        if self.days_and { dom && dow } else { dom || dow }
    }

    fn to_timestamp(&self, dt: DateTime) -> Option<Timestamp> {
        self.tz.to_ambiguous_timestamp(dt).compatible().ok()
    }

    /// The first scheduled time strictly after `after`.
    pub fn next(&self, after: Timestamp) -> Option<Timestamp> {
        let civil = self.tz.to_datetime(after);
        let mut dt = civil.with().second(0).subsec_nanosecond(0).build().ok()?.checked_add(1.minute()).ok()?;
        let limit = civil.year().saturating_add(SEARCH_YEARS);
        while dt.year() <= limit {
            if self.months & (1 << dt.month()) == 0 {
                dt = dt.first_of_month().start_of_day().checked_add(1.month()).ok()?;
            } else if !self.day_matches(dt) {
                dt = dt.start_of_day().checked_add(1.day()).ok()?;
            } else if self.hours & (1 << dt.hour()) == 0 {
                dt = dt.with().minute(0).build().ok()?.checked_add(1.hour()).ok()?;
            } else if self.minutes & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
            } else {
                match self.to_timestamp(dt) {
                    Some(t) if t > after => return Some(t),
                    _ => dt = dt.checked_add(1.minute()).ok()?,
                }
            }
        }
        None
    }

    /// The last scheduled time at or before `at`.
    pub fn prev(&self, at: Timestamp) -> Option<Timestamp> {
        let civil = self.tz.to_datetime(at);
        let mut dt = civil.with().second(0).subsec_nanosecond(0).build().ok()?;
        let limit = civil.year().saturating_sub(SEARCH_YEARS);
        let last_minute = |d: DateTime| d.with().hour(23).minute(59).build();
        while dt.year() >= limit {
            if self.months & (1 << dt.month()) == 0 {
                dt = last_minute(dt.first_of_month().checked_sub(1.day()).ok()?).ok()?;
            } else if !self.day_matches(dt) {
                dt = last_minute(dt.checked_sub(1.day()).ok()?).ok()?;
            } else if self.hours & (1 << dt.hour()) == 0 {
                dt = dt.with().minute(59).build().ok()?.checked_sub(1.hour()).ok()?;
            } else if self.minutes & (1 << dt.minute()) == 0 {
                dt = dt.checked_sub(1.minute()).ok()?;
            } else {
                match self.to_timestamp(dt) {
                    Some(t) if t <= at => return Some(t),
                    _ => dt = dt.checked_sub(1.minute()).ok()?,
                }
            }
        }
        None
    }

    /// The time zone the schedule is evaluated in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec, None).unwrap().next(ts(after)).unwrap().to_string()
    }

    #[test]
    fn next_times_follow_the_five_fields() {
        assert_eq!(next("* * * * *", "2024-01-01T00:00:30Z"), "2024-01-01T00:01:00Z");
        assert_eq!(next("* * * * *", "2024-01-01T00:01:00Z"), "2024-01-01T00:02:00Z", "strictly after");
        assert_eq!(next("*/15 * * * *", "2024-01-01T00:16:00Z"), "2024-01-01T00:30:00Z");
        assert_eq!(next("5 4 * * *", "2024-01-01T04:05:00Z"), "2024-01-02T04:05:00Z");
        assert_eq!(next("0 0 29 2 *", "2024-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
        assert_eq!(next("30 9 * * MON-FRI", "2024-01-05T10:00:00Z"), "2024-01-08T09:30:00Z", "Friday after 9:30 -> Monday");
        assert_eq!(next("0 12 1 JAN,jul *", "2024-02-01T00:00:00Z"), "2024-07-01T12:00:00Z");
        assert_eq!(next("@hourly", "2024-01-01T10:59:59Z"), "2024-01-01T11:00:00Z");
        assert_eq!(next("@weekly", "2024-01-01T00:00:00Z"), "2024-01-07T00:00:00Z");
        assert_eq!(next("@yearly", "2024-01-01T00:00:00Z"), "2025-01-01T00:00:00Z");
        assert_eq!(next("10-20/5 * * * *", "2024-01-01T00:16:00Z"), "2024-01-01T00:20:00Z");
        assert_eq!(next("5/20 * * * *", "2024-01-01T00:06:00Z"), "2024-01-01T00:25:00Z");
    }

    #[test]
    fn restricted_day_fields_match_either_day() {
        // The 13th or any Friday.
        assert_eq!(next("0 0 13 * 5", "2024-09-01T00:00:00Z"), "2024-09-06T00:00:00Z");
        assert_eq!(next("0 0 13 * 5", "2024-09-10T00:00:00Z"), "2024-09-13T00:00:00Z");
        // A star day field makes both match: every Friday.
        assert_eq!(next("0 0 * * 5", "2024-09-10T00:00:00Z"), "2024-09-13T00:00:00Z");
        assert_eq!(next("0 0 */2 * 5", "2024-09-10T00:00:00Z"), "2024-09-13T00:00:00Z");
    }

    #[test]
    fn time_zones_come_from_the_spec_or_a_tz_prefix() {
        let s = Schedule::parse("0 9 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(s.next(ts("2024-01-01T00:00:00Z")).unwrap().to_string(), "2024-01-01T08:00:00Z");
        assert_eq!(s.next(ts("2024-07-01T00:00:00Z")).unwrap().to_string(), "2024-07-01T07:00:00Z");
        let p = Schedule::parse("TZ=America/New_York 0 9 * * *", None).unwrap();
        assert_eq!(p.next(ts("2024-01-01T00:00:00Z")).unwrap().to_string(), "2024-01-01T14:00:00Z");
        assert!(Schedule::parse("0 9 * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn previous_times_are_at_or_before() {
        let s = Schedule::parse("*/10 * * * *", None).unwrap();
        assert_eq!(s.prev(ts("2024-01-01T00:25:00Z")).unwrap().to_string(), "2024-01-01T00:20:00Z");
        assert_eq!(s.prev(ts("2024-01-01T00:20:00Z")).unwrap().to_string(), "2024-01-01T00:20:00Z");
        let d = Schedule::parse("0 3 1 * *", None).unwrap();
        assert_eq!(d.prev(ts("2024-03-01T02:00:00Z")).unwrap().to_string(), "2024-02-01T03:00:00Z");
        assert!(Schedule::parse("0 0 31 2 *", None).unwrap().next(ts("2024-01-01T00:00:00Z")).is_none(), "never");
    }

    #[test]
    fn bad_schedules_are_rejected() {
        for bad in ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7", "*/0 * * * *", "@every 5m", "5-1 * * * *", "x * * * *"] {
            assert!(Schedule::parse(bad, None).is_err(), "{bad}");
        }
    }
}
