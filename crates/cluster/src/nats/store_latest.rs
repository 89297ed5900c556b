//! The latest revision of each action, in memory, for as long as a watch of
//! the actions bucket says it is still the latest.
//!
//! Every invoke loads its action; without this, each costs a read from
//! NATS. OpenWhisk's controllers cache entities the same way and drop an
//! entry when another controller announces a change (its
//! `cacheInvalidation` topic); here the announcement is the KV bucket's own
//! change stream, which every write goes through. So a controller serves an
//! action from memory until any process writes or deletes it, and reads it
//! from NATS again after that.
//!
//! - The cache is used only while the watch runs ([`Latest::live`]); when it
//!   breaks, the cache is emptied and every read goes to NATS until the
//!   watch is back.
//! - A read from NATS fills the cache only if no change arrived while it
//!   was being read (an *epoch* bumped by every change), so a slow read can
//!   never put an older revision back over a newer one.
//! - Entries also expire after [`TTL`], a bound on staleness should a change
//!   ever be missed.
//! - A process's own writes and deletes forget the entry at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use super::NatsStore;
use wasmwhisk_core::pool::ports::ExecutableAction;

/// The longest an entry is served without being read again.
const TTL: Duration = Duration::from_secs(30);

/// Most actions remembered.
const CAPACITY: u64 = 10_000;

/// How long to wait before watching again after the watch broke.
const REWATCH: Duration = Duration::from_secs(1);

/// The latest revisions read, by KV key.
#[derive(Debug)]
pub(super) struct Latest {
    cache: moka::sync::Cache<String, Arc<ExecutableAction>>,
    /// Bumped by every change the watch sees (and by every break of it).
    epoch: AtomicU64,
    /// Whether the watch runs: only then is the cache used.
    live: AtomicBool,
}

impl Latest {
    pub(super) fn new() -> Self {
        Latest {
            cache: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(TTL)
                .build(),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
        }
    }

    /// The remembered latest revision of `key`, while the watch runs.
    pub(super) fn get(&self, key: &str) -> Option<Arc<ExecutableAction>> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        self.cache.get(key)
    }

    /// The epoch to hand to [`fill`](Self::fill) after a read.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers `action` as `key`'s latest, read at `epoch`, unless a
    /// change came since.
    pub(super) fn fill(&self, key: &str, action: &Arc<ExecutableAction>, epoch: u64) {
        if self.live.load(Ordering::Acquire) && self.epoch() == epoch {
            self.cache.insert(key.to_owned(), action.clone());
            // A change that raced the insert must not leave it behind.
            if self.epoch() != epoch {
                self.cache.invalidate(key);
            }
        }
    }

    /// `key` changed (a write or delete, here or anywhere).
    pub(super) fn changed(&self, key: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key);
    }

    /// The watch broke: nothing remembered can be trusted.
    fn lost(&self) {
        self.live.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}

impl NatsStore {
    /// Serves the latest revision of each action from memory from now on,
    /// kept right by a watch of the actions bucket (see the module doc):
    /// what a controller, which loads an action on every invoke, calls once
    /// after [`open`](NatsStore::open). Runs until the store is dropped.
    pub fn watch_actions(&self) {
        let store = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = store.upgrade() else {
                    return;
                };
                let watch = inner.actions.kv.watch_all().await;
                match watch {
                    Ok(mut changes) => {
                        // The watch sees changes from now on: a read that
                        // began before it (its epoch older than this bump)
                        // must not fill the cache with what it read.
                        inner.latest.epoch.fetch_add(1, Ordering::AcqRel);
                        inner.latest.live.store(true, Ordering::Release);
                        drop(inner);
                        while let Some(change) = changes.next().await {
                            let Some(inner) = store.upgrade() else {
                                return;
                            };
                            match change {
                                Ok(entry) => inner.latest.changed(&entry.key),
                                Err(e) => {
                                    tracing::warn!(error = %e, "the watch of the actions broke; reading every action from NATS until it is back");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching the actions failed; reading every action from NATS until it works");
                        drop(inner);
                    }
                }
                if let Some(inner) = store.upgrade() {
                    inner.latest.lost();
                }
                tokio::time::sleep(REWATCH).await;
            }
        });
    }
}
