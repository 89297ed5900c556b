//! The etcd cluster state (`wasmwhisk::cluster::etcd`) against a real etcd
//! started by the test (`wasmwhisk_testkit::etcd`) on free loopback ports: keys under
//! the lease, keep-alive, expiry after a crash, revoke at shutdown, riding
//! out an etcd restart and a lost lease, the controller's invoker listing
//! and prefix watch. Leases are 2 s here so expiry is quick to see.
//!
//! What etcd holds is read by an independent client ([`Etcd::entries`]),
//! not through the code under test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::time::{Duration, Instant};

use wasmwhisk::cluster::etcd::{EtcdClusterState, EtcdReader, EtcdSettings, WatchEvent};
use wasmwhisk::config::EtcdConfig;
use wasmwhisk::pool::ports::ClusterState;
use wasmwhisk::protocol::{
    ByteSize, ContainerKeyKind, DocRevision, EtcdKeys, FullyQualifiedEntityName, InvokerInstanceId,
    InvokerResourceMessage, InvokerState,
};
use wasmwhisk_testkit::etcd::Etcd;
use wasmwhisk_testkit::free_port;

const TTL: Duration = Duration::from_secs(2);

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

fn report(status: InvokerState, free_memory: i64) -> String {
    serde_json::to_string(&InvokerResourceMessage {
        status,
        free_memory,
        busy_memory: 2048 - free_memory,
        in_progress_memory: 0,
        tags: vec![],
        dedicated_namespaces: vec![],
    })
    .expect("a report")
}

fn container_key(keys: &EtcdKeys, invoker: u32, id: &str) -> String {
    let action: FullyQualifiedEntityName = "guest/hello".parse().expect("an action name");
    keys.container(
        ContainerKeyKind::Existing,
        "guest",
        &action,
        &DocRevision::new("1-abc"),
        invoker,
        id,
    )
    .expect("a container key")
}

async fn connect(etcd: &Etcd, n: u32) -> EtcdClusterState {
    EtcdClusterState::connect(settings(etcd), &EtcdKeys::default(), &invoker(n))
        .await
        .expect("connected to etcd")
}

