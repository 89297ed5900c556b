//! The two caches of the invoke hot path: every invoke authenticates and
//! loads its action, and neither should cost a database read.
//!
//! - [`AuthCache`]: positive authentications for [`AUTH_TTL`]. The TTL is
//!   the bound on how long a namespace deleted by *another* process (the
//!   CLI) keeps working here; the writer also drops the whole cache as soon
//!   as it sees another process commit, and one entry when this process
//!   deletes a namespace. An entry answers only the key that authenticated:
//!   a wrong key for a cached uuid misses, as an unknown uuid does, so the
//!   two cost the same (a cached uuid rejected at once would tell that the
//!   uuid exists).
//! - [`ActionCache`]: the latest revision of each action, as an
//!   `Arc<ExecutableAction>`. The writer sets or removes entries after each
//!   commit, in commit order. A reader that missed fills it only if no write
//!   happened since it looked (the *epoch*), so a slow read can never put an
//!   older revision back over a newer one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wasmwhisk_core::pool::ports::ExecutableAction;

/// How long a positive authentication is trusted.
pub(super) const AUTH_TTL: Duration = Duration::from_secs(5);

/// Most keys remembered at once.
const AUTH_CAPACITY: u64 = 10_000;

/// A namespace's key, as the cache remembers it.
#[derive(Clone, Debug)]
pub(super) struct KnownKey {
    /// The namespace.
    pub namespace: Arc<str>,
    /// BLAKE3 of the key.
    pub hash: blake3::Hash,
}

/// Positive authentications by key uuid.
#[derive(Debug)]
pub(super) struct AuthCache {
    keys: moka::sync::Cache<String, KnownKey>,
}

impl AuthCache {
    /// An empty cache.
    pub fn new() -> Self {
        AuthCache {
            keys: moka::sync::Cache::builder()
                .max_capacity(AUTH_CAPACITY)
                .time_to_live(AUTH_TTL)
                .build(),
        }
    }

    /// The remembered key of `uuid`, if its hash is `hash`; a wrong key
    /// misses like an unknown uuid.
    pub fn get(&self, uuid: &str, hash: &blake3::Hash) -> Option<KnownKey> {
        self.keys
            .get(uuid)
            .filter(|known| crate::key_matches(Some(&known.hash), hash))
    }

    /// Remembers that `uuid`'s key authenticated.
    pub fn remember(&self, uuid: String, key: KnownKey) {
        self.keys.insert(uuid, key);
    }

    /// Forgets `uuid`.
    pub fn forget(&self, uuid: &str) {
        self.keys.invalidate(uuid);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.keys.invalidate_all();
    }
}

/// The latest revision of each action, by document id `ns[/pkg]/act`.
#[derive(Debug, Default)]
pub(super) struct ActionCache {
    /// A `std` mutex: every critical section is a map operation.
    state: Mutex<ActionCacheState>,
}

#[derive(Debug, Default)]
struct ActionCacheState {
    latest: HashMap<String, Arc<ExecutableAction>>,
    /// Bumped by every write; see [`ActionCache::fill`].
    epoch: u64,
}

impl ActionCache {
    fn lock(&self) -> MutexGuard<'_, ActionCacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached latest revision of `doc`, or the epoch to pass to
    /// [`fill`](Self::fill) after reading it from the database.
    pub fn get(&self, doc: &str) -> Result<Arc<ExecutableAction>, u64> {
        let state = self.lock();
        state.latest.get(doc).cloned().ok_or(state.epoch)
    }

    /// Caches `action`, read from the database when the epoch was `epoch`,
    /// unless a write happened since.
    pub fn fill(&self, doc: String, action: Arc<ExecutableAction>, epoch: u64) {
        let mut state = self.lock();
        if state.epoch == epoch {
            state.latest.insert(doc, action);
        }
    }

    /// `action` is the latest revision of `doc` (after a commit).
    pub fn set(&self, doc: String, action: Arc<ExecutableAction>) {
        let mut state = self.lock();
        state.epoch += 1;
        state.latest.insert(doc, action);
    }

    /// `doc` is gone (after a commit).
    pub fn remove(&self, doc: &str) {
        let mut state = self.lock();
        state.epoch += 1;
        state.latest.remove(doc);
    }

    /// Anything may have changed.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.epoch += 1;
        state.latest.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_key_misses_the_auth_cache_like_an_unknown_uuid() {
        let cache = AuthCache::new();
        let right = blake3::hash(b"right");
        let known = KnownKey {
            namespace: Arc::from("guest"),
            hash: right,
        };
        cache.remember("known".into(), known);
        assert!(cache.get("known", &right).is_some());
        // Both misses go on to the same database read and hash comparison.
        let wrong = blake3::hash(b"wrong");
        assert!(cache.get("known", &wrong).is_none());
        assert!(cache.get("unknown", &wrong).is_none());
        cache.forget("known");
        assert!(cache.get("known", &right).is_none());
    }
}
