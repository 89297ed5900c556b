//! The controller end to end in one process: invokes through per-action
//! queues into the real pool with real sandboxes (Rust and JS guests built
//! from source), with the in-process stores.
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

use serde_json::json;
use wasmwhisk::controller::*;
use wasmwhisk::metrics::Metrics;
use wasmwhisk::pool::local::*;
use wasmwhisk::pool::ports::{ActivationStore, ExecutableAction};
use wasmwhisk::pool::queue::LocalQueue;
use wasmwhisk::pool::{PoolHandle, PoolPorts, PoolSettings};
use wasmwhisk::protocol::*;

struct Fixture {
    controller: Controller,
    pool: PoolHandle,
    actions: Arc<LocalActionStore>,
    records: Arc<LocalActivationStore>,
    journal: Arc<LocalJournal>,
    metrics: Arc<Metrics>,
}

fn settings() -> ControllerSettings {
    ControllerSettings {
        queue_max_retention: Duration::from_secs(60),
        queue_max_size: 10_000,
        stale_threshold: Duration::from_millis(100),
        check_interval: Duration::from_millis(20),
        concurrent_invocations: 30,
        idle_grace: Duration::from_secs(20),
        creation_timeout: Duration::from_secs(20),
    }
}

fn start(user_memory_mb: u64, controller: ControllerSettings) -> Fixture {
    let pool_settings = PoolSettings {
        user_memory_mb,
        stem_cells: Vec::new(),
        memory_sync_interval: Duration::from_millis(50),
        poll_wait: Duration::from_millis(200),
        health_test_interval: Duration::from_millis(20),
        ..PoolSettings::default()
    };
    let metrics = Arc::new(Metrics::new());
    let completions = Completions::new(metrics.clone());
    let stored = Arc::new(LocalActivationStore::new());
    let records: Arc<dyn ActivationStore> =
        Arc::new(RecordingStore::new(stored.clone(), completions.clone()));
    let queue = Arc::new(LocalQueue::new());
    let actions = Arc::new(LocalActionStore::new());
    let cluster = Arc::new(LocalClusterState::new());
    let (messenger, bus) = LocalMessenger::new();
    let pool = PoolHandle::start(
        common::engine(),
        InvokerInstanceId::new(0, ByteSize::from_mb(user_memory_mb)),
        EtcdKeys::default(),
        pool_settings,
        PoolPorts {
            actions: actions.clone(),
            activations: records.clone(),
            queue: queue.clone(),
            messenger: Arc::new(messenger),
            cluster: cluster.clone(),
            containers: Arc::new(wasmwhisk::pool::container::NoContainers::default()),
        },
    );
    pool.enable();
    let journal = Arc::new(LocalJournal::new());
    let controller = Controller::start(
        ControllerPorts {
            dispatch: Arc::new(pool.clone()),
            queues: queue,
            bus,
            journal: journal.clone(),
            records,
            completions,
            cluster,
            keys: EtcdKeys::default(),
            id: ControllerInstanceId::first(),
            scheduler: SchedulerInstanceId::first(),
            completions_from_acks: false,
        },
        controller,
    );
    Fixture {
        controller,
        pool,
        actions,
        records: stored,
        journal,
        metrics,
    }
}

fn meta(name: &str, kind: &str, memory_mb: u64) -> WhiskActionMetaData {
    WhiskActionMetaData::code_action(
        EntityPath::namespace(EntityName::new("guest").expect("name")),
        EntityName::new(name).expect("name"),
        kind,
        kind == "wasm",
        wasmwhisk::protocol::ActionLimits {
            memory: memory_mb,
            timeout: 5_000,
            ..Default::default()
        },
    )
}

impl Fixture {
    fn deploy(
        &self,
        name: &str,
        kind: &str,
        memory_mb: u64,
        code: Vec<u8>,
    ) -> Arc<ExecutableAction> {
        self.actions.put(ExecutableAction {
            meta: meta(name, kind, memory_mb),
            revision: DocRevision::new("1-abc"),
            code: code.into(),
            code_key: None,
        })
    }

    fn rust(&self, name: &str) -> Arc<ExecutableAction> {
        self.deploy(name, "wasm", 128, common::guest("hello_rust"))
    }

    async fn invoke(
        &self,
        action: &Arc<ExecutableAction>,
        params: serde_json::Value,
        blocking: bool,
    ) -> Result<Invocation, InvokeError> {
        self.controller
            .invoke(InvokeRequest {
                user: Identity::basic("guest", "uuid", "key"),
                action: action.clone(),
                content: Some(params),
                init_args: Vec::new(),
                blocking,
                wait: Duration::from_secs(20),
            })
            .await
    }

