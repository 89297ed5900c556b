//! Running a sandbox from async code.
//!
//! A [`Sandbox`] runs Wasm on the calling thread (see the module doc of
//! `sandbox`), so an async caller must not call it on an executor thread: a
//! 60-second activation would stall every task of that worker. An
//! [`AsyncSandbox`] moves the sandbox onto Tokio's blocking pool for each
//! `init`/`run` and takes it back afterwards; between activations it is a
//! plain value owned by its task, costing nothing.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::{ActivationResponse, InitFailure, RunReport, Sandbox};
use crate::action::{ActionLimits, ActivationContext, InitArgs};

/// A sandbox driven from async code. `None` inside only after a blocking
/// task panicked, which loses the sandbox (reported as a whisk error).
#[derive(Debug)]
pub struct AsyncSandbox {
    sandbox: Option<Sandbox>,
}

impl AsyncSandbox {
    /// Wraps `sandbox`.
    pub fn new(sandbox: Sandbox) -> AsyncSandbox {
        AsyncSandbox {
            sandbox: Some(sandbox),
        }
    }

    /// True when the sandbox is gone or retired: drop this value.
    pub fn is_retired(&self) -> bool {
        self.sandbox.as_ref().is_none_or(Sandbox::is_retired)
    }

    /// The sandbox, when it is still there.
    pub fn get(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// [`Sandbox::init`] on a blocking thread.
    pub async fn init(
        &mut self,
        args: InitArgs,
        limits: ActionLimits,
    ) -> Result<Duration, InitFailure> {
        let Some(mut sandbox) = self.sandbox.take() else {
            return Err(lost_init());
        };
        match tokio::task::spawn_blocking(move || {
            let result = sandbox.init(args, &limits);
            (sandbox, result)
        })
        .await
        {
            Ok((sandbox, result)) => {
                self.sandbox = Some(sandbox);
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
        limits: ActionLimits,
    ) -> RunReport {
        let Some(mut sandbox) = self.sandbox.take() else {
            return lost_run();
        };
        match tokio::task::spawn_blocking(move || {
            let report = sandbox.run(&context, &params, &limits);
            (sandbox, report)
        })
        .await
        {
            Ok((sandbox, report)) => {
                self.sandbox = Some(sandbox);
                report
            }
            Err(_) => lost_run(),
        }
    }
}

const LOST: &str = "the sandbox was lost: its blocking task failed";

fn lost_init() -> InitFailure {
    InitFailure {
        response: ActivationResponse::whisk_error(LOST),
        logs: Vec::new(),
        duration: Duration::ZERO,
    }
}

fn lost_run() -> RunReport {
    RunReport {
        response: ActivationResponse::whisk_error(LOST),
        logs: Vec::new(),
        start: SystemTime::now(),
        duration: Duration::ZERO,
    }
}
