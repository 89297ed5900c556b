//! The controller side of standalone mode: per-action queues, the
//! scheduling decisions that turn a queue into creation messages, and
//! invokes that wait for their result.
//!
//! # One invoke
//! 1. The activation message is journaled ([`Journal`]: a restart records it
//!    as failed if it never completes) and pushed to its action's queue —
//!    the in-process [`LocalQueue`] sandboxes pull from, keyed like warm
//!    reuse by (invocation namespace, action, revision).
//! 2. If the action has no sandbox pulling and none being created, a
//!    creation message goes to the pool at once; otherwise the periodic
//!    decision (every `check-interval`) adds sandboxes as OpenWhisk's
//!    `SchedulingDecisionMaker` would ([`decide`]).
//! 3. A sandbox pulls it, runs it and stores its record; the store is
//!    wrapped ([`completions`]) so a blocking invoke gets the stored record
//!    the moment it is durable. A blocking invoke that waits longer than its
//!    wait gets the activation id instead (HTTP 202).
//!
//! # What never gets lost
//! Every accepted activation ends with a stored record: a result, or a
//! stated failure — a queue's retention (`queue-max-retention`) expiring
//! ("Activation processing is not initiated for N ms"), a creation failing
//! for a reason that retrying cannot fix (the developer error is given to
//! every queued activation, as OpenWhisk's queue does when flushing), the
//! process shutting down before it started, or, after a crash, the journal.
//!
//! # Creation acks
//! A refused creation whose error OpenWhisk reschedules
//! (`ResourceNotEnoughError`, …) is sent again after `2^n × 100 ms`, at most
//! five times, keeping its creation id (reference §5.4); then the queue's
//! next decision tries afresh while activations wait.

mod completions;
pub mod decide;
mod local;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{oneshot, watch};

pub use completions::{Completions, RecordingStore};
use decide::{QueueSnapshot, sandboxes_to_add};
pub use local::LocalJournal;

use crate::config::ControllerConfig;
use crate::pool::invoker::PoolHandle;
use crate::pool::local::{LocalClusterState, Outgoing};
use crate::pool::ports::{ActivationStore, ExecutableAction, StoreError};
use crate::pool::queue::LocalQueue;
use crate::pool::record::fallback_activation;
use crate::pool::slot::WarmKey;
use crate::protocol::{
    ActivationId, ActivationMessage, ActivationResponse, ContainerCreationAckMessage,
    ContainerCreationError, ContainerCreationMessage, ContainerDeletionMessage, ContainerKeyKind,
    ControllerInstanceId, CreationId, EtcdKeys, Identity, SchedulerInstanceId, WhiskActivation,
};
use crate::sync::lock;

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

/// One invoke.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// Who invokes (the invocation namespace is `user.namespace.name`).
    pub user: Identity,
    /// The action, latest revision.
    pub action: Arc<ExecutableAction>,
    /// The run parameters: the action's parameters merged with the
    /// payload (a JSON object).
    pub content: Option<Value>,
    /// Names of the parameters that go to `init` (OpenWhisk's `initArgs`).
    pub init_args: Vec<String>,
    /// Wait for the result.
    pub blocking: bool,
    /// How long a blocking invoke waits before answering with the id.
    pub wait: Duration,
}

/// What an invoke gave.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// The activation completed within the wait (its record is stored).
    Completed(Box<WhiskActivation>),
    /// Accepted; the result will be in the record of this id.
    Accepted(ActivationId),
}

/// Why an invoke was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The action's queue is full (HTTP 429).
    #[error("Too many concurrent requests in flight (count: {count}, allowed: {allowed}).")]
    Throttled {
        /// Activations waiting in the queue.
        count: usize,
        /// `queue-max-size`.
        allowed: usize,
    },
    /// The system cannot take it (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
}

/// The controller's settings (`[controller]`).
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// A queue's retention.
    pub queue_max_retention: Duration,
    /// A queue's size beyond which invokes get 429.
    pub queue_max_size: usize,
    /// Waiting longer than this makes an activation stale.
    pub stale_threshold: Duration,
    /// Period of the decisions.
    pub check_interval: Duration,
    /// Sandboxes a namespace may hold.
    pub concurrent_invocations: usize,
    /// An action's queue with nothing in it is forgotten after this.
    pub idle_grace: Duration,
}

