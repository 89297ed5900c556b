//! Durations and sizes written the way OpenWhisk's HOCON writes them.
//!
//! OpenWhisk's configuration says `10 minutes`, `10 seconds`, `100 ms`,
//! `1024 m`, `256 MB`; an operator copying a value from its
//! `application.conf` or `runtimes.json` should be able to paste it here as a
//! TOML string. So a value is a number (digits, optionally with a decimal
//! fraction), optional spaces, and a unit:
//!
//! - durations: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d` and their HOCON long
//!   forms (`nano(s)`, `nanosecond(s)`, `micro(s)`, `microsecond(s)`,
//!   `milli(s)`, `millisecond(s)`, `second(s)`, `minute(s)`, `hour(s)`,
//!   `day(s)`);
//! - sizes: `B`, `K`/`KB`/`KiB`, `M`/`MB`/`MiB`, `G`/`GB`/`GiB`, `T`/`TB`/`TiB`
//!   and `byte(s)`, `kilobyte(s)`, … — all powers of 1024, as in OpenWhisk's
//!   `ByteSize` (its `MB` is a mebibyte).
//!
//! Units are case-insensitive. The unit is required: HOCON would read a bare
//! number as milliseconds or bytes, but `user-memory = "2048"` is far more
//! likely meant as megabytes than bytes, so it is an error instead of a
//! surprise.
//!
//! Values print back in one canonical form: a duration in the largest unit
//! that divides it exactly, spelled out (`10 minutes`, `1 second`,
//! `500 milliseconds`); a size in `MB` when it is a whole number of megabytes
//! (memory is counted in MB everywhere in OpenWhisk), else `KB`, else `B`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// A duration or size that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a number followed by a duration unit.
    #[error("expected a duration such as \"10 seconds\", \"500 ms\" or \"2 minutes\", got {0:?}")]
    Duration(String),
    /// Not a number followed by a size unit.
    #[error("expected a size such as \"256 MB\", \"1024 m\" or \"2 GB\", got {0:?}")]
    Size(String),
    /// A number too large to represent.
    #[error("{0:?} is too large")]
    Overflow(String),
    /// A size that is not a whole number of bytes (`0.3 B`).
    #[error("{0:?} is not a whole number of bytes")]
    FractionalBytes(String),
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Duration units: nanoseconds per unit, names.
const DURATION_UNITS: &[(u128, &[&str])] = &[
    (1, &["ns", "nano", "nanos", "nanosecond", "nanoseconds"]),
    (
        1_000,
        &["us", "µs", "micro", "micros", "microsecond", "microseconds"],
    ),
    (
        1_000_000,
        &["ms", "milli", "millis", "millisecond", "milliseconds"],
    ),
    (NANOS_PER_SEC, &["s", "second", "seconds"]),
    (60 * NANOS_PER_SEC, &["m", "minute", "minutes"]),
    (3_600 * NANOS_PER_SEC, &["h", "hour", "hours"]),
    (86_400 * NANOS_PER_SEC, &["d", "day", "days"]),
];

/// Canonical duration units, largest first: nanoseconds per unit, singular, plural.
const DURATION_NAMES: &[(u128, &str, &str)] = &[
    (86_400 * NANOS_PER_SEC, "day", "days"),
    (3_600 * NANOS_PER_SEC, "hour", "hours"),
    (60 * NANOS_PER_SEC, "minute", "minutes"),
    (NANOS_PER_SEC, "second", "seconds"),
    (1_000_000, "millisecond", "milliseconds"),
    (1_000, "microsecond", "microseconds"),
    (1, "nanosecond", "nanoseconds"),
];

/// Size units: bytes per unit, names (compared in lower case).
const SIZE_UNITS: &[(u128, &[&str])] = &[
    (1, &["b", "byte", "bytes"]),
    (1 << 10, &["k", "kb", "kib", "kilobyte", "kilobytes"]),
    (1 << 20, &["m", "mb", "mib", "megabyte", "megabytes"]),
    (1 << 30, &["g", "gb", "gib", "gigabyte", "gigabytes"]),
    (1 << 40, &["t", "tb", "tib", "terabyte", "terabytes"]),
];

