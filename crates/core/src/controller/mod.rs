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
//! five times, keeping its creation id, to another invoker where one can
//! take it (docs/openwhisk.md §5.4); then the queue's next decision tries afresh
//! while activations wait. A creation not answered within
//! `creation-timeout` (20 s, OpenWhisk's `in-progress-job-retention`) counts
//! as refused with `TimeoutError` (its invoker may have died).
//!
//! # Standalone and cluster
//! The logic above is the same in both modes; only the ports differ
//! ([`ports`]): the queues ([`Queues`]: in memory, or JetStream), where
//! creations go ([`Dispatch`]: the in-process pool, or an invoker chosen
//! from etcd and reached over NATS), the view of live sandboxes (a
//! [`LocalClusterState`] the pool writes, or a mirror of etcd), and how
//! completions arrive (the record store in one process; completion
//! messages in a cluster).

mod completions;
pub mod decide;
mod local;
pub mod ports;
pub mod round;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

pub use completions::{Completions, RecordingStore};
pub use local::{LocalJournal, NoJournal};
pub use ports::{Dispatch, Journal, NotSent, QueueKey, QueueStats, Queues, Taken};
use round::{CreationView, QueueView, RoundInput, plan_round};

use crate::config::ControllerConfig;
use crate::pool::local::{LocalClusterState, Outgoing};
use crate::pool::ports::{ActivationStore, ExecutableAction};
use crate::pool::record::fallback_activation;
use crate::sync::lock;
use wasmwhisk_protocol::{
    AcknowledgementMessage, ActivationId, ActivationMessage, ActivationOrId, ActivationResponse,
    ContainerCreationAckMessage, ContainerCreationError, ContainerCreationMessage,
    ContainerDeletionMessage, ContainerKeyKind, ControllerInstanceId, CreationId, EtcdKeys,
    Identity, SchedulerInstanceId, WhiskActivation,
};

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
    /// The activations queued by the namespace, or by everyone, hold as
    /// much memory as they may (HTTP 429).
    #[error("{0}")]
    QueueFull(#[from] crate::pool::queue_bytes::QueueFull),
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
    /// A creation unanswered this long fails with `TimeoutError`
    /// (OpenWhisk's `in-progress-job-retention`, 20 s).
    pub creation_timeout: Duration,
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
            creation_timeout: Duration::from_secs(20),
        }
    }
}

/// What the controller is wired to.
pub struct ControllerPorts {
    /// Where creations and deletions go (the pool, or invokers).
    pub dispatch: Arc<dyn Dispatch>,
    /// The queues sandboxes pull from.
    pub queues: Arc<dyn Queues>,
    /// Creation acks (and completions) addressed to this controller.
    pub bus: UnboundedReceiver<Outgoing>,
    /// The journal of accepted activations.
    pub journal: Arc<dyn Journal>,
    /// The activation store, wrapped in a [`RecordingStore`] over
    /// `completions`: the controller stores its failures there (and in one
    /// process, the pool stores every record through it).
    pub records: Arc<dyn ActivationStore>,
    /// Where blocking invokes wait.
    pub completions: Arc<Completions>,
    /// The live sandboxes' keys (the pool's own in one process; a mirror of
    /// etcd in a cluster).
    pub cluster: Arc<LocalClusterState>,
    /// The key layout.
    pub keys: EtcdKeys,
    /// This controller (`whisk.completed{id}`) and its scheduler
    /// (`whisk.creationAck{sid}`).
    pub id: ControllerInstanceId,
    /// The scheduler id creation messages carry.
    pub scheduler: SchedulerInstanceId,
    /// Whether blocking invokes learn of completions from the completion
    /// messages on `bus` (a cluster) rather than from `records` (one
    /// process, where the pool stores through it). It also says what
    /// `cluster` is: the pool's own map, where a sandbox's key is written
    /// before its creation's ack (one process), or a mirror of etcd that
    /// may lag the acks (a cluster; see `Inner::acked_settle`).
    pub completions_from_acks: bool,
}

