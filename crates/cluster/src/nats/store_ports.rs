//! The store as the ports it serves: the REST API's [`EntityStore`], and
//! the pool's [`ActionStore`] and [`ActivationStore`].

use std::sync::Arc;

use super::{NatsStore, store_error};
use wasmwhisk_core::entities::{ActivationQuery, DbError, EntityStore, NewAction, PutOutcome};
use wasmwhisk_core::pool::ports::{ActionStore, ActivationStore, ExecutableAction, StoreError};
use wasmwhisk_protocol::{
    ActivationId, DocRevision, EntityPath, FullyQualifiedEntityName, Identity, WhiskActivation,
};

#[async_trait::async_trait]
impl EntityStore for NatsStore {
    async fn authenticate(&self, uuid: &str, key: &str) -> Result<Option<Identity>, DbError> {
        self.check_key(uuid, key).await
    }

    async fn put_action(&self, new: NewAction, overwrite: bool) -> Result<PutOutcome, DbError> {
        self.write_action(new.action, overwrite).await
    }

    async fn get_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        self.latest_action(fqn).await
    }

    async fn list_actions(
        &self,
        namespace: &EntityPath,
        limit: usize,
        skip: usize,
    ) -> Result<Vec<Arc<ExecutableAction>>, DbError> {
        self.scan_actions(namespace, limit, skip).await
    }

    async fn delete_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        self.remove_action(fqn).await
    }

    async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, DbError> {
        self.read_record(namespace, id).await
    }

    async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, DbError> {
        self.scan_records(namespace, query).await
    }
}

#[async_trait::async_trait]
impl ActionStore for NatsStore {
    /// The latest revision (an empty `revision`) is read from NATS; an exact
    /// one comes from memory once seen, otherwise from the key's history,
    /// and is `NotFound` once pruned (only the latest two are kept) or
    /// deleted.
    async fn get(
        &self,
        fqn: &FullyQualifiedEntityName,
        revision: &DocRevision,
    ) -> Result<Arc<ExecutableAction>, StoreError> {
        let doc = fqn.as_string_without_version();
        let Some(wanted) = revision.as_str() else {
            return self
                .latest_action(fqn)
                .await
                .map_err(|e| store_error(e, || doc.clone()))?
                .ok_or(StoreError::NotFound(doc));
        };
        let what = format!("{doc}@{wanted}");
        self.action_at(fqn, wanted)
            .await
            .map_err(|e| store_error(e, || what.clone()))?
            .ok_or(StoreError::NotFound(what))
    }
}

#[async_trait::async_trait]
impl ActivationStore for NatsStore {
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        self.write_record(activation)
            .await
            .map_err(|e| store_error(e, || activation.activation_id.to_string()))
    }

    /// By id alone: a wildcard read the server answers by scanning every
    /// kept record's subject — a rare path; [`get_in`](Self::get_in) is
    /// one exact read.
    async fn get(&self, id: &ActivationId) -> Result<Option<WhiskActivation>, StoreError> {
        self.find_record(id)
            .await
            .map_err(|e| store_error(e, || id.to_string()))
    }

    async fn get_in(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, StoreError> {
        self.read_record(namespace, id)
            .await
            .map_err(|e| store_error(e, || id.to_string()))
    }
}
