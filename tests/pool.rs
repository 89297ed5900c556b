//! The pool end to end, in process: real sandboxes (Rust and JS guests built
//! from source), the in-process queue, stores, bus and cluster state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use wasmwhisk::pool::health::HealthState;
use wasmwhisk::pool::local::*;
use wasmwhisk::pool::ports::{ActivationStore, ExecutableAction};
use wasmwhisk::pool::prewarm::StemCellSpec;
use wasmwhisk::pool::queue::LocalQueue;
use wasmwhisk::pool::slot::WarmKey;
use wasmwhisk::pool::{PoolHandle, PoolPorts, PoolSettings};
use wasmwhisk::protocol::*;

const INVOKER: u32 = 0;

struct Fixture {
    pool: PoolHandle,
    queue: Arc<LocalQueue<ActivationMessage>>,
    actions: Arc<LocalActionStore>,
    records: Arc<LocalActivationStore>,
    cluster: Arc<LocalClusterState>,
    bus: UnboundedReceiver<Outgoing>,
    /// Completion acks seen while waiting for creation acks, and vice versa.
    completions: Vec<AcknowledgementMessage>,
    acks: Vec<ContainerCreationAckMessage>,
}

fn settings(user_memory_mb: u64) -> PoolSettings {
    PoolSettings {
        user_memory_mb,
        stem_cells: Vec::new(),
        memory_sync_interval: Duration::from_millis(50),
        poll_wait: Duration::from_millis(50),
        health_test_interval: Duration::from_millis(20),
        disable_retry: Duration::from_millis(100),
        ..PoolSettings::default()
    }
}

fn start(settings: PoolSettings) -> Fixture {
    let records = Arc::new(LocalActivationStore::new());
    start_with_store(settings, records.clone(), records)
}

/// A pool whose records go to `activations` (which keeps them in `records`).
fn start_with_store(
    settings: PoolSettings,
    records: Arc<LocalActivationStore>,
    activations: Arc<dyn ActivationStore>,
) -> Fixture {
    start_with_ports(settings, records, activations, |cluster| cluster)
}

/// [`start_with_store`], with the pool's cluster state port built around
/// the fixture's in-process one (to hold a lookup back, for instance).
fn start_with_ports(
    settings: PoolSettings,
    records: Arc<LocalActivationStore>,
    activations: Arc<dyn ActivationStore>,
    port: impl FnOnce(Arc<LocalClusterState>) -> Arc<dyn wasmwhisk::pool::ports::ClusterState>,
) -> Fixture {
    let queue = Arc::new(LocalQueue::new());
    let actions = Arc::new(LocalActionStore::new());
    let cluster = Arc::new(LocalClusterState::new());
    let (messenger, bus) = LocalMessenger::new();
    let ports = PoolPorts {
        actions: actions.clone(),
        activations,
        queue: queue.clone(),
        messenger: Arc::new(messenger),
        cluster: port(cluster.clone()),
        containers: Arc::new(wasmwhisk::pool::container::NoContainers::default()),
    };
    let invoker = InvokerInstanceId::new(INVOKER, ByteSize::from_mb(settings.user_memory_mb));
    let pool = PoolHandle::start(
        common::engine(),
        invoker,
        EtcdKeys::default(),
        settings,
        ports,
    );
    Fixture {
        pool,
        queue,
        actions,
        records,
        cluster,
        bus,
        completions: Vec::new(),
        acks: Vec::new(),
    }
}

fn meta(name: &str, kind: &str, memory_mb: u64) -> WhiskActionMetaData {
    let limits = wasmwhisk::protocol::ActionLimits {
        memory: memory_mb,
        timeout: 5_000,
        ..Default::default()
    };
    WhiskActionMetaData::code_action(
        EntityPath::namespace(EntityName::new("guest").expect("name")),
        EntityName::new(name).expect("name"),
        kind,
        kind == "wasm",
        limits,
    )
}

fn revision(n: u32) -> DocRevision {
    DocRevision::new(format!("{n}-abcdef"))
}

impl Fixture {
    fn deploy(&self, meta: WhiskActionMetaData, rev: u32, code: Vec<u8>) -> Arc<ExecutableAction> {
        self.actions.put(ExecutableAction {
            meta,
            revision: revision(rev),
            code: code.into(),
            code_key: None,
        })
    }

    fn deploy_wasm(&self, name: &str, memory_mb: u64) -> Arc<ExecutableAction> {
        self.deploy(
            meta(name, "wasm", memory_mb),
            1,
            common::guest("hello_rust"),
        )
    }

    fn deploy_js(&self, name: &str, memory_mb: u64, code: &str) -> Arc<ExecutableAction> {
        self.deploy(
            meta(name, "nodejs:20", memory_mb),
            1,
            code.as_bytes().to_vec(),
        )
    }

