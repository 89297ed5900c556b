//! The running pool as its callers and its tasks see it: the
//! [`PoolHandle`], the [`Event`]s the tasks send the actor
//! ([`super::actor`]), and what they all share ([`Shared`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::actor::Actor;
use super::container::{Container, ContainerHost};
use super::health::HealthState;
use super::introspect::{PoolMetrics, StartCounts, TotalContainerPoolState};
use super::ports::ExecutableAction;
use super::settings::{PoolPorts, PoolSettings};
use super::slot::{SandboxId, StartKind};
use super::warm::WarmEntry;
use wasmwhisk_protocol::{
    ActivationId, ContainerCreationAckMessage, ContainerCreationError, ContainerCreationMessage,
    ContainerDeletionMessage, EtcdKeys, InvokerInstanceId, WhiskActivation,
};
use wasmwhisk_sandbox::engine::Engine;

/// What the pool's tasks tell the actor.
#[derive(Debug)]
pub enum Event {
    /// A creation message with its loaded action.
    Create {
        /// The message.
        msg: ContainerCreationMessage,
        /// The action.
        action: Arc<ExecutableAction>,
    },
    /// A deletion message.
    Delete(ContainerDeletionMessage),
    /// Enable the invoker.
    Enable,
    /// Disable the invoker (drain).
    Disable,
    /// Report the state.
    State(oneshot::Sender<PoolSnapshot>),
    /// Shut down: drain for at most `grace`, publish `down`.
    Shutdown {
        /// How long in-flight activations may take.
        grace: Duration,
        /// Answered when done.
        done: oneshot::Sender<()>,
    },
    /// A stem cell was created (or not).
    StemCell {
        /// Its id.
        id: SandboxId,
        /// The sandbox, or why not.
        result: Result<Container, String>,
        /// When it expires.
        expires: Option<Instant>,
    },
    /// `Initialized` / `Resumed`: the proxy pulls.
    Ready {
        /// The sandbox.
        id: SandboxId,
    },
    /// `ResumeFailed`: a warmed sandbox could not be resumed and is gone;
    /// its creation is tried again.
    ResumeFailed {
        /// The sandbox.
        id: SandboxId,
        /// The action it was to run.
        action: Arc<ExecutableAction>,
    },
    /// `ContainerCreationFailed`.
    CreationFailed {
        /// The sandbox.
        id: SandboxId,
        /// The ack's error: `WhiskError` (reschedulable), or `BlackBoxError`
        /// when an image kind's container cannot be created.
        kind: ContainerCreationError,
        /// Why.
        error: String,
    },
    /// `ContainerIsPaused`, with the sandbox handed back.
    Paused {
        /// The sandbox.
        id: SandboxId,
        /// When it last ran.
        last_used: Instant,
        /// It, and what it needs to run again.
        entry: WarmEntry,
    },
    /// `ContainerRemoved`.
    Removed {
        /// The sandbox.
        id: SandboxId,
        /// Backfill stem cells.
        replace_prewarm: bool,
    },
    /// The keep decision of a warmed sandbox whose `idle-container` ran out
    /// (the sandbox waits in the actor's `deciding` map meanwhile).
    KeepDecision {
        /// The sandbox.
        id: SandboxId,
        /// Keep it this long more; `None`: remove it.
        keep: Option<Duration>,
    },
    /// An activation's outcome for the health buffer (`false`: system error).
    Outcome(bool),
}

/// What every task of the pool shares.
pub struct Shared {
    /// The engine.
    pub engine: Arc<Engine>,
    /// This invoker.
    pub invoker: InvokerInstanceId,
    /// The cluster's keys.
    pub keys: EtcdKeys,
    /// The settings.
    pub settings: PoolSettings,
    /// The ports.
    pub ports: PoolPorts,
    /// Activations by start kind, counted by the proxies.
    pub starts: StartCounters,
    /// The Docker fallback ([`PoolPorts::containers`]).
    pub docker: Arc<dyn ContainerHost>,
    /// Set when the pool starts shutting down: an activation a container
    /// cannot take is then failed, not given back to a queue nobody will
    /// read again.
    pub shutting_down: std::sync::atomic::AtomicBool,
    /// How often this invoker handed each recent activation back because
    /// its container could not run it (503, refused `/run`): bounded, so a
    /// container image that always refuses cannot bounce an activation for
    /// ever.
    pub reschedules: moka::sync::Cache<ActivationId, u32>,
    pub(super) events: mpsc::UnboundedSender<Event>,
}

/// Activations by start kind; relaxed counters, read for metrics only.
#[derive(Debug, Default)]
pub struct StartCounters {
    cold: std::sync::atomic::AtomicU64,
    prewarm: std::sync::atomic::AtomicU64,
    warm: std::sync::atomic::AtomicU64,
}

