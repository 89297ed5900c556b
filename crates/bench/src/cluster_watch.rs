//! What `wasmwhisk bench cluster` sees of the invokers in etcd: a watch of
//! `{cluster}/invokers/` — the prefix the controllers choose invokers from
//! — that stamps every change with the moment it arrived, so a row can ask
//! "when did invoker N first say `up` after it was spawned" or "when did
//! its key go after it was killed". Also the sandboxes' keys of an action,
//! to see which invoker ran it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::watch;

use wasmwhisk_cluster::etcd::{EtcdReader, EtcdSettings, WatchEvent};
use wasmwhisk_core::sync::lock;
use wasmwhisk_protocol::{ContainerKeyKind, EtcdKeys, FullyQualifiedEntityName};

/// Changes kept per invoker (the oldest are dropped).
const HISTORY: usize = 10_000;

/// One change of an invoker's key: its status (`None`: the key was
/// deleted) and when the bench saw it.
#[derive(Clone, Debug)]
struct Change {
    status: Option<String>,
    at: Instant,
}

/// The changes seen so far, per invoker number.
type History = BTreeMap<u32, VecDeque<Change>>;

/// A watch of every invoker's report key.
pub(super) struct InvokerWatch {
    reader: EtcdReader,
    history: Arc<Mutex<History>>,
    changed: watch::Receiver<u64>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for InvokerWatch {
    fn drop(&mut self) {
        self._task.abort();
    }
}

impl InvokerWatch {
    /// Starts watching the invokers of cluster `whisk` at `endpoint`, on
    /// `runtime`; returns once the watch has its first snapshot.
    pub(super) fn start(runtime: &tokio::runtime::Runtime, endpoint: &str) -> Result<InvokerWatch> {
        let settings = EtcdSettings {
            endpoints: vec![endpoint.to_string()],
            ..EtcdSettings::default()
        };
        let keys = EtcdKeys::default();
        let prefix = format!("{}/", keys.invokers_prefix());
        let reader = runtime
            .block_on(EtcdReader::new(settings, keys))
            .context("connecting to etcd")?;
        let history = Arc::new(Mutex::new(History::new()));
        let (tx, changed) = watch::channel(0u64);
        let mut events = {
            let _guard = runtime.enter();
            reader.watch_prefix(&prefix)
        };
        let (task_reader, task_history) = (reader.clone(), history.clone());
        let task = runtime.spawn(async move {
            let mut n = 0u64;
            while let Some(event) = events.next().await {
                let at = Instant::now();
                record(&task_reader, &task_history, event, at);
                n += 1;
                let _ = tx.send(n);
            }
        });
        let watch = InvokerWatch {
            reader,
            history,
            changed,
            _task: task,
        };
        let mut first = watch.changed.clone();
        runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), first.wait_for(|n| *n > 0)).await
            })
            .context("etcd gave the invokers' watch no snapshot within 10 s")?
            .context("the invokers' watch stopped")?;
        Ok(watch)
    }

    /// When invoker `n`'s key first said `status` (`None`: was deleted) at
    /// or after `since`; waits for it at most `within`.
    pub(super) fn wait(
        &self,
        runtime: &tokio::runtime::Runtime,
        n: u32,
        status: Option<&str>,
        since: Instant,
        within: Duration,
    ) -> Result<Instant> {
        let mut changed = self.changed.clone();
        let found = || {
            lock(&self.history).get(&n).and_then(|changes| {
                changes
                    .iter()
                    .find(|c| c.at >= since && c.status.as_deref() == status)
                    .map(|c| c.at)
            })
        };
        let waited = runtime.block_on(async {
            tokio::time::timeout(within, async {
                loop {
                    if let Some(at) = found() {
                        return Ok(at);
                    }
                    if changed.changed().await.is_err() {
                        bail!("the invokers' watch stopped");
                    }
                }
            })
            .await
        });
        match waited {
            Ok(result) => result,
            Err(_) => {
                let last = lock(&self.history)
                    .get(&n)
                    .and_then(|c| c.back().cloned())
                    .map(|c| c.status.unwrap_or_else(|| "deleted".into()));
                let wanted = status.unwrap_or("deleted");
                bail!(
                    "invoker{n}'s key in etcd was not {wanted} within {within:?} (last seen: {})",
                    last.unwrap_or_else(|| "never".into())
                )
            }
        }
    }

    /// The invokers holding a live or paused sandbox of the guest's action
    /// `name` (the sandboxes' keys in etcd).
    pub(super) fn holders(
        &self,
        runtime: &tokio::runtime::Runtime,
        name: &str,
    ) -> Result<BTreeSet<u32>> {
        Ok(self.sandboxes(runtime, name)?.into_keys().collect())
    }

    /// How many live or paused sandboxes of the guest's action `name` each
    /// invoker holds (the sandboxes' keys in etcd).
    pub(super) fn sandboxes(
        &self,
        runtime: &tokio::runtime::Runtime,
        name: &str,
    ) -> Result<BTreeMap<u32, usize>> {
        let keys = self.reader.keys();
        let action: FullyQualifiedEntityName = format!("guest/{name}")
            .parse()
            .with_context(|| format!("the action name {name:?}"))?;
        let mut found = BTreeMap::new();
        for kind in [ContainerKeyKind::Existing, ContainerKeyKind::Warmed] {
            let prefix = keys
                .containers_prefix(kind, "guest", &action, None)
                .context("an action's keys")?;
            let listing = runtime
                .block_on(self.reader.list_prefix(&prefix))
                .context("listing sandboxes in etcd")?;
            for (key, _) in &listing.entries {
                if let Ok(parsed) = keys.parse_container_key(key) {
                    *found.entry(parsed.invoker).or_default() += 1;
                }
            }
        }
        Ok(found)
    }
}

/// Adds `event` to `history`.
fn record(reader: &EtcdReader, history: &Mutex<History>, event: WatchEvent, at: Instant) {
    let mut history = lock(history);
    let mut push = |n: u32, status: Option<String>| {
        let changes = history.entry(n).or_default();
        if changes.len() >= HISTORY {
            changes.pop_front();
        }
        changes.push_back(Change { status, at });
    };
    match event {
        WatchEvent::Snapshot { entries, .. } => {
            for (key, value) in entries {
                if let Some(report) = reader.parse_invoker(&key, &value) {
                    push(
                        report.instance,
                        Some(report.resource.status.as_str().into()),
                    );
                }
            }
        }
        WatchEvent::Put { key, value, .. } => {
            if let Some(report) = reader.parse_invoker(&key, &value) {
                push(
                    report.instance,
                    Some(report.resource.status.as_str().into()),
                );
            }
        }
        WatchEvent::Delete { key, .. } => {
            if let Ok((n, _, _)) = reader.keys().parse_invoker_key(&key) {
                push(n, None);
            }
        }
    }
}
