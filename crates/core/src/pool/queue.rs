//! Where sandboxes pull their activations: OpenWhisk's `FetchActivation`
//! (docs/openwhisk.md §2.3) as a port, and its in-process implementation.
//!
//! In OpenWhisk a container asks its action's queue for the next activation
//! and the queue long-polls for at most a second before answering "none";
//! an idle container therefore re-polls about once a second until
//! `pause-grace` pauses it. [`ActivationQueue`] is that contract. The cluster
//! implements it with a JetStream work queue per action (an activation is
//! acked only once its record is stored); standalone mode and tests use
//! [`LocalQueue`], a per-action FIFO in memory.
//!
//! Delivery is at-least-once: a pulled activation is *in flight* until the
//! puller says it is [`done`](ActivationQueue::done) (its record is stored)
//! or hands it back with [`redeliver`](ActivationQueue::redeliver) (its
//! sandbox could not run it), which puts it at the front for another sandbox.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::queue_bytes::{ByteLimits, ByteTally, QueueFull};
use super::slot::WarmKey;
use crate::sync::lock;
use wasmwhisk_sandbox::memory::TrimPolicy;

/// Identifies one delivery of an activation, for [`ActivationQueue::done`]
/// and [`ActivationQueue::redeliver`].
pub type DeliveryId = u64;

/// One pulled activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled<M> {
    /// The activation message.
    pub message: M,
    /// This delivery.
    pub delivery: DeliveryId,
}

/// Why the queue could not answer.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The transport is unavailable (retry later).
    #[error("the activation queue is unavailable: {0}")]
    Unavailable(String),
    /// `done`/`redeliver` named a delivery that is not in flight.
    #[error("delivery {0} is not in flight")]
    UnknownDelivery(DeliveryId),
}

/// The port a sandbox pulls from.
#[async_trait::async_trait]
pub trait ActivationQueue<M>: Send + Sync {
    /// The next activation of `action`, waiting at most `wait`; `None` when
    /// none came (poll again, or pause when idle long enough).
    async fn pull(&self, action: &WarmKey, wait: Duration)
    -> Result<Option<Pulled<M>>, QueueError>;

    /// The activation's record is stored: it is finished.
    async fn done(&self, action: &WarmKey, delivery: DeliveryId) -> Result<(), QueueError>;

    /// The puller could not run it: deliver it again, first, to another puller.
    async fn redeliver(&self, action: &WarmKey, delivery: DeliveryId) -> Result<(), QueueError>;
}

/// One action's queue. Invariant: a message is in exactly one of `pending`
/// and `in_flight`.
#[derive(Debug)]
struct Lane<M> {
    state: Mutex<LaneState<M>>,
    /// Wakes one waiting puller per pushed (or redelivered) message.
    arrived: Notify,
    /// Pullers inside [`ActivationQueue::pull`] on this lane; counted under
    /// the lanes lock so that [`LocalQueue::forget_if_empty`] never drops a
    /// lane someone waits on.
    pullers: AtomicUsize,
}

/// Counts a puller out of its lane when its pull ends.
struct Puller<'a>(&'a AtomicUsize);

impl Drop for Puller<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Each message is kept with the bytes it is charged in the queue's
/// [`ByteTally`].
#[derive(Debug)]
struct LaneState<M> {
    pending: VecDeque<(DeliveryId, M, usize)>,
    in_flight: HashMap<DeliveryId, (M, usize)>,
}

impl<M> LaneState<M> {
    /// Gives back the memory of a lane that grew large and is empty again.
    fn shrink_if_empty(&mut self) {
        if self.pending.is_empty() && self.pending.capacity() > 64 {
            self.pending = VecDeque::new();
        }
        if self.in_flight.is_empty() && self.in_flight.capacity() > 64 {
            self.in_flight = HashMap::new();
        }
    }
}

/// Queued bytes larger than this, once drained, are worth a `malloc_trim`
/// (trims run at most every few seconds: `wasmwhisk_sandbox::memory`).
const TRIM_AFTER: usize = 16 << 20;

/// In-memory per-action FIFO queues.
#[derive(Debug)]
pub struct LocalQueue<M> {
    lanes: Mutex<HashMap<WarmKey, Arc<Lane<M>>>>,
    next_delivery: Mutex<DeliveryId>,
    /// Bounds on the bytes charged by [`LocalQueue::push_sized`].
    limits: ByteLimits,
    /// Bytes held by every message of every lane (waiting or in flight),
    /// by invocation namespace. Taken after a lane's lock, never before.
    tally: Mutex<(ByteTally, TrimPolicy)>,
}

