//! One sandbox at work: OpenWhisk's `FunctionPullingContainerProxy` and its
//! `ActivationClientProxy` (docs/openwhisk.md §2.1–§2.4) as one task per busy sandbox.
//!
//! ```text
//!  cold: create ─┐
//!  prewarm ──────┼─▶ register namespace/ key ─▶ Ready (pool acks) ─▶ pull ◀─────────┐
//!  warm (resume)─┘  (resume fails: destroy, the pool retries)        │  activation  │
//!                                                                    ├─▶ init once, run, record, acks, done
//!                                                                    │   developer/whisk error ─▶ destroy
//!                       no activation for pause-grace ───────────────┤
//!          initialized: unregister namespace/, register warmed/ ─▶ Paused (task ends)
//!          never ran:   destroy
//!                       GracefulShutdown (deletion/disable) ─▶ unregister namespace/ at once,
//!                                                  finish the run in hand, destroy
//! ```
//!
//! The task owns its sandbox; Wasm runs on Tokio's blocking pool through
//! [`AsyncSandbox`], never on an executor thread. A pull waits at most
//! `poll_wait` (OpenWhisk's scheduler answers an idle long-poll after one
//! second), so a busy sandbox notices `pause-grace` and shutdown promptly.
//! When it pauses, the task ends and hands the sandbox to the pool's warm
//! cache: an idle sandbox has no task and no timer.
//!
//! Every pulled activation ends in a stored record and its acks, whatever
//! happens: a failed `init` is the first activation's developer error (the
//! scheduler already got its success ack, §2.5); a record the store refuses
//! is retried, and the delivery is acknowledged to the queue only after.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

use super::container::{Container, InitError};
use super::handle::{Event, Shared};
use super::ports::ExecutableAction;
use super::queue::Pulled;
use super::record::{RunTimes, build_activation, completion_acks, logs_to_be_collected};
use super::slot::StartKind;
use super::slot::{SandboxId, WarmKey};
use super::warm::{Keeping, WarmEntry};
use wasmwhisk_protocol::{
    ActivationMessage, ContainerCreationError, ContainerKeyKind, ExecMetaData, WhiskActivation,
};
use wasmwhisk_sandbox::Sandbox;
use wasmwhisk_sandbox::action::{ActionKind, ActivationContext, InitArgs, SandboxLimits};
use wasmwhisk_sandbox::engine::Engine;
use wasmwhisk_sandbox::runtimes::Backend;

/// A message from the pool to a running proxy.
#[derive(Debug)]
pub enum Control {
    /// Stop pulling, finish the activation in hand, destroy the sandbox
    /// (deletion, disable, shutdown).
    GracefulShutdown,
}

/// How the proxy gets its sandbox.
#[derive(Debug)]
pub enum Start {
    /// Create a new one (cold start).
    Cold,
    /// Specialize this stem cell (its `init` runs with the first activation).
    Prewarmed(Container),
    /// Resume this warmed, already initialized sandbox.
    Warm(Container),
}

/// What a proxy needs to start.
#[derive(Debug)]
pub struct ProxyArgs {
    /// The sandbox's pool id.
    pub id: SandboxId,
    /// The action it runs.
    pub action: Arc<ExecutableAction>,
    /// The queue it pulls from.
    pub key: WarmKey,
    /// Where its sandbox comes from.
    pub start: Start,
    /// The namespace limits last seen (kept across pauses).
    pub keeping: Keeping,
}

/// How a proxy ended.
enum End {
    /// Paused with its sandbox.
    Pause,
    /// Destroyed.
    Remove,
}

/// The action's limits as a sandbox applies them.
pub fn sandbox_limits(action: &ExecutableAction) -> SandboxLimits {
    let limits = &action.meta.limits;
    SandboxLimits {
        timeout: Duration::from_millis(limits.timeout),
        memory_mb: limits.memory,
        logs_mb: limits.logs,
        concurrency: limits.concurrency,
    }
}

/// The sandbox kind of an action, if it is one wasmwhisk can run.
pub fn action_kind(action: &ExecutableAction) -> Option<ActionKind> {
    match &action.meta.exec {
        ExecMetaData::Code { kind, .. } => kind.parse().ok(),
        ExecMetaData::Sequence { .. } => None,
    }
}