/// A creation sent and not answered yet — or answered with success so
/// recently that its sandbox's key may not be visible yet.
#[derive(Debug, Clone)]
struct Creation {
    msg: ContainerCreationMessage,
    /// When it was (last) sent.
    sent: Instant,
    /// Invokers that refused it.
    avoid: Vec<u32>,
    /// When it was answered with success, and how many live sandboxes of
    /// the revision were seen then. It still counts as coming until one
    /// more is seen or [`ACKED_SETTLE`] passed: the ack and the sandbox's
    /// key travel different ways (NATS, etcd) and either may come first.
    acked: Option<(Instant, usize)>,
}

/// How long a successful creation counts as coming when its sandbox's key
/// has not been seen, in a cluster (see [`Inner::acked_settle`]).
const ACKED_SETTLE: Duration = Duration::from_secs(1);

/// One action's queue as the scheduler sees it.
#[derive(Debug)]
struct ActionQueue {
    /// The action at the queue's revision.
    action: Arc<ExecutableAction>,
    /// `{cluster}/namespace/{invNs}/{fqn}/{rev}/`: its live sandboxes.
    existing_prefix: String,
    /// Creations sent and not answered yet (or waiting to be sent again).
    in_progress: HashMap<CreationId, Creation>,
    /// Last time something was queued.
    last_used: Instant,
}

/// The scheduler's state: every queue, and which queue each creation is for.
#[derive(Debug, Default)]
struct QueueTable {
    queues: HashMap<QueueKey, ActionQueue>,
    creations: HashMap<CreationId, QueueKey>,
}

