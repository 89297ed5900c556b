//! Stem cell arithmetic: how many prewarmed sandboxes to create or remove, and
//! when (docs/openwhisk.md §1.4, OpenWhisk's `adjustPrewarmedContainer`,
//! `increasePrewarms`, `removeExpired` and `getReactiveCold`).
//!
//! Why it is separate from the pool: the rules are counting, not doing. The
//! [`PrewarmPlanner`] gets a read-only view of the stem cells ([`StemCellView`])
//! with each event and returns a [`PrewarmPlan`] (create so many of this kind
//! and memory, remove these); the async pool starts and retires the sandboxes.
//! Time is an argument (`now`), the random variance of the check interval is
//! an argument (drawn once by the caller), and there are no timers here: the
//! pool's background loop sleeps on [`ExpiryCheckSchedule`].
//!
//! How it differs from OpenWhisk's FPC invoker: FPC drops the `reactive`
//! block of `stemCells`, so its stem cells never expire and their number never
//! follows demand. wasmwhisk **honours `reactive`**, as OpenWhisk's older
//! `ContainerPool` does:
//! - each reactive stem cell expires `ttl` after its creation; the scheduled
//!   check removes expired ones (oldest expiry first, at most
//!   `prewarm-expiration-limit` per cycle) without replacing them;
//! - the scheduled check sizes each reactive config from the cold starts
//!   counted for its (kind, memory) since the last check, between `minCount`
//!   and `maxCount`;
//! - backfill after a removal keeps at least `minCount` (else `initialCount`).
//!
//! Two small choices where OpenWhisk is loose: expired cells are ordered by
//! expiry across all configs before the limit is applied (OpenWhisk sorts per
//! config, then concatenates), and a replacement for a taken stem cell takes
//! its ttl from the config of the *stem cell's* kind and memory (OpenWhisk
//! looks it up by the action's memory, which misses under promotion).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The `reactive` block of a stem cell config (docs/openwhisk.md §8.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactiveSpec {
    /// The fewest stem cells kept, even with no cold starts (`minCount`).
    pub min_count: u32,
    /// The most stem cells the scheduled check asks for (`maxCount`).
    pub max_count: u32,
    /// How long a stem cell lives unused before it expires (`ttl`).
    pub ttl: Duration,
    /// Cold starts per `increment` (`threshold`, > 0).
    pub threshold: u32,
    /// Stem cells added per `threshold` cold starts (`increment`).
    pub increment: u32,
}

/// One `stemCells` entry of the runtimes manifest: keep stem cells of this
/// kind and memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StemCellSpec {
    /// The action kind the stem cells run (`js`, …).
    pub kind: String,
    /// The memory each stem cell has, in MB.
    pub memory_mb: u64,
    /// How many to create at startup (`initialCount`).
    pub initial_count: u32,
    /// Demand-driven sizing and expiry; `None` keeps `initial_count` forever.
    pub reactive: Option<ReactiveSpec>,
}

impl StemCellSpec {
    /// Whether a stem cell of `kind` and `memory_mb` belongs to this config.
    pub fn matches(&self, kind: &str, memory_mb: u64) -> bool {
        self.kind == kind && self.memory_mb == memory_mb
    }

    /// The stem cells' time to live: the reactive `ttl`, else none.
    pub fn ttl(&self) -> Option<Duration> {
        self.reactive.as_ref().map(|r| r.ttl)
    }
}

/// What the planner needs to know about one stem cell in the pool, ready or
/// still starting. `Id` is the pool's handle for it, returned in removals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StemCellView<'a, Id> {
    /// The pool's identity for this stem cell.
    pub id: Id,
    /// The stem cell's kind.
    pub kind: &'a str,
    /// The stem cell's memory, in MB.
    pub memory_mb: u64,
    /// When it expires (`created + ttl` for reactive configs), else `None`.
    pub expires: Option<Instant>,
    /// `true` once it is ready (prewarmed), `false` while starting. Creations
    /// queued but not yet started count as starting.
    pub ready: bool,
}

