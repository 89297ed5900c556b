//! An in-memory [`Journal`]: for tests and embedding without a database.
//! It forgets everything with the process, so it protects against nothing
//! but lets the accepted-but-unrecorded set be observed.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::Journal;
use crate::pool::ports::StoreError;
use crate::sync::lock;
use wasmwhisk_protocol::{ActivationId, ActivationMessage};

/// Accepted activations, in memory.
#[derive(Debug, Default)]
pub struct LocalJournal {
    accepted: Mutex<HashSet<ActivationId>>,
}

impl LocalJournal {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every activation accepted so far.
    pub fn accepted_ids(&self) -> HashSet<ActivationId> {
        lock(&self.accepted).clone()
    }
}

impl Journal for LocalJournal {
    fn accepted(
        &self,
        msg: &ActivationMessage,
        _kind: &str,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        lock(&self.accepted).insert(msg.activation_id.clone());
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Ok(()));
        rx
    }
}

/// The journal of a cluster: none is needed, because the queue an accepted
/// activation goes to (JetStream) is itself durable — an invoke is
/// accepted only once the server stored it.
#[derive(Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn accepted(
        &self,
        _msg: &ActivationMessage,
        _kind: &str,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Ok(()));
        rx
    }
}
