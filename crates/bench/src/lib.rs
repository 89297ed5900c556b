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

/// The `wasmwhisk` binary the benches start servers with: `$WASMWHISK_BIN`
/// (set by `wasmwhisk bench`), else `wasmwhisk` beside this binary.
pub fn wasmwhisk_bin() -> anyhow::Result<std::path::PathBuf> {
    if let Some(bin) = std::env::var_os("WASMWHISK_BIN") {
        return Ok(bin.into());
    }
    let me = std::env::current_exe()?;
    let bin = me.with_file_name(format!("wasmwhisk{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        bin.exists(),
        "no wasmwhisk binary beside {} (build it: `cargo build -p wasmwhisk`), and WASMWHISK_BIN is not set",
        me.display()
    );
    Ok(bin)
}
