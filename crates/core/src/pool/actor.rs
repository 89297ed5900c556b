//! The pool at work: OpenWhisk's `FunctionPullingContainerPool` and
//! `InvokerHealthManager` (docs/openwhisk.md §1, §4.1) as one actor task.
//!
//! The actor owns the decisions: [`PoolState`] (which sandbox is in which
//! pool, memory), [`PrewarmPlanner`] (stem cells), [`InvokerHealth`] (the
//! health FSM). It owns the idle sandboxes too: ready stem cells in a map,
//! warmed sandboxes in the moka [`WarmCache`]. Busy sandboxes belong to their
//! proxy task ([`super::proxy`]), which reports back with [`Event`]s; the
//! actor never runs Wasm and never waits on a network call, so one creation
//! message costs it microseconds.
//!
//! Timers: one memory-sync tick (`memory-sync-interval`, which also runs the
//! warm cache's expiry), the prewarm expiration check when a stem cell config
//! is reactive, and the 5-second disable round while draining. Nothing per
//! sandbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant as TokioInstant;

use super::container::Container;
use super::handle::{Event, PoolSnapshot, Shared, send_ack};
use super::health::{HealthAction, HealthReport, HealthState, InvokerHealth};
use super::introspect::{ContainerView, PoolMetrics, TotalContainerPoolState};
use super::ports::ExecutableAction;
use super::prewarm::{
    ExpiryCheckSchedule, PrewarmPlan, PrewarmPlanner, StemCellSpec, StemCellView,
};
use super::proxy::{self, Control, ProxyArgs, Start};
use super::slot::{CreationDecision, PoolAction, Refusal, SandboxId, Slot, WarmKey};
use super::state::PoolState;
use super::warm::{Keeping, WarmCache, WarmEntry, live_count_with_retries};
use wasmwhisk_protocol::{
    ContainerCreationError, ContainerCreationMessage, ContainerDeletionMessage, ContainerKeyKind,
    InvokerResourceMessage, InvokerState,
};
use wasmwhisk_sandbox::ResponseStatus;
use wasmwhisk_sandbox::action::{ActionKind, ActivationContext, InitArgs, SandboxLimits};
use wasmwhisk_sandbox::runtimes::Backend;

pub(super) struct Actor {
    shared: Arc<Shared>,
    state: PoolState<ContainerCreationMessage>,
    planner: PrewarmPlanner,
    health: InvokerHealth,
    stem_cells: HashMap<SandboxId, Container>,
    /// The control channel of every sandbox with a proxy task.
    proxies: HashMap<SandboxId, mpsc::Sender<Control>>,
    warm: WarmCache,
    /// Warmed sandboxes whose `idle-container` ran out, while their keep
    /// decision reads the live count: still warmed in the books, so a
    /// creation message that comes meanwhile resumes one (OpenWhisk: a
    /// timed-out container that gets new work is not destroyed).
    deciding: HashMap<SandboxId, WarmEntry>,
    health_test: Option<oneshot::Sender<()>>,
    publish: watch::Sender<Option<InvokerResourceMessage>>,
    disabling: bool,
    shutdown: Option<(TokioInstant, oneshot::Sender<()>)>,
    /// Stem cells waiting for the creation throttle (already prewarm-starting
    /// in the books, so the planner counts them).
    prewarm_queue: std::collections::VecDeque<(SandboxId, String, u64)>,
}