struct Inner {
    dispatch: Arc<dyn Dispatch>,
    queues: Arc<dyn Queues>,
    journal: Arc<dyn Journal>,
    records: Arc<dyn ActivationStore>,
    completions: Arc<Completions>,
    cluster: Arc<LocalClusterState>,
    keys: EtcdKeys,
    settings: ControllerSettings,
    id: ControllerInstanceId,
    scheduler: SchedulerInstanceId,
    completions_from_acks: bool,
    /// Refusals made here (a creation that could not be sent), handled by
    /// the listener like an invoker's.
    refused: UnboundedSender<ContainerCreationAckMessage>,
    state: Mutex<QueueTable>,
    accepting: AtomicBool,
    /// Decision rounds so far.
    rounds: std::sync::atomic::AtomicU64,
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

fn kind_of(action: &ExecutableAction) -> &str {
    action.meta.exec.kind()
}

/// The queue key of an invoke of `action` by `namespace`.
fn queue_key(namespace: &str, action: &ExecutableAction) -> QueueKey {
    QueueKey {
        invocation_namespace: namespace.to_string(),
        action: action
            .meta
            .fully_qualified_name()
            .as_string_without_version(),
        revision: action.revision.to_string(),
    }
}

impl Controller {
    /// Starts the controller (within a Tokio runtime): its ack listener and
    /// its periodic decisions.
    pub fn start(ports: ControllerPorts, settings: ControllerSettings) -> Controller {
        let ControllerPorts {
            dispatch,
            queues,
            bus,
            journal,
            records,
            completions,
            cluster,
            keys,
            id,
            scheduler,
            completions_from_acks,
        } = ports;
        let (stop, stopped) = watch::channel(false);
        let (refused, refusals) = tokio::sync::mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            dispatch,
            queues,
            journal,
            records,
            completions,
            cluster,
            keys,
            settings,
            id,
            scheduler,
            completions_from_acks,
            refused,
            state: Mutex::new(QueueTable::default()),
            accepting: AtomicBool::new(true),
            rounds: std::sync::atomic::AtomicU64::new(0),
            stop,
        });
        tokio::spawn(listen(inner.clone(), bus, refusals, stopped.clone()));
        tokio::spawn(tick(inner.clone(), stopped));
        Controller { inner }
    }

    /// This controller's id.
    pub fn id(&self) -> &ControllerInstanceId {
        &self.inner.id
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
        let namespace = request.user.namespace.name.clone();
        let key = queue_key(&namespace, &action);
        let waiting = inner.queues.waiting(&key);
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
        // Checked before the journal: a refused invoke leaves no trace.
        let charge = inner.queues.admit(&key, &msg)?;
        let id = msg.activation_id.clone();
        let result = request
            .blocking
            .then(|| inner.completions.wait_for(id.clone()));
        let durable = inner.journal.accepted(&msg, kind_of(&action));
        // Moved into the queue: a blocking invoke keeps no copy of its
        // parameters while it waits.
        if let Err(e) = inner.queues.push(&key, msg, charge).await {
            inner.completions.forget(&id);
            tracing::warn!(activation = %id, error = %e, "queueing an activation failed");
            return Err(InvokeError::Unavailable(format!(
                "The activation could not be queued: {e}"
            )));
        }
        inner.first_sandbox(&key, &action).await;

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
                // A completion message may have been missed (another
                // process, a reconnect) or carried no record: the store
                // has the last word.
                if inner.completions_from_acks
                    && let Ok(Some(record)) = inner.records.get_in(&namespace, &id).await
                {
                    return Ok(Invocation::Completed(Box::new(record)));
                }
                Ok(Invocation::Accepted(id))
            }
        }
    }

    /// `old` was replaced by a newer revision or deleted: its sandboxes go
    /// (a busy one after the activation in hand). Activations already queued
    /// for it still run, on a sandbox of their revision while the store
    /// keeps it.
    pub async fn action_replaced(&self, old: &ExecutableAction) {
        let namespace = old.meta.namespace.root().to_string();
        self.inner
            .dispatch
            .delete(ContainerDeletionMessage::for_action(
                &namespace,
                &old.meta,
                old.revision.clone(),
            ))
            .await;
    }

    /// Stops intake, lets in-process invokers finish in-flight activations
    /// for at most `grace`, then records every activation still queued as
    /// failed — unless the queues are durable (a cluster), where they stay
    /// for the other controllers and the invokers.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.accepting.store(false, Ordering::Release);
        inner.dispatch.shutdown(grace).await;
        let _ = inner.stop.send(true);
        if inner.queues.durable() {
            // The activations stay queued for the other controllers and
            // the invokers; blocking invokes answer with their ids now.
            inner.completions.forget_all();
            return;
        }
        let keys: Vec<(QueueKey, Arc<ExecutableAction>)> = lock(&inner.state)
            .queues
            .iter()
            .map(|(k, q)| (k.clone(), q.action.clone()))
            .collect();
        for (key, action) in keys {
            let left = inner
                .queues
                .take_waiting(&key, None, false)
                .await
                .unwrap_or_default();
            let response = ActivationResponse::whisk_error(
                "The system shut down before the activation started.",
            );
            inner.fail(&key, left, &action, &response).await;
        }
    }

    /// Takes on the queue of `key` (found with activations waiting and no
    /// controller deciding for it, e.g. after its controller died): it is
    /// decided on from the next round.
    pub fn adopt(&self, key: QueueKey, action: Arc<ExecutableAction>) {
        let mut state = lock(&self.inner.state);
        if state.queues.contains_key(&key) {
            return;
        }
        if let Some(queue) = self.inner.new_queue(&key, action) {
            state.queues.insert(key, queue);
        }
    }

    /// Whether this controller has a queue for `key`.
    pub fn knows(&self, key: &QueueKey) -> bool {
        lock(&self.inner.state).queues.contains_key(key)
    }
}

impl Inner {
    fn new_queue(&self, key: &QueueKey, action: Arc<ExecutableAction>) -> Option<ActionQueue> {
        let existing_prefix = self
            .keys
            .containers_prefix(
                ContainerKeyKind::Existing,
                &key.invocation_namespace,
                &action.meta.fully_qualified_name(),
                Some(&action.revision),
            )
            .ok()?;
        Some(ActionQueue {
            action,
            existing_prefix,
            in_progress: HashMap::new(),
            last_used: Instant::now(),
        })
    }

