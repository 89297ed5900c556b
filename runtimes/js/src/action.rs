//! `init` and `run`, following OpenWhisk's Node.js runtime.
//!
//! `init` evaluates the action's source as a classic (sloppy-mode) script in
//! the global scope and keeps its entry point; `run` calls it with the parsed
//! parameters, drives QuickJS's job queue (and the timers) until a returned
//! promise settles, and hands back the result as JSON text. Whether that JSON
//! is an acceptable result (object or array) is the host's call.
//!
//! Nothing of an activation outlives it: when `run` returns, the promise
//! jobs it left queued have run (Node.js empties its microtask queue before
//! anything else happens) and its pending timers are cancelled. Otherwise a
//! timer armed by one activation would fire inside the next one of the same
//! sandbox — throwing there, or keeping its promise loop waiting until that
//! activation timed out. Globals do persist, as in OpenWhisk's nodejs
//! runtime. Timers and jobs queued during `init` belong to the first
//! activation, as init's log lines do.

use std::time::Duration;

use rquickjs::{Ctx, Function, Persistent, Value};

use crate::bindings::{Activation, InitRequest};
use crate::engine::{Engine, script_options};
use crate::hooks::{Hooks, to_rust_string};
use crate::random;

/// The deepest nesting of arrays and objects accepted in `params`.
///
/// QuickJS's `JSON.parse` recurses in C with tiny shadow-stack frames, so
/// the stack guard (see `stack.rs`) cannot stop it before Wasmtime's native
/// stack runs out: measured, 2000 levels parse and 3000 trap. Parameters
/// come from whoever invokes the action, so they are checked first.
const MAX_PARAMS_DEPTH: usize = 1000;

/// What went wrong in a call into JavaScript.
enum Failure {
    /// An rquickjs error; for a JavaScript exception, the exception is
    /// pending in the context until [`Failure::into_message`] takes it.
    Js(rquickjs::Error),
    /// A message of our own.
    Message(String),
}

impl From<rquickjs::Error> for Failure {
    fn from(error: rquickjs::Error) -> Self {
        Failure::Js(error)
    }
}

impl Failure {
    fn into_message<'js>(self, ctx: &Ctx<'js>, hooks: &Hooks<'js>) -> String {
        match self {
            Failure::Js(error) => hooks.describe(ctx, error),
            Failure::Message(message) => message,
        }
    }
}

impl Engine {
    /// OpenWhisk's `/init`.
    pub fn init(&mut self, request: &InitRequest) -> Result<(), String> {
        if self.initialized {
            return Err("Cannot initialize the action more than once.".to_string());
        }
        self.initialized = true;
        random::reseed();
        if request.binary {
            return Err("This runtime loads JavaScript source text: binary (zip) actions are not supported.".to_string());
        }
        let code = std::str::from_utf8(&request.code)
            .map_err(|e| format!("The action's code is not valid UTF-8: {e}."))?;
        let main = if request.main.is_empty() {
            "main"
        } else {
            request.main.as_str()
        };
        let file_name = if request.name.is_empty() {
            "action"
        } else {
            request.name.as_str()
        };

        let entry = self.with_hooks(|ctx, hooks| {
            set_initial_env(hooks, &request.env).map_err(|e| hooks.describe(ctx, e))?;
            load(ctx, hooks, code, main, file_name).map_err(|f| f.into_message(ctx, hooks))
        })?;
        self.entry = Some(entry);
        Ok(())
    }

    /// OpenWhisk's `/run`.
    pub fn run(&mut self, params: &str, activation: &Activation) -> Result<String, String> {
        let entry = self
            .entry
            .clone()
            .ok_or_else(|| "The action was not initialized.".to_string())?;
        self.with_hooks(|ctx, hooks| {
            let result = activate(ctx, hooks, entry, params, activation)
                .map_err(|f| f.into_message(ctx, hooks));
            // After the error (if any) was described: that takes the
            // exception pending in the context.
            match end_activation(ctx, hooks) {
                Ok(()) => result,
                Err(e) => result.and(Err(hooks.describe(ctx, e))),
            }
        })
    }
}

/// `process.env`: the instance's WASI environment, then the init request's.
///
/// Read here rather than at boot: reading it while pre-initializing would
/// bake the build machine's environment into the snapshot.
fn set_initial_env(hooks: &Hooks<'_>, env: &[(String, String)]) -> rquickjs::Result<()> {
    for (name, value) in std::env::vars_os() {
        if let (Some(name), Some(value)) = (name.to_str(), value.to_str()) {
            hooks.set_env(name, Some(value))?;
        }
    }
    for (name, value) in env {
        hooks.set_env(name, Some(value))?;
    }
    Ok(())
}