/// The container id of sandbox `id` on invoker `invoker` (etcd keys,
/// `GetState`): OpenWhisk's `wsk{N}_{seq}` naming, without a `/`.
pub fn container_id(invoker: u32, id: SandboxId) -> String {
    format!("wsk{invoker}_{id}")
}

/// The etcd key of sandbox `id` running `action` for `invocation_namespace`:
/// live (`namespace/…`) or paused (`warmed/…`). `None` only for names the
/// key layout cannot hold, which the action store does not let in.
pub fn container_key(
    shared: &Shared,
    kind: ContainerKeyKind,
    invocation_namespace: &str,
    action: &ExecutableAction,
    id: SandboxId,
) -> Option<String> {
    let invoker = shared.invoker.instance;
    shared
        .keys
        .container(
            kind,
            invocation_namespace,
            &action.meta.fully_qualified_name(),
            &action.revision,
            invoker,
            &container_id(invoker, id),
        )
        .ok()
}

/// A fresh stem cell of runtime `kind` with `memory_mb`: the cached,
/// pre-initialized runtime, instantiated. Blocking.
pub fn new_stem_cell(
    engine: &Arc<Engine>,
    kind: ActionKind,
    memory_mb: u64,
) -> Result<Sandbox, String> {
    let prepared = engine.prepare_runtime(kind).map_err(|e| e.to_string())?;
    engine
        .instantiate(&prepared, memory_mb)
        .map_err(|e| e.to_string())
}

/// Creates a sandbox for `action` from scratch: a fresh instance of its
/// component (`wasm`) or a stem cell of its runtime. Blocking.
pub fn create_sandbox(engine: &Arc<Engine>, action: &ExecutableAction) -> Result<Sandbox, String> {
    let kind = action_kind(action).ok_or_else(|| "the action's kind cannot run".to_string())?;
    let memory_mb = action.meta.limits.memory;
    if kind != ActionKind::Wasm {
        return new_stem_cell(engine, kind, memory_mb);
    }
    let key = match action.code_key {
        Some(key) => key,
        None => engine.wasm_key(&action.code),
    };
    let (prepared, _) = engine
        .prepare_wasm_keyed(&key, &action.code)
        .map_err(|e| e.to_string())?;
    engine
        .instantiate(&prepared, memory_mb)
        .map_err(|e| e.to_string())
}

/// Creates a container for `action` from scratch: a Wasm sandbox on a
/// blocking thread, or a Docker container. `Err`: the creation ack's error
/// and why.
async fn create_container(
    shared: &Shared,
    id: SandboxId,
    action: &Arc<ExecutableAction>,
) -> Result<Container, (ContainerCreationError, String)> {
    match shared.settings.backend(action) {
        Some(Backend::Docker { image }) => shared
            .docker
            .create(
                id,
                action.meta.exec.kind(),
                &image,
                action.meta.limits.memory,
            )
            .await
            // OpenWhisk's `BlackboxStartupError`: not rescheduled, the
            // queued activations fail with the reason.
            .map_err(|e| (ContainerCreationError::BlackBoxError, e.to_string())),
        _ => {
            let engine = shared.engine.clone();
            let act = action.clone();
            tokio::task::spawn_blocking(move || create_sandbox(&engine, &act))
                .await
                .unwrap_or_else(|_| Err("the sandbox creation task failed".to_string()))
                .map(Container::from)
                .map_err(|e| (ContainerCreationError::WhiskError, e))
        }
    }
}

