//! A pool's container, whatever runs it: a Wasm sandbox, or a Docker
//! container for kinds with no Wasm runtime (the fallback, docs/openwhisk.md §6).
//!
//! The pool's states, memory accounting, stem cells, pausing and eviction are
//! the same for both; only these moves differ:
//!
//! | move | Wasm sandbox | Docker container |
//! |---|---|---|
//! | create | instantiate a component (µs) | `docker create` + `start` (hundreds of ms) |
//! | init / run | calls into the instance on a blocking thread | `POST /init`, `POST /run` on port 8080 |
//! | pause / resume | nothing: an idle instance costs no CPU | `docker pause` / `unpause` |
//! | destroy | drop | `docker rm -f` (awaited, or spawned on drop) |
//!
//! A Docker `/init` or `/run` answered by 503, or a `/run` whose connection
//! fails, hands the activation back to its queue (OpenWhisk's
//! `ContainerHealthError` → reschedule) and the container is destroyed.
//!
//! Docker itself is behind two ports, [`ExternalContainer`] and
//! [`ContainerHost`], which the `wasmwhisk-docker` crate implements: this
//! crate never links a Docker client.

use std::time::Duration;

use serde_json::{Map, Value};

use wasmwhisk_sandbox::action::{ActivationContext, InitArgs, SandboxLimits};
use wasmwhisk_sandbox::{AsyncSandbox, InitFailure, RunReport, Sandbox};

/// One container of the pool.
#[derive(Debug)]
pub enum Container {
    /// A Wasm instance.
    Wasm(AsyncSandbox),
    /// A Docker container.
    Docker(Box<dyn ExternalContainer>),
}

/// Why a move on a container (create, `/run`, pause, resume, removal)
/// failed: a message of the pool's own, or the adapter's error with its
/// chain of sources (a Docker or I/O error) kept.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Said by the pool or the adapter.
    #[error("{0}")]
    Message(String),
    /// The adapter's error, as it is.
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

impl ContainerError {
    /// An error that is only a message.
    pub fn message(message: impl Into<String>) -> Self {
        ContainerError::Message(message.into())
    }

    /// The adapter's error `source`, kept with its chain.
    pub fn source(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        ContainerError::Source(Box::new(source))
    }
}

/// Why `init` did not succeed.
#[derive(Debug)]
pub enum InitError {
    /// The action failed to initialize: the first activation's developer
    /// error; the container is destroyed.
    Failed(InitFailure),
    /// The container could not take it (503, connection failure): give the
    /// activation back to the queue and destroy the container.
    Reschedule(String),
}

impl From<Sandbox> for Container {
    fn from(sandbox: Sandbox) -> Self {
        Container::Wasm(AsyncSandbox::new(sandbox))
    }
}

impl Container {
    /// True when it must be destroyed (a developer or system error ended it).
    pub fn is_retired(&self) -> bool {
        match self {
            Container::Wasm(sandbox) => sandbox.is_retired(),
            Container::Docker(container) => container.is_retired(),
        }
    }

    /// Sets the memory limit of a Wasm stem cell being specialized. A Docker
    /// container keeps the limit it was created with (its stem cell's, at
    /// least the action's).
    pub fn set_memory_limit(&mut self, memory_mb: u64) {
        if let Container::Wasm(sandbox) = self {
            sandbox.set_memory_limit(memory_mb);
        }
    }

    /// OpenWhisk's `/init`, once.
    pub async fn init(
        &mut self,
        args: InitArgs,
        limits: SandboxLimits,
    ) -> Result<Duration, InitError> {
        match self {
            Container::Wasm(sandbox) => sandbox.init(args, limits).await.map_err(InitError::Failed),
            Container::Docker(container) => container.init(args, limits).await,
        }
    }

    /// OpenWhisk's `/run`. `Err`: reschedule the activation, with why.
    pub async fn run(
        &mut self,
        context: ActivationContext,
        params: Map<String, Value>,
        limits: SandboxLimits,
    ) -> Result<RunReport, ContainerError> {
        match self {
            Container::Wasm(sandbox) => Ok(sandbox.run(context, params, limits).await),
            Container::Docker(container) => container.run(context, params, limits).await,
        }
    }