/// Evaluates the action's code and returns its entry point.
fn load<'js>(
    ctx: &Ctx<'js>,
    hooks: &Hooks<'js>,
    code: &str,
    main: &str,
    file_name: &str,
) -> Result<Persistent<Function<'static>>, Failure> {
    ctx.eval_with_options::<Value<'js>, _>(code, script_options(file_name))?;
    match hooks.resolve_entry(main)? {
        Some(entry) => Ok(Persistent::save(ctx, entry)),
        None => Err(Failure::Message(format!(
            "Action entrypoint '{main}' is not a function."
        ))),
    }
}

/// Runs one activation: its `__OW_*` variables, then `entry(params)`.
fn activate<'js>(
    ctx: &Ctx<'js>,
    hooks: &Hooks<'js>,
    entry: Persistent<Function<'static>>,
    params: &str,
    activation: &Activation,
) -> Result<String, Failure> {
    set_activation_env(hooks, activation)?;
    let entry = entry.restore(ctx)?;
    if nesting_exceeds(params, MAX_PARAMS_DEPTH) {
        return Err(Failure::Message(format!(
            "The parameters are nested more than {MAX_PARAMS_DEPTH} levels deep."
        )));
    }
    let params = ctx.json_parse(params)?;
    let returned: Value<'js> = entry.call((params,))?;
    let result = settle(ctx, hooks, returned)?;
    match ctx.json_stringify(result)? {
        Some(json) => Ok(to_rust_string(&json)),
        // Like OpenWhisk's nodejs runtime: `return;` (undefined) is an empty result.
        None => Ok("{}".to_string()),
    }
}

/// Whether arrays and objects in the JSON text `json` nest deeper than `max`
/// (brackets inside strings do not count; invalid JSON is left to the parser).
fn nesting_exceeds(json: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The variables OpenWhisk's runtimes set from the `/run` request.
fn set_activation_env(hooks: &Hooks<'_>, activation: &Activation) -> rquickjs::Result<()> {
    hooks.set_env("__OW_ACTIVATION_ID", Some(&activation.activation_id))?;
    hooks.set_env("__OW_NAMESPACE", Some(&activation.namespace))?;
    hooks.set_env("__OW_ACTION_NAME", Some(&activation.action_name))?;
    hooks.set_env("__OW_ACTION_VERSION", Some(&activation.action_version))?;
    hooks.set_env("__OW_TRANSACTION_ID", Some(&activation.transaction_id))?;
    hooks.set_env("__OW_DEADLINE", Some(&activation.deadline.to_string()))?;
    hooks.set_env("__OW_API_KEY", activation.api_key.as_deref())
}

/// The value `returned` settles to: itself, or for a promise (or another
/// thenable) its fulfillment value. A rejection is an exception pending in
/// `ctx`, like a throw.
///
/// There is no event loop: this runs QuickJS's job queue (promise
/// reactions) and, when it is empty, sleeps until the next timer is due and
/// fires it. A promise that nothing can settle any more is an error; one
/// that timers keep alive is stopped by the host's deadline.
fn settle<'js>(
    ctx: &Ctx<'js>,
    hooks: &Hooks<'js>,
    returned: Value<'js>,
) -> Result<Value<'js>, Failure> {
    let Some(promise) = hooks.to_promise(returned.clone())? else {
        return Ok(returned);
    };
    loop {
        if let Some(outcome) = promise.result::<Value<'js>>() {
            return Ok(outcome?);
        }
        if ctx.execute_pending_job() {
            continue;
        }
        match hooks.next_timer_delay()? {
            Some(delay) => {
                sleep_ms(delay);
                hooks.fire_timer()?;
            }
            None => {
                return Err(Failure::Message(
                    "The action's promise never settled: no pending jobs or timers can settle it."
                        .to_string(),
                ));
            }
        }
    }
}

/// Ends an activation: runs the promise jobs still queued (a job chain that
/// never ends is stopped by the host's deadline, in this activation), then
/// cancels every timer left, so none of them runs in the next activation.
fn end_activation<'js>(ctx: &Ctx<'js>, hooks: &Hooks<'js>) -> rquickjs::Result<()> {
    while ctx.execute_pending_job() {}
    hooks.clear_timers()
}

/// Blocks for `ms` milliseconds (at most 2^31 - 1; NaN counts as 0).
fn sleep_ms(ms: f64) {
    let ms = ms.clamp(0.0, 2_147_483_647.0) as u64;
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::nesting_exceeds;

    #[test]
    fn counts_nesting_outside_strings() {
        assert!(!nesting_exceeds(r#"{"a":[1,{"b":[]}]}"#, 4));
        assert!(nesting_exceeds(r#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!nesting_exceeds(r#"{"a":"[[[[[[\"[[[[["}"#, 1));
        assert!(nesting_exceeds(&"[".repeat(1001), 1000));
        assert!(!nesting_exceeds("not json ]]]]", 0));
    }
}
