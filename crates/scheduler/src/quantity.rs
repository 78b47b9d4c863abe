//! A small parser for Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`), enough for
//! the scheduler: values are returned rounded up, as upstream's `Quantity.Value()` and
//! `MilliValue()` do.

/// Parses a quantity and returns `value * scale` rounded up (scale 1000 gives milli-units).
/// `None` for malformed input or values that overflow.
pub fn parse_scaled(s: &str, scale: i128) -> Option<i64> {
    let s = s.trim();
    let (number, suffix) = split_suffix(s)?;
    let (mut mantissa, mut exp10) = parse_decimal(number)?;
    let mut bin_shift = 0u32;
    match suffix {
        "" => {}
        "Ki" => bin_shift = 10,
        "Mi" => bin_shift = 20,
        "Gi" => bin_shift = 30,
        "Ti" => bin_shift = 40,
        "Pi" => bin_shift = 50,
        "Ei" => bin_shift = 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        e if e.starts_with(['e', 'E']) => exp10 += e[1..].parse::<i32>().ok()?,
        _ => return None,
    }
    mantissa = mantissa.checked_mul(scale)?.checked_mul(1i128.checked_shl(bin_shift)?)?;
    let mut value = mantissa;
    if exp10 >= 0 {
        for _ in 0..exp10 {
            value = value.checked_mul(10)?;
        }
    } else {
        let div = 10i128.checked_pow(exp10.unsigned_abs())?;
        // Round away from zero, as resource.Quantity's Value/MilliValue round up.
        value = if value >= 0 { (value + div - 1) / div } else { (value - div + 1) / div };
    }
    i64::try_from(value).ok()
}

/// `Quantity.Value()`: the value in base units, rounded up.
pub fn value(s: &str) -> Option<i64> {
    parse_scaled(s, 1)
}

/// `Quantity.MilliValue()`: the value in thousandths, rounded up.
pub fn milli_value(s: &str) -> Option<i64> {
    parse_scaled(s, 1000)
}

fn split_suffix(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))?;
    Some((&s[..end], &s[end..]))
}

// `split_suffix` returns None for plain numbers, so handle that case first.
fn parse_decimal(s: &str) -> Option<(i128, i32)> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) || int.len() + frac.len() > 30 {
        return None;
    }
    let mut m: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        m = m * 10 + i128::from(b - b'0');
    }
    Some((if neg { -m } else { m }, -(frac.len() as i32)))
}

/// Like [`parse_scaled`] but accepting plain numbers without a suffix.
pub fn parse(s: &str, scale: i128) -> Option<i64> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+') {
        let (m, e) = parse_decimal(t)?;
        let v = m.checked_mul(scale)?;
        let v = if e >= 0 {
            v
        } else {
            let div = 10i128.checked_pow(e.unsigned_abs())?;
            if v >= 0 { (v + div - 1) / div } else { (v - div + 1) / div }
        };
        return i64::try_from(v).ok();
    }
    parse_scaled(t, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_quantities_parse_like_upstream() {
        assert_eq!(parse("100m", 1000), Some(100));
        assert_eq!(parse("1", 1000), Some(1000));
        assert_eq!(parse("1.5", 1000), Some(1500));
        assert_eq!(parse("0.1", 1000), Some(100));
        assert_eq!(parse("2500u", 1000), Some(3)); // rounds up
        assert_eq!(parse("1Gi", 1), Some(1 << 30));
        assert_eq!(parse("1.5Gi", 1), Some(3 << 29));
        assert_eq!(parse("128974848", 1), Some(128974848));
        assert_eq!(parse("129e6", 1), Some(129_000_000));
        assert_eq!(parse("129M", 1), Some(129_000_000));
        assert_eq!(parse("123Mi", 1), Some(123 << 20));
        assert_eq!(parse("110", 1), Some(110));
        assert_eq!(parse("1k", 1), Some(1000));
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        for bad in ["", "abc", "1.2.3", "10Xi", "m", "1e", "99999999999999999999999999999Ei"] {
            assert_eq!(parse(bad, 1000), None, "{bad}");
        }
    }
}