/// Runs one proxy to its end.
pub async fn run(shared: Arc<Shared>, args: ProxyArgs, mut control: mpsc::Receiver<Control>) {
    let ProxyArgs {
        id,
        action,
        key,
        start,
        keeping,
    } = args;
    let origin = match &start {
        Start::Cold => StartKind::Cold,
        Start::Prewarmed(_) => StartKind::Prewarmed,
        Start::Warm(_) => StartKind::Warm,
    };
    let resumed = match start {
        Start::Cold => None,
        Start::Prewarmed(container) => Some((container, false)),
        Start::Warm(container) => match container.resume().await {
            Ok(()) => Some((container, true)),
            // OpenWhisk's `ResumeFailed`: this one goes, and the pool tries
            // the creation again from the start (another warmed sandbox, a
            // stem cell, else a new one).
            Err(error) => {
                tracing::warn!(sandbox = id, %error, "resuming a warmed container failed; retrying the creation");
                // The retry need not wait for the removal.
                shared.send(Event::ResumeFailed { id, action });
                container.destroy().await;
                return;
            }
        },
    };
    let (sandbox, initialized) = match resumed {
        Some(started) => started,
        None => match create_container(&shared, id, &action).await {
            Ok(container) => (container, false),
            Err((kind, error)) => {
                shared.send(Event::CreationFailed { id, kind, error });
                shared.send(Event::Removed {
                    id,
                    replace_prewarm: true,
                });
                return;
            }
        },
    };
    let mut proxy = Proxy {
        shared: shared.clone(),
        id,
        action,
        key,
        sandbox,
        initialized,
        origin,
        keeping,
        last_used: TokioInstant::now().into_std(),
        finishing: JoinSet::new(),
        existing: None,
    };
    proxy.existing = proxy.container_key(ContainerKeyKind::Existing);
    if let Some(k) = &proxy.existing {
        proxy.put_key(k).await;
    }
    shared.send(Event::Ready { id });
    let end = proxy.pull_loop(&mut control).await;
    proxy.drain_finishing().await;
    if let Some(k) = proxy.existing.take() {
        proxy.delete_key(&k).await;
    }
    let end = match end {
        End::Pause if proxy.sandbox.is_retired() => End::Remove,
        End::Pause => match proxy.sandbox.pause().await {
            Ok(()) => End::Pause,
            Err(error) => {
                tracing::warn!(sandbox = id, %error, "pausing the container failed; removing it");
                End::Remove
            }
        },
        End::Remove => End::Remove,
    };
    match end {
        End::Pause => {
            if let Some(k) = proxy.container_key(ContainerKeyKind::Warmed) {
                proxy.put_key(&k).await;
            }
            shared.send(Event::Paused {
                id,
                last_used: proxy.last_used,
                entry: WarmEntry {
                    sandbox: proxy.sandbox,
                    action: proxy.action,
                    invocation_namespace: proxy.key.invocation_namespace,
                    keeping: proxy.keeping,
                    kept: false,
                },
            });
        }
        End::Remove => {
            proxy.sandbox.destroy().await;
            shared.send(Event::Removed {
                id,
                replace_prewarm: true,
            });
        }
    }
}

struct Proxy {
    shared: Arc<Shared>,
    id: SandboxId,
    action: Arc<ExecutableAction>,
    key: WarmKey,
    sandbox: Container,
    initialized: bool,
    /// How the sandbox started: the start kind of its first activation.
    origin: StartKind,
    keeping: Keeping,
    last_used: Instant,
    /// Records being stored and acked (see [`Proxy::finish_later`]).
    finishing: JoinSet<()>,
    /// Its `namespace/` key while registered; taken when it is deleted.
    existing: Option<String>,
}

/// Whether the sandbox survives an activation.
enum After {
    Keep,
    Destroy,
}

impl Proxy {
    fn container_key(&self, kind: ContainerKeyKind) -> Option<String> {
        container_key(
            &self.shared,
            kind,
            &self.key.invocation_namespace,
            &self.action,
            self.id,
        )
    }

    async fn put_key(&self, key: &str) {
        if let Err(e) = self.shared.ports.cluster.put(key, "").await {
            tracing::warn!(sandbox = self.id, key, error = %e, "registering the container failed");
        }
    }

    async fn delete_key(&self, key: &str) {
        if let Err(e) = self.shared.ports.cluster.delete(key).await {
            tracing::warn!(sandbox = self.id, key, error = %e, "unregistering the container failed");
        }
    }

