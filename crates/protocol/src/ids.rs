//! The small identifiers every message carries: transaction ids, activation
//! and creation ids, document revisions and semantic versions.
//!
//! Each keeps OpenWhisk's JSON form exactly (`COM/common/TransactionId.scala`,
//! `COM/core/entity/{ActivationId,CreationId,DocInfo,SemVer}.scala`), and each
//! is validated when it is read, so a malformed id is rejected at the edge with
//! a message that names it, instead of surfacing later as a bad etcd key.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An identifier that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// An activation or creation id that is not exactly 32 characters long.
    #[error("{what} must be 32 lowercase hex characters, got {len}")]
    Length {
        /// Which id (`"activation id"`, `"creation id"`).
        what: &'static str,
        /// The length that was given.
        len: usize,
    },
    /// An activation or creation id with a character outside `0-9a-f`.
    #[error("{what} must be 32 lowercase hex characters, got '{value}'")]
    NotHex {
        /// Which id.
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A version that is not `major.minor.patch` with numbers, or is `0.0.0`.
    #[error("bad semantic version '{0}'")]
    SemVer(String),
}

/// Fills `buf` with random bytes. If the OS source fails (it practically never
/// does), falls back to a BLAKE3 hash of the time, the process id and a
/// process-wide counter: still unique, just not unpredictable.
pub fn random_bytes(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, AtomicOrdering::Relaxed).to_le_bytes());
    hasher.finalize_xof().fill(buf);
}

/// Milliseconds since the Unix epoch, now.
pub fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// OpenWhisk's transaction id: who started a piece of work and when.
///
/// JSON: `[id, startEpochMs]`, then `true` if extra logging is on, then the
/// parent transaction (same form, nested) if there is one. All four shapes
/// are read; writing emits the two required elements plus whatever is set,
/// exactly as OpenWhisk does. Unlike OpenWhisk (which silently reads a
/// malformed array as `sid_unknown`), a malformed array is an error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId {
    /// The id string: 32 alphanumerics for requests, `sid_…` for system work.
    pub id: String,
    /// When the transaction started, in epoch milliseconds.
    pub start_ms: u64,
    /// Whether extra logging was requested for this transaction.
    pub extra_logging: bool,
    /// The transaction this one was started from, if any.
    pub parent: Option<Box<TransactionId>>,
}

impl TransactionId {
    /// The prefix OpenWhisk gives transaction ids of system work.
    pub const SYSTEM_PREFIX: &'static str = "sid_";

    /// A transaction with the given id, started at `start_ms`.
    pub fn new(id: impl Into<String>, start_ms: u64) -> Self {
        TransactionId {
            id: id.into(),
            start_ms,
            extra_logging: false,
            parent: None,
        }
    }

    /// A new request transaction: 32 random alphanumerics, started now.
    pub fn generate() -> Self {
        const DICT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut raw = [0u8; 32];
        random_bytes(&mut raw);
        let id = raw
            .iter()
            .map(|b| {
                DICT.get(usize::from(*b) % DICT.len())
                    .map_or('0', |c| char::from(*c))
            })
            .collect::<String>();
        Self::new(id, now_epoch_ms())
    }

    /// A system transaction (`sid_{name}`), started now; e.g. `invokerWarmup`.
    pub fn system(name: &str) -> Self {
        Self::new(format!("{}{name}", Self::SYSTEM_PREFIX), now_epoch_ms())
    }

    /// OpenWhisk's `sid_unknown`, for work with no known origin.
    pub fn unknown() -> Self {
        Self::system("unknown")
    }

    /// A new transaction started now from `parent`, inheriting its logging flag.
    pub fn child_of(parent: &TransactionId) -> Self {
        let mut child = Self::generate();
        child.extra_logging = parent.extra_logging;
        child.parent = Some(Box::new(parent.clone()));
        child
    }

    /// The transaction at the root of the parent chain.
    pub fn root(&self) -> &TransactionId {
        let mut current = self;
        while let Some(parent) = &current.parent {
            current = parent;
        }
        current
    }
}

impl fmt::Display for TransactionId {
    /// OpenWhisk's log form, `#tid_{id}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#tid_{}", self.id)
    }
}

impl Serialize for TransactionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 2 + usize::from(self.extra_logging) + usize::from(self.parent.is_some());
        let mut seq = serializer.serialize_seq(Some(len))?;
        seq.serialize_element(&self.id)?;
        seq.serialize_element(&self.start_ms)?;
        if self.extra_logging {
            seq.serialize_element(&true)?;
        }
        if let Some(parent) = &self.parent {
            seq.serialize_element(parent.as_ref())?;
        }
        seq.end()
    }
}

/// The third element of a transaction array: the logging flag or the parent.
enum ThirdElement {
    Flag(bool),
    Parent(TransactionId),
}

impl<'de> Deserialize<'de> for ThirdElement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ThirdVisitor;
        impl<'de> Visitor<'de> for ThirdVisitor {
            type Value = ThirdElement;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the extra-logging flag or the parent transaction id")
            }
            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<ThirdElement, E> {
                Ok(ThirdElement::Flag(flag))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ThirdElement, A::Error> {
                TransactionIdVisitor
                    .visit_seq(seq)
                    .map(ThirdElement::Parent)
            }
        }
        deserializer.deserialize_any(ThirdVisitor)
    }
}

struct TransactionIdVisitor;

