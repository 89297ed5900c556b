//! Shared by the integration tests: one engine per test process, the guest
//! components built from source by `wasmwhisk-test-guests`, and small helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};
use wasmwhisk::action::{ActionKind, ActivationContext, InitArgs, SandboxLimits};
use wasmwhisk::engine::{Engine, EngineConfig, Prepared};
use wasmwhisk::sandbox::{InitFailure, RunReport, Sandbox};

/// A guest component built by `wasmwhisk-test-guests` (`<crate_name>.wasm`).
pub fn guest(name: &str) -> Vec<u8> {
    let path = wasmwhisk_test_guests::path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// An example file under `examples/`.
pub fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The compile cache shared by the tests of one `cargo test` run and kept
/// between runs (the JS runtime's pre-initialization is compiled once).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasmwhisk-test-cache")
}

/// The process's engine.
pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let config = EngineConfig {
                max_sandboxes: 1024,
                ..EngineConfig::default()
            };
            Arc::new(Engine::new(config, &cache_dir()).expect("engine"))
        })
        .clone()
}

/// Limits with a short timeout for tests.
pub fn limits(timeout_ms: u64) -> SandboxLimits {
    SandboxLimits {
        timeout: Duration::from_millis(timeout_ms),
        ..SandboxLimits::default()
    }
}

/// An activation context.
pub fn context() -> ActivationContext {
    ActivationContext {
        activation_id: wasmwhisk::action::new_activation_id(),
        namespace: "guest".into(),
        action_name: "/guest/test".into(),
        action_version: "0.0.1".into(),
        transaction_id: "tid".into(),
        api_key: None,
    }
}

/// A JSON object from a `json!` value.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Prepares a `wasm` guest.
pub fn prepare(name: &str) -> Prepared {
    let engine = engine();
    engine.prepare_wasm(&guest(name)).expect("prepare").0
}

/// Prepares the JS runtime.
pub fn js_runtime() -> Prepared {
    engine()
        .prepare_runtime(ActionKind::Js)
        .expect("js runtime")
}

/// Instantiates and initializes a sandbox.
pub fn start(
    prepared: &Prepared,
    code: &str,
    env: Vec<(String, String)>,
    limits: &SandboxLimits,
) -> Result<Sandbox, InitFailure> {
    let engine = engine();
    let mut sandbox = engine
        .instantiate(prepared, limits.memory_mb)
        .expect("instantiate");
    let args = InitArgs {
        name: "test".into(),
        main: "main".into(),
        code: code.as_bytes().to_vec(),
        binary: false,
        env,
    };
    sandbox.init(args, limits)?;
    Ok(sandbox)
}

/// Instantiates, initializes (expecting success) and runs once.
pub fn run_once(
    prepared: &Prepared,
    code: &str,
    params: Value,
    limits: &SandboxLimits,
) -> RunReport {
    let mut sandbox = start(prepared, code, Vec::new(), limits)
        .unwrap_or_else(|f| panic!("init failed: {:?}", f.response));
    sandbox.run(&context(), &object(params), limits)
}

/// The text part of a log line (after the 30-column time and the space).
pub fn log_text(line: &str) -> &str {
    line.get(31..).unwrap_or(line)
}
