//! The invoker's core: OpenWhisk's function-pulling container pool, the
//! controller's queues and scheduling, the ports they reach the world
//! through, the configuration and the metrics.
//!
//! Nothing here talks to a network, a database or Docker: the pool and the
//! controller see only their ports ([`pool::ports`], [`controller`]'s
//! `Queues`, `Dispatch` and `Journal`, [`entities::EntityStore`],
//! [`pool::container::ContainerHost`]). The adapters live in their own
//! crates — `wasmwhisk-store` (SQLite), `wasmwhisk-docker`,
//! `wasmwhisk-cluster` (NATS, etcd) — and this crate's dependency list
//! leaves them out, so the compiler keeps it that way.

pub mod config;
pub mod controller;
pub mod entities;
pub mod metrics;
pub mod pool;
pub mod signal;
pub mod startup;
pub mod sync;
