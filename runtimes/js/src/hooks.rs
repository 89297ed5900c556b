//! The Rust side of `prelude.js`: typed calls into the object it returns, and
//! turning JavaScript errors into the messages `init`/`run` report.

use rquickjs::function::IntoArgs;
use rquickjs::{Ctx, FromJs, Function, Object, Promise, Value, qjs};

/// The hooks object `prelude.js` returned, in a context.
pub struct Hooks<'js>(Object<'js>);

impl<'js> Hooks<'js> {
    pub fn new(object: Object<'js>) -> Self {
        Hooks(object)
    }

    fn call<A: IntoArgs<'js>, R: FromJs<'js>>(&self, name: &str, args: A) -> rquickjs::Result<R> {
        let hook: Function<'js> = self.0.get(name)?;
        hook.call(args)
    }

    /// The action's entry point named `name`, if it is a function.
    pub fn resolve_entry(&self, name: &str) -> rquickjs::Result<Option<Function<'js>>> {
        self.call("resolveEntry", (name,))
    }

    /// `value` as a promise if it is a thenable.
    pub fn to_promise(&self, value: Value<'js>) -> rquickjs::Result<Option<Promise<'js>>> {
        self.call("toPromise", (value,))
    }

    /// Milliseconds until the next timer is due, `None` without timers.
    pub fn next_timer_delay(&self) -> rquickjs::Result<Option<f64>> {
        let delay: f64 = self.call("nextTimerDelay", ())?;
        Ok((delay >= 0.0).then_some(delay))
    }

    /// Runs the timer due first.
    pub fn fire_timer(&self) -> rquickjs::Result<()> {
        self.call("fireTimer", ())
    }

    /// Cancels every pending timer.
    pub fn clear_timers(&self) -> rquickjs::Result<()> {
        self.call("clearTimers", ())
    }

    /// Sets (or with `None` deletes) `process.env[name]`.
    pub fn set_env(&self, name: &str, value: Option<&str>) -> rquickjs::Result<()> {
        self.call("setEnv", (name, value))
    }

    /// The message for an error of a call into JavaScript: for an exception,
    /// `Name: message` and the stack (see `describe` in `prelude.js`).
    pub fn describe(&self, ctx: &Ctx<'js>, error: rquickjs::Error) -> String {
        if !matches!(error, rquickjs::Error::Exception) {
            return error.to_string();
        }
        let thrown = ctx.catch();
        match self.call::<_, Value<'js>>("describe", (thrown,)) {
            Ok(text) => text.as_string().map(to_rust_string).unwrap_or_default(),
            Err(_) => {
                // Describing failed too (out of memory?): drop that exception.
                let _ = ctx.catch();
                "Uncaught exception (it could not be described).".to_string()
            }
        }
    }
}

/// A JavaScript string as UTF-8, lone surrogates replaced by U+FFFD (where
/// `rquickjs::String::to_string` would fail).
pub fn to_rust_string(text: &rquickjs::String<'_>) -> String {
    if let Ok(text) = text.to_string() {
        return text;
    }
    let ctx = text.ctx().as_raw().as_ptr();
    let mut len: qjs::size_t = 0;
    // SAFETY: `text` is a live string of `ctx`; QuickJS returns a buffer of
    // `len` bytes (or null) that stays valid until `JS_FreeCString`.
    unsafe {
        let ptr = qjs::JS_ToCStringLen2(ctx, &mut len, text.as_raw(), false);
        if ptr.is_null() {
            return String::new();
        }
        let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize);
        let owned = String::from_utf8_lossy(bytes).into_owned();
        qjs::JS_FreeCString(ctx, ptr);
        owned
    }
}