/// Splits `"10 minutes"` into its number and unit and returns
/// `number × per_unit` as an integer and whether it was exact.
/// `None` if the text is not `<number> <unit>` with a unit from `units`.
fn scaled(text: &str, units: &[(u128, &[&str])]) -> Option<Result<(u128, bool), ()>> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim().to_lowercase();
    let per_unit = units
        .iter()
        .find(|(_, names)| names.contains(&unit.as_str()))
        .map(|(per, _)| *per)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if number.contains('.')
        && (fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let Ok(whole) = whole.parse::<u128>() else {
        return Some(Err(()));
    };
    let Some(mut total) = whole.checked_mul(per_unit) else {
        return Some(Err(()));
    };
    let mut exact = true;
    if !fraction.is_empty() {
        // Only the first 18 digits of a fraction can matter at nanosecond or
        // byte precision with units up to 2^40.
        let digits = fraction.get(..fraction.len().min(18)).unwrap_or(fraction);
        let Ok(numerator) = digits.parse::<u128>() else {
            return Some(Err(()));
        };
        let denominator = 10u128.pow(u32::try_from(digits.len()).unwrap_or(18));
        let part = numerator * per_unit;
        exact = part.is_multiple_of(denominator) && digits.len() == fraction.len();
        total = match total.checked_add(part / denominator) {
            Some(total) => total,
            None => return Some(Err(())),
        };
    }
    Some(Ok((total, exact)))
}

/// Parses a HOCON-style duration: `"10 minutes"`, `"10 s"`, `"500 ms"`.
/// Fractions finer than a nanosecond are dropped.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    match scaled(text, DURATION_UNITS) {
        None => Err(UnitError::Duration(text.to_string())),
        Some(Err(())) => Err(UnitError::Overflow(text.to_string())),
        Some(Ok((nanos, _))) => {
            let secs = u64::try_from(nanos / NANOS_PER_SEC)
                .map_err(|_| UnitError::Overflow(text.to_string()))?;
            let sub = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
            Ok(Duration::new(secs, sub))
        }
    }
}

/// Prints a duration in its canonical form: the largest unit that divides it
/// exactly, spelled out (`"10 minutes"`, `"1 second"`, `"0 seconds"`).
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0 seconds".to_string();
    }
    for (per, singular, plural) in DURATION_NAMES {
        if nanos.is_multiple_of(*per) {
            let n = nanos / per;
            return format!("{n} {}", if n == 1 { singular } else { plural });
        }
    }
    format!("{nanos} nanoseconds")
}

/// An amount of memory or data: OpenWhisk's `ByteSize`, the same type the
/// wire carries. The configuration reads it with HOCON's more lenient
/// grammar — `"256 MB"`, `"1024 m"`, `"1.5 GB"`, `"2 gigabytes"` (units of
/// 1024) — through [`parse_size`] and [`size`].
pub use wasmwhisk_protocol::ByteSize;

/// Reads a configuration size (see [`ByteSize`]): a whole number of bytes.
pub fn parse_size(text: &str) -> Result<ByteSize, UnitError> {
    match scaled(text, SIZE_UNITS) {
        None => Err(UnitError::Size(text.to_string())),
        Some(Err(())) => Err(UnitError::Overflow(text.to_string())),
        Some(Ok((_, false))) => Err(UnitError::FractionalBytes(text.to_string())),
        Some(Ok((bytes, true))) => u64::try_from(bytes)
            .map(ByteSize::from_bytes)
            .map_err(|_| UnitError::Overflow(text.to_string())),
    }
}

/// `#[serde(with = "units::size")]` for a [`ByteSize`] field of the
/// configuration: written `"256 MB"`, read with [`parse_size`].
pub mod size {
    use super::*;

    /// Writes the canonical form.
    pub fn serialize<S: Serializer>(value: &ByteSize, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = ByteSize;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size with a unit, such as \"256 MB\" or \"2 GB\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
            parse_size(text).map_err(E::custom)
        }
    }

    /// Reads the configuration's grammar.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        deserializer.deserialize_str(SizeVisitor)
    }
}

/// `#[serde(with = "units::duration")]` for a `std::time::Duration` field
/// written as `"10 minutes"`.
pub mod duration {
    use super::*;

