//! Code is compiled when an action is created or updated, never on the
//! invoke path, and bad code is refused there with a 400 and nothing stored.
//!
//! - `wasm`: the component is validated, checked against the action world
//!   and compiled into the disk cache ([`Engine::prepare_wasm`]); its cache
//!   key is stored with the action so a cold start neither hashes nor
//!   compiles. A component whose initial memory exceeds the action's memory
//!   limit is refused too: it could never start.
//! - `js`: a throwaway stem cell of the JS runtime runs `init` with the
//!   source (a syntax error, a missing `main`, a throw at top level fail
//!   here, with the runtime's message) and is dropped.
//!
//! Both are CPU work on Tokio's blocking pool; at most [`MAX_COMPILES`] run
//! at once, so a burst of deployments of large components cannot take every
//! core and all the memory of a small edge machine.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::action::{ActionKind, InitArgs, SandboxLimits};
use crate::engine::{CacheKey, Engine, PrepareError};
use crate::pool::proxy::new_stem_cell;
use crate::protocol::action::ActionLimits;
use crate::sandbox::ResponseStatus;

/// Deployments compiling at once.
pub const MAX_COMPILES: usize = 2;

static COMPILES: Semaphore = Semaphore::const_new(MAX_COMPILES);

/// What `init` of the trial needs besides the code.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The action's name.
    pub name: String,
    /// Its entry point, when not `main`.
    pub main: Option<String>,
    /// Its limits.
    pub limits: ActionLimits,
    /// Its init parameters, as `init` receives them.
    pub env: Vec<(String, String)>,
}

/// Prepares `code` of `kind`: the compile cache key of a `wasm` component,
/// `None` for `js`. Errors are 400 with the reason (500 for our failures).
pub async fn compile(
    engine: Arc<Engine>,
    kind: ActionKind,
    code: Arc<[u8]>,
    trial: Trial,
) -> Result<Option<CacheKey>, ApiError> {
    let _permit = COMPILES
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the compile queue is closed"))?;
    let work = move || match kind {
        ActionKind::Wasm => prepare_wasm(&engine, &code, &trial.limits).map(Some),
        ActionKind::Js => trial_init(&engine, kind, &code, trial).map(|()| None),
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the compile task failed: {e}")))?
}

/// Validates and compiles a component into the cache. Blocking.
fn prepare_wasm(engine: &Engine, code: &[u8], limits: &ActionLimits) -> Result<CacheKey, ApiError> {
    let (prepared, _) = engine.prepare_wasm(code).map_err(|e| match e {
        PrepareError::Internal(_) => ApiError::internal(e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    })?;
    let limit = limits.memory.saturating_mul(1 << 20);
    if prepared.initial_memory_bytes > limit {
        return Err(ApiError::bad_request(format!(
            "the component needs {} MB of memory before it runs, above the action's memory limit of {} MB",
            prepared.initial_memory_bytes.div_ceil(1 << 20),
            limits.memory
        )));
    }
    Ok(prepared.key)
}

/// Runs `init` of `code` in a throwaway stem cell of `kind`. Blocking.
fn trial_init(
    engine: &Arc<Engine>,
    kind: ActionKind,
    code: &[u8],
    trial: Trial,
) -> Result<(), ApiError> {
    let mut sandbox = new_stem_cell(engine, kind, trial.limits.memory)
        .map_err(|e| ApiError::internal(format!("no {kind} sandbox to check the code in: {e}")))?;
    let limits = SandboxLimits {
        timeout: Duration::from_millis(trial.limits.timeout),
        memory_mb: trial.limits.memory,
        logs_mb: trial.limits.logs,
        concurrency: trial.limits.concurrency,
    };
    let args = InitArgs {
        name: trial.name,
        main: trial.main.unwrap_or_else(|| "main".into()),
        code: code.to_vec(),
        binary: false,
        env: trial.env,
    };
    match sandbox.init(args, &limits) {
        Ok(_) => Ok(()),
        Err(failure) => {
            let message = failure
                .response
                .error_message()
                .map(str::to_string)
                .unwrap_or_else(|| failure.response.result.to_string());
            if failure.response.status == ResponseStatus::WhiskInternalError {
                Err(ApiError::internal(message))
            } else {
                Err(ApiError::bad_request(message))
            }
        }
    }
}

/// The init parameters of `params` as `init` receives them (strings as
/// they are, other values as JSON), like the pool's partition.
pub fn init_env(params: &crate::protocol::Parameters) -> Vec<(String, String)> {
    params
        .0
        .iter()
        .filter(|p| p.init)
        .map(|p| {
            let text = match &p.value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (p.key.clone(), text)
        })
        .collect()
}
