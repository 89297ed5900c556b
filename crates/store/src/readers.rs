//! Read connections. WAL gives each read its own snapshot beside the
//! writer, so reads never wait for a commit. Connections are kept in a small
//! idle pool (opening one costs more than most reads); a burst beyond it
//! opens extra ones, closed when they come back to a full pool.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use super::{DbError, schema};

/// Idle read connections kept.
const MAX_IDLE: usize = 4;

/// The read connections of one database file.
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    /// Idle connections; a `std` mutex held only to push or pop.
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// No connection yet; they are opened on demand.
    pub fn new(path: PathBuf) -> Self {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `read` on a read connection (blocking: call it from a blocking
    /// thread, or from sync code).
    pub fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let popped = self.idle().pop();
        let conn = match popped {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        let out = read(&conn);
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        out
    }
}