impl ControllerSettings {
    /// From `[controller]`.
    pub fn from_config(config: &ControllerConfig) -> ControllerSettings {
        ControllerSettings {
            queue_max_retention: config.queue_max_retention,
            queue_max_size: config.queue_max_size,
            stale_threshold: config.stale_threshold,
            check_interval: config.check_interval,
            concurrent_invocations: config.concurrent_invocations,
            idle_grace: Duration::from_secs(20),
        }
    }
}

/// What the controller is wired to.
pub struct ControllerPorts {
    /// The pool (the one invoker).
    pub pool: PoolHandle,
    /// The queues sandboxes pull from.
    pub queue: Arc<LocalQueue<ActivationMessage>>,
    /// The pool's outgoing messages (creation and completion acks).
    pub bus: UnboundedReceiver<Outgoing>,
    /// The journal of accepted activations.
    pub journal: Arc<dyn Journal>,
    /// The activation store the pool writes through (a [`RecordingStore`]
    /// over `completions`): the controller stores its failures there too.
    pub records: Arc<dyn ActivationStore>,
    /// Where blocking invokes wait.
    pub completions: Arc<Completions>,
    /// The keys the pool writes (its live sandboxes).
    pub cluster: Arc<LocalClusterState>,
    /// The key layout.
    pub keys: EtcdKeys,
}

/// One action's queue as the scheduler sees it.
#[derive(Debug)]
struct ActionQueue {
    /// The action at the queue's revision.
    action: Arc<ExecutableAction>,
    /// `{cluster}/namespace/{invNs}/{fqn}/{rev}/`: its live sandboxes.
    existing_prefix: String,
    /// Creations sent and not answered yet (or waiting to be sent again).
    in_progress: HashMap<CreationId, ContainerCreationMessage>,
    /// Last time something was queued.
    last_used: Instant,
}

/// The scheduler's state: every queue, and which queue each creation is for.
#[derive(Debug, Default)]
struct Queues {
    queues: HashMap<WarmKey, ActionQueue>,
    creations: HashMap<CreationId, WarmKey>,
}

struct Inner {
    pool: PoolHandle,
    queue: Arc<LocalQueue<ActivationMessage>>,
    journal: Arc<dyn Journal>,
    records: Arc<dyn ActivationStore>,
    completions: Arc<Completions>,
    cluster: Arc<LocalClusterState>,
    keys: EtcdKeys,
    settings: ControllerSettings,
    id: ControllerInstanceId,
    scheduler: SchedulerInstanceId,
    state: Mutex<Queues>,
    accepting: AtomicBool,
    stop: watch::Sender<bool>,
}

/// The controller. Cheap to clone.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("id", &self.inner.id)
            .finish()
    }
}

fn now_ms() -> u64 {
    crate::protocol::ids::now_epoch_ms()
}

fn kind_of(action: &ExecutableAction) -> &str {
    action.meta.exec.kind()
}

impl Controller {
    /// Starts the controller (within a Tokio runtime): its ack listener and
    /// its periodic decisions.
    pub fn start(ports: ControllerPorts, settings: ControllerSettings) -> Controller {
        let ControllerPorts {
            pool,
            queue,
            bus,
            journal,
            records,
            completions,
            cluster,
            keys,
        } = ports;
        let (stop, stopped) = watch::channel(false);
        let inner = Arc::new(Inner {
            pool,
            queue,
            journal,
            records,
            completions,
            cluster,
            keys,
            settings,
            id: ControllerInstanceId::first(),
            scheduler: SchedulerInstanceId::first(),
            state: Mutex::new(Queues::default()),
            accepting: AtomicBool::new(true),
            stop,
        });
        tokio::spawn(listen(inner.clone(), bus, stopped.clone()));
        tokio::spawn(tick(inner.clone(), stopped));
        Controller { inner }
    }

