//! `wasmwhisk bench docker --quick` against the real Docker engine: every
//! row is measured, the plot is written, and no container of the run is
//! left behind. Only that it works is checked — the numbers of a debug build
//! on a shared machine mean nothing (performance is shown by the
//! bench, not asserted by tests).
//!
//! Run from the repository's root, so the bench builds the action-proxy
//! image (kept: it is the runtime image) and hello-rust's native executable
//! if they are missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::path::PathBuf;
use std::process::Command;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("running the docker CLI");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_quick_docker_bench_runs_end_to_end() {
    // Kept between runs: the bench's compile cache lives under it.
    let data_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-docker");
    let plot_dir = tempfile::tempdir().expect("a temporary directory");
    let plot = plot_dir.path().join("plot.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmwhisk-bench"))
        // The repository root: the bench builds the native action there.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["docker", "--quick", "--plot"])
        .arg(&plot)
        .output()
        .expect("running wasmwhisk bench docker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Whatever happened, no container of this run may be left.
    let owner = stderr
        .split("wasmwhisk.owner=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no owner label in the bench's stderr:\n{stderr}"));
    assert!(owner.starts_with("bench-"), "{owner}");
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=wasmwhisk.owner={owner}"),
    ]);
    assert!(left.trim().is_empty(), "containers left behind: {left}");

    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    for row in [
        "## Wasm vs Docker cold start",
        "| cold | Docker | create + start + `/init` + `/run` |",
        "| cold | Wasm | `wasm` from the disk compile cache",
        "| prewarmed | Docker |",
        "| stem cell | Wasm |",
        "| warm | Docker | `/run` |",
        "| warm after pause | Docker | unpause + `/run` |",
        "| warm | Wasm | run |",
        "| **cold: Docker cold ÷ Wasm cold** |",
        "| Wasm: warm Rust hello sandboxes",
        "| Docker: idle hello-rust containers",
        "storage driver",
    ] {
        assert!(stdout.contains(row), "no {row:?} in\n{stdout}");
    }
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("Docker cold") && svg.contains("Wasm warm"));
}

#[test]
fn without_a_docker_daemon_the_bench_says_what_to_do() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmwhisk-bench"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["docker", "--quick", "--plot"])
        .arg(dir.path().join("plot.svg"))
        .output()
        .expect("running wasmwhisk bench docker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("needs a running Docker daemon") && stderr.contains("DOCKER_HOST"),
        "{stderr}"
    );
    assert!(!dir.path().join("plot.svg").exists());
}

#[test]
fn outside_the_repository_it_names_the_build_commands() {
    // The build scripts are looked for in the current directory; from
    // elsewhere the bench builds nothing and says what to run.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmwhisk-bench"))
        .current_dir(dir.path())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["docker", "--quick"])
        .output()
        .expect("running wasmwhisk bench docker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("runtimes/docker/build")
            && (stderr.contains("--native FILE") || stderr.contains("make docker-image")),
        "{stderr}"
    );
    assert!(!dir.path().join("docs").exists(), "no plot may be written");
}
