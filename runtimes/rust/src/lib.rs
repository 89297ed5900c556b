//! Write a wasmwhisk action in Rust.
//!
//! An action is a function from the parameters (a JSON object) to a result
//! (a JSON object or array), exactly as OpenWhisk's `main(params)`:
//!
//! ```ignore
//! use wasmwhisk_action::{json, Value};
//!
//! fn main(params: Value) -> Value {
//!     let name = params["name"].as_str().unwrap_or("stranger");
//!     json!({ "greeting": format!("Hello, {name}!") })
//! }
//!
//! wasmwhisk_action::action!(main);
//! ```
//!
//! Build it for `wasm32-wasip2` as a `cdylib` and deploy the `.wasm` with
//! kind `wasm`. The macro implements the WIT world `wasmwhisk:action/action`
//! (see `wit/action.wit`): it keeps the environment OpenWhisk gives an action
//! (`__OW_ACTIVATION_ID`, `__OW_NAMESPACE`, ... while an activation runs, and
//! the init-time variables) and serializes the result.
//!
//! A function may also return `Result<Value, E>`: `Err(e)` becomes the
//! application error `{"error": "<e>"}`. A panic traps the instance: the host
//! reports a developer error and retires the sandbox.
//!
//! # The same source as a native executable (Docker)
//!
//! On a non-wasm target the macro emits a native entry point instead, in
//! OpenWhisk's `native` convention: the params JSON is argv\[1\] (`{}` when
//! absent), the result JSON is printed as the last stdout line, exit status
//! 0. The `__OW_*` variables are already in the environment: the action proxy
//! (`runtimes/docker`) sets them. A panic exits with status 101 and no
//! result, which the proxy reports as a developer error.
//!
//! Because the action function is itself called `main`, a crate cannot have
//! an ordinary `fn main()`; the macro exports the C `main` symbol instead.
//! The native executable is a binary target whose root is a three-line
//! `src/main.rs` that takes `lib.rs` in as a module; `lib.rs` stays as it is:
//!
//! ```toml
//! # Cargo.toml: the binary is built only with `--features native`, so the
//! # wasm32-wasip2 build of the cdylib never sees it
//! [[bin]]
//! name = "my-action"
//! path = "src/main.rs"
//! required-features = ["native"]
//!
//! [features]
//! native = []
//! ```
//!
//! ```ignore
//! // src/main.rs
//! #![cfg_attr(not(test), no_main)] // a test harness brings its own main
//! #[path = "lib.rs"]
//! mod action;
//! ```
//!
//! Then `runtimes/docker/build-action.sh my-action my-image` builds the static
//! executable and a blackbox image (see `examples/hello-rust`).

pub use serde_json::{self, Value, json};

#[cfg(not(target_family = "wasm"))]
mod native;
#[cfg(not(target_family = "wasm"))]
#[doc(hidden)]
pub use native::__native_main;

#[cfg(target_family = "wasm")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        world: "action",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_action",
        default_bindings_module: "wasmwhisk_action::bindings",
    });
}

#[cfg(target_family = "wasm")]
pub use bindings::wasmwhisk::action::types::{Activation, InitRequest};

/// What an action function may return.
pub trait ActionResult {
    /// The result as OpenWhisk sees it: `Ok(json)` or an application error.
    fn into_value(self) -> Value;
}

impl ActionResult for Value {
    fn into_value(self) -> Value {
        self
    }
}

impl<E: std::fmt::Display> ActionResult for Result<Value, E> {
    fn into_value(self) -> Value {
        match self {
            Ok(value) => value,
            Err(error) => json!({ "error": error.to_string() }),
        }
    }
}

/// Sets the environment a sandbox's action sees.
#[cfg(target_family = "wasm")]
///
/// Safety of `set_var`: a wasm32-wasip2 component is single-threaded, so no
/// other thread can read the environment concurrently.
fn set_env(key: &str, value: &str) {
    unsafe { std::env::set_var(key, value) }
}

#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub fn __init(request: InitRequest) -> Result<(), String> {
    static INITIALIZED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if INITIALIZED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err("Cannot initialize the action more than once.".to_string());
    }
    for (key, value) in &request.env {
        set_env(key, value);
    }
    Ok(())
}

#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub fn __run<R: ActionResult>(
    params: String,
    activation: Activation,
    main: fn(Value) -> R,
) -> Result<String, String> {
    let params: Value = serde_json::from_str(&params)
        .map_err(|e| format!("The action's parameters are not valid JSON: {e}"))?;
    set_env("__OW_ACTIVATION_ID", &activation.activation_id);
    set_env("__OW_NAMESPACE", &activation.namespace);
    set_env("__OW_ACTION_NAME", &activation.action_name);
    set_env("__OW_ACTION_VERSION", &activation.action_version);
    set_env("__OW_TRANSACTION_ID", &activation.transaction_id);
    set_env("__OW_DEADLINE", &activation.deadline.to_string());
    match &activation.api_key {
        Some(key) => set_env("__OW_API_KEY", key),
        None => unsafe { std::env::remove_var("__OW_API_KEY") },
    }
    let result = main(params).into_value();
    serde_json::to_string(&result).map_err(|e| format!("The action's result is not JSON: {e}"))
}

/// Exports `main` (a `fn(Value) -> Value` or `fn(Value) -> Result<Value, E>`)
/// as this component's action.
#[cfg(target_family = "wasm")]
#[macro_export]
macro_rules! action {
    ($main:path) => {
        struct __WasmwhiskAction;

        impl $crate::bindings::Guest for __WasmwhiskAction {
            fn init(request: $crate::InitRequest) -> Result<(), String> {
                $crate::__init(request)
            }

            fn run(params: String, activation: $crate::Activation) -> Result<String, String> {
                $crate::__run(params, activation, $main)
            }
        }

        $crate::bindings::export_action!(__WasmwhiskAction with_types_in $crate::bindings);
    };
}

/// Makes `main` (a `fn(Value) -> Value` or `fn(Value) -> Result<Value, E>`)
/// this executable's entry point, in OpenWhisk's `native` convention (see the
/// crate docs): it exports the C `main` symbol, so the binary's root needs
/// `#![cfg_attr(not(test), no_main)]`. Left out of test harnesses, which have
/// their own `main`.
#[cfg(not(target_family = "wasm"))]
#[macro_export]
macro_rules! action {
    ($main:path) => {
        #[cfg(not(test))]
        #[doc(hidden)]
        #[unsafe(export_name = "main")]
        extern "C" fn __wasmwhisk_native_main(
            argc: ::core::ffi::c_int,
            argv: *const *const ::core::ffi::c_char,
        ) -> ::core::ffi::c_int {
            // SAFETY: the C runtime calls `main` with its argc and argv.
            unsafe { $crate::__native_main(argc, argv, $main) }
        }

        // A test build has no entry point; `main` is still the action.
        #[cfg(test)]
        const _: () = {
            let _ = $main;
        };
    };
}
