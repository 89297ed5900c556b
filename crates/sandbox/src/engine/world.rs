//! The host side of the `action` world (`wit/action.wit`) and the WASI grants.
//!
//! WASI is deny-by-default. The linker holds all of WASI 0.2 (Rust's standard
//! library imports the filesystem interfaces even for a hello world), but a
//! component is only accepted if every import is in [`GRANTED`]; the
//! filesystem has no preopened directory, so it reaches nothing. Sockets,
//! HTTP and anything else are refused when the action is deployed, with the
//! import named in the error.
//!
//! Deadlines: epoch interruption only stops Wasm code, not a host call. The
//! one host call that can block is a clock poll (a sleep; `setTimeout`), so
//! [`bound_sleeps`] replaces the monotonic clock's `subscribe-*` functions
//! with ones that never wait past the running activation's deadline; the
//! next epoch check after waking then stops it.

#![allow(
    missing_docs,
    reason = "the bindings are generated from wit/action.wit"
)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "action",
});

use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::Linker;
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;

use crate::state::SandboxState;

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

/// The monotonic-clock interface as wasmtime-wasi 48 links it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// How long past the deadline a clamped sleep may end (the epoch check
/// right after it reports the timeout).
const SLEEP_SLACK: Duration = Duration::from_millis(1);

/// Nanoseconds to sleep: `requested`, but never past `deadline` (+ slack).
fn clamp_sleep(requested_nanos: u64, deadline: Option<Instant>) -> u64 {
    match deadline {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now()) + SLEEP_SLACK;
            requested_nanos.min(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
        }
        None => requested_nanos,
    }
}

/// Replaces the monotonic clock's `subscribe-duration` and `subscribe-instant`
/// in `linker` (which must already hold WASI) with deadline-bounded ones.
pub fn bound_sleeps(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, SandboxState>, (nanos,): (u64,)| {
            let nanos = clamp_sleep(nanos, store.data().deadline);
            store
                .data_mut()
                .clocks()
                .subscribe_duration(nanos)
                .map(|p| (p,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, SandboxState>, (when,): (u64,)| {
            let deadline = store.data().deadline;
            let mut clocks = store.data_mut().clocks();
            let nanos = when.saturating_sub(clocks.now()?);
            clocks
                .subscribe_duration(clamp_sleep(nanos, deadline))
                .map(|p| (p,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_end_at_the_deadline() {
        let soon = Instant::now() + Duration::from_millis(100);
        let clamped = clamp_sleep(3_600_000_000_000, Some(soon));
        assert!(clamped <= 101_000_000, "{clamped}");
        assert!(clamped > 50_000_000, "{clamped}");
        assert_eq!(clamp_sleep(5, Some(soon)), 5, "a short sleep is untouched");
        assert_eq!(clamp_sleep(7, None), 7);
        let past = Instant::now() - Duration::from_millis(5);
        assert!(clamp_sleep(1_000_000_000, Some(past)) <= 1_000_000);
    }
}
