//! [`ClusterMirror`]: the controller's copy of the whole cluster state in
//! etcd, kept current by one background watch.
//!
//! The controller asks about the cluster on every invoke (how many sandboxes
//! an action has, which invokers are up and have room, where warm sandboxes
//! are); a round trip to etcd each time would put etcd on the hot path. So
//! the mirror watches every key under `{cluster}/` ([`PrefixWatch`]) and
//! keeps them in a [`LocalClusterState`] — the same map standalone mode's
//! pool writes to, so the controller's prefix counts read the same either
//! way — plus the parsed invoker reports.
//!
//! ```text
//!  etcd ──watch {cluster}/──▶ Snapshot: replace everything
//!                             Put:      set the key      ──▶ LocalClusterState
//!                             Delete:   remove the key       + invokers/… parsed
//!                                                             + `updated` += 1
//! ```
//!
//! While etcd is away the mirror keeps its last view (the watch resumes
//! where it left off, or sends a fresh snapshot if etcd compacted the
//! revisions it missed). Keys of a process that died vanish from etcd one
//! lease TTL later, and then from the mirror. The mirror writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::Task;
use super::reader::{EtcdReader, InvokerReport};
use super::watch::WatchEvent;
use wasmwhisk_core::pool::local::LocalClusterState;
use wasmwhisk_core::pool::ports::{ClusterError, ClusterState};
use wasmwhisk_core::sync::lock;
use wasmwhisk_protocol::{ContainerKeyKind, DocRevision, EtcdKeys, FullyQualifiedEntityName};

/// A live copy of the cluster state. Cheap to clone; the watch stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct ClusterMirror {
    shared: Arc<Shared>,
    _task: Arc<Task<()>>,
}

impl std::fmt::Debug for ClusterMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMirror")
            .field("cluster", &self.shared.keys.cluster())
            .field("applied", &*self.shared.applied.borrow())
            .field("keys", &self.shared.state.count_with_prefix(""))
            .finish()
    }
}

/// What the watch task and the handles share.
struct Shared {
    keys: EtcdKeys,
    /// Every key under `{cluster}/` with its value, as of the last event.
    state: Arc<LocalClusterState>,
    /// `{cluster}/invokers/`: which keys are invoker reports.
    invokers_prefix: String,
    /// The well-formed reports among those keys, by key. Always the parsed
    /// subset of `state` under `invokers_prefix` (updated before `applied`).
    invokers: Mutex<BTreeMap<String, InvokerReport>>,
    /// How many events were applied: 0 until the first snapshot, then one
    /// more per snapshot, put or delete.
    applied: watch::Sender<u64>,
}

impl ClusterMirror {
    /// Starts mirroring the cluster `reader` reads. Must be called inside a
    /// tokio runtime. The mirror is empty until the first snapshot
    /// ([`wait_ready`](Self::wait_ready)).
    pub fn start(reader: EtcdReader) -> ClusterMirror {
        let keys = reader.keys().clone();
        let shared = Arc::new(Shared {
            invokers_prefix: format!("{}/", keys.invokers_prefix()),
            keys,
            state: Arc::new(LocalClusterState::new()),
            invokers: Mutex::new(BTreeMap::new()),
            applied: watch::Sender::new(0),
        });
        let task = Task::spawn(run(reader, shared.clone()));
        ClusterMirror {
            shared,
            _task: Arc::new(task),
        }
    }

    /// The mirrored keys and values (every key under `{cluster}/`). The same
    /// map for the mirror's whole life; the controller counts prefixes in it.
    pub fn state(&self) -> Arc<LocalClusterState> {
        self.shared.state.clone()
    }

    /// The keys of the mirrored cluster.
    pub fn keys(&self) -> &EtcdKeys {
        &self.shared.keys
    }

    /// Every well-formed invoker report, sorted by invoker number
    /// (malformed ones are logged and counted by the reader, and left out).
    pub fn invokers(&self) -> Vec<InvokerReport> {
        let mut reports: Vec<InvokerReport> =
            lock(&self.shared.invokers).values().cloned().collect();
        reports.sort_by_key(|r| r.instance);
        reports
    }

    /// The invokers holding a warmed (paused) sandbox of the action at
    /// `revision` for `invocation_namespace`
    /// (`{cluster}/warmed/{invNs}/{fqn}/{rev}/invoker/{N}/container/{id}`),
    /// sorted, each once. Empty for names that cannot be in a key.
    pub fn warmed_invokers(
        &self,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
        revision: &DocRevision,
    ) -> Vec<u32> {
        let keys = &self.shared.keys;
        let Ok(prefix) = keys.containers_prefix(
            ContainerKeyKind::Warmed,
            invocation_namespace,
            action,
            Some(revision),
        ) else {
            return Vec::new();
        };
        let mut invokers: Vec<u32> = self
            .shared
            .state
            .keys_with_prefix(&prefix)
            .iter()
            .filter_map(|key| keys.parse_container_key(key).ok())
            .map(|container| container.invoker)
            .collect();
        invokers.sort_unstable();
        invokers.dedup();
        invokers
    }

