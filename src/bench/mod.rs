//! `wasmwhisk bench …`: benchmarks whose results go into docs/BENCHMARKS.md.

pub mod api;
mod api_client;
mod api_raw;
mod api_report;
mod api_rows;
mod api_server;
pub mod cluster;
mod cluster_nats;
mod cluster_report;
mod cluster_rows;
mod cluster_servers;
mod cluster_watch;
pub mod docker;
pub mod pool;
mod pool_fixture;
mod pool_live;
pub mod sandbox;
pub mod stats;
