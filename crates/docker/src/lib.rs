//! The Docker backend: actions that are not Wasm (blackbox images, kinds
//! mapped to an image) run in real Docker containers, driven with
//! OpenWhisk's action container protocol (docs/openwhisk.md §6).
//!
//! ```text
//!   Docker::create(spec)        docker create + start, bridge IP known,
//!        │                      log follower started           (a stem cell)
//!        ▼ init(args)           POST /init once
//!   Initialized ──run──▶ Initialized     success or application error
//!        │  ▲
//!   pause│  │resume             docker pause / unpause (warm, idle)
//!        ▼  │
//!      Paused
//!        │
//!        └─init fails / run: developer error, timeout, memory─▶ Retired
//!                                                   (the pool destroys it)
//!   destroy / drop: docker rm -f
//! ```
//!
//! A [`DockerContainer`] is the Docker counterpart of a Wasm
//! [`Sandbox`](wasmwhisk_sandbox::Sandbox): its `init` and `run` return the same
//! [`InitFailure`](wasmwhisk_sandbox::InitFailure) and
//! [`RunReport`](wasmwhisk_sandbox::RunReport), classified with the same
//! [`RunResponse`](wasmwhisk_sandbox::RunResponse) rules and
//! OpenWhisk messages, so the pool treats both alike. Two outcomes exist
//! only here: a 503 or a refused connection on `/run` is a [`Reschedule`]
//! (the container is broken, not the activation), and Docker itself may be
//! missing ([`DockerError::Unavailable`]).
//!
//! Containers are reached at their IP on the Docker network (the bridge,
//! `172.17.x.y:8080`), which the host routes to directly; no port is
//! published. Every container carries the labels `wasmwhisk.owner`,
//! `wasmwhisk.sandbox` and `wasmwhisk.kind`, and is named
//! `wasmwhisk_<owner>_<sandbox id>`, so [`Docker::remove_owned`] finds the
//! leftovers of a crashed invoker.
//!
//! Logs come from `docker logs --follow`, started at creation: each
//! activation takes its lines up to the sentinel
//! `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX` the proxy writes on stdout and
//! stderr after each `/run` (and after a failed `/init`); init's lines go to
//! the first activation.

mod connect;
mod container;
mod follower;
mod http;
mod logbuf;
mod port;
mod protocol;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, EventsOptions, ListContainersOptions, RemoveContainerOptions,
};
use futures_util::StreamExt;

pub use container::{ContainerInitError, DockerContainer, Reschedule};
pub use logbuf::{LOG_FAILURE, SENTINEL};
pub use port::{DockerPort, docker_settings};

use connect::{negotiate, unavailable_or, unix_timestamp};
use follower::LogFollower;

/// The label naming the invoker that owns a container.
pub const OWNER_LABEL: &str = "wasmwhisk.owner";
/// The label carrying the pool's sandbox id of a container.
pub const SANDBOX_LABEL: &str = "wasmwhisk.sandbox";
/// The label carrying the action kind a container runs.
pub const KIND_LABEL: &str = "wasmwhisk.kind";

/// The port the action proxy listens on in every container.
const PROXY_PORT: u16 = 8080;
/// The local daemon's socket when neither the settings nor `DOCKER_HOST` name one.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long to wait for the daemon to log a container's `oom` event after
/// the proxy answered: the kernel's kill reaches the daemon through
/// containerd, a few milliseconds after the action's process died.
const OOM_GRACE: Duration = Duration::from_millis(300);

/// How the Docker backend is set up.
#[derive(Clone, Debug)]
pub struct DockerSettings {
    /// The daemon: `unix:///path` or `tcp://host:port`. Default `None`:
    /// `DOCKER_HOST`, else `unix:///var/run/docker.sock`.
    pub host: Option<String>,
    /// The identity labelled on every container (`invoker{N}`,
    /// `standalone-<12 hex>`); [`Docker::remove_owned`] removes by it.
    /// Default `"wasmwhisk"`.
    pub owner: String,
    /// The Docker network containers join. Default `"bridge"`.
    pub network: String,
    /// `__OW_API_HOST` of every container. Default empty.
    pub api_host: String,
    /// The invoker's user memory, MiB: a container's CPU shares are its
    /// fraction of it. Default 2048.
    pub user_memory_mb: u64,
    /// The CPUs all containers share (`user-cpus`); each gets its memory's
    /// fraction of them as a hard limit. Default `None`: shares only.
    pub user_cpus: Option<f64>,
    /// Largest result a `/run` may return, bytes (the same payload limit as
    /// the Wasm engine's `max_result_bytes`). Default 1 MiB.
    pub max_result_bytes: usize,
}

