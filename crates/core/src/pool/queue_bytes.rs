//! The memory queued activations hold, bounded per namespace and in total.
//!
//! A queue of activations waiting for a sandbox holds each one's parameters
//! in memory. The per-action `queue-max-size` bounds their count, not their
//! size: 2,000 one-megabyte bodies to one busy action would hold 2 GB. The
//! [`ByteTally`] counts the bytes every queued activation holds (waiting or
//! in flight), by invocation namespace; an invoke is admitted only while its
//! namespace and the whole server stay within their [`ByteLimits`]
//! (`[controller] queue-max-bytes-per-namespace` and `queue-max-bytes`).
//! Pure bookkeeping: the queue calls it under its own lock.
//!
//! An activation is always admitted into an empty namespace (so one body
//! larger than the namespace's limit still runs, alone), and the check is
//! made at admission, before the activation is journaled; concurrent
//! admissions can overshoot a limit by the activations admitted at the same
//! instant, never more.

use std::collections::HashMap;

use serde_json::Value;

/// The bounds, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteLimits {
    /// All namespaces together.
    pub total: usize,
    /// One invocation namespace.
    pub per_namespace: usize,
}

impl ByteLimits {
    /// No bound.
    pub const UNBOUNDED: ByteLimits = ByteLimits {
        total: usize::MAX,
        per_namespace: usize::MAX,
    };
}

/// Which bound refused an activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteScope {
    /// The invocation namespace's.
    Namespace,
    /// The server's.
    Total,
}

/// An activation did not fit: `queued` bytes are held where `allowed` may
/// be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "Too many concurrent requests in flight (count: {queued} bytes queued, allowed: {allowed} bytes)."
)]
pub struct QueueFull {
    /// The bound that refused it.
    pub scope: ByteScope,
    /// Bytes held under that bound now.
    pub queued: usize,
    /// The bound.
    pub allowed: usize,
}

/// Bytes held by queued activations. Invariant: `total` is the sum of
/// `by_namespace`'s values, and no value is 0 (a namespace with nothing
/// queued has no entry).
#[derive(Debug, Default)]
pub struct ByteTally {
    total: usize,
    by_namespace: HashMap<String, usize>,
}

impl ByteTally {
    /// Whether `bytes` more for `namespace` fit within `limits`.
    pub fn check(
        &self,
        limits: &ByteLimits,
        namespace: &str,
        bytes: usize,
    ) -> Result<(), QueueFull> {
        let held = self.namespace(namespace);
        if held > 0 && held.saturating_add(bytes) > limits.per_namespace {
            return Err(QueueFull {
                scope: ByteScope::Namespace,
                queued: held,
                allowed: limits.per_namespace,
            });
        }
        if self.total > 0 && self.total.saturating_add(bytes) > limits.total {
            return Err(QueueFull {
                scope: ByteScope::Total,
                queued: self.total,
                allowed: limits.total,
            });
        }
        Ok(())
    }

    /// `bytes` more are held for `namespace`.
    pub fn add(&mut self, namespace: &str, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.total = self.total.saturating_add(bytes);
        match self.by_namespace.get_mut(namespace) {
            Some(held) => *held = held.saturating_add(bytes),
            None => {
                self.by_namespace.insert(namespace.to_string(), bytes);
            }
        }
    }

    /// `bytes` of `namespace`'s are no longer held.
    pub fn remove(&mut self, namespace: &str, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.total = self.total.saturating_sub(bytes);
        if let Some(held) = self.by_namespace.get_mut(namespace) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                self.by_namespace.remove(namespace);
                if self.by_namespace.is_empty() {
                    self.by_namespace.shrink_to_fit();
                }
            }
        }
    }

    /// Bytes held for `namespace`.
    pub fn namespace(&self, namespace: &str) -> usize {
        self.by_namespace.get(namespace).copied().unwrap_or(0)
    }

    /// Bytes held in all.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// About how much memory `value` takes once parsed: each node's
