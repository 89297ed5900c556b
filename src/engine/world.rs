//! The host side of the `action` world (`wit/action.wit`) and the WASI grants.
//!
//! WASI is deny-by-default. The linker holds all of WASI 0.2 (Rust's standard
//! library imports the filesystem interfaces even for a hello world), but a
//! component is only accepted if every import is in [`GRANTED`]; the
//! filesystem has no preopened directory, so it reaches nothing. Sockets,
//! HTTP and anything else are refused when the action is deployed, with the
//! import named in the error.

wasmtime::component::bindgen!({
    path: "wit",
    world: "action",
});

/// Import prefixes granted to actions, with what they give.
pub const GRANTED: &[(&str, &str)] = &[
    ("wasi:cli/", "environment, exit, stdio (captured as logs)"),
    ("wasi:clocks/", "wall clock, monotonic clock"),
    ("wasi:random/", "random numbers"),
    ("wasi:io/", "streams and polling"),
    ("wasi:filesystem/", "types only: no directory is preopened"),
    (
        "wasmwhisk:action/types@",
        "the world's own types (no functions)",
    ),
];

/// The world's type-only interface, which components import for its types.
pub const TYPES_INTERFACE: &str = "wasmwhisk:action/types@0.1.0";

/// Why a component cannot be an action.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// It imports something wasmwhisk does not provide.
    #[error(
        "the component imports `{import}`, which wasmwhisk does not grant to actions \
         (granted: wasi:cli, wasi:clocks, wasi:random, wasi:io, wasi:filesystem without directories)"
    )]
    ImportNotGranted {
        /// The import's name, e.g. `wasi:sockets/tcp@0.2.3`.
        import: String,
    },
    /// It does not export `init` and `run` with the world's types.
    #[error(
        "the component does not implement the wasmwhisk:action world (exports `init` and `run`): {0}"
    )]
    NotAnAction(String),
}

/// Checks every import of `component` against [`GRANTED`].
pub fn check_imports(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<(), WorldError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if !GRANTED.iter().any(|(prefix, _)| name.starts_with(prefix)) {
            return Err(WorldError::ImportNotGranted {
                import: name.to_string(),
            });
        }
    }
    Ok(())
}