    /// The fast path of a first activation: if the action has no sandbox
    /// pulling and none coming, ask for one now instead of at the next
    /// decision.
    ///
    /// Every controller does this for the invokes it accepts, even for a
    /// queue another controller decides for: a first activation does not
    /// wait for the leader to notice it (at worst two first sandboxes).
    async fn first_sandbox(self: &Arc<Self>, key: &QueueKey, action: &Arc<ExecutableAction>) {
        let msg = {
            let mut state = lock(&self.state);
            let QueueTable { queues, creations } = &mut *state;
            let queue = match queues.get_mut(key) {
                Some(q) => q,
                None => {
                    let Some(queue) = self.new_queue(key, action.clone()) else {
                        return;
                    };
                    queues.entry(key.clone()).or_insert(queue)
                }
            };
            queue.last_used = Instant::now();
            if !queue.in_progress.is_empty() || self.cluster.has_prefix(&queue.existing_prefix) {
                return;
            }
            book_creation(queue, creations, key, &self.scheduler)
        };
        self.send_creation(msg, action.clone(), Vec::new()).await;
    }

    /// Sends a creation; one that cannot be sent at all is answered here as
    /// its invoker would have refused it.
    async fn send_creation(
        self: &Arc<Self>,
        msg: ContainerCreationMessage,
        action: Arc<ExecutableAction>,
        avoid: Vec<u32>,
    ) {
        if let Err(not_sent) = self.dispatch.create(msg.clone(), &action, &avoid).await {
            // Answered through the listener, as an invoker's refusal is.
            let ack = refusal(&msg, not_sent.error, not_sent.reason);
            let _ = self.refused.send(ack);
        }
    }

    /// Stores a failure record for each of `taken`, then settles them.
    async fn fail(
        &self,
        key: &QueueKey,
        taken: Vec<Taken>,
        action: &ExecutableAction,
        response: &ActivationResponse,
    ) {
        if taken.is_empty() {
            return;
        }
        let mut settled = Vec::with_capacity(taken.len());
        let mut unstored = Vec::new();
        for t in taken {
            let record = fallback_activation(&t.message, Some(kind_of(action)), response.clone());
            match self.records.store(&record).await {
                Ok(()) => settled.push(t.delivery),
                Err(e) => {
                    tracing::error!(activation = %t.message.activation_id, error = %e, "storing a failed activation's record failed; it goes back to its queue");
                    unstored.push(t);
                }
            }
        }
        self.queues.settle(key, &settled).await;
        if !unstored.is_empty() {
            self.queues.give_back(key, unstored).await;
        }
    }

