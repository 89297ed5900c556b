//! The fixture of `wasmwhisk bench pool`: a pool started on the in-process
//! ports of [`wasmwhisk_core::pool::local`], the bench holding the other ends — the
//! action store it deploys to, the queue it pushes activations into, the bus
//! it reads acks from — and the messages it sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use wasmwhisk_core::pool::introspect::PoolMetrics;
use wasmwhisk_core::pool::local::{LocalActionStore, LocalClusterState, LocalMessenger, Outgoing};
use wasmwhisk_core::pool::ports::{ActivationStore, ExecutableAction};
use wasmwhisk_core::pool::queue::LocalQueue;
use wasmwhisk_core::pool::slot::WarmKey;
use wasmwhisk_core::pool::{PoolHandle, PoolPorts, PoolSettings};
use wasmwhisk_protocol::{
    self, AcknowledgementMessage, ActivationId, ActivationMessage, ByteSize,
    ContainerCreationAckMessage, ContainerCreationMessage, ContainerDeletionMessage,
    ControllerInstanceId, CreationId, DocRevision, EntityName, EntityPath, EtcdKeys, Identity,
    InvokerInstanceId, SchedulerInstanceId, WhiskActionMetaData,
};
use wasmwhisk_sandbox::engine::{CacheKey, Engine};

/// The namespace every bench action lives in and is invoked in.
pub(super) const NAMESPACE: &str = "guest";
/// The revision every bench action is deployed at.
const REVISION: &str = "1-abcdef";
/// The longest any single wait of the bench may take before it gives up.
const WAIT: Duration = Duration::from_secs(60);

/// A pool on in-process ports, and the ends of those ports the bench drives.
pub(super) struct Bench {
    pub(super) pool: PoolHandle,
    pub(super) queue: Arc<LocalQueue<ActivationMessage>>,
    pub(super) actions: Arc<LocalActionStore>,
    pub(super) cluster: Arc<LocalClusterState>,
    pub(super) bus: Bus,
}

impl Bench {
    /// Starts a pool (within a Tokio runtime) that stores records in `records`.
    pub(super) fn start(
        engine: &Arc<Engine>,
        settings: PoolSettings,
        records: Arc<dyn ActivationStore>,
    ) -> Bench {
        let queue = Arc::new(LocalQueue::new());
        let actions = Arc::new(LocalActionStore::new());
        let cluster = Arc::new(LocalClusterState::new());
        let (messenger, rx) = LocalMessenger::new();
        let ports = PoolPorts {
            actions: actions.clone(),
            activations: records,
            queue: queue.clone(),
            messenger: Arc::new(messenger),
            cluster: cluster.clone(),
            containers: Arc::new(wasmwhisk_core::pool::container::NoContainers::default()),
        };
        let invoker = InvokerInstanceId::new(0, ByteSize::from_mb(settings.user_memory_mb));
        let pool = PoolHandle::start(
            engine.clone(),
            invoker,
            EtcdKeys::default(),
            settings,
            ports,
        );
        Bench {
            pool,
            queue,
            actions,
            cluster,
            bus: Bus { rx },
        }
    }

    /// Deploys `name` (kind `wasm` with the Rust hello component, or `nodejs:20`).
    pub(super) fn deploy(
        &self,
        name: &str,
        kind: &str,
        memory_mb: u64,
        code: Arc<[u8]>,
        code_key: Option<CacheKey>,
    ) -> Result<Arc<ExecutableAction>> {
        let limits = wasmwhisk_protocol::ActionLimits {
            memory: memory_mb,
            timeout: 5_000,
            ..Default::default()
        };
        let meta = WhiskActionMetaData::code_action(
            EntityPath::namespace(EntityName::new(NAMESPACE)?),
            EntityName::new(name)?,
            kind,
            kind == "wasm",
            limits,
        );
        Ok(self.actions.put(ExecutableAction {
            meta,
            revision: DocRevision::new(REVISION),
            code,
            code_key,
        }))
    }

    /// Sends a creation message for `action` and waits for its success ack.
    pub(super) async fn create(&mut self, action: &ExecutableAction) -> Result<()> {
        let msg = creation(action)?;
        let id = msg.creation_id.clone();
        self.pool.create(msg).await;
        let ack = self.bus.creation_ack(&id).await?;
        ensure!(ack.is_success(), "the creation failed: {ack:?}");
        Ok(())
    }

