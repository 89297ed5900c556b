//! `wasmwhisk standalone`: controller, scheduler and invoker in one process,
//! with no server to install (docs/architecture.md#modes).
//!
//! The same pool as a cluster's invoker runs here, wired to in-process
//! implementations of its ports: the SQLite [`Database`] stores actions and
//! activation records, a [`LocalQueue`] per action carries activations to
//! the sandboxes that pull them, a [`LocalMessenger`] carries the pool's acks
//! to the [`Controller`], and a [`LocalClusterState`] holds the keys the pool
//! would write to etcd. The REST API ([`crate::api`]) serves on
//! `127.0.0.1:{port}`.
//!
//! # Files in the data directory
//! - `wasmwhisk.db` (+ its WAL): namespaces, actions, activation records;
//! - `cache/`: compiled components;
//! - `guest.auth` (0600): the `guest` namespace's key, generated on first
//!   start — the database keeps only its hash;
//! - `wskprops` (0600): `APIHOST` and `AUTH` for the CLI, rewritten at every
//!   start (the port may change);
//! - `admin.auth` (0600): `admin:{secret}`, the admin API's credentials.
//!
//! # Shutdown
//! On SIGINT or SIGTERM: new invokes get 503, in-flight activations finish
//! within `[controller] shutdown-grace`, activations still queued are
//! recorded as failed, and open requests get their answers before the
//! server stops.

pub use crate::signal::shutdown_signal;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::api::admin::AdminState;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::controller::{
    Completions, Controller, ControllerPorts, ControllerSettings, RecordingStore,
};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::pool::local::{LocalClusterState, LocalMessenger};
use crate::pool::ports::ActivationStore;
use crate::pool::queue::LocalQueue;
use crate::pool::queue_bytes::ByteLimits;
use crate::pool::{PoolHandle, PoolPorts, PoolSettings};
use crate::protocol::{
    ByteSize, ControllerInstanceId, EtcdKeys, InvokerInstanceId, SchedulerInstanceId,
};
use crate::store::Database;

/// The namespace created on first start.
pub const GUEST: &str = "guest";

/// Writes `contents` to `path` readable by the owner only (0600), through a
/// temporary file and a rename, so a crash never leaves half a file.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The guest key: created with the namespace on first start and kept in
/// `guest.auth`; `None` if the namespace exists but the file is gone.
fn guest_key(db: &Database, data_dir: &Path) -> Result<Option<String>> {
    let file = data_dir.join(crate::config::layout::files::GUEST_KEY);
    if let Some(created) = db
        .ensure_namespace(GUEST)
        .context("creating the guest namespace")?
    {
        let key = created.api_key();
        write_private(&file, &format!("{key}\n"))?;
        println!("guest key: {key}");
        return Ok(Some(key));
    }
    match std::fs::read_to_string(&file) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(_) => {
            tracing::warn!(file = %file.display(), "the guest key file is missing; the guest namespace's key cannot be shown (create another namespace with `wasmwhisk namespace create`)");
            Ok(None)
        }
    }
}

/// The admin API's `user:password`, generated once.
pub(crate) fn admin_auth(data_dir: &Path) -> Result<String> {
    let file = data_dir.join(crate::config::layout::files::ADMIN);
    if let Ok(text) = std::fs::read_to_string(&file)
        && text.trim().contains(':')
    {
        return Ok(text.trim().to_string());
    }
    let auth = format!("admin:{}", crate::store::generate_key()?);
    write_private(&file, &format!("{auth}\n"))?;
    Ok(auth)
}

/// The owner label of a standalone server's Docker containers: one per data
/// directory, so a restart after a crash removes exactly its own leftovers,
/// and two servers with different data directories never touch each
/// other's containers.
fn standalone_owner(data_dir: &Path) -> String {
    let canonical = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    format!("standalone-{}", &hash.to_hex()[..12])
}