impl<'de> Visitor<'de> for TransactionIdVisitor {
    type Value = TransactionId;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a transaction id array [id, startEpochMs, extraLogging?, parent?]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TransactionId, A::Error> {
        let id: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let start_ms: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let mut tid = TransactionId::new(id, start_ms);
        match seq.next_element::<ThirdElement>()? {
            None => return Ok(tid),
            Some(ThirdElement::Parent(parent)) => tid.parent = Some(Box::new(parent)),
            Some(ThirdElement::Flag(flag)) => {
                tid.extra_logging = flag;
                tid.parent = seq.next_element::<TransactionId>()?.map(Box::new);
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "a transaction id array has at most 4 elements",
            ));
        }
        Ok(tid)
    }
}

impl<'de> Deserialize<'de> for TransactionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(TransactionIdVisitor)
    }
}

/// Checks that `s` is 32 lowercase hex characters.
fn check_hex32(what: &'static str, s: &str) -> Result<(), IdError> {
    if s.len() != 32 {
        return Err(IdError::Length {
            what,
            len: s.chars().count(),
        });
    }
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(IdError::NotHex {
            what,
            value: s.to_owned(),
        });
    }
    Ok(())
}

/// 32 random lowercase hex characters (a UUID without dashes, as OpenWhisk).
fn random_hex32() -> String {
    let mut raw = [0u8; 16];
    random_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Declares a 32-hex-character id type (activation id, creation id).
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                $name(random_hex32())
            }

            /// Validates `s` as an id: exactly 32 characters of `0-9a-f`.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_hex32($what, s)?;
                Ok($name(s.to_owned()))
            }

            /// The id as its 32 characters.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_hex32($what, &s)?;
                Ok($name(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

hex_id!(
    /// The id of one activation: 32 lowercase hex characters, a JSON string.
    ActivationId,
    "activation id"
);

hex_id!(
    /// The id of one container creation request, kept across its retries:
    /// 32 lowercase hex characters, a JSON string.
    CreationId,
    "creation id"
);

/// A document revision (`"3-abc…"`), or none (JSON `null`) for "the latest".
///
/// OpenWhisk trims the string. Revisions are ordered by the integer before the
/// `-` (the document generation), none being the lowest — the order the
/// invoker uses to decide which warm containers a deletion message covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Option<String>", into = "Option<String>")]
pub struct DocRevision(Option<String>);

impl DocRevision {
    /// A revision from its string form (trimmed).
    pub fn new(rev: impl AsRef<str>) -> Self {
        DocRevision(Some(rev.as_ref().trim().to_owned()))
    }

    /// No revision: `null` on the wire.
    pub fn empty() -> Self {
        DocRevision(None)
    }

    /// True when there is no revision.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The revision string, if any.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The document generation: the integer before the `-`. `None` when there
    /// is no revision or it does not start with a number.
    pub fn generation(&self) -> Option<u64> {
        let rev = self.0.as_deref()?;
        rev.split('-').next()?.parse().ok()
    }

    /// OpenWhisk's revision order: none < any revision; otherwise by
    /// generation (a revision whose generation does not parse counts as 0).
    pub fn compare(&self, other: &DocRevision) -> Ordering {
        match (&self.0, &other.0) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(_), Some(_)) => self
                .generation()
                .unwrap_or(0)
                .cmp(&other.generation().unwrap_or(0)),
        }
    }
}

impl fmt::Display for DocRevision {
    /// The raw revision; `null` when empty — the text OpenWhisk puts in etcd
    /// keys for an empty revision (Scala interpolates a null string so).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("null"))
    }
}

impl From<Option<String>> for DocRevision {
    fn from(rev: Option<String>) -> Self {
        DocRevision(rev.map(|r| r.trim().to_owned()))
    }
}

impl From<DocRevision> for Option<String> {
    fn from(rev: DocRevision) -> Self {
        rev.0
    }
}

/// An entity version, `major.minor.patch` (`"0.0.1"` is the default).
///
/// Read as OpenWhisk reads it: missing parts are 0 (`"1"` is `1.0.0`), and
/// `0.0.0` is not a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SemVer {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl SemVer {
    /// A version; `None` for `0.0.0`.
    pub fn new(major: u32, minor: u32, patch: u32) -> Option<Self> {
        if (major, minor, patch) == (0, 0, 0) {
            return None;
        }
        Some(SemVer {
            major,
            minor,
            patch,
        })
    }

    /// The next patch version (what an update of an entity gets).
    pub fn up_patch(self) -> Self {
        SemVer {
            patch: self.patch.saturating_add(1),
            ..self
        }
    }
}

impl Default for SemVer {
    /// `0.0.1`, the version of a new entity.
    fn default() -> Self {
        SemVer {
            major: 0,
            minor: 0,
            patch: 1,
        }
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for SemVer {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::SemVer(s.to_owned());
        let mut parts = [0u32; 3];
        if !s.is_empty() {
            let pieces: Vec<&str> = s.split('.').collect();
            if pieces.len() > 3 {
                return Err(bad());
            }
            for (slot, piece) in parts.iter_mut().zip(pieces) {
                *slot = piece.parse().map_err(|_| bad())?;
            }
        }
        let [major, minor, patch] = parts;
        SemVer::new(major, minor, patch).ok_or_else(bad)
    }
}

impl TryFrom<String> for SemVer {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<SemVer> for String {
    fn from(v: SemVer) -> String {
        v.to_string()
    }
}

#[cfg(test)]
#[path = "ids_tests.rs"]
mod tests;
