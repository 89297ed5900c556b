//! Builds the Rust examples and the test guests (`examples/`,
//! `tests/guests/`) and exports their directory as `WASMWHISK_GUESTS`.
//!
//! `WASMWHISK_SKIP_GUESTS=1` skips the build (for a quick `cargo check` or
//! `clippy`); the directory is still exported, with an empty file for each
//! guest not built yet, which a test or bench then reports as not a
//! component.

use std::path::PathBuf;

/// The guest packages, all built in one cargo invocation.
const PACKAGES: &[&str] = &[
    "hello-rust",
    "stats-rust",
    "misbehave",
    "sockets",
    "not-an-action",
    "bigmem",
];

fn main() {
    println!("cargo:rerun-if-env-changed=WASMWHISK_SKIP_GUESTS");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = wasmwhisk_guest_build::workspace_of(&manifest_dir);
    let dir = if std::env::var_os("WASMWHISK_SKIP_GUESTS").is_some_and(|v| v == "1") {
        placeholders(&wasmwhisk_guest_build::output_dir(&workspace))
    } else {
        wasmwhisk_guest_build::build(
            &workspace,
            PACKAGES,
            &["wit", "runtimes/rust", "examples", "tests/guests"],
        )
    };
    println!("cargo:rustc-env=WASMWHISK_GUESTS={}", dir.display());
}

/// `dir`, with an empty `<name>.wasm` for each guest missing from it.
fn placeholders(dir: &std::path::Path) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    for package in PACKAGES {
        let file = dir.join(format!("{}.wasm", package.replace('-', "_")));
        if !file.exists() {
            let _ = std::fs::write(&file, b"");
        }
    }
    dir.to_path_buf()
}
