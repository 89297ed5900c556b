//! The pool's vocabulary: sandbox ids, what makes a warm sandbox reusable,
//! the slots (OpenWhisk's pools) and the decisions the pool returns.

use std::time::Instant;

/// A sandbox's identity in the pool.
pub type SandboxId = u64;

/// What makes a warm sandbox reusable: OpenWhisk's `WarmData` match
/// (invocation namespace, action, revision).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WarmKey {
    /// The namespace the activations are invoked in.
    pub invocation_namespace: String,
    /// The action, `ns[/pkg]/name` (no version).
    pub action: String,
    /// The action document's revision (`"3-abc…"`).
    pub revision: String,
}

/// An action as the pool sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolAction {
    /// Warm-reuse identity.
    pub key: WarmKey,
    /// The action's kind (`js`, `wasm`, …): which stem cells fit.
    pub kind: String,
    /// `limits.memory`, MB.
    pub memory_mb: u64,
    /// False for kinds that cannot run (e.g. sequences).
    pub executable: bool,
}

/// Where a sandbox is. Each variant carries what OpenWhisk's data does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A stem cell being created.
    PrewarmStarting {
        /// Its runtime kind.
        kind: String,
        /// Its memory, MB.
        memory_mb: u64,
    },
    /// A ready stem cell.
    Prewarmed {
        /// Its runtime kind.
        kind: String,
        /// Its memory, MB.
        memory_mb: u64,
        /// When it expires (reactive stem cells have a ttl).
        expires: Option<Instant>,
    },
    /// Chosen for an action, not yet pulling: counts `memory_mb`.
    InProgress {
        /// The action.
        action: PoolAction,
        /// Memory counted while in progress (a stem cell's own memory).
        memory_mb: u64,
        /// How it was chosen.
        start: StartKind,
    },
    /// Pulling activations for its action.
    Busy {
        /// The action.
        action: PoolAction,
    },
    /// Paused (stopped pulling), reusable for the same action.
    Warmed {
        /// The action.
        action: PoolAction,
        /// When it last ran.
        last_used: Instant,
    },
    /// Being drained (disable or deletion); memory of its action still held.
    Disabling {
        /// The action.
        action: PoolAction,
    },
}

/// How a sandbox was started for an action (the ack's and metric's label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartKind {
    /// A new sandbox.
    Cold,
    /// A stem cell specialized.
    Prewarmed,
    /// A warmed sandbox resumed.
    Warm,
}

impl StartKind {
    /// OpenWhisk's label.
    pub fn as_str(self) -> &'static str {
        match self {
            StartKind::Cold => "cold",
            StartKind::Prewarmed => "prewarmed",
            StartKind::Warm => "warmed",
        }
    }
}

/// Why a creation message is refused (the ack's error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The invoker is disabled or shutting down.
    ShuttingDown,
    /// The action's kind cannot run.
    NonExecutable,
    /// Not enough memory, even after evicting every warmed sandbox; or the
    /// namespace holds its fair share while another namespace waits.
    ResourceNotEnough,
}

/// What to do with a creation message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreationDecision {
    /// Resume warmed sandbox `id` (now in progress).
    Warm {
        /// The sandbox.
        id: SandboxId,
    },
    /// Specialize stem cell `id`; start a replacement stem cell
    /// `replacement` (already in prewarm-starting); destroy `evict` first.
    Prewarm {
        /// The stem cell taken.
        id: SandboxId,
        /// The new stem cell to create in its place.
        replacement: SandboxId,
        /// Warmed sandboxes to destroy to make room.
        evict: Vec<SandboxId>,
    },
    /// Create sandbox `id` for the action; destroy `evict` first.
    Cold {
        /// The new sandbox.
        id: SandboxId,
        /// Warmed sandboxes to destroy to make room.
        evict: Vec<SandboxId>,
    },
    /// Send an error ack (and, for `ResourceNotEnough`, a memory report now).
    Refuse(Refusal),
    /// Refuse for now with `ResourceNotEnough`, and shut down `reclaim`:
    /// busy sandboxes of namespaces over their fair share, already moved to
    /// disabling (see [`super::share`]). The retried creation finds their
    /// memory free.
    Reclaim {
        /// The busy sandboxes to shut down.
        reclaim: Vec<SandboxId>,
    },
}

/// What a removal leaves to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed<M> {
    /// It was a stem cell that failed to start (counts towards the retry limit).
    pub was_starting: bool,
    /// A creation message still waiting for its ack: ack `UnknownError`
    /// ("ContainerProxy init failed.").
    pub unacked: Option<M>,
}

/// The memory report (MB): `free` counts warmed sandboxes as free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MemoryReport {
    /// `user-memory − busy − in-progress`.
    pub free_mb: u64,
    /// Busy (and disabling) sandboxes.
    pub busy_mb: u64,
    /// In-progress sandboxes.
    pub in_progress_mb: u64,
}

/// Counts for the `GetState` JSON and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PoolCounts {
    /// Prewarm-starting stem cells.
    pub prewarm_starting: usize,
    /// Ready stem cells by kind.
    pub prewarmed_by_kind: Vec<(String, usize)>,
    /// In progress.
    pub in_progress: usize,
    /// Busy.
    pub busy: usize,
    /// Warmed (paused).
    pub warmed: usize,
    /// Disabling.
    pub disabling: usize,
}

/// Errors of moves that name a sandbox not in the expected pool. A bug in
/// the caller or a stale message; the state is left unchanged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sandbox {id} is not {expected}")]
pub struct WrongSlot {
    /// The sandbox.
    pub id: SandboxId,
    /// The pool it should have been in.
    pub expected: &'static str,
}