impl Default for DockerSettings {
    fn default() -> Self {
        DockerSettings {
            host: None,
            owner: "wasmwhisk".into(),
            network: "bridge".into(),
            api_host: String::new(),
            user_memory_mb: 2048,
            user_cpus: None,
            max_result_bytes: 1 << 20,
        }
    }
}

/// What to create.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// The pool's id of this sandbox (label and name).
    pub sandbox_id: u64,
    /// The action kind it runs (label).
    pub kind: String,
    /// The image, e.g. `wasmwhisk/action-proxy:latest`; must exist locally.
    pub image: String,
    /// Memory limit, MiB (swap limited to the same).
    pub memory_mb: u64,
}

/// Why the Docker backend could not do something.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DockerError {
    /// No Docker daemon answers: not running, or the host is wrong. The
    /// message names the host.
    #[error("{0}")]
    Unavailable(String),
    /// The image is not on this host (there is no registry to pull from).
    #[error(
        "the Docker image '{0}' is not on this host, and wasmwhisk pulls from no registry: \
         build it locally (runtimes/docker/build.sh builds wasmwhisk/action-proxy:latest; \
         runtimes/docker/build-action.sh builds an action image)"
    )]
    ImageMissing(String),
    /// Creating or starting a container failed.
    #[error("could not create the container: {0}")]
    Create(String),
    /// Another request to the daemon failed (list, remove, pause, inspect…).
    #[error("the Docker daemon failed: {0}")]
    Daemon(String),
}

/// A connection to the Docker daemon. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Docker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: bollard::Docker,
    http: reqwest::Client,
    settings: DockerSettings,
    /// The daemon's address, for messages.
    host: String,
}

impl Docker {
    /// Connects to the daemon and agrees on an API version (the daemon's,
    /// when it is older than bollard's default); fails with
    /// [`DockerError::Unavailable`] when no daemon answers.
    pub async fn connect(settings: DockerSettings) -> Result<Docker, DockerError> {
        let host = settings
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let client = negotiate(&host).await?;
        client
            .ping()
            .await
            .map_err(|e| unavailable_or(&host, e, DockerError::Daemon))?;
        let http = http::client().map_err(|e| {
            DockerError::Daemon(format!(
                "could not set up the HTTP client for containers: {e}"
            ))
        })?;
        let version = client.client_version();
        tracing::debug!(%host, api = %format!("{}.{}", version.major_version, version.minor_version), "connected to Docker");
        Ok(Docker {
            inner: Arc::new(Inner {
                client,
                http,
                settings,
                host,
            }),
        })
    }

    /// The settings it was connected with.
    pub fn settings(&self) -> &DockerSettings {
        &self.inner.settings
    }

    /// The API version agreed with the daemon, e.g. `1.41`.
    pub fn api_version(&self) -> String {
        let v = self.inner.client.client_version();
        format!("{}.{}", v.major_version, v.minor_version)
    }

