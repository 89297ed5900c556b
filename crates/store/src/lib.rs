//! The embedded database of standalone mode: namespaces and their keys,
//! actions (the latest two revisions of each), activation records with
//! bounded retention, and the journal of accepted activations.
//!
//! # Why SQLite (via `rusqlite`, bundled)
//! It is the most deployed embedded database there is, and it gives the three
//! things standalone mode needs without a server:
//! - **Crash safety.** In WAL mode every committed transaction survives a
//!   process crash (`kill -9`): the commit is in the WAL file before the
//!   call returns. With `synchronous=NORMAL` no commit waits for an fsync; a
//!   *power loss* may lose the last commits, but never corrupts the file.
//! - **Queries.** The activation list (`name`, `since`/`upto`, `limit`/`skip`,
//!   newest first) is one indexed SQL query, and so is retention by age and
//!   count ([`retention`]: per namespace, and a byte budget).
//! - **Concurrent readers.** WAL lets reads run beside the writer, and lets
//!   the `wasmwhisk namespace` command (another process) write the same file.
//!
//! # Shape
//! ```text
//!  async callers ──Request{write, reply}──▶ mpsc ──▶ writer thread (one connection)
//!       ▲                                              │ takes ≤ 512 queued writes,
//!       └────────────── reply after COMMIT ────────────┘ runs them in ONE transaction
//!
//!  reads ──spawn_blocking──▶ a small pool of read connections (WAL snapshots)
//!  hot path: authenticate → moka cache (5 s TTL); get_action → latest-revision cache
//! ```
//! **Group commit** ([`writer`]) is what lets ~10,000 records/s be stored on
//! two cores: one commit covers everything that queued while the previous
//! one ran. "Stored" always means committed: an async write returns only
//! once its transaction did. A failed transaction is rolled back and its
//! writes retried one per transaction, so one bad write fails alone.
//!
//! # Revisions
//! A put makes revision `"{generation}-{32 hex}"`; generations only grow
//! (a re-created action continues after the deleted one's, as CouchDB's do).
//! Only the **latest two revisions** of an action are kept: an activation
//! still queued for an older one finds no code and fails with OpenWhisk's
//! `DBFetchError` ("an error happens while fetching data from DB"). Concurrent
//! puts of one action are serialized by the writer: each gets its own
//! successive revision, the last writer wins.
//!
//! # Crash recovery
//! [`Database::open`] turns every journaled-but-unrecorded activation into a
//! record with a whisk internal error, so an activation in flight at a crash
//! is reported, not forgotten. Only the process that holds the data dir's
//! lock (`{db}.lock`, an OS file lock released on exit, even `kill -9`) does
//! recovery and retention: the CLI opening the file beside a running server
//! must not fail the server's in-flight activations.

mod actions;
mod activations;
mod cache;
mod entity;
mod namespaces;
mod ports;
mod readers;
mod retention;
mod schema;
mod writer;

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use wasmwhisk_core::config::StoreConfig;
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_protocol::{
    ActivationId, EntityPath, FullyQualifiedEntityName, Identity, WhiskActivation,
};

use activations::RecordRow;
use cache::{ActionCache, AuthCache};
use readers::Readers;
use writer::{Done, Reply, Request, Write};

pub use activations::RECOVERED_MESSAGE;
// The port this crate implements, with its types, under the names the
// application has always used for them.
pub use wasmwhisk_core::entities::{
    ActivationQuery, Credentials, DbError, EntityStore, NamespaceInfo, NewAction, PutOutcome,
    Recovery, generate_key, hash_key, key_matches, valid_name,
};

/// The database. Cheap to clone; the last clone dropped stops the writer
/// after it committed everything queued.
#[derive(Clone, Debug)]
pub struct Database {
    inner: Arc<Inner>,
}

/// What every clone shares.
struct Inner {
    /// The writer's queue; `None` only while dropping (so the writer sees
    /// the channel close before we join it).
    writes: Option<mpsc::Sender<Request>>,
    /// The writer thread, joined on drop.
    thread: Option<JoinHandle<()>>,
    /// Read connections.
    readers: Arc<Readers>,
    /// Latest revision of each action read or written by this process.
    actions: Arc<ActionCache>,
    /// Positive authentications, for 5 s.
    auth: Arc<AuthCache>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.readers.path())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.writes.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the database writer thread panicked");
        }
    }
}

