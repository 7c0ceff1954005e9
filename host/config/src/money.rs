//! Money in configuration files and on screens: amounts of US dollars held as integer
//! micro-dollars (1 USD = 1,000,000), parsed from text without floating point.

use serde::{Deserialize, Serialize};

/// Micro-dollars in a dollar.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// An amount of US dollars, exact to the micro-dollar. Written in files as a number or a string
/// of dollars (`25`, `12.50`, `"0.000001"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(pub u64);

impl Usd {
    /// The amount in micro-dollars.
    pub fn micros(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Usd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_usd(self.0))
    }
}

impl Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_decimal(self.0))
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(n) => n.to_string(),
            // Rust prints the shortest text that reads back as the same float: what was written.
            Raw::Float(x) => x.to_string(),
            Raw::Text(t) => t,
        };
        parse_usd(&text).map(Usd).map_err(serde::de::Error::custom)
    }
}

/// Micro-dollars as dollars for people: `$12.34`, `$5.00`, and below a cent every significant
/// digit (`$0.001234`).
pub fn format_usd(micros: u64) -> String {
    let dollars = micros / MICROS_PER_USD;
    let rest = micros % MICROS_PER_USD;
    let frac = format!("{rest:06}");
    let trimmed = frac.trim_end_matches('0');
    let shown = if trimmed.len() < 2 { &frac[..2] } else { trimmed };
    format!("${dollars}.{shown}")
}

/// Micro-dollars as a plain decimal number of dollars (`12.34`, `0.001234`), as files and the API
/// write amounts.
pub fn format_decimal(micros: u64) -> String {
    format_usd(micros).trim_start_matches('$').to_string()
}

/// Parses an amount written in dollars (`12`, `12.5`, `$3.75`, `0.000001`) into micro-dollars;
/// more than six decimals, a sign or anything else is an error that says so.
pub fn parse_usd(text: &str) -> Result<u64, String> {
    let t = text.trim().trim_start_matches('$');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let bad = || format!("`{text}` is not an amount of dollars (like 25 or 12.50)");
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    if frac.len() > 6 {
        return Err(format!(
            "`{text}` has more than six decimals (a micro-dollar is the smallest amount)"
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(MICROS_PER_USD)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_parse_and_print_exactly() {
        assert_eq!(parse_usd("25"), Ok(25_000_000));
        assert_eq!(parse_usd("12.5"), Ok(12_500_000));
        assert_eq!(parse_usd("0.000001"), Ok(1));
        assert_eq!(parse_usd("$3.75"), Ok(3_750_000));
        assert!(parse_usd("1.0000001").unwrap_err().contains("more than six decimals"));
        assert!(parse_usd("ten").is_err());
        assert!(parse_usd("-1").is_err());
        assert!(parse_usd("").is_err());
        assert_eq!(format_usd(12_340_000), "$12.34");
        assert_eq!(format_usd(1_234), "$0.001234");
        assert_eq!(format_usd(5_000_000), "$5.00");
        assert_eq!(format_usd(500_000), "$0.50");
        assert_eq!(format_usd(0), "$0.00");
    }

    #[test]
    fn amounts_read_from_yaml_numbers_and_strings() {
        let v: Vec<Usd> = serde_yaml::from_str("[200, 2.5, \"0.10\", 0.1]").unwrap();
        assert_eq!(v, vec![Usd(200_000_000), Usd(2_500_000), Usd(100_000), Usd(100_000)]);
        let e = serde_yaml::from_str::<Usd>("-3").unwrap_err().to_string();
        assert!(e.contains("is not an amount of dollars"), "{e}");
        assert_eq!(serde_yaml::to_string(&Usd(2_500_000)).unwrap().trim(), "'2.50'");
    }
}