/// How many stem cells of `spec` exist: ready (expired included, they may
/// not be removed yet) plus starting.
pub fn current_count<Id>(spec: &StemCellSpec, view: &[StemCellView<'_, Id>]) -> u32 {
    let n = view
        .iter()
        .filter(|c| spec.matches(c.kind, c.memory_mb))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How many stem cells of `spec` to create at startup: `initialCount` minus
/// those that exist.
pub fn startup_deficit<Id>(spec: &StemCellSpec, view: &[StemCellView<'_, Id>]) -> u32 {
    spec.initial_count.saturating_sub(current_count(spec, view))
}

/// How many stem cells of `spec` a backfill after a removal wants:
/// `reactive.minCount`, else `initialCount`.
pub fn backfill_desired(spec: &StemCellSpec) -> u32 {
    spec.reactive
        .as_ref()
        .map_or(spec.initial_count, |r| r.min_count)
}

/// How many stem cells of `spec` to create in a backfill after a removal.
pub fn backfill_deficit<Id>(spec: &StemCellSpec, view: &[StemCellView<'_, Id>]) -> u32 {
    backfill_desired(spec).saturating_sub(current_count(spec, view))
}

/// OpenWhisk's `getReactiveCold`: with `cold_starts` counted this cycle,
/// `min(max(minCount, (coldStarts / threshold) * increment), maxCount)` with
/// integer division; with none counted (`None`), `minCount`. A zero threshold
/// (rejected by the config) is read as 1 rather than dividing by zero.
pub fn reactive_desired(reactive: &ReactiveSpec, cold_starts: Option<u32>) -> u32 {
    match cold_starts {
        None => reactive.min_count,
        Some(cold) => {
            let wanted = (cold / reactive.threshold.max(1)).saturating_mul(reactive.increment);
            wanted.max(reactive.min_count).min(reactive.max_count)
        }
    }
}

/// Cold starts per (kind, memory) since the last scheduled check, counted
/// only for pairs that have a stem cell config (OpenWhisk's `coldStartCount`).
#[derive(Clone, Debug, Default)]
pub struct ColdStartCounter {
    /// Counts by (kind, memory MB). Invariant: every key has a config.
    counts: HashMap<(String, u64), u32>,
}

impl ColdStartCounter {
    /// Count one cold start of `kind` / `memory_mb` if some spec matches it;
    /// returns whether it was counted.
    pub fn record(&mut self, specs: &[StemCellSpec], kind: &str, memory_mb: u64) -> bool {
        if !specs.iter().any(|s| s.matches(kind, memory_mb)) {
            return false;
        }
        let count = self.counts.entry((kind.to_owned(), memory_mb)).or_insert(0);
        *count = count.saturating_add(1);
        true
    }

    /// The cold starts counted for `kind` / `memory_mb` this cycle, `None` if
    /// there were none.
    pub fn get(&self, kind: &str, memory_mb: u64) -> Option<u32> {
        self.counts.get(&(kind.to_owned(), memory_mb)).copied()
    }

    /// Forget all counts (end of a scheduled check).
    pub fn clear(&mut self) {
        self.counts.clear();
    }
}

/// The expired ready stem cells of reactive specs, oldest expiry first, at
/// most `limit` (`prewarm-expiration-limit`); equal expiries keep the view's
/// order. A stem cell expires when `now` reaches its `expires`.
pub fn select_expired<'v, 'a, Id>(
    specs: &[StemCellSpec],
    view: &'v [StemCellView<'a, Id>],
    now: Instant,
    limit: usize,
) -> Vec<&'v StemCellView<'a, Id>> {
    let reactive = |c: &StemCellView<'_, Id>| {
        specs
            .iter()
            .any(|s| s.reactive.is_some() && s.matches(c.kind, c.memory_mb))
    };
    let mut expired: Vec<(Instant, &StemCellView<'a, Id>)> = view
        .iter()
        .filter(|c| c.ready && reactive(c))
        .filter_map(|c| c.expires.filter(|e| *e <= now).map(|e| (e, c)))
        .collect();
    expired.sort_by_key(|(e, _)| *e);
    expired.into_iter().take(limit).map(|(_, c)| c).collect()
}

/// The scheduled expiry check's timing: first run `init_delay` after the
/// pool starts, then every `interval + variance × draw`, where the random
/// `draw` is made **once**, when the pool starts (docs/openwhisk.md §1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryCheckSchedule {
    /// `prewarm-expiration-check-init-delay`.
    init_delay: Duration,
    /// `prewarm-expiration-check-interval` plus the drawn variance.
    period: Duration,
}

impl ExpiryCheckSchedule {
    /// The schedule for `interval`, `variance`, and a random `draw` in
    /// `[0, 1)`. A draw outside `[0, 1]` (or NaN) is read as 0. OpenWhisk
    /// draws whole seconds; this draw is continuous. The period is never
    /// below one second (the config rejects a zero interval; this keeps a
    /// timer from spinning or panicking if one slips through).
    pub fn new(init_delay: Duration, interval: Duration, variance: Duration, draw: f64) -> Self {
        let fraction = if (0.0..=1.0).contains(&draw) {
            draw
        } else {
            0.0
        };
        let extra = Duration::try_from_secs_f64(variance.as_secs_f64() * fraction)
            .unwrap_or(Duration::ZERO)
            .min(variance);
        Self {
            init_delay,
            period: interval.saturating_add(extra).max(Duration::from_secs(1)),
        }
    }

    /// How long after the pool starts the first check runs.
    pub fn init_delay(&self) -> Duration {
        self.init_delay
    }

    /// The time between two checks (fixed for the pool's life).
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// `prewarm-max-retry-limit`'s default: failed creations tolerated before
/// prewarming pauses until the next reset.
pub const DEFAULT_MAX_RETRY_LIMIT: u32 = 5;

/// `prewarm-expiration-limit`'s default: expired stem cells removed per check.
pub const DEFAULT_EXPIRATION_LIMIT: usize = 100;

/// Stem cells to create: `count` of `kind` / `memory_mb`, each expiring
/// `ttl` after its creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePrewarm {
    /// The stem cells' kind.
    pub kind: String,
    /// The stem cells' memory, in MB.
    pub memory_mb: u64,
    /// Their time to live, from the matching reactive config.
    pub ttl: Option<Duration>,
    /// How many to create (≥ 1).
    pub count: u32,
}

impl CreatePrewarm {
    /// The `expires` of a stem cell of this batch created at `created`.
    /// `None` without a ttl (or beyond what `Instant` can hold).
    pub fn expires(&self, created: Instant) -> Option<Instant> {
        self.ttl.and_then(|ttl| created.checked_add(ttl))
    }
}

/// What the pool should do after a prewarm event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrewarmPlan<Id> {
    /// Stem cells to start.
    pub create: Vec<CreatePrewarm>,
    /// Ready stem cells to remove (expired), without replacing them.
    pub remove: Vec<Id>,
    /// Creations the retry guard held back (worth a warning, not an error).
    pub suppressed: u32,
}

impl<Id> Default for PrewarmPlan<Id> {
    fn default() -> Self {
        Self {
            create: Vec::new(),
            remove: Vec::new(),
            suppressed: 0,
        }
    }
}

impl<Id> PrewarmPlan<Id> {
    /// Whether the plan asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.remove.is_empty()
    }
}

