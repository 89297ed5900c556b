//! `wasmwhisk run`: the real binary on the examples.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::path::PathBuf;
use std::process::Command;

fn wasmwhisk(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmwhisk"));
    cmd.arg("--data-dir").arg(data_dir);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn data_dir() -> PathBuf {
    // Shared with the other test binaries' cache so the JS runtime is prepared once.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasmwhisk-cli-data")
}

#[test]
fn runs_the_rust_and_js_examples() {
    let rust = wasmwhisk_test_guests::path("hello_rust");
    let out = wasmwhisk(&data_dir())
        .arg("run")
        .arg(&rust)
        .args(["-p", "name", "World"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(result["greeting"], "Hello, World!");

    let out = wasmwhisk(&data_dir())
        .args(["run", "examples/invoice.js", "-P"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/invoice.params.json"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(result["customer"], "Ada");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdout: invoice for"));
}

#[test]
fn errors_exit_non_zero_with_openwhisks_message() {
    let out = wasmwhisk(&data_dir())
        .args(["run", "examples/invoice.js"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "application error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("an order needs at least one item"));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("params.json");
    std::fs::write(&bad, "[1, 2]").expect("write");
    let out = wasmwhisk(&data_dir())
        .args(["run", "examples/hello.js", "-P"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("parameters must be a JSON object, got an array"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let js = dir.path().join("broken.js");
    std::fs::write(&js, "function main( {").expect("write");
    let out = wasmwhisk(&data_dir())
        .arg("run")
        .arg(&js)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "developer error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SyntaxError"));

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, "not wasm").expect("write");
    let out = wasmwhisk(&data_dir())
        .arg("run")
        .arg(&garbage)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a WebAssembly component"));
}
