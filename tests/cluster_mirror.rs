//! The controller's view of etcd (`wasmwhisk::cluster::etcd::ClusterMirror`)
//! against a real etcd started by the test (`wasmwhisk_testkit::etcd`) on free
//! loopback ports: the first snapshot, puts and deletes, keys vanishing with
//! their lease, parsed invoker reports, warmed sandboxes and live instances,
//! and riding out an etcd restart (resumed, and from a fresh snapshot when
//! etcd compacted what the mirror missed). Leases are 2 s here.
//!
//! What etcd holds is written and read by an independent client
//! ([`Etcd::put`], [`Etcd::entries`]) or by the invoker's own
//! `EtcdClusterState`, never through the mirror.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use wasmwhisk_testkit::etcd;

use std::time::{Duration, Instant};

use etcd::{Entry, Etcd};
use wasmwhisk::cluster::etcd::{ClusterMirror, EtcdClusterState, EtcdReader, EtcdSettings};
use wasmwhisk::config::EtcdConfig;
use wasmwhisk::pool::ports::ClusterState;
use wasmwhisk::protocol::{
    ByteSize, ContainerKeyKind, ControllerInstanceId, DocRevision, EtcdKeys,
    FullyQualifiedEntityName, InvokerInstanceId, InvokerResourceMessage, InvokerState,
};

const TTL: Duration = Duration::from_secs(2);
/// How long a change may take to reach the mirror when nothing is wrong.
const SOON: Duration = Duration::from_secs(10);

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("wasmwhisk=debug")
        .try_init();
}

fn settings(etcd: &Etcd) -> EtcdSettings {
    etcd.settings(TTL)
}

fn invoker(n: u32) -> InvokerInstanceId {
    InvokerInstanceId::new(n, ByteSize::from_mb(2048))
}

fn report(status: InvokerState, free_memory: i64, tags: &[&str]) -> InvokerResourceMessage {
    InvokerResourceMessage {
        status,
        free_memory,
        busy_memory: 2048 - free_memory,
        in_progress_memory: 0,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        dedicated_namespaces: vec![],
    }
}

fn json(report: &InvokerResourceMessage) -> String {
    serde_json::to_string(report).expect("a report")
}

fn action() -> FullyQualifiedEntityName {
    "guest/hello".parse().expect("an action name")
}

fn container_key(keys: &EtcdKeys, kind: ContainerKeyKind, rev: &str, n: u32, id: &str) -> String {
    keys.container(kind, "guest", &action(), &DocRevision::new(rev), n, id)
        .expect("a container key")
}

async fn mirror(etcd: &Etcd, settings: EtcdSettings) -> ClusterMirror {
    let reader = EtcdReader::new(settings, EtcdKeys::default())
        .await
        .expect("a reader");
    let mirror = ClusterMirror::start(reader);
    mirror.wait_ready(SOON).await.unwrap_or_else(|e| {
        panic!("{e}\n{}", etcd.log());
    });
    mirror
}

/// The mirror's keys and values, in key order.
fn mirrored(mirror: &ClusterMirror) -> Vec<(String, String)> {
    let state = mirror.state();
    state
        .keys_with_prefix("")
        .into_iter()
        .map(|k| {
            let v = state.value(&k).unwrap_or_default();
            (k, v)
        })
        .collect()
}

/// What etcd holds under `whisk/`, in key order.
async fn in_etcd(etcd: &Etcd) -> Vec<(String, String)> {
    etcd.entries("whisk/")
        .await
        .into_iter()
        .map(|Entry { key, value, .. }| (key, value))
        .collect()
}

