//! The writer thread: the one connection that writes, and group commit.
//!
//! Every write is a [`Request`] on a channel; the thread takes the first,
//! then everything else already queued (at most [`MAX_BATCH`]), runs them in
//! ONE `BEGIN IMMEDIATE` transaction, commits, applies their [effects](Effect)
//! on the in-memory caches in commit order, and only then replies. So a
//! caller's "stored" means committed, and the caches never run ahead of
//! (or fall behind) the file.
//!
//! A write either succeeds, or is refused by the data (`Exists`, a corrupt
//! row): both are replies and the transaction goes on. A *SQLite* failure
//! (disk full, I/O error, another process holding the lock past the busy
//! timeout) rolls the whole batch back; each of its writes is then retried
//! alone in its own transaction, so only the writes that fail by themselves
//! get an error. The thread survives every failure and runs until the last
//! [`Database`](super::Database) clone is dropped.
//!
//! Once a second (and when idle) the thread does its housekeeping: it notices
//! commits made by another process (`PRAGMA data_version`: the CLI deleting
//! a namespace) and drops its caches, and — in the process that holds the
//! data dir's lock — enforces retention.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use super::activations::{self, PendingRow, RecordRow};
use super::cache::{ActionCache, AuthCache};
use super::retention::{self, Usages};
use super::{DbError, PutOutcome, actions, namespaces, schema};
use wasmwhisk_core::config::StoreConfig;
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_protocol::EntityName;

/// Most writes committed by one transaction.
pub(super) const MAX_BATCH: usize = 512;

/// Period of the housekeeping (foreign commits, retention).
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// One write.
pub(super) enum Write {
    /// Store a new revision of an action.
    PutAction {
        /// The action (its revision, version and `updated` are assigned).
        action: Box<ExecutableAction>,
        /// Whether an existing action may be replaced.
        overwrite: bool,
    },
    /// Delete every revision of the action with this document id.
    DeleteAction {
        /// `ns[/pkg]/act`.
        doc: String,
    },
    /// Journal an accepted activation.
    Accepted(PendingRow),
    /// Store an activation record (and clear its journal entry).
    Store(RecordRow),
    /// Create a namespace.
    CreateNamespace {
        /// Its name.
        name: EntityName,
        /// Succeed with `Created(None)` when it exists, rather than `Exists`.
        if_absent: bool,
    },
    /// Delete a namespace, its actions and its activations.
    DeleteNamespace {
        /// Its name.
        name: String,
    },
}

/// What a committed write answers.
#[derive(Debug)]
pub(super) enum Done {
    /// [`Write::PutAction`].
    Put(PutOutcome),
    /// [`Write::DeleteAction`]: the latest revision, if there was one.
    Deleted(Option<Arc<ExecutableAction>>),
    /// [`Write::Accepted`], [`Write::Store`].
    Written,
    /// [`Write::CreateNamespace`]: the new credentials (`None`: existed).
    Created(Option<super::Credentials>),
    /// [`Write::DeleteNamespace`]: whether it existed.
    NamespaceDeleted(bool),
}

/// Called once with the outcome, after the commit.
pub(super) type Reply = Box<dyn FnOnce(Result<Done, DbError>) + Send>;

/// A write and whom to tell.
pub(super) struct Request {
    /// The write.
    pub write: Write,
    /// The reply.
    pub reply: Reply,
}

/// A write's outcome inside a transaction: `Err` aborts the transaction,
/// `Ok(Err)` is a refusal that leaves it going.
pub(super) type Applied = rusqlite::Result<Result<Done, DbError>>;

/// What a write changes outside the file, applied once it is committed.
pub(super) enum Effect {
    /// The action `doc` now has this latest revision.
    CacheAction(String, Arc<ExecutableAction>),
    /// The action `doc` is gone.
    ForgetAction(String),
    /// Some actions are gone (a namespace was deleted).
    ForgetAllActions,
    /// The key of this uuid is gone.
    ForgetAuth(String),
    /// Activation records of `namespace` added (or, negative, removed).
    Records {
        /// Whose records.
        namespace: String,
        /// How many.
        records: i64,
        /// The bytes of their stored JSON.
        bytes: i64,
    },
}

