//! wasmwhisk: Apache OpenWhisk's function-pulling invoker, rebuilt in Rust
//! with WebAssembly sandboxes in place of Docker containers.
//!
//! # Map of the crate
//! - [`action`]: what an action is to a sandbox — kind, limits, init args,
//!   activation context.
//! - [`engine`]: the one Wasmtime engine (pooling allocator, epoch ticker),
//!   the on-disk compile cache, the WIT world and WASI grants, and the
//!   pre-initialization of runtime components.
//! - [`sandbox`]: one instance — instantiate, `init`, `run`, retire — and
//!   how its outcomes are classified and its logs captured.
//! - [`runtimes`]: the language runtime components embedded in the binary,
//!   and which backend (Wasm or Docker) runs a kind.
//! - [`pool`]: OpenWhisk's function-pulling container pool, with sandboxes
//!   (Wasm instances or Docker containers) as containers.
//! - [`docker`]: the Docker fallback — containers driven with OpenWhisk's
//!   `/init`/`/run` protocol.
//! - [`controller`], [`store`], [`api`], [`standalone`]: queues and
//!   scheduling, the embedded database, the REST API, standalone mode.
//! - [`cluster`]: the NATS and etcd implementations of the pool's ports
//!   (cluster mode, in progress).
//! - [`memory`]: giving freed memory back to the operating system.
//! - [`cli`] and [`bench`]: the `wasmwhisk` command's subcommands.
//!
//! # Glossary (OpenWhisk's words, used the same way everywhere)
//! - **action**: a function deployed with its code, kind and limits.
//! - **activation**: one invocation of an action, with its id, result and logs.
//! - **sandbox**: one Wasm instance — wasmwhisk's *container*.
//! - **stem cell** / **prewarm**: a runtime component already instantiated
//!   but not yet given code.
//! - **specialize**: give a stem cell its action's code (`init`).
//! - **cold start**: make a sandbox for an action that has none warm.
//! - **warm**: a sandbox already initialized for an action, reused.
//! - **retire**: drop a sandbox after a developer or system error.
//! - **application error**: the action returned `{"error": …}`; the sandbox
//!   stays warm. **developer error**: the action failed (trap, timeout,
//!   memory, bad init or result). **whisk error**: the system failed.

pub mod action;
pub mod api;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod docker;
pub mod engine;
pub mod memory;
pub mod metrics;
pub mod pool;
pub mod protocol;
pub mod runtimes;
pub mod sandbox;
pub mod standalone;
pub mod store;
mod sync;

pub use action::{ActionKind, ActionLimits, ActivationContext, InitArgs};
pub use engine::{Engine, EngineConfig, Prepared};
pub use sandbox::{ActivationResponse, ResponseStatus, RunReport, Sandbox};