    /// The instances holding a lease whose name starts with `kind_prefix`
    /// (`{cluster}/instance/{name}/lease`): e.g. `"controller"` gives
    /// `["controller0", "controller1"]`, in key order.
    pub fn live_instances(&self, kind_prefix: &str) -> Vec<String> {
        // The layout is EtcdKeys's: split its lease key around a name.
        let probe = self.shared.keys.instance_lease(&'*');
        let Some((head, tail)) = probe.rsplit_once('*') else {
            return Vec::new();
        };
        self.shared
            .state
            .keys_with_prefix(&format!("{head}{kind_prefix}"))
            .iter()
            .filter_map(|key| key.strip_prefix(head)?.strip_suffix(tail))
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// True once the first snapshot was applied.
    pub fn is_ready(&self) -> bool {
        *self.shared.applied.borrow() > 0
    }

    /// Waits until the first snapshot was applied, at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ClusterError> {
        let mut updated = self.updated();
        match tokio::time::timeout(timeout, updated.wait_for(|applied| *applied > 0)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ClusterError(
                "the cluster mirror stopped before etcd sent its first snapshot".into(),
            )),
            Err(_) => Err(ClusterError(format!(
                "the cluster mirror got no snapshot of {}/ from etcd within {timeout:?}: \
                 etcd is not answering",
                self.shared.keys.cluster()
            ))),
        }
    }

    /// A receiver of the number of events applied so far (0 until the first
    /// snapshot); its `changed()` fires after each snapshot, put or delete
    /// is visible in [`state`](Self::state) and [`invokers`](Self::invokers).
    pub fn updated(&self) -> watch::Receiver<u64> {
        self.shared.applied.subscribe()
    }

    /// Waits until `condition` holds of the mirror, checking it now and
    /// after every applied event, at most `timeout`. True if it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&ClusterMirror) -> bool,
    ) -> bool {
        let mut updated = self.updated();
        let waiting = async {
            loop {
                updated.borrow_and_update();
                if condition(self) {
                    return true;
                }
                if updated.changed().await.is_err() {
                    return condition(self);
                }
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .unwrap_or(false)
    }
}

/// Applies every event of the watch on the cluster prefix until the mirror
/// is dropped (which aborts this task).
async fn run(reader: EtcdReader, shared: Arc<Shared>) {
    let prefix = format!("{}/", reader.keys().cluster());
    let mut watch = reader.watch_prefix(&prefix);
    while let Some(event) = watch.next().await {
        shared.apply(&reader, event).await;
    }
}

impl Shared {
    async fn apply(&self, reader: &EtcdReader, event: WatchEvent) {
        match event {
            WatchEvent::Snapshot { entries, revision } => {
                tracing::debug!(revision, keys = entries.len(), "cluster mirror snapshot");
                let reports: BTreeMap<String, InvokerReport> = entries
                    .iter()
                    .filter(|(key, _)| key.starts_with(&self.invokers_prefix))
                    .filter_map(|(key, value)| {
                        Some((key.clone(), reader.parse_invoker(key, value)?))
                    })
                    .collect();
                // New values first, then the keys that are gone: a reader
                // in between sees a superset, never a key missing that
                // both the old and the new view have.
                let stale: Vec<String> = {
                    let fresh: BTreeSet<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
                    self.state
                        .keys_with_prefix("")
                        .into_iter()
                        .filter(|k| !fresh.contains(k.as_str()))
                        .collect()
                };
                for (key, value) in &entries {
                    self.put(key, value).await;
                }
                for key in &stale {
                    self.delete(key).await;
                }
                *lock(&self.invokers) = reports;
            }
            WatchEvent::Put { key, value, .. } => {
                self.put(&key, &value).await;
                if key.starts_with(&self.invokers_prefix) {
                    let mut invokers = lock(&self.invokers);
                    match reader.parse_invoker(&key, &value) {
                        Some(report) => invokers.insert(key, report),
                        None => invokers.remove(&key),
                    };
                }
            }
            WatchEvent::Delete { key, .. } => {
                self.delete(&key).await;
                lock(&self.invokers).remove(&key);
            }
        }
        self.applied.send_modify(|applied| *applied += 1);
    }

    async fn put(&self, key: &str, value: &str) {
        // The in-memory map never fails; the port's signature can.
        if let Err(e) = self.state.put(key, value).await {
            tracing::warn!(key, error = %e.0, "the cluster mirror could not set a key");
        }
    }

    async fn delete(&self, key: &str) {
        if let Err(e) = self.state.delete(key).await {
            tracing::warn!(key, error = %e.0, "the cluster mirror could not remove a key");
        }
    }
}