    async fn next_outgoing(&mut self) -> Outgoing {
        tokio::time::timeout(Duration::from_secs(30), self.bus.recv())
            .await
            .expect("a message within 30 s")
            .expect("the bus is open")
    }

    /// Sends a creation message and waits for its ack.
    async fn create(&mut self, action: &ExecutableAction) -> ContainerCreationAckMessage {
        let msg = creation(action);
        let id = msg.creation_id.clone();
        self.pool.create(msg).await;
        self.ack_of(&id).await
    }

    async fn ack_of(&mut self, id: &CreationId) -> ContainerCreationAckMessage {
        if let Some(at) = self.acks.iter().position(|a| &a.creation_id == id) {
            return self.acks.remove(at);
        }
        loop {
            match self.next_outgoing().await {
                Outgoing::CreationAck(_, ack) if &ack.creation_id == id => return *ack,
                Outgoing::CreationAck(_, ack) => self.acks.push(*ack),
                Outgoing::Completion(_, ack) => self.completions.push(*ack),
            }
        }
    }

    /// Queues an activation and waits for its stored record.
    async fn invoke(&mut self, action: &ExecutableAction, params: Value) -> WhiskActivation {
        let msg = ActivationMessage::for_action(
            &action.meta,
            action.revision.clone(),
            Identity::basic("guest", "uuid-1", "key-1"),
            ControllerInstanceId::new("0").expect("controller"),
            Some(params),
            true,
        );
        let id = msg.activation_id.clone();
        self.queue.push(&key(action), msg);
        self.record_of(&id).await
    }

