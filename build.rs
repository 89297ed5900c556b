//! Builds the guest components from source.
//!
//! The JS runtime (embedded in the binary), the Rust examples and the test
//! guests are `wasm32-wasip2` crates of this workspace. A nested `cargo build`
//! compiles them in release mode into their own target directory
//! (`<target>/guests`), so it never contends for the outer build's lock, and
//! the directory is exported to the crate as `WASMWHISK_GUESTS`.
//!
//! Nothing is downloaded: QuickJS's C code is compiled by Debian's clang-19
//! against wasi-libc headers (see `.cargo/config.toml`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest packages, all built in one cargo invocation.
const GUEST_PACKAGES: &[&str] = &[
    "wasmwhisk-js-runtime",
    "hello-rust",
    "stats-rust",
    "misbehave",
    "sockets",
    "not-an-action",
    "bigmem",
];

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

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for dir in ["wit", "runtimes", "examples", "tests/guests"] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(dir).display()
        );
    }
    println!("cargo:rerun-if-env-changed=WASMWHISK_GUEST_TARGET_DIR");

    let target_dir = guest_target_dir(&manifest_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&manifest_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in GUEST_PACKAGES {
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
    let status = command
        .status()
        .expect("failed to run cargo to build the guest components");
    assert!(
        status.success(),
        "building the wasm32-wasip2 guest components failed (is the target installed? \
         `rustup target add wasm32-wasip2`; is clang-19 with wasi-libc installed? `make setup`)"
    );

    let guests = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=WASMWHISK_GUESTS={}", guests.display());
}

/// `$WASMWHISK_GUEST_TARGET_DIR`, else `<cargo target dir>/guests`.
fn guest_target_dir(manifest_dir: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("WASMWHISK_GUEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"));
    target.join("guests")
}