    async fn pull_loop(&mut self, control: &mut mpsc::Receiver<Control>) -> End {
        let settings = self.shared.settings.clone();
        let mut idle_since = TokioInstant::now();
        loop {
            let idle = idle_since.elapsed();
            if idle >= settings.pause_grace {
                // OpenWhisk: a container that never ran is removed, not paused.
                return if self.initialized {
                    End::Pause
                } else {
                    End::Remove
                };
            }
            let wait = settings.poll_wait.min(settings.pause_grace - idle);
            let queue = self.shared.ports.queue.clone();
            tokio::select! {
                biased;
                _ = control.recv() => {
                    self.unregister().await;
                    return End::Remove;
                }
                pulled = queue.pull(&self.key, wait) => match pulled {
                    Ok(Some(pulled)) => {
                        let (after, shutdown) = self.activate_until_done(pulled, control).await;
                        idle_since = TokioInstant::now();
                        self.last_used = idle_since.into_std();
                        if shutdown || matches!(after, After::Destroy) {
                            return End::Remove;
                        }
                        if let Ok(Control::GracefulShutdown) = control.try_recv() {
                            self.unregister().await;
                            return End::Remove;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(sandbox = self.id, error = %e, "pulling failed; retrying");
                        tokio::time::sleep(wait.min(Duration::from_millis(100))).await;
                    }
                },
            }
        }
    }

    /// Deletes the sandbox's `namespace/` key now, if it is still there.
    async fn unregister(&mut self) {
        if let Some(k) = self.existing.take() {
            self.delete_key(&k).await;
        }
    }

    /// [`Proxy::activate`], watching for a `GracefulShutdown` meanwhile: as
    /// OpenWhisk's proxy in `Running`, the `namespace/` key is deleted at
    /// once, so the scheduler stops counting the sandbox, and the activation
    /// in hand still finishes. Says whether a shutdown came.
    async fn activate_until_done(
        &mut self,
        pulled: Pulled<ActivationMessage>,
        control: &mut mpsc::Receiver<Control>,
    ) -> (After, bool) {
        let shared = self.shared.clone();
        let id = self.id;
        let mut existing = self.existing.take();
        let mut shutdown = false;
        // The deletion runs beside the activation, not inside this loop: a
        // slow etcd must not stop the activation from being polled (a
        // Docker run measures its duration when polled).
        let mut deleting = None;
        let after = {
            let activation = self.activate(pulled);
            tokio::pin!(activation);
            loop {
                tokio::select! {
                    biased;
                    after = &mut activation => break after,
                    Some(Control::GracefulShutdown) = control.recv(), if !shutdown => {
                        shutdown = true;
                        if let Some(k) = existing.take() {
                            let shared = shared.clone();
                            deleting = Some(tokio::spawn(async move {
                                if let Err(e) = shared.ports.cluster.delete(&k).await {
                                    tracing::warn!(sandbox = id, key = k, error = %e, "unregistering the container failed");
                                }
                            }));
                        }
                    }
                }
            }
        };
        if let Some(deleting) = deleting {
            let _ = deleting.await;
        }
        self.existing = existing;
        (after, shutdown)
    }

    /// Runs one activation to its stored record; says whether the sandbox
    /// lives on.
    async fn activate(&mut self, pulled: Pulled<ActivationMessage>) -> After {
        let Pulled {
            message: mut msg,
            delivery,
        } = pulled;
        let limits = sandbox_limits(&self.action);
        let user_limits = &msg.user.limits;
        self.keeping = Keeping {
            count: user_limits.warmed_container_keeping_count.unwrap_or(0),
            timeout: user_limits
                .warmed_container_keeping_timeout
                .as_deref()
                .and_then(parse_duration),
        };
        // The parameters move out of the message (the record does not
        // need them): no copy per activation.
        let (env, params) = partition(msg.content.take(), &msg.init_args);
        let mut init = None;
        let mut after = After::Keep;
        self.shared.starts.count(if self.initialized {
            StartKind::Warm
        } else {
            self.origin
        });
        let context = ActivationContext {
            activation_id: msg.activation_id.as_str().to_string(),
            namespace: msg.user.namespace.name.clone(),
            action_name: self
                .action
                .meta
                .fully_qualified_name()
                .qualified_name_with_leading_slash(),
            action_version: self.action.meta.version.to_string(),
            transaction_id: msg.transid.id.clone(),
            // OpenWhisk's `provide-api-key`: an action created with it
            // false does not get the caller's key; one without it does.
            api_key: self
                .action
                .meta
                .has_truthy_annotation("provide-api-key", true)
                .then(|| msg.user.authkey.api_key().map(str::to_string))
                .flatten(),
        };
        if !self.initialized {
            let init_start = SystemTime::now();
            let mut env = env;
            if matches!(self.sandbox, Container::Docker(_)) {
                // OpenWhisk's `/init` env (docs/openwhisk.md §6.1): the first
                // activation's `__OW_*` values besides the init parameters.
                env.extend(init_env(&context, limits.timeout));
            }
            match self.sandbox.init(self.init_args(env), limits).await {
                Ok(took) => {
                    init = Some((init_start, took));
                    self.initialized = true;
                }
                Err(InitError::Reschedule(why)) => {
                    self.reschedule(msg, delivery, &why, limits).await;
                    return After::Destroy;
                }
                Err(InitError::Failed(failure)) => {
                    let times = RunTimes {
                        init: Some((init_start, failure.duration)),
                        run_start: init_start + failure.duration,
                        run_duration: Duration::ZERO,
                    };
                    let activation = build_activation(
                        &msg,
                        &self.action.meta,
                        &failure.response,
                        failure.logs,
                        &times,
                        limits.timeout,
                    );
                    self.finish_later(msg, activation, delivery).await;
                    return After::Destroy;
                }
            }
        }
        let report = match self.sandbox.run(context, params, limits).await {
            Ok(report) => report,
            Err(why) => {
                self.reschedule(msg, delivery, &why.to_string(), limits)
                    .await;
                return After::Destroy;
            }
        };
        if report.response.status.retires_sandbox() || self.sandbox.is_retired() {
            after = After::Destroy;
        }
        let times = RunTimes {
            init,
            run_start: report.start,
            run_duration: report.duration,
        };
        let record = build_activation(
            &msg,
            &self.action.meta,
            &report.response,
            report.logs,
            &times,
            limits.timeout,
        );
        self.finish_later(msg, record, delivery).await;
        after
    }

    fn init_args(&self, env: Vec<(String, String)>) -> InitArgs {
        let (main, binary) = match &self.action.meta.exec {
            ExecMetaData::Code { main, binary, .. } => {
                (main.clone().unwrap_or_else(|| "main".into()), *binary)
            }
            ExecMetaData::Sequence { .. } => ("main".into(), false),
        };
        // A `wasm` action's code is the component itself, already
        // instantiated: its `init` gets empty code (docs/actions.md), which
        // also keeps a copy of the component out of its linear memory.
        let code = match action_kind(&self.action) {
            Some(ActionKind::Wasm) => Vec::new(),
            _ => self.action.code.to_vec(),
        };
        InitArgs {
            name: self.action.meta.name.as_str().to_string(),
            main,
            code,
            binary,
            env,
        }
    }

    /// Acks, stores and acknowledges the delivery of a finished activation.
    /// Hands the activation's record to a task that stores it, then sends
    /// the acks and marks the delivery done, and goes back to pulling: the
    /// sandbox does not wait for the store's commit, so one sandbox keeps
    /// several records in one commit of a group-committing store. At most
    /// [`MAX_FINISHING`] are outstanding per sandbox; the proxy waits for
    /// all of them before its sandbox pauses or goes.
    async fn finish_later(
        &mut self,
        msg: ActivationMessage,
        activation: WhiskActivation,
        delivery: u64,
    ) {
        while self.finishing.len() >= MAX_FINISHING {
            self.finishing.join_next().await;
        }
        let shared = self.shared.clone();
        let key = self.key.clone();
        let logs_collected = logs_to_be_collected(&self.action.meta);
        self.finishing.spawn(async move {
            finish(&shared, &key, &msg, activation, delivery, logs_collected).await;
        });
    }

    /// Gives an activation this container could not take back to its queue
    /// (OpenWhisk's `RescheduleActivation`); the container is destroyed.
    /// While the pool shuts down nobody reads the queue again, so the
    /// activation ends instead, with a whisk error saying why.
    async fn reschedule(
        &mut self,
        msg: ActivationMessage,
        delivery: u64,
        why: &str,
        limits: SandboxLimits,
    ) {
        let shutting_down = self
            .shared
            .shutting_down
            .load(std::sync::atomic::Ordering::SeqCst);
        let tries = self.shared.reschedules.get(&msg.activation_id).unwrap_or(0) + 1;
        let why = if shutting_down {
            format!(
                "The container could not run the activation and the invoker is shutting down: {why}"
            )
        } else if tries > MAX_RESCHEDULES {
            self.shared.reschedules.invalidate(&msg.activation_id);
            format!(
                "The container could not run the activation ({MAX_RESCHEDULES} containers tried): {why}"
            )
        } else {
            self.shared
                .reschedules
                .insert(msg.activation_id.clone(), tries);
            tracing::warn!(sandbox = self.id, activation = %msg.activation_id, why, tries, "rescheduling the activation");
            match self.shared.ports.queue.redeliver(&self.key, delivery).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(activation = %msg.activation_id, error = %e, "giving the activation back failed; failing it");
                    format!(
                        "The container could not run the activation, and giving it back failed: {why}"
                    )
                }
            }
        };
        let now = SystemTime::now();
        let times = RunTimes {
            init: None,
            run_start: now,
            run_duration: Duration::ZERO,
        };
        let response = wasmwhisk_sandbox::RunResponse::whisk_error(why);
        let record = build_activation(
            &msg,
            &self.action.meta,
            &response,
            Vec::new(),
            &times,
            limits.timeout,
        );
        self.finish_later(msg, record, delivery).await;
    }

    /// Waits until every record handed off is stored and acked.
    async fn drain_finishing(&mut self) {
        while self.finishing.join_next().await.is_some() {}
    }
}

