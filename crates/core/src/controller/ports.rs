//! The controller's ports: the activation queues it fills and the invokers
//! it asks for sandboxes.
//!
//! Standalone mode wires the in-process [`LocalQueue`] and the one
//! [`PoolHandle`]; a cluster wires JetStream work queues and the invokers
//! behind NATS (`crate::cluster::scheduling`). The controller's logic —
//! when to add sandboxes, retries, expiry, flushing — is the same for both.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::pool::PoolHandle;
use crate::pool::ports::{ExecutableAction, StoreError};
use crate::pool::queue::{DeliveryId, LocalQueue, QueueError};
use crate::pool::queue_bytes::{QueueFull, value_footprint};
use crate::pool::slot::WarmKey;
use wasmwhisk_protocol::{
    ActivationMessage, ContainerCreationError, ContainerCreationMessage, ContainerDeletionMessage,
    ids::now_epoch_ms,
};

/// A queue's key: OpenWhisk's (invocation namespace, action, revision) —
/// the same triple a warm sandbox is matched on, hence the same type.
pub type QueueKey = WarmKey;

/// One action's queue in numbers, as the decisions need them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Activations waiting, not delivered yet.
    pub available: usize,
    /// Activations delivered and not finished.
    pub in_flight: usize,
    /// Of the waiting ones, those that waited longer than the stale threshold.
    pub stale: usize,
}

/// A waiting activation taken out of its queue: the controller stores its
/// failure record, then [`settles`](Queues::settle) it.
#[derive(Clone, Debug)]
pub struct Taken {
    /// The activation.
    pub message: ActivationMessage,
    /// Its delivery, for [`Queues::settle`].
    pub delivery: DeliveryId,
}

/// The activation queues, as the controller sees them (the pullers' side is
/// [`crate::pool::queue::ActivationQueue`]).
#[async_trait::async_trait]
pub trait Queues: Send + Sync {
    /// Queues `msg` for `key`; returns once it is accepted (durable, in a
    /// cluster).
    /// `charge` is what [`Queues::admit`] answered for it. The message is
    /// moved in: a queue in memory keeps it, with no copy.
    async fn push(
        &self,
        key: &QueueKey,
        msg: ActivationMessage,
        charge: usize,
    ) -> Result<(), QueueError>;

    /// Whether `msg` may be queued for `key` now: the memory its queue
    /// would hold stays within the byte limits (in-memory queues; a
    /// JetStream queue holds nothing here and admits everything). The
    /// bytes `msg` will be charged when pushed.
    fn admit(&self, _key: &QueueKey, _msg: &ActivationMessage) -> Result<usize, QueueFull> {
        Ok(0)
    }

    /// Activations of `key` waiting (for the 429 limit). May be as of the
    /// last decision round.
    fn waiting(&self, key: &QueueKey) -> usize;

    /// The numbers of `key` now.
    async fn stats(&self, key: &QueueKey, stale_after: Duration) -> Result<QueueStats, QueueError>;

    /// Takes out the waiting activations of `key` that were accepted longer
    /// than `older_than` ago (every waiting one when `None`). With
    /// `orphans`, activations held by a sandbox that died (and due back in
    /// the queue) are looked at too, even when no never-delivered one is
    /// that old.
    async fn take_waiting(
        &self,
        key: &QueueKey,
        older_than: Option<Duration>,
        orphans: bool,
    ) -> Result<Vec<Taken>, QueueError>;

    /// The taken activations' records are stored: they are finished.
    async fn settle(&self, key: &QueueKey, taken: &[DeliveryId]);

    /// The taken activations' records could not be stored: they go back to
    /// the queue.
    async fn give_back(&self, key: &QueueKey, taken: Vec<Taken>);

    /// `key`'s queue is idle: its resources may go.
    async fn forget(&self, key: &QueueKey);

    /// Whether queued activations outlive this process; if so, shutdown
    /// leaves them for another controller instead of failing them.
    fn durable(&self) -> bool;
}

/// Why a creation could not be sent at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotSent {
    /// OpenWhisk's error for it (`NoAvailableInvokersError`, …).
    pub error: ContainerCreationError,
    /// The reason, for the record of a flushed activation.
    pub reason: String,
}

/// Where creations and deletions go.
#[async_trait::async_trait]
pub trait Dispatch: Send + Sync {
    /// Sends `msg` for `action` to an invoker, avoiding the invokers in
    /// `avoid` (they refused it) where another can take it. The answer comes
    /// later as a creation ack.
    async fn create(
        &self,
        msg: ContainerCreationMessage,
        action: &ExecutableAction,
        avoid: &[u32],
    ) -> Result<(), NotSent>;

