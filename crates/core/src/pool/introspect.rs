//! What the pool shows about itself: OpenWhisk's `GetState` answer
//! (`TotalContainerPoolState`, docs/openwhisk.md §1.5), served by the invoker's admin
//! API at `/pool` and `/pool/count`, and the per-pool gauges OpenWhisk emits
//! every second, rendered for Prometheus.
//!
//! Both are built from plain values (lists, counts, megabytes), so the pool
//! fills them from its own bookkeeping ([`PoolCounts`], [`MemoryReport`])
//! without this module knowing its internals.
//!
//! # Choices where OpenWhisk is ambiguous
//! - **What `totalContainers` counts**: busy + in-progress + paused +
//!   prewarmed, as OpenWhisk's pool does. Stem cells still starting are left
//!   out, and so are disabling sandboxes: OpenWhisk keeps those in its busy
//!   or warmed pool while they drain, so a caller that wants them listed
//!   passes them among the busy ones.
//! - **`countsByKind`** groups stem cells by kind only (all memory sizes
//!   together), as OpenWhisk's `groupBy(kind)` does; the object's keys come
//!   out sorted.
//! - **Metric names.** OpenWhisk emits Kamon histograms
//!   (`invoker_containerPool_{memory,container}`); we expose gauges
//!   `wasmwhisk_pool_containers` and `wasmwhisk_pool_memory_mb` with `pool`
//!   and `invoker` labels, the pool names in snake case.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::slot::{MemoryReport, PoolCounts};

/// One sandbox as `GetState` lists it (OpenWhisk's `BasicContainerInfo`).
/// JSON: `{"containerId","namespace","action","kind"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    /// The sandbox's id, as text.
    pub container_id: String,
    /// The namespace its activations are invoked in.
    pub namespace: String,
    /// The action's name alone (OpenWhisk writes `action.name`, no path).
    pub action: String,
    /// The action's kind.
    pub kind: String,
}

/// The stem cells (OpenWhisk's `PrewarmedContainerPoolState`).
/// JSON: `{"total","countsByKind":{kind: n}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmedPoolState {
    /// Ready stem cells.
    pub total: usize,
    /// Ready stem cells by kind.
    pub counts_by_kind: BTreeMap<String, usize>,
}

/// Busy or paused sandboxes (OpenWhisk's `WarmContainerPoolState`).
/// JSON: `{"total","containers":[…]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmPoolState {
    /// How many (the length of `containers`).
    pub total: usize,
    /// Each sandbox.
    pub containers: Vec<ContainerView>,
}

impl WarmPoolState {
    /// The state of `containers`.
    pub fn new(containers: Vec<ContainerView>) -> Self {
        WarmPoolState {
            total: containers.len(),
            containers,
        }
    }
}

/// The `GetState` answer (OpenWhisk's `TotalContainerPoolState`).
///
/// JSON: `{"totalContainers","inProgressCount","prewarmedPool":{…},
/// "busyPool":{…},"pausedPool":{…}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotalContainerPoolState {
    /// Busy + in-progress + paused + prewarmed sandboxes.
    pub total_containers: usize,
    /// Sandboxes chosen for an action and not yet pulling.
    pub in_progress_count: usize,
    /// Ready stem cells.
    pub prewarmed_pool: PrewarmedPoolState,
    /// Sandboxes pulling activations.
    pub busy_pool: WarmPoolState,
    /// Warmed (paused) sandboxes.
    pub paused_pool: WarmPoolState,
}

impl TotalContainerPoolState {
    /// The state from the pool's parts: ready stem cells by kind (a kind may
    /// repeat, e.g. once per memory size; its counts add up), the in-progress
    /// count, and the busy and paused sandboxes.
    pub fn new(
        prewarmed_by_kind: impl IntoIterator<Item = (String, usize)>,
        in_progress: usize,
        busy: Vec<ContainerView>,
        paused: Vec<ContainerView>,
    ) -> Self {
        let mut counts_by_kind = BTreeMap::new();
        for (kind, n) in prewarmed_by_kind {
            *counts_by_kind.entry(kind).or_insert(0) += n;
        }
        let prewarmed_pool = PrewarmedPoolState {
            total: counts_by_kind.values().sum(),
            counts_by_kind,
        };
        let busy_pool = WarmPoolState::new(busy);
        let paused_pool = WarmPoolState::new(paused);
        TotalContainerPoolState {
            total_containers: busy_pool.total
                + in_progress
                + paused_pool.total
                + prewarmed_pool.total,
            in_progress_count: in_progress,
            prewarmed_pool,
            busy_pool,
            paused_pool,
        }
    }

    /// The answer of `/pool/count`: busy + paused + in-progress, the
    /// sandboxes given to actions.
    pub fn count(&self) -> usize {
        self.busy_pool.total + self.paused_pool.total + self.in_progress_count
    }
}