    /// Waits for the stored record of `id`.
    async fn record_of(&self, id: &ActivationId) -> WhiskActivation {
        for _ in 0..3000 {
            if let Some(record) = self.records.record(id) {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no record for {id}");
    }

    async fn snapshot(&self) -> wasmwhisk::pool::PoolSnapshot {
        self.pool.snapshot().await.expect("the pool runs")
    }

    /// Waits until `check` holds for the pool's metrics.
    async fn until(&self, what: &str, check: impl Fn(&wasmwhisk::pool::PoolSnapshot) -> bool) {
        for _ in 0..1000 {
            if check(&self.snapshot().await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "timed out waiting until {what}: {:?}",
            self.snapshot().await.metrics
        );
    }

    fn health(&self) -> Option<InvokerResourceMessage> {
        let key =
            EtcdKeys::default().invoker(&InvokerInstanceId::new(INVOKER, ByteSize::from_mb(1)));
        self.cluster
            .value(&key)
            .map(|v| serde_json::from_str(&v).expect("resource JSON"))
    }
}

fn creation(action: &ExecutableAction) -> ContainerCreationMessage {
    ContainerCreationMessage::for_action(
        "guest",
        &action.meta,
        action.revision.clone(),
        SchedulerInstanceId::new("0").expect("scheduler"),
    )
}

fn key(action: &ExecutableAction) -> WarmKey {
    WarmKey {
        invocation_namespace: "guest".into(),
        action: action
            .meta
            .fully_qualified_name()
            .as_string_without_version(),
        revision: action.revision.to_string(),
    }
}

fn annotation(record: &WhiskActivation, key: &str) -> Option<Value> {
    record.annotation(key).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_cold_start_runs_and_stays_warm() {
    let mut f = start(settings(1024));
    let action = f.deploy_wasm("hello", 128);
    let ack = f.create(&action).await;
    assert!(ack.is_success(), "{ack:?}");
    let first = f.invoke(&action, json!({"name": "pool"})).await;
    assert!(first.response.is_success(), "{first:?}");
    assert!(
        annotation(&first, "initTime").is_some(),
        "a cold start records initTime"
    );
    assert_eq!(annotation(&first, "kind"), Some(json!("wasm")));
    assert_eq!(annotation(&first, "path"), Some(json!("guest/hello")));
    let second = f.invoke(&action, json!({"name": "again"})).await;
    assert!(second.response.is_success());
    assert!(
        annotation(&second, "initTime").is_none(),
        "a warm run has no initTime"
    );
    let snap = f.snapshot().await;
    assert_eq!(snap.metrics.busy, 1);
    assert_eq!(snap.state.busy_pool.containers[0].action, "hello");
    // The live container key is registered under the lease, OpenWhisk's form.
    assert_eq!(
        f.cluster
            .keys_with_prefix("whisk/namespace/guest/guest/hello/1-abcdef/invoker0/container/")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_action_specializes_a_stem_cell_and_one_replaces_it() {
    let mut s = settings(1024);
    s.stem_cells = vec![StemCellSpec {
        kind: "js".into(),
        memory_mb: 256,
        initial_count: 1,
        reactive: None,
    }];
    let mut f = start(s);
    f.until("a stem cell is ready", |s| s.metrics.prewarmed == 1)
        .await;
    let action = f.deploy_js("greet", 256, "function main(p) { return {hi: p.name}; }");
    let ack = f.create(&action).await;
    assert!(ack.is_success(), "{ack:?}");
    let record = f.invoke(&action, json!({"name": "js"})).await;
    assert_eq!(record.response.result, Some(json!({"hi": "js"})));
    assert!(annotation(&record, "initTime").is_some());
    // The taken stem cell was replaced at once.
    f.until("the replacement is ready", |s| {
        s.metrics.prewarmed == 1 && s.metrics.busy == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_enough_memory_is_refused_with_a_memory_report() {
    let mut f = start(settings(256));
    let action = f.deploy_wasm("big", 256);
    assert!(f.create(&action).await.is_success());
    let refused = f.create(&action).await;
    assert_eq!(
        refused.error,
        Some(ContainerCreationError::ResourceNotEnoughError)
    );
    assert!(
        refused
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("doesn't have enough resource")
    );
    let sequence = {
        let mut m = meta("seq", "wasm", 128);
        m.exec = ExecMetaData::Sequence { components: vec![] };
        f.deploy(m, 1, Vec::new())
    };
    let refused = f.create(&sequence).await;
    assert_eq!(
        refused.error,
        Some(ContainerCreationError::NonExecutableActionError)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sandbox_pauses_resumes_warm_and_expires() {
    let mut s = settings(1024);
    s.pause_grace = Duration::from_millis(150);
    s.idle_container = Duration::from_millis(600);
    let mut f = start(s);
    let action = f.deploy_wasm("hello", 128);
    assert!(f.create(&action).await.is_success());
    f.invoke(&action, json!({})).await;
    f.until("it pauses", |s| {
        s.metrics.warmed == 1 && s.metrics.busy == 0
    })
    .await;
    let warmed_prefix = "whisk/warmed/guest/guest/hello/1-abcdef/invoker/0/container/";
    assert_eq!(f.cluster.keys_with_prefix(warmed_prefix).len(), 1);
    // Warm reuse: the same sandbox, no init.
    assert!(f.create(&action).await.is_success());
    let record = f.invoke(&action, json!({})).await;
    assert!(
        annotation(&record, "initTime").is_none(),
        "resumed warm: {record:?}"
    );
    assert!(f.cluster.keys_with_prefix(warmed_prefix).is_empty());
    // Pauses again, then idle-container removes it and its memory.
    f.until("it pauses again", |s| s.metrics.warmed == 1).await;
    f.until("it expires", |s| {
        s.metrics.warmed == 0 && s.metrics.busy == 0
    })
    .await;
    let snap = f.snapshot().await;
    assert_eq!(snap.metrics.memory_warmed_mb, 0);
    assert!(f.cluster.keys_with_prefix("whisk/warmed/").is_empty());
    assert!(f.cluster.keys_with_prefix("whisk/namespace/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_init_is_a_developer_error_and_the_sandbox_goes() {
    let mut f = start(settings(1024));
    let action = f.deploy_js("broken", 128, "function main( {");
    // The ack is a success: init runs with the first activation (docs/openwhisk.md §2.5).
    assert!(f.create(&action).await.is_success());
    let record = f.invoke(&action, json!({})).await;
    assert_eq!(
        record.response.status_code,
        StatusCode::DeveloperError,
        "{record:?}"
    );
    f.until("the sandbox is gone", |s| {
        s.metrics.busy == 0 && s.metrics.memory_busy_mb == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_error_keeps_the_sandbox_trap_destroys_it() {
    let mut f = start(settings(1024));
    let action = f.deploy_js(
        "moody",
        128,
        "function main(p) { if (p.fail) return {error: 'no'}; if (p.crash) throw new Error('boom'); return {ok: true}; }",
    );
    assert!(f.create(&action).await.is_success());
    let app = f.invoke(&action, json!({"fail": true})).await;
    assert_eq!(app.response.status_code, StatusCode::ApplicationError);
    let ok = f.invoke(&action, json!({})).await;
    assert!(ok.response.is_success());
    assert!(
        annotation(&ok, "initTime").is_none(),
        "same sandbox after an application error"
    );
    let crash = f.invoke(&action, json!({"crash": true})).await;
    assert_eq!(crash.response.status_code, StatusCode::DeveloperError);
    f.until("the sandbox is gone", |s| s.metrics.busy == 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_removes_sandboxes_up_to_the_revision() {
    let mut s = settings(1024);
    s.pause_grace = Duration::from_millis(100);
    let mut f = start(s);
    let action = f.deploy_wasm("hello", 128);
    assert!(f.create(&action).await.is_success());
    f.invoke(&action, json!({})).await;
    f.until("it pauses", |s| s.metrics.warmed == 1).await;
    // A second sandbox, busy (pulling) when the deletion comes.
    let mut longer = f.snapshot().await;
    assert_eq!(longer.metrics.busy, 0);
    assert!(f.create(&action).await.is_success());
    f.until("one busy, one warmed", |s| {
        s.metrics.warmed == 0 || s.metrics.busy == 1
    })
    .await;
    longer = f.snapshot().await;
    let live = longer.metrics.busy + longer.metrics.warmed;
    assert!(live >= 1, "{:?}", longer.metrics);
    f.pool.delete(ContainerDeletionMessage::for_action(
        "guest",
        &action.meta,
        revision(0),
    ));
    tokio::time::sleep(Duration::from_millis(30)).await;
    let after = f.snapshot().await.metrics;
    assert_eq!(
        after.busy + after.warmed,
        live,
        "revision 0 < 1: nothing deleted"
    );
    f.pool.delete(ContainerDeletionMessage::for_action(
        "guest",
        &action.meta,
        revision(1),
    ));
    f.until("all are gone", |s| {
        s.metrics.warmed == 0 && s.metrics.busy == 0 && s.metrics.disabling == 0
    })
    .await;
    assert!(f.cluster.keys_with_prefix("whisk/warmed/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_goes_up_after_a_real_test_run_and_down_on_disable() {
    let mut f = start(settings(1024));
    for _ in 0..500 {
        if f.health().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.health().map(|h| h.status), Some(InvokerState::Offline));
    f.pool.enable();
    f.until("healthy", |s| s.health == HealthState::Healthy)
        .await;
    for _ in 0..500 {
        if f.health().map(|h| h.status) == Some(InvokerState::Healthy) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let up = f.health().expect("published");
    assert_eq!(up.status, InvokerState::Healthy);
    assert_eq!(up.free_memory, 1024);
    // Disable: down, drains, refuses creations.
    let action = f.deploy_wasm("hello", 128);
    assert!(f.create(&action).await.is_success());
    f.pool.disable();
    let refused = f.create(&action).await;
    assert_eq!(
        refused.error,
        Some(ContainerCreationError::ShuttingDownError)
    );
    f.until("drained", |s| {
        s.metrics.busy == 0 && s.metrics.disabling == 0
    })
    .await;
    for _ in 0..500 {
        if f.health().map(|h| h.status) == Some(InvokerState::Offline) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.health().map(|h| h.status), Some(InvokerState::Offline));
    f.pool.enable();
    assert!(f.create(&action).await.is_success(), "enabled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_user_memory_is_refused_and_leaves_no_leak() {
    let mut f = start(settings(2048));
    let action = f.deploy_wasm("hello", 128);
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let msg = creation(&action);
        ids.push(msg.creation_id.clone());
        f.pool.create(msg).await;
    }
    let (mut ok, mut refused) = (0, 0);
    for id in &ids {
        let ack = f.ack_of(id).await;
        match ack.error {
            None => ok += 1,
            Some(ContainerCreationError::ResourceNotEnoughError) => refused += 1,
            other => panic!("unexpected ack {other:?}"),
        }
    }
    assert_eq!(ok, 16, "2048 MB / 128 MB");
    assert_eq!(refused, 984);
    f.pool.disable();
    f.until("all removed", |s| {
        s.metrics.busy == 0
            && s.metrics.in_progress == 0
            && s.metrics.warmed == 0
            && s.metrics.disabling == 0
    })
    .await;
    let snap = f.snapshot().await;
    assert_eq!(
        (
            snap.metrics.memory_busy_mb,
            snap.metrics.memory_in_progress_mb,
            snap.metrics.memory_warmed_mb
        ),
        (0, 0, 0)
    );
    assert_eq!(snap.metrics.memory_free_mb, 2048);
    assert!(f.cluster.keys_with_prefix("whisk/namespace/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_action_is_acked_as_a_db_fetch_error() {
    let mut f = start(settings(1024));
    let action = ExecutableAction {
        meta: meta("ghost", "wasm", 128),
        revision: revision(1),
        code: Vec::new().into(),
        code_key: None,
    };
    let ack = f.create(&action).await;
    assert_eq!(ack.error, Some(ContainerCreationError::DBFetchError));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_work_and_publishes_down() {
    let mut f = start(settings(1024));
    let action = f.deploy_js(
        "slow",
        128,
        "async function main() { await new Promise(r => setTimeout(r, 300)); return {done: true}; }",
    );
    assert!(f.create(&action).await.is_success());
    let msg = ActivationMessage::for_action(
        &action.meta,
        action.revision.clone(),
        Identity::basic("guest", "uuid-1", "key-1"),
        ControllerInstanceId::new("0").expect("controller"),
        None,
        false,
    );
    let id = msg.activation_id.clone();
    f.queue.push(&key(&action), msg);
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.pool.shutdown(Duration::from_secs(10)).await;
    let record = f
        .records
        .record(&id)
        .expect("the in-flight activation finished");
    assert!(record.response.is_success(), "{record:?}");
    assert_eq!(f.health().map(|h| h.status), Some(InvokerState::Offline));
}

/// Waits until `check`, for at most 120 s of real time (stem cells are made
/// on real threads; paused Tokio time does not advance while they run).
async fn until_real(
    f: &Fixture,
    what: &str,
    check: impl Fn(&wasmwhisk::pool::introspect::PoolMetrics) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let snap = f.snapshot().await;
        if check(&snap.metrics) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}: {:?}",
            snap.metrics
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The `reactive` block OpenWhisk's FPC invoker drops: stem cells expire
/// after their ttl at the scheduled check, and the next check sizes them
/// from the cold starts counted since (paused Tokio time).
#[tokio::test(start_paused = true)]
async fn reactive_stem_cells_expire_and_follow_cold_starts() {
    let mut s = settings(4096);
    s.memory_sync_interval = Duration::from_secs(1);
    s.poll_wait = Duration::from_secs(1);
    s.expiration_check_init_delay = Duration::from_secs(600);
    s.expiration_check_interval = Duration::from_secs(600);
    s.expiration_check_variance = Duration::ZERO;
    s.stem_cells = vec![StemCellSpec {
        kind: "js".into(),
        memory_mb: 256,
        initial_count: 1,
        reactive: Some(wasmwhisk::pool::prewarm::ReactiveSpec {
            min_count: 0,
            max_count: 3,
            ttl: Duration::from_secs(60),
            threshold: 1,
            increment: 1,
        }),
    }];
    let mut f = start(s);
    until_real(&f, "the initial stem cell", |m| m.prewarmed == 1).await;
    // Past its ttl and the first check: removed, and minCount 0 keeps none.
    tokio::time::advance(Duration::from_secs(601)).await;
    until_real(&f, "the expired stem cell is gone", |m| {
        m.prewarmed == 0 && m.prewarm_starting == 0
    })
    .await;
    // Three cold starts of the stem cells' kind and memory...
    for n in 0..3 {
        let action = f.deploy_js(&format!("cold{n}"), 256, "function main() { return {}; }");
        assert!(f.create(&action).await.is_success());
    }
    assert_eq!(f.snapshot().await.metrics.prewarmed, 0);
    // ...make the next check create min(max(0, 3 / 1 * 1), 3) = 3.
    tokio::time::advance(Duration::from_secs(600)).await;
    until_real(&f, "three stem cells", |m| m.prewarmed == 3).await;
}

/// `prewarm-container-creation-config`: stem cells start at most
/// `max-concurrent` per `creation-delay`, the first at once (OpenWhisk's
/// fixed-rate tick starts at 0); paused Tokio time, which stands still
/// while a stem cell is made on a blocking thread.
#[tokio::test(start_paused = true)]
async fn create_prewarmed_containers_on_startup_with_creation_delay_configuration() {
    let mut s = settings(1024);
    s.memory_sync_interval = Duration::from_secs(3600);
    s.prewarm_throttle = Some((1, Duration::from_secs(5)));
    s.stem_cells = vec![StemCellSpec {
        kind: "js".into(),
        memory_mb: 128,
        initial_count: 3,
        reactive: None,
    }];
    let t0 = tokio::time::Instant::now();
    let f = start(s);
    let first = f.snapshot().await.metrics;
    assert_eq!(
        (first.prewarm_starting, first.prewarmed),
        (3, 0),
        "queued, counted as starting"
    );
    until_real(&f, "the first stem cell", |m| m.prewarmed >= 1).await;
    assert!(
        tokio::time::Instant::now() - t0 < Duration::from_secs(5),
        "the first starts at once, not after a creation-delay"
    );
    until_real(&f, "all three stem cells", |m| m.prewarmed == 3).await;
    let took = tokio::time::Instant::now() - t0;
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(15),
        "then one per 5 s tick: {took:?}"
    );
}

/// The activation store of `records`, refusing the next `failures` stores
/// (a database that is down for a while); counts every store asked for.
struct FlakyStore {
    records: Arc<LocalActivationStore>,
    failures: std::sync::atomic::AtomicUsize,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ActivationStore for FlakyStore {
    async fn store(
        &self,
        activation: &WhiskActivation,
    ) -> Result<(), wasmwhisk::pool::ports::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.calls.fetch_add(1, SeqCst);
        let refused = self
            .failures
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(wasmwhisk::pool::ports::StoreError::Unavailable(
                "the database is down".into(),
            ));
        }
        self.records.store(activation).await
    }

    async fn get(
        &self,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, wasmwhisk::pool::ports::StoreError> {
        self.records.get(id).await
    }
}

/// Completion acks of `id` on the bus so far (others are kept aside).
fn drain_completions(f: &mut Fixture) {
    while let Ok(out) = f.bus.try_recv() {
        match out {
            Outgoing::CreationAck(_, ack) => f.acks.push(*ack),
            Outgoing::Completion(_, ack) => f.completions.push(*ack),
        }
    }
}

/// docs/pool.md, "Records before acks": a record the store keeps refusing
/// (every retry of one round) sends no completion ack; the activation goes
/// back to its queue and runs again, and only the run whose record is stored
/// is acked (paused Tokio time runs the retries' backoff at once).
#[tokio::test(start_paused = true)]
async fn a_record_that_cannot_be_stored_sends_no_ack_and_the_activation_runs_again() {
    use std::sync::atomic::Ordering::SeqCst;
    let records = Arc::new(LocalActivationStore::new());
    let store = Arc::new(FlakyStore {
        records: records.clone(),
        failures: 0.into(),
        calls: 0.into(),
    });
    // The retries take about 20 s of (paused) time: the sandbox must still
    // pull when the activation comes back (here no controller asks for
    // another one).
    let mut s = settings(1024);
    s.pause_grace = Duration::from_secs(3600);
    let mut f = start_with_store(s, records, store.clone());
    let action = f.deploy_wasm("flaky", 128);
    assert!(f.create(&action).await.is_success());
    // One full round of retries fails: 10 attempts (Shared::store_record).
    store.failures.store(10, SeqCst);
    let msg = ActivationMessage::for_action(
        &action.meta,
        action.revision.clone(),
        Identity::basic("guest", "uuid-1", "key-1"),
        ControllerInstanceId::new("0").expect("controller"),
        Some(json!({"name": "again"})),
        true,
    );
    let id = msg.activation_id.clone();
    f.queue.push(&key(&action), msg);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // A blocking activation with logs: a result and a completion ack.
    loop {
        drain_completions(&mut f);
        let acked = f
            .completions
            .iter()
            .filter(|a| a.activation_id() == &id)
            .count();
        if f.records.record(&id).is_some() && acked >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record and acks for {id}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        store.calls.load(SeqCst),
        11,
        "ten refused stores of the first run, one stored of the second"
    );
    let acked = f
        .completions
        .iter()
        .filter(|a| a.activation_id() == &id)
        .count();
    assert_eq!(acked, 2, "only the stored run is acked");
    let record = f.records.record(&id).expect("stored");
    assert!(record.response.is_success(), "{record:?}");
}

/// OpenWhisk's `FunctionPullingContainerPoolTests` "send ack(reschedule) to
/// scheduler when container creation is failed or resource is not enough",
/// through the real actor and a real failed creation (a `wasm` action whose
/// code is no component): `ResourceNotEnoughError` for the big one, then one
/// `WhiskError` ack (OpenWhisk's `ContainerCreationFailed`, reschedulable)
/// and no second `UnknownError` ack when the proxy's removal follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_ack_reschedule_to_scheduler_when_container_creation_is_failed_or_resource_is_not_enough()
 {
    let mut f = start(settings(256));
    let big = f.deploy_wasm("big", 512);
    let refused = f.create(&big).await;
    assert_eq!(
        refused.error,
        Some(ContainerCreationError::ResourceNotEnoughError)
    );
    let broken = f.deploy(meta("broken", "wasm", 128), 1, b"not a component".to_vec());
    let msg = creation(&broken);
    let creation_id = msg.creation_id.clone();
    f.pool.create(msg).await;
    let failed = f.ack_of(&creation_id).await;
    assert_eq!(failed.error, Some(ContainerCreationError::WhiskError));
    let reason = failed.reason.unwrap_or_default();
    assert!(
        reason.starts_with(&format!("creationId: {creation_id}, ")),
        "{reason}"
    );
    // The removal that follows is booked and sends nothing more: by the
    // next creation's ack (a real instantiation later), none has come.
    f.until("the failed sandbox is gone", |s| {
        s.metrics.in_progress == 0 && s.metrics.memory_in_progress_mb == 0
    })
    .await;
    let good = f.deploy_wasm("good", 128);
    assert!(f.create(&good).await.is_success());
    assert!(
        f.acks.iter().all(|a| a.creation_id != creation_id),
        "a second ack: {:?}",
        f.acks
    );
}

/// OpenWhisk's `FunctionPullingContainerProxyTests` "remove the ETCD data
/// first when disabling the container proxy": a disable deletes a busy
/// sandbox's `namespace/` key at once, while its activation still runs; the
/// activation then finishes with its record and the sandbox goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_the_etcd_data_first_when_disabling_the_container_proxy() {
    let mut f = start(settings(1024));
    // Runs for 3 s: long beside a key deletion, short for a test.
    let action = f.deploy_js(
        "slow",
        128,
        "function main() { const end = Date.now() + 3000; while (Date.now() < end) {} return {done: true}; }",
    );
    assert!(f.create(&action).await.is_success());
    let live = "whisk/namespace/guest/guest/slow/";
    f.until("the sandbox is registered", |_| f.cluster.has_prefix(live))
        .await;
    let msg = ActivationMessage::for_action(
        &action.meta,
        action.revision.clone(),
        Identity::basic("guest", "uuid-1", "key-1"),
        ControllerInstanceId::new("0").expect("controller"),
        Some(json!({})),
        true,
    );
    let id = msg.activation_id.clone();
    f.queue.push(&key(&action), msg);
    f.until("the activation runs", |s| {
        s.metrics.activations_by_start.cold == 1
    })
    .await;
    f.pool.disable();
    f.until("the key is deleted", |_| !f.cluster.has_prefix(live))
        .await;
    assert!(
        f.records.record(&id).is_none(),
        "the key goes before the activation in hand ends"
    );
    let record = f.record_of(&id).await;
    assert_eq!(record.response.result, Some(json!({"done": true})));
    f.until("the sandbox is destroyed", |s| {
        s.metrics.busy == 0 && s.metrics.disabling == 0 && s.metrics.warmed == 0
    })
    .await;
}

/// OpenWhisk's "send memory info to invokerHealthManager immediately when
/// doesn't have enough resource happens": with a memory sync of an hour,
/// the refusal itself publishes the memory report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_memory_info_to_invoker_health_manager_immediately_when_not_enough_resource_happens() {
    let mut s = settings(256);
    s.memory_sync_interval = Duration::from_secs(3600);
    let mut f = start(s);
    wait_real("the first report", || f.health().is_some()).await;
    let action = f.deploy_wasm("big", 256);
    assert!(f.create(&action).await.is_success());
    assert_eq!(
        f.health().map(|h| h.free_memory),
        Some(256),
        "no sync tick has run since the start"
    );
    let refused = f.create(&action).await;
    assert_eq!(
        refused.error,
        Some(ContainerCreationError::ResourceNotEnoughError)
    );
    wait_real("the report of the refusal", || {
        f.health()
            .is_some_and(|h| h.free_memory == 0 && h.busy_memory + h.in_progress_memory == 256)
    })
    .await;
}

/// Polls `check` for at most 30 s of real time.
async fn wait_real(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// OpenWhisk's "run actions to a cold start container with get no
/// activationMessage": a sandbox that never ran an activation is removed
/// after `pause-grace`, not paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_actions_to_a_cold_start_container_with_get_no_activation_message() {
    let mut s = settings(1024);
    s.pause_grace = Duration::from_millis(150);
    // A paused sandbox would stay warmed for the test's whole life.
    s.idle_container = Duration::from_secs(600);
    let mut f = start(s);
    let action = f.deploy_wasm("idle", 128);
    assert!(f.create(&action).await.is_success());
    f.until("it is removed", |s| {
        s.metrics.busy == 0 && s.metrics.in_progress == 0 && s.metrics.warmed == 0
    })
    .await;
    let snap = f.snapshot().await;
    assert_eq!(snap.metrics.memory_free_mb, 1024);
    assert!(f.cluster.keys_with_prefix("whisk/warmed/").is_empty());
    assert!(f.cluster.keys_with_prefix("whisk/namespace/").is_empty());
}

/// OpenWhisk's "run actions to a started prewarm container with get no
/// activationMessage": a specialized stem cell that never ran is removed
/// too, and the stem cells stay at their count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_actions_to_a_started_prewarm_container_with_get_no_activation_message() {
    let mut s = settings(1024);
    s.pause_grace = Duration::from_millis(150);
    s.idle_container = Duration::from_secs(600);
    s.stem_cells = vec![StemCellSpec {
        kind: "js".into(),
        memory_mb: 256,
        initial_count: 1,
        reactive: None,
    }];
    let mut f = start(s);
    f.until("a stem cell is ready", |s| s.metrics.prewarmed == 1)
        .await;
    let action = f.deploy_js("idle", 256, "function main() { return {}; }");
    assert!(f.create(&action).await.is_success());
    f.until("it is removed and the stem cell replaced", |s| {
        s.metrics.busy == 0
            && s.metrics.in_progress == 0
            && s.metrics.warmed == 0
            && s.metrics.prewarmed == 1
            && s.metrics.prewarm_starting == 0
    })
    .await;
    assert_eq!(f.snapshot().await.metrics.memory_free_mb, 1024);
    assert!(f.cluster.keys_with_prefix("whisk/warmed/").is_empty());
}

/// OpenWhisk's "not timeout when running long time action": an activation
/// running several times `pause-grace` keeps its sandbox, which takes the
/// next activation without a new init.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_timeout_when_running_long_time_action() {
    let mut s = settings(1024);
    s.pause_grace = Duration::from_millis(200);
    let mut f = start(s);
    let action = f.deploy_js(
        "long",
        128,
        "async function main() { await new Promise(r => setTimeout(r, 1000)); return {done: true}; }",
    );
    // Both queued at once, before the creation (so the short pause grace
    // never finds the sandbox idle): the second is pulled right after the
    // first ends.
    let ids: Vec<ActivationId> = (0..2)
        .map(|_| {
            let msg = activation(&action, None);
            let id = msg.activation_id.clone();
            f.queue.push(&key(&action), msg);
            id
        })
        .collect();
    assert!(f.create(&action).await.is_success());
    let records = wait_records(&f, &ids).await;
    for record in &records {
        assert_eq!(
            record.response.result,
            Some(json!({"done": true})),
            "{record:?}"
        );
    }
    assert!(annotation(&records[0], "initTime").is_some());
    assert!(
        annotation(&records[1], "initTime").is_none(),
        "the same sandbox ran the second"
    );
    let starts = f.snapshot().await.metrics.activations_by_start;
    assert_eq!((starts.cold, starts.warm), (1, 1));
}

fn activation(action: &ExecutableAction, keeping_count: Option<u32>) -> ActivationMessage {
    let mut msg = ActivationMessage::for_action(
        &action.meta,
        action.revision.clone(),
        Identity::basic("guest", "uuid-1", "key-1"),
        ControllerInstanceId::new("0").expect("controller"),
        Some(json!({})),
        true,
    );
    msg.user.limits.warmed_container_keeping_count = keeping_count;
    msg
}

async fn wait_records(f: &Fixture, ids: &[ActivationId]) -> Vec<WhiskActivation> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<WhiskActivation> =
            ids.iter().filter_map(|id| f.records.record(id)).collect();
        if found.len() == ids.len() {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "records of {ids:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The cluster state, with the live-count lookup held until released.
struct HeldCounts {
    inner: Arc<LocalClusterState>,
    asked: std::sync::atomic::AtomicUsize,
    open: tokio::sync::watch::Sender<bool>,
}

#[async_trait::async_trait]
impl wasmwhisk::pool::ports::ClusterState for HeldCounts {
    async fn put(
        &self,
        key: &str,
        value: &str,
    ) -> Result<(), wasmwhisk::pool::ports::ClusterError> {
        self.inner.put(key, value).await
    }

    async fn delete(&self, key: &str) -> Result<(), wasmwhisk::pool::ports::ClusterError> {
        self.inner.delete(key).await
    }

    async fn count_prefix(
        &self,
        prefix: &str,
    ) -> Result<usize, wasmwhisk::pool::ports::ClusterError> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        self.inner.count_prefix(prefix).await
    }
}

/// OpenWhisk's "not destroy itself when time out happens but a new
/// activation message comes": a paused sandbox whose `idle-container` ran
/// out, while its keep decision still reads the live count, is resumed by
/// a creation message that comes meanwhile, not destroyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_destroy_itself_when_time_out_happens_but_a_new_activation_message_comes() {
    let mut s = settings(1024);
    s.pause_grace = Duration::from_millis(100);
    s.idle_container = Duration::from_millis(200);
    let (open, _) = tokio::sync::watch::channel(false);
    let held = Arc::new(std::sync::OnceLock::<Arc<HeldCounts>>::new());
    let port = held.clone();
    let records = Arc::new(LocalActivationStore::new());
    let mut f = start_with_ports(s, records.clone(), records, move |inner| {
        let counts = Arc::new(HeldCounts {
            inner,
            asked: Default::default(),
            open,
        });
        let _ = port.set(counts.clone());
        counts
    });
    let Some(held) = held.get().cloned() else {
        panic!("the port was built");
    };
    let action = f.deploy_wasm("hello", 128);
    // A keeping count of 1: the expiry asks for the live count. Queued
    // before the creation, so the short pause grace never finds the new
    // sandbox idle.
    let msg = activation(&action, Some(1));
    let first = msg.activation_id.clone();
    f.queue.push(&key(&action), msg);
    assert!(f.create(&action).await.is_success());
    wait_records(&f, &[first]).await;
    f.until("it pauses", |s| s.metrics.warmed == 1).await;
    wait_real("the keep decision asks for the live count", || {
        held.asked.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    // New work while the decision is pending: the same sandbox takes it.
    let msg = activation(&action, Some(1));
    let second = msg.activation_id.clone();
    f.queue.push(&key(&action), msg);
    assert!(f.create(&action).await.is_success());
    let record = wait_records(&f, &[second]).await.remove(0);
    assert!(record.response.is_success(), "{record:?}");
    assert!(
        annotation(&record, "initTime").is_none(),
        "resumed, not destroyed and cold-started: {record:?}"
    );
    held.open.send_replace(true);
    // The late decision leaves it alone: it pauses again, still warm.
    f.until("it pauses again", |s| {
        s.metrics.warmed == 1 && s.metrics.busy == 0
    })
    .await;
    let starts = f.snapshot().await.metrics.activations_by_start;
    assert_eq!((starts.cold, starts.warm), (1, 1));
}
