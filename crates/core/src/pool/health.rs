//! The invoker's health: OpenWhisk's `InvokerHealthManager` FSM (docs/openwhisk.md
//! §4.1) as a plain state machine that returns decisions.
//!
//! ```text
//!            enable                 outcome: < 3 failures in the last 10
//!  Offline ─────────▶ Unhealthy ─────────────────────────────────▶ Healthy
//!     ▲               (health test    ◀─────────────────────────────  │
//!     │                 running)       outcome: ≥ 3 failures          │
//!     └──────────────── disable (from either) ───────────────────────┘
//! ```
//!
//! Why a state machine and not an actor: the rules (a ring buffer of the last
//! [`BUFFER_SIZE`] outcomes, [`ERROR_TOLERANCE`] system errors make the
//! invoker unhealthy, a real cold-start health test while unhealthy) are
//! pure arithmetic. Keeping them here, free of etcd and of the sandbox
//! machinery, lets every arrow be tested without a cluster. The async health
//! task feeds events in and carries out the returned [`HealthAction`]s:
//! it starts or stops the health-test sandbox and writes the
//! [`HealthReport`] to `whisk/invokers/{N}` under the lease.
//!
//! What matches OpenWhisk:
//! - the start state is `Offline` with free memory = `user-memory`;
//! - one good outcome after `enable` is enough to become `Healthy` (the
//!   buffer holds fewer than 3 failures);
//! - outcomes are ignored while `Offline`; the buffer is **not** cleared by
//!   `disable`, so failures seen before a disable still count after the next
//!   enable until enough successes roll them out;
//! - a memory update publishes the current status with the new numbers, in
//!   every state (so `down` with the memory is written before the first
//!   enable);
//! - publishing is OpenWhisk's `UpdateDataOnChange`: a report equal to the
//!   last one published is not published again.
//!
//! Where wasmwhisk differs (deliberately):
//! - `disable` from `Unhealthy` also stops the health test (OpenWhisk leaves
//!   the test proxy running, pulling its own activations, after a disable);
//! - `disable` while already `Offline` still publishes `down` if it was never
//!   published, so a shutdown always leaves `down` behind;
//! - [`InvokerHealth::resync`] re-publishes unconditionally, for after an etcd
//!   outage when the keys must be put again (docs/cluster-etcd.md#when-etcd-is-away).

use std::collections::VecDeque;
use std::fmt;

/// How many recent activation outcomes the health buffer keeps
/// (OpenWhisk's `bufferSize`).
pub const BUFFER_SIZE: usize = 10;

/// The number of system errors in the buffer at which the invoker becomes
/// unhealthy (OpenWhisk's `bufferErrorTolerance`: `< 3` failures is healthy).
pub const ERROR_TOLERANCE: usize = 3;

/// The invoker's state as published in `whisk/invokers/{N}`
/// (docs/openwhisk.md §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// Disabled or shutting down; published as `down`. The start state.
    Offline,
    /// Enabled but not (yet) trusted; the health test runs. Published as
    /// `unhealthy`.
    Unhealthy,
    /// Usable by the schedulers; published as `up`.
    Healthy,
}

impl HealthState {
    /// The status string OpenWhisk publishes for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Offline => "down",
            HealthState::Unhealthy => "unhealthy",
            HealthState::Healthy => "up",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The invoker's published resource report: OpenWhisk's
/// `InvokerResourceMessage` (docs/openwhisk.md §3.5) before it becomes JSON. The
/// wire type lives with the protocol; this is what the FSM decides to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The state; its [`HealthState::as_str`] is the `status` field.
    pub status: HealthState,
    /// `user-memory − busy − in-progress`, in MB (warmed counts as free).
    pub free_memory_mb: u64,
    /// Memory of busy sandboxes, in MB.
    pub busy_memory_mb: u64,
    /// Memory of in-progress sandboxes, in MB.
    pub in_progress_memory_mb: u64,
    /// The invoker's resource tags.
    pub tags: Vec<String>,
    /// Namespaces this invoker is dedicated to (empty: any).
    pub dedicated_namespaces: Vec<String>,
}