/// Polls `check` every 20 ms until it holds; how long that took. Panics
/// after `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_event(watch: &mut wasmwhisk::cluster::etcd::PrefixWatch) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_lease_and_are_counted() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();

    let started = Instant::now();
    let state = connect(&etcd, 0).await;
    let connected = started.elapsed();
    let report_key = keys.invoker(&invoker(0));
    let port: &dyn ClusterState = &state; // what the pool holds
    port.put(&report_key, &report(InvokerState::Healthy, 2048))
        .await
        .expect("put");
    let first_key = started.elapsed();
    eprintln!(
        "connect (lease granted, lease key written): {connected:?}; \
         connect → first key written: {first_key:?}"
    );

    let lease = state.stats().lease.expect("online under a lease");
    let lease_key = "whisk/instance/invoker0/lease";
    assert_eq!(state.lease_key(), lease_key);
    assert_eq!(etcd.value(lease_key).await, Some(lease.to_string()));
    for n in 0..3 {
        state
            .put(&container_key(&keys, 0, &format!("wasm-{n}")), "")
            .await
            .expect("put");
    }
    let entries = etcd.entries("whisk/").await;
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert!(entries.iter().all(|e| e.lease == lease), "{entries:?}");

    let containers = keys
        .containers_prefix(
            ContainerKeyKind::Existing,
            "guest",
            &"guest/hello".parse().expect("name"),
            None,
        )
        .expect("prefix");
    assert_eq!(state.count_prefix(&containers).await, Ok(3));
    assert_eq!(state.count_prefix("whisk/invokers/").await, Ok(1));
    assert_eq!(state.count_prefix("whisk/nothing/").await, Ok(0));

    state
        .delete(&container_key(&keys, 0, "wasm-1"))
        .await
        .expect("delete");
    assert_eq!(state.count_prefix(&containers).await, Ok(2));
    assert_eq!(
        etcd.value(&container_key(&keys, 0, "wasm-1")).await,
        None,
        "deleted in etcd"
    );
    let stats = state.stats();
    assert!(stats.online && stats.pending == 0, "{stats:?}");
    assert_eq!(stats.held, 4, "lease key, report, two containers");

    // Sequential put latency, for the report (not asserted).
    let mut samples = Vec::new();
    for n in 0..200 {
        let t = Instant::now();
        state
            .put(&report_key, &report(InvokerState::Healthy, n))
            .await
            .expect("put");
        samples.push(t.elapsed());
    }
    samples.sort();
    eprintln!(
        "put under the lease: p50 {:?}, p99 {:?}",
        samples[100], samples[198]
    );
    state.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_holds_the_keys_past_twice_the_ttl() {
    logs();
    let etcd = Etcd::start();
    let state = connect(&etcd, 0).await;
    let key = container_key(&EtcdKeys::default(), 0, "wasm-0");
    state.put(&key, "").await.expect("put");
    let lease = state.stats().lease.expect("a lease");

    tokio::time::sleep(TTL * 2 + Duration::from_secs(1)).await;

    assert_eq!(etcd.value(&key).await.as_deref(), Some(""));
    let stats = state.stats();
    assert_eq!(stats.lease, Some(lease), "the same lease, kept alive");
    assert_eq!(stats.outages, 0, "{stats:?}");
    assert!(etcd.lease_ttl(lease).await > 0);
    state.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_leaves_the_keys_to_expire_within_the_ttl() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let state = connect(&etcd, 3).await;
    state
        .put(
            &keys.invoker(&invoker(3)),
            &report(InvokerState::Healthy, 2048),
        )
        .await
        .expect("put");
    state
        .put(&container_key(&keys, 3, "wasm-0"), "")
        .await
        .expect("put");

    // A crash: the session's tasks are aborted, nothing is revoked.
    drop(state);
    let crashed = Instant::now();
    assert_eq!(
        etcd.entries("whisk/").await.len(),
        3,
        "still there at first"
    );
    // etcd expires leases from its own periodic check, and a loaded
    // machine (the whole suite in parallel on 2 cores) delays it: 2.4 s
    // measured alone, over 3.5 s seen under CI load.
    eventually(TTL + Duration::from_secs(4), "keys expired", async || {
        etcd.entries("whisk/").await.is_empty()
    })
    .await;
    eprintln!(
        "keys gone {:?} after the crash (TTL {TTL:?})",
        crashed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_removes_every_key_at_once() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let state = connect(&etcd, 1).await;
    let report_key = keys.invoker(&invoker(1));
    state
        .put(&report_key, &report(InvokerState::Healthy, 2048))
        .await
        .expect("put");
    state
        .put(&container_key(&keys, 1, "wasm-0"), "")
        .await
        .expect("put");
    let lease = state.stats().lease.expect("a lease");

    // The pool publishes `down` first, then shuts the state down.
    let down = report(InvokerState::Offline, 2048);
    state.put(&report_key, &down).await.expect("put down");
    assert_eq!(etcd.value(&report_key).await, Some(down));
    let t = Instant::now();
    state.shutdown().await.expect("shutdown");
    let took = t.elapsed();

    assert!(etcd.entries("whisk/").await.is_empty(), "gone at once");
    assert_eq!(etcd.lease_ttl(lease).await, -1, "the lease is revoked");
    eprintln!("shutdown (flush + revoke) took {took:?}");
    assert!(state.put(&report_key, "x").await.is_err(), "closed");
    assert!(state.delete(&report_key).await.is_err(), "closed");
    assert!(state.count_prefix("whisk/").await.is_err(), "closed");
    assert_eq!(state.shutdown().await, Ok(()), "a second shutdown is fine");
    assert!(!state.stats().online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_restart_brings_every_key_back_under_a_new_lease() {
    logs();
    let mut etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let state = connect(&etcd, 2).await;
    let report_key = keys.invoker(&invoker(2));
    let (a, b, c) = (
        container_key(&keys, 2, "wasm-a"),
        container_key(&keys, 2, "wasm-b"),
        container_key(&keys, 2, "wasm-c"),
    );
    state
        .put(&report_key, &report(InvokerState::Healthy, 2048))
        .await
        .expect("put");
    state.put(&a, "").await.expect("put");
    state.put(&b, "").await.expect("put");
    let old = state.stats().lease.expect("a lease");

    etcd.kill();
    let noticed = eventually(
        Duration::from_secs(5),
        "the state went offline",
        async || !state.stats().online,
    )
    .await;
    eprintln!("etcd killed → state offline in {noticed:?}");

    // While etcd is away: calls fail fast, and are remembered.
    let latest = report(InvokerState::Healthy, 1024);
    let t = Instant::now();
    assert!(state.put(&report_key, &latest).await.is_err());
    let fail_fast = t.elapsed();
    assert!(state.delete(&b).await.is_err());
    assert!(state.put(&c, "").await.is_err());
    assert!(state.count_prefix("whisk/").await.is_err());
    eprintln!("a put while etcd is away fails in {fail_fast:?}");
    // Well under the 2 s request timeout: the call did not wait for etcd
    // (a wall-clock bound, so not a sub-second one on a shared machine).
    assert!(fail_fast < Duration::from_secs(1), "{fail_fast:?}");

    etcd.restart();
    let restarted = Instant::now();
    eventually(
        Duration::from_secs(10),
        "the state is back online",
        async || state.stats().online,
    )
    .await;
    eprintln!(
        "etcd healthy again → every key re-written in {:?}",
        restarted.elapsed()
    );

    let stats = state.stats();
    let new = stats.lease.expect("a new lease");
    assert_ne!(new, old);
    assert_eq!((stats.outages, stats.leases, stats.pending), (1, 2, 0));
    let entries = etcd.entries("whisk/").await;
    let mut found: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    found.sort();
    let new_lease = new.to_string();
    let mut expected = vec![
        ("whisk/instance/invoker2/lease", new_lease.as_str()),
        (report_key.as_str(), latest.as_str()),
        (a.as_str(), ""),
        (c.as_str(), ""),
    ];
    expected.sort();
    assert_eq!(found, expected, "the latest values; b deleted");
    assert!(entries.iter().all(|e| e.lease == new), "{entries:?}");
    assert_eq!(etcd.lease_ttl(old).await, -1, "the old lease is revoked");

    assert_eq!(state.count_prefix("whisk/namespace/").await, Ok(2));
    state.put(&b, "").await.expect("writes work again");
    state.shutdown().await.expect("shutdown");
    assert!(etcd.entries("whisk/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_etcd_is_ridden_out_and_expired_keys_put_back() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let state = connect(&etcd, 5).await;
    let report_key = keys.invoker(&invoker(5));
    let container = container_key(&keys, 5, "wasm-0");
    state
        .put(&report_key, &report(InvokerState::Healthy, 2048))
        .await
        .expect("put");
    state.put(&container, "").await.expect("put");
    let old = state.stats().lease.expect("a lease");

    // Frozen longer than the TTL: no answer at all, not even a refusal.
    etcd.pause();
    let paused = Instant::now();
    let noticed = eventually(
        Duration::from_secs(5),
        "the state went offline",
        async || !state.stats().online,
    )
    .await;
    let latest = report(InvokerState::Unhealthy, 512);
    let t = Instant::now();
    assert!(state.put(&report_key, &latest).await.is_err());
    let fail_fast = t.elapsed();
    eprintln!("etcd frozen → state offline in {noticed:?}; a put then fails in {fail_fast:?}");
    // Well under the 2 s request timeout: the call did not wait for etcd
    // (a wall-clock bound, so not a sub-second one on a shared machine).
    assert!(fail_fast < Duration::from_secs(1), "{fail_fast:?}");
    tokio::time::sleep((TTL + Duration::from_secs(1)).saturating_sub(paused.elapsed())).await;
    etcd.resume();

    let back = eventually(
        Duration::from_secs(10),
        "keys back under a new lease",
        async || {
            let Some(lease) = state.stats().lease.filter(|&l| l != old) else {
                return false;
            };
            let entries = etcd.entries("whisk/").await;
            entries.len() == 3 && entries.iter().all(|e| e.lease == lease)
        },
    )
    .await;
    eprintln!("etcd thawed → keys back under a new lease in {back:?}");
    assert_eq!(etcd.value(&report_key).await, Some(latest));
    assert_eq!(etcd.value(&container).await.as_deref(), Some(""));
    assert_eq!(etcd.lease_ttl(old).await, -1, "the old lease is gone");
    state.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lost_behind_its_back_is_granted_again() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let state = connect(&etcd, 4).await;
    let key = container_key(&keys, 4, "wasm-0");
    state.put(&key, "").await.expect("put");

    // Someone revokes the lease: every key vanishes; the keep-alive learns
    // the lease is gone, and the state grants a new one and re-puts.
    let first = state.stats().lease.expect("a lease");
    let mut client = etcd.client().await;
    client.lease_revoke(first).await.expect("revoke");
    let back = eventually(
        Duration::from_secs(5),
        "keys back after a revoke",
        async || {
            etcd.value(&key).await.is_some() && state.stats().lease.is_some_and(|l| l != first)
        },
    )
    .await;
    eprintln!("revoked lease → keys back in {back:?}");

    // Someone deletes the lease key: OpenWhisk grants a new lease then.
    let second = state.stats().lease.expect("a lease");
    etcd.delete(state.lease_key()).await;
    eventually(
        Duration::from_secs(5),
        "a new lease after the lease key was deleted",
        async || {
            state.stats().lease.is_some_and(|l| l != second)
                && etcd.value(state.lease_key()).await == state.stats().lease.map(|l| l.to_string())
        },
    )
    .await;
    assert_eq!(etcd.value(&key).await.as_deref(), Some(""));
    assert_eq!(
        etcd.lease_ttl(second).await,
        -1,
        "the replaced lease is revoked"
    );
    state.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invokers_are_listed_and_malformed_reports_skipped() {
    logs();
    let etcd = Etcd::start();
    let keys = EtcdKeys::default();
    // As OpenWhisk's invoker writes it.
    etcd.put(
        "whisk/invokers/0",
        br#"{"status":"up","freeMemory":1792,"busyMemory":256,"inProgressMemory":0,"tags":[],"dedicatedNamespaces":[]}"#,
    )
    .await;
    etcd.put(
        "whisk/invokers/2/pod-2/invoker-two",
        br#"{"status":"unhealthy","freeMemory":512,"busyMemory":1024,"inProgressMemory":512,"tags":["gpu"],"dedicatedNamespaces":["ns1"]}"#,
    )
    .await;
    etcd.put("whisk/invokers/1", b"{not json").await;
    etcd.put("whisk/invokers/4", br#"{"status":"up"}"#).await;
    etcd.put("whisk/invokers/three", br#"{"status":"up","freeMemory":1,"busyMemory":0,"inProgressMemory":0,"tags":[],"dedicatedNamespaces":[]}"#).await;
    etcd.put("whisk/invokers/5", &[0xff, 0xfe]).await;
    etcd.put("whisk/invokersX", b"not under the prefix").await;
    let state = connect(&etcd, 7).await;
    state
        .put(
            &keys.invoker(&invoker(7)),
            &report(InvokerState::Healthy, 2000),
        )
        .await
        .expect("put");

    let reader = EtcdReader::new(settings(&etcd), keys.clone())
        .await
        .expect("a reader");
    let reports = reader.invokers().await.expect("listed");
    let ids: Vec<u32> = reports.iter().map(|r| r.instance).collect();
    assert_eq!(ids, [0, 2, 7]);
    assert_eq!(reports[0].resource.free_memory, 1792);
    assert!(reports[0].resource.is_usable());
    assert_eq!(reports[1].unique_name.as_deref(), Some("pod-2"));
    assert_eq!(reports[1].displayed_name.as_deref(), Some("invoker-two"));
    assert_eq!(reports[1].resource.status, InvokerState::Unhealthy);
    assert_eq!(reports[1].resource.tags, ["gpu"]);
    assert!(!reports[1].resource.accepts_namespace("guest"));
    assert_eq!(reports[2].resource.free_memory, 2000);
    assert_eq!(
        reader.malformed(),
        4,
        "bad JSON, missing fields, bad key, not UTF-8"
    );
    state.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_sees_changes_and_resumes_after_an_etcd_restart() {
    logs();
    let mut etcd = Etcd::start();
    let keys = EtcdKeys::default();
    let up = report(InvokerState::Healthy, 2048);
    etcd.put("whisk/invokers/0", up.as_bytes()).await;
    let reader = EtcdReader::new(settings(&etcd), keys.clone())
        .await
        .expect("a reader");
    let mut watch = reader.watch_prefix("whisk/invokers/");

    match next_event(&mut watch).await {
        WatchEvent::Snapshot { entries, .. } => {
            assert_eq!(entries, [("whisk/invokers/0".to_string(), up.clone())]);
        }
        other => panic!("expected a snapshot first, got {other:?}"),
    }

    let state = connect(&etcd, 1).await;
    let key1 = keys.invoker(&invoker(1));
    state.put(&key1, &up).await.expect("put");
    match next_event(&mut watch).await {
        WatchEvent::Put { key, value, .. } => assert_eq!((key, value), (key1.clone(), up.clone())),
        other => panic!("expected a put, got {other:?}"),
    }
    etcd.delete("whisk/invokers/0").await;
    match next_event(&mut watch).await {
        WatchEvent::Delete { key, .. } => assert_eq!(key, "whisk/invokers/0"),
        other => panic!("expected a delete, got {other:?}"),
    }

    etcd.restart();
    eventually(
        Duration::from_secs(10),
        "the state is back online",
        async || state.stats().online,
    )
    .await;
    etcd.put("whisk/invokers/2", up.as_bytes()).await;
    let listed: Vec<u32> = reader
        .invokers()
        .await
        .expect("the reader's own calls work after the restart")
        .iter()
        .map(|r| r.instance)
        .collect();
    assert_eq!(listed, [1, 2]);
    // Resumed, not restarted: the state's re-put of invoker 1, then the new
    // key, and no snapshot.
    loop {
        match next_event(&mut watch).await {
            WatchEvent::Put { key, .. } if key == "whisk/invokers/2" => break,
            WatchEvent::Put { key, .. } => assert_eq!(key, key1),
            other => panic!("expected puts after the restart, got {other:?}"),
        }
    }

    // The invoker crashes: its report goes when its lease expires.
    drop(state);
    let crashed = Instant::now();
    match next_event(&mut watch).await {
        WatchEvent::Delete { key, .. } => assert_eq!(key, key1),
        other => panic!("expected the crashed invoker's delete, got {other:?}"),
    }
    eprintln!(
        "watch saw the crashed invoker's report go {:?} after the crash",
        crashed.elapsed()
    );
    assert_eq!(reader.malformed(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_behind_a_compaction_starts_over_from_a_snapshot() {
    logs();
    let mut etcd = Etcd::start();
    let up = report(InvokerState::Healthy, 2048);
    etcd.put("whisk/invokers/0", up.as_bytes()).await;
    // A long first backoff leaves time to compact before the watch is back.
    let mut slow = settings(&etcd);
    slow.reconnect_min = Duration::from_secs(5);
    slow.reconnect_max = Duration::from_secs(5);
    let reader = EtcdReader::new(slow, EtcdKeys::default())
        .await
        .expect("a reader");
    let mut watch = reader.watch_prefix("whisk/invokers/");
    assert!(matches!(
        next_event(&mut watch).await,
        WatchEvent::Snapshot { .. }
    ));

    etcd.restart();
    etcd.delete("whisk/invokers/0").await;
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

    // The missed delete and put are compacted away: a fresh snapshot.
    match next_event(&mut watch).await {
        WatchEvent::Snapshot {
            entries,
            revision: at,
        } => {
            assert_eq!(entries, [("whisk/invokers/1".to_string(), up)]);
            assert!(at >= revision);
        }
        other => panic!("expected a fresh snapshot, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_without_etcd_fails() {
    logs();
    let mut settings = EtcdSettings::from_config(&EtcdConfig {
        endpoints: vec![format!("http://127.0.0.1:{}", free_port())],
        ..EtcdConfig::default()
    });
    settings.request_timeout = Duration::from_millis(500);
    let t = Instant::now();
    let result = EtcdClusterState::connect(settings, &EtcdKeys::default(), &invoker(0)).await;
    assert!(result.is_err());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