impl<M> Default for LocalQueue<M> {
    fn default() -> Self {
        LocalQueue {
            lanes: Mutex::new(HashMap::new()),
            next_delivery: Mutex::new(1),
            limits: ByteLimits::UNBOUNDED,
            tally: Mutex::new((ByteTally::default(), TrimPolicy::new(TRIM_AFTER))),
        }
    }
}

impl<M: Send + 'static> LocalQueue<M> {
    /// Empty queues.
    pub fn new() -> Self {
        LocalQueue::default()
    }

    /// Empty queues whose messages' bytes are bounded by `limits` (see
    /// [`LocalQueue::admit`]).
    pub fn with_byte_limits(limits: ByteLimits) -> Self {
        LocalQueue {
            limits,
            ..LocalQueue::default()
        }
    }

    /// Whether a message of `bytes` for `action` fits within the byte
    /// limits now.
    pub fn admit(&self, action: &WarmKey, bytes: usize) -> Result<(), QueueFull> {
        lock(&self.tally)
            .0
            .check(&self.limits, &action.invocation_namespace, bytes)
    }

    /// Bytes held by queued messages: `action`'s namespace's, and all.
    pub fn queued_bytes(&self, namespace: &str) -> (usize, usize) {
        let tally = lock(&self.tally);
        (tally.0.namespace(namespace), tally.0.total())
    }

    fn charge(&self, action: &WarmKey, bytes: usize) {
        if bytes > 0 {
            let mut tally = lock(&self.tally);
            tally.0.add(&action.invocation_namespace, bytes);
            let total = tally.0.total();
            tally.1.observe(total);
        }
    }

    fn release(&self, action: &WarmKey, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let trim = {
            let mut tally = lock(&self.tally);
            tally.0.remove(&action.invocation_namespace, bytes);
            let total = tally.0.total();
            tally.1.observe(total)
        };
        if trim {
            wasmwhisk_sandbox::memory::trim_soon();
        }
    }

    fn lane(&self, action: &WarmKey) -> Arc<Lane<M>> {
        self.lane_with(action, |_| ()).0
    }

    /// The lane of `action`, made if missing, and `under_lock` run on it
    /// before the lanes lock is released: whatever it does (count a puller,
    /// push a message) is done before [`LocalQueue::forget_if_empty`] can
    /// look at the lane.
    fn lane_with<R>(
        &self,
        action: &WarmKey,
        under_lock: impl FnOnce(&Lane<M>) -> R,
    ) -> (Arc<Lane<M>>, R) {
        let mut lanes = lock(&self.lanes);
        let lane = lanes
            .entry(action.clone())
            .or_insert_with(|| {
                Arc::new(Lane {
                    state: Mutex::new(LaneState {
                        pending: VecDeque::new(),
                        in_flight: HashMap::new(),
                    }),
                    arrived: Notify::new(),
                    pullers: AtomicUsize::new(0),
                })
            })
            .clone();
        let result = under_lock(&lane);
        (lane, result)
    }

    /// Enqueues an activation of `action`; returns its delivery id.
    pub fn push(&self, action: &WarmKey, message: M) -> DeliveryId {
        self.push_sized(action, message, 0)
    }

    /// Enqueues an activation of `action` that holds `bytes` of memory,
    /// charged to its namespace until it is done or removed; returns its
    /// delivery id. The limits are not checked here ([`LocalQueue::admit`]
    /// is, before).
    pub fn push_sized(&self, action: &WarmKey, message: M, bytes: usize) -> DeliveryId {
        self.charge(action, bytes);
        let delivery = {
            let mut next = lock(&self.next_delivery);
            let id = *next;
            *next += 1;
            id
        };
        // Pushed under the lanes lock: `forget_if_empty` cannot drop the
        // lane between the lookup and the push (the message would sit where
        // no puller looks).
        let (lane, ()) = self.lane_with(action, |lane| {
            lock(&lane.state)
                .pending
                .push_back((delivery, message, bytes));
        });
        lane.arrived.notify_one();
        delivery
    }

    /// Activations of `action` waiting, and in flight.
    pub fn depth(&self, action: &WarmKey) -> (usize, usize) {
        let lane = self.lane(action);
        let state = lock(&lane.state);
        (state.pending.len(), state.in_flight.len())
    }

    /// Activations of `action` waiting (0 for an action without a queue).
    pub fn waiting(&self, action: &WarmKey) -> usize {
        let Some(lane) = lock(&self.lanes).get(action).cloned() else {
            return 0;
        };
        lock(&lane.state).pending.len()
    }

    /// Activations of `action` waiting, in flight, and waiting that match
    /// `stale` (the scheduler's stale count), in one look.
    pub fn stats(&self, action: &WarmKey, stale: impl Fn(&M) -> bool) -> (usize, usize, usize) {
        let Some(lane) = lock(&self.lanes).get(action).cloned() else {
            return (0, 0, 0);
        };
        let state = lock(&lane.state);
        let stale = state.pending.iter().filter(|(_, m, _)| stale(m)).count();
        (state.pending.len(), state.in_flight.len(), stale)
    }

    /// Removes and returns the waiting activations of `action` that match
    /// `which` (expired ones, or all at shutdown); in-flight ones stay.
    pub fn remove_pending(&self, action: &WarmKey, which: impl Fn(&M) -> bool) -> Vec<M>
    where
        M: Clone,
    {
        let Some(lane) = lock(&self.lanes).get(action).cloned() else {
            return Vec::new();
        };
        let mut released = 0usize;
        let removed = {
            let mut state = lock(&lane.state);
            let mut removed = Vec::new();
            state.pending.retain(|(_, m, bytes)| {
                if which(m) {
                    removed.push(m.clone());
                    released = released.saturating_add(*bytes);
                    false
                } else {
                    true
                }
            });
            state.shrink_if_empty();
            removed
        };
        self.release(action, released);
        removed
    }

    /// Forgets `action`'s queue if nothing waits or is in flight in it and
    /// no puller waits on it (an idle action costs nothing); a later push or
    /// pull makes a new one.
    pub fn forget_if_empty(&self, action: &WarmKey) {
        let mut lanes = lock(&self.lanes);
        let empty = lanes.get(action).is_some_and(|lane| {
            let state = lock(&lane.state);
            state.pending.is_empty()
                && state.in_flight.is_empty()
                && lane.pullers.load(Ordering::Acquire) == 0
        });
        if empty {
            lanes.remove(action);
        }
    }

    fn take(lane: &Lane<M>) -> Option<Pulled<M>>
    where
        M: Clone,
    {
        let mut state = lock(&lane.state);
        let (delivery, message, bytes) = state.pending.pop_front()?;
        state.in_flight.insert(delivery, (message.clone(), bytes));
        Some(Pulled { message, delivery })
    }
}

