//! wasmwhisk: Apache OpenWhisk's function-pulling invoker, rebuilt in Rust
//! with WebAssembly sandboxes in place of Docker containers.
//!
//! # The workspace
//! This crate is the application: the REST API ([`api`]), the command line
//! ([`cli`]) and the processes ([`process`]: standalone, and a cluster's
//! controller and invoker) that wire the crates below together. Each crate's
//! dependency list is the architecture (docs/architecture.md):
//!
//! | crate | re-exported here as | holds | may not use |
//! |---|---|---|---|
//! | `wasmwhisk-protocol` | [`protocol`] | OpenWhisk's wire types | anything but serde |
//! | `wasmwhisk-sandbox` | [`sandbox`], [`engine`], [`action`], [`runtimes`], [`memory`] | Wasmtime, the compile cache, the WIT world, the embedded runtimes | the pool, any adapter |
//! | `wasmwhisk-core` | [`pool`], [`controller`], [`entities`], [`config`], [`metrics`] | the pool, the controller, their ports | NATS, etcd, Docker, HTTP, SQLite |
//! | `wasmwhisk-store` | [`store`] | standalone's SQLite store | NATS, etcd, Docker, HTTP |
//! | `wasmwhisk-docker` | `docker` (feature `docker`) | the Docker fallback | NATS, etcd, SQLite |
//! | `wasmwhisk-cluster` | `cluster` (feature `cluster`) | NATS and etcd adapters | Docker, SQLite, HTTP |
//! | `wasmwhisk-bench` | — (`wasmwhisk bench`) | the benchmarks, their counting allocator | — |
//! | `wasmwhisk-testkit`, `wasmwhisk-test-guests` | — | test servers and guest components (dev only) | — |
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

// The crates below the application, under the module names the rest of
// this crate (and the integration tests) use.
#[cfg(feature = "cluster")]
pub use wasmwhisk_cluster as cluster;
pub use wasmwhisk_core::{config, controller, entities, metrics, pool, signal};
#[cfg(feature = "docker")]
pub use wasmwhisk_docker as docker;
pub use wasmwhisk_protocol as protocol;
pub use wasmwhisk_sandbox as sandbox;
pub use wasmwhisk_sandbox::{action, engine, memory, runtimes};
pub use wasmwhisk_store as store;

pub mod api;
pub mod cli;
pub mod process;

pub use action::{ActionKind, ActivationContext, InitArgs, SandboxLimits};
pub use engine::{Engine, EngineConfig, Prepared};
pub use sandbox::{ResponseStatus, RunReport, RunResponse, Sandbox};