    /// Removes (force) every container labelled with this owner, running,
    /// paused or stopped: the leftovers of a crash at start, everything at
    /// shutdown. Returns how many it removed.
    pub async fn remove_owned(&self) -> Result<usize, DockerError> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{OWNER_LABEL}={}", self.inner.settings.owner)],
        );
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..ListContainersOptions::default()
        };
        let found = self
            .inner
            .client
            .list_containers(Some(options))
            .await
            .map_err(|e| self.error(e, DockerError::Daemon))?;
        // Every container is tried, whatever happened to the one before:
        // one failure must not leave the rest running.
        let mut removed = 0;
        let mut first_error = None;
        for id in found.into_iter().filter_map(|c| c.id) {
            match self.remove(&id).await {
                Ok(()) => removed += 1,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(removed),
        }
    }

    /// True when `image` is on this host.
    pub async fn image_exists(&self, image: &str) -> Result<bool, DockerError> {
        match self.inner.client.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.error(e, DockerError::Daemon)),
        }
    }

    /// Creates and starts a container of `spec.image` with the memory and
    /// CPU limits, labels and name of the module doc, learns its address and
    /// starts following its logs. The container is a stem cell: `init`
    /// gives it code. On any failure after creation it is removed.
    pub async fn create(&self, spec: ContainerSpec) -> Result<DockerContainer, DockerError> {
        let settings = &self.inner.settings;
        let name = protocol::container_name(&settings.owner, spec.sandbox_id);
        let memory = i64::try_from(spec.memory_mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX);
        let labels = HashMap::from([
            (OWNER_LABEL.to_string(), settings.owner.clone()),
            (SANDBOX_LABEL.to_string(), spec.sandbox_id.to_string()),
            (KIND_LABEL.to_string(), spec.kind.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(vec![format!("__OW_API_HOST={}", settings.api_host)]),
            labels: Some(labels),
            host_config: Some(HostConfig {
                memory: Some(memory),
                memory_swap: Some(memory),
                cpu_shares: Some(protocol::cpu_shares(
                    spec.memory_mb,
                    settings.user_memory_mb,
                )),
                nano_cpus: protocol::nano_cpus(
                    settings.user_cpus,
                    spec.memory_mb,
                    settings.user_memory_mb,
                ),
                network_mode: Some(settings.network.clone()),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..CreateContainerOptions::default()
        };
        let client = &self.inner.client;
        let created = client
            .create_container(Some(options), body)
            .await
            .map_err(|e| match e {
                // A 404 names what is missing: the image, or the network.
                BollardError::DockerResponseServerError {
                    status_code: 404,
                    message,
                } if message.contains("network") => {
                    DockerError::Create(format!("the Docker network is missing: {message}"))
                }
                BollardError::DockerResponseServerError {
                    status_code: 404, ..
                } => DockerError::ImageMissing(spec.image.clone()),
                BollardError::DockerResponseServerError {
                    status_code: 409,
                    message,
                } => DockerError::Create(format!(
                    "a container named {name} already exists (a leftover of a crash? \
                     Docker::remove_owned removes them): {message}"
                )),
                other => self.error(other, |m| DockerError::Create(format!("{name}: {m}"))),
            })?;
        let id = created.id;
        match self.start_and_address(&id).await {
            Ok(ip) => Ok(DockerContainer::new(
                self.clone(),
                id.clone(),
                name,
                format!("http://{ip}:{PROXY_PORT}"),
                LogFollower::start(client.clone(), &id),
            )),
            Err(error) => {
                if let Err(e) = self.remove(&id).await {
                    tracing::warn!(container = %id, error = %e, "removing a container that failed to start failed");
                }
                Err(error)
            }
        }
    }

    /// Starts container `id` and returns its IP on the configured network.
    async fn start_and_address(&self, id: &str) -> Result<String, DockerError> {
        let client = &self.inner.client;
        let create_error = |e| self.error(e, |m| DockerError::Create(format!("{id}: {m}")));
        client
            .start_container(id, None)
            .await
            .map_err(create_error)?;
        let inspected = client
            .inspect_container(id, None)
            .await
            .map_err(create_error)?;
        let network = &self.inner.settings.network;
        inspected
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut networks| networks.remove(network))
            .and_then(|endpoint| endpoint.ip_address)
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| {
                DockerError::Create(format!(
                    "container {id} has no IP address on the Docker network '{network}'"
                ))
            })
    }

    /// Removes container `id` (force); one already gone, or whose removal
    /// is already in progress (409), counts as removed.
    async fn remove(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptions {
            force: true,
            ..RemoveContainerOptions::default()
        };
        match self.inner.client.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(e) => Err(self.error(e, DockerError::Daemon)),
        }
    }

    /// True when the kernel killed a process of container `id` for memory
    /// since `since`. Docker sets `State.OOMKilled` only when the
    /// container's main process dies (the proxy, here, usually survives
    /// its action's process; newer daemons also set it on any kill), so the
    /// daemon's `oom` events are read as well, waiting up to [`OOM_GRACE`]
    /// for one the daemon has not logged yet.
    async fn oom_killed(&self, id: &str, since: SystemTime) -> bool {
        let client = &self.inner.client;
        let inspected = async {
            match client.inspect_container(id, None).await {
                Ok(inspected) => inspected.state.and_then(|s| s.oom_killed).unwrap_or(false),
                Err(error) => {
                    tracing::debug!(container = %id, %error, "inspecting a container failed");
                    false
                }
            }
        };
        let options = EventsOptions {
            since: Some(unix_timestamp(since)),
            until: Some(unix_timestamp(SystemTime::now() + OOM_GRACE)),
            filters: Some(HashMap::from([
                ("container".to_string(), vec![id.to_string()]),
                ("event".to_string(), vec!["oom".to_string()]),
            ])),
        };
        let mut events = client.events(Some(options));
        let event = async {
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) if event.action.as_deref() == Some("oom") => return true,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(container = %id, %error, "reading Docker events failed");
                        return false;
                    }
                }
            }
            false
        };
        let event = tokio::time::timeout(OOM_GRACE + Duration::from_secs(1), event);
        let (inspected, event) = tokio::join!(inspected, event);
        inspected || event.unwrap_or(false)
    }

    /// Maps a daemon error: a connection failure is `Unavailable`, anything
    /// else goes through `other`.
    fn error(&self, e: BollardError, other: impl FnOnce(String) -> DockerError) -> DockerError {
        unavailable_or(&self.inner.host, e, other)
    }
}