/// `serde_json::Value`, plus the text of its strings, numbers (kept as their
/// digits: serde_json's `arbitrary_precision`) and keys, each heap block's
/// bookkeeping, an array's spare capacity and a map entry's overhead. Walks
/// the tree without recursion.
pub fn value_footprint(value: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    /// A map entry's bookkeeping besides its key and value.
    const ENTRY: usize = 32;
    /// A heap block's bookkeeping (malloc's header and rounding).
    const BLOCK: usize = 16;
    let mut bytes = 0usize;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        bytes = bytes.saturating_add(NODE);
        match value {
            Value::Null | Value::Bool(_) => {}
            Value::Number(number) => {
                bytes = bytes.saturating_add(number.as_str().len() + BLOCK);
            }
            Value::String(text) => bytes = bytes.saturating_add(text.len() + BLOCK),
            Value::Array(items) => {
                let spare = items.capacity().saturating_sub(items.len());
                bytes = bytes.saturating_add(spare.saturating_mul(NODE) + BLOCK);
                stack.extend(items.iter());
            }
            Value::Object(map) => {
                for (key, item) in map {
                    bytes = bytes.saturating_add(key.len() + ENTRY);
                    stack.push(item);
                }
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: ByteLimits = ByteLimits {
        total: 300,
        per_namespace: 200,
    };

    #[test]
    fn a_namespace_is_bounded_and_others_are_not_charged_for_it() {
        let mut tally = ByteTally::default();
        assert_eq!(tally.check(&LIMITS, "a", 150), Ok(()));
        tally.add("a", 150);
        let full = tally.check(&LIMITS, "a", 100);
        assert_eq!(
            full,
            Err(QueueFull {
                scope: ByteScope::Namespace,
                queued: 150,
                allowed: 200
            })
        );
        assert_eq!(tally.check(&LIMITS, "b", 100), Ok(()));
        tally.add("b", 100);
        assert_eq!(tally.namespace("b"), 100);
        assert_eq!(tally.total(), 250);
    }

    #[test]
    fn the_total_is_bounded() {
        let mut tally = ByteTally::default();
        tally.add("a", 200);
        tally.add("b", 90);
        let full = tally.check(&LIMITS, "c", 20);
        assert_eq!(
            full,
            Err(QueueFull {
                scope: ByteScope::Total,
                queued: 290,
                allowed: 300
            })
        );
        assert_eq!(tally.check(&LIMITS, "c", 10), Ok(()));
    }

    #[test]
    fn one_oversized_activation_is_admitted_into_an_empty_namespace() {
        let mut tally = ByteTally::default();
        assert_eq!(tally.check(&LIMITS, "a", 10_000), Ok(()));
        tally.add("a", 10_000);
        assert!(tally.check(&LIMITS, "a", 1).is_err());
        assert_eq!(
            tally.check(&LIMITS, "b", 1).map_err(|e| e.scope),
            Err(ByteScope::Total)
        );
    }

    #[test]
    fn removing_returns_to_zero_and_forgets_the_namespace() {
        let mut tally = ByteTally::default();
        tally.add("a", 100);
        tally.add("a", 50);
        tally.remove("a", 100);
        assert_eq!(tally.namespace("a"), 50);
        tally.remove("a", 50);
        assert_eq!(tally.namespace("a"), 0);
        assert_eq!(tally.total(), 0);
        assert!(tally.by_namespace.is_empty());
        tally.remove("a", 7);
        assert_eq!(tally.total(), 0, "never below zero");
    }

    #[test]
    fn the_message_names_the_bytes() {
        let full = QueueFull {
            scope: ByteScope::Namespace,
            queued: 5,
            allowed: 4,
        };
        assert_eq!(
            full.to_string(),
            "Too many concurrent requests in flight (count: 5 bytes queued, allowed: 4 bytes)."
        );
    }

    #[test]
    fn footprint_counts_text_and_nodes() {
        let small = value_footprint(&json!({"a": 1}));
        let big = value_footprint(&json!({"a": "x".repeat(1 << 20)}));
        assert!(big >= 1 << 20);
        assert!(big < (1 << 20) + 1024);
        assert!(small < 200);
        let digits: Value = serde_json::from_str(&format!("{{\"a\": 1{}}}", "1".repeat(100_000)))
            .expect("a big number");
        assert!(
            value_footprint(&digits) >= 100_000,
            "a number is charged its digits"
        );
        let deep = (0..1000).fold(json!(0), |inner, _| json!([inner]));
        assert!(value_footprint(&deep) >= 1000 * std::mem::size_of::<Value>());
    }
}
