//! The on-disk compile cache: reused across engines (a restart never
//! recompiles), and a truncated, corrupted or unchecked artifact is detected
//! and rebuilt — never loaded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use serde_json::json;
use wasmwhisk::engine::{CacheOutcome, Engine, EngineConfig};

fn fresh_engine(dir: &Path) -> Arc<Engine> {
    Arc::new(Engine::new(EngineConfig::small(), dir).expect("engine"))
}

fn artifact_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut cwasm = None;
    let mut sum = None;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("cwasm") => cwasm = Some(path),
            Some("sum") => sum = Some(path),
            _ => {}
        }
    }
    (cwasm.expect("a .cwasm"), sum.expect("a .sum"))
}

fn hello_works(engine: &Arc<Engine>) -> CacheOutcome {
    let (prepared, outcome) = engine.prepare_wasm(&guest("hello_rust")).expect("prepare");
    let mut sandbox = engine.instantiate(&prepared, 128).expect("instantiate");
    let lim = limits(5_000);
    sandbox
        .init(wasmwhisk::InitArgs::default(), &lim)
        .expect("init");
    let report = sandbox.run(&context(), &object(json!({"name": "cache"})), &lim);
    assert_eq!(report.response.result, json!({"greeting": "Hello, cache!"}));
    outcome
}

#[test]
fn a_restart_loads_from_disk_instead_of_compiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        hello_works(&fresh_engine(dir.path())),
        CacheOutcome::Compiled
    );
    assert_eq!(hello_works(&fresh_engine(dir.path())), CacheOutcome::Hit);
}

#[test]
fn damaged_artifacts_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    hello_works(&fresh_engine(dir.path()));
    let (cwasm, sum) = artifact_files(dir.path());
    let good = std::fs::read(&cwasm).expect("read");

    // Truncated.
    std::fs::write(&cwasm, &good[..good.len() / 3]).expect("truncate");
    assert_eq!(
        hello_works(&fresh_engine(dir.path())),
        CacheOutcome::Compiled
    );

    // One flipped byte in the middle (code or data): same length, wrong digest.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    std::fs::write(&cwasm, &flipped).expect("corrupt");
    assert_eq!(
        hello_works(&fresh_engine(dir.path())),
        CacheOutcome::Compiled
    );

    // No checksum beside the artifact.
    std::fs::remove_file(&sum).expect("rm sum");
    assert_eq!(
        hello_works(&fresh_engine(dir.path())),
        CacheOutcome::Compiled
    );

    // Garbage in both.
    std::fs::write(&cwasm, b"garbage").expect("garbage");
    std::fs::write(&sum, b"7 deadbeef").expect("garbage sum");
    assert_eq!(
        hello_works(&fresh_engine(dir.path())),
        CacheOutcome::Compiled
    );
    assert_eq!(hello_works(&fresh_engine(dir.path())), CacheOutcome::Hit);
}

#[test]
fn a_different_engine_configuration_uses_different_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = fresh_engine(dir.path());
    let other = Arc::new(
        Engine::new(
            EngineConfig {
                memory_reservation: 1 << 30,
                ..EngineConfig::small()
            },
            dir.path(),
        )
        .expect("engine"),
    );
    let code = guest("hello_rust");
    assert_ne!(
        a.cache().key("wasm-action", &code),
        other.cache().key("wasm-action", &code)
    );
}
