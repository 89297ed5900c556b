//! The pool's [`ContainerHost`] on a Docker daemon, and Docker containers
//! as the pool's [`ExternalContainer`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use wasmwhisk_core::pool::container::{
    Container, ContainerError, ContainerHost, ExternalContainer, InitError,
};
use wasmwhisk_core::sync::lock;
use wasmwhisk_sandbox::RunReport;
use wasmwhisk_sandbox::action::{ActivationContext, InitArgs, SandboxLimits};

use crate::{
    ContainerInitError, ContainerSpec, Docker, DockerContainer, DockerError, DockerSettings,
};

/// The pool's way to Docker: connected on first use and again after a
/// failure, so image kinds start working once the daemon is up, and Wasm
/// kinds never wait for it. The first connection of the process removes
/// the containers a crashed predecessor left (those with this invoker's
/// owner label) before any container is created. At shutdown,
/// [`DockerPort::close`] refuses new containers and waits for those being
/// created, so the final clean-up sees every one.
pub struct DockerPort {
    settings: Option<DockerSettings>,
    /// Serializes connecting (and the first clean-up); never held by a
    /// reader of the connected client.
    connecting: tokio::sync::Mutex<()>,
    client: std::sync::Mutex<Option<Docker>>,
    cleaned: AtomicBool,
    closed: AtomicBool,
    /// Containers being created right now.
    creating: AtomicUsize,
    settled: tokio::sync::Notify,
}

/// How long connecting to the daemon (and removing leftovers) may take
/// before image kinds fail with an error: a wedged daemon must not stall
/// creations, nor the invoker's shutdown.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for DockerPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerPort")
            .field("enabled", &self.settings.is_some())
            .finish()
    }
}

/// Counts a creation in flight; wakes [`DockerPort::close`] when it ends.
struct Creating<'a>(&'a DockerPort);

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        if self.0.creating.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

impl DockerPort {
    /// A port that connects with `settings`; `None`: Docker is disabled.
    pub fn new(settings: Option<DockerSettings>) -> Arc<DockerPort> {
        Arc::new(DockerPort {
            settings,
            connecting: tokio::sync::Mutex::new(()),
            client: std::sync::Mutex::new(None),
            cleaned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            creating: AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
        })
    }

