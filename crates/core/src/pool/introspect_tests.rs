//! The `GetState` JSON as OpenWhisk's admin API serves it, and the gauges.

use serde_json::json;

use super::*;

fn view(id: u64, namespace: &str, action: &str, kind: &str) -> ContainerView {
    ContainerView {
        container_id: id.to_string(),
        namespace: namespace.into(),
        action: action.into(),
        kind: kind.into(),
    }
}

fn example() -> TotalContainerPoolState {
    TotalContainerPoolState::new(
        [("nodejs:20".to_string(), 2), ("python:3".to_string(), 1)],
        1,
        vec![
            view(4, "guest", "hello", "nodejs:20"),
            view(7, "alice", "resize", "wasm"),
        ],
        vec![view(9, "guest", "bye", "python:3")],
    )
}

#[test]
fn get_state_is_openwhisks_json() {
    assert_eq!(
        serde_json::to_value(example()).expect("writes"),
        json!({
            "totalContainers": 7,
            "inProgressCount": 1,
            "prewarmedPool": {"total": 3, "countsByKind": {"nodejs:20": 2, "python:3": 1}},
            "busyPool": {"total": 2, "containers": [
                {"containerId": "4", "namespace": "guest", "action": "hello", "kind": "nodejs:20"},
                {"containerId": "7", "namespace": "alice", "action": "resize", "kind": "wasm"}
            ]},
            "pausedPool": {"total": 1, "containers": [
                {"containerId": "9", "namespace": "guest", "action": "bye", "kind": "python:3"}
            ]}
        })
    );
}

#[test]
fn get_state_reads_back() {
    let text = serde_json::to_string(&example()).expect("writes");
    let read: TotalContainerPoolState = serde_json::from_str(&text).expect("reads");
    assert_eq!(read, example());
}

#[test]
fn empty_pool_state() {
    let state = TotalContainerPoolState::new(Vec::new(), 0, Vec::new(), Vec::new());
    assert_eq!(
        serde_json::to_value(&state).expect("writes"),
        json!({
            "totalContainers": 0, "inProgressCount": 0,
            "prewarmedPool": {"total": 0, "countsByKind": {}},
            "busyPool": {"total": 0, "containers": []},
            "pausedPool": {"total": 0, "containers": []}
        })
    );
    assert_eq!(state.count(), 0);
}

#[test]
fn a_kind_listed_twice_is_counted_once_with_both_counts() {
    let state = TotalContainerPoolState::new(
        [("nodejs:20".to_string(), 2), ("nodejs:20".to_string(), 3)],
        0,
        Vec::new(),
        Vec::new(),
    );
    assert_eq!(state.prewarmed_pool.total, 5);
    assert_eq!(
        state.prewarmed_pool.counts_by_kind,
        BTreeMap::from([("nodejs:20".to_string(), 5)])
    );
    assert_eq!(state.total_containers, 5);
}

#[test]
fn pool_count_is_busy_paused_and_in_progress() {
    // Not the stem cells: 2 busy + 1 paused + 1 in progress.
    assert_eq!(example().count(), 4);
}

fn metrics() -> PoolMetrics {
    let counts = PoolCounts {
        prewarm_starting: 1,
        prewarmed_by_kind: vec![("js".into(), 2), ("wasm".into(), 1)],
        in_progress: 1,
        busy: 3,
        warmed: 2,
        disabling: 0,
    };
    let memory = MemoryReport {
        free_mb: 1024,
        busy_mb: 768,
        in_progress_mb: 256,
    };
    PoolMetrics::new(&counts, &memory, 512)
}

#[test]
fn metrics_come_from_counts_and_memory() {
    assert_eq!(
        metrics(),
        PoolMetrics {
            activations_by_start: StartCounts::default(),
            prewarm_starting: 1,
            prewarmed: 3,
            in_progress: 1,
            busy: 3,
            warmed: 2,
            disabling: 0,
            memory_free_mb: 1024,
            memory_busy_mb: 768,
            memory_in_progress_mb: 256,
            memory_warmed_mb: 512,
        }
    );
}

#[test]
fn prometheus_text_exposition() {
    let expected = "\
# HELP wasmwhisk_pool_containers Sandboxes in each pool of the invoker.
# TYPE wasmwhisk_pool_containers gauge
wasmwhisk_pool_containers{pool=\"prewarm_starting\",invoker=\"2\"} 1
wasmwhisk_pool_containers{pool=\"prewarmed\",invoker=\"2\"} 3
wasmwhisk_pool_containers{pool=\"in_progress\",invoker=\"2\"} 1
wasmwhisk_pool_containers{pool=\"busy\",invoker=\"2\"} 3
wasmwhisk_pool_containers{pool=\"warmed\",invoker=\"2\"} 2
wasmwhisk_pool_containers{pool=\"disabling\",invoker=\"2\"} 0
# HELP wasmwhisk_pool_memory_mb Memory of the invoker's user memory by use, in MB (free counts warmed sandboxes as free).
# TYPE wasmwhisk_pool_memory_mb gauge
wasmwhisk_pool_memory_mb{pool=\"free\",invoker=\"2\"} 1024
wasmwhisk_pool_memory_mb{pool=\"busy\",invoker=\"2\"} 768
wasmwhisk_pool_memory_mb{pool=\"in_progress\",invoker=\"2\"} 256
wasmwhisk_pool_memory_mb{pool=\"warmed\",invoker=\"2\"} 512
# HELP wasmwhisk_activations_by_start Activations by how their sandbox started: cold, prewarm (a specialized stem cell) or warm.
# TYPE wasmwhisk_activations_by_start counter
wasmwhisk_activations_by_start_total{start=\"cold\",invoker=\"2\"} 0
wasmwhisk_activations_by_start_total{start=\"prewarm\",invoker=\"2\"} 0
wasmwhisk_activations_by_start_total{start=\"warm\",invoker=\"2\"} 0
";
    assert_eq!(metrics().prometheus_text(2), expected);
}

#[test]
fn prometheus_text_is_well_formed() {
    // Every sample line: name{labels} integer; every family typed before use.
    let text = PoolMetrics::default().prometheus_text(0);
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type line");
            match kind {
                "gauge" => typed.push(name.to_string()),
                // OpenMetrics: a counter's samples are `{family}_total`.
                "counter" => typed.push(format!("{name}_total")),
                other => panic!("unexpected type {other}"),
            }
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let name = series.split('{').next().expect("name");
            assert!(typed.iter().any(|t| t == name), "{line}");
            assert!(series.ends_with("\",invoker=\"0\"}"), "{line}");
            assert_eq!(value.parse::<u64>().ok(), Some(0), "{line}");
        }
    }
    assert_eq!(typed.len(), 3);
}