    /// Runs one activation.
    pub async fn invoke(&self, request: InvokeRequest) -> Result<Invocation, InvokeError> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::Acquire) {
            return Err(InvokeError::Unavailable(
                "The system is shutting down.".to_string(),
            ));
        }
        let action = request.action;
        let key = WarmKey {
            invocation_namespace: request.user.namespace.name.clone(),
            action: action
                .meta
                .fully_qualified_name()
                .as_string_without_version(),
            revision: action.revision.to_string(),
        };
        let waiting = inner.queue.waiting(&key);
        if waiting >= inner.settings.queue_max_size {
            return Err(InvokeError::Throttled {
                count: waiting,
                allowed: inner.settings.queue_max_size,
            });
        }
        let mut msg = ActivationMessage::for_action(
            &action.meta,
            action.revision.clone(),
            request.user,
            inner.id.clone(),
            request.content,
            request.blocking,
        );
        msg.init_args = request.init_args;
        let id = msg.activation_id.clone();
        let result = request
            .blocking
            .then(|| inner.completions.wait_for(id.clone()));
        let durable = inner.journal.accepted(&msg, kind_of(&action));
        inner.queue.push(&key, msg);
        inner.first_sandbox(&key, &action);

        let Some(result) = result else {
            match durable.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(activation = %id, error = %e, "journaling an accepted activation failed")
                }
                Err(_) => tracing::warn!(activation = %id, "the journal stopped"),
            }
            return Ok(Invocation::Accepted(id));
        };
        match tokio::time::timeout(request.wait, result).await {
            Ok(Ok(activation)) => Ok(Invocation::Completed(Box::new(activation))),
            _ => {
                inner.completions.forget(&id);
                Ok(Invocation::Accepted(id))
            }
        }
    }

    /// `old` was replaced by a newer revision or deleted: its sandboxes go
    /// (a busy one after the activation in hand). Activations already queued
    /// for it still run, on a sandbox of their revision while the store
    /// keeps it.
    pub fn action_replaced(&self, old: &ExecutableAction) {
        let namespace = old.meta.namespace.root().to_string();
        self.inner.pool.delete(ContainerDeletionMessage::for_action(
            &namespace,
            &old.meta,
            old.revision.clone(),
        ));
    }

    /// Activations waiting in every queue, and invokes waiting for a result.
    pub fn backlog(&self) -> (usize, usize) {
        let keys: Vec<WarmKey> = lock(&self.inner.state).queues.keys().cloned().collect();
        let queued = keys.iter().map(|k| self.inner.queue.waiting(k)).sum();
        (queued, self.inner.completions.waiting())
    }

    /// Stops intake, lets the pool finish in-flight activations for at most
    /// `grace`, then records every activation still queued as failed.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.accepting.store(false, Ordering::Release);
        inner.pool.shutdown(grace).await;
        let _ = inner.stop.send(true);
        let keys: Vec<(WarmKey, Arc<ExecutableAction>)> = lock(&inner.state)
            .queues
            .iter()
            .map(|(k, q)| (k.clone(), q.action.clone()))
            .collect();
        for (key, action) in keys {
            let left = inner.queue.remove_pending(&key, |_| true);
            let response = ActivationResponse::whisk_error(
                "The system shut down before the activation started.",
            );
            inner.fail(left, &action, &response).await;
        }
    }
}

impl Inner {
    /// The fast path of a first activation: if the action has no sandbox
    /// pulling and none coming, ask for one now instead of at the next
    /// decision.
    fn first_sandbox(&self, key: &WarmKey, action: &Arc<ExecutableAction>) {
        let msg = {
            let mut state = lock(&self.state);
            let Queues { queues, creations } = &mut *state;
            let queue = match queues.get_mut(key) {
                Some(q) => q,
                None => {
                    let Ok(existing_prefix) = self.keys.containers_prefix(
                        ContainerKeyKind::Existing,
                        &key.invocation_namespace,
                        &action.meta.fully_qualified_name(),
                        Some(&action.revision),
                    ) else {
                        return;
                    };
                    queues.entry(key.clone()).or_insert(ActionQueue {
                        action: action.clone(),
                        existing_prefix,
                        in_progress: HashMap::new(),
                        last_used: Instant::now(),
                    })
                }
            };
            queue.last_used = Instant::now();
            if !queue.in_progress.is_empty() || self.cluster.has_prefix(&queue.existing_prefix) {
                return;
            }
            let msg = ContainerCreationMessage::for_action(
                &key.invocation_namespace,
                &action.meta,
                action.revision.clone(),
                self.scheduler.clone(),
            );
            queue
                .in_progress
                .insert(msg.creation_id.clone(), msg.clone());
            creations.insert(msg.creation_id.clone(), key.clone());
            msg
        };
        let pool = self.pool.clone();
        tokio::spawn(async move { pool.create(msg).await });
    }