impl Actor {
    pub(super) fn new(shared: Arc<Shared>) -> Actor {
        let settings = &shared.settings;
        let (publish, watcher) = watch::channel(None);
        tokio::spawn(publisher(shared.clone(), watcher));
        Actor {
            state: PoolState::new(settings.user_memory_mb, settings.prewarm_promotion),
            planner: PrewarmPlanner::new(
                settings.stem_cells.clone(),
                settings.max_retry_limit,
                settings.expiration_limit,
            ),
            health: InvokerHealth::new(
                settings.user_memory_mb,
                shared.invoker.tags.clone(),
                shared.invoker.dedicated_namespaces.clone(),
            ),
            stem_cells: HashMap::new(),
            proxies: HashMap::new(),
            warm: WarmCache::new(),
            deciding: HashMap::new(),
            health_test: None,
            publish,
            disabling: false,
            shutdown: None,
            prewarm_queue: std::collections::VecDeque::new(),
            shared,
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        let settings = self.shared.settings.clone();
        let plan = self.planner.on_start(&self.view());
        self.apply(plan);
        // Publish `down` with the memory before the first enable.
        self.memory_sync();
        let mut sync = tokio::time::interval(settings.memory_sync_interval);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sync.tick().await;
        let schedule = ExpiryCheckSchedule::new(
            settings.expiration_check_init_delay,
            settings.expiration_check_interval,
            settings.expiration_check_variance,
            random_unit(),
        );
        let mut next_check = self
            .planner
            .needs_scheduled_check()
            .then(|| TokioInstant::now() + schedule.init_delay());
        let mut next_disable: Option<TokioInstant> = None;
        let mut next_prewarm: Option<TokioInstant> = None;
        // The throttle's last round: OpenWhisk's fixed-rate tick starts at
        // once, so a queue that waited no round starts its first now.
        let mut last_prewarm: Option<TokioInstant> = None;
        let far = || TokioInstant::now() + Duration::from_secs(86_400);
        loop {
            if self.disabling && next_disable.is_none() {
                next_disable = Some(TokioInstant::now() + settings.disable_retry);
            }
            if let Some((_, delay)) = settings.prewarm_throttle
                && !self.prewarm_queue.is_empty()
                && next_prewarm.is_none()
            {
                let now = TokioInstant::now();
                next_prewarm = Some(last_prewarm.map_or(now, |last| (last + delay).max(now)));
            }
            let shutdown_at = self.shutdown.as_ref().map(|(at, _)| *at);
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
                _ = sync.tick() => self.tick(),
                _ = tokio::time::sleep_until(next_check.unwrap_or_else(far)), if next_check.is_some() => {
                    self.expiry_check();
                    next_check = Some(TokioInstant::now() + schedule.period());
                }
                _ = tokio::time::sleep_until(next_prewarm.unwrap_or_else(far)), if next_prewarm.is_some() => {
                    next_prewarm = None;
                    last_prewarm = Some(TokioInstant::now());
                    self.drain_prewarm_queue();
                }
                _ = tokio::time::sleep_until(next_disable.unwrap_or_else(far)), if next_disable.is_some() => {
                    next_disable = None;
                    self.disable_round();
                }
                _ = tokio::time::sleep_until(shutdown_at.unwrap_or_else(far)), if shutdown_at.is_some() => {
                    self.finish_shutdown().await;
                    return;
                }
            }
            if self.shutdown.is_some() && self.state.drained() {
                self.finish_shutdown().await;
                return;
            }
        }
    }

    /// The stem cells as the planner sees them.
    fn view(&self) -> Vec<StemCellView<'_, SandboxId>> {
        view(&self.state)
    }
}

/// The stem cells of `state` as the planner sees them.
fn view<M>(state: &PoolState<M>) -> Vec<StemCellView<'_, SandboxId>> {
    {
        state
            .stem_cells()
            .into_iter()
            .map(|(id, kind, memory_mb, expires, ready)| StemCellView {
                id,
                kind,
                memory_mb,
                expires,
                ready,
            })
            .collect()
    }
}

