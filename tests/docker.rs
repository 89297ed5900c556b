//! The Docker backend (`wasmwhisk::docker`) against the real Docker engine:
//! the runtime image `wasmwhisk/action-proxy:latest` built by
//! `runtimes/docker/build.sh`, and the test action `native-misbehave` built
//! by `runtimes/docker/build-action.sh` (its executable is deployed as
//! binary code, OpenWhisk's `native` convention, or baked into a blackbox
//! image).
//!
//! Each test labels its containers with its own owner and removes all it
//! made, even when it fails ([`Owned`]); the blackbox test removes its image.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;
#[path = "common/docker.rs"]
mod common_docker;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use wasmwhisk::action::{ActivationContext, InitArgs, SandboxLimits, new_activation_id};
use wasmwhisk::docker::{
    ContainerInitError, ContainerSpec, Docker, DockerContainer, DockerError, DockerSettings,
};
use wasmwhisk::sandbox::{ResponseStatus, RunReport, messages};

/// Builds the runtime image once per test process.
fn proxy_image() -> &'static str {
    common_docker::proxy_image()
}

/// Builds `native-misbehave` as the blackbox image `tag` (removed again
/// right away unless `keep`); the path of its native executable.
fn build_action(tag: &str, keep: bool) -> PathBuf {
    let exe = common_docker::action_image("native-misbehave", tag);
    if !keep {
        common_docker::remove_image(tag);
    }
    exe
}

/// The native executable of `native-misbehave`, built once per process
/// (these tests deploy it as binary code on the runtime image, so its
/// image is not kept).
fn native_action() -> &'static [u8] {
    static EXE: OnceLock<Vec<u8>> = OnceLock::new();
    EXE.get_or_init(|| {
        let tag = format!(
            "wasmwhisk-test/native-misbehave:code-{}",
            std::process::id()
        );
        let exe = build_action(&tag, false);
        std::fs::read(&exe).unwrap_or_else(|e| panic!("reading {}: {e}", exe.display()))
    })
}

/// `docker args…`; its trimmed stdout (empty on failure).
fn docker_cli(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The ids of the containers labelled with `owner`.
fn containers_of(owner: &str) -> Vec<String> {
    let filter = format!("label=wasmwhisk.owner={owner}");
    docker_cli(&["ps", "-aq", "--filter", &filter])
        .lines()
        .map(str::to_string)
        .collect()
}

/// A test's owner label; its containers (and images) are removed on drop,
/// even when the test fails.
struct Owned {
    owner: String,
    images: Vec<String>,
}

impl Owned {
    fn new(test: &str) -> Owned {
        let unique = &new_activation_id()[..8];
        Owned {
            owner: format!("test-{test}-{unique}"),
            images: Vec::new(),
        }
    }

    fn settings(&self) -> DockerSettings {
        DockerSettings {
            owner: self.owner.clone(),
            api_host: "http://api.test:3233".into(),
            user_memory_mb: 1024,
            ..DockerSettings::default()
        }
    }

    async fn docker(&self) -> Docker {
        Docker::connect(self.settings())
            .await
            .unwrap_or_else(|e| panic!("connecting to Docker: {e}"))
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        for id in containers_of(&self.owner) {
            docker_cli(&["rm", "-f", &id]);
        }
        for image in &self.images {
            docker_cli(&["rmi", "-f", image]);
        }
    }
}

fn spec(sandbox_id: u64, image: &str, memory_mb: u64) -> ContainerSpec {
    ContainerSpec {
        sandbox_id,
        kind: "native".into(),
        image: image.into(),
        memory_mb,
    }
}

fn limits(timeout: Duration) -> SandboxLimits {
    SandboxLimits {
        timeout,
        memory_mb: 128,
        ..SandboxLimits::default()
    }
}

/// Init args deploying the native executable as binary code.
fn native_code() -> InitArgs {
    InitArgs {
        name: "misbehave".into(),
        main: "main".into(),
        code: native_action().to_vec(),
        binary: true,
        env: vec![("GREETING".into(), "hello".into())],
    }
}

fn context() -> ActivationContext {
    ActivationContext {
        activation_id: new_activation_id(),
        namespace: "guest".into(),
        action_name: "/guest/misbehave".into(),
        action_version: "0.0.1".into(),
        transaction_id: "tid-1".into(),
        api_key: None,
    }
}

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("params must be an object, got {other}"),
    }
}