    /// A creation was answered by `invoker` (its reservation, if any, ends).
    fn answered(&self, _msg: &ContainerCreationMessage, _invoker: u32) {}

    /// Tells every invoker that may hold sandboxes of `msg`'s action to
    /// remove them.
    async fn delete(&self, msg: ContainerDeletionMessage);

    /// Whether this controller makes the decisions for `key` (one
    /// controller per action queue in a cluster).
    fn leads(&self, _key: &QueueKey) -> bool {
        true
    }

    /// The controller stops: in-process invokers finish their work within
    /// `grace`.
    async fn shutdown(&self, grace: Duration);
}

/// The memory a queued activation message holds, about: the message and
/// its parameters.
pub fn message_bytes(msg: &ActivationMessage) -> usize {
    std::mem::size_of::<ActivationMessage>()
        .saturating_add(msg.content.as_ref().map_or(0, value_footprint))
}

#[async_trait::async_trait]
impl Queues for LocalQueue<ActivationMessage> {
    async fn push(
        &self,
        key: &QueueKey,
        msg: ActivationMessage,
        charge: usize,
    ) -> Result<(), QueueError> {
        LocalQueue::push_sized(self, key, msg, charge);
        Ok(())
    }

    fn admit(&self, key: &QueueKey, msg: &ActivationMessage) -> Result<usize, QueueFull> {
        let bytes = message_bytes(msg);
        LocalQueue::admit(self, key, bytes).map(|()| bytes)
    }

    fn waiting(&self, key: &QueueKey) -> usize {
        LocalQueue::waiting(self, key)
    }

    async fn stats(&self, key: &QueueKey, stale_after: Duration) -> Result<QueueStats, QueueError> {
        let now = now_epoch_ms();
        let stale_ms = u64::try_from(stale_after.as_millis()).unwrap_or(u64::MAX);
        let (available, in_flight, stale) = LocalQueue::stats(self, key, |m| {
            now.saturating_sub(m.transid.start_ms) > stale_ms
        });
        Ok(QueueStats {
            available,
            in_flight,
            stale,
        })
    }

    async fn take_waiting(
        &self,
        key: &QueueKey,
        older_than: Option<Duration>,
        _orphans: bool,
    ) -> Result<Vec<Taken>, QueueError> {
        let now = now_epoch_ms();
        let limit = older_than.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let taken = self.remove_pending(key, |m| match limit {
            Some(limit) => now.saturating_sub(m.transid.start_ms) > limit,
            None => true,
        });
        Ok(taken
            .into_iter()
            .map(|message| Taken {
                message,
                delivery: 0,
            })
            .collect())
    }

    async fn settle(&self, _key: &QueueKey, _taken: &[DeliveryId]) {}

    async fn give_back(&self, key: &QueueKey, taken: Vec<Taken>) {
        for t in taken {
            let bytes = message_bytes(&t.message);
            LocalQueue::push_sized(self, key, t.message, bytes);
        }
    }

    async fn forget(&self, key: &QueueKey) {
        self.forget_if_empty(key);
    }

    fn durable(&self) -> bool {
        false
    }
}

#[async_trait::async_trait]
impl Dispatch for PoolHandle {
    async fn create(
        &self,
        msg: ContainerCreationMessage,
        _action: &ExecutableAction,
        _avoid: &[u32],
    ) -> Result<(), NotSent> {
        PoolHandle::create(self, msg).await;
        Ok(())
    }

    async fn delete(&self, msg: ContainerDeletionMessage) {
        PoolHandle::delete(self, msg);
    }

    async fn shutdown(&self, grace: Duration) {
        PoolHandle::shutdown(self, grace).await;
    }
}

/// Where the controller journals accepted activations, so that a crash
/// before their record is stored leaves a trace a restart turns into a
/// failed record.
pub trait Journal: Send + Sync {
    /// Journals `msg` (of an action of `kind`) as accepted. The write is
    /// queued before this returns — ordered before any later store of the
    /// activation's record — and the receiver resolves once it is durable,
    /// so a blocking invoke need not wait for it and a non-blocking one can.
    fn accepted(
        &self,
        msg: &ActivationMessage,
        kind: &str,
    ) -> oneshot::Receiver<Result<(), StoreError>>;
}
