//! The store's public data types: what callers pass in and get back.

use std::sync::Arc;

use crate::pool::ports::ExecutableAction;

/// A namespace's credentials: `uuid:key` is its API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The namespace.
    pub namespace: String,
    /// The key's uuid part.
    pub uuid: String,
    /// The key's secret part (never stored in clear).
    pub key: String,
}

impl Credentials {
    /// `uuid:key`.
    pub fn api_key(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }
}

/// A namespace as `namespace list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// The namespace.
    pub name: String,
    /// Its key's uuid.
    pub uuid: String,
    /// Creation time, epoch ms.
    pub created: u64,
}

/// What [`Database::open`] did to activations left in flight by a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Accepted activations without a record, now recorded as failed.
    pub failed_activations: usize,
}

/// A query of `GET …/activations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationQuery {
    /// Only activations of this action name (OpenWhisk's `name`: the
    /// action's name, or `pkg/name`). A plain name matches the record's
    /// `name`; `pkg/name` matches records of that name whose `path`
    /// annotation ends in `/pkg/name`.
    pub name: Option<String>,
    /// At most this many (the API clamps to 0..=200, default 30); the store
    /// takes it literally, so 0 returns nothing.
    pub limit: usize,
    /// Skip this many of the newest first.
    pub skip: usize,
    /// Only those that started at or after this epoch ms.
    pub since: Option<u64>,
    /// Only those that started at or before this epoch ms.
    pub upto: Option<u64>,
}

/// Why the database refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The entity exists and `overwrite` was not set (HTTP 409).
    #[error("resource already exists")]
    Exists,
    /// No such entity.
    #[error("the requested resource does not exist")]
    NotFound,
    /// The request itself is invalid (a namespace name that is not an
    /// entity name); HTTP 400.
    #[error("{0}")]
    Invalid(String),
    /// SQLite or I/O failed, or a stored row is corrupt.
    #[error("database error: {0}")]
    Internal(String),
}

/// An action to store: the store assigns `revision`, bumps `version` and
/// sets `updated`.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// The action (its `revision` is ignored).
    pub action: ExecutableAction,
}

/// What a put did.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// The stored action, with its new revision.
    pub stored: Arc<ExecutableAction>,
    /// The revision it replaced, if it was an update.
    pub replaced: Option<Arc<ExecutableAction>>,
}