impl Database {
    /// Opens (creating) the database file `path`; records accepted
    /// activations left without a record as failed — only when no other
    /// process holds the database (see the module doc); otherwise this is a
    /// secondary handle (the CLI's) that neither recovers nor enforces
    /// retention.
    pub fn open(path: &Path, config: &StoreConfig) -> Result<(Database, Recovery), DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Internal(format!("creating {}: {e}", dir.display())))?;
        }
        let lock = schema::try_lock(path)?;
        let mut conn = schema::open_writer(path)?;
        let recovery = if lock.is_some() {
            activations::recover(&mut conn)?
        } else {
            tracing::info!(path = %path.display(), "database in use by another process: not recovering");
            Recovery::default()
        };
        if recovery.failed_activations > 0 {
            tracing::warn!(
                count = recovery.failed_activations,
                "activations in flight at the last stop recorded as failed"
            );
        }
        let actions = Arc::new(ActionCache::default());
        let auth = Arc::new(AuthCache::new());
        let (writes, thread) = writer::spawn(
            conn,
            path.to_path_buf(),
            lock,
            schema::lock_path(path),
            config.clone(),
            actions.clone(),
            auth.clone(),
        )?;
        let db = Database {
            inner: Arc::new(Inner {
                writes: Some(writes),
                thread: Some(thread),
                readers: Arc::new(Readers::new(path.to_path_buf())),
                actions,
                auth,
            }),
        };
        Ok((db, recovery))
    }

    /// Queues `write`; `reply` is called once it is committed (or failed).
    fn submit(&self, write: Write, reply: Reply) {
        let request = Request { write, reply };
        let sent = match &self.inner.writes {
            Some(writes) => writes.send(request).map_err(|e| e.0),
            None => Err(request),
        };
        if let Err(request) = sent {
            (request.reply)(Err(DbError::Internal(
                "the database writer has stopped".into(),
            )));
        }
    }

    /// Queues `write` and waits for its commit.
    async fn write(&self, write: Write) -> Result<Done, DbError> {
        let (tx, rx) = oneshot::channel();
        self.submit(
            write,
            Box::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
        );
        rx.await
            .map_err(|_| DbError::Internal("the database writer dropped a write".into()))?
    }

    /// Queues `write` and blocks the thread until its commit (for the sync
    /// admin calls; fine inside a runtime too, they are rare).
    fn write_blocking(&self, write: Write) -> Result<Done, DbError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            write,
            Box::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
        );
        rx.recv()
            .map_err(|_| DbError::Internal("the database writer dropped a write".into()))?
    }

    /// Runs `read` on a read connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let readers = self.inner.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(read))
            .await
            .map_err(|e| DbError::Internal(format!("a database read failed: {e}")))?
    }

    /// Creates namespace `name` with a fresh key; `Exists` if it exists,
    /// `Invalid` if `name` is not an entity name.
    pub fn create_namespace(&self, name: &str) -> Result<Credentials, DbError> {
        let name = valid_name(name)?;
        match self.write_blocking(Write::CreateNamespace {
            name,
            if_absent: false,
        })? {
            Done::Created(Some(credentials)) => Ok(credentials),
            Done::Created(None) => Err(DbError::Exists),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates namespace `name` only if it does not exist: `Some` with the
    /// new credentials when it was just created.
    pub fn ensure_namespace(&self, name: &str) -> Result<Option<Credentials>, DbError> {
        let name = valid_name(name)?;
        match self.write_blocking(Write::CreateNamespace {
            name,
            if_absent: true,
        })? {
            Done::Created(created) => Ok(created),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes namespace `name`, its key, its actions and its activation
    /// records; false if absent. A server using the same file (another
    /// process) stops accepting the key within a second (at most
    /// [`cache::AUTH_TTL`]).
    pub fn delete_namespace(&self, name: &str) -> Result<bool, DbError> {
        match self.write_blocking(Write::DeleteNamespace {
            name: name.to_string(),
        })? {
            Done::NamespaceDeleted(existed) => Ok(existed),
            other => Err(unexpected(&other)),
        }
    }

    /// Every namespace, by name.
    pub fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, DbError> {
        self.inner.readers.with(namespaces::list)
    }

    /// The identity of API key `uuid:key`; `None` when it is not valid.
    /// Keys that authenticated are cached for [`cache::AUTH_TTL`]; only the
    /// same key finds its entry. Every other check — an unknown uuid, a
    /// wrong key, a key not used lately — reads the uuid's row and compares
    /// one hash ([`key_matches`]), so a wrong key costs the same
    /// whether or not its uuid exists.
    pub async fn authenticate(&self, uuid: &str, key: &str) -> Result<Option<Identity>, DbError> {
        let hash = hash_key(key);
        if let Some(known) = self.inner.auth.get(uuid, &hash) {
            return Ok(Some(Identity::basic(&known.namespace, uuid, key)));
        }
        let uuid_s = uuid.to_string();
        let found = self
            .read(move |conn| namespaces::lookup(conn, &uuid_s))
            .await?;
        if !key_matches(found.as_ref().map(|k| &k.hash), &hash) {
            return Ok(None);
        }
        let Some(known) = found else {
            return Ok(None);
        };
        self.inner.auth.remember(uuid.to_string(), known.clone());
        Ok(Some(Identity::basic(&known.namespace, uuid, key)))
    }

    /// Stores an action (a new revision when it exists and `overwrite`;
    /// `Exists` when it exists and not `overwrite`).
    pub async fn put_action(&self, new: NewAction, overwrite: bool) -> Result<PutOutcome, DbError> {
        match self
            .write(Write::PutAction {
                action: Box::new(new.action),
                overwrite,
            })
            .await?
        {
            Done::Put(outcome) => Ok(outcome),
            other => Err(unexpected(&other)),
        }
    }

    /// The latest revision of `fqn` (from memory after the first read).
    pub async fn get_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        let doc = fqn.as_string_without_version();
        let epoch = match self.inner.actions.get(&doc) {
            Ok(action) => return Ok(Some(action)),
            Err(epoch) => epoch,
        };
        let doc_r = doc.clone();
        let Some(action) = self.read(move |conn| actions::latest(conn, &doc_r)).await? else {
            return Ok(None);
        };
        let action = Arc::new(action);
        self.inner.actions.fill(doc, action.clone(), epoch);
        Ok(Some(action))
    }

    /// The latest revision of every action in `namespace` (every action of
    /// a namespace, packaged ones too; or those of a package `ns/pkg`), by
    /// name, without their code (`code` empty).
    pub async fn list_actions(
        &self,
        namespace: &EntityPath,
        limit: usize,
        skip: usize,
    ) -> Result<Vec<Arc<ExecutableAction>>, DbError> {
        let path = namespace.clone();
        let list = self
            .read(move |conn| actions::list(conn, &path, limit, skip))
            .await?;
        Ok(list.into_iter().map(Arc::new).collect())
    }

    /// Deletes every revision of `fqn`; returns the latest one.
    pub async fn delete_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        match self
            .write(Write::DeleteAction {
                doc: fqn.as_string_without_version(),
            })
            .await?
        {
            Done::Deleted(old) => Ok(old),
            other => Err(unexpected(&other)),
        }
    }

    /// Journals an accepted activation (durable when this returns): until
    /// its record is stored, a restart records it as failed. The journal
    /// keeps the message without its `content` and without the caller's key.
    /// The server journals through
    /// [`Journal::accepted`](wasmwhisk_core::controller::Journal), which queues the
    /// write before returning; this awaiting form is for tests.
    #[cfg(test)]
    pub(crate) async fn accepted(
        &self,
        msg: &wasmwhisk_protocol::ActivationMessage,
        kind: &str,
    ) -> Result<(), DbError> {
        self.write(Write::Accepted(activations::PendingRow::new(msg, kind)?))
            .await
            .map(drop)
    }

    /// Stores `activation` (replacing a record of the same id) and clears its
    /// journal entry, in one transaction; returns once committed.
    pub async fn store_activation(&self, activation: &WhiskActivation) -> Result<(), DbError> {
        self.write(Write::Store(RecordRow::new(activation)?))
            .await
            .map(drop)
    }

    /// The record `id` if it belongs to `namespace`.
    pub async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, DbError> {
        let namespace = namespace.to_string();
        let id = id.as_str().to_string();
        self.read(move |conn| activations::get(conn, Some(&namespace), &id))
            .await
    }

    /// Records of `namespace`, newest first.
    pub async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, DbError> {
        let namespace = namespace.to_string();
        let query = query.clone();
        self.read(move |conn| activations::list(conn, &namespace, &query))
            .await
    }

    /// How many activation records are stored (for metrics and tests).
    pub async fn activation_count(&self) -> Result<u64, DbError> {
        self.read(activations::count).await
    }
}

/// A reply of the wrong kind: a bug, reported rather than panicking.
fn unexpected(done: &Done) -> DbError {
    DbError::Internal(format!("unexpected database reply {done:?}"))
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod actions_tests;
#[cfg(test)]
#[path = "activations_tests.rs"]
mod activations_tests;
#[cfg(test)]
#[path = "namespaces_tests.rs"]
mod namespaces_tests;
#[cfg(test)]
mod test_support;

/// SQLite's errors as the port's: a `rusqlite` result becomes
/// [`DbError::Internal`] (the port's error type, in the core crate, cannot
/// name SQLite).
pub(crate) trait Sql<T> {
    /// The result with SQLite's error as a [`DbError`].
    fn db(self) -> Result<T, DbError>;
}

impl<T> Sql<T> for Result<T, rusqlite::Error> {
    fn db(self) -> Result<T, DbError> {
        self.map_err(|e| DbError::Internal(e.to_string()))
    }
}
