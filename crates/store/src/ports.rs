//! The database as the pool's [`ActionStore`] and [`ActivationStore`], and
//! as the controller's [`Journal`]: the same traits the cluster implements
//! with NATS, so the pool and the controller never know which they run on.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::activations::PendingRow;
use super::writer::Write;
use super::{Database, DbError, actions, activations};
use wasmwhisk_core::controller::Journal;
use wasmwhisk_core::pool::ports::{ActionStore, ActivationStore, ExecutableAction, StoreError};
use wasmwhisk_protocol::{
    ActivationId, ActivationMessage, DocRevision, FullyQualifiedEntityName, WhiskActivation,
};

/// The pool's view of a database error.
fn store_error(e: DbError, what: impl FnOnce() -> String) -> StoreError {
    match e {
        DbError::NotFound => StoreError::NotFound(what()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

#[async_trait::async_trait]
impl ActionStore for Database {
    /// The latest revision (an empty `revision`) comes from the cache; an
    /// older one from the file, and `NotFound` once it was pruned (only the
    /// latest two revisions are kept).
    async fn get(
        &self,
        fqn: &FullyQualifiedEntityName,
        revision: &DocRevision,
    ) -> Result<Arc<ExecutableAction>, StoreError> {
        let doc = fqn.as_string_without_version();
        let Some(wanted) = revision.as_str() else {
            return self
                .get_action(fqn)
                .await
                .map_err(|e| store_error(e, || doc.clone()))?
                .ok_or(StoreError::NotFound(doc));
        };
        if let Ok(latest) = self.inner.actions.get(&doc)
            && latest.revision == *revision
        {
            return Ok(latest);
        }
        let wanted = wanted.to_string();
        let what = format!("{doc}@{wanted}");
        let found = self
            .read(move |conn| actions::at_revision(conn, &doc, &wanted))
            .await
            .map_err(|e| store_error(e, || what.clone()))?;
        found.map(Arc::new).ok_or(StoreError::NotFound(what))
    }
}

#[async_trait::async_trait]
impl ActivationStore for Database {
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        self.store_activation(activation)
            .await
            .map_err(|e| store_error(e, || activation.activation_id.to_string()))
    }

    async fn get(&self, id: &ActivationId) -> Result<Option<WhiskActivation>, StoreError> {
        let id_s = id.as_str().to_string();
        self.read(move |conn| activations::get(conn, None, &id_s))
            .await
            .map_err(|e| store_error(e, || id.to_string()))
    }
}

impl Journal for Database {
    /// Queues the journal entry before returning (so it is ordered before any
    /// later store of the record, which goes through the same queue).
    fn accepted(
        &self,
        msg: &ActivationMessage,
        kind: &str,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        match PendingRow::new(msg, kind) {
            Ok(row) => self.submit(
                Write::Accepted(row),
                Box::new(move |outcome| {
                    let _ = tx.send(
                        outcome
                            .map(drop)
                            .map_err(|e| StoreError::Unavailable(e.to_string())),
                    );
                }),
            ),
            Err(e) => {
                let _ = tx.send(Err(StoreError::Unavailable(e.to_string())));
            }
        }
        rx
    }
}
