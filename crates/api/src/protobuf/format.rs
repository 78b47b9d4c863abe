//! Go's JSON renderings of time, duration and float values, reproduced exactly.

use serde_json::{Number, Value};

/// `time.Time{}.Unix()`: the seconds Go writes for a zero time.
pub(super) const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Formats seconds since the epoch as Go's `time.RFC3339` in UTC (`2006-01-02T15:04:05Z`),
/// with `micros` fractional microseconds when given (`metav1.MicroTime`'s
/// `2006-01-02T15:04:05.000000Z`). `None` when the year is outside Go's JSON range
/// `[0, 9999]`.
pub(super) fn rfc3339(seconds: i64, micros: Option<u32>) -> Option<String> {
    let ts = jiff::Timestamp::from_second(seconds).ok()?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    if !(0..=9999).contains(&dt.year()) {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if let Some(micros) = micros {
        out.push_str(&format!(".{micros:06}"));
    }
    out.push('Z');
    Some(out)
}

/// Go's `time.Duration.String()`: `1h0m0s`, `30s`, `1.5s`, `250ms`, `0s`.
pub(super) fn go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u == 0 {
        return "0s".to_owned();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (int, frac) = split_fraction(u, prec);
        return format!("{sign}{int}{frac}{unit}");
    }
    let (secs, frac) = split_fraction(u, 9);
    let mut out = format!("{}{frac}s", secs % 60);
    let mins = secs / 60;
    if mins > 0 {
        out = format!("{}m{out}", mins % 60);
        let hours = mins / 60;
        if hours > 0 {
            out = format!("{hours}h{out}");
        }
    }
    format!("{sign}{out}")
}

/// Splits `v` into its integer part and `.ddd` fraction of `prec` digits, trailing zeros
/// (and an all-zero fraction) dropped, as Go's `fmtFrac` does.
fn split_fraction(v: u64, prec: u32) -> (u64, String) {
    let pow = 10u64.pow(prec);
    let frac = v % pow;
    if frac == 0 {
        return (v / pow, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / pow, format!(".{}", digits.trim_end_matches('0')))
}

/// A float as Go's encoding/json writes it: integral values without a fraction (`1`, not
/// `1.0`). `None` for NaN and infinities, which Go refuses to encode.
pub(super) fn go_float(v: f64) -> Option<Value> {
    if !v.is_finite() {
        return None;
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        // exact: every integer below 2^53 is representable
        #[allow(clippy::cast_possible_truncation)] // integral and in range, checked above
        return Some(Value::Number(Number::from(v as i64)));
    }
    Number::from_f64(v).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (250_000_000, "250ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-5_000_000_000, "-5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want, "{nanos}ns");
        }
    }

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(rfc3339(0, None).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(1_700_000_000, None).as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            rfc3339(1_700_000_000, Some(42)).as_deref(),
            Some("2023-11-14T22:13:20.000042Z")
        );
        assert_eq!(rfc3339(GO_ZERO_TIME_SECONDS, None).as_deref(), Some("0001-01-01T00:00:00Z"));
        assert_eq!(rfc3339(i64::MAX, None), None);
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.0), Some(Value::from(1)));
        assert_eq!(go_float(0.5).map(|v| v.to_string()).as_deref(), Some("0.5"));
        assert_eq!(go_float(f64::NAN), None);
    }
}