    /// Stores a failure record for each of `msgs`.
    async fn fail(
        &self,
        msgs: Vec<ActivationMessage>,
        action: &ExecutableAction,
        response: &ActivationResponse,
    ) {
        for msg in msgs {
            let record = fallback_activation(&msg, Some(kind_of(action)), response.clone());
            if let Err(e) = self.records.store(&record).await {
                tracing::error!(activation = %msg.activation_id, error = %e, "storing a failed activation's record failed");
            }
        }
    }

    /// One round of decisions over every queue.
    async fn decide_all(self: &Arc<Self>) {
        let now = now_ms();
        let retention =
            u64::try_from(self.settings.queue_max_retention.as_millis()).unwrap_or(u64::MAX);
        let stale_ms = u64::try_from(self.settings.stale_threshold.as_millis()).unwrap_or(u64::MAX);
        let mut creations = Vec::new();
        let mut expired = Vec::new();
        {
            let mut state = lock(&self.state);
            let Queues {
                queues,
                creations: ids,
            } = &mut *state;
            // Live sandboxes and creations per namespace, for its limit.
            let mut namespace_use: HashMap<String, i64> = HashMap::new();
            for (key, queue) in queues.iter() {
                *namespace_use
                    .entry(key.invocation_namespace.clone())
                    .or_default() += queue.in_progress.len() as i64;
            }
            for (namespace, used) in namespace_use.iter_mut() {
                if let Ok(prefix) = self.keys.existing_containers_of_namespace(namespace) {
                    *used += self.cluster.count_with_prefix(&prefix) as i64;
                }
            }
            let limit = self.settings.concurrent_invocations as i64;
            let mut idle = Vec::new();
            for (key, queue) in queues.iter_mut() {
                let late = self
                    .queue
                    .remove_pending(key, |m| now.saturating_sub(m.transid.start_ms) > retention);
                if !late.is_empty() {
                    expired.push((late, queue.action.clone()));
                }
                let (available, in_flight, stale) = self
                    .queue
                    .stats(key, |m| now.saturating_sub(m.transid.start_ms) > stale_ms);
                let existing = self.cluster.count_with_prefix(&queue.existing_prefix);
                let used = namespace_use
                    .get(&key.invocation_namespace)
                    .copied()
                    .unwrap_or(0);
                let snapshot = QueueSnapshot {
                    existing,
                    in_progress: queue.in_progress.len(),
                    available,
                    stale,
                    avg_duration_ms: self
                        .completions
                        .average_duration(&key.invocation_namespace, &key.action),
                    max_concurrent: usize::try_from(queue.action.meta.limits.concurrency)
                        .unwrap_or(1),
                    namespace_capacity: limit - used,
                };
                let add = sandboxes_to_add(&snapshot);
                for _ in 0..add {
                    let msg = ContainerCreationMessage::for_action(
                        &key.invocation_namespace,
                        &queue.action.meta,
                        queue.action.revision.clone(),
                        self.scheduler.clone(),
                    );
                    queue
                        .in_progress
                        .insert(msg.creation_id.clone(), msg.clone());
                    ids.insert(msg.creation_id.clone(), key.clone());
                    creations.push(msg);
                }
                if let Some(used) = namespace_use.get_mut(&key.invocation_namespace) {
                    *used += add as i64;
                }
                if available == 0
                    && in_flight == 0
                    && queue.in_progress.is_empty()
                    && queue.last_used.elapsed() > self.settings.idle_grace
                {
                    idle.push(key.clone());
                }
            }
            for key in idle {
                queues.remove(&key);
                self.queue.forget_if_empty(&key);
                self.completions
                    .forget_durations(&key.invocation_namespace, &key.action);
            }
        }
        for msg in creations {
            self.pool.create(msg).await;
        }
        for (late, action) in expired {
            let waited = late
                .iter()
                .map(|m| now.saturating_sub(m.transid.start_ms))
                .max()
                .unwrap_or(retention);
            let response = ActivationResponse::whisk_error(format!(
                "Activation processing is not initiated for {waited} ms"
            ));
            self.fail(late, &action, &response).await;
        }
    }

