//! `wasmwhisk controller`: the REST API and the scheduler of a cluster
//! (docs/architecture.md#modes, docs/cluster.md#scheduling), against NATS (JetStream on) and etcd.
//!
//! The same [`Controller`] as standalone mode, wired to the cluster's ports:
//! - the REST API reads and writes the shared [`NatsStore`] (keys, actions,
//!   code, activation records), so any controller answers any request;
//! - invokes go to the action's JetStream work queue ([`ClusterQueues`]):
//!   accepted once JetStream stored them;
//! - creations go to invokers chosen from etcd ([`NatsDispatch`]) over
//!   `whisk.invoker{N}`; acks come back on `whisk.creationAck{K}`;
//! - blocking invokes wait for the completion on `whisk.completed{K}`
//!   (with the store as the fallback);
//! - the controller's own lease key `{cluster}/instance/controller{K}/lease`
//!   tells the other controllers it is alive: each action queue is decided
//!   by one live controller.
//!
//! Data directory: `guest.auth` and `wskprops` (when this controller
//! created the `guest` namespace), `admin.auth`, and the compile cache used
//! to check `wasm` code at deployment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch};

use crate::api::admin::AdminState;
use crate::api::{self, AppState};
use crate::cluster::etcd::{ClusterMirror, EtcdClusterState, EtcdReader, EtcdSettings};
use crate::cluster::nats::{MalformedCount, NatsBus, NatsMessenger};
use crate::cluster::scheduling::{ClusterQueues, NatsDispatch, adopt_orphans};
use crate::config::Config;
use crate::controller::{
    Completions, Controller, ControllerPorts, ControllerSettings, NoJournal, RecordingStore,
};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::pool::local::Outgoing;
use crate::pool::ports::ActivationStore;
use crate::process::standalone::{
    GUEST, admin_auth, create_private_dir, listen_and_announce, serve_until_signal, write_private,
};
use crate::protocol::{ControllerInstanceId, EtcdKeys, SchedulerInstanceId};

/// How often a controller looks for queues it now leads but never saw.
const ADOPT_EVERY: Duration = Duration::from_secs(1);

/// How long the controller waits for its first view of etcd.
const FIRST_VIEW: Duration = Duration::from_secs(5);

