//! A sandbox: one Wasm instance with its own `Store`, limits and WASI context.
//! It is wasmwhisk's container.
//!
//! ```text
//!   Engine::instantiate(prepared)      stem cell (runtime kinds) or fresh `wasm` action
//!        │
//!        ▼ init(code)                  OpenWhisk's /init; once
//!   Initialized ──run──▶ Initialized   OpenWhisk's /run; success or application error
//!        │
//!        └─run: developer/whisk error─▶ Retired   (trap, timeout, memory, bad result)
//! ```
//!
//! A stem cell is a runtime component already instantiated (from its
//! pre-initialized snapshot) and not yet given code; `init` specializes it.
//! A `wasm` action has no stem cell: its cold start is instantiation of its
//! cached precompiled component followed by an `init` with empty code.
//!
//! Limits are enforced by the host, not trusted to the guest: memory by a
//! resource limiter (the sum of linear memories), time by epoch interruption
//! (the call traps at the first tick past the deadline), logs by the capture.
//! Any trap retires the sandbox — a trapped component instance cannot be
//! entered again.
//!
//! Every method is synchronous and runs Wasm on the calling thread: from
//! async code, call it on a blocking thread (`tokio::task::spawn_blocking`);
//! a `Sandbox` is `Send`.

pub mod action;
pub mod engine;
pub mod logs;
pub mod memory;
pub mod offload;
pub mod outcome;
pub mod runtimes;
pub mod state;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use wasmtime::{Store, UpdateDeadline};

use crate::action::{ActionKind, ActivationContext, InitArgs, SandboxLimits};
use crate::engine::world::Action;
use crate::engine::world::wasmwhisk::action::types as wit;
use crate::engine::{Engine, Prepared};
use logs::LogStream;
pub use offload::AsyncSandbox;
pub use outcome::{ResponseStatus, RunResponse, messages};
use state::SandboxState;

/// Why a sandbox could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The component's memory starts above the action's memory limit: the
    /// action's fault (a developer error, "exhausted its memory").
    #[error(
        "the action needs {needed_mb} MiB of memory before it runs, above its limit of {limit_mb} MiB"
    )]
    MemoryLimit {
        /// The initial memory the component needs, MiB.
        needed_mb: u64,
        /// The action's limit, MiB.
        limit_mb: u64,
    },
    /// Instantiation failed for a reason of ours (pool exhausted, ...): a
    /// system error.
    #[error("could not instantiate the sandbox: {0}")]
    Instantiate(String),
}

impl SandboxError {
    /// The first activation's response for this failure.
    pub fn response(&self) -> RunResponse {
        match self {
            SandboxError::MemoryLimit { .. } => {
                RunResponse::developer_error(messages::MEMORY_EXHAUSTED)
            }
            SandboxError::Instantiate(_) => RunResponse::whisk_error(self.to_string()),
        }
    }
}

/// Where a sandbox is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Instantiated, no code yet (a stem cell, or a `wasm` action before init).
    Fresh,
    /// `init` succeeded; runs activations.
    Initialized,
    /// A developer or system error ended it; it must be dropped.
    Retired,
}

/// The outcome of `init` when it fails: the first activation's response.
#[derive(Debug)]
pub struct InitFailure {
    /// A developer error with OpenWhisk's message.
    pub response: RunResponse,
    /// What the action logged during init.
    pub logs: Vec<String>,
    /// How long init ran.
    pub duration: Duration,
}

/// The outcome of one activation.
#[derive(Debug)]
pub struct RunReport {
    /// Status and result.
    pub response: RunResponse,
    /// Log lines in OpenWhisk's format (init's lines first on a cold start).
    pub logs: Vec<String>,
    /// When `run` started.
    pub start: SystemTime,
    /// How long `run` took.
    pub duration: Duration,
}

/// One Wasm instance.
pub struct Sandbox {
    store: Store<SandboxState>,
    action: Action,
    kind: ActionKind,
    lifecycle: Lifecycle,
    /// True between a successful `init` and the next `run`: init's log lines
    /// belong to the first activation.
    logs_open: bool,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("kind", &self.kind)
            .field("lifecycle", &self.lifecycle)
            .finish()
    }
}

