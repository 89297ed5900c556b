//! The example and test guest components, built from source by this crate's
//! build script: a dev-dependency of whatever tests or benches them.

use std::path::PathBuf;

/// The directory holding `<crate_name>.wasm` of every guest.
pub const DIR: &str = env!("WASMWHISK_GUESTS");

/// The path of the guest `name` (its crate name: `hello_rust`, `misbehave`).
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(DIR).join(format!("{name}.wasm"))
}

/// The Rust hello example (`examples/hello-rust`), embedded for the sandbox
/// bench.
pub const HELLO_RUST: &[u8] = include_bytes!(concat!(env!("WASMWHISK_GUESTS"), "/hello_rust.wasm"));