    /// True unless `[docker] enabled = false`.
    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// The connected daemon, connecting (and, the first time, removing
    /// leftovers) if needed, within [`CONNECT_TIMEOUT`].
    pub async fn get(&self) -> Result<Docker, String> {
        let Some(settings) = &self.settings else {
            return Err(
                "the Docker backend is disabled ([docker] enabled = false), so actions of image kinds cannot run"
                    .to_string(),
            );
        };
        if let Some(connected) = self.connected() {
            return Ok(connected);
        }
        let _one = self.connecting.lock().await;
        if let Some(connected) = self.connected() {
            return Ok(connected);
        }
        let host = settings
            .host
            .as_deref()
            .unwrap_or("the local Docker socket");
        let work = async {
            let connected = Docker::connect(settings.clone())
                .await
                .map_err(|e| e.to_string())?;
            if !self.cleaned.load(Ordering::SeqCst) {
                match connected.remove_owned().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        removed = n,
                        owner = %settings.owner,
                        "removed containers a previous run of this invoker left behind"
                    ),
                    Err(e) => return Err(e.to_string()),
                }
                self.cleaned.store(true, Ordering::SeqCst);
            }
            Ok(connected)
        };
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, work)
            .await
            .map_err(|_| {
                format!(
                    "Docker did not answer at {host} within {} s (is the daemon wedged?)",
                    CONNECT_TIMEOUT.as_secs()
                )
            })??;
        *lock(&self.client) = Some(connected.clone());
        Ok(connected)
    }

    /// The daemon if already connected; never waits.
    pub fn connected(&self) -> Option<Docker> {
        lock(&self.client).clone()
    }

    /// Creates a container of `image` for sandbox `sandbox_id`.
    pub async fn create(
        &self,
        sandbox_id: u64,
        kind: &str,
        image: &str,
        memory_mb: u64,
    ) -> Result<Container, String> {
        const CLOSED: &str = "the invoker is shutting down";
        if self.closed.load(Ordering::SeqCst) {
            return Err(CLOSED.to_string());
        }
        self.creating.fetch_add(1, Ordering::SeqCst);
        let _counted = Creating(self);
        let docker = self.get().await?;
        let spec = ContainerSpec {
            sandbox_id,
            kind: kind.to_string(),
            image: image.to_string(),
            memory_mb,
        };
        match docker.create(spec).await {
            // Closed meanwhile: the final clean-up may have missed it.
            Ok(container) if self.closed.load(Ordering::SeqCst) => {
                container.destroy().await;
                Err(CLOSED.to_string())
            }
            Ok(container) => Ok(Container::Docker(Box::new(container))),
            Err(error) => {
                if matches!(error, DockerError::Unavailable(_)) {
                    // Connect again next time (the daemon may come back).
                    *lock(&self.client) = None;
                }
                Err(error.to_string())
            }
        }
    }

    /// Refuses new containers and waits (at most `wait`) until the ones
    /// being created are settled: handed over, or removed.
    pub async fn close(&self, wait: Duration) {
        self.closed.store(true, Ordering::SeqCst);
        let settled = async {
            loop {
                let notified = self.settled.notified();
                if self.creating.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(wait, settled).await.is_err() {
            tracing::warn!(
                "containers still being created at shutdown; the next start removes them"
            );
        }
    }
}

/// The Docker backend's settings from the configuration: `[docker]`, and the
/// pool's memory and CPUs for container limits. The owner label defaults to
/// `invoker{N}`; standalone mode sets its own.
pub fn docker_settings(config: &wasmwhisk_core::config::Config) -> DockerSettings {
    let docker = &config.docker;
    let nonempty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    DockerSettings {
        host: nonempty(&docker.host),
        owner: nonempty(&docker.owner).unwrap_or_else(|| format!("invoker{}", config.invoker.id)),
        network: docker.network.clone(),
        api_host: nonempty(&docker.api_host)
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", config.invoker.port)),
        user_memory_mb: config.container_pool.user_memory.as_mb(),
        user_cpus: config.container_pool.user_cpus,
        max_result_bytes: config.to_engine_config().max_result_bytes,
    }
}

#[async_trait::async_trait]
impl ContainerHost for DockerPort {
    fn enabled(&self) -> bool {
        DockerPort::enabled(self)
    }

    async fn connect(&self) -> Result<(), ContainerError> {
        self.get()
            .await
            .map(|_| ())
            .map_err(ContainerError::Message)
    }

    async fn create(
        &self,
        sandbox_id: u64,
        kind: &str,
        image: &str,
        memory_mb: u64,
    ) -> Result<Container, ContainerError> {
        DockerPort::create(self, sandbox_id, kind, image, memory_mb)
            .await
            .map_err(ContainerError::Message)
    }

    async fn close(&self, wait: Duration) {
        DockerPort::close(self, wait).await
    }

    async fn remove_all(&self) -> Result<(), ContainerError> {
        match self.connected() {
            Some(docker) => docker
                .remove_owned()
                .await
                .map(|_| ())
                .map_err(ContainerError::source),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl ExternalContainer for DockerContainer {
    fn is_retired(&self) -> bool {
        DockerContainer::is_retired(self)
    }

    async fn init(&mut self, args: InitArgs, limits: SandboxLimits) -> Result<Duration, InitError> {
        DockerContainer::init(self, args, limits)
            .await
            .map_err(|error| match error {
                ContainerInitError::Failed(failure) => InitError::Failed(failure),
                ContainerInitError::Reschedule(why) => InitError::Reschedule(why.0),
            })
    }

    async fn run(
        &mut self,
        context: ActivationContext,
        params: Map<String, Value>,
        limits: SandboxLimits,
    ) -> Result<RunReport, ContainerError> {
        DockerContainer::run(self, context, params, limits)
            .await
            .map_err(|why| ContainerError::Message(why.0))
    }

    async fn pause(&self) -> Result<(), ContainerError> {
        DockerContainer::pause(self)
            .await
            .map_err(ContainerError::source)
    }

    async fn resume(&self) -> Result<(), ContainerError> {
        DockerContainer::resume(self)
            .await
            .map_err(ContainerError::source)
    }

    async fn destroy(self: Box<Self>) {
        DockerContainer::destroy(*self).await
    }
}