    /// The pool's gauges.
    pub(super) async fn metrics(&self) -> Result<PoolMetrics> {
        Ok(self
            .pool
            .snapshot()
            .await
            .context("the pool stopped")?
            .metrics)
    }

    /// Waits until `check` holds for the pool's gauges, looking every `every`.
    pub(super) async fn until(
        &self,
        what: &str,
        every: Duration,
        check: impl Fn(&PoolMetrics) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let metrics = self.metrics().await?;
            if check(&metrics) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting until {what}: {metrics:?}");
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The receiving end of the in-process bus.
pub(super) struct Bus {
    rx: UnboundedReceiver<Outgoing>,
}

impl Bus {
    /// The next message on the bus.
    pub(super) async fn next(&mut self) -> Result<Outgoing> {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .context("no message on the bus for a minute")?
            .context("the bus closed")
    }

    /// Waits for the ack of creation `id` (other messages are dropped).
    pub(super) async fn creation_ack(
        &mut self,
        id: &CreationId,
    ) -> Result<ContainerCreationAckMessage> {
        loop {
            if let Outgoing::CreationAck(_, ack) = self.next().await?
                && &ack.creation_id == id
            {
                return Ok(*ack);
            }
        }
    }

    /// Waits for the completion ack of activation `id` (other messages are
    /// dropped); fails on a system error.
    pub(super) async fn completion(&mut self, id: &ActivationId) -> Result<()> {
        loop {
            if let Outgoing::Completion(_, ack) = self.next().await?
                && let Some((done, system_error)) = finished(&ack)
                && done == id
            {
                ensure!(!system_error, "activation {id} ended with a system error");
                return Ok(());
            }
        }
    }
}

/// The activation an ack completes, and whether it was a system error; `None`
/// for a result-only ack (its completion follows).
pub(super) fn finished(ack: &AcknowledgementMessage) -> Option<(&ActivationId, bool)> {
    match ack {
        AcknowledgementMessage::Combined(m) => {
            Some((m.response.activation_id(), m.is_system_error == Some(true)))
        }
        AcknowledgementMessage::Completion(m) => {
            Some((&m.activation_id, m.is_system_error == Some(true)))
        }
        AcknowledgementMessage::Result(_) => None,
    }
}

/// Settings for a bench pool: no stem cells, nothing pauses, drains at once.
pub(super) fn settings(user_memory_mb: u64) -> PoolSettings {
    PoolSettings {
        user_memory_mb,
        stem_cells: Vec::new(),
        pause_grace: Duration::from_secs(600),
        batch_deletion_size: 1 << 20,
        disable_retry: Duration::from_millis(100),
        ..PoolSettings::default()
    }
}

/// A creation message for `action`.
pub(super) fn creation(action: &ExecutableAction) -> Result<ContainerCreationMessage> {
    Ok(ContainerCreationMessage::for_action(
        NAMESPACE,
        &action.meta,
        action.revision.clone(),
        SchedulerInstanceId::new("0")?,
    ))
}

/// An activation of `action` with `{"name": "bench"}`.
pub(super) fn activation(action: &ExecutableAction, blocking: bool) -> Result<ActivationMessage> {
    Ok(ActivationMessage::for_action(
        &action.meta,
        action.revision.clone(),
        Identity::basic(NAMESPACE, "uuid-bench", "key-bench"),
        ControllerInstanceId::new("0")?,
        Some(json!({"name": "bench"})),
        blocking,
    ))
}

/// The queue `action`'s sandboxes pull from.
pub(super) fn key(action: &ExecutableAction) -> WarmKey {
    WarmKey {
        invocation_namespace: NAMESPACE.to_string(),
        action: action
            .meta
            .fully_qualified_name()
            .as_string_without_version(),
        revision: action.revision.to_string(),
    }
}

pub(super) fn deletion(action: &ExecutableAction) -> ContainerDeletionMessage {
    ContainerDeletionMessage::for_action(NAMESPACE, &action.meta, action.revision.clone())
}