async fn run(container: &mut DockerContainer, value: Value) -> RunReport {
    container
        .run(context(), params(value), limits(Duration::from_secs(20)))
        .await
        .unwrap_or_else(|e| panic!("run was rescheduled: {e}"))
}

/// A container of the runtime image, initialized with the native action.
async fn ready(docker: &Docker, sandbox_id: u64) -> DockerContainer {
    let mut container = docker
        .create(spec(sandbox_id, proxy_image(), 128))
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    match container
        .init(native_code(), limits(Duration::from_secs(20)))
        .await
    {
        Ok(_) => container,
        Err(ContainerInitError::Failed(f)) => panic!("init failed: {:?} {:?}", f.response, f.logs),
        Err(ContainerInitError::Reschedule(r)) => panic!("init rescheduled: {r}"),
    }
}

/// The text of a log record, after the time.
fn texts(logs: &[String]) -> Vec<&str> {
    logs.iter().map(|l| l[31..].trim_start()).collect()
}

#[tokio::test]
async fn create_init_run_succeeds_with_labels_limits_env_and_logs() {
    let owned = Owned::new("success");
    let docker = owned.docker().await;
    assert_eq!(docker.api_version(), "1.41");

    let t = Instant::now();
    let mut container = docker
        .create(spec(7, proxy_image(), 256))
        .await
        .expect("create");
    let created = t.elapsed();
    let name = format!("wasmwhisk_{}_7", owned.owner);
    assert_eq!(container.name(), name);
    let inspect = |format: &str| docker_cli(&["inspect", "-f", format, container.id()]);
    assert_eq!(inspect("{{.Name}}"), format!("/{name}"));
    assert_eq!(
        inspect(
            "{{index .Config.Labels \"wasmwhisk.owner\"}} {{index .Config.Labels \"wasmwhisk.sandbox\"}} {{index .Config.Labels \"wasmwhisk.kind\"}}"
        ),
        format!("{} 7 native", owned.owner)
    );
    assert_eq!(
        inspect("{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}}"),
        format!("{} {} 256", 256 << 20, 256 << 20)
    );
    assert!(
        container.address().starts_with("http://172."),
        "{}",
        container.address()
    );

    let t = Instant::now();
    let init = container
        .init(native_code(), limits(Duration::from_secs(20)))
        .await;
    let inited = t.elapsed();
    assert!(init.is_ok(), "{:?}", init.err());

    let t = Instant::now();
    let report = run(&mut container, json!({"do": "log", "lines": 2})).await;
    let ran = t.elapsed();
    assert_eq!(
        report.response.status,
        ResponseStatus::Success,
        "{:?}",
        report.response
    );
    assert_eq!(report.response.result, json!({"logged": 2}));
    let logs = texts(&report.logs);
    for line in [
        "stdout line 1",
        "stdout line 2",
        "stderr line 1",
        "stderr line 2",
    ] {
        let stream = &line[..6];
        assert!(
            logs.contains(&format!("{stream}: {line}").as_str()),
            "{line} missing from {logs:?}"
        );
    }
    assert!(logs.iter().all(|l| !l.contains("XXX_THE_END")), "{logs:?}");
    // OpenWhisk's record format: `%-30s %s: %s`.
    assert!(
        report
            .logs
            .iter()
            .all(|l| l.as_bytes()[30] == b' ' && l.contains("Z "))
    );

    let t = Instant::now();
    let report = run(&mut container, json!({"name": "W", "getenv": ["GREETING"]})).await;
    let warm = t.elapsed();
    assert_eq!(report.response.status, ResponseStatus::Success);
    let result = &report.response.result;
    assert_eq!(result["params"]["name"], "W");
    assert_eq!(result["getenv"]["GREETING"], "hello");
    assert_eq!(result["env"]["__OW_API_HOST"], "http://api.test:3233");
    assert_eq!(result["env"]["__OW_NAMESPACE"], "guest");
    assert_eq!(result["env"]["__OW_ACTION_NAME"], "/guest/misbehave");
    let deadline: u64 = result["env"]["__OW_DEADLINE"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("a deadline");
    assert!(deadline > 1_700_000_000_000);
    assert!(report.logs.is_empty(), "{:?}", report.logs);
    assert!(!container.is_retired());

    let id = container.id().to_string();
    let t = Instant::now();
    container.destroy().await;
    let removed = t.elapsed();
    assert!(docker_cli(&["ps", "-aq", "--filter", &format!("id={id}")]).is_empty());
    eprintln!(
        "timings: create+start {created:?}, init {inited:?}, first run {ran:?}, warm run {warm:?}, remove {removed:?}"
    );
}

#[tokio::test]
async fn a_blackbox_image_runs_its_own_executable() {
    let mut owned = Owned::new("blackbox");
    let tag = format!("wasmwhisk-test/native-misbehave:{}", owned.owner);
    owned.images.push(tag.clone());
    build_action(&tag, true);
    let docker = owned.docker().await;
    assert!(docker.image_exists(&tag).await.expect("inspect image"));
    let mut container = docker.create(spec(1, &tag, 128)).await.expect("create");
    let blackbox = InitArgs {
        name: "blackbox".into(),
        ..InitArgs::default()
    };
    let init = container
        .init(blackbox, limits(Duration::from_secs(20)))
        .await;
    assert!(init.is_ok(), "{:?}", init.err());
    let report = run(&mut container, json!({"x": 1})).await;
    assert_eq!(report.response.status, ResponseStatus::Success);
    assert_eq!(report.response.result["params"], json!({"x": 1}));
    container.destroy().await;
}

#[tokio::test]
async fn an_application_error_keeps_the_container() {
    let owned = Owned::new("apperror");
    let docker = owned.docker().await;
    let mut container = ready(&docker, 1).await;
    let report = run(&mut container, json!({"do": "error", "message": "nope"})).await;
    assert_eq!(report.response.status, ResponseStatus::ApplicationError);
    assert_eq!(report.response.result, json!({"error": "nope"}));
    assert!(!container.is_retired());
    let report = run(&mut container, json!({"do": "count"})).await;
    assert_eq!(report.response.result, json!({"count": 1}));
    container.destroy().await;
}

#[tokio::test]
async fn developer_errors_retire_the_container() {
    let owned = Owned::new("devel");
    let docker = owned.docker().await;

    let mut garbage = ready(&docker, 1).await;
    let report = run(&mut garbage, json!({"do": "garbage"})).await;
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(
        report.response.error_message(),
        Some("The action did not return a dictionary.")
    );
    assert!(garbage.is_retired());
    // The lines before the last one are the activation's logs.
    assert!(
        texts(&report.logs).contains(&r#"stdout: {"almost": "json"}"#),
        "{:?}",
        report.logs
    );

    let mut exits = ready(&docker, 2).await;
    let report = run(&mut exits, json!({"do": "exit", "code": 4})).await;
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert!(exits.is_retired());

    // A retired container runs nothing more.
    let report = run(&mut exits, json!({})).await;
    assert_eq!(report.response.status, ResponseStatus::WhiskInternalError);
    garbage.destroy().await;
    exits.destroy().await;
}

#[tokio::test]
async fn an_init_failure_is_the_first_activations_developer_error() {
    let owned = Owned::new("initfail");
    let docker = owned.docker().await;
    let mut container = docker
        .create(spec(1, proxy_image(), 128))
        .await
        .expect("create");
    // The bare runtime image has no /action/exec to fall back on.
    let no_code = InitArgs {
        name: "empty".into(),
        ..InitArgs::default()
    };
    match container
        .init(no_code, limits(Duration::from_secs(20)))
        .await
    {
        Err(ContainerInitError::Failed(failure)) => {
            assert_eq!(
                failure.response.status,
                ResponseStatus::ActionDeveloperError
            );
            let message = failure.response.error_message().unwrap_or_default();
            assert!(!message.is_empty(), "{:?}", failure.response);
            assert!(
                failure.logs.iter().all(|l| !l.contains("XXX_THE_END")),
                "{:?}",
                failure.logs
            );
        }
        Ok(_) => panic!("init without code succeeded"),
        Err(ContainerInitError::Reschedule(r)) => panic!("rescheduled: {r}"),
    }
    assert!(container.is_retired());
    container.destroy().await;
}

#[tokio::test]
async fn a_run_past_its_timeout_is_a_developer_error_and_retires() {
    let owned = Owned::new("timeout");
    let docker = owned.docker().await;
    let mut container = ready(&docker, 1).await;
    let timeout = Duration::from_millis(1000);
    let report = container
        .run(
            context(),
            params(json!({"do": "sleep", "ms": 10_000})),
            limits(timeout),
        )
        .await
        .expect("not rescheduled");
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(
        report.response.error_message(),
        Some(messages::timed_out(timeout).as_str())
    );
    assert!(report.duration >= timeout && report.duration < Duration::from_secs(5));
    assert!(container.is_retired());
    container.destroy().await;
}

#[tokio::test]
async fn pause_and_resume_keep_the_same_warm_container() {
    let owned = Owned::new("pause");
    let docker = owned.docker().await;
    let mut container = ready(&docker, 1).await;
    let report = run(&mut container, json!({"do": "count"})).await;
    assert_eq!(report.response.result, json!({"count": 1}));

    let t = Instant::now();
    container.pause().await.expect("pause");
    let paused = t.elapsed();
    let state = docker_cli(&["inspect", "-f", "{{.State.Status}}", container.id()]);
    assert_eq!(state, "paused");
    let t = Instant::now();
    container.resume().await.expect("resume");
    let resumed = t.elapsed();

    let report = run(&mut container, json!({"do": "count"})).await;
    assert_eq!(
        report.response.result,
        json!({"count": 2}),
        "the same container"
    );
    eprintln!("timings: pause {paused:?}, unpause {resumed:?}");

    // A paused container is removed as well.
    container.pause().await.expect("pause");
    container.destroy().await;
    assert!(containers_of(&owned.owner).is_empty());
}

#[tokio::test]
async fn exhausting_memory_is_reported_as_such() {
    let owned = Owned::new("oom");
    let docker = owned.docker().await;
    let mut container = docker
        .create(spec(1, proxy_image(), 64))
        .await
        .expect("create");
    let init = container
        .init(native_code(), limits(Duration::from_secs(20)))
        .await;
    assert!(init.is_ok(), "{:?}", init.err());
    let report = run(&mut container, json!({"do": "alloc", "mb": 256})).await;
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(
        report.response.error_message(),
        Some(messages::MEMORY_EXHAUSTED)
    );
    assert!(container.is_retired());
    container.destroy().await;
}

#[tokio::test]
async fn remove_owned_removes_leftovers_and_dropped_containers_go() {
    let owned = Owned::new("leftovers");
    let docker = owned.docker().await;
    // An invoker that crashed: its containers were never destroyed.
    for id in 1..=2 {
        let container = docker
            .create(spec(id, proxy_image(), 128))
            .await
            .expect("create");
        std::mem::forget(container);
    }
    let paused = docker
        .create(spec(3, proxy_image(), 128))
        .await
        .expect("create");
    paused.pause().await.expect("pause");
    std::mem::forget(paused);
    assert_eq!(containers_of(&owned.owner).len(), 3);

    // The next invoker with the same owner cleans up at start.
    let restarted = owned.docker().await;
    assert_eq!(restarted.remove_owned().await.expect("remove_owned"), 3);
    assert!(containers_of(&owned.owner).is_empty());
    assert_eq!(restarted.remove_owned().await.expect("remove_owned"), 0);

    // A container dropped without destroy is removed in the background.
    let dropped = docker
        .create(spec(4, proxy_image(), 128))
        .await
        .expect("create");
    drop(dropped);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !containers_of(&owned.owner).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(containers_of(&owned.owner).is_empty());
}

#[tokio::test]
async fn docker_unavailable_is_a_clear_error() {
    for host in ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"] {
        let settings = DockerSettings {
            host: Some(host.into()),
            ..DockerSettings::default()
        };
        match Docker::connect(settings).await {
            Err(DockerError::Unavailable(message)) => {
                assert!(message.contains(host), "{message}");
                assert!(message.contains("Docker is not running"), "{message}");
            }
            Err(other) => panic!("{host}: expected Unavailable, got {other:?}"),
            Ok(_) => panic!("{host}: connected to nothing"),
        }
    }
}

#[tokio::test]
async fn a_missing_image_is_image_missing() {
    let owned = Owned::new("noimage");
    let docker = owned.docker().await;
    let image = format!("wasmwhisk-test/no-such-image:{}", owned.owner);
    assert!(!docker.image_exists(&image).await.expect("inspect image"));
    match docker.create(spec(1, &image, 128)).await {
        Err(error @ DockerError::ImageMissing(_)) => {
            let message = error.to_string();
            assert!(message.contains(&image), "{message}");
            assert!(message.contains("no registry"), "{message}");
            assert!(message.contains("runtimes/docker/build.sh"), "{message}");
        }
        Err(other) => panic!("expected ImageMissing, got {other:?}"),
        Ok(_) => panic!("created a container of a missing image"),
    }
    assert!(containers_of(&owned.owner).is_empty());
}

/// A Docker network of a test's own, removed on drop (after the test's
/// [`Owned`] containers, when declared before it).
struct Network(String);

impl Network {
    fn new(test: &str) -> Network {
        let name = format!("wasmwhisk-test-{test}-{}", &new_activation_id()[..8]);
        common_docker::docker(&["network", "create", &name]);
        Network(name)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        docker_cli(&["network", "rm", &self.0]);
    }
}

/// The real pool (actor, proxies, in-process ports) with the Docker fallback
/// for `native`, and the `native-misbehave` action deployed as binary code.
struct DockerPool {
    pool: wasmwhisk::pool::PoolHandle,
    queue:
        std::sync::Arc<wasmwhisk::pool::queue::LocalQueue<wasmwhisk::protocol::ActivationMessage>>,
    records: std::sync::Arc<wasmwhisk::pool::local::LocalActivationStore>,
    bus: tokio::sync::mpsc::UnboundedReceiver<wasmwhisk::pool::local::Outgoing>,
    action: std::sync::Arc<wasmwhisk::pool::ports::ExecutableAction>,
}

impl DockerPool {
    fn start(docker: DockerSettings, stem_cells: u32, pause_grace: Duration) -> DockerPool {
        use std::sync::Arc;
        use wasmwhisk::pool::local::*;
        use wasmwhisk::pool::ports::ExecutableAction;
        use wasmwhisk::pool::prewarm::StemCellSpec;
        use wasmwhisk::pool::queue::LocalQueue;
        use wasmwhisk::pool::{PoolHandle, PoolPorts, PoolSettings};
        use wasmwhisk::protocol as p;

        let settings = PoolSettings {
            user_memory_mb: 1024,
            stem_cells: vec![StemCellSpec {
                kind: "native".into(),
                memory_mb: 128,
                initial_count: stem_cells,
                reactive: None,
            }],
            memory_sync_interval: Duration::from_millis(50),
            poll_wait: Duration::from_millis(50),
            pause_grace,
            health_test_interval: Duration::from_millis(20),
            images: [("native".to_string(), proxy_image().to_string())].into(),
            ..PoolSettings::default()
        };
        let queue = Arc::new(LocalQueue::new());
        let actions = Arc::new(LocalActionStore::new());
        let records = Arc::new(LocalActivationStore::new());
        let (messenger, bus) = LocalMessenger::new();
        let ports = PoolPorts {
            actions: actions.clone(),
            activations: records.clone(),
            queue: queue.clone(),
            messenger: Arc::new(messenger),
            cluster: Arc::new(LocalClusterState::new()),
            containers: wasmwhisk::docker::DockerPort::new(Some(docker)),
        };
        let invoker = p::InvokerInstanceId::new(0, p::ByteSize::from_mb(1024));
        let pool = PoolHandle::start(
            common::engine(),
            invoker,
            p::EtcdKeys::default(),
            settings,
            ports,
        );
        let meta = p::WhiskActionMetaData::code_action(
            p::EntityPath::namespace(p::EntityName::new("guest").expect("name")),
            p::EntityName::new("misbehave").expect("name"),
            "native",
            true,
            p::ActionLimits {
                memory: 128,
                timeout: 20_000,
                ..Default::default()
            },
        );
        let action = actions.put(ExecutableAction {
            meta,
            revision: p::DocRevision::new("1-abcdef"),
            code: native_action().to_vec().into(),
            code_key: None,
        });
        DockerPool {
            pool,
            queue,
            records,
            bus,
            action,
        }
    }

    async fn metrics(&self) -> wasmwhisk::pool::introspect::PoolMetrics {
        self.pool.snapshot().await.expect("the pool runs").metrics
    }

    /// Waits up to 60 s until `check` holds for the pool's metrics.
    async fn until(
        &self,
        what: &str,
        check: impl Fn(&wasmwhisk::pool::introspect::PoolMetrics) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = self.metrics().await;
            if check(&m) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out until {what}: {m:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a creation message for the action; its ack.
    async fn create(&mut self) -> wasmwhisk::protocol::ContainerCreationAckMessage {
        use wasmwhisk::protocol as p;
        let msg = p::ContainerCreationMessage::for_action(
            "guest",
            &self.action.meta,
            self.action.revision.clone(),
            p::SchedulerInstanceId::new("0").expect("scheduler"),
        );
        let id = msg.creation_id.clone();
        self.pool.create(msg).await;
        loop {
            let out = tokio::time::timeout(Duration::from_secs(60), self.bus.recv())
                .await
                .expect("an ack within 60 s")
                .expect("the bus is open");
            if let wasmwhisk::pool::local::Outgoing::CreationAck(_, ack) = out
                && ack.creation_id == id
            {
                return *ack;
            }
        }
    }

    /// Queues an activation of the action; its id.
    fn push(&self, params: Value) -> wasmwhisk::protocol::ActivationId {
        use wasmwhisk::protocol as p;
        let msg = p::ActivationMessage::for_action(
            &self.action.meta,
            self.action.revision.clone(),
            p::Identity::basic("guest", "uuid-1", "key-1"),
            p::ControllerInstanceId::new("0").expect("controller"),
            Some(params),
            true,
        );
        let id = msg.activation_id.clone();
        let key = wasmwhisk::pool::slot::WarmKey {
            invocation_namespace: "guest".into(),
            action: self
                .action
                .meta
                .fully_qualified_name()
                .as_string_without_version(),
            revision: self.action.revision.to_string(),
        };
        self.queue.push(&key, msg);
        id
    }

    /// Waits up to 60 s for the stored record of `id`.
    async fn record(
        &self,
        id: &wasmwhisk::protocol::ActivationId,
    ) -> wasmwhisk::protocol::WhiskActivation {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(record) = self.records.record(id) {
                return record;
            }
            assert!(Instant::now() < deadline, "no record for {id}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// OpenWhisk's `FunctionPullingContainerPoolTests` "retry when chosen warmed
/// container is failed to resume", through the real pool, proxy and Docker
/// engine: the warmed container of an action is gone behind the pool's back,
/// so its `docker unpause` fails; the proxy destroys it and the pool tries
/// the creation again from the start. A ready stem cell of the kind is there,
/// so the retry takes it: the activation is the stem cell's first, not a
/// cold start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_when_chosen_warmed_container_is_failed_to_resume() {
    let owned = Owned::new("resume-failed");
    let mut f = DockerPool::start(owned.settings(), 1, Duration::from_millis(500));
    f.until("a stem cell", |m| m.prewarmed == 1).await;

    // The stem cell runs the first activation, pauses and is warmed; a
    // replacement stem cell starts.
    // Queued before the creation: a sandbox that found nothing to pull
    // within the short pause grace would be removed.
    let first = f.push(json!({"name": "first"}));
    assert!(f.create().await.is_success());
    assert!(f.record(&first).await.response.is_success());
    f.until("warmed, with a new stem cell", |m| {
        m.warmed == 1 && m.prewarmed == 1
    })
    .await;
    let paused = common_docker::wait_containers(&owned.owner, 30, |list| {
        list.iter().any(|(_, state)| state == "paused")
    });
    let (warmed, _) = paused
        .iter()
        .find(|(_, state)| state == "paused")
        .unwrap_or_else(|| panic!("no paused container: {paused:?}"));
    docker_cli(&["rm", "-f", warmed]);

    // The pool chooses the warmed one; its resume fails; the retry takes
    // the stem cell.
    let second = f.push(json!({"name": "second"}));
    assert!(f.create().await.is_success());
    let record = f.record(&second).await;
    assert!(record.response.is_success(), "{record:?}");
    let m = f.metrics().await;
    assert_eq!(
        (m.activations_by_start.cold, m.activations_by_start.prewarm),
        (0, 2),
        "the retry specialized the stem cell: {m:?}"
    );
    f.pool.shutdown(Duration::from_secs(10)).await;
}

/// OpenWhisk's `FunctionPullingContainerProxyTests` "reschedule the job to
/// the queue if /run fails connection on Running", through the real pool and
/// Docker engine: the busy container is killed behind the pool's back, so
/// the next `/run` cannot connect. The activation goes back to its queue
/// (no record, no error) and the container is removed; the next container
/// runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_the_job_to_the_queue_if_run_fails_connection_on_running() {
    // A network of its own: the killed container's address must not go to
    // another test's container before the `/run` that should be refused.
    let network = Network::new("run-refused");
    let owned = Owned::new("run-refused");
    let settings = DockerSettings {
        network: network.0.clone(),
        ..owned.settings()
    };
    let mut f = DockerPool::start(settings, 0, Duration::from_secs(120));
    assert!(f.create().await.is_success());
    let first = f.push(json!({"name": "first"}));
    assert!(f.record(&first).await.response.is_success());
    let running = common_docker::containers(&owned.owner);
    assert_eq!(running.len(), 1, "{running:?}");
    docker_cli(&["kill", &running[0].0]);
    // Gone for good before the next `/run`: its address no longer answers.
    let listed = common_docker::wait_containers(&owned.owner, 30, |list| {
        list.iter().all(|(_, state)| state == "exited")
    });
    assert!(
        listed.iter().all(|(_, state)| state == "exited"),
        "{listed:?}"
    );

    let second = f.push(json!({"name": "second"}));
    f.until("the container is removed", |m| m.busy == 0).await;
    if let Some(record) = f.records.record(&second) {
        panic!("handed back, not failed: {record:?}");
    }
    assert!(f.create().await.is_success());
    let record = f.record(&second).await;
    assert!(record.response.is_success(), "{record:?}");
    assert_eq!(
        record.response.result.as_ref().and_then(|r| r.get("ok")),
        Some(&json!(true))
    );
    f.pool.shutdown(Duration::from_secs(10)).await;
}
