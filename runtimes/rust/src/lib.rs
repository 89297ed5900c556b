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

pub use serde_json::{self, Value, json};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "action",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_action",
        default_bindings_module: "wasmwhisk_action::bindings",
    });
}

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
///
/// Safety of `set_var`: a wasm32-wasip2 component is single-threaded, so no
/// other thread can read the environment concurrently.
fn set_env(key: &str, value: &str) {
    unsafe { std::env::set_var(key, value) }
}

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
