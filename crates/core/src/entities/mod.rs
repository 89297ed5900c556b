//! The REST API's store as a port: keys, actions and activation records,
//! with the types and the errors both of its implementations share.
//!
//! Standalone mode answers it from the embedded SQLite database
//! (`wasmwhisk-store`); a cluster's controllers from NATS JetStream
//! (`wasmwhisk-cluster`'s `NatsStore`), so
//! any controller can answer any request. Both give the same answers with
//! the same errors ([`DbError`]): the API never knows which it talks to.

use std::sync::Arc;

mod keys;
mod types;

use crate::pool::ports::ExecutableAction;
pub use keys::{KEY_LENGTH, generate_key, hash_key, key_matches, valid_name};
pub use types::{
    ActivationQuery, Credentials, DbError, NamespaceInfo, NewAction, PutOutcome, Recovery,
};
use wasmwhisk_protocol::{
    ActivationId, EntityPath, FullyQualifiedEntityName, Identity, WhiskActivation,
};

/// What the REST API reads and writes.
#[async_trait::async_trait]
pub trait EntityStore: Send + Sync {
    /// The identity of API key `uuid:key`; `None` when it is not valid.
    async fn authenticate(&self, uuid: &str, key: &str) -> Result<Option<Identity>, DbError>;

    /// Stores an action: a new revision when it exists and `overwrite`;
    /// `Exists` when it exists and not `overwrite`.
    async fn put_action(&self, new: NewAction, overwrite: bool) -> Result<PutOutcome, DbError>;

    /// The latest revision of `fqn`, with its code.
    async fn get_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError>;

    /// The latest revision of every action under `namespace` (a namespace,
    /// or a package `ns/pkg`), by name, without code.
    async fn list_actions(
        &self,
        namespace: &EntityPath,
        limit: usize,
        skip: usize,
    ) -> Result<Vec<Arc<ExecutableAction>>, DbError>;

    /// Deletes every revision of `fqn`; returns the latest one.
    async fn delete_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError>;

    /// The record `id`, if it belongs to `namespace`.
    async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, DbError>;

    /// Records of `namespace`, newest first.
    async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, DbError>;
}