/// The pool's prewarm policy: owns the stem cell configs, the cold start
/// counts and the retry guard; sees the stem cells only through the view
/// passed with each event.
#[derive(Clone, Debug)]
pub struct PrewarmPlanner {
    /// The `stemCells` configs of all runtimes.
    specs: Vec<StemCellSpec>,
    /// Cold starts since the last scheduled check.
    cold_starts: ColdStartCounter,
    /// Failed stem cell creations since the last reset (a stem cell became
    /// ready, or a scheduled check ran).
    failed: u32,
    /// No creation while `failed > max_retry_limit`.
    max_retry_limit: u32,
    /// At most this many expired stem cells are removed per check.
    expiration_limit: usize,
}

impl PrewarmPlanner {
    /// A planner for `specs` with `prewarm-max-retry-limit` and
    /// `prewarm-expiration-limit`.
    pub fn new(specs: Vec<StemCellSpec>, max_retry_limit: u32, expiration_limit: usize) -> Self {
        Self {
            specs,
            cold_starts: ColdStartCounter::default(),
            failed: 0,
            max_retry_limit,
            expiration_limit,
        }
    }

    /// The stem cell configs.
    pub fn specs(&self) -> &[StemCellSpec] {
        &self.specs
    }

    /// Whether the scheduled check is needed at all: only reactive configs
    /// expire or follow demand.
    pub fn needs_scheduled_check(&self) -> bool {
        self.specs.iter().any(|s| s.reactive.is_some())
    }

    /// Whether the retry guard lets new stem cells be created.
    pub fn creation_allowed(&self) -> bool {
        self.failed <= self.max_retry_limit
    }