impl StartCounters {
    /// Counts one activation by how its sandbox started: its first on a
    /// cold-started sandbox or a specialized stem cell, or a later one
    /// (`Warm`).
    pub fn count(&self, kind: StartKind) {
        let counter = match kind {
            StartKind::Cold => &self.cold,
            StartKind::Prewarmed => &self.prewarm,
            StartKind::Warm => &self.warm,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn read(&self) -> StartCounts {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        StartCounts {
            cold: get(&self.cold),
            prewarm: get(&self.prewarm),
            warm: get(&self.warm),
        }
    }
}

impl Shared {
    /// Tells the actor; after shutdown nobody listens, which is fine.
    pub fn send(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Stores a record, retrying a failing store (10 attempts over ~20 s)
    /// so an accepted activation is not lost to a blip; false if it could
    /// not be stored.
    pub async fn store_record(&self, activation: WhiskActivation) -> bool {
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=10 {
            match self.ports.activations.store(&activation).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(activation = %activation.activation_id, attempt, error = %e, "storing the activation failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::error!(activation = %activation.activation_id, "giving up storing the activation");
        false
    }
}

/// A point-in-time view of the pool.
#[derive(Clone, Debug)]
pub struct PoolSnapshot {
    /// OpenWhisk's `GetState` answer.
    pub state: TotalContainerPoolState,
    /// Counts and memory per pool.
    pub metrics: PoolMetrics,
    /// The health state.
    pub health: HealthState,
}

/// The running pool: send it messages.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolHandle")
            .field("invoker", &self.shared.invoker.instance)
            .finish()
    }
}

/// The fake action schedulers warm invokers up with; dropped unanswered.
pub(super) const WARM_UP_ACTION: &str = "whisk.system/warmUp";

impl PoolHandle {
    /// Starts the pool (within a Tokio runtime): creates the initial stem
    /// cells and starts the memory sync. The invoker is `Offline` until
    /// [`PoolHandle::enable`].
    pub fn start(
        engine: Arc<Engine>,
        invoker: InvokerInstanceId,
        keys: EtcdKeys,
        settings: PoolSettings,
        ports: PoolPorts,
    ) -> PoolHandle {
        let (events, rx) = mpsc::unbounded_channel();
        let docker = ports.containers.clone();
        let shared = Arc::new(Shared {
            engine,
            invoker,
            keys,
            settings,
            ports,
            starts: StartCounters::default(),
            docker,
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            reschedules: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(15 * 60))
                .build(),
            events,
        });
        if shared.docker.enabled() {
            // Connect early: leftovers of a crash go now, not at the first
            // image action.
            let port = shared.docker.clone();
            tokio::spawn(async move {
                if let Err(error) = port.connect().await {
                    tracing::info!(%error, "Docker is not available; actions of image kinds fail until it is");
                }
            });
        }
        let actor = Actor::new(shared.clone());
        tokio::spawn(actor.run(rx));
        PoolHandle { shared }
    }

    /// What the pool's tasks share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Handles a creation message as OpenWhisk's `ContainerMessageConsumer`
    /// does: drops the scheduler's warm-up message, loads the action (an
    /// error acks `DBFetchError`), then hands it to the pool.
    pub async fn create(&self, msg: ContainerCreationMessage) {
        if msg.action.as_string_without_version() == WARM_UP_ACTION {
            return;
        }
        match self
            .shared
            .ports
            .actions
            .get(&msg.action, &msg.revision)
            .await
        {
            Ok(action) => self.shared.send(Event::Create { msg, action }),
            Err(e) => {
                let reason = format!("creationId: {}, {e}", msg.creation_id);
                send_ack(
                    &self.shared,
                    &msg,
                    Some((ContainerCreationError::DBFetchError, reason)),
                )
                .await;
            }
        }
    }

    /// Handles a deletion message.
    pub fn delete(&self, msg: ContainerDeletionMessage) {
        self.shared.send(Event::Delete(msg));
    }

    /// Enables the invoker: the health test runs, then it is `up`.
    pub fn enable(&self) {
        self.shared.send(Event::Enable);
    }

    /// Disables the invoker: `down`, refuses creations, drains in batches.
    pub fn disable(&self) {
        self.shared.send(Event::Disable);
    }

    /// The pool's state; `None` once it stopped.
    pub async fn snapshot(&self) -> Option<PoolSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.shared.send(Event::State(tx));
        rx.await.ok()
    }

    /// Stops intake, lets in-flight activations finish for at most `grace`,
    /// publishes `down` and stops the pool.
    pub async fn shutdown(&self, grace: Duration) {
        let (done, rx) = oneshot::channel();
        self.shared
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.send(Event::Shutdown { grace, done });
        let _ = rx.await;
    }
}

/// Sends the ack of `msg` (success when `error` is `None`).
pub(super) async fn send_ack(
    shared: &Shared,
    msg: &ContainerCreationMessage,
    error: Option<(ContainerCreationError, String)>,
) {
    let ack = ContainerCreationAckMessage::answer(msg, shared.invoker.clone(), error);
    if let Err(e) = shared
        .ports
        .messenger
        .creation_ack(&msg.root_scheduler_index, ack)
        .await
    {
        tracing::warn!(creation = %msg.creation_id, error = %e, "sending a creation ack failed");
    }
}