    /// One round of decisions over every queue this controller leads (and
    /// a look at the others, for their 429 limit).
    async fn decide_all(self: &Arc<Self>) {
        let known: Vec<(QueueKey, Arc<ExecutableAction>, bool, bool)> = {
            let state = lock(&self.state);
            state
                .queues
                .iter()
                .map(|(k, q)| {
                    // No live sandbox and nothing coming: activations held
                    // now were held by a sandbox that died.
                    let orphaned = !self.cluster.has_prefix(&q.existing_prefix)
                        && q.in_progress.values().all(|c| c.acked.is_some());
                    (
                        k.clone(),
                        q.action.clone(),
                        self.dispatch.leads(k),
                        orphaned,
                    )
                })
                .collect()
        };
        let retention = self.settings.queue_max_retention;
        let mut expired = Vec::new();
        let mut stats = HashMap::with_capacity(known.len());
        // A queue another controller leads is looked at only for its 429
        // limit: every tenth round is enough.
        let round = self.rounds.fetch_add(1, Ordering::Relaxed);
        for (key, action, led, orphaned) in &known {
            if !led && !round.is_multiple_of(10) {
                continue;
            }
            let mut s = match self.queues.stats(key, self.settings.stale_threshold).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(action = %key.action, error = %e, "reading a queue failed");
                    continue;
                }
            };
            if !led {
                continue;
            }
            let orphans = *orphaned && s.in_flight > 0;
            match self
                .queues
                .take_waiting(key, Some(retention), orphans)
                .await
            {
                Ok(late) if !late.is_empty() => {
                    // Taken out now: neither waiting nor running any more.
                    s.in_flight = s.in_flight.saturating_sub(late.len());
                    expired.push((key.clone(), late, action.clone()));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(action = %key.action, error = %e, "expiring a queue failed")
                }
            }
            stats.insert(key.clone(), s);
        }

        let led_here: std::collections::HashSet<&QueueKey> = known
            .iter()
            .filter(|(_, _, led, _)| *led)
            .map(|(key, ..)| key)
            .collect();
        let settle = self.acked_settle();
        let mut creations = Vec::new();
        let mut timed_out = Vec::new();
        let idle = {
            let mut state = lock(&self.state);
            let QueueTable {
                queues,
                creations: ids,
            } = &mut *state;
            // The round's view of every queue (ages and counts), then its
            // decisions (`round::plan_round`), carried out here.
            let mut namespace_existing: HashMap<String, usize> = HashMap::new();
            for key in queues.keys() {
                let namespace = &key.invocation_namespace;
                if !namespace_existing.contains_key(namespace)
                    && let Ok(prefix) = self.keys.existing_containers_of_namespace(namespace)
                {
                    namespace_existing
                        .insert(namespace.clone(), self.cluster.count_with_prefix(&prefix));
                }
            }
            let views = queues
                .iter()
                .map(|(key, queue)| QueueView {
                    key: key.clone(),
                    existing: self.cluster.count_with_prefix(&queue.existing_prefix),
                    in_progress: queue
                        .in_progress
                        .iter()
                        .map(|(id, c)| CreationView {
                            id: id.clone(),
                            sent_ago: c.sent.elapsed(),
                            acked: c.acked.map(|(at, seen)| (at.elapsed(), seen)),
                        })
                        .collect(),
                    stats: stats.get(key).copied(),
                    led: led_here.contains(key),
                    last_used_ago: queue.last_used.elapsed(),
                    avg_duration_ms: self
                        .completions
                        .average_duration(&key.invocation_namespace, &key.action),
                })
                .collect();
            let plan = plan_round(&RoundInput {
                queues: views,
                namespace_existing,
                concurrent_invocations: i64::try_from(self.settings.concurrent_invocations)
                    .unwrap_or(i64::MAX),
                acked_settle: settle,
                creation_timeout: self.settings.creation_timeout,
                idle_grace: self.settings.idle_grace,
            });
            for (key, id) in &plan.settled {
                if let Some(queue) = queues.get_mut(key) {
                    queue.in_progress.remove(id);
                }
            }
            for (key, id) in &plan.timed_out {
                if let Some(creation) = queues.get(key).and_then(|q| q.in_progress.get(id)) {
                    timed_out.push((id.clone(), creation.msg.clone()));
                }
            }
            for (key, add) in &plan.add {
                if let Some(queue) = queues.get_mut(key) {
                    for _ in 0..*add {
                        let msg = book_creation(queue, ids, key, &self.scheduler);
                        creations.push((msg, queue.action.clone()));
                    }
                }
            }
            for key in &plan.idle {
                queues.remove(key);
                self.completions
                    .forget_durations(&key.invocation_namespace, &key.action);
            }
            plan.idle
        };
        for key in &idle {
            self.queues.forget(key).await;
        }
        for (msg, action) in creations {
            self.send_creation(msg, action, Vec::new()).await;
        }
        for (cid, msg) in timed_out {
            tracing::warn!(creation = %cid, action = %msg.action, "a creation was not answered in time");
            let ack = refusal(
                &msg,
                ContainerCreationError::TimeoutError,
                "the invoker did not answer the creation in time".to_string(),
            );
            self.acked(ack, None).await;
        }
        let now = wasmwhisk_protocol::ids::now_epoch_ms();
        for (key, late, action) in expired {
            let waited = late
                .iter()
                .map(|t| now.saturating_sub(t.message.transid.start_ms))
                .max()
                .unwrap_or(0);
            let response = ActivationResponse::whisk_error(format!(
                "Activation processing is not initiated for {waited} ms"
            ));
            self.fail(&key, late, &action, &response).await;
        }
    }

    /// How long a successful creation still counts as coming while no new
    /// key of its action is seen.
    ///
    /// In one process, none: the live view is the pool's own map, and the
    /// pool writes a sandbox's key before it acks its creation, so at the
    /// ack the count already holds the sandbox — or no longer does, when an
    /// activation retired it first (a throw, a trap, a timeout). Counting it
    /// as coming for longer stalled the action's next activation by the
    /// settle after every such failure (issue 20, defect 6). In a cluster
    /// the view is a mirror of etcd, which may see the key after the ack
    /// arrives over NATS: [`ACKED_SETTLE`].
    fn acked_settle(&self) -> Duration {
        if self.completions_from_acks {
            ACKED_SETTLE
        } else {
            Duration::ZERO
        }
    }

    /// A creation was answered (by invoker `from`, when known).
    async fn acked(self: &Arc<Self>, ack: ContainerCreationAckMessage, from: Option<u32>) {
        let Some(error) = ack.error else {
            let settled_at_once = self.acked_settle().is_zero();
            let answered = {
                let mut state = lock(&self.state);
                match state.creations.remove(&ack.creation_id) {
                    Some(key) => state.queues.get_mut(&key).and_then(|q| {
                        if settled_at_once {
                            // Its sandbox, if still alive, is in the count.
                            return q.in_progress.remove(&ack.creation_id).map(|c| c.msg);
                        }
                        let seen = self.cluster.count_with_prefix(&q.existing_prefix);
                        q.in_progress.get_mut(&ack.creation_id).map(|creation| {
                            creation.acked = Some((Instant::now(), seen));
                            creation.msg.clone()
                        })
                    }),
                    None => None,
                }
            };
            if let (Some(msg), Some(from)) = (answered, from) {
                self.dispatch.answered(&msg, from);
            }
            return;
        };
        let next = self.after_refusal(&ack, error, from);
        match next {
            AfterRefusal::Nothing => {}
            AfterRefusal::Retry(msg, action, avoid) => {
                let backoff = RETRY_BASE * 2u32.pow(msg.retry_count.saturating_sub(1));
                let inner = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(backoff).await;
                    inner.send_creation(*msg, action, avoid).await;
                });
            }
            AfterRefusal::Flush(key, action) => {
                let reason = ack
                    .reason
                    .clone()
                    .unwrap_or_else(|| error.description().to_string());
                let left = self
                    .queues
                    .take_waiting(&key, None, false)
                    .await
                    .unwrap_or_default();
                tracing::info!(action = %key.action, error = error.name(), failed = left.len(), "creation failed; failing the queued activations");
                self.fail(
                    &key,
                    left,
                    &action,
                    &ActivationResponse::developer_error(reason),
                )
                .await;
            }
        }
    }

    /// Books a refused creation: retry it, or give up on it — and if
    /// nothing else can serve the queue and retrying cannot help, flush it.
    fn after_refusal(
        &self,
        ack: &ContainerCreationAckMessage,
        error: ContainerCreationError,
        from: Option<u32>,
    ) -> AfterRefusal {
        let mut state = lock(&self.state);
        let Some(key) = state.creations.get(&ack.creation_id).cloned() else {
            return AfterRefusal::Nothing;
        };
        let Some(queue) = state.queues.get_mut(&key) else {
            state.creations.remove(&ack.creation_id);
            return AfterRefusal::Nothing;
        };
        let action = queue.action.clone();
        let Some(creation) = queue.in_progress.get_mut(&ack.creation_id) else {
            state.creations.remove(&ack.creation_id);
            return AfterRefusal::Nothing;
        };
        if let Some(from) = from {
            self.dispatch.answered(&creation.msg, from);
            if !creation.avoid.contains(&from) {
                creation.avoid.push(from);
            }
        }
        if error.is_reschedulable() && creation.msg.retry_count < MAX_RETRIES {
            creation.msg.retry_count += 1;
            creation.sent = Instant::now();
            return AfterRefusal::Retry(
                Box::new(creation.msg.clone()),
                action,
                creation.avoid.clone(),
            );
        }
        queue.in_progress.remove(&ack.creation_id);
        let flush = !error.is_reschedulable()
            && queue.in_progress.is_empty()
            && !self.cluster.has_prefix(&queue.existing_prefix);
        state.creations.remove(&ack.creation_id);
        if flush {
            AfterRefusal::Flush(key, action)
        } else {
            AfterRefusal::Nothing
        }
    }

    /// A completion message arrived (a cluster), handled in the order they
    /// come — an invoker sends a blocking activation's `ResultMessage`
    /// (with the record) before its `CompletionMessage` (without): a
    /// waiting invoke gets the record the message carries; a message
    /// without one that finds the invoke still waiting (the record was too
    /// large for a message) ends the wait, and the invoke reads the record
    /// from the store by its namespace and id.
    fn completed(&self, ack: &AcknowledgementMessage) {
        match ack.result() {
            Some(ActivationOrId::Activation(activation)) => {
                self.completions.completed(activation);
            }
            _ => self.completions.forget(ack.activation_id()),
        }
    }
}

