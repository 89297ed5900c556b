//! Link settings for the component (they apply to wasm32 builds only).
//!
//! - `--strip-debug`: the workspace's release profile keeps line tables,
//!   which would make this component 7.5 MB instead of ~1.3 MB (QuickJS is
//!   large); the `name` section stays, so traps still show function names.
//! - `-zstack-size`: the shadow stack, in linear memory, that QuickJS's
//!   recursion runs on. `src/stack.rs` lets JavaScript use all of it but a
//!   reserve, then throws `RangeError`.

/// Shadow stack size in bytes (rustc's default for wasm is 1 MiB).
const STACK_SIZE: usize = 1024 * 1024;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=--strip-debug");
        println!("cargo:rustc-link-arg=-zstack-size={STACK_SIZE}");
    }
}
