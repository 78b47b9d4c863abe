//! Resource quantities as apimachinery's `resource.Quantity`: parsing (`ParseQuantity`),
//! comparison and the canonical string form (`Quantity.String()`).
//!
//! A quantity is `<sign><digits>[.<digits>]<suffix>` where the suffix is a binary SI suffix
//! (`Ki` .. `Ei`), a decimal SI suffix (`n u m "" k M G T P E`) or a decimal exponent
//! (`e3`, `E-2`). Values are kept exactly as a count of nano-units (10^-9) in an `i128`;
//! like upstream, anything finer than a nano-unit is rounded up. Values beyond what fits
//! (about 10^29) are refused, where upstream would switch to arbitrary precision.

use std::cmp::Ordering;
use std::fmt;

/// How the quantity was written, which decides how it prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, ...
    BinarySI,
    /// `m`, `k`, `M`, ... or no suffix.
    DecimalSI,
    /// `e3`, `E-2`.
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    /// The value in units of 10^-9.
    nanos: i128,
    pub format: Format,
}

/// upstream's parse error message.
pub const QUANTITY_REGEX_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{QUANTITY_REGEX_ERROR}")]
    Format,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("quantity is too large")]
    TooLarge,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// `resource.ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity, ParseError> {
        if s.is_empty() {
            return Err(ParseError::Format);
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let negative = match bytes[0] {
            b'-' => {
                pos = 1;
                true
            }
            b'+' => {
                pos = 1;
                false
            }
            _ => false,
        };
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[int_start..pos];
        let mut frac_part = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_part = &s[frac_start..pos];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(ParseError::Format);
        }
        let suffix = &s[pos..];
        let (base, exponent, format) = parse_suffix(suffix)?;
        // value = 0.<digits> scaled: digits * 10^-len(frac) * base^exponent
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(ParseError::TooLarge);
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| ParseError::Format)?
        };
        let frac_len = frac_part.len() as i32;
        let nanos = match base {
            2 => {
                let scaled = mantissa
                    .checked_mul(1i128 << exponent)
                    .ok_or(ParseError::TooLarge)?;
                scale10(scaled, 9 - frac_len)?
            }
            _ => scale10(mantissa, exponent + 9 - frac_len)?,
        };
        if nanos > 10i128.pow(36) {
            return Err(ParseError::TooLarge);
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The sum, in `self`'s format unless `self` is zero (as upstream's `Quantity.Add`);
    /// `None` on overflow.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let format = if self.nanos == 0 { other.format } else { self.format };
        Some(Quantity { nanos: self.nanos.checked_add(other.nanos)?, format })
    }

    /// The value in milli-units, rounded up (`MilliValue`).
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// The value in units, rounded up (`Value`).
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, NANO)
    }
}

/// Multiplies by 10^exp, rounding up (away from zero for positive values) when exp < 0.
fn scale10(v: i128, exp: i32) -> Result<i128, ParseError> {
    if exp >= 0 {
        let f = 10i128.checked_pow(exp as u32).ok_or(ParseError::TooLarge)?;
        v.checked_mul(f).ok_or(ParseError::TooLarge)
    } else {
        let f = 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX);
        Ok(div_ceil(v, f))
    }
}

fn div_ceil(v: i128, d: i128) -> i128 {
    let q = v / d;
    if v % d > 0 {
        q + 1
    } else {
        q
    }
}

/// `(base, exponent, format)` of a suffix.
fn parse_suffix(suffix: &str) -> Result<(u32, i32, Format), ParseError> {
    let dec = |e| Ok((10, e, Format::DecimalSI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => Ok((2, 10, Format::BinarySI)),
        "Mi" => Ok((2, 20, Format::BinarySI)),
        "Gi" => Ok((2, 30, Format::BinarySI)),
        "Ti" => Ok((2, 40, Format::BinarySI)),
        "Pi" => Ok((2, 50, Format::BinarySI)),
        "Ei" => Ok((2, 60, Format::BinarySI)),
        s if s.starts_with(['e', 'E']) && s.len() > 1 => {
            let exp: i32 = s[1..].parse().map_err(|_| ParseError::Suffix)?;
            if !(-1000..=1000).contains(&exp) {
                return Err(ParseError::TooLarge);
            }
            Ok((10, exp, Format::DecimalExponent))
        }
        s if s.bytes().all(|c| b"eEinumkKMGTP+-0123456789".contains(&c)) => Err(ParseError::Suffix),
        _ => Err(ParseError::Format),
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.nanos.cmp(&other.nanos))
    }
}

impl fmt::Display for Quantity {
    /// The canonical form (`CanonicalizeBytes`): decimal quantities print with the largest
    /// SI suffix (or exponent) that keeps an integer mantissa, binary ones with the largest
    /// power-of-1024 suffix that divides them exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            let exact_int = self.nanos % NANO == 0;
            if self.nanos.abs() < 1024 * NANO || !exact_int {
                format = Format::DecimalSI;
            }
        }
        if format == Format::BinarySI {
            let mut n = self.nanos / NANO;
            let mut exp = 0;
            while n % 1024 == 0 && exp < 60 {
                n /= 1024;
                exp += 10;
            }
            let suffix = match exp {
                0 => "",
                10 => "Ki",
                20 => "Mi",
                30 => "Gi",
                40 => "Ti",
                50 => "Pi",
                _ => "Ei",
            };
            return write!(f, "{n}{suffix}");
        }
        // decimal: strip factors of ten, then align the exponent to a multiple of 3
        let mut n = self.nanos;
        let mut exp: i32 = -9;
        while n % 10 == 0 {
            n /= 10;
            exp += 1;
        }
        match exp.rem_euclid(3) {
            1 => {
                n *= 10;
                exp -= 1;
            }
            2 => {
                n *= 100;
                exp -= 2;
            }
            _ => {}
        }
        let suffix = if format == Format::DecimalExponent {
            if exp == 0 {
                String::new()
            } else {
                format!("e{exp}")
            }
        } else {
            match exp {
                -9 => "n".to_owned(),
                -6 => "u".to_owned(),
                -3 => "m".to_owned(),
                0 => String::new(),
                3 => "k".to_owned(),
                6 => "M".to_owned(),
                9 => "G".to_owned(),
                12 => "T".to_owned(),
                15 => "P".to_owned(),
                18 => "E".to_owned(),
                e => format!("e{e}"),
            }
        };
        write!(f, "{n}{suffix}")
    }
}

impl std::str::FromStr for Quantity {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Quantity::parse(s).unwrap().to_string()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        for (input, want) in [
            ("2", "2"),
            ("1", "1"),
            ("0", "0"),
            ("500m", "500m"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("100M", "100M"),
            ("0.1", "100m"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("-1", "-1"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("123Mi", "123Mi"),
            ("1.5Gi", "1536Mi"),
            ("100Ki", "100Ki"),
        ] {
            assert_eq!(canon(input), want, "{input}");
        }
    }

    #[test]
    fn malformed_quantities_are_refused() {
        for bad in ["", "abc", "1x", "1.2.3", "--1", "1Zi", "Gi", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Quantity::parse("1x").unwrap_err().to_string(),
            QUANTITY_REGEX_ERROR
        );
    }

    #[test]
    fn comparison_is_by_value() {
        let q = |s| Quantity::parse(s).unwrap();
        assert!(q("2") > q("1"));
        assert!(q("500m") < q("1"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert!(q("1G") < q("1Gi"));
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1m").value(), 1);
    }
}