    /// Writes the canonical form.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*value))
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration with a unit, such as \"10 seconds\" or \"500 ms\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            parse_duration(text).map_err(E::custom)
        }
    }

    /// Reads any form [`parse_duration`] accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn openwhisk_durations_parse() {
        let cases = [
            ("10 minutes", secs(600)),
            ("10 minute", secs(600)),
            ("10 s", secs(10)),
            ("10 seconds", secs(10)),
            ("10s", secs(10)),
            ("500 ms", Duration::from_millis(500)),
            ("500ms", Duration::from_millis(500)),
            ("100 milliseconds", Duration::from_millis(100)),
            ("1 second", secs(1)),
            ("2 minutes", secs(120)),
            ("5 m", secs(300)),
            ("1 h", secs(3600)),
            ("1 day", secs(86_400)),
            ("250 us", Duration::from_micros(250)),
            ("7 ns", Duration::from_nanos(7)),
            ("1.5 seconds", Duration::from_millis(1500)),
            ("  3 SECONDS ", secs(3)),
            ("0 s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_durations_are_rejected_with_the_text() {
        for text in [
            "",
            "10",
            "minutes",
            "10 parsecs",
            "-1 s",
            "1..5 s",
            "1. s",
            ".5 s",
            "ten s",
            "1 s 2",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(UnitError::Duration(text.to_string())),
                "{text}"
            );
        }
        assert!(matches!(
            parse_duration("99999999999999999999999999 days"),
            Err(UnitError::Overflow(_))
        ));
        let message = parse_duration("10 parsecs").unwrap_err().to_string();
        assert!(message.contains("\"10 parsecs\""), "{message}");
    }

    #[test]
    fn durations_print_canonically_and_parse_back() {
        let cases = [
            (secs(600), "10 minutes"),
            (secs(10), "10 seconds"),
            (secs(1), "1 second"),
            (secs(60), "1 minute"),
            (secs(120), "2 minutes"),
            (secs(90), "90 seconds"),
            (secs(3600), "1 hour"),
            (secs(86_400 * 2), "2 days"),
            (Duration::from_millis(500), "500 milliseconds"),
            (Duration::from_millis(1500), "1500 milliseconds"),
            (Duration::from_micros(3), "3 microseconds"),
            (Duration::from_nanos(1), "1 nanosecond"),
            (Duration::ZERO, "0 seconds"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }

    #[test]
    fn openwhisk_sizes_parse() {
        let cases = [
            ("256 MB", ByteSize::from_mb(256)),
            ("1024 m", ByteSize::from_mb(1024)),
            ("2048m", ByteSize::from_mb(2048)),
            ("2 GB", ByteSize::from_mb(2048)),
            ("2 g", ByteSize::from_gb(2)),
            ("48 m", ByteSize::from_mb(48)),
            ("16 k", ByteSize::from_kb(16)),
            ("512 KiB", ByteSize::from_kb(512)),
            ("1 MiB", ByteSize::from_bytes(1 << 20)),
            ("1048576 B", ByteSize::from_mb(1)),
            ("1048576 bytes", ByteSize::from_mb(1)),
            ("0 m", ByteSize::from_bytes(0)),
            ("1.5 GB", ByteSize::from_mb(1536)),
            ("10 megabytes", ByteSize::from_mb(10)),
            ("1 TB", ByteSize::from_bytes(1 << 40)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_text() {
        for text in [
            "", "256", "MB", "256 MBs", "-1 MB", "lots", "2 PB", "1,5 GB",
        ] {
            assert_eq!(
                parse_size(text),
                Err(UnitError::Size(text.to_string())),
                "{text}"
            );
        }
        assert_eq!(
            parse_size("0.3 B"),
            Err(UnitError::FractionalBytes("0.3 B".to_string()))
        );
        assert!(matches!(
            parse_size("99999999999 TB"),
            Err(UnitError::Overflow(_))
        ));
    }

    #[test]
    fn sizes_print_in_mb_when_whole() {
        let cases = [
            (ByteSize::from_mb(1024), "1024 MB"),
            (ByteSize::from_gb(2), "2048 MB"),
            (ByteSize::from_mb(0), "0 MB"),
            (ByteSize::from_kb(512), "512 KB"),
            (ByteSize::from_bytes(1000), "1000 B"),
        ];
        for (size, text) in cases {
            assert_eq!(size.to_string(), text);
            assert_eq!(parse_size(text), Ok(size));
        }
        assert_eq!(ByteSize::from_kb(1536).as_mb(), 1);
        assert!(!ByteSize::from_kb(1536).is_whole_mb());
    }
}
