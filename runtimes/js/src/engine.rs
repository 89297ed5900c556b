//! The QuickJS engine of this instance: booted once, kept for every call.
//!
//! Booting (runtime, context with all standard built-ins, then `prelude.js`)
//! happens in `wizer-initialize` when the host pre-initializes the component,
//! or lazily on the first `init` otherwise. Booting must not depend on
//! anything per-instance, since the host snapshots its result and shares it
//! with every sandbox: in particular it must not print, read the environment
//! or draw randomness, whose WASI state (stream handles, cached environ)
//! would be baked into the snapshot.
//!
//! The engine lives in a `thread_local` (a component instance is
//! single-threaded): wit-bindgen's exports are free functions.

use std::cell::RefCell;

use rquickjs::context::EvalOptions;
use rquickjs::{Context, Ctx, Function, Object, Persistent, Runtime, Value};

use crate::hooks::Hooks;
use crate::stack::StackGuard;
use crate::{output, random};

/// The JavaScript half of the runtime (see the file's header).
const PRELUDE: &str = include_str!("prelude.js");

/// Everything kept between calls.
///
/// Fields drop in declaration order: the persistent values must be released
/// while their context is still alive (QuickJS asserts that no object
/// outlives its runtime).
pub struct Engine {
    /// The action's entry point, once `init` has found it.
    pub(crate) entry: Option<Persistent<Function<'static>>>,
    /// The object `prelude.js` returned.
    pub(crate) hooks: Persistent<Object<'static>>,
    /// Whether `init` was called (successfully or not).
    pub(crate) initialized: bool,
    /// Bounds the C stack QuickJS may use.
    stack: StackGuard,
    /// The one context (it holds the runtime).
    pub(crate) context: Context,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Runs `f` with the engine, booting it first if needed.
pub fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> Result<R, String> {
    ENGINE.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "The JavaScript engine was re-entered.".to_string())?;
        let engine = match &mut *slot {
            Some(engine) => engine,
            empty => empty.insert(Engine::boot()?),
        };
        // The stack bound is an absolute address: set it from this call's
        // depth before any JavaScript runs.
        engine.stack.arm();
        Ok(f(engine))
    })
}

impl Engine {
    fn boot() -> Result<Self, String> {
        let runtime = Runtime::new().map_err(|e| format!("Cannot start QuickJS: {e}"))?;
        let context = Context::full(&runtime).map_err(|e| format!("Cannot start QuickJS: {e}"))?;
        let (hooks, stack) = context.with(|ctx| {
            let stack = StackGuard::install(&ctx);
            stack.arm();
            let hooks = run_prelude(&ctx)
                .map_err(|e| rquickjs::CaughtError::from_error(&ctx, e).to_string())?;
            Ok::<_, String>((Persistent::save(&ctx, hooks), stack))
        })?;
        Ok(Engine {
            entry: None,
            hooks,
            initialized: false,
            stack,
            context,
        })
    }

    /// Runs `f` in the engine's context with the prelude's hooks.
    pub(crate) fn with_hooks<R>(
        &self,
        f: impl for<'js> FnOnce(&Ctx<'js>, &Hooks<'js>) -> Result<R, String>,
    ) -> Result<R, String> {
        self.context.with(|ctx| {
            let hooks = self
                .hooks
                .clone()
                .restore(&ctx)
                .map_err(|e| e.to_string())?;
            f(&ctx, &Hooks::new(hooks))
        })
    }
}

/// Evaluation options for a classic script in sloppy mode, as Node.js
/// evaluates action code (rquickjs defaults to strict mode).
pub fn script_options(file_name: &str) -> EvalOptions {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some(file_name.to_string());
    options
}

/// Evaluates `prelude.js` and calls it with the native functions it wraps.
fn run_prelude<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let prelude: Function<'js> =
        ctx.eval_with_options(PRELUDE, script_options("wasmwhisk:prelude"))?;
    let native = Object::new(ctx.clone())?;
    native.set("stdout", line_writer(ctx, output::Stream::Stdout)?)?;
    native.set("stderr", line_writer(ctx, output::Stream::Stderr)?)?;
    let random = Function::new(ctx.clone(), random::next_f64)?.with_name("random")?;
    native.set("random", random)?;
    prelude.call((native,))
}

/// A native function writing its (string) argument as one line on `stream`.
fn line_writer<'js>(ctx: &Ctx<'js>, stream: output::Stream) -> rquickjs::Result<Function<'js>> {
    Function::new(ctx.clone(), move |line: Value<'js>| {
        if let Some(text) = line.as_string() {
            output::write_line(stream, &crate::hooks::to_rust_string(text));
        }
    })
}
