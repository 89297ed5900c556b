//! Byte sizes as OpenWhisk writes them in JSON: `"256 MB"`.
//!
//! OpenWhisk keeps a size with its unit and prints it in that unit; the sizes
//! on the wire (`userMemory`, `busyMemory`, the namespace limits) are built in
//! MB, so they read `"2048 MB"`. We store bytes and print the largest unit of
//! MB, KB and B that divides the value exactly — the same text for every value
//! OpenWhisk itself sends. Units are binary (1 KB = 1024 B), as in OpenWhisk.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const KB: u64 = 1024;
const MB: u64 = 1024 * KB;
const GB: u64 = 1024 * MB;

/// A size string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    /// Not `<digits> <unit>` with a unit of `B`, `K[B]`, `M[B]` or `G[B]`.
    #[error("size '{0}' malformed: expected '<n> <unit>' with unit B, K[B], M[B] or G[B]")]
    Format(String),
    /// A size too large for 64 bits of bytes.
    #[error("size '{0}' is too large")]
    Overflow(String),
}

/// A number of bytes, written in OpenWhisk's `"<n> <unit>"` form.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ByteSize(u64);

impl ByteSize {
    /// No bytes.
    pub const ZERO: ByteSize = ByteSize(0);

    /// `n` bytes.
    pub const fn from_bytes(n: u64) -> Self {
        ByteSize(n)
    }

    /// `n` kilobytes (KiB); saturates at `u64::MAX` bytes.
    pub const fn from_kb(n: u64) -> Self {
        ByteSize(n.saturating_mul(KB))
    }

    /// `n` megabytes (MiB); saturates at `u64::MAX` bytes.
    pub const fn from_mb(n: u64) -> Self {
        ByteSize(n.saturating_mul(MB))
    }

    /// `n` gigabytes (GiB); saturates at `u64::MAX` bytes.
    pub const fn from_gb(n: u64) -> Self {
        ByteSize(n.saturating_mul(GB))
    }

    /// The size in bytes.
    pub const fn as_bytes(self) -> u64 {
        self.0
    }

    /// The size in whole kilobytes (rounded down, as OpenWhisk's `toKB`).
    pub const fn as_kb(self) -> u64 {
        self.0 / KB
    }

    /// The size in whole megabytes (rounded down, as OpenWhisk's `toMB`).
    pub const fn as_mb(self) -> u64 {
        self.0 / MB
    }

    /// The size in bytes as a `usize`, saturating.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    /// True if the size is a whole number of MB.
    pub const fn is_whole_mb(self) -> bool {
        self.0.is_multiple_of(MB)
    }
}

impl fmt::Display for ByteSize {
    /// `"<n> MB"` when the size is whole megabytes, else `"<n> KB"` when whole
    /// kilobytes, else `"<n> B"`. Zero is `"0 MB"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n.is_multiple_of(MB) {
            write!(f, "{} MB", n / MB)
        } else if n.is_multiple_of(KB) {
            write!(f, "{} KB", n / KB)
        } else {
            write!(f, "{n} B")
        }
    }
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    /// Reads `"256 MB"`, `"256MB"`, `"256 m"`, `"1 gb"`, `"512 B"`: digits,
    /// optional whitespace, then a unit B, K, KB, M, MB, G or GB in any case.
    /// Surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, ByteSizeError> {
        let format_error = || ByteSizeError::Format(s.to_owned());
        let trimmed = s.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(format_error)?;
        let (digits, unit) = trimmed.split_at(digits_end);
        if digits.is_empty() {
            return Err(format_error());
        }
        let multiplier = match unit.trim_start().to_ascii_uppercase().as_str() {
            "B" => 1,
            "K" | "KB" => KB,
            "M" | "MB" => MB,
            "G" | "GB" => GB,
            _ => return Err(format_error()),
        };
        let overflow = || ByteSizeError::Overflow(s.to_owned());
        let n: u64 = digits.parse().map_err(|_| overflow())?;
        n.checked_mul(multiplier).map(ByteSize).ok_or_else(overflow)
    }
}

impl TryFrom<String> for ByteSize {
    type Error = ByteSizeError;
    fn try_from(s: String) -> Result<Self, ByteSizeError> {
        s.parse()
    }
}

impl From<ByteSize> for String {
    fn from(b: ByteSize) -> String {
        b.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_openwhisk_spellings() {
        for (text, bytes) in [
            ("256 MB", 256 * MB),
            ("256MB", 256 * MB),
            ("256 m", 256 * MB),
            ("256 Mb", 256 * MB),
            (" 2048 MB ", 2048 * MB),
            ("1 gb", GB),
            ("2 G", 2 * GB),
            ("64 kb", 64 * KB),
            ("3 K", 3 * KB),
            ("512 B", 512),
            ("0 MB", 0),
        ] {
            assert_eq!(
                text.parse::<ByteSize>().unwrap().as_bytes(),
                bytes,
                "{text}"
            );
        }
    }

    #[test]
    fn writes_the_mb_form_for_mb_values() {
        assert_eq!(ByteSize::from_mb(256).to_string(), "256 MB");
        assert_eq!(ByteSize::from_gb(2).to_string(), "2048 MB");
        assert_eq!(ByteSize::from_kb(3).to_string(), "3 KB");
        assert_eq!(ByteSize::from_bytes(100).to_string(), "100 B");
        assert_eq!(ByteSize::ZERO.to_string(), "0 MB");
        let size: ByteSize = serde_json::from_value(json!("2048 MB")).unwrap();
        assert_eq!(serde_json::to_value(size).unwrap(), json!("2048 MB"));
        assert_eq!(size.as_mb(), 2048);
    }

    #[test]
    fn rejects_malformed_sizes() {
        for bad in [
            "", "MB", "256", "256 TB", "-1 MB", "1.5 MB", "256 M B", "x MB",
        ] {
            assert!(
                matches!(bad.parse::<ByteSize>(), Err(ByteSizeError::Format(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "99999999999999999999 GB".parse::<ByteSize>(),
            Err(ByteSizeError::Overflow(_))
        ));
        assert!(matches!(
            "17179869184 GB".parse::<ByteSize>(),
            Err(ByteSizeError::Overflow(_))
        ));
        assert!(serde_json::from_value::<ByteSize>(json!(256)).is_err());
    }
}
