//! The pool's ports: everything it talks to outside the process, as traits.
//!
//! The pool never knows whether it runs standalone or in a cluster
//! (docs/architecture.md#modes). It loads actions from an [`ActionStore`], stores activation
//! records in an [`ActivationStore`], sends OpenWhisk's acks through a
//! [`Messenger`] and writes its health and its container keys to a
//! [`ClusterState`]. Activations come from an
//! [`ActivationQueue`](super::queue::ActivationQueue). Standalone mode and the
//! tests wire the in-process implementations of [`super::local`]; the cluster
//! wires NATS and etcd.

use std::sync::Arc;

use wasmwhisk_protocol::{
    AcknowledgementMessage, ActivationId, ContainerCreationAckMessage, ControllerInstanceId,
    DocRevision, FullyQualifiedEntityName, SchedulerInstanceId, WhiskActionMetaData,
    WhiskActivation,
};
use wasmwhisk_sandbox::engine::CacheKey;

/// An action with its code: what a sandbox needs to run it (OpenWhisk's
/// `ExecutableWhiskAction`).
#[derive(Clone, Debug)]
pub struct ExecutableAction {
    /// The action document without the code.
    pub meta: WhiskActionMetaData,
    /// The document's revision.
    pub revision: DocRevision,
    /// The code: JavaScript source, or the component of a `wasm` action.
    pub code: Arc<[u8]>,
    /// For a `wasm` action, the compile cache key of `code`, computed once
    /// when the action was stored so a cold start does not hash it again.
    pub code_key: Option<CacheKey>,
}

/// Why an action could not be loaded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// No such document (or not at that revision).
    #[error("the action {0} does not exist")]
    NotFound(String),
    /// The store could not answer.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// Where actions are loaded from (OpenWhisk's entity store).
#[async_trait::async_trait]
pub trait ActionStore: Send + Sync {
    /// The action `fqn` at `revision` (an empty revision: the latest).
    async fn get(
        &self,
        fqn: &FullyQualifiedEntityName,
        revision: &DocRevision,
    ) -> Result<Arc<ExecutableAction>, StoreError>;
}

/// Where activation records go (OpenWhisk's activation store).
#[async_trait::async_trait]
pub trait ActivationStore: Send + Sync {
    /// Stores `activation` (a second store of the same id replaces it). By
    /// reference: a failed store is retried with the same record, and a
    /// store that serializes it needs no copy.
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError>;

    /// The record of `id`, if stored.
    async fn get(&self, id: &ActivationId) -> Result<Option<WhiskActivation>, StoreError>;

    /// The record of `id` if stored, knowing it was invoked in `namespace`
    /// (a store keyed by namespace finds it with one exact read).
    async fn get_in(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, StoreError> {
        let _ = namespace;
        self.get(id).await
    }
}

/// Why a message could not be sent.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("sending {what} failed: {reason}")]
pub struct SendError {
    /// Which message.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}

/// The invoker's outgoing messages (OpenWhisk's Kafka producer; NATS
/// subjects `whisk.creationAck{sid}` and `whisk.completed{ctrl}` in a
/// cluster).
#[async_trait::async_trait]
pub trait Messenger: Send + Sync {
    /// Answers a creation message to scheduler `scheduler`.
    async fn creation_ack(
        &self,
        scheduler: &SchedulerInstanceId,
        ack: ContainerCreationAckMessage,
    ) -> Result<(), SendError>;

    /// Sends an activation's completion / result to controller `controller`.
    async fn completion(
        &self,
        controller: &ControllerInstanceId,
        ack: AcknowledgementMessage,
    ) -> Result<(), SendError>;
}

/// Why the cluster state could not be read or written.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("the cluster state is unavailable: {0}")]
pub struct ClusterError(pub String);

/// The invoker's keys in the cluster state (etcd in a cluster): every key is
/// written under the invoker's lease, so all of them vanish when it dies.
/// Keys and values are OpenWhisk's (docs/openwhisk.md §4.3).
#[async_trait::async_trait]
pub trait ClusterState: Send + Sync {
    /// Writes `key` = `value` under the lease.
    async fn put(&self, key: &str, value: &str) -> Result<(), ClusterError>;

    /// Deletes `key`.
    async fn delete(&self, key: &str) -> Result<(), ClusterError>;

    /// How many keys start with `prefix`.
    async fn count_prefix(&self, prefix: &str) -> Result<usize, ClusterError>;
}