    async fn record_of(&self, id: &ActivationId) -> WhiskActivation {
        for _ in 0..1000 {
            if let Some(r) = self.records.record(id) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no record for {id}");
    }
}

fn completed(invocation: Result<Invocation, InvokeError>) -> WhiskActivation {
    match invocation {
        Ok(Invocation::Completed(a)) => *a,
        other => panic!("expected a completed activation, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_invokes_run_cold_then_warm_and_carry_their_logs() {
    let f = start(1024, settings());
    let action = f.rust("hello");
    let first = completed(f.invoke(&action, json!({"name": "Ada"}), true).await);
    assert!(first.response.is_success(), "{first:?}");
    assert_eq!(
        first.response.result,
        Some(json!({"greeting": "Hello, Ada!"}))
    );
    assert!(
        first.annotation("initTime").is_some(),
        "a cold start has an init time"
    );
    let second = completed(f.invoke(&action, json!({"name": "Bob"}), true).await);
    assert!(
        second.annotation("initTime").is_none(),
        "a warm run has none"
    );
    assert_eq!(f.records.len(), 2);
    assert_eq!(f.journal.accepted_ids().len(), 2);
    let snapshot = f.pool.snapshot().await.expect("pool");
    assert_eq!(snapshot.metrics.activations_by_start.cold, 1);
    assert_eq!(snapshot.metrics.activations_by_start.warm, 1);
    assert!(
        f.metrics
            .render()
            .contains("wasmwhisk_activations_total{status=\"success\"} 2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_blocking_invoke_answers_with_the_id_and_the_record_follows() {
    let f = start(1024, settings());
    let action = f.rust("hello");
    let id = match f.invoke(&action, json!({}), false).await {
        Ok(Invocation::Accepted(id)) => id,
        other => panic!("expected accepted, got {other:?}"),
    };
    let record = f.record_of(&id).await;
    assert!(record.response.is_success());
    assert!(f.journal.accepted_ids().contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_blocking_invokes_all_complete() {
    let f = Arc::new(start(1024, settings()));
    let action = f.rust("hello");
    let mut tasks = Vec::new();
    for i in 0..300 {
        let f = f.clone();
        let action = action.clone();
        tasks.push(tokio::spawn(async move {
            completed(f.invoke(&action, json!({"name": i}), true).await)
        }));
    }
    for task in tasks {
        assert!(task.await.expect("task").response.is_success());
    }
    assert_eq!(f.records.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_activations_of_a_slow_action_get_more_sandboxes() {
    let f = Arc::new(start(2048, settings()));
    let code = "function main(p) { const end = Date.now() + 150; while (Date.now() < end) {} return {ok: true}; }";
    let action = f.deploy("slow", "nodejs:20", 128, code.as_bytes().to_vec());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let f = f.clone();
        let action = action.clone();
        tasks.push(tokio::spawn(async move {
            completed(f.invoke(&action, json!({}), true).await)
        }));
    }
    for task in tasks {
        assert!(task.await.expect("task").response.is_success());
    }
    let starts = f
        .pool
        .snapshot()
        .await
        .expect("pool")
        .metrics
        .activations_by_start;
    assert!(
        starts.cold >= 2,
        "8 activations of 150 ms each should have made more than one sandbox: {starts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_the_invoker_cannot_load_fails_its_queued_activations() {
    let f = start(1024, settings());
    // Known to the controller (the API looked it up), gone from the store.
    let action = Arc::new(ExecutableAction {
        meta: meta("gone", "wasm", 128),
        revision: DocRevision::new("1-abc"),
        code: Vec::new().into(),
        code_key: None,
    });
    let record = completed(f.invoke(&action, json!({}), true).await);
    assert_eq!(record.response.status_code, StatusCode::DeveloperError);
    let message = record.response.result.expect("an error").to_string();
    assert!(message.contains("does not exist"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activations_that_never_get_a_sandbox_expire_with_openwhisks_message() {
    let f = start(
        128,
        ControllerSettings {
            queue_max_retention: Duration::from_millis(300),
            ..settings()
        },
    );
    // 256 MB never fits into 128 MB: every creation is refused.
    let action = f.deploy("big", "wasm", 256, common::guest("hello_rust"));
    let record = completed(f.invoke(&action, json!({}), true).await);
    assert!(record.response.is_whisk_error(), "{record:?}");
    let message = record.response.result.expect("an error").to_string();
    assert!(
        message.contains("Activation processing is not initiated for"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_throttled() {
    let f = start(
        128,
        ControllerSettings {
            queue_max_size: 3,
            ..settings()
        },
    );
    let action = f.deploy("big", "wasm", 256, common::guest("hello_rust"));
    for _ in 0..3 {
        assert!(matches!(
            f.invoke(&action, json!({}), false).await,
            Ok(Invocation::Accepted(_))
        ));
    }
    assert!(matches!(
        f.invoke(&action, json!({}), false).await,
        Err(InvokeError::Throttled {
            count: 3,
            allowed: 3
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_records_queued_activations_as_failed() {
    let f = start(128, settings());
    let action = f.deploy("big", "wasm", 256, common::guest("hello_rust"));
    let mut ids = Vec::new();
    for _ in 0..3 {
        match f.invoke(&action, json!({}), false).await {
            Ok(Invocation::Accepted(id)) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    f.controller.shutdown(Duration::from_secs(1)).await;
    for id in &ids {
        let record = f.record_of(id).await;
        assert!(record.response.is_whisk_error());
    }
    assert!(matches!(
        f.invoke(&action, json!({}), true).await,
        Err(InvokeError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_retires_the_old_revisions_sandboxes() {
    let f = start(1024, settings());
    let old = f.rust("hello");
    completed(f.invoke(&old, json!({}), true).await);
    let new = f.actions.put(ExecutableAction {
        meta: meta("hello", "wasm", 128),
        revision: DocRevision::new("2-def"),
        code: common::guest("hello_rust").into(),
        code_key: None,
    });
    f.controller.action_replaced(&old).await;
    let record = completed(f.invoke(&new, json!({}), true).await);
    assert!(
        record.annotation("initTime").is_some(),
        "the new revision starts cold"
    );
    for _ in 0..200 {
        let state = f.pool.snapshot().await.expect("pool").state;
        let old_left = state
            .busy_pool
            .containers
            .iter()
            .chain(state.paused_pool.containers.iter())
            .count();
        if old_left == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the old revision's sandbox was not deleted");
}

/// Invokers that never answer (they died after the creation was sent):
/// every creation is only remembered.
#[derive(Default)]
struct Silent {
    sent: std::sync::Mutex<Vec<ContainerCreationMessage>>,
}

#[async_trait::async_trait]
impl Dispatch for Silent {
    async fn create(
        &self,
        msg: ContainerCreationMessage,
        _action: &ExecutableAction,
        _avoid: &[u32],
    ) -> Result<(), NotSent> {
        self.sent.lock().expect("lock").push(msg);
        Ok(())
    }

    async fn delete(&self, _msg: ContainerDeletionMessage) {}

    async fn shutdown(&self, _grace: Duration) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_creation_times_out_and_is_sent_again_with_backoff() {
    let silent = Arc::new(Silent::default());
    let records = Arc::new(LocalActivationStore::new());
    let completions = Completions::new(Arc::new(Metrics::new()));
    let (_messenger, bus) = LocalMessenger::new();
    let controller = Controller::start(
        ControllerPorts {
            dispatch: silent.clone(),
            queues: Arc::new(LocalQueue::new()),
            bus,
            journal: Arc::new(LocalJournal::new()),
            records: Arc::new(RecordingStore::new(records.clone(), completions.clone())),
            completions,
            cluster: Arc::new(LocalClusterState::new()),
            keys: EtcdKeys::default(),
            id: ControllerInstanceId::first(),
            scheduler: SchedulerInstanceId::first(),
            completions_from_acks: false,
        },
        ControllerSettings {
            creation_timeout: Duration::from_millis(300),
            ..settings()
        },
    );
    let action = Arc::new(ExecutableAction {
        meta: meta("lost", "wasm", 128),
        revision: DocRevision::new("1-abc"),
        code: common::guest("hello_rust").into(),
        code_key: None,
    });
    let accepted = controller
        .invoke(InvokeRequest {
            user: Identity::basic("guest", "uuid", "key"),
            action,
            content: Some(json!({})),
            init_args: Vec::new(),
            blocking: false,
            wait: Duration::from_secs(1),
        })
        .await;
    assert!(matches!(accepted, Ok(Invocation::Accepted(_))));
    // The first creation goes at once; unanswered, it counts as a
    // `TimeoutError` after 300 ms and goes again (same creation id, retry
    // count 1) after the first backoff, 100 ms.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let sent = silent.sent.lock().expect("lock").clone();
        if let Some(retry) = sent.iter().find(|m| m.retry_count == 1) {
            assert_eq!(retry.creation_id, sent[0].creation_id);
            assert_eq!(sent[0].retry_count, 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no retry after the creation timed out: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
