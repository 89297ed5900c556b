//! Builds the language runtime components this crate embeds (the JS runtime,
//! from `runtimes/js`) and exports their directory as `WASMWHISK_RUNTIMES`.
//! Examples and test guests are built by the `wasmwhisk-test-guests` crate,
//! for tests and benches only.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = wasmwhisk_guest_build::workspace_of(&manifest_dir);
    let dir = wasmwhisk_guest_build::build(
        &workspace,
        &["wasmwhisk-js-runtime"],
        &["wit", "runtimes/js"],
    );
    println!("cargo:rustc-env=WASMWHISK_RUNTIMES={}", dir.display());
}