impl Actor {
    fn handle(&mut self, event: Event) {
        match event {
            Event::Create { msg, action } => self.create(msg, action),
            Event::Delete(msg) => self.delete(&msg),
            Event::Enable => {
                self.disabling = false;
                self.state.enable();
                let actions = self.health.enable();
                self.health_actions(actions);
            }
            Event::Disable => self.disable(),
            Event::State(tx) => {
                let _ = tx.send(self.snapshot());
            }
            Event::Shutdown { grace, done } => {
                self.disable();
                // Unlike a disable, a shutdown does not drain in batches:
                // every sandbox goes now, a busy one after its activation.
                let all = self.state.disable_batch(usize::MAX);
                self.shut_down(all);
                self.shutdown = Some((TokioInstant::now() + grace, done));
            }
            Event::StemCell {
                id,
                result,
                expires,
            } => self.stem_cell_created(id, result, expires),
            Event::ResumeFailed { id, action } => self.resume_failed(id, action),
            Event::Ready { id } => match self.state.ready(id) {
                Ok(Some(msg)) => self.ack(msg, None),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "ready from an unexpected sandbox"),
            },
            Event::CreationFailed { id, kind, error } => {
                if let Some(msg) = self.state.creation_failed(id) {
                    let reason = format!("creationId: {}, {error}", msg.creation_id);
                    self.ack(msg, Some((kind, reason)));
                }
            }
            Event::Paused {
                id,
                last_used,
                entry,
            } => self.paused(id, last_used, entry),
            Event::Removed {
                id,
                replace_prewarm,
            } => {
                self.proxies.remove(&id);
                self.removed(id, replace_prewarm);
            }
            Event::KeepDecision { id, keep } => {
                // Taken meanwhile (resumed, evicted, drained): nothing to do.
                let Some(entry) = self.deciding.remove(&id) else {
                    return;
                };
                match keep {
                    Some(ttl) if matches!(self.state.slot(id), Some(Slot::Warmed { .. })) => {
                        let entry = WarmEntry {
                            kept: true,
                            ..entry
                        };
                        self.warm.insert(id, entry, ttl);
                    }
                    _ => self.destroy_warm(id, entry),
                }
            }
            Event::Outcome(ok) => {
                let actions = self.health.outcome(ok);
                self.health_actions(actions);
            }
        }
    }

    fn create(&mut self, msg: ContainerCreationMessage, action: Arc<ExecutableAction>) {
        let pool_action = self.pool_action(&msg, &action);
        let kept = msg.clone();
        // Tokio's clock, so tests with paused time see waiting expire.
        let now = TokioInstant::now().into_std();
        let decision = self.state.create_at(&pool_action, msg, now);
        self.carry_out(decision, kept, pool_action, action, now);
    }

    /// OpenWhisk's `ResumeFailed`: the warmed sandbox `id` could not be
    /// resumed (its proxy destroyed it); its creation message is tried again
    /// from the start, warm → prewarm → cold.
    fn resume_failed(&mut self, id: SandboxId, action: Arc<ExecutableAction>) {
        self.proxies.remove(&id);
        let Some(kept) = self.state.creation(id).cloned() else {
            self.removed(id, true);
            return;
        };
        let pool_action = self.pool_action(&kept, &action);
        let now = TokioInstant::now().into_std();
        match self.state.retry_after_resume_failed(id, &pool_action, now) {
            Some(decision) => self.carry_out(decision, kept, pool_action, action, now),
            None => self.removed(id, true),
        }
    }

    /// What the pool's books need of a creation.
    fn pool_action(&self, msg: &ContainerCreationMessage, action: &ExecutableAction) -> PoolAction {
        let backend = self.shared.settings.backend(action);
        PoolAction {
            key: WarmKey {
                invocation_namespace: msg.invocation_namespace.clone(),
                action: msg.action.as_string_without_version(),
                revision: msg.revision.to_string(),
            },
            kind: match &backend {
                Some(Backend::Wasm(kind)) => kind.as_str().to_string(),
                // Image kinds prewarm by their manifest name; `blackbox`
                // images have no stem cells (OpenWhisk's too).
                _ => action.meta.exec.kind().to_string(),
            },
            memory_mb: action.meta.limits.memory,
            executable: backend.is_some() && action.meta.is_executable(),
        }
    }

    /// Carries a creation decision out: refuses, reclaims, or starts a
    /// proxy on a warmed sandbox, a stem cell or a new one.
    fn carry_out(
        &mut self,
        mut decision: CreationDecision,
        kept: ContainerCreationMessage,
        pool_action: PoolAction,
        action: Arc<ExecutableAction>,
        now: Instant,
    ) {
        let (id, action, start, keeping) = loop {
            match decision {
                CreationDecision::Refuse(refusal) => {
                    self.refuse(refusal, kept, &pool_action);
                    return;
                }
                CreationDecision::Reclaim { reclaim } => {
                    tracing::info!(
                        namespace = %pool_action.key.invocation_namespace,
                        reclaimed = reclaim.len(),
                        "reclaiming busy sandboxes of namespaces over their fair share"
                    );
                    self.shut_down(reclaim);
                    self.refuse(Refusal::ResourceNotEnough, kept, &pool_action);
                    return;
                }
                CreationDecision::Warm { id } => match self.take_warm(id) {
                    Some(entry) => {
                        self.unregister_warmed(id, &entry);
                        break (id, entry.action, Start::Warm(entry.sandbox), entry.keeping);
                    }
                    // Lost between the pool's books and the cache:
                    // OpenWhisk's `ResumeFailed`, retried normally.
                    None => match self.state.retry_after_resume_failed(id, &pool_action, now) {
                        Some(next) => decision = next,
                        None => return,
                    },
                },
                CreationDecision::Prewarm {
                    id,
                    replacement,
                    evict,
                } => {
                    self.evict(evict);
                    let memory_mb = match self.state.slot(id) {
                        Some(Slot::InProgress { memory_mb, .. }) => *memory_mb,
                        _ => pool_action.memory_mb,
                    };
                    self.start_stem_cell(replacement, &pool_action.kind, memory_mb);
                    // The books say prewarmed; a stem cell missing from the
                    // map (never expected) is made cold instead.
                    let start = match self.stem_cells.remove(&id) {
                        Some(mut container) => {
                            container.set_memory_limit(pool_action.memory_mb);
                            Start::Prewarmed(container)
                        }
                        None => Start::Cold,
                    };
                    break (id, action, start, Keeping::default());
                }
                CreationDecision::Cold { id, evict } => {
                    self.evict(evict);
                    self.planner
                        .on_cold_start(&pool_action.kind, pool_action.memory_mb);
                    break (id, action, Start::Cold, Keeping::default());
                }
            }
        };
        self.spawn_proxy(id, action, pool_action.key, start, keeping);
    }

    /// Answers a creation the pool cannot take (docs/openwhisk.md §1.2).
    fn refuse(&mut self, refusal: Refusal, msg: ContainerCreationMessage, action: &PoolAction) {
        let invoker = self.shared.invoker.instance;
        let creation = &msg.creation_id;
        let (error, reason) = match refusal {
            Refusal::ShuttingDown => (
                ContainerCreationError::ShuttingDownError,
                format!(
                    "creationId: {creation}, invoker is shutting down, reschedule {}",
                    action.key.action
                ),
            ),
            Refusal::NonExecutable => (
                ContainerCreationError::NonExecutableActionError,
                format!(
                    "creationId: {creation}, the action's kind {} cannot run on invoker{invoker}",
                    action.kind
                ),
            ),
            Refusal::ResourceNotEnough => {
                self.memory_sync();
                (
                    ContainerCreationError::ResourceNotEnoughError,
                    format!(
                        "creationId: {creation}, invoker[{invoker}] doesn't have enough resource for container: {}, memory {} MB",
                        action.key.action, action.memory_mb
                    ),
                )
            }
        };
        self.ack(msg, Some((error, reason)));
    }

    fn spawn_proxy(
        &mut self,
        id: SandboxId,
        action: Arc<ExecutableAction>,
        key: WarmKey,
        start: Start,
        keeping: Keeping,
    ) {
        let (control, rx) = mpsc::channel(1);
        self.proxies.insert(id, control);
        let args = ProxyArgs {
            id,
            action,
            key,
            start,
            keeping,
        };
        tokio::spawn(proxy::run(self.shared.clone(), args, rx));
    }

    fn ack(&self, msg: ContainerCreationMessage, error: Option<(ContainerCreationError, String)>) {
        let shared = self.shared.clone();
        tokio::spawn(async move { send_ack(&shared, &msg, error).await });
    }

    /// Creates stem cell `id` now, or queues it behind the creation throttle.
    fn start_stem_cell(&mut self, id: SandboxId, kind: &str, memory_mb: u64) {
        if self.shared.settings.prewarm_throttle.is_some() {
            self.prewarm_queue
                .push_back((id, kind.to_string(), memory_mb));
        } else {
            self.create_stem_cell(id, kind, memory_mb);
        }
    }

    /// The throttle's tick: start up to its `max-concurrent` queued stem cells.
    fn drain_prewarm_queue(&mut self) {
        let Some((max, _)) = self.shared.settings.prewarm_throttle else {
            return;
        };
        for _ in 0..max {
            let Some((id, kind, memory_mb)) = self.prewarm_queue.pop_front() else {
                break;
            };
            // Removed meanwhile (a plan's removal, a shutdown): skip it.
            if matches!(self.state.slot(id), Some(Slot::PrewarmStarting { .. })) {
                self.create_stem_cell(id, &kind, memory_mb);
            }
        }
    }

    fn create_stem_cell(&mut self, id: SandboxId, kind: &str, memory_mb: u64) {
        let ttl = self
            .planner
            .specs()
            .iter()
            .find(|s| s.matches(kind, memory_mb))
            .and_then(StemCellSpec::ttl);
        let shared = self.shared.clone();
        let kind = kind.to_string();
        tokio::spawn(async move {
            let made = match (
                kind.parse::<ActionKind>(),
                shared.settings.images.get(&kind),
            ) {
                (Ok(wasm), _) => {
                    let engine = shared.engine.clone();
                    tokio::task::spawn_blocking(move || {
                        proxy::new_stem_cell(&engine, wasm, memory_mb).map(Container::from)
                    })
                    .await
                    .unwrap_or_else(|_| Err("the stem cell creation task failed".to_string()))
                }
                (Err(_), Some(image)) => shared
                    .docker
                    .create(id, &kind, image, memory_mb)
                    .await
                    .map_err(|e| e.to_string()),
                (Err(e), None) => Err(e.to_string()),
            };
            // Tokio's clock, so tests with paused time see stem cells expire.
            let expires = ttl.and_then(|ttl| TokioInstant::now().into_std().checked_add(ttl));
            shared.send(Event::StemCell {
                id,
                result: made,
                expires,
            });
        });
    }

    fn apply(&mut self, plan: PrewarmPlan<SandboxId>) {
        if plan.suppressed > 0 {
            tracing::warn!(
                suppressed = plan.suppressed,
                "stem cell creation keeps failing; not creating more until the next check"
            );
        }
        for id in plan.remove {
            self.stem_cells.remove(&id);
            self.state.removed(id);
        }
        for create in plan.create {
            for _ in 0..create.count {
                let id = self.state.start_prewarm(&create.kind, create.memory_mb);
                self.start_stem_cell(id, &create.kind, create.memory_mb);
            }
        }
    }

    fn stem_cell_created(
        &mut self,
        id: SandboxId,
        result: Result<Container, String>,
        expires: Option<Instant>,
    ) {
        match result {
            Ok(sandbox) => {
                if self.state.ready_to_work(id, expires).is_ok() {
                    self.planner.on_ready();
                    self.stem_cells.insert(id, sandbox);
                }
            }
            Err(error) => {
                tracing::warn!(sandbox = id, %error, "creating a stem cell failed");
                let removed = self.state.removed(id);
                if removed.was_starting {
                    let plan = self.planner.on_create_failed(&view(&self.state));
                    self.apply(plan);
                }
            }
        }
    }

    fn paused(&mut self, id: SandboxId, last_used: Instant, entry: WarmEntry) {
        self.proxies.remove(&id);
        match self.state.paused(id, last_used) {
            Ok(()) => {
                let ttl = self.shared.settings.idle_container;
                self.warm.insert(id, entry, ttl);
            }
            // Deleted or disabled while it paused: remove it.
            Err(_) => self.destroy_warm(id, entry),
        }
    }

    fn removed(&mut self, id: SandboxId, replace_prewarm: bool) {
        let removed = self.state.removed(id);
        if let Some(msg) = removed.unacked {
            self.ack(
                msg,
                Some((
                    ContainerCreationError::UnknownError,
                    "ContainerProxy init failed.".to_string(),
                )),
            );
        }
        let plan = if removed.was_starting {
            self.planner.on_create_failed(&view(&self.state))
        } else if replace_prewarm {
            self.planner.on_removed(&view(&self.state))
        } else {
            PrewarmPlan::default()
        };
        self.apply(plan);
    }

    fn unregister_warmed(&self, id: SandboxId, entry: &WarmEntry) {
        if let Some(key) = proxy::container_key(
            &self.shared,
            ContainerKeyKind::Warmed,
            &entry.invocation_namespace,
            &entry.action,
            id,
        ) {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                if let Err(e) = shared.ports.cluster.delete(&key).await {
                    tracing::warn!(key, error = %e, "unregistering a warmed container failed");
                }
            });
        }
    }

    /// Takes warmed sandbox `id` out of the cache, or out of its pending
    /// keep decision.
    fn take_warm(&mut self, id: SandboxId) -> Option<WarmEntry> {
        self.warm.take(id).or_else(|| self.deciding.remove(&id))
    }

    /// Destroys a warmed sandbox already out of the cache.
    fn destroy_warm(&mut self, id: SandboxId, entry: WarmEntry) {
        self.unregister_warmed(id, &entry);
        drop(entry);
        self.removed(id, true);
    }

    fn evict(&mut self, ids: Vec<SandboxId>) {
        for id in ids {
            // `PoolState::evict` already took them off the books.
            if let Some(entry) = self.take_warm(id) {
                self.unregister_warmed(id, &entry);
            }
        }
    }

    fn delete(&mut self, msg: &ContainerDeletionMessage) {
        let ids = self.state.delete(
            &msg.invocation_namespace,
            &msg.action.as_string_without_version(),
            &msg.revision.to_string(),
        );
        self.shut_down(ids);
    }

    /// Shuts sandboxes down that the pool moved to disabling.
    fn shut_down(&mut self, ids: Vec<SandboxId>) {
        for id in ids {
            if let Some(entry) = self.take_warm(id) {
                self.destroy_warm(id, entry);
            } else if let Some(running) = self.proxies.get(&id) {
                let _ = running.try_send(Control::GracefulShutdown);
            }
        }
    }

    fn disable(&mut self) {
        let actions = self.health.disable();
        self.health_actions(actions);
        self.disabling = true;
        self.disable_round();
    }

    fn disable_round(&mut self) {
        if !self.disabling {
            return;
        }
        let batch = self
            .state
            .disable_batch(self.shared.settings.batch_deletion_size);
        self.shut_down(batch);
        if self.state.drained() {
            self.disabling = false;
        }
    }

    fn tick(&mut self) {
        for (id, entry) in self.warm.expired() {
            self.idle_expired(id, entry);
        }
        self.memory_sync();
    }

    fn memory_sync(&mut self) {
        let memory = self.state.memory();
        let actions = self
            .health
            .memory(memory.free_mb, memory.busy_mb, memory.in_progress_mb);
        self.health_actions(actions);
    }

    /// `idle-container` ran out (or, for a kept one, `keeping-duration`):
    /// OpenWhisk's `DetermineKeepContainer`.
    /// The live count is read with retries (5 × 500 ms) by a task; the
    /// sandbox waits in `deciding`, where a creation can still take it.
    fn idle_expired(&mut self, id: SandboxId, entry: WarmEntry) {
        if !entry.keeping.needs_live_count(entry.kept) {
            self.destroy_warm(id, entry);
            return;
        }
        let shared = self.shared.clone();
        let keeping = entry.keeping;
        let fqn = entry.action.meta.fully_qualified_name();
        let ns = entry.invocation_namespace.clone();
        let rev = entry.action.revision.clone();
        self.deciding.insert(id, entry);
        tokio::spawn(async move {
            let live = live_count_with_retries(|| live_containers(&shared, &ns, &fqn, &rev)).await;
            let keep = keeping.decide(false, live, shared.settings.keeping_duration);
            shared.send(Event::KeepDecision { id, keep });
        });
    }

    fn expiry_check(&mut self) {
        let plan = self
            .planner
            .on_scheduled_check(&view(&self.state), TokioInstant::now().into_std());
        self.apply(plan);
    }

    fn health_actions(&mut self, actions: Vec<HealthAction>) {
        for action in actions {
            match action {
                HealthAction::StartHealthTest => {
                    if self.health_test.is_none() {
                        let (stop, stopped) = oneshot::channel();
                        self.health_test = Some(stop);
                        tokio::spawn(health_test(self.shared.clone(), stopped));
                    }
                }
                HealthAction::StopHealthTest => {
                    if let Some(stop) = self.health_test.take() {
                        let _ = stop.send(());
                    }
                }
                HealthAction::Publish(report) => {
                    self.publish.send_replace(Some(resource_message(&report)));
                }
            }
        }
    }

    fn snapshot(&mut self) -> PoolSnapshot {
        let counts = self.state.counts();
        let memory = self.state.memory();
        let mut busy = Vec::new();
        let mut paused = Vec::new();
        let invoker = self.shared.invoker.instance;
        for (id, slot) in self.state.slots() {
            let view = |action| container_view(&proxy::container_id(invoker, id), action);
            match slot {
                Slot::Busy { action } | Slot::Disabling { action } => busy.push(view(action)),
                Slot::Warmed { action, .. } => paused.push(view(action)),
                _ => {}
            }
        }
        busy.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        paused.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        let state = TotalContainerPoolState::new(
            counts.prewarmed_by_kind.clone(),
            counts.in_progress,
            busy,
            paused,
        );
        let mut metrics = PoolMetrics::new(&counts, &memory, self.state.warmed_mb());
        metrics.activations_by_start = self.shared.starts.read();
        PoolSnapshot {
            state,
            metrics,
            health: self.health.state(),
        }
    }

    async fn finish_shutdown(&mut self) {
        if let Some(stop) = self.health_test.take() {
            let _ = stop.send(());
        }
        // No new Docker container from here on; those being created are
        // settled first, so the clean-up below sees them all.
        self.shared.docker.close(Duration::from_secs(10)).await;
        let mut idle = Vec::new();
        let deciding: Vec<(SandboxId, WarmEntry)> = self.deciding.drain().collect();
        for (id, entry) in self.warm.drain().into_iter().chain(deciding) {
            self.unregister_warmed(id, &entry);
            idle.push(entry.sandbox);
        }
        idle.extend(self.stem_cells.drain().map(|(_, container)| container));
        futures_util::future::join_all(idle.into_iter().map(Container::destroy)).await;
        // Whatever else this invoker still has in Docker (a warm container
        // dropped by the drain, one whose proxy outlived the grace) goes too,
        // each removal awaited.
        if let Err(e) = self.shared.docker.remove_all().await {
            tracing::warn!(error = %e, "removing this invoker's containers at shutdown failed");
        }
        let report = self.health.report();
        let message = resource_message(&HealthReport {
            status: HealthState::Offline,
            ..report
        });
        publish_now(&self.shared, &message).await;
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }
}

