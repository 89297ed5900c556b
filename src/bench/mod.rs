//! `wasmwhisk bench …`: benchmarks whose results go into docs/BENCHMARKS.md.

pub mod sandbox;
pub mod stats;