/// How often one invoker hands an activation back because a container
/// could not run it before it fails the activation instead.
const MAX_RESCHEDULES: u32 = 3;

/// Records a sandbox may have in the store at once before it waits.
const MAX_FINISHING: usize = 32;

/// Stores an activation's record, then sends its acks, then marks its
/// delivery done and reports the outcome to the health buffer. A record
/// that cannot be stored sends no ack: the delivery goes back to the queue
/// (the activation runs again), so it is never acked without its record.
async fn finish(
    shared: &Shared,
    key: &WarmKey,
    msg: &ActivationMessage,
    activation: WhiskActivation,
    delivery: u64,
    logs_collected: bool,
) {
    let system_error = activation.response.is_whisk_error();
    // Stored before the acks (OpenWhisk stores after, asynchronously):
    // whoever gets the result can read the record at once.
    let acks = completion_acks(&activation, msg, &shared.invoker, logs_collected);
    if !shared.store_record(activation).await {
        if let Err(e) = shared.ports.queue.redeliver(key, delivery).await {
            tracing::warn!(activation = %msg.activation_id, error = %e, "handing back an activation whose record was not stored failed");
        }
        shared.send(Event::Outcome(false));
        return;
    }
    for ack in acks {
        if let Err(e) = shared
            .ports
            .messenger
            .completion(&msg.root_controller_index, ack)
            .await
        {
            tracing::warn!(activation = %msg.activation_id, error = %e, "sending an ack failed");
        }
    }
    if let Err(e) = shared.ports.queue.done(key, delivery).await {
        tracing::warn!(activation = %msg.activation_id, error = %e, "acknowledging the delivery failed");
    }
    shared.send(Event::Outcome(!system_error));
}

