//! Language runtime components, built from `runtimes/` by `build.rs` and
//! embedded in the binary, so a `wasmwhisk` executable needs no other file.

use crate::action::ActionKind;

/// QuickJS compiled to a component implementing the `runtime` world.
pub const JS_RUNTIME: &[u8] = include_bytes!(concat!(
    env!("WASMWHISK_GUESTS"),
    "/wasmwhisk_js_runtime.wasm"
));

/// The runtime component of `kind`, if it is a runtime kind.
pub fn component(kind: ActionKind) -> Option<&'static [u8]> {
    match kind {
        ActionKind::Js => Some(JS_RUNTIME),
        ActionKind::Wasm => None,
    }
}
