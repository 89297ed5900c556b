//! The `wasmwhisk` command line: subcommands and their shared flags.

pub mod params;
pub mod run;
pub mod wsk;

// The data directory's layout is the configuration's (`config::layout`).
pub use crate::config::layout::{cache_dir, data_dir, files};
