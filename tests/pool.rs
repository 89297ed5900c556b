//! The pool end to end, in process: real sandboxes (Rust and JS guests built
//! from source), the in-process queue, stores, bus and cluster state.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use wasmwhisk::pool::health::HealthState;
use wasmwhisk::pool::invoker::{PoolHandle, PoolPorts, PoolSettings};
use wasmwhisk::pool::local::*;
use wasmwhisk::pool::ports::ExecutableAction;
use wasmwhisk::pool::prewarm::StemCellSpec;
use wasmwhisk::pool::queue::LocalQueue;
use wasmwhisk::pool::slot::WarmKey;
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
    let queue = Arc::new(LocalQueue::new());
    let actions = Arc::new(LocalActionStore::new());
    let records = Arc::new(LocalActivationStore::new());
    let cluster = Arc::new(LocalClusterState::new());
    let (messenger, bus) = LocalMessenger::new();
    let ports = PoolPorts {
        actions: actions.clone(),
        activations: records.clone(),
        queue: queue.clone(),
        messenger: Arc::new(messenger),
        cluster: cluster.clone(),
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
        for _ in 0..3000 {
            if let Some(record) = self.records.record(&id) {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no record for {id}");
    }

    async fn snapshot(&self) -> wasmwhisk::pool::invoker::PoolSnapshot {
        self.pool.snapshot().await.expect("the pool runs")
    }

    /// Waits until `check` holds for the pool's metrics.
    async fn until(
        &self,
        what: &str,
        check: impl Fn(&wasmwhisk::pool::invoker::PoolSnapshot) -> bool,
    ) {
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
/// `max-concurrent` per `creation-delay` (paused Tokio time).
#[tokio::test(start_paused = true)]
async fn stem_cell_creation_is_throttled_when_configured() {
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
    until_real(&f, "all three stem cells", |m| m.prewarmed == 3).await;
    assert!(
        tokio::time::Instant::now() - t0 >= Duration::from_secs(15),
        "one creation per 5 s tick"
    );
}
