//! What the store's tests share: a database in a temporary directory, and
//! actions, messages and records to put in it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Database, NewAction};
use wasmwhisk_core::config::StoreConfig;
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_core::pool::record::fallback_activation_at;
use wasmwhisk_protocol::{
    ActionLimits, ActivationMessage, ActivationResponse, ControllerInstanceId, DocRevision,
    EntityName, EntityPath, Identity, WhiskActionMetaData, WhiskActivation,
};
use wasmwhisk_sandbox::engine::CacheKey;

/// A temporary data dir and the database file in it.
pub struct TempDb {
    pub dir: tempfile::TempDir,
}

impl TempDb {
    pub fn new() -> Self {
        TempDb {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("wasmwhisk.db")
    }

    /// Opens it with `config`.
    pub fn open_with(&self, config: &StoreConfig) -> (Database, super::Recovery) {
        Database::open(&self.path(), config).unwrap()
    }

    /// Opens it with the default retention.
    pub fn open(&self) -> Database {
        self.open_with(&StoreConfig::default()).0
    }
}

/// An executable action `path/name` (`path` is `ns` or `ns/pkg`).
pub fn action(path: &str, name: &str, code: &[u8]) -> ExecutableAction {
    let path: EntityPath = path.parse().unwrap();
    let meta = WhiskActionMetaData::code_action(
        path,
        EntityName::new(name).unwrap(),
        "wasm",
        true,
        ActionLimits::default(),
    );
    ExecutableAction {
        meta,
        revision: DocRevision::empty(),
        code: Arc::from(code),
        code_key: Some(CacheKey(*blake3::hash(code).as_bytes())),
    }
}

/// [`action`] as a put request.
pub fn new_action(path: &str, name: &str, code: &[u8]) -> NewAction {
    NewAction {
        action: action(path, name, code),
    }
}

/// An activation message of `action`, invoked by namespace `invoker`.
pub fn message(action: &ExecutableAction, invoker: &str) -> ActivationMessage {
    ActivationMessage::for_action(
        &action.meta,
        action.revision.clone(),
        Identity::basic(invoker, "uuid", "key"),
        ControllerInstanceId::new("0").unwrap(),
        Some(serde_json::json!({"payload": "x".repeat(1000)})),
        true,
    )
}

/// A record of an activation of `ns/name`, started at `start` ms.
pub fn record(ns: &str, name: &str, start: u64) -> WhiskActivation {
    let action = action(ns, name, b"code");
    let msg = message(&action, ns);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(start);
    fallback_activation_at(
        &msg,
        Some("wasm"),
        ActivationResponse::success(Some(serde_json::json!({"greeting": "hello"}))),
        at,
    )
}

/// True when `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}