    /// Pauses it on its way to the warm cache (`docker pause`).
    pub async fn pause(&self) -> Result<(), ContainerError> {
        match self {
            Container::Wasm(_) => Ok(()),
            Container::Docker(container) => container.pause().await,
        }
    }

    /// Resumes it out of the warm cache (`docker unpause`).
    pub async fn resume(&self) -> Result<(), ContainerError> {
        match self {
            Container::Wasm(_) => Ok(()),
            Container::Docker(container) => container.resume().await,
        }
    }

    /// Destroys it, waiting for Docker to remove a container.
    pub async fn destroy(self) {
        match self {
            Container::Wasm(sandbox) => drop(sandbox),
            Container::Docker(container) => container.destroy().await,
        }
    }
}

/// A container that runs outside the process (a Docker container), as the
/// pool drives it: OpenWhisk's `/init` and `/run`, pause, resume, removal.
#[async_trait::async_trait]
pub trait ExternalContainer: Send + Sync + std::fmt::Debug {
    /// True when it must be destroyed (a developer or system error ended it).
    fn is_retired(&self) -> bool;

    /// OpenWhisk's `/init`, once.
    async fn init(&mut self, args: InitArgs, limits: SandboxLimits) -> Result<Duration, InitError>;

    /// OpenWhisk's `/run`. `Err`: reschedule the activation, with why.
    async fn run(
        &mut self,
        context: ActivationContext,
        params: Map<String, Value>,
        limits: SandboxLimits,
    ) -> Result<RunReport, ContainerError>;

    /// Pauses it on its way to the warm cache.
    async fn pause(&self) -> Result<(), ContainerError>;

    /// Resumes it out of the warm cache.
    async fn resume(&self) -> Result<(), ContainerError>;

    /// Removes it, waiting for the removal.
    async fn destroy(self: Box<Self>);
}

/// Where the pool gets its [`ExternalContainer`]s (the Docker daemon).
#[async_trait::async_trait]
pub trait ContainerHost: Send + Sync + std::fmt::Debug {
    /// False when the backend is disabled (`[docker] enabled = false`).
    fn enabled(&self) -> bool;

    /// Connects ahead of the first container (a predecessor's leftovers go
    /// now, not at the first image action). `Err`: not reachable now.
    async fn connect(&self) -> Result<(), ContainerError>;

    /// Creates a container of `image` for sandbox `sandbox_id`.
    async fn create(
        &self,
        sandbox_id: u64,
        kind: &str,
        image: &str,
        memory_mb: u64,
    ) -> Result<Container, ContainerError>;

    /// Refuses new containers and waits (at most `wait`) until the ones
    /// being created are settled: handed over, or removed.
    async fn close(&self, wait: Duration);

    /// Removes whatever containers of this invoker remain (at shutdown),
    /// each removal awaited; nothing when never connected.
    async fn remove_all(&self) -> Result<(), ContainerError>;
}

/// The host of a pool with no Docker backend: image kinds fail to start
/// with a clear error, the reason there is none.
#[derive(Debug, Clone, Copy)]
pub struct NoContainers {
    reason: &'static str,
}

impl NoContainers {
    /// No containers, for `reason` (what an image kind's creation says).
    pub const fn because(reason: &'static str) -> Self {
        NoContainers { reason }
    }
}

impl Default for NoContainers {
    /// Disabled by the configuration ([`NO_CONTAINERS`]).
    fn default() -> Self {
        NoContainers::because(NO_CONTAINERS)
    }
}

#[async_trait::async_trait]
impl ContainerHost for NoContainers {
    fn enabled(&self) -> bool {
        false
    }

    async fn connect(&self) -> Result<(), ContainerError> {
        Err(ContainerError::message(self.reason))
    }

    async fn create(&self, _: u64, _: &str, _: &str, _: u64) -> Result<Container, ContainerError> {
        Err(ContainerError::message(self.reason))
    }

    async fn close(&self, _: Duration) {}

    async fn remove_all(&self) -> Result<(), ContainerError> {
        Ok(())
    }
}

/// Why an image kind cannot start without a Docker backend.
pub const NO_CONTAINERS: &str = "the Docker backend is disabled ([docker] enabled = false), so actions of image kinds cannot run";
