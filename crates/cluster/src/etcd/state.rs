//! [`EtcdClusterState`]: the pool's [`ClusterState`] port over etcd, and the
//! handle the invoker keeps to shut it down.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use etcd_client::{Client, GetOptions};
use tokio::sync::{Notify, mpsc, oneshot};

use super::book::{Book, Phase};
use super::session::{self, Command};
use super::{EtcdSettings, Task};
use wasmwhisk_core::pool::ports::{ClusterError, ClusterState};
use wasmwhisk_core::sync::lock;
use wasmwhisk_protocol::EtcdKeys;

/// What the session and the handle share.
pub(super) struct Shared {
    /// The keys and pending writes. A `std` mutex: every section is a few
    /// map operations and never awaits.
    pub book: Mutex<Book>,
    /// The client of the session while it is online (reads go through it);
    /// `None` while offline.
    pub client: Mutex<Option<Client>>,
    /// Wakes the session when a write is recorded.
    pub wake: Notify,
    /// Connection and timing.
    pub settings: EtcdSettings,
    /// `{cluster}/instance/{instance}/lease`.
    pub lease_key: String,
    /// Counters, for logs and metrics.
    pub counters: Counters,
}

/// Monotonic counters of the session.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub leases: AtomicU64,
    pub outages: AtomicU64,
    pub transactions: AtomicU64,
    pub failed_transactions: AtomicU64,
}

/// A snapshot of the session, for tests, logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdStats {
    /// Connected under a live lease with every key written.
    pub online: bool,
    /// The current lease, while online.
    pub lease: Option<i64>,
    /// Keys held, the lease key included.
    pub held: usize,
    /// Keys still to be written (or deleted).
    pub pending: usize,
    /// Leases granted so far (1 after connecting, +1 per reconnect).
    pub leases: u64,
    /// Times etcd was lost.
    pub outages: u64,
    /// Write transactions sent (each carries up to 64 keys).
    pub transactions: u64,
    /// Write transactions that failed.
    pub failed_transactions: u64,
}

/// The invoker's keys in etcd, all under one lease (docs/openwhisk.md §4.2): the
/// lease key `{cluster}/instance/{instance}/lease` = lease id, and whatever
/// the pool puts (`invokers/{N}`, container keys).
///
/// Online, `put` and `delete` return once etcd has the write; while etcd is
/// away they return a [`ClusterError`] at once and the write is made when
/// etcd is back (latest value wins), under a new lease with every other
/// held key. Dropping the handle aborts the session without revoking: the
/// keys expire one TTL later, as after a crash. [`shutdown`](Self::shutdown)
/// revokes the lease so they vanish at once.
pub struct EtcdClusterState {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    /// The session task; aborted with the handle.
    _session: Task<()>,
}

impl fmt::Debug for EtcdClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdClusterState")
            .field("lease_key", &self.shared.lease_key)
            .field("stats", &self.stats())
            .finish()
    }
}

impl EtcdClusterState {
    /// Connects to etcd, grants a lease of `settings.lease_ttl`, writes the
    /// lease key of `instance` (`invoker0`, …; its `Display` is OpenWhisk's
    /// `toString`) and starts keeping the lease alive. Fails if etcd cannot
    /// be reached now; later outages are ridden out.
    pub async fn connect(
        settings: EtcdSettings,
        keys: &EtcdKeys,
        instance: &dyn fmt::Display,
    ) -> Result<Self, ClusterError> {
        let shared = Arc::new(Shared {
            book: Mutex::new(Book::default()),
            client: Mutex::new(None),
            wake: Notify::new(),
            lease_key: keys.instance_lease(instance),
            settings,
            counters: Counters::default(),
        });
        let online = session::Session::establish(&shared, None).await?;
        let (commands, receiver) = mpsc::channel(1);
        let task = Task::spawn(session::run(shared.clone(), online, receiver));
        Ok(EtcdClusterState {
            shared,
            commands,
            _session: task,
        })
    }

    /// The lease key this process holds.
    pub fn lease_key(&self) -> &str {
        &self.shared.lease_key
    }

    /// The keys held and their latest values (what etcd has, or will have
    /// once it is back).
    pub fn held(&self) -> BTreeMap<String, String> {
        lock(&self.shared.book).held().clone()
    }

    /// Where the session is.
    pub fn stats(&self) -> EtcdStats {
        let (online, lease, held, pending) = {
            let book = lock(&self.shared.book);
            (
                book.phase() == Phase::Online,
                book.lease(),
                book.held().len(),
                book.pending(),
            )
        };
        let c = &self.shared.counters;
        EtcdStats {
            online,
            lease,
            held,
            pending,
            leases: c.leases.load(Ordering::Relaxed),
            outages: c.outages.load(Ordering::Relaxed),
            transactions: c.transactions.load(Ordering::Relaxed),
            failed_transactions: c.failed_transactions.load(Ordering::Relaxed),
        }
    }

    /// Writes what is still pending (the pool's `down` report goes through
    /// [`put`](ClusterState::put) first), then revokes the lease: every key
    /// vanishes at once. Later writes are refused. If etcd is away, nothing
    /// can be written and the keys expire one TTL later; that is the error
    /// returned. Calling it again returns `Ok`.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_err() {
            return Ok(());
        }
        let limit = self.shared.settings.request_timeout.saturating_mul(3);
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClusterError("the etcd session ended".into())),
            Err(_) => Err(ClusterError(format!(
                "etcd shutdown did not finish within {limit:?}; the keys expire with the lease"
            ))),
        }
    }

    async fn write(&self, key: &str, value: Option<&str>) -> Result<(), ClusterError> {
        let answer = lock(&self.shared.book).record(key, value)?;
        self.shared.wake.notify_one();
        // The session answers every waiter (written, failed, or offline);
        // the bound only guards against a session that died.
        let limit = self.shared.settings.request_timeout.saturating_mul(2);
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClusterError("the etcd session ended".into())),
            Err(_) => Err(ClusterError(format!(
                "etcd did not take the write of {key} within {limit:?}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl ClusterState for EtcdClusterState {
    async fn put(&self, key: &str, value: &str) -> Result<(), ClusterError> {
        self.write(key, Some(value)).await
    }

    async fn delete(&self, key: &str) -> Result<(), ClusterError> {
        self.write(key, None).await
    }

    async fn count_prefix(&self, prefix: &str) -> Result<usize, ClusterError> {
        let client = lock(&self.shared.client).clone();
        let Some(mut client) = client else {
            return Err(ClusterError(format!(
                "etcd is away; cannot count the keys under {prefix}"
            )));
        };
        let options = GetOptions::new().with_prefix().with_count_only();
        let response = self
            .shared
            .settings
            .timed("counting keys", client.get(prefix, Some(options)))
            .await?;
        Ok(usize::try_from(response.count()).unwrap_or(0))
    }
}
