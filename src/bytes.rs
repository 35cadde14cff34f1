//! Byte sizes in configuration: a plain integer (`2147483648`) or a number
//! with a unit (`"2GiB"`, `"100 MB"`, `"512k"`), always rendered back as a
//! plain integer so `check-config` output round-trips exactly.
//!
//! Units: `B`; decimal `kB`/`KB`/`k`, `MB`/`M`, `GB`/`G`, `TB`/`T` (powers of
//! 1000); binary `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024). Fractions are
//! allowed (`"1.5GiB"`) and rounded down to whole bytes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes read from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// For people: the largest binary unit that leaves at least 1, up to
    /// one decimal (`3GiB`, `1.5MiB`, `512B`), in the configuration's own
    /// notation so it parses back (rounded down).
    pub fn human(self) -> String {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        while unit + 1 < UNITS.len() && self.0 >= 1u64 << (10 * (unit + 1)) {
            unit += 1;
        }
        if unit == 0 {
            return format!("{}B", self.0);
        }
        let tenths = (self.0 as u128 * 10) >> (10 * unit);
        if tenths.is_multiple_of(10) {
            format!("{}{}", tenths / 10, UNITS[unit])
        } else {
            format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[unit])
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a size string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty size")]
    Empty,
    #[error("`{0}` is not a number")]
    Number(String),
    #[error("unknown unit `{0}` (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)")]
    Unit(String),
    #[error("size does not fit in 64 bits")]
    Overflow,
}

impl std::str::FromStr for ByteSize {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (num, unit) = (&s[..split], s[split..].trim());
        let mult: u64 = match unit {
            "" | "B" | "b" => 1,
            "k" | "K" | "kB" | "KB" => 1_000,
            "M" | "MB" => 1_000_000,
            "G" | "GB" => 1_000_000_000,
            "T" | "TB" => 1_000_000_000_000,
            "Ki" | "KiB" => 1 << 10,
            "Mi" | "MiB" => 1 << 20,
            "Gi" | "GiB" => 1 << 30,
            "Ti" | "TiB" => 1 << 40,
            other => return Err(ParseError::Unit(other.to_string())),
        };
        if num.is_empty() || num.chars().filter(|&c| c == '.').count() > 1 || num == "." {
            return Err(ParseError::Number(num.to_string()));
        }
        match num.split_once('.') {
            None => {
                let n: u64 = num.parse().map_err(|_| ParseError::Overflow)?;
                n.checked_mul(mult).map(ByteSize).ok_or(ParseError::Overflow)
            }
            Some((int, frac)) => {
                let int: u64 = if int.is_empty() {
                    0
                } else {
                    int.parse().map_err(|_| ParseError::Overflow)?
                };
                let whole = int.checked_mul(mult).ok_or(ParseError::Overflow)?;
                // Fraction in exact integer arithmetic: frac_digits * mult / 10^len.
                let frac = &frac[..frac.len().min(18)];
                let f: u128 = if frac.is_empty() { 0 } else { frac.parse().unwrap_or(0) };
                let part = f * mult as u128 / 10u128.pow(frac.len() as u32);
                whole.checked_add(part as u64).map(ByteSize).ok_or(ParseError::Overflow)
            }
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count (integer) or a size such as \"2GiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        for (n, want) in [
            (0, "0B"),
            (512, "512B"),
            (1536, "1.5KiB"),
            (8 << 20, "8MiB"),
            (3 << 30, "3GiB"),
            (2_147_483_649, "2GiB"),
        ] {
            assert_eq!(ByteSize(n).human(), want);
        }
    }

    #[test]
    fn parses_integers_and_units() {
        for (s, want) in [
            ("2147483648", 2_147_483_648),
            ("2GiB", 2_147_483_648),
            ("2 GiB", 2_147_483_648),
            ("100MB", 100_000_000),
            ("100 MiB", 104_857_600),
            ("512k", 512_000),
            ("1.5GiB", 1_610_612_736),
            ("0.5KiB", 512),
            ("7B", 7),
            ("0", 0),
        ] {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(want)), "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!("".parse::<ByteSize>(), Err(ParseError::Empty));
        assert!(matches!("2 PiB".parse::<ByteSize>(), Err(ParseError::Unit(_))));
        assert!(matches!("GiB".parse::<ByteSize>(), Err(ParseError::Number(_))));
        assert!(matches!("1.2.3MB".parse::<ByteSize>(), Err(ParseError::Number(_))));
        assert_eq!("99999999999TiB".parse::<ByteSize>(), Err(ParseError::Overflow));
    }

    #[test]
    fn toml_round_trip_is_an_integer() {
        #[derive(Serialize, Deserialize)]
        struct T {
            a: ByteSize,
            b: ByteSize,
        }
        let t: T = toml::from_str("a = 2147483648\nb = \"1MiB\"\n").unwrap();
        assert_eq!((t.a.0, t.b.0), (2_147_483_648, 1_048_576));
        assert_eq!(toml::to_string(&t).unwrap(), "a = 2147483648\nb = 1048576\n");
        assert!(toml::from_str::<T>("a = -1\nb = 1\n").is_err());
    }
}
