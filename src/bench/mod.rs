//! `wasmwhisk bench …`: benchmarks whose results go into docs/BENCHMARKS.md.

pub mod pool;
mod pool_fixture;
mod pool_live;
pub mod sandbox;
pub mod stats;