    /// A creation was answered.
    async fn acked(self: &Arc<Self>, ack: ContainerCreationAckMessage) {
        let Some(error) = ack.error else {
            let mut state = lock(&self.state);
            if let Some(key) = state.creations.remove(&ack.creation_id)
                && let Some(queue) = state.queues.get_mut(&key)
            {
                queue.in_progress.remove(&ack.creation_id);
            }
            return;
        };
        let next = self.after_refusal(&ack, error);
        let retry = match next {
            AfterRefusal::Nothing => None,
            AfterRefusal::Retry(msg) => Some(msg),
            AfterRefusal::Flush(key, action) => {
                let reason = ack
                    .reason
                    .clone()
                    .unwrap_or_else(|| error.description().to_string());
                let left = self.queue.remove_pending(&key, |_| true);
                tracing::info!(action = %key.action, error = error.name(), failed = left.len(), "creation failed; failing the queued activations");
                self.fail(left, &action, &ActivationResponse::developer_error(reason))
                    .await;
                None
            }
        };
        if let Some(msg) = retry {
            let backoff = RETRY_BASE * 2u32.pow(msg.retry_count.saturating_sub(1));
            let pool = self.pool.clone();
            tokio::spawn(async move {
                tokio::time::sleep(backoff).await;
                pool.create(*msg).await;
            });
        }
    }
    /// Books a refused creation: retry it, or give up on it — and if
    /// nothing else can serve the queue and retrying cannot help, flush it.
    fn after_refusal(
        &self,
        ack: &ContainerCreationAckMessage,
        error: ContainerCreationError,
    ) -> AfterRefusal {
        let mut state = lock(&self.state);
        let Some(key) = state.creations.get(&ack.creation_id).cloned() else {
            return AfterRefusal::Nothing;
        };
        let Some(queue) = state.queues.get_mut(&key) else {
            state.creations.remove(&ack.creation_id);
            return AfterRefusal::Nothing;
        };
        let Some(msg) = queue.in_progress.get_mut(&ack.creation_id) else {
            state.creations.remove(&ack.creation_id);
            return AfterRefusal::Nothing;
        };
        if error.is_reschedulable() && msg.retry_count < MAX_RETRIES {
            msg.retry_count += 1;
            return AfterRefusal::Retry(Box::new(msg.clone()));
        }
        queue.in_progress.remove(&ack.creation_id);
        let flush = !error.is_reschedulable()
            && queue.in_progress.is_empty()
            && !self.cluster.has_prefix(&queue.existing_prefix);
        let action = queue.action.clone();
        state.creations.remove(&ack.creation_id);
        if flush {
            AfterRefusal::Flush(key, action)
        } else {
            AfterRefusal::Nothing
        }
    }
}

/// What a refused creation leads to.
enum AfterRefusal {
    Nothing,
    Retry(Box<ContainerCreationMessage>),
    Flush(WarmKey, Arc<ExecutableAction>),
}

/// Retries of a reschedulable creation error (OpenWhisk's 5).
const MAX_RETRIES: u32 = 5;
/// The first retry's delay; each next one doubles.
const RETRY_BASE: Duration = Duration::from_millis(100);

/// Handles the pool's outgoing messages until the bus closes or the
/// controller stops.
async fn listen(
    inner: Arc<Inner>,
    mut bus: UnboundedReceiver<Outgoing>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            message = bus.recv() => match message {
                Some(Outgoing::CreationAck(_, ack)) => inner.acked(*ack).await,
                // Blocking invokes hear of completions from the record store.
                Some(Outgoing::Completion(..)) => {}
                None => return,
            },
            _ = stopped.changed() => return,
        }
    }
}

/// Runs the decisions every `check-interval` until the controller stops.
async fn tick(inner: Arc<Inner>, mut stopped: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(inner.settings.check_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => inner.decide_all().await,
            _ = stopped.changed() => return,
        }
    }
}