fn container_view(container_id: &str, action: &PoolAction) -> ContainerView {
    ContainerView {
        container_id: container_id.to_string(),
        namespace: action.key.invocation_namespace.clone(),
        // OpenWhisk lists the bare action name.
        action: action
            .key
            .action
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        kind: action.kind.clone(),
    }
}

/// The live containers of a warmed sandbox's action and revision in the
/// cluster: live, in-progress and warmed keys (OpenWhisk's count).
async fn live_containers(
    shared: &Shared,
    ns: &str,
    fqn: &wasmwhisk_protocol::FullyQualifiedEntityName,
    rev: &wasmwhisk_protocol::DocRevision,
) -> Option<usize> {
    let mut total = 0;
    for kind in [ContainerKeyKind::Existing, ContainerKeyKind::Warmed] {
        let prefix = shared
            .keys
            .containers_prefix(kind, ns, fqn, Some(rev))
            .ok()?;
        total += shared.ports.cluster.count_prefix(&prefix).await.ok()?;
    }
    let in_progress = shared.keys.in_progress_prefix(ns, fqn, rev).ok()?;
    total += shared.ports.cluster.count_prefix(&in_progress).await.ok()?;
    Some(total)
}

fn resource_message(report: &HealthReport) -> InvokerResourceMessage {
    let mb = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    InvokerResourceMessage {
        status: match report.status {
            HealthState::Offline => InvokerState::Offline,
            HealthState::Unhealthy => InvokerState::Unhealthy,
            HealthState::Healthy => InvokerState::Healthy,
        },
        free_memory: mb(report.free_memory_mb),
        busy_memory: mb(report.busy_memory_mb),
        in_progress_memory: mb(report.in_progress_memory_mb),
        tags: report.tags.clone(),
        dedicated_namespaces: report.dedicated_namespaces.clone(),
    }
}

