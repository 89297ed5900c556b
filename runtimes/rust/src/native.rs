//! The native entry point behind [`action!`](crate::action) on non-wasm
//! targets: OpenWhisk's `native` convention (params JSON in argv\[1\], result
//! JSON as the last stdout line).

use std::ffi::{CStr, c_char, c_int};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::ActionResult;
use serde_json::Value;

/// Exit status when argv\[1\] is not JSON.
const BAD_PARAMS: c_int = 2;
/// Exit status after a panic (Rust's usual one).
const PANICKED: c_int = 101;
/// Exit status when the result cannot be written.
const NO_OUTPUT: c_int = 1;

/// Runs `main` on the params in `argv[1]` and prints its result.
///
/// # Safety
/// `argv` must point to `argc` valid C strings (what the C runtime passes
/// to `main`).
#[doc(hidden)]
pub unsafe fn __native_main<R: ActionResult>(
    argc: c_int,
    argv: *const *const c_char,
    main: fn(Value) -> R,
) -> c_int {
    let arg = if argc > 1 && !argv.is_null() {
        // SAFETY: argv has argc entries, per the caller's contract.
        let first = unsafe { *argv.add(1) };
        // SAFETY: a non-null argv entry is a NUL-terminated C string.
        (!first.is_null()).then(|| {
            unsafe { CStr::from_ptr(first) }
                .to_string_lossy()
                .into_owned()
        })
    } else {
        None
    };
    // Params too large for one argument come on stdin, with no argument
    // (the action proxy's convention); a terminal is never read.
    let arg = arg.or_else(|| {
        use std::io::{IsTerminal, Read};
        let mut stdin = std::io::stdin();
        if stdin.is_terminal() {
            return None;
        }
        let mut text = String::new();
        stdin.read_to_string(&mut text).ok().map(|_| text)
    });
    run(arg.as_deref(), main)
}

/// The safe part: parse, call, print. Returns the exit status.
fn run<R: ActionResult>(arg: Option<&str>, main: fn(Value) -> R) -> c_int {
    let params = match arg.map(str::trim).filter(|text| !text.is_empty()) {
        None => Value::Object(Default::default()),
        Some(text) => match serde_json::from_str(text) {
            Ok(params) => params,
            Err(error) => {
                eprintln!("The action's parameters are not valid JSON: {error}");
                return BAD_PARAMS;
            }
        },
    };
    // The panic hook has already printed the message to stderr.
    let Ok(result) = catch_unwind(AssertUnwindSafe(|| main(params).into_value())) else {
        return PANICKED;
    };
    // Flushed here: returning from a C `main` skips Rust's own stdout flush.
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{result}").and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("The action's result cannot be written: {error}");
            NO_OUTPUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn echo(params: Value) -> Value {
        json!({ "params": params })
    }

    fn fails(_: Value) -> Result<Value, String> {
        Err("no".into())
    }

    fn panics(_: Value) -> Value {
        panic!("on purpose")
    }

    #[test]
    fn params_default_to_an_empty_object() {
        assert_eq!(run(None, echo), 0);
        assert_eq!(run(Some("  "), echo), 0);
        assert_eq!(run(Some(r#"{"a":1}"#), echo), 0);
        assert_eq!(run(Some(r#"{"a":1}"#), fails), 0);
    }

    #[test]
    fn bad_params_and_panics_are_failures() {
        assert_eq!(run(Some("{oops"), echo), BAD_PARAMS);
        assert_eq!(run(None, panics), PANICKED);
    }

    #[test]
    fn argv_is_read_from_the_c_arguments() {
        let program = c"action";
        let params = c"{\"x\":2}";
        let argv = [program.as_ptr(), params.as_ptr(), std::ptr::null()];
        // SAFETY: two valid C strings.
        assert_eq!(unsafe { __native_main(2, argv.as_ptr(), echo) }, 0);
        assert_eq!(unsafe { __native_main(1, argv.as_ptr(), echo) }, 0);
    }
}
