//! `wasmwhisk bench api --quick` end to end: the bench starts the real
//! `wasmwhisk standalone` (a few times), deploys, invokes under every row
//! and stops it with SIGTERM. Only that it works is checked — the numbers of
//! a debug build on a shared machine mean nothing (performance is
//! shown by the bench, not asserted by tests).
//!
//! `wasmwhisk-bench` starts the `wasmwhisk` beside it: run these with the
//! whole workspace (`cargo test`, `make test`), or build `wasmwhisk` first
//! (`cargo build -p wasmwhisk`) when testing this crate alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_quick_api_bench_runs_end_to_end() {
    // Kept between runs: the bench's compile cache lives under it.
    let data_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-api");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmwhisk-bench"))
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["api", "--quick"])
        .output()
        .expect("running wasmwhisk bench api");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    for row in [
        "## REST API",
        "| start → listening line, warm compile cache |",
        "| first invoke after create, `wasm`",
        "| first invoke after create, `js`",
        "| warm blocking `result=true` invoke, Rust hello (reqwest) |",
        "| warm blocking `result=true` invoke, JS hello (raw HTTP/1.1) |",
        "| raw HTTP/1.1 | 8 |",
        "| after start |",
        "SIGTERM → exit (status 0)",
    ] {
        assert!(stdout.contains(row), "no {row:?} in\n{stdout}");
    }
}
