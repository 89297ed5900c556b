//! `wasmwhisk invoker --id N`: one invoker of a cluster (docs/architecture.md#modes),
//! against NATS (JetStream on) and etcd.
//!
//! The same pool as standalone mode, wired to the cluster's ports:
//! - creation and deletion messages come from `whisk.invoker{N}`;
//! - sandboxes pull their action's activations from its JetStream work
//!   queue and ack each only once its record is stored;
//! - actions and code load from the shared [`NatsStore`] (code cached in
//!   memory by digest, compiled components on disk in the data directory's
//!   compile cache, keyed by the code's digest); records go to it too;
//! - acks go out on `whisk.creationAck{sid}` and `whisk.completed{ctrl}`;
//! - health, memory and every sandbox's key go to etcd under the invoker's
//!   lease ([`EtcdClusterState`]).
//!
//! The invoker's own API (`/enable`, `/disable`, `/isEnabled`, `/pool`,
//! `/pool/count`, `/ping`, `/metrics`) serves on `{bind}:{port}`.
//!
//! # Shutdown
//! On SIGINT or SIGTERM the pool stops taking creations, lets in-flight
//! activations finish within `[controller] shutdown-grace`, publishes
//! `down`, and the lease is revoked (every key of this invoker goes at
//! once). Activations still queued stay in JetStream for the other
//! invokers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::api::admin::AdminState;
use crate::cluster::etcd::{EtcdClusterState, EtcdSettings};
use crate::cluster::nats::{MalformedCount, NatsMessenger};
use crate::config::Config;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::pool::{PoolHandle, PoolPorts, PoolSettings};
use crate::process::standalone::{
    admin_auth, create_private_dir, listen_and_announce, serve_until_signal,
};
use crate::protocol::{ByteSize, ContainerMessage, EtcdKeys, InvokerInstanceId};

/// Runs invoker `config.invoker.id` until SIGINT or SIGTERM; `bind` is its
/// API's address.
pub async fn run(config: Config, data_dir: PathBuf, bind: std::net::IpAddr) -> Result<()> {
    let started = Instant::now();
    create_private_dir(&data_dir)?;
    let settings = PoolSettings::from_config(&config);
    let mut invoker = InvokerInstanceId::new(
        config.invoker.id,
        ByteSize::from_mb(settings.user_memory_mb),
    );
    invoker.tags = config.invoker.tags.clone();
    invoker.dedicated_namespaces = config.invoker.dedicated_namespaces.clone();

    let metrics = Arc::new(Metrics::new());
    let (bus, queue, store) = wasmwhisk_cluster::open_nats(&config, &metrics).await?;
    let keys = EtcdKeys::new(&config.etcd.cluster_name).context("the etcd cluster name")?;
    let etcd = Arc::new(
        EtcdClusterState::connect(EtcdSettings::from_config(&config.etcd), &keys, &invoker)
            .await
            .with_context(|| format!("registering {invoker} in etcd"))?,
    );
    let engine = Arc::new(
        Engine::new(
            config.to_engine_config(),
            &crate::config::layout::cache_dir(&data_dir),
        )
        .context("starting the engine")?,
    );
    let admin = admin_auth(&data_dir)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(queue.keeper().run(stop_rx.clone()));
    let pool = PoolHandle::start(
        engine,
        invoker.clone(),
        keys,
        settings,
        PoolPorts {
            actions: Arc::new(store.clone()),
            activations: Arc::new(store),
            queue: Arc::new(queue),
            messenger: Arc::new(NatsMessenger::new(bus.clone())),
            cluster: etcd.clone(),
            containers: super::containers(&config, None),
        },
    );
    let messages = bus.container_messages(invoker.instance).await?;
    let counted = MalformedCount::new(metrics.malformed_messages(messages.subject()));
    let mut messages = messages.counting_into(counted);
    pool.enable();
    {
        let pool = pool.clone();
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                match message {
                    ContainerMessage::Creation(msg) => {
                        let pool = pool.clone();
                        tokio::spawn(async move { pool.create(*msg).await });
                    }
                    ContainerMessage::Deletion(msg) => pool.delete(*msg),
                }
            }
        });
    }

    let grace = config.controller.shutdown_grace;
    let port = config.invoker.port;
    let state = AdminState {
        pool: Some(pool.clone()),
        metrics,
        admin_auth: admin.into(),
    };
    let listener = listen_and_announce(
        SocketAddr::new(bind, port),
        &invoker.to_string(),
        &data_dir,
        None,
        started,
    )
    .await?;
    let http = config.http.clone();
    serve_until_signal(
        listener,
        crate::api::invoker_router(state),
        &http,
        grace,
        async move {
            tracing::info!("shutting down: finishing in-flight activations");
            pool.shutdown(grace).await;
            let _ = stop_tx.send(true);
            if let Err(e) = etcd.shutdown().await {
                tracing::warn!(error = %e, "revoking the lease failed (it expires by itself)");
            }
        },
    )
    .await
}
