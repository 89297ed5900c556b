//! In-process implementations of the pool's ports, for standalone mode and
//! tests: an action map, an activation map, a messenger that hands acks to
//! channels, and a key-value map standing in for etcd.
//!
//! Each is the real thing for one process, not a mock: standalone mode runs
//! on them, and the controller side reads the same values the pool wrote.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::ports::*;
use crate::sync::lock;
use wasmwhisk_protocol::{
    AcknowledgementMessage, ActivationId, ContainerCreationAckMessage, ControllerInstanceId,
    DocRevision, FullyQualifiedEntityName, SchedulerInstanceId, WhiskActivation,
};

/// Actions in memory, by name and revision.
#[derive(Debug, Default)]
pub struct LocalActionStore {
    actions: Mutex<HashMap<String, Vec<Arc<ExecutableAction>>>>,
}

impl LocalActionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `action` at its revision; it becomes the latest.
    pub fn put(&self, action: ExecutableAction) -> Arc<ExecutableAction> {
        let action = Arc::new(action);
        let name = action
            .meta
            .fully_qualified_name()
            .as_string_without_version();
        let mut actions = lock(&self.actions);
        let revisions = actions.entry(name).or_default();
        revisions.retain(|a| a.revision != action.revision);
        revisions.push(action.clone());
        action
    }

    /// Removes every revision of `fqn`.
    pub fn remove(&self, fqn: &FullyQualifiedEntityName) {
        lock(&self.actions).remove(&fqn.as_string_without_version());
    }
}

#[async_trait::async_trait]
impl ActionStore for LocalActionStore {
    async fn get(
        &self,
        fqn: &FullyQualifiedEntityName,
        revision: &DocRevision,
    ) -> Result<Arc<ExecutableAction>, StoreError> {
        let name = fqn.as_string_without_version();
        let actions = lock(&self.actions);
        let revisions = actions
            .get(&name)
            .ok_or_else(|| StoreError::NotFound(name.clone()))?;
        let found = if revision.is_empty() {
            revisions.last()
        } else {
            revisions.iter().rev().find(|a| a.revision == *revision)
        };
        found
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("{name}@{revision}")))
    }
}

/// Activation records in memory.
#[derive(Debug, Default)]
pub struct LocalActivationStore {
    records: Mutex<HashMap<ActivationId, WhiskActivation>>,
}

impl LocalActivationStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are stored.
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    /// True when no record is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record of `id`, if stored.
    pub fn record(&self, id: &ActivationId) -> Option<WhiskActivation> {
        lock(&self.records).get(id).cloned()
    }
}

#[async_trait::async_trait]
impl ActivationStore for LocalActivationStore {
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        lock(&self.records).insert(activation.activation_id.clone(), activation.clone());
        Ok(())
    }

    async fn get(&self, id: &ActivationId) -> Result<Option<WhiskActivation>, StoreError> {
        Ok(self.record(id))
    }
}

/// A message the [`LocalMessenger`] delivered.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A creation ack to a scheduler.
    CreationAck(SchedulerInstanceId, Box<ContainerCreationAckMessage>),
    /// A completion ack to a controller.
    Completion(ControllerInstanceId, Box<AcknowledgementMessage>),
}

/// Hands every outgoing message to one unbounded channel (the in-process
/// bus). Messages sent after the receiver is dropped are discarded.
#[derive(Debug, Clone)]
pub struct LocalMessenger {
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl LocalMessenger {
    /// A messenger and the receiving end of its bus.
    pub fn new() -> (LocalMessenger, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (LocalMessenger { tx }, rx)
    }
}

#[async_trait::async_trait]
impl Messenger for LocalMessenger {
    async fn creation_ack(
        &self,
        scheduler: &SchedulerInstanceId,
        ack: ContainerCreationAckMessage,
    ) -> Result<(), SendError> {
        // A closed bus means nobody listens any more: not the sender's error.
        let _ = self
            .tx
            .send(Outgoing::CreationAck(scheduler.clone(), Box::new(ack)));
        Ok(())
    }

    async fn completion(
        &self,
        controller: &ControllerInstanceId,
        ack: AcknowledgementMessage,
    ) -> Result<(), SendError> {
        let _ = self
            .tx
            .send(Outgoing::Completion(controller.clone(), Box::new(ack)));
        Ok(())
    }
}

/// A key-value map with etcd's semantics for what the pool uses.
#[derive(Debug, Default)]
pub struct LocalClusterState {
    keys: Mutex<BTreeMap<String, String>>,
}

impl LocalClusterState {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`.
    pub fn value(&self, key: &str) -> Option<String> {
        lock(&self.keys).get(key).cloned()
    }

    /// How many keys start with `prefix` (without the trait's `await`).
    pub fn count_with_prefix(&self, prefix: &str) -> usize {
        use std::ops::Bound;
        // Ranged by `&str`: no copy of the prefix (the controller asks on
        // every invoke).
        lock(&self.keys)
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    /// Whether any key starts with `prefix` (stops at the first).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        use std::ops::Bound;
        lock(&self.keys)
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// Every key starting with `prefix`, in order.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        lock(&self.keys)
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[async_trait::async_trait]
impl ClusterState for LocalClusterState {
    async fn put(&self, key: &str, value: &str) -> Result<(), ClusterError> {
        lock(&self.keys).insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), ClusterError> {
        lock(&self.keys).remove(key);
        Ok(())
    }

    async fn count_prefix(&self, prefix: &str) -> Result<usize, ClusterError> {
        Ok(self.keys_with_prefix(prefix).len())
    }
}
