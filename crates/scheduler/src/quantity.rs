//! Resource quantities as the scheduler counts them: integers in units (`scale` 1) or
//! milli-units (`scale` 1000), rounded up as upstream's `Value`/`MilliValue`. The parser is
//! rkube_api's, the one the API server validates with.

use rkube_api::quantity::Quantity;

/// `s` in units of 1/`scale` (1 or 1000), or None when it does not parse or overflows i64.
pub fn parse(s: &str, scale: i128) -> Option<i64> {
    let q = Quantity::parse(s.trim()).ok()?;
    let v = match scale {
        1 => q.value(),
        1000 => q.milli_value(),
        _ => return None,
    };
    i64::try_from(v).ok()
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
