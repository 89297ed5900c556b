//! The function-pulling pool: OpenWhisk's FunctionPullingContainerPool,
//! FunctionPullingContainerProxy and InvokerHealthManager (reference §1, §2,
//! §4.1) with sandboxes as containers.
//!
//! The decisions are pure, synchronous state machines, each tested move by
//! move; the async layer that carries them out comes on top of them:
//! - [`state`]: the pools (prewarm-starting, prewarmed, in-progress, busy,
//!   warmed, disabling), their memory accounting, and what to do with a
//!   creation message, a removal, a deletion or a disable;
//! - [`prewarm`]: stem cell arithmetic — initial count, backfill, the
//!   `reactive` block OpenWhisk's FPC invoker drops, expiry, retry guard;
//! - [`health`]: the invoker's health FSM and its memory report;
//! - [`queue`]: the port sandboxes pull activations from (OpenWhisk's
//!   `FetchActivation`), and its in-process implementation;
//! - [`slot`]: the vocabulary shared by the above.

pub mod health;
pub mod prewarm;
pub mod queue;
pub mod slot;
pub mod state;

pub use slot::{
    CreationDecision, MemoryReport, PoolAction, PoolCounts, Refusal, Removed, SandboxId, Slot,
    StartKind, WarmKey, WrongSlot,
};
pub use state::PoolState;