#[async_trait::async_trait]
impl<M: Clone + Send + Sync + 'static> ActivationQueue<M> for LocalQueue<M> {
    async fn pull(
        &self,
        action: &WarmKey,
        wait: Duration,
    ) -> Result<Option<Pulled<M>>, QueueError> {
        let (lane, _) = self.lane_with(action, |lane| lane.pullers.fetch_add(1, Ordering::AcqRel));
        let _puller = Puller(&lane.pullers);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a push between the look
            // and the wait is not missed.
            let arrived = lane.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(pulled) = Self::take(&lane) {
                return Ok(Some(pulled));
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn done(&self, action: &WarmKey, delivery: DeliveryId) -> Result<(), QueueError> {
        let lane = self.lane(action);
        let removed = {
            let mut state = lock(&lane.state);
            let removed = state.in_flight.remove(&delivery);
            state.shrink_if_empty();
            removed
        };
        let (_, bytes) = removed.ok_or(QueueError::UnknownDelivery(delivery))?;
        self.release(action, bytes);
        Ok(())
    }

    async fn redeliver(&self, action: &WarmKey, delivery: DeliveryId) -> Result<(), QueueError> {
        let lane = self.lane(action);
        {
            let mut state = lock(&lane.state);
            let (message, bytes) = state
                .in_flight
                .remove(&delivery)
                .ok_or(QueueError::UnknownDelivery(delivery))?;
            state.pending.push_front((delivery, message, bytes));
        }
        lane.arrived.notify_one();
        Ok(())
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