/// Waits until the mirror holds exactly what etcd holds; how long it took.
async fn converges(etcd: &Etcd, mirror: &ClusterMirror, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    let expected = in_etcd(etcd).await;
    let matched = mirror.wait_until(limit, |m| mirrored(m) == expected).await;
    assert!(
        matched,
        "{what}: the mirror did not converge within {limit:?}\n mirror: {:?}\n etcd:   {expected:?}",
        mirrored(mirror)
    );
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_then_puts_and_deletes_are_mirrored() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let up = json(&report(InvokerState::Healthy, 2048, &[]));
    etcd.put("whisk/invokers/0", up.as_bytes()).await;
    etcd.put("other/invokers/9", up.as_bytes()).await;
    let mirror = mirror(&etcd, settings(&etcd)).await;
    assert!(mirror.is_ready());
    assert_eq!(
        mirrored(&mirror),
        [("whisk/invokers/0".to_string(), up.clone())],
        "only the cluster's own prefix"
    );

    let mut updated = mirror.updated();
    let seen = *updated.borrow_and_update();
    let live = container_key(&keys, ContainerKeyKind::Existing, "1-abc", 0, "wasm-0");
    etcd.put(&live, b"").await;
    tokio::time::timeout(SOON, updated.changed())
        .await
        .expect("an update within 10 s")
        .expect("the mirror runs");
    assert!(*updated.borrow() > seen);
    assert_eq!(mirror.state().value(&live).as_deref(), Some(""));
    let prefix = keys
        .containers_prefix(ContainerKeyKind::Existing, "guest", &action(), None)
        .expect("a prefix");
    assert_eq!(mirror.state().count_with_prefix(&prefix), 1);

    etcd.put(&live, b"again").await;
    etcd.delete("whisk/invokers/0").await;
    converges(&etcd, &mirror, SOON, "a put and a delete").await;
    assert!(mirror.invokers().is_empty());
    assert_eq!(mirror.state().value(&live).as_deref(), Some("again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invokers_warmed_sandboxes_and_instances_are_read_from_the_keys() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let mirror = mirror(&etcd, settings(&etcd)).await;

    let gpu = report(InvokerState::Healthy, 1024, &["gpu"]);
    let down = report(InvokerState::Offline, 2048, &[]);
    etcd.put("whisk/invokers/2", json(&gpu).as_bytes()).await;
    etcd.put("whisk/invokers/0/pod-a/edge-a", json(&down).as_bytes())
        .await;
    etcd.put("whisk/invokers/1", b"{not json").await;
    for (rev, n, id) in [
        ("1-abc", 2, "c1"),
        ("1-abc", 0, "c2"),
        ("1-abc", 2, "c3"),
        ("2-def", 1, "c4"),
    ] {
        etcd.put(
            &container_key(&keys, ContainerKeyKind::Warmed, rev, n, id),
            b"",
        )
        .await;
    }
    // A live (not warmed) container does not count as warmed.
    etcd.put(
        &container_key(&keys, ContainerKeyKind::Existing, "1-abc", 1, "c5"),
        b"",
    )
    .await;
    converges(&etcd, &mirror, SOON, "reports and containers").await;

    let invokers = mirror.invokers();
    let summary: Vec<_> = invokers
        .iter()
        .map(|r| (r.instance, r.unique_name.clone(), r.resource.clone()))
        .collect();
    assert_eq!(
        summary,
        [(0, Some("pod-a".to_string()), down), (2, None, gpu.clone())],
        "the malformed report of invoker 1 is left out"
    );
    assert_eq!(
        mirror.warmed_invokers("guest", &action(), &DocRevision::new("1-abc")),
        [0, 2]
    );
    assert_eq!(
        mirror.warmed_invokers("guest", &action(), &DocRevision::new("2-def")),
        [1]
    );
    assert!(
        mirror
            .warmed_invokers("other", &action(), &DocRevision::new("1-abc"))
            .is_empty()
    );
    assert!(
        mirror
            .warmed_invokers("bad/ns", &action(), &DocRevision::new("1-abc"))
            .is_empty()
    );

    // A report that turns malformed stops counting; a good one counts again.
    etcd.put("whisk/invokers/2", b"[]").await;
    assert!(mirror.wait_until(SOON, |m| m.invokers().len() == 1).await);
    etcd.put("whisk/invokers/1", json(&gpu).as_bytes()).await;
    assert!(
        mirror
            .wait_until(SOON, |m| m.invokers().iter().map(|r| r.instance).eq([0, 1]))
            .await
    );

    // Instances: by their lease keys, as the processes write them.
    let controller0 = ControllerInstanceId::new("0").expect("an id");
    let controller1 = ControllerInstanceId::new("1").expect("an id");
    let c0 = EtcdClusterState::connect(settings(&etcd), &keys, &controller0)
        .await
        .expect("connected");
    let c1 = EtcdClusterState::connect(settings(&etcd), &keys, &controller1)
        .await
        .expect("connected");
    let i3 = EtcdClusterState::connect(settings(&etcd), &keys, &invoker(3))
        .await
        .expect("connected");
    assert!(
        mirror
            .wait_until(SOON, |m| m.live_instances("").len() == 3)
            .await
    );
    assert_eq!(
        mirror.live_instances("controller"),
        ["controller0", "controller1"]
    );
    assert_eq!(mirror.live_instances("invoker"), ["invoker3"]);
    assert_eq!(mirror.live_instances("controller1"), ["controller1"]);
    assert!(mirror.live_instances("scheduler").is_empty());

    // Shutdown revokes the lease: the instance is gone from the mirror at once.
    c1.shutdown().await.expect("shutdown");
    assert!(
        mirror
            .wait_until(SOON, |m| m.live_instances("controller") == ["controller0"])
            .await
    );
    c0.shutdown().await.expect("shutdown");
    i3.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_invokers_keys_leave_the_mirror_with_its_lease() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let mirror = mirror(&etcd, settings(&etcd)).await;
    let state = EtcdClusterState::connect(settings(&etcd), &keys, &invoker(3))
        .await
        .expect("connected");
    let up = report(InvokerState::Healthy, 2048, &[]);
    state
        .put(&keys.invoker(&invoker(3)), &json(&up))
        .await
        .expect("put");
    let warmed = container_key(&keys, ContainerKeyKind::Warmed, "1-abc", 3, "wasm-0");
    state.put(&warmed, "").await.expect("put");
    assert!(
        mirror
            .wait_until(SOON, |m| {
                m.invokers().len() == 1
                    && m.warmed_invokers("guest", &action(), &DocRevision::new("1-abc")) == [3]
                    && m.live_instances("invoker") == ["invoker3"]
            })
            .await,
        "the invoker's keys reach the mirror"
    );

    // A crash: nothing is revoked; etcd expires the lease on its own check,
    // late under load (see cluster_etcd.rs).
    drop(state);
    let crashed = Instant::now();
    assert!(
        mirror
            .wait_until(TTL + Duration::from_secs(6), |m| {
                m.state().count_with_prefix("whisk/") == 0
            })
            .await,
        "the keys leave the mirror when the lease expires: {:?}",
        mirrored(&mirror)
    );
    eprintln!(
        "mirror empty {:?} after the crash (TTL {TTL:?})",
        crashed.elapsed()
    );
    assert!(mirror.invokers().is_empty());
    assert!(
        mirror
            .warmed_invokers("guest", &action(), &DocRevision::new("1-abc"))
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_resumes_after_an_etcd_restart_with_what_changed_meanwhile() {
    logs();
    let mut etcd = Etcd::start();
    let up = json(&report(InvokerState::Healthy, 2048, &[]));
    etcd.put("whisk/invokers/0", up.as_bytes()).await;
    etcd.put("whisk/invokers/1", up.as_bytes()).await;
    // A long reconnect delay: the changes below are made while the mirror
    // is still away.
    let mut slow = settings(&etcd);
    slow.reconnect_min = Duration::from_secs(3);
    slow.reconnect_max = Duration::from_secs(3);
    let mirror = mirror(&etcd, slow).await;
    assert_eq!(mirror.invokers().len(), 2);

    etcd.restart();
    etcd.delete("whisk/invokers/0").await;
    let down = json(&report(InvokerState::Offline, 2048, &[]));
    etcd.put("whisk/invokers/1", down.as_bytes()).await;
    etcd.put("whisk/invokers/2", up.as_bytes()).await;
    let took = converges(&etcd, &mirror, SOON, "after the restart").await;
    eprintln!("mirror caught up {took:?} after the changes");
    let states: Vec<_> = mirror
        .invokers()
        .iter()
        .map(|r| (r.instance, r.resource.status))
        .collect();
    assert_eq!(
        states,
        [(1, InvokerState::Offline), (2, InvokerState::Healthy)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_snapshot_replaces_the_view_after_a_compaction() {
    logs();
    let mut etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let up = json(&report(InvokerState::Healthy, 2048, &[]));
    etcd.put("whisk/invokers/0", up.as_bytes()).await;
    let warmed = container_key(&keys, ContainerKeyKind::Warmed, "1-abc", 0, "c0");
    etcd.put(&warmed, b"").await;
    let mut slow = settings(&etcd);
    slow.reconnect_min = Duration::from_secs(3);
    slow.reconnect_max = Duration::from_secs(3);
    let mirror = mirror(&etcd, slow).await;
    assert_eq!(mirrored(&mirror).len(), 2);

    etcd.restart();
    etcd.delete("whisk/invokers/0").await;
    etcd.delete(&warmed).await;
    etcd.put("whisk/invokers/1", up.as_bytes()).await;
    let mut client = etcd.client().await;
    let revision = client
        .get("whisk/invokers/1", None)
        .await
        .expect("get")
        .header()
        .expect("a header")
        .revision();
    client.compact(revision, None).await.expect("compact");

    // The deletes are compacted away: only the fresh snapshot removes them.
    converges(&etcd, &mirror, SOON, "after the compaction").await;
    assert_eq!(
        mirror
            .invokers()
            .iter()
            .map(|r| r.instance)
            .collect::<Vec<_>>(),
        [1]
    );
    assert!(
        mirror
            .warmed_invokers("guest", &action(), &DocRevision::new("1-abc"))
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_etcd_means_not_ready() {
    logs();
    let mut settings = EtcdSettings::from_config(&EtcdConfig {
        endpoints: vec![format!(
            "http://127.0.0.1:{}",
            wasmwhisk_testkit::free_port()
        )],
        ..EtcdConfig::default()
    });
    settings.request_timeout = Duration::from_millis(200);
    let reader = EtcdReader::new(settings, EtcdKeys::default())
        .await
        .expect("a reader (connects lazily)");
    let mirror = ClusterMirror::start(reader);
    let error = mirror
        .wait_ready(Duration::from_millis(500))
        .await
        .expect_err("no snapshot without etcd");
    assert!(error.0.contains("no snapshot"), "{}", error.0);
    assert!(!mirror.is_ready());
    assert!(mirror.invokers().is_empty());
}
