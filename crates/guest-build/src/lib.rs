//! Builds guest components from source, for the build scripts of the crates
//! that need them: the sandbox crate (the runtimes it embeds) and the test
//! guests crate (examples and test guests, for tests and benches only).
//!
//! The guests are `wasm32-wasip2` crates of this workspace. A nested `cargo
//! build` compiles them in release mode into their own target directory
//! (`<target>/guests`), so it never contends for the outer build's lock.
//! Nothing is downloaded: QuickJS's C code is compiled by Debian's clang-19
//! against wasi-libc headers (see `.cargo/config.toml`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variables of the outer cargo that must not leak into the
/// nested build (they describe the host build, or wrap rustc in clippy).
const STRIPPED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CLIPPY_ARGS",
    "CLIPPY_CONF_DIR",
    "CARGO_PRIMARY_PACKAGE",
];

/// Builds `packages` (guest crates of the workspace at `workspace`) and
/// returns the directory holding their `<crate_name>.wasm`. `inputs` are
/// the directories (relative to `workspace`) whose changes rebuild them.
///
/// Build scripts have no caller to report to: a failure is a panic with
/// what to install.
pub fn build(workspace: &Path, packages: &[&str], inputs: &[&str]) -> PathBuf {
    for dir in inputs {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=WASMWHISK_GUEST_TARGET_DIR");

    let target_dir = guest_target_dir(workspace);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    for var in STRIPPED_ENV {
        command.env_remove(var);
    }
    // Guests ship without debug info: a Rust hello is ~100 KB instead of 3 MB,
    // which is what hashing, compiling and loading it costs.
    command
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    #[allow(clippy::expect_used)]
    let status = command
        .status()
        .expect("failed to run cargo to build the guest components");
    #[allow(clippy::panic)]
    if !status.success() {
        panic!(
            "building the wasm32-wasip2 guest components {packages:?} failed (is the target \
             installed? `rustup target add wasm32-wasip2`; is clang-19 with wasi-libc installed? \
             `make setup`)"
        );
    }
    output_dir(workspace)
}

/// Where [`build`] leaves the components (whether or not it ran).
pub fn output_dir(workspace: &Path) -> PathBuf {
    guest_target_dir(workspace)
        .join("wasm32-wasip2")
        .join("release")
}

/// The workspace root, two levels above a crate under `crates/`.
pub fn workspace_of(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// `$WASMWHISK_GUEST_TARGET_DIR`, else `<cargo target dir>/guests`.
fn guest_target_dir(workspace: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("WASMWHISK_GUEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("guests")
}