/// Runs a cluster controller until SIGINT or SIGTERM; `bind` is the API's
/// address.
pub async fn run(config: Config, data_dir: PathBuf, bind: std::net::IpAddr) -> Result<()> {
    let started = Instant::now();
    create_private_dir(&data_dir)?;
    let number = config.invoker.id;
    let me = format!("controller{number}");
    let id = ControllerInstanceId::new(number.to_string()).context("the controller id")?;
    let scheduler = SchedulerInstanceId::new(number.to_string()).context("the scheduler id")?;

    let metrics = Arc::new(Metrics::new());
    let (bus, queue, store) = wasmwhisk_cluster::open_nats(&config, &metrics).await?;
    store.watch_actions();
    let keys = EtcdKeys::new(&config.etcd.cluster_name).context("the etcd cluster name")?;
    let etcd_settings = EtcdSettings::from_config(&config.etcd);
    let etcd = EtcdClusterState::connect(etcd_settings.clone(), &keys, &me)
        .await
        .with_context(|| format!("registering {me} in etcd"))?;
    let reader = EtcdReader::new(etcd_settings, keys.clone())
        .await
        .context("reading etcd")?;
    let mirror = ClusterMirror::start(reader);
    if let Err(e) = mirror.wait_ready(FIRST_VIEW).await {
        tracing::warn!(error = %e, "no view of etcd yet; scheduling starts once it comes");
    }

    let guest = match store.ensure_namespace(GUEST).await {
        Ok(Some(created)) => {
            let key = created.api_key();
            write_private(
                &data_dir.join(crate::config::layout::files::GUEST_KEY),
                &format!("{key}\n"),
            )?;
            println!("guest key: {key}");
            Some(key)
        }
        Ok(None) => std::fs::read_to_string(data_dir.join(crate::config::layout::files::GUEST_KEY))
            .ok()
            .map(|k| k.trim().to_string()),
        Err(e) => return Err(anyhow::anyhow!("creating the guest namespace: {e}")),
    };
    let admin = admin_auth(&data_dir)?;
    let engine = Arc::new(
        Engine::new(
            config.to_engine_config(),
            &crate::config::layout::cache_dir(&data_dir),
        )
        .context("starting the engine")?,
    );

    let completions = Completions::new(metrics.clone());
    let records: Arc<dyn ActivationStore> = Arc::new(RecordingStore::new(
        Arc::new(store.clone()),
        completions.clone(),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (outgoing, acks) = mpsc::unbounded_channel();
    forward_acks(&bus, &scheduler, &id, outgoing, &metrics).await?;
    tokio::spawn(queue.keeper().run(stop_rx.clone()));

    let dispatch = Arc::new(NatsDispatch::new(
        NatsMessenger::new(bus.clone()),
        mirror.clone(),
        keys.clone(),
        me.clone(),
    ));
    let controller = Controller::start(
        ControllerPorts {
            dispatch: dispatch.clone(),
            queues: Arc::new(ClusterQueues::new(queue.clone())),
            bus: acks,
            journal: Arc::new(NoJournal),
            records,
            completions,
            cluster: mirror.state(),
            keys,
            id,
            scheduler,
            completions_from_acks: true,
        },
        ControllerSettings::from_config(&config.controller),
    );
    {
        let controller = controller.clone();
        let store = store.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(ADOPT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => adopt_orphans(&controller, &queue, &dispatch, &store).await,
                    _ = stop.changed() => return,
                }
            }
        });
    }

    let grace = config.controller.shutdown_grace;
    let port = config.invoker.port;
    let state = Arc::new(AppState {
        store: Arc::new(store),
        controller: controller.clone(),
        engine,
        config: Arc::new(config),
        metrics: metrics.clone(),
        admin: AdminState {
            pool: None,
            metrics,
            admin_auth: admin.into(),
        },
    });
    let listener = listen_and_announce(
        SocketAddr::new(bind, port),
        &me,
        &data_dir,
        guest.as_deref(),
        started,
    )
    .await?;
    let http = state.config.http.clone();
    serve_until_signal(listener, api::router(state), &http, grace, async move {
        tracing::info!("shutting down");
        controller.shutdown(grace).await;
        let _ = stop_tx.send(true);
        if let Err(e) = etcd.shutdown().await {
            tracing::warn!(error = %e, "revoking the lease failed (it expires by itself)");
        }
    })
    .await
}

/// Feeds the creation acks for `scheduler` and the completions for
/// `controller` into `outgoing`, the controller's bus.
async fn forward_acks(
    bus: &NatsBus,
    scheduler: &SchedulerInstanceId,
    controller: &ControllerInstanceId,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    metrics: &Metrics,
) -> Result<()> {
    let acks = bus.creation_acks(scheduler).await?;
    let counted = MalformedCount::new(metrics.malformed_messages(acks.subject()));
    let mut acks = acks.counting_into(counted);
    let done = bus.completions(controller).await?;
    let counted = MalformedCount::new(metrics.malformed_messages(done.subject()));
    let mut done = done.counting_into(counted);
    let sid = scheduler.clone();
    let tx = outgoing.clone();
    tokio::spawn(async move {
        while let Some(ack) = acks.next().await {
            if tx
                .send(Outgoing::CreationAck(sid.clone(), Box::new(ack)))
                .is_err()
            {
                return;
            }
        }
    });
    let ctrl = controller.clone();
    tokio::spawn(async move {
        while let Some(ack) = done.next().await {
            if outgoing
                .send(Outgoing::Completion(ctrl.clone(), Box::new(ack)))
                .is_err()
            {
                return;
            }
        }
    });
    Ok(())
}