async fn publish_now(shared: &Shared, message: &InvokerResourceMessage) {
    let key = shared.keys.invoker(&shared.invoker);
    match serde_json::to_string(message) {
        Ok(json) => {
            if let Err(e) = shared.ports.cluster.put(&key, &json).await {
                tracing::warn!(key, error = %e, "publishing the invoker's health failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "encoding the invoker's health failed"),
    }
}

/// Writes the latest health report; a newer one replaces a pending one.
async fn publisher(
    shared: Arc<Shared>,
    mut reports: watch::Receiver<Option<InvokerResourceMessage>>,
) {
    while reports.changed().await.is_ok() {
        let latest = reports.borrow_and_update().clone();
        if let Some(message) = latest {
            publish_now(&shared, &message).await;
        }
    }
}

/// A uniform draw in `[0, 1)` (the expiration check's variance).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// The health test (docs/openwhisk.md §4.1): a real cold start of the health-test
/// action, then test activations in a loop while the invoker is unhealthy.
/// Each outcome feeds the health buffer; the pool stops it once healthy.
async fn health_test(shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let test = super::health::health_test_action(shared.invoker.instance);
    let limits = SandboxLimits {
        memory_mb: test.memory_mb,
        logs_mb: test.logs_mb,
        ..SandboxLimits::default()
    };
    let mut sandbox: Option<wasmwhisk_sandbox::AsyncSandbox> = None;
    loop {
        let ok = match sandbox.as_mut() {
            None => {
                let engine = shared.engine.clone();
                let made = tokio::task::spawn_blocking(move || {
                    proxy::new_stem_cell(&engine, ActionKind::Js, test.memory_mb)
                })
                .await
                .unwrap_or_else(|_| Err("the health test task failed".into()));
                match made {
                    Ok(made) => {
                        let mut made = wasmwhisk_sandbox::AsyncSandbox::new(made);
                        let args = InitArgs {
                            name: test.name.clone(),
                            main: test.main.to_string(),
                            code: test.code.as_bytes().to_vec(),
                            binary: false,
                            env: Vec::new(),
                        };
                        match made.init(args, limits).await {
                            Ok(_) => {
                                sandbox = Some(made);
                                continue;
                            }
                            Err(failure) => {
                                failure.response.status != ResponseStatus::WhiskInternalError
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the health test could not start its sandbox");
                        false
                    }
                }
            }
            Some(running) => {
                let context = ActivationContext {
                    activation_id: wasmwhisk_sandbox::action::new_activation_id(),
                    namespace: test.namespace.to_string(),
                    action_name: format!("/{}/{}", test.namespace, test.name),
                    action_version: "0.0.1".into(),
                    transaction_id: "invokerHealth".into(),
                    api_key: None,
                };
                let report = running.run(context, serde_json::Map::new(), limits).await;
                if running.is_retired() {
                    sandbox = None;
                }
                report.response.status != ResponseStatus::WhiskInternalError
            }
        };
        shared.send(Event::Outcome(ok));
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(shared.settings.health_test_interval) => {}
        }
    }
}