/// A decision of the health FSM, carried out by the async health task in the
/// order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthAction {
    /// Start a health-test sandbox: a real cold start of
    /// [`health_test_action`] that runs test activations in a loop.
    StartHealthTest,
    /// Stop the running health-test sandbox (gracefully).
    StopHealthTest,
    /// Write this report to `whisk/invokers/{N}` under the lease.
    Publish(HealthReport),
}

/// The health FSM of one invoker.
#[derive(Clone, Debug)]
pub struct InvokerHealth {
    /// Current state. Invariant: the health test runs iff `Unhealthy`.
    state: HealthState,
    /// The last [`BUFFER_SIZE`] outcomes, oldest first; `false` is a system
    /// error. Invariant: `len() <= BUFFER_SIZE`.
    outcomes: VecDeque<bool>,
    /// Free memory in MB, as last reported by the pool.
    free_memory_mb: u64,
    /// Busy memory in MB, as last reported by the pool.
    busy_memory_mb: u64,
    /// In-progress memory in MB, as last reported by the pool.
    in_progress_memory_mb: u64,
    /// Resource tags, copied into every report.
    tags: Vec<String>,
    /// Dedicated namespaces, copied into every report.
    dedicated_namespaces: Vec<String>,
    /// The last report handed out in a [`HealthAction::Publish`]; `None`
    /// until the first publish.
    last_published: Option<HealthReport>,
}

