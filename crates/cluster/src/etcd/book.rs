//! What this process holds in etcd and what is still to be written: the
//! pure bookkeeping behind [`EtcdClusterState`](super::EtcdClusterState).
//! No I/O here; the session asks it for batches and tells it what happened.
//!
//! Invariant: etcd holds exactly `held` under the current lease, except for
//! the keys in `stale`, whose copy in etcd may differ (a key in `stale` but
//! not in `held` is to be deleted). Going offline changes nothing in the
//! book; coming back marks every held key stale, because the new lease must
//! own them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::sync::oneshot;

use wasmwhisk_core::pool::ports::ClusterError;

/// A caller waiting for its write.
pub(super) type Waiter = oneshot::Sender<Result<(), ClusterError>>;

/// The longest key + value accepted (etcd's default request limit is
/// 1.5 MiB; a batch stays well under it).
pub(super) const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// Most operations in one transaction (etcd's `--max-txn-ops` default is 128).
pub(super) const MAX_BATCH_OPS: usize = 64;

/// Most bytes of keys and values in one transaction.
pub(super) const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not connected, or re-writing the keys under a new lease: writes are
    /// remembered and fail fast.
    Offline,
    /// Connected under a live lease, in sync: writes are sent and awaited.
    Online,
    /// Shut down: writes are refused.
    Closed,
}

/// One transaction's worth of writes.
#[derive(Debug)]
pub(super) struct Batch {
    /// Each key with its value to put, or `None` to delete it.
    pub ops: Vec<(String, Option<String>)>,
    waiters: Vec<Waiter>,
}

impl Batch {
    /// The keys written.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.ops.iter().map(|(k, _)| k)
    }

    /// Tells every waiter how the write went.
    pub fn answer(self, result: &Result<(), ClusterError>) {
        for waiter in self.waiters {
            // A caller that stopped waiting is not an error.
            let _ = waiter.send(result.clone());
        }
    }
}

/// The keys, their pending writes and the phase.
#[derive(Debug)]
pub(super) struct Book {
    /// Every key this process holds, with its latest value.
    held: BTreeMap<String, String>,
    /// Keys whose copy in etcd may differ from `held`.
    stale: BTreeSet<String>,
    /// Callers waiting for a key's write; only while online (offline
    /// callers are answered at once).
    waiters: HashMap<String, Vec<Waiter>>,
    /// Where the session is.
    phase: Phase,
    /// The lease the held keys are written under, while online.
    lease: Option<i64>,
}

impl Default for Book {
    fn default() -> Self {
        Book {
            held: BTreeMap::new(),
            stale: BTreeSet::new(),
            waiters: HashMap::new(),
            phase: Phase::Offline,
            lease: None,
        }
    }
}

impl Book {
    /// Records that `key` should be `value` (`None`: deleted). Online, the
    /// caller waits on the receiver for the write; offline, the write is
    /// remembered for the reconnect and the caller gets an error now.
    pub fn record(
        &mut self,
        key: &str,
        value: Option<&str>,
    ) -> Result<oneshot::Receiver<Result<(), ClusterError>>, ClusterError> {
        if self.phase == Phase::Closed {
            return Err(ClusterError(format!(
                "the etcd session is shut down; {key} is not written"
            )));
        }
        if key.is_empty() {
            return Err(ClusterError("an etcd key cannot be empty".into()));
        }
        let size = key.len() + value.map_or(0, str::len);
        if size > MAX_ENTRY_BYTES {
            return Err(ClusterError(format!(
                "{key}: {size} bytes of key and value, more than {MAX_ENTRY_BYTES}"
            )));
        }
        match value {
            Some(v) => {
                self.held.insert(key.to_owned(), v.to_owned());
            }
            None => {
                self.held.remove(key);
            }
        }
        self.stale.insert(key.to_owned());
        if self.phase == Phase::Offline {
            return Err(ClusterError(format!(
                "etcd is away; {key} will be written when it is back"
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.entry(key.to_owned()).or_default().push(tx);
        Ok(rx)
    }

    /// The next writes to send, in key order, with the
    /// callers waiting for them; `None` when everything is written.
    pub fn take_batch(&mut self) -> Option<Batch> {
        let mut ops = Vec::new();
        let mut waiters = Vec::new();
        let mut bytes = 0;
        while ops.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES {
            let Some(key) = self.stale.pop_first() else {
                break;
            };
            let value = self.held.get(&key).cloned();
            bytes += key.len() + value.as_ref().map_or(0, String::len);
            waiters.extend(self.waiters.remove(&key).unwrap_or_default());
            ops.push((key, value));
        }
        (!ops.is_empty()).then_some(Batch { ops, waiters })
    }

    /// A batch failed: its keys are to be written again.
    pub fn requeue<'a>(&mut self, keys: impl Iterator<Item = &'a String>) {
        self.stale.extend(keys.cloned());
    }

    /// The session lost etcd: writes now fail fast. Returns the callers
    /// still waiting, to be told.
    pub fn go_offline(&mut self) -> Vec<Waiter> {
        if self.phase == Phase::Online {
            self.phase = Phase::Offline;
        }
        self.lease = None;
        self.waiters.drain().flat_map(|(_, w)| w).collect()
    }

    /// A new lease was granted: the lease key gets its id and every held
    /// key must be written again under it.
    pub fn begin_resync(&mut self, lease_key: &str, lease: i64) {
        self.held.insert(lease_key.to_owned(), lease.to_string());
        self.stale.extend(self.held.keys().cloned());
    }

    /// Goes online under `lease` if everything is written; false if writes
    /// came in meanwhile (write them first) or the session was closed.
    pub fn try_go_online(&mut self, lease: i64) -> bool {
        if self.phase != Phase::Offline || !self.stale.is_empty() {
            return false;
        }
        self.phase = Phase::Online;
        self.lease = Some(lease);
        true
    }

    /// Refuses every later write; returns the phase it was in.
    pub fn close(&mut self) -> Phase {
        std::mem::replace(&mut self.phase, Phase::Closed)
    }

    /// Where the session is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The lease, while online.
    pub fn lease(&self) -> Option<i64> {
        self.lease
    }

    /// The keys held and their latest values.
    pub fn held(&self) -> &BTreeMap<String, String> {
        &self.held
    }

    /// How many keys wait to be written.
    pub fn pending(&self) -> usize {
        self.stale.len()
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