/// Starts the writer thread on `conn`. `lock` is the data dir's lock when
/// this process holds it (then it does retention); otherwise the thread
/// tries to take it at every housekeeping.
pub(super) fn spawn(
    conn: Connection,
    db_path: PathBuf,
    lock: Option<File>,
    lock_path: PathBuf,
    config: StoreConfig,
    actions: Arc<ActionCache>,
    auth: Arc<AuthCache>,
) -> Result<(mpsc::Sender<Request>, JoinHandle<()>), DbError> {
    let usage = retention::usage(&conn)?;
    let data_version = schema::data_version(&conn)?;
    let mut writer = Writer {
        conn,
        lock,
        lock_path,
        config,
        actions,
        auth,
        usage,
        data_version,
        next_housekeeping: Instant::now(),
        checkpointer: None,
    };
    writer.housekeeping();
    let (stop, stopped) = mpsc::channel::<()>();
    writer.checkpointer = Some(stop);
    spawn_checkpointer(db_path, stopped)?;
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("wasmwhisk-db-writer".into())
        .spawn(move || writer.run(&rx))
        .map_err(|e| DbError::Internal(format!("starting the database writer: {e}")))?;
    Ok((tx, thread))
}

/// The writer thread's state.
struct Writer {
    /// The only connection of this process that writes.
    conn: Connection,
    /// The data dir's lock, when this process holds it.
    lock: Option<File>,
    /// Where the lock is.
    lock_path: PathBuf,
    /// Retention bounds.
    config: StoreConfig,
    /// Updated after each commit, in commit order.
    actions: Arc<ActionCache>,
    /// Entries dropped when a namespace goes.
    auth: Arc<AuthCache>,
    /// Each namespace's rows in `activations` and their bytes as of our
    /// last commit (recounted when another process commits), so retention
    /// decides what is over its bounds without reading the table.
    usage: Usages,
    /// `PRAGMA data_version` at the last housekeeping: it changes only when
    /// another connection (another process) commits.
    data_version: i64,
    /// When housekeeping is next due.
    next_housekeeping: Instant,
    /// Dropped with the writer: stops the checkpointer thread.
    checkpointer: Option<mpsc::Sender<()>>,
}

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the WAL from its own thread and connection (`PASSIVE`: it
/// never blocks the writer or readers), so that the writer's commits do not
/// stall on a checkpoint's copying and `fsync` — SQLite's automatic
/// checkpoint runs inside the committing thread. The writer's automatic
/// checkpoint stays on at 256 MB as a backstop. Stops when `stopped`'s
/// sender (held by the writer) is dropped.
fn spawn_checkpointer(path: PathBuf, stopped: mpsc::Receiver<()>) -> Result<(), DbError> {
    let conn = Connection::open(&path)
        .map_err(|e| DbError::Internal(format!("{}: {e}", path.display())))?;
    std::thread::Builder::new()
        .name("wasmwhisk-db-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "checkpointing the database failed; retrying");
                }
            }
        })
        .map_err(|e| DbError::Internal(format!("starting the database checkpointer: {e}")))?;
    Ok(())
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let wait = self
                .next_housekeeping
                .saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(first) => batch.push(first),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
            if Instant::now() >= self.next_housekeeping {
                self.housekeeping();
            }
        }
        tracing::debug!("database writer stopped");
    }

    /// Runs `batch` in one transaction (or, if it fails, one by one) and
    /// replies to every request.
    fn commit(&mut self, batch: &mut Vec<Request>) {
        let mut effects = Vec::new();
        match run_batch(&mut self.conn, batch, &mut effects) {
            Ok(outcomes) => {
                self.apply(effects);
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    (request.reply)(outcome);
                }
            }
            Err(error) if batch.len() == 1 => {
                for request in batch.drain(..) {
                    (request.reply)(Err(DbError::Internal(error.to_string())));
                }
            }
            Err(error) => {
                tracing::warn!(%error, writes = batch.len(), "database batch failed; retrying its writes one by one");
                for request in batch.drain(..) {
                    let mut one = vec![request];
                    let mut effects = Vec::new();
                    let outcome = run_batch(&mut self.conn, &one, &mut effects);
                    let Some(request) = one.pop() else { continue };
                    match outcome {
                        Ok(mut outcomes) => {
                            self.apply(effects);
                            let outcome = outcomes.pop().unwrap_or_else(|| {
                                Err(DbError::Internal("a write had no outcome".into()))
                            });
                            (request.reply)(outcome);
                        }
                        Err(error) => (request.reply)(Err(DbError::Internal(error.to_string()))),
                    }
                }
            }
        }
    }

    /// Applies committed effects.
    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::CacheAction(doc, action) => self.actions.set(doc, action),
                Effect::ForgetAction(doc) => self.actions.remove(&doc),
                Effect::ForgetAllActions => self.actions.clear(),
                Effect::ForgetAuth(uuid) => self.auth.forget(&uuid),
                Effect::Records {
                    namespace,
                    records,
                    bytes,
                } => retention::change(&mut self.usage, namespace, records, bytes),
            }
        }
    }

    /// Foreign commits, the lock, retention.
    fn housekeeping(&mut self) {
        self.next_housekeeping = Instant::now() + HOUSEKEEPING;
        match schema::data_version(&self.conn) {
            Ok(version) if version != self.data_version => {
                // Another process committed: what we cached may be stale.
                self.data_version = version;
                self.actions.clear();
                self.auth.clear();
                match retention::usage(&self.conn) {
                    Ok(usage) => self.usage = usage,
                    Err(error) => tracing::warn!(%error, "recounting activation records failed"),
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reading the database's data version failed"),
        }
        if self.lock.is_none() {
            // The process that held it stopped: retention is ours now (never
            // recovery: its journal may belong to a live server's).
            self.lock = schema::try_lock(&self.lock_path).ok().flatten();
        }
        if self.lock.is_some()
            && let Err(error) = retention::enforce(&mut self.conn, &self.config, &mut self.usage)
        {
            tracing::warn!(%error, "activation retention failed");
        }
    }
}

/// Runs `batch` in one transaction: the outcome of each write, or the
/// SQLite error that rolled everything back.
fn run_batch(
    conn: &mut Connection,
    batch: &[Request],
    effects: &mut Vec<Effect>,
) -> rusqlite::Result<Vec<Result<Done, DbError>>> {
    // An activation accepted and completed within one batch needs no
    // journal row: its record commits in the same transaction the row would.
    // Under load most are; this halves the writes per activation.
    let stored: std::collections::HashSet<&str> = batch
        .iter()
        .filter_map(|request| match &request.write {
            Write::Store(row) => Some(row.id()),
            _ => None,
        })
        .collect();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        outcomes.push(match &request.write {
            Write::Accepted(row) if stored.contains(row.id()) => Ok(Done::Written),
            write => apply(&tx, write, effects)?,
        });
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Runs one write inside the open transaction.
fn apply(conn: &Connection, write: &Write, effects: &mut Vec<Effect>) -> Applied {
    match write {
        Write::PutAction { action, overwrite } => actions::put(conn, action, *overwrite, effects),
        Write::DeleteAction { doc } => actions::delete(conn, doc, effects),
        Write::Accepted(row) => activations::insert_pending(conn, row),
        Write::Store(row) => activations::insert_record(conn, row, effects),
        Write::CreateNamespace { name, if_absent } => namespaces::create(conn, name, *if_absent),
        Write::DeleteNamespace { name } => namespaces::delete(conn, name, effects),
    }
}
