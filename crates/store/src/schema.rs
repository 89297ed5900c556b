//! The file: its schema (versioned with `PRAGMA user_version`), how every
//! connection is opened, and the data dir's lock.
//!
//! # Tables
//! | table | key | what |
//! |---|---|---|
//! | `namespaces` | `name` | `uuid` (unique), BLAKE3 of the key (never the key), created ms |
//! | `actions` | (`doc`, `generation`) | one row per kept revision: `doc` = `ns[/pkg]/act`, the `WhiskActionMetaData` JSON, the code, its compile cache key |
//! | `action_generations` | `doc` | the last generation ever given, so a re-created action continues after the deleted one |
//! | `activations` | `id` | the record JSON, with `namespace`, `name`, `path` and `start` as columns for the list query and retention |
//! | `pending` | `id` | accepted activations without a record yet: the `ActivationMessage` JSON without `content` and without the caller's key (`authkey` is `{}`), the action's kind, accepted ms |
//!
//! The code is the last column of `actions`, so reading the metadata of a
//! list never touches its overflow pages. `activations` has no index on
//! `start` alone: each index costs every insert, and retention does without
//! (by namespace and `start` for the age, by insertion order for the count).
//!
//! # Settings
//! WAL, `synchronous=NORMAL` (see the parent module), and a WAL
//! auto-checkpoint every 4096 pages (16 MB) instead of SQLite's 1000: a
//! checkpoint fsyncs, and the random activation ids touch many index pages
//! per commit, so the default checkpointed (and synced) every ~1000 records
//! and halved the insert rate. The WAL file is truncated back to 64 MB
//! after a checkpoint. `secure_delete=FAST` zeroes a deleted row's bytes
//! in the pages a delete rewrites anyway (no extra I/O), so what is deleted
//! does not linger in the file's live pages.

use crate::Sql;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::DbError;

/// The schema version this build writes (`PRAGMA user_version`).
pub(super) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for another one's write lock (the other
/// process's, in practice) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1 of the schema.
const SCHEMA_V1: &str = "
CREATE TABLE namespaces (
    name     TEXT PRIMARY KEY,
    uuid     TEXT NOT NULL UNIQUE,
    key_hash BLOB NOT NULL,
    created  INTEGER NOT NULL
);
CREATE TABLE actions (
    doc        TEXT NOT NULL,
    ns         TEXT NOT NULL,
    path       TEXT NOT NULL,
    name       TEXT NOT NULL,
    generation INTEGER NOT NULL,
    revision   TEXT NOT NULL,
    updated    INTEGER NOT NULL,
    document   TEXT NOT NULL,
    code_key   BLOB,
    code       BLOB NOT NULL,
    PRIMARY KEY (doc, generation)
);
CREATE INDEX actions_by_namespace ON actions (ns, name);
CREATE TABLE action_generations (
    doc        TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
CREATE TABLE activations (
    id        TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    path      TEXT,
    start     INTEGER NOT NULL,
    record    TEXT NOT NULL
);
CREATE INDEX activations_by_namespace ON activations (namespace, start);
CREATE INDEX activations_by_name ON activations (namespace, name, start);
CREATE TABLE pending (
    id       TEXT PRIMARY KEY,
    message  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    accepted INTEGER NOT NULL
);
";

/// Where the lock of database `path` is: `{path}.lock`.
pub(super) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock of database `path` if no other open database
/// holds it: the returned file holds it until dropped (or the process dies).
/// A separate file, because SQLite's own POSIX locks on the database are
/// released when *any* descriptor of it is closed.
pub(super) fn try_lock(path: &Path) -> Result<Option<File>, DbError> {
    let lock = lock_path(path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| DbError::Internal(format!("opening {}: {e}", lock.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(DbError::Internal(format!(
            "locking {}: {e}",
            lock.display()
        ))),
    }
}

/// Creates the database file readable by its owner only (SQLite gives its
/// WAL and shared-memory files the same mode), if it does not exist.
fn create_private(path: &Path) -> Result<(), DbError> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(|e| DbError::Internal(format!("creating {}: {e}", path.display())))
}

/// Settings every connection gets.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Opens the writing connection of `path`: WAL, `synchronous=NORMAL`, and
/// the schema created or checked.
pub(super) fn open_writer(path: &Path) -> Result<Connection, DbError> {
    let context = |e: rusqlite::Error| DbError::Internal(format!("{}: {e}", path.display()));
    create_private(path)?;
    let mut conn = Connection::open(path).map_err(context)?;
    configure(&conn).map_err(context)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(context)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Internal(format!(
            "{}: cannot use WAL mode (got '{mode}')",
            path.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF; \
         PRAGMA wal_autocheckpoint=65536; PRAGMA journal_size_limit=67108864; \
         PRAGMA secure_delete=FAST;",
    )
    .map_err(context)?;
    migrate(&mut conn).map_err(|e| match e {
        DbError::Internal(m) => DbError::Internal(format!("{}: {m}", path.display())),
        other => other,
    })?;
    Ok(conn)
}

/// Opens a read connection of `path` (never writes).
pub(super) fn open_reader(path: &Path) -> Result<Connection, DbError> {
    let context = |e: rusqlite::Error| DbError::Internal(format!("{}: {e}", path.display()));
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(context)?;
    configure(&conn).map_err(context)?;
    conn.execute_batch("PRAGMA query_only=ON;")
        .map_err(context)?;
    Ok(conn)
}

/// Creates the schema in an empty file; refuses a file of a newer schema.
/// Runs under the write lock, so two processes opening a new file at once
/// create it once.
fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .db()?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_V1).db()?;
            tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
                .db()?;
        }
        SCHEMA_VERSION => {}
        newer => {
            return Err(DbError::Internal(format!(
                "schema version {newer} is newer than this wasmwhisk's ({SCHEMA_VERSION})"
            )));
        }
    }
    tx.commit().db()?;
    Ok(())
}

/// `PRAGMA data_version`: changes when another connection commits.
pub(super) fn data_version(conn: &Connection) -> Result<i64, DbError> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
        .db()
}
