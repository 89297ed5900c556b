//! The database as the REST API's [`EntityStore`].

use std::sync::Arc;

use super::{ActivationQuery, Database, DbError, NewAction, PutOutcome};
use wasmwhisk_core::entities::EntityStore;
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_protocol::{
    ActivationId, EntityPath, FullyQualifiedEntityName, Identity, WhiskActivation,
};

#[async_trait::async_trait]
impl EntityStore for Database {
    async fn authenticate(&self, uuid: &str, key: &str) -> Result<Option<Identity>, DbError> {
        Database::authenticate(self, uuid, key).await
    }

    async fn put_action(&self, new: NewAction, overwrite: bool) -> Result<PutOutcome, DbError> {
        Database::put_action(self, new, overwrite).await
    }

    async fn get_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        Database::get_action(self, fqn).await
    }

    async fn list_actions(
        &self,
        namespace: &EntityPath,
        limit: usize,
        skip: usize,
    ) -> Result<Vec<Arc<ExecutableAction>>, DbError> {
        Database::list_actions(self, namespace, limit, skip).await
    }

    async fn delete_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        Database::delete_action(self, fqn).await
    }

    async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, DbError> {
        Database::get_activation(self, namespace, id).await
    }

    async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, DbError> {
        Database::list_activations(self, namespace, query).await
    }
}
