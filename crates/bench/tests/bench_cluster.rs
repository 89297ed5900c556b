//! `wasmwhisk bench cluster --quick` end to end: the bench starts its own
//! nats-server and etcd, a controller, two invokers and a standalone
//! server, measures every row (a 2 s lease for the dead-invoker row), and
//! stops them all. Checked: the rows are there, and no process the bench
//! started outlives it — after a normal end and after Ctrl-C (SIGINT)
//! mid-run. Only that it works: the numbers of a debug build on a shared
//! machine mean nothing (performance is shown by the bench, docs/BENCHMARKS.md).
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

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The bench's command, with its compile cache kept between runs.
fn bench() -> Command {
    let data_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-cluster");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmwhisk-bench"));
    command
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["cluster", "--quick"]);
    command
}

/// The directory of the servers' data, from the bench's stderr.
fn root_of(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("servers' data: "))
        .unwrap_or_else(|| panic!("no \"servers' data\" line in\n{stderr}"));
    PathBuf::from(line.trim())
}

/// The processes whose command line names `root` (every process the bench
/// starts has its data there).
fn processes_under(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&root) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Waits up to 5 s for no process to name `root` (a killed process is
/// gone once reaped by its parent, or by init for an orphan).
fn assert_none_left(root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_under(root);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes outlived the bench:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_quick_cluster_bench_runs_end_to_end_and_leaves_nothing_behind() {
    let out = bench().output().expect("running wasmwhisk bench cluster");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    for row in [
        "## Cluster",
        "| invoker start → `up` in etcd",
        "| warm blocking `result=true` invoke, Rust hello, cluster: controller → NATS → invoker → controller (reqwest) |",
        "| the same, standalone, interleaved (raw HTTP/1.1) |",
        "| warm invoke, cluster ÷ standalone |",
        "| cluster | raw HTTP/1.1 | 8 |",
        "| standalone | raw HTTP/1.1 | 8 |",
        "| nats-server |",
        "| etcd |",
        "| answered |",
        "| 200, greeting |",
        "no longer chosen",
    ] {
        assert!(stdout.contains(row), "no {row:?} in\n{stdout}\n{stderr}");
    }
    let root = root_of(&stderr);
    assert_none_left(&root);
    assert!(!root.exists(), "{} was not removed", root.display());
}

#[test]
fn ctrl_c_kills_every_server_of_the_bench() {
    let mut child = bench()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running wasmwhisk bench cluster");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let mut root = None;
    // Interrupt once the cluster and standalone run and invokers start.
    for line in lines.by_ref() {
        if let Some(dir) = line.strip_prefix("servers' data: ") {
            root = Some(PathBuf::from(dir.trim()));
        }
        if line.starts_with("invoker starts") {
            break;
        }
    }
    let root = root.expect("the bench named its data directory");
    assert!(
        !processes_under(&root).is_empty(),
        "the bench runs its servers"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let rest: Vec<String> = lines.collect();
    let status = child.wait().expect("the bench exits");
    assert_eq!(status.code(), Some(130), "{}", rest.join("\n"));
    assert_none_left(&root);
    assert!(!root.exists(), "{} was not removed", root.display());
}
