//! The function-pulling pool: OpenWhisk's FunctionPullingContainerPool,
//! FunctionPullingContainerProxy and InvokerHealthManager (docs/openwhisk.md §1, §2,
//! §4.1) with sandboxes as containers.
//!
//! The decisions are pure, synchronous state machines, each tested move by
//! move; the async layer that carries them out comes on top of them:
//! - [`state`]: the pools (prewarm-starting, prewarmed, in-progress, busy,
//!   warmed, disabling), their memory accounting, and what to do with a
//!   creation message, a removal, a deletion or a disable;
//! - [`share`]: the fair share of `user-memory` between namespaces;
//! - [`prewarm`]: stem cell arithmetic — initial count, backfill, the
//!   `reactive` block OpenWhisk's FPC invoker drops, expiry, retry guard;
//! - [`health`]: the invoker's health FSM and its memory report;
//! - [`queue`]: the port sandboxes pull activations from (OpenWhisk's
//!   `FetchActivation`), and its in-process implementation;
//! - [`slot`]: the vocabulary shared by the above.
//!
//! The async layer (see `docs/pool.md`):
//! - [`actor`]: the pool's actor task, which owns the decisions and the idle
//!   sandboxes; [`handle`]: the [`PoolHandle`] callers hold and the events
//!   the tasks send the actor; [`settings`]: its settings and ports;
//! - [`proxy`]: one task per busy sandbox — pull, init, run, record, pause;
//! - [`container`]: what a sandbox is — a Wasm instance or a Docker container;
//! - [`warm`]: paused sandboxes in a moka cache with per-entry expiry;
//! - [`record`]: activation records and completion acks;
//! - [`introspect`]: the `GetState` JSON and metrics;
//! - [`ports`]: the traits the pool talks to the world through, and
//!   [`local`]: their in-process implementations.

pub mod actor;
pub mod container;
pub mod handle;
pub mod health;
pub mod introspect;
pub mod local;
pub mod ports;
pub mod prewarm;
pub mod proxy;
pub mod queue;
pub mod queue_bytes;
pub mod record;
pub mod settings;
pub mod share;
pub mod slot;
pub mod state;
pub mod warm;

pub use handle::{PoolHandle, PoolSnapshot};
pub use settings::{PoolPorts, PoolSettings};
pub use slot::{
    CreationDecision, MemoryReport, PoolAction, PoolCounts, Refusal, Removed, SandboxId, Slot,
    StartKind, WarmKey, WrongSlot,
};
pub use state::PoolState;
