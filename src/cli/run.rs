//! `wasmwhisk run FILE`: run one action once, locally, and print its result
//! and logs. `.wasm` files are kind `wasm`, `.js` files kind `js`.
//!
//! Exit status: 0 on success, else OpenWhisk's status code — 1 application
//! error, 2 developer error, 3 internal error — with the message on stderr.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::action::{ActionKind, ActivationContext, InitArgs, SandboxLimits, new_activation_id};
use crate::engine::{Engine, PrepareError};
use crate::sandbox::{RunReport, RunResponse};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The action's file.
    pub file: PathBuf,
    /// Its kind; from the extension if `None`.
    pub kind: Option<ActionKind>,
    /// The entry point of a runtime kind.
    pub main: String,
    /// The parameters.
    pub params: Map<String, Value>,
    /// The limits.
    pub limits: SandboxLimits,
}

/// The kind of `file`: `explicit`, or from its extension.
pub fn kind_of(file: &Path, explicit: Option<ActionKind>) -> Result<ActionKind> {
    match explicit.or_else(|| ActionKind::from_path(file)) {
        Some(kind) => Ok(kind),
        None => bail!(
            "cannot tell the kind of {} from its extension; use --kind wasm|js",
            file.display()
        ),
    }
}

/// Runs the action of `options` once in a fresh sandbox: prepare (compile
/// or load from cache), instantiate, init, run. A failed init is returned as
/// the activation's developer error, as OpenWhisk reports it.
/// Blocking.
pub fn execute(engine: &Arc<Engine>, options: &RunOptions) -> Result<RunReport> {
    let kind = kind_of(&options.file, options.kind)?;
    let code = std::fs::read(&options.file)
        .with_context(|| format!("reading {}", options.file.display()))?;
    let name = options
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("action")
        .to_string();
    let prepared = match kind {
        ActionKind::Wasm => engine.prepare_wasm(&code)?.0,
        ActionKind::Js => {
            if !engine.runtime_is_cached(kind) {
                eprintln!(
                    "wasmwhisk: preparing the {kind} runtime for this data dir \
                     (pre-initializing and compiling, once; a few seconds)…"
                );
            }
            engine.prepare_runtime(kind)?
        }
    };
    let mut sandbox = match engine.instantiate(&prepared, options.limits.memory_mb) {
        Ok(sandbox) => sandbox,
        Err(error) => {
            return Ok(RunReport {
                response: error.response(),
                logs: vec![crate::sandbox::logs::format_line(
                    std::time::SystemTime::now(),
                    crate::sandbox::logs::LogStream::Stderr,
                    &error.to_string(),
                )],
                start: std::time::SystemTime::now(),
                duration: std::time::Duration::ZERO,
            });
        }
    };
    let init_code = if kind.has_runtime() { code } else { Vec::new() };
    let activation_id = new_activation_id();
    let context = ActivationContext {
        activation_id: activation_id.clone(),
        namespace: "guest".into(),
        action_name: format!("/guest/{name}"),
        action_version: "0.0.1".into(),
        transaction_id: activation_id,
        api_key: None,
    };
    let init = InitArgs {
        name: name.clone(),
        main: options.main.clone(),
        code: init_code,
        binary: false,
        env: vec![
            ("__OW_NAMESPACE".into(), context.namespace.clone()),
            ("__OW_ACTION_NAME".into(), context.action_name.clone()),
            ("__OW_ACTION_VERSION".into(), context.action_version.clone()),
        ],
    };
    if let Err(failure) = sandbox.init(init, &options.limits) {
        return Ok(RunReport {
            response: failure.response,
            logs: failure.logs,
            start: std::time::SystemTime::now(),
            duration: failure.duration,
        });
    }
    Ok(sandbox.run(&context, &options.params, &options.limits))
}

/// Prints a report (logs to stderr, result to stdout) and returns the exit code.
pub fn print_report(report: &RunReport) -> i32 {
    for line in &report.logs {
        eprintln!("{line}");
    }
    let response: &RunResponse = &report.response;
    match serde_json::to_string_pretty(&response.result) {
        Ok(text) => println!("{text}"),
        Err(_) => println!("{}", response.result),
    }
    if !response.is_success() {
        eprintln!(
            "error ({}): {}",
            response.status.as_api_str(),
            response.error_message().unwrap_or("see the result above")
        );
    }
    i32::from(response.status.code())
}

/// Maps a preparation error to a message for the user.
pub fn describe(error: &anyhow::Error) -> String {
    match error.downcast_ref::<PrepareError>() {
        Some(e) => e.to_string(),
        None => format!("{error:#}"),
    }
}