impl Engine {
    /// Instantiates `prepared` with a memory limit of `memory_mb` MiB: a stem
    /// cell for a runtime kind, a fresh action for `wasm`.
    pub fn instantiate(
        self: &Arc<Self>,
        prepared: &Prepared,
        memory_mb: u64,
    ) -> Result<Sandbox, SandboxError> {
        let limit = SandboxLimits {
            memory_mb,
            ..SandboxLimits::default()
        }
        .memory_bytes()
        .min(self.config().max_memory_bytes());
        if prepared.initial_memory_bytes > limit as u64 {
            return Err(SandboxError::MemoryLimit {
                needed_mb: prepared.initial_memory_bytes.div_ceil(1 << 20),
                limit_mb: (limit as u64) >> 20,
            });
        }
        let mut store = Store::new(self.wasmtime(), SandboxState::new(limit));
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|ctx| {
            Ok(match ctx.data().deadline {
                Some(deadline) if Instant::now() >= deadline => UpdateDeadline::Interrupt,
                _ => UpdateDeadline::Continue(1),
            })
        });
        store.set_epoch_deadline(1);
        let action = prepared.pre.instantiate(&mut store).map_err(|e| {
            if store.data().limiter.exceeded {
                SandboxError::MemoryLimit {
                    needed_mb: prepared.initial_memory_bytes.div_ceil(1 << 20),
                    limit_mb: (limit as u64) >> 20,
                }
            } else {
                SandboxError::Instantiate(format!("{e:#}"))
            }
        })?;
        Ok(Sandbox {
            store,
            action,
            kind: prepared.kind,
            lifecycle: Lifecycle::Fresh,
            logs_open: false,
            engine: self.clone(),
        })
    }
}

