//! wasmwhisk's JavaScript runtime: QuickJS (through `rquickjs`) compiled to a
//! `wasm32-wasip2` component exporting the `runtime` world of `wit/action.wit`.
//!
//! It plays the part of OpenWhisk's `nodejs` runtime container:
//!
//! - `wizer-initialize` boots the engine (runtime, context, standard built-ins,
//!   `console`, `process`, timers) ahead of time; the host snapshots the
//!   instance right after, so every sandbox starts with a warm engine.
//! - `init` evaluates the action's source and finds its entry point
//!   (`/init`); `run` calls it with the activation's parameters and waits
//!   for the promise it may return (`/run`).
//!
//! Module map:
//! - [`engine`]: the engine's lifetime (lazy boot, the one instance-wide `Engine`);
//! - [`action`]: `init` and `run`;
//! - [`hooks`]: the Rust side of `prelude.js`, the JavaScript half of the runtime;
//! - [`stack`]: makes deep recursion a `RangeError` instead of a trap;
//! - [`random`]: `Math.random`, reseeded per instance;
//! - [`output`]: `console` lines on stdout/stderr.
//!
//! Every failure reachable from an action's code or input is an `Err(String)`
//! for the host, never a panic (a trap would only say "unreachable").

mod action;
mod engine;
mod hooks;
mod output;
mod random;
mod stack;

/// Bindings for the `runtime` world.
#[allow(clippy::too_many_arguments)] // generated lifting/lowering glue
mod bindings {
    wit_bindgen::generate!({
        world: "runtime",
        path: "../../wit",
    });
}

use bindings::{Activation, Guest, InitRequest};

/// The component's exports.
struct JsRuntime;

impl Guest for JsRuntime {
    fn wizer_initialize() {
        // Nothing can be reported from here: if booting fails, the lazy boot
        // in `init` fails the same way and reports it.
        let _ = engine::with_engine(|_| ());
    }

    fn init(request: InitRequest) -> Result<(), String> {
        let result = engine::with_engine(|engine| engine.init(&request)).and_then(|r| r);
        output::flush();
        result
    }

    fn run(params: String, activation: Activation) -> Result<String, String> {
        let result = engine::with_engine(|engine| engine.run(&params, &activation)).and_then(|r| r);
        output::flush();
        result
    }
}

bindings::export!(JsRuntime with_types_in bindings);