/// A new creation for `queue` (of `key`), booked as in progress: the
/// message to send.
fn book_creation(
    queue: &mut ActionQueue,
    creations: &mut HashMap<CreationId, QueueKey>,
    key: &QueueKey,
    scheduler: &SchedulerInstanceId,
) -> ContainerCreationMessage {
    let msg = ContainerCreationMessage::for_action(
        &key.invocation_namespace,
        &queue.action.meta,
        queue.action.revision.clone(),
        scheduler.clone(),
    );
    queue.in_progress.insert(
        msg.creation_id.clone(),
        Creation {
            msg: msg.clone(),
            sent: Instant::now(),
            avoid: Vec::new(),
            acked: None,
        },
    );
    creations.insert(msg.creation_id.clone(), key.clone());
    msg
}

/// A refusal of `msg` made by the controller itself (it could not be sent,
/// or was never answered).
fn refusal(
    msg: &ContainerCreationMessage,
    error: ContainerCreationError,
    reason: String,
) -> ContainerCreationAckMessage {
    ContainerCreationAckMessage::answer(
        msg,
        wasmwhisk_protocol::InvokerInstanceId::new(0, wasmwhisk_protocol::ByteSize::from_mb(0)),
        Some((error, reason)),
    )
}

/// What a refused creation leads to.
enum AfterRefusal {
    Nothing,
    Retry(
        Box<ContainerCreationMessage>,
        Arc<ExecutableAction>,
        Vec<u32>,
    ),
    Flush(QueueKey, Arc<ExecutableAction>),
}

/// Retries of a reschedulable creation error (OpenWhisk's 5).
const MAX_RETRIES: u32 = 5;
/// The first retry's delay; each next one doubles.
const RETRY_BASE: Duration = Duration::from_millis(100);

/// Handles the acks addressed to this controller until the bus closes or
/// the controller stops.
async fn listen(
    inner: Arc<Inner>,
    mut bus: UnboundedReceiver<Outgoing>,
    mut refusals: UnboundedReceiver<ContainerCreationAckMessage>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            Some(ack) = refusals.recv() => inner.acked(ack, None).await,
            message = bus.recv() => match message {
                Some(Outgoing::CreationAck(_, ack)) => {
                    let from = Some(ack.root_invoker_index.instance);
                    inner.acked(*ack, from).await
                }
                Some(Outgoing::Completion(_, ack)) => {
                    // In one process blocking invokes hear of completions
                    // from the record store.
                    if inner.completions_from_acks {
                        inner.completed(&ack);
                    }
                }
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
