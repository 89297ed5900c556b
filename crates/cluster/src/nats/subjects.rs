//! The names of the activation queues: one subject per action, the stream
//! that holds them all, and the durable consumer of each action.
//!
//! ```text
//! {prefix}.activation.{invNs}.{action}.{revision}     one action's activations
//! {prefix}.activation.>                              the stream's subjects
//! {escaped prefix}-activations                       the stream
//! {stem}-{hash}                                      an action's durable consumer
//! ```
//!
//! Each of `{invNs}`, `{action}` (`ns[/pkg]/act`, slashes and all) and
//! `{revision}` is **one** token, escaped by [`escape_token`], so the subject
//! always has the prefix's tokens and four more, and reads back into the
//! [`WarmKey`] it was built from.
//!
//! Consumer names have their own rules: besides the subject rules they become
//! a directory of the server's file store, so they should be short and must
//! not collide on a case-insensitive file system. An action's consumer is
//! therefore named by a digest: up to 24 characters of its escaped action
//! name, for people reading `nats consumer ls`, then `-` and 32 lowercase hex
//! digits of the BLAKE3 hash of its subject (128 bits: no two actions share a
//! consumer in practice). The consumer's description and filter subject carry
//! the full, reversible names.

use super::escape::{EscapeError, escape_token, unescape_token};
use wasmwhisk_core::pool::slot::WarmKey;
use wasmwhisk_protocol::{KeyError, Subjects};

/// The token after the prefix that marks activation subjects.
const ACTIVATION: &str = "activation";

/// How many characters of the escaped action name start a consumer name.
const CONSUMER_STEM: usize = 24;

/// Builds and parses the activation queue names of one subject prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationSubjects {
    prefix: String,
}

impl Default for ActivationSubjects {
    /// Subjects under `whisk.`.
    fn default() -> Self {
        ActivationSubjects {
            prefix: wasmwhisk_protocol::keys::DEFAULT_CLUSTER.to_owned(),
        }
    }
}

impl ActivationSubjects {
    /// Activation subjects under `{prefix}.`; the prefix follows the rules of
    /// [`Subjects::new`].
    pub fn new(prefix: &str) -> Result<Self, KeyError> {
        Subjects::new(prefix)?;
        Ok(ActivationSubjects {
            prefix: prefix.to_owned(),
        })
    }

    /// `{prefix}.activation.{invNs}.{action}.{revision}`: the subject of one
    /// action's activations.
    pub fn activation(&self, key: &WarmKey) -> String {
        format!(
            "{}.{ACTIVATION}.{}.{}.{}",
            self.prefix,
            escape_token(&key.invocation_namespace),
            escape_token(&key.action),
            escape_token(&key.revision)
        )
    }

    /// `{prefix}.activation.>`: every activation subject (the stream's).
    pub fn all(&self) -> String {
        format!("{}.{ACTIVATION}.>", self.prefix)
    }

