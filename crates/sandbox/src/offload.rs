//! Running a sandbox from async code.
//!
//! A [`Sandbox`] runs Wasm on the calling thread (see the module doc of
//! `sandbox`), so an async caller must not call it on an executor thread: a
//! 60-second activation would stall every task of that worker. An
//! [`AsyncSandbox`] moves the sandbox onto Tokio's blocking pool for each
//! `init`/`run` and takes it back afterwards; between activations it is a
//! plain value owned by its task, costing nothing.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::{InitFailure, RunReport, RunResponse, Sandbox};
use crate::action::{ActivationContext, InitArgs, SandboxLimits};

/// A sandbox driven from async code. `None` inside only after a blocking
/// task panicked, which loses the sandbox (reported as a whisk error).
///
/// A [`Sandbox`] is `Send` but not `Sync` (its WASI context is not); the
/// mutex makes an `AsyncSandbox` `Sync`, so a task holding `&` to its owner
/// across an `await` stays `Send`. It is never contended: `init`, `run` and
/// `into_inner` take `&mut self` and reach the sandbox with `get_mut`, which
/// does not lock.
#[derive(Debug)]
pub struct AsyncSandbox {
    sandbox: Mutex<Option<Sandbox>>,
}

impl AsyncSandbox {
    /// Wraps `sandbox`.
    pub fn new(sandbox: Sandbox) -> AsyncSandbox {
        AsyncSandbox {
            sandbox: Mutex::new(Some(sandbox)),
        }
    }

    /// True when the sandbox is gone or retired: drop this value.
    pub fn is_retired(&self) -> bool {
        let sandbox = self.sandbox.lock().unwrap_or_else(|e| e.into_inner());
        sandbox.as_ref().is_none_or(Sandbox::is_retired)
    }

    /// The sandbox back, when it is still there.
    pub fn into_inner(self) -> Option<Sandbox> {
        self.sandbox.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Sandbox::set_memory_limit`].
    pub fn set_memory_limit(&mut self, memory_mb: u64) {
        if let Some(sandbox) = self.slot() {
            sandbox.set_memory_limit(memory_mb);
        }
    }

    fn slot(&mut self) -> &mut Option<Sandbox> {
        self.sandbox.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Sandbox::init`] on a blocking thread.
    pub async fn init(
        &mut self,
        args: InitArgs,
        limits: SandboxLimits,
    ) -> Result<Duration, InitFailure> {
        let Some(mut sandbox) = self.slot().take() else {
            return Err(lost_init());
        };
        match tokio::task::spawn_blocking(move || {
            let result = sandbox.init(args, &limits);
            (sandbox, result)
        })
        .await
        {
            Ok((sandbox, result)) => {
                *self.slot() = Some(sandbox);
                result
            }
            Err(_) => Err(lost_init()),
        }
    }

    /// [`Sandbox::run`] on a blocking thread.
    pub async fn run(
        &mut self,
        context: ActivationContext,
        params: Map<String, Value>,
        limits: SandboxLimits,
    ) -> RunReport {
        let Some(mut sandbox) = self.slot().take() else {
            return lost_run();
        };
        match tokio::task::spawn_blocking(move || {
            let report = sandbox.run(&context, &params, &limits);
            (sandbox, report)
        })
        .await
        {
            Ok((sandbox, report)) => {
                *self.slot() = Some(sandbox);
                report
            }
            Err(_) => lost_run(),
        }
    }
}

const LOST: &str = "the sandbox was lost: its blocking task failed";

fn lost_init() -> InitFailure {
    InitFailure {
        response: RunResponse::whisk_error(LOST),
        logs: Vec::new(),
        duration: Duration::ZERO,
    }
}

fn lost_run() -> RunReport {
    RunReport {
        response: RunResponse::whisk_error(LOST),
        logs: Vec::new(),
        start: SystemTime::now(),
        duration: Duration::ZERO,
    }
}