/// Runs standalone mode until SIGINT or SIGTERM.
pub async fn run(config: Config, data_dir: PathBuf) -> Result<()> {
    let started = Instant::now();
    create_private_dir(&data_dir)?;
    let (db, recovery) = tokio::task::block_in_place(|| {
        Database::open(
            &data_dir.join(crate::config::layout::files::DATABASE),
            &config.store,
        )
    })
    .context("opening the database")?;
    if recovery.failed_activations > 0 {
        tracing::warn!(
            failed = recovery.failed_activations,
            "activations in flight at the last stop were recorded as failed"
        );
    }
    let guest = guest_key(&db, &data_dir)?;
    let admin = admin_auth(&data_dir)?;

    let engine = Arc::new(
        Engine::new(
            config.to_engine_config(),
            &crate::config::layout::cache_dir(&data_dir),
        )
        .context("starting the engine")?,
    );
    let settings = PoolSettings::from_config(&config);
    let owner = config
        .docker
        .owner
        .trim()
        .is_empty()
        .then(|| standalone_owner(&data_dir));
    let containers = super::containers(&config, owner);
    let metrics = Arc::new(Metrics::new());
    let completions = Completions::new(metrics.clone());
    let records: Arc<dyn ActivationStore> = Arc::new(RecordingStore::new(
        Arc::new(db.clone()),
        completions.clone(),
    ));
    let queue = Arc::new(LocalQueue::with_byte_limits(ByteLimits {
        total: config.controller.queue_max_bytes.as_usize(),
        per_namespace: config.controller.queue_max_bytes_per_namespace.as_usize(),
    }));
    let cluster = Arc::new(LocalClusterState::new());
    let (messenger, bus) = LocalMessenger::new();
    let keys = EtcdKeys::default();
    let invoker = InvokerInstanceId::new(
        config.invoker.id,
        ByteSize::from_mb(settings.user_memory_mb),
    );
    let pool = PoolHandle::start(
        engine.clone(),
        invoker,
        keys.clone(),
        settings,
        PoolPorts {
            actions: Arc::new(db.clone()),
            activations: records.clone(),
            queue: queue.clone(),
            messenger: Arc::new(messenger),
            cluster: cluster.clone(),
            containers,
        },
    );
    pool.enable();
    let controller = Controller::start(
        ControllerPorts {
            dispatch: Arc::new(pool.clone()),
            queues: queue,
            bus,
            journal: Arc::new(db.clone()),
            records,
            completions,
            cluster,
            keys,
            id: ControllerInstanceId::first(),
            scheduler: SchedulerInstanceId::first(),
            completions_from_acks: false,
        },
        ControllerSettings::from_config(&config.controller),
    );
    let grace = config.controller.shutdown_grace;
    let port = config.invoker.port;
    let state = Arc::new(AppState {
        store: Arc::new(db),
        controller: controller.clone(),
        engine,
        config: Arc::new(config),
        metrics: metrics.clone(),
        admin: AdminState {
            pool: Some(pool),
            metrics,
            admin_auth: admin.into(),
        },
    });

    let listener = listen_and_announce(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "standalone",
        &data_dir,
        guest.as_deref(),
        started,
    )
    .await?;

    let http = state.config.http.clone();
    serve_until_signal(listener, api::router(state), &http, grace, async move {
        tracing::info!("shutting down: finishing in-flight activations");
        controller.shutdown(grace).await;
    })
    .await
}

/// Binds `addr`; writes `{data_dir}/wskprops` (the API host and the
/// `guest` key, for the CLI) when the key is known; and prints
/// `wasmwhisk {name}: listening on http://{addr}` — the line scripts and
/// tests wait for.
pub(crate) async fn listen_and_announce(
    addr: SocketAddr,
    name: &str,
    data_dir: &Path,
    guest: Option<&str>,
    started: Instant,
) -> Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let apihost = format!("http://{addr}");
    if let Some(key) = guest {
        write_private(
            &data_dir.join(crate::config::layout::files::PROPS),
            &format!("APIHOST={apihost}\nAUTH={key}\n"),
        )?;
    }
    tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "serving");
    println!("wasmwhisk {name}: listening on {apihost}");
    let _ = std::io::stdout().flush();
    Ok(listener)
}

/// Serves `router` on `listener` under the bounds of `[http]`
/// ([`api::server`]) until SIGINT or SIGTERM; then runs `drain` (stop
/// intake, finish the work in hand) while open requests still get their
/// answers, and stops serving once it is done; connections still open
/// `grace` after that are closed.
pub(crate) async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    http: &crate::config::HttpConfig,
    grace: std::time::Duration,
    drain: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = tokio::spawn(async move {
        shutdown_signal().await;
        drain.await;
        let _ = stopped_tx.send(());
    });
    api::server::serve(listener, router, http, grace, async move {
        let _ = stopped_rx.await;
    })
    .await;
    let _ = drain.await;
    tracing::info!("stopped");
    Ok(())
}

/// Makes the data directory (0700 when it is new).
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))
}