/// The `__OW_*` variables OpenWhisk puts in `/init`'s env, from the first
/// activation's context; `__OW_API_KEY` only when the action gets the key.
fn init_env(context: &ActivationContext, timeout: Duration) -> Vec<(String, String)> {
    let deadline = SystemTime::now()
        .checked_add(timeout)
        .map_or(0, wasmwhisk_sandbox::epoch_millis);
    let mut env = vec![
        ("__OW_NAMESPACE".to_string(), context.namespace.clone()),
        ("__OW_ACTION_NAME".to_string(), context.action_name.clone()),
        (
            "__OW_ACTION_VERSION".to_string(),
            context.action_version.clone(),
        ),
        (
            "__OW_ACTIVATION_ID".to_string(),
            context.activation_id.clone(),
        ),
        (
            "__OW_TRANSACTION_ID".to_string(),
            context.transaction_id.clone(),
        ),
        ("__OW_DEADLINE".to_string(), deadline.to_string()),
    ];
    if let Some(key) = &context.api_key {
        env.push(("__OW_API_KEY".to_string(), key.clone()));
    }
    env
}

/// OpenWhisk's `partitionArguments`: parameters named in `initArgs` go to
/// `init`'s environment, the rest to `run`. A non-object content runs with
/// no parameters.
fn partition(
    content: Option<Value>,
    init_args: &[String],
) -> (Vec<(String, String)>, Map<String, Value>) {
    let mut params = match content {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut env = Vec::new();
    for name in init_args {
        if let Some(value) = params.remove(name) {
            // OpenWhisk's env values: null is "", a string as it is,
            // anything else its compact JSON.
            let text = match value {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            env.push((name.clone(), text));
        }
    }
    (env, params)
}

/// A keeping timeout as the namespace limit writes it (`"10 minutes"`,
/// `"600 s"`, `"30s"`, or plain milliseconds).
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let secs = match unit.as_str() {
        "" | "ms" | "millis" | "milliseconds" => return Some(Duration::from_millis(n)),
        "s" | "sec" | "second" | "seconds" => n,
        "m" | "min" | "minute" | "minutes" => n.checked_mul(60)?,
        "h" | "hour" | "hours" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_args_go_to_init_and_the_rest_to_run() {
        let meta = wasmwhisk_protocol::WhiskActionMetaData::code_action(
            wasmwhisk_protocol::EntityPath::namespace(
                wasmwhisk_protocol::EntityName::new("guest").expect("name"),
            ),
            wasmwhisk_protocol::EntityName::new("a").expect("name"),
            "js",
            false,
            Default::default(),
        );
        let mut msg = ActivationMessage::for_action(
            &meta,
            wasmwhisk_protocol::DocRevision::new("1-a"),
            wasmwhisk_protocol::Identity::basic("guest", "u", "k"),
            wasmwhisk_protocol::ControllerInstanceId::new("0").expect("id"),
            Some(serde_json::json!({"secret": "s3", "port": 80, "x": 1})),
            true,
        );
        msg.init_args = vec!["secret".into(), "port".into(), "absent".into()];
        let (env, params) = partition(msg.content.clone(), &msg.init_args);
        assert_eq!(
            env,
            vec![("secret".into(), "s3".into()), ("port".into(), "80".into())]
        );
        assert_eq!(
            serde_json::Value::Object(params),
            serde_json::json!({"x": 1})
        );
        msg.content = Some(serde_json::json!([1, 2]));
        assert!(
            partition(msg.content.clone(), &msg.init_args).1.is_empty(),
            "non-object content: no params"
        );
    }

    #[test]
    fn init_env_has_openwhisks_variables_and_the_key_only_when_granted() {
        let mut context = ActivationContext {
            activation_id: "a1".into(),
            namespace: "guest".into(),
            action_name: "/guest/x".into(),
            action_version: "0.0.1".into(),
            transaction_id: "t1".into(),
            api_key: None,
        };
        let env = init_env(&context, Duration::from_secs(60));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "__OW_NAMESPACE",
                "__OW_ACTION_NAME",
                "__OW_ACTION_VERSION",
                "__OW_ACTIVATION_ID",
                "__OW_TRANSACTION_ID",
                "__OW_DEADLINE"
            ]
        );
        assert!(env[5].1.parse::<u64>().is_ok_and(|d| d > 0));
        context.api_key = Some("u:k".into());
        let env = init_env(&context, Duration::from_secs(60));
        assert_eq!(env.last(), Some(&("__OW_API_KEY".into(), "u:k".into())));
        // Null init parameters are empty strings, as OpenWhisk sends them.
        let (env, _) = partition(Some(serde_json::json!({"n": null})), &["n".to_string()]);
        assert_eq!(env, vec![("n".to_string(), String::new())]);
    }

    #[test]
    fn keeping_timeouts_parse_in_openwhisk_units() {
        assert_eq!(parse_duration("10 minutes"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
    }
}
