//! Docker for the integration tests: the runtime image and test action
//! images built from source by the project's own scripts, and the
//! containers of an owner label, read from the real engine with the
//! `docker` CLI.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a script of `runtimes/docker` with `args`; its stdout.
fn script(name: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(root().join("runtimes/docker").join(name))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds `wasmwhisk/action-proxy:latest` once per test process.
pub fn proxy_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        script("build.sh", &[]);
    });
    "wasmwhisk/action-proxy:latest"
}

/// A blackbox test image of the native build of `package`, tagged `tag`,
/// and the path of the native executable. Built once per test process and
/// package; the caller removes the image ([`remove_image`]).
pub fn action_image(package: &str, tag: &str) -> PathBuf {
    // Two `docker build`s of the same context at once would leave an
    // untagged image behind: one at a time per test process.
    static BUILDS: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    proxy_image();
    let out = script("build-action.sh", &[package, tag]);
    let exe = out
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('/') && !l.contains(' '))
        .unwrap_or_else(|| panic!("build-action.sh printed no executable path:\n{out}"));
    PathBuf::from(exe)
}

/// `docker` with `args`; its trimmed stdout (panics on failure).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `(id, state)` of every container labelled `wasmwhisk.owner=owner`.
pub fn containers(owner: &str) -> Vec<(String, String)> {
    let filter = format!("label=wasmwhisk.owner={owner}");
    docker(&[
        "ps",
        "-a",
        "--filter",
        &filter,
        "--format",
        "{{.ID}} {{.State}}",
    ])
    .lines()
    .filter_map(|l| {
        let (id, state) = l.split_once(' ')?;
        Some((id.to_string(), state.to_string()))
    })
    .collect()
}

/// Waits up to `secs` seconds until `check` holds for the containers of
/// `owner`; the last list seen.
pub fn wait_containers(
    owner: &str,
    secs: u64,
    check: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let list = containers(owner);
        if check(&list) || std::time::Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Removes every container of `owner` (a test's own clean-up).
pub fn remove_containers(owner: &str) {
    for (id, _) in containers(owner) {
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    }
}

/// Removes image `tag`.
pub fn remove_image(tag: &str) {
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
}

/// Removes the containers of an owner and the images given when dropped,
/// even when the test fails.
pub struct Cleanup {
    /// The owner label.
    pub owner: String,
    /// Images to remove.
    pub images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_containers(&self.owner);
        for image in &self.images {
            remove_image(image);
        }
    }
}