    /// The action an activation subject was built for.
    pub fn parse(&self, subject: &str) -> Result<WarmKey, EscapeError> {
        let error = |reason| EscapeError {
            token: subject.to_owned(),
            reason,
        };
        let rest = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.strip_prefix(ACTIVATION))
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(|| error("not an activation subject of this prefix"))?;
        let tokens: Vec<&str> = rest.split('.').collect();
        let [namespace, action, revision] = tokens.as_slice() else {
            return Err(error(
                "an activation subject has three tokens after the prefix",
            ));
        };
        Ok(WarmKey {
            invocation_namespace: unescape_token(namespace)?,
            action: unescape_token(action)?,
            revision: unescape_token(revision)?,
        })
    }

    /// `{escaped prefix}-activations`: the stream holding every action's
    /// activations.
    pub fn stream_name(&self) -> String {
        format!("{}-activations", escape_token(&self.prefix))
    }

    /// The durable consumer of `key`'s activations (see the module doc).
    pub fn consumer_name(&self, key: &WarmKey) -> String {
        let stem: String = escape_token(&key.action)
            .chars()
            .take(CONSUMER_STEM)
            .collect();
        let hash = blake3::hash(self.activation(key).as_bytes());
        let hex = hash.to_hex();
        format!("{stem}-{}", &hex.as_str()[..32])
    }

    /// A consumer's description: the action in plain words, for people.
    pub fn consumer_description(key: &WarmKey) -> String {
        format!(
            "activations of {} (revision {}) invoked in {}",
            key.action, key.revision, key.invocation_namespace
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, action: &str, rev: &str) -> WarmKey {
        WarmKey {
            invocation_namespace: ns.into(),
            action: action.into(),
            revision: rev.into(),
        }
    }

    #[test]
    fn subjects_have_one_token_per_part_and_read_back() {
        let subjects = ActivationSubjects::default();
        let plain = key("guest", "guest/hello", "1-abc");
        assert_eq!(
            subjects.activation(&plain),
            "whisk.activation.guest.guest_2Fhello.1-abc"
        );
        for k in [
            plain,
            key("a.b", "a.b/my pkg/x@y&z", "null"),
            key("*", ">/.", ""),
            key("ns", "ns/a_b", "3-9f"),
            key("日本", "日本/アクション", "2-x y"),
        ] {
            let subject = subjects.activation(&k);
            assert_eq!(subject.split('.').count(), 5, "{subject}");
            assert!(!subject.contains(['*', '>', ' ']), "{subject}");
            assert_eq!(subjects.parse(&subject), Ok(k));
        }
    }

    #[test]
    fn prefixes_are_checked_and_kept() {
        assert!(ActivationSubjects::new("").is_err());
        assert!(ActivationSubjects::new("a..b").is_err());
        assert!(ActivationSubjects::new("a.*").is_err());
        let subjects = ActivationSubjects::new("test.one").unwrap();
        let k = key("guest", "guest/hello", "1-a");
        assert_eq!(
            subjects.activation(&k),
            "test.one.activation.guest.guest_2Fhello.1-a"
        );
        assert_eq!(subjects.all(), "test.one.activation.>");
        assert_eq!(subjects.stream_name(), "test_2Eone-activations");
        assert_eq!(subjects.parse(&subjects.activation(&k)), Ok(k.clone()));
        assert!(
            ActivationSubjects::default()
                .parse(&subjects.activation(&k))
                .is_err()
        );
    }

    #[test]
    fn foreign_subjects_do_not_parse() {
        let subjects = ActivationSubjects::default();
        for bad in [
            "whisk.invoker0",
            "whisk.activation.a.b",
            "whisk.activation.a.b.c.d",
            "whisk.activation.a.b c.d",
            "whisk.activation.a._2e.c",
            "whiskers.activation.a.b.c",
        ] {
            assert!(subjects.parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn consumer_names_are_short_safe_and_distinct() {
        let subjects = ActivationSubjects::default();
        let long = "x".repeat(256);
        let keys = [
            key("guest", "guest/hello", "1-a"),
            key("guest", "guest/Hello", "1-a"),
            key("guest", "guest/hello", "2-a"),
            key("other", "guest/hello", "1-a"),
            key("g", &format!("g/{long}"), "1-a"),
            key("g", &format!("g/{long}y"), "1-a"),
            key("a b", "a b/. * >", "null"),
        ];
        let mut seen = std::collections::HashSet::new();
        for k in &keys {
            let name = subjects.consumer_name(k);
            assert!(name.len() <= 57, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{name}"
            );
            // Case-insensitive file systems: the hash alone tells them apart.
            let hash = name.rsplit('-').next().unwrap().to_owned();
            assert!(seen.insert(hash), "{name}");
            assert_eq!(subjects.consumer_name(k), name, "deterministic");
        }
        assert!(
            subjects
                .consumer_name(&keys[0])
                .starts_with("guest_2Fhello-")
        );
    }
}