    /// The pool started: create `initialCount` of each config, minus those
    /// that already exist.
    pub fn on_start<Id>(&self, view: &[StemCellView<'_, Id>]) -> PrewarmPlan<Id> {
        self.plan_deficits(view, |spec| spec.initial_count)
    }

    /// A sandbox was removed and asked for its stem cell to be replaced:
    /// backfill to `minCount` (else `initialCount`). The view no longer holds
    /// the removed one.
    pub fn on_removed<Id>(&self, view: &[StemCellView<'_, Id>]) -> PrewarmPlan<Id> {
        self.plan_deficits(view, backfill_desired)
    }

    /// A starting stem cell failed (it is no longer in the view): count the
    /// failure, then backfill as after a removal, unless the retry guard now
    /// holds creation back.
    pub fn on_create_failed<Id>(&mut self, view: &[StemCellView<'_, Id>]) -> PrewarmPlan<Id> {
        self.failed = self.failed.saturating_add(1);
        self.on_removed(view)
    }

    /// A stem cell became ready (`ReadyToWork`): creation works, so the
    /// failure count starts over.
    pub fn on_ready(&mut self) {
        self.failed = 0;
    }

    /// A stem cell of `kind` / `memory_mb` was taken for an action: start its
    /// replacement at once, with the ttl of its config. A stem cell no config
    /// matches is not replaced.
    pub fn on_taken<Id>(&self, kind: &str, memory_mb: u64) -> PrewarmPlan<Id> {
        let mut plan = PrewarmPlan::default();
        if let Some(spec) = self.specs.iter().find(|s| s.matches(kind, memory_mb)) {
            self.push_create(&mut plan, spec, 1);
        }
        plan
    }

    /// An action of `kind` / `memory_mb` was cold-started; counted only if a
    /// stem cell config matches. Returns whether it was counted.
    pub fn on_cold_start(&mut self, kind: &str, memory_mb: u64) -> bool {
        self.cold_starts.record(&self.specs, kind, memory_mb)
    }

    /// The cold starts counted for `kind` / `memory_mb` this cycle.
    pub fn cold_starts(&self, kind: &str, memory_mb: u64) -> Option<u32> {
        self.cold_starts.get(kind, memory_mb)
    }

    /// The scheduled check at `now`: reset the failure count, remove expired
    /// stem cells, create up to each config's desired count (reactive: from
    /// this cycle's cold starts; otherwise `initialCount`) counting what is
    /// left after the removals, and clear the cold start counts.
    pub fn on_scheduled_check<Id: Clone>(
        &mut self,
        view: &[StemCellView<'_, Id>],
        now: Instant,
    ) -> PrewarmPlan<Id> {
        self.failed = 0;
        let removed = select_expired(&self.specs, view, now, self.expiration_limit);
        let mut plan = PrewarmPlan {
            remove: removed.iter().map(|c| c.id.clone()).collect(),
            ..PrewarmPlan::default()
        };
        for spec in &self.specs {
            let desired = match &spec.reactive {
                Some(r) => reactive_desired(r, self.cold_starts.get(&spec.kind, spec.memory_mb)),
                None => spec.initial_count,
            };
            let gone = removed
                .iter()
                .filter(|c| spec.matches(c.kind, c.memory_mb))
                .count();
            let left =
                current_count(spec, view).saturating_sub(u32::try_from(gone).unwrap_or(u32::MAX));
            self.push_create(&mut plan, spec, desired.saturating_sub(left));
        }
        self.cold_starts.clear();
        plan
    }

    /// A plan creating, for every config, `desired(spec)` minus its current
    /// count.
    fn plan_deficits<Id>(
        &self,
        view: &[StemCellView<'_, Id>],
        desired: impl Fn(&StemCellSpec) -> u32,
    ) -> PrewarmPlan<Id> {
        let mut plan = PrewarmPlan::default();
        for spec in &self.specs {
            let deficit = desired(spec).saturating_sub(current_count(spec, view));
            self.push_create(&mut plan, spec, deficit);
        }
        plan
    }

    /// Add `count` creations of `spec` to `plan`, or to its `suppressed`
    /// count while the retry guard is tripped.
    fn push_create<Id>(&self, plan: &mut PrewarmPlan<Id>, spec: &StemCellSpec, count: u32) {
        if count == 0 {
            return;
        }
        if !self.creation_allowed() {
            plan.suppressed = plan.suppressed.saturating_add(count);
            return;
        }
        plan.create.push(CreatePrewarm {
            kind: spec.kind.clone(),
            memory_mb: spec.memory_mb,
            ttl: spec.ttl(),
            count,
        });
    }
}

#[cfg(test)]
#[path = "prewarm_tests.rs"]
mod tests;