/// The pool's gauges: sandboxes per pool and memory per use, in MB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolMetrics {
    /// Stem cells being created.
    pub prewarm_starting: usize,
    /// Ready stem cells.
    pub prewarmed: usize,
    /// Sandboxes chosen for an action, not yet pulling.
    pub in_progress: usize,
    /// Sandboxes pulling activations.
    pub busy: usize,
    /// Warmed (paused) sandboxes.
    pub warmed: usize,
    /// Sandboxes being drained.
    pub disabling: usize,
    /// Free memory as the schedulers see it (warmed counts as free), MB.
    pub memory_free_mb: u64,
    /// Memory of busy and disabling sandboxes, MB.
    pub memory_busy_mb: u64,
    /// Memory of in-progress sandboxes, MB.
    pub memory_in_progress_mb: u64,
    /// Memory of warmed sandboxes, MB.
    pub memory_warmed_mb: u64,
    /// Activations run so far by how their sandbox started: the first of a
    /// cold-started sandbox, the first of a specialized stem cell, and
    /// every later one (warm).
    #[serde(default)]
    pub activations_by_start: StartCounts,
}

/// Activations by start kind (cold, prewarm, warm).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartCounts {
    /// First activations of cold-started sandboxes.
    pub cold: u64,
    /// First activations of specialized stem cells.
    pub prewarm: u64,
    /// Activations of sandboxes that had run before.
    pub warm: u64,
}

/// The gauges' names, help texts and units, in one place.
const CONTAINERS: (&str, &str) = (
    "wasmwhisk_pool_containers",
    "Sandboxes in each pool of the invoker.",
);
const STARTS: (&str, &str) = (
    "wasmwhisk_activations_by_start",
    "Activations by how their sandbox started: cold, prewarm (a specialized stem cell) or warm.",
);
const MEMORY: (&str, &str) = (
    "wasmwhisk_pool_memory_mb",
    "Memory of the invoker's user memory by use, in MB (free counts warmed sandboxes as free).",
);

impl PoolMetrics {
    /// The metrics from the pool's counts, its memory report, and the
    /// memory held by warmed sandboxes.
    pub fn new(counts: &PoolCounts, memory: &MemoryReport, warmed_mb: u64) -> Self {
        PoolMetrics {
            prewarm_starting: counts.prewarm_starting,
            prewarmed: counts.prewarmed_by_kind.iter().map(|(_, n)| n).sum(),
            in_progress: counts.in_progress,
            busy: counts.busy,
            warmed: counts.warmed,
            disabling: counts.disabling,
            memory_free_mb: memory.free_mb,
            memory_busy_mb: memory.busy_mb,
            memory_in_progress_mb: memory.in_progress_mb,
            memory_warmed_mb: warmed_mb,
            activations_by_start: StartCounts::default(),
        }
    }

    /// The gauges in Prometheus' text exposition format (version 0.0.4),
    /// labelled with the invoker's number:
    ///
    /// ```text
    /// # HELP wasmwhisk_pool_containers Sandboxes in each pool of the invoker.
    /// # TYPE wasmwhisk_pool_containers gauge
    /// wasmwhisk_pool_containers{pool="busy",invoker="0"} 3
    /// ```
    pub fn prometheus_text(&self, invoker: u32) -> String {
        let containers = [
            ("prewarm_starting", self.prewarm_starting as u64),
            ("prewarmed", self.prewarmed as u64),
            ("in_progress", self.in_progress as u64),
            ("busy", self.busy as u64),
            ("warmed", self.warmed as u64),
            ("disabling", self.disabling as u64),
        ];
        let memory = [
            ("free", self.memory_free_mb),
            ("busy", self.memory_busy_mb),
            ("in_progress", self.memory_in_progress_mb),
            ("warmed", self.memory_warmed_mb),
        ];
        let mut out = String::new();
        gauge(&mut out, CONTAINERS, &containers, invoker);
        gauge(&mut out, MEMORY, &memory, invoker);
        let (name, help) = STARTS;
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        let starts = self.activations_by_start;
        for (start, value) in [
            ("cold", starts.cold),
            ("prewarm", starts.prewarm),
            ("warm", starts.warm),
        ] {
            out.push_str(&format!(
                "{name}_total{{start=\"{start}\",invoker=\"{invoker}\"}} {value}\n"
            ));
        }
        out
    }
}

/// Appends one gauge family: its HELP and TYPE lines, then a sample per pool.
fn gauge(out: &mut String, (name, help): (&str, &str), samples: &[(&str, u64)], invoker: u32) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    for (pool, value) in samples {
        out.push_str(&format!(
            "{name}{{pool=\"{pool}\",invoker=\"{invoker}\"}} {value}\n"
        ));
    }
}

#[cfg(test)]
#[path = "introspect_tests.rs"]
mod tests;