impl InvokerHealth {
    /// A new FSM in `Offline`, with all of `user_memory_mb` free and an empty
    /// outcome buffer. Nothing is published until the first event.
    pub fn new(user_memory_mb: u64, tags: Vec<String>, dedicated_namespaces: Vec<String>) -> Self {
        Self {
            state: HealthState::Offline,
            outcomes: VecDeque::with_capacity(BUFFER_SIZE),
            free_memory_mb: user_memory_mb,
            busy_memory_mb: 0,
            in_progress_memory_mb: 0,
            tags,
            dedicated_namespaces,
            last_published: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// How many system errors the outcome buffer holds now.
    pub fn failures(&self) -> usize {
        self.outcomes.iter().filter(|ok| !**ok).count()
    }

    /// The report for the current state and memory numbers.
    pub fn report(&self) -> HealthReport {
        HealthReport {
            status: self.state,
            free_memory_mb: self.free_memory_mb,
            busy_memory_mb: self.busy_memory_mb,
            in_progress_memory_mb: self.in_progress_memory_mb,
            tags: self.tags.clone(),
            dedicated_namespaces: self.dedicated_namespaces.clone(),
        }
    }

    /// The invoker was enabled (at startup or by `/enable`). From `Offline`
    /// it becomes `Unhealthy`, starts the health test and publishes
    /// `unhealthy`; in any other state nothing happens.
    pub fn enable(&mut self) -> Vec<HealthAction> {
        if self.state != HealthState::Offline {
            return Vec::new();
        }
        let mut actions = vec![HealthAction::StartHealthTest];
        self.state = HealthState::Unhealthy;
        self.publish_if_changed(&mut actions);
        actions
    }

    /// The invoker is being disabled or shut down: it goes `Offline`, stops
    /// the health test if it ran, and publishes `down` (if that is news).
    pub fn disable(&mut self) -> Vec<HealthAction> {
        let mut actions = Vec::new();
        if self.state == HealthState::Unhealthy {
            actions.push(HealthAction::StopHealthTest);
        }
        self.state = HealthState::Offline;
        self.publish_if_changed(&mut actions);
        actions
    }

    /// One activation finished; `ok` is `false` for a system error (ours),
    /// `true` otherwise (success, application or developer error). Ignored
    /// while `Offline`. Entering `Healthy` stops the health test; falling
    /// back to `Unhealthy` starts it again.
    pub fn outcome(&mut self, ok: bool) -> Vec<HealthAction> {
        if self.state == HealthState::Offline {
            return Vec::new();
        }
        if self.outcomes.len() >= BUFFER_SIZE {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(ok);
        let next = if self.failures() < ERROR_TOLERANCE {
            HealthState::Healthy
        } else {
            HealthState::Unhealthy
        };
        let mut actions = match (self.state, next) {
            (HealthState::Unhealthy, HealthState::Healthy) => vec![HealthAction::StopHealthTest],
            (HealthState::Healthy, HealthState::Unhealthy) => vec![HealthAction::StartHealthTest],
            _ => Vec::new(),
        };
        self.state = next;
        self.publish_if_changed(&mut actions);
        actions
    }

    /// The health-test sandbox went away (retired after a failure, or
    /// stopped). While `Unhealthy` a new one is started; otherwise the
    /// removal needs nothing.
    pub fn test_sandbox_removed(&mut self) -> Vec<HealthAction> {
        if self.state == HealthState::Unhealthy {
            vec![HealthAction::StartHealthTest]
        } else {
            Vec::new()
        }
    }

    /// The pool's periodic memory numbers (every `memory-sync-interval`, and
    /// when a creation runs out of room). Publishes the current state with
    /// them, in any state, if the report changed.
    pub fn memory(&mut self, free_mb: u64, busy_mb: u64, in_progress_mb: u64) -> Vec<HealthAction> {
        self.free_memory_mb = free_mb;
        self.busy_memory_mb = busy_mb;
        self.in_progress_memory_mb = in_progress_mb;
        let mut actions = Vec::new();
        self.publish_if_changed(&mut actions);
        actions
    }

    /// Publish the current report even if it was published before: the
    /// etcd key was lost (lease re-granted, reconnect) and must be put again.
    pub fn resync(&mut self) -> Vec<HealthAction> {
        self.last_published = None;
        let mut actions = Vec::new();
        self.publish_if_changed(&mut actions);
        actions
    }

    /// Push a [`HealthAction::Publish`] of the current report unless it
    /// equals the last one published (OpenWhisk's `UpdateDataOnChange`).
    fn publish_if_changed(&mut self, actions: &mut Vec<HealthAction>) {
        let report = self.report();
        if self.last_published.as_ref() != Some(&report) {
            self.last_published = Some(report.clone());
            actions.push(HealthAction::Publish(report));
        }
    }
}

/// The namespace the health-test action lives in.
pub const HEALTH_ACTION_NAMESPACE: &str = "whisk.system";

/// The health-test action's name, before the invoker's number.
pub const HEALTH_ACTION_NAME_PREFIX: &str = "invokerHealthTestAction";

/// The health-test action's kind. OpenWhisk uses `nodejs:default`; ours is
/// the JS runtime component, so the test is a real cold start of it.
pub const HEALTH_ACTION_KIND: &str = "js";

/// The health-test action's code: echo the parameters.
pub const HEALTH_ACTION_CODE: &str = "function main(params) { return params; }";

/// The health-test action's memory limit: OpenWhisk's minimum, 128 MB.
pub const HEALTH_ACTION_MEMORY_MB: u64 = 128;

/// The controller id the health test's activations carry (OpenWhisk's
/// `ControllerInstanceId("health")`); its acks go nowhere.
pub const HEALTH_CONTROLLER_ID: &str = "health";

/// The definition of an invoker's health-test action: just data, upserted
/// into the action store on enable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthTestAction {
    /// The namespace, [`HEALTH_ACTION_NAMESPACE`].
    pub namespace: &'static str,
    /// `invokerHealthTestAction{N}`.
    pub name: String,
    /// The kind, [`HEALTH_ACTION_KIND`].
    pub kind: &'static str,
    /// The code, [`HEALTH_ACTION_CODE`].
    pub code: &'static str,
    /// The entry point, `main`.
    pub main: &'static str,
    /// The memory limit, [`HEALTH_ACTION_MEMORY_MB`].
    pub memory_mb: u64,
    /// The log limit: 0 (the test's logs are not kept).
    pub logs_mb: u64,
}

/// The health-test action of invoker `invoker_id`.
pub fn health_test_action(invoker_id: u32) -> HealthTestAction {
    HealthTestAction {
        namespace: HEALTH_ACTION_NAMESPACE,
        name: format!("{HEALTH_ACTION_NAME_PREFIX}{invoker_id}"),
        kind: HEALTH_ACTION_KIND,
        code: HEALTH_ACTION_CODE,
        main: "main",
        memory_mb: HEALTH_ACTION_MEMORY_MB,
        logs_mb: 0,
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