/// Epoch milliseconds of `t`.
pub fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Sandbox {
    /// The kind of sandbox.
    pub fn kind(&self) -> ActionKind {
        self.kind
    }

    /// Where it is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// True once a developer or system error retired it.
    pub fn is_retired(&self) -> bool {
        self.lifecycle == Lifecycle::Retired
    }

    /// Changes the memory limit (a stem cell takes its action's limit when
    /// specialized).
    pub fn set_memory_limit(&mut self, memory_mb: u64) {
        let limit = SandboxLimits {
            memory_mb,
            ..SandboxLimits::default()
        }
        .memory_bytes()
        .min(self.engine.config().max_memory_bytes());
        self.store.data_mut().limiter.limit = limit;
    }

    /// Loads the action's code (OpenWhisk's `/init`): specializes a stem cell,
    /// or initializes a `wasm` action. On failure the sandbox is retired and
    /// the failure is the first activation's developer error.
    pub fn init(
        &mut self,
        args: InitArgs,
        limits: &SandboxLimits,
    ) -> Result<Duration, InitFailure> {
        let started = Instant::now();
        if self.lifecycle != Lifecycle::Fresh {
            self.lifecycle = Lifecycle::Retired;
            return Err(InitFailure {
                response: RunResponse::whisk_error("the sandbox was already initialized"),
                logs: Vec::new(),
                duration: Duration::ZERO,
            });
        }
        self.set_memory_limit(limits.memory_mb);
        self.store.data().logs.start(limits.log_bytes());
        self.logs_open = true;
        let request = wit::InitRequest {
            name: args.name,
            main: if args.main.is_empty() {
                "main".into()
            } else {
                args.main
            },
            code: args.code,
            binary: args.binary,
            env: args.env,
        };
        let _ticking = self.engine.ticker().run_guard();
        self.begin(limits.timeout);
        let result = self.action.call_init(&mut self.store, &request);
        let duration = started.elapsed();
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(RunResponse::developer_error(if message.is_empty() {
                messages::invalid_init_response("")
            } else {
                message
            })),
            Err(error) => Some(self.trap_response(&error, limits, true)),
        };
        self.end();
        match failure {
            None => {
                self.lifecycle = Lifecycle::Initialized;
                Ok(duration)
            }
            Some(response) => {
                self.lifecycle = Lifecycle::Retired;
                self.logs_open = false;
                Err(InitFailure {
                    response,
                    logs: self.store.data().logs.finish(),
                    duration,
                })
            }
        }
    }

    /// Runs one activation (OpenWhisk's `/run`) with `params`.
    pub fn run(
        &mut self,
        context: &ActivationContext,
        params: &Map<String, Value>,
        limits: &SandboxLimits,
    ) -> RunReport {
        let start = SystemTime::now();
        let started = Instant::now();
        if self.lifecycle != Lifecycle::Initialized {
            let why = match self.lifecycle {
                Lifecycle::Fresh => "the sandbox was not initialized",
                _ => "the sandbox was retired",
            };
            return RunReport {
                response: RunResponse::whisk_error(why),
                logs: Vec::new(),
                start,
                duration: Duration::ZERO,
            };
        }
        if !self.logs_open {
            self.store.data().logs.start(limits.log_bytes());
        }
        self.logs_open = false;
        // A map of JSON values always serializes; the fallback is unreachable in practice.
        let params_text = serde_json::to_string(params).unwrap_or_else(|_| "{}".to_string());
        let activation = wit::Activation {
            activation_id: context.activation_id.clone(),
            namespace: context.namespace.clone(),
            action_name: context.action_name.clone(),
            action_version: context.action_version.clone(),
            transaction_id: context.transaction_id.clone(),
            deadline: epoch_millis(start + limits.timeout),
            api_key: context.api_key.clone(),
        };
        let _ticking = self.engine.ticker().run_guard();
        self.begin(limits.timeout);
        let result = self
            .action
            .call_run(&mut self.store, &params_text, &activation);
        let duration = started.elapsed();
        let exceeded_memory = self.store.data().limiter.exceeded;
        let response = match result {
            Ok(Ok(text)) => {
                RunResponse::from_run_result(&text, self.engine.config().max_result_bytes)
            }
            Ok(Err(_)) if exceeded_memory => {
                RunResponse::developer_error(messages::MEMORY_EXHAUSTED)
            }
            Ok(Err(message)) => RunResponse::developer_error(message),
            Err(error) => self.trap_response(&error, limits, false),
        };
        self.end();
        if response.status.retires_sandbox() {
            self.lifecycle = Lifecycle::Retired;
        }
        RunReport {
            response,
            logs: self.store.data().logs.finish(),
            start,
            duration,
        }
    }

    /// Arms the deadline and clears the memory flag before a call.
    fn begin(&mut self, timeout: Duration) {
        let state = self.store.data_mut();
        state.deadline = Some(Instant::now() + timeout);
        state.limiter.exceeded = false;
        self.store.set_epoch_deadline(1);
    }

    /// Disarms the deadline after a call.
    fn end(&mut self) {
        self.store.data_mut().deadline = None;
    }

    /// Classifies a trap: timeout, memory, or an abnormal exit. The trap's
    /// details go to the activation's logs; the message is OpenWhisk's.
    fn trap_response(
        &mut self,
        error: &wasmtime::Error,
        limits: &SandboxLimits,
        during_init: bool,
    ) -> RunResponse {
        self.lifecycle = Lifecycle::Retired;
        let state = self.store.data();
        let timed_out = matches!(
            error.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        ) || state.deadline.is_some_and(|d| Instant::now() >= d);
        let message = if timed_out {
            if during_init {
                messages::init_timed_out(limits.timeout)
            } else {
                messages::timed_out(limits.timeout)
            }
        } else if state.limiter.exceeded {
            messages::MEMORY_EXHAUSTED.to_string()
        } else if during_init {
            messages::ABNORMAL_INIT.to_string()
        } else {
            messages::ABNORMAL_RUN.to_string()
        };
        if !timed_out {
            let detail = format!("{error:#}");
            let first = detail.lines().next().unwrap_or_default();
            state
                .logs
                .host_line(LogStream::Stderr, &format!("wasm trap: {first}"));
        }
        RunResponse::developer_error(message)
    }
}
