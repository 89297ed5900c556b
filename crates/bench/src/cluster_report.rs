//! The report of `wasmwhisk bench cluster`: Markdown tables, each row with
//! its target from issue 5 and whether it was met, and where the CPU went
//! under load.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::api_rows::{Client, Throughput};
use super::cluster::Plan;
use super::cluster_nats::{Hops, NatsCounts};
use super::stats::{Samples, human, machine};

/// The warm invoke target (p50).
const WARM_TARGET: Duration = Duration::from_millis(1);
/// The start → `up` target.
const UP_TARGET: Duration = Duration::from_secs(1);
/// The throughput target, invokes per second.
const THROUGHPUT_TARGET: f64 = 5_000.0;
/// The processes whose CPU time the throughput rows read, in the order of
/// [`Throughput::cpu`].
const PROCESSES: [&str; 6] = [
    "controller0",
    "invoker0",
    "invoker1",
    "nats-server",
    "etcd",
    "standalone",
];
/// How many of [`PROCESSES`] are the cluster.
const CLUSTER_PROCESSES: usize = 5;

/// The invoker start rows.
pub(super) struct Starts {
    /// Whether the shared compile cache held anything before this run.
    pub(super) cache_was_warm: bool,
    /// The first start on a new data directory: spawn → listening line.
    pub(super) first_listening: Duration,
    /// The same start: spawn → `up` in etcd.
    pub(super) first_up: Duration,
    /// Spawn → listening line, each restart.
    pub(super) to_listening: Samples,
    /// Spawn → `up` in etcd, each restart.
    pub(super) to_up: Samples,
}

/// One client's warm invoke rows, cluster and standalone.
pub(super) struct LatencyPair {
    /// The client.
    pub(super) client: Client,
    /// Through controller0.
    pub(super) cluster: Samples,
    /// Through standalone.
    pub(super) standalone: Samples,
}

/// One sample of the dead-invoker row.
pub(super) struct Kill {
    /// The invoker killed: the one holding the action's sandbox.
    pub(super) victim: u32,
    /// The action's home invoker.
    pub(super) home: u32,
    /// SIGKILL → its report key deleted, as the bench's watch saw it.
    pub(super) to_gone: Duration,
    /// The invoke after that, blocking.
    pub(super) invoke: Duration,
    /// Why that invoke failed, if it did.
    pub(super) failure: Option<String>,
    /// The invokers holding the action's sandboxes after it.
    pub(super) ran_on: BTreeSet<u32>,
}

/// Everything measured, printed at the end.
pub(super) struct Report {
    lease: Duration,
    env: Vec<(String, String)>,
    nats_version: String,
    etcd_version: String,
    /// The invoker start rows.
    pub(super) starts: Option<Starts>,
    /// The warm invoke rows.
    pub(super) latency: Vec<LatencyPair>,
    /// What nats-server counted over the sequential cluster invokes, and
    /// how many invokes those were.
    pub(super) nats_per_invoke: Option<(NatsCounts, usize)>,
    /// The floor of a NATS hop.
    pub(super) hops: Option<Hops>,
    /// The throughput rows: which server, the run, and the sandboxes of
    /// the load's actions each invoker held after it (cluster only).
    pub(super) throughput: Vec<(&'static str, Throughput, BTreeMap<u32, usize>)>,
    /// The dead-invoker samples.
    pub(super) kills: Vec<Kill>,
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

impl Report {
    /// An empty report of a run of `plan`.
    pub(super) fn new(
        plan: &Plan,
        env: Vec<(String, String)>,
        nats_version: &str,
        etcd_version: &str,
    ) -> Report {
        Report {
            lease: plan.lease,
            env,
            nats_version: nats_version.to_string(),
            etcd_version: etcd_version.to_string(),
            starts: None,
            latency: Vec::new(),
            nats_per_invoke: None,
            hops: None,
            throughput: Vec::new(),
            kills: Vec::new(),
        }
    }

    /// Prints the tables.
    pub(super) fn print(&self) {
        println!("## Cluster (`wasmwhisk bench cluster`)\n");
        println!("Machine: {}\n", machine());
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
        println!(
            "Cluster: {} (`-js`, file store) and {} on loopback, `wasmwhisk controller --id 0`, \
             `wasmwhisk invoker --id 0` and `--id 1`, with {}; `wasmwhisk standalone` beside \
             them; data directories in {}; clients on the same machine, keep-alive.\n",
            self.nats_version,
            self.etcd_version,
            env.join(", "),
            std::env::temp_dir().display()
        );
        self.print_latency();
        self.print_nats();
        self.print_throughput();
        self.print_cpu();
        self.print_kills();
    }

    fn print_latency(&self) {
        println!("| what | p50 | p90 | p99 | samples | target (p50) | |");
        println!("|---|---|---|---|---|---|---|");
        if let Some(s) = &self.starts {
            let cache = if s.cache_was_warm { "warm" } else { "cold" };
            println!(
                "| first invoker start on a new data directory → listening line / → `up` in etcd (compile cache {cache}) | {} / {} | | | 1 | | |",
                human(s.first_listening),
                human(s.first_up)
            );
            row(
                "invoker start → listening line, warm compile cache",
                &s.to_listening,
                "",
                None,
            );
            row(
                "invoker start → `up` in etcd (`whisk/invokers/0`, seen by a watch), warm compile cache",
                &s.to_up,
                "≤ 1 s",
                Some(s.to_up.p50() <= UP_TARGET),
            );
        }
        for pair in &self.latency {
            let client = pair.client.name();
            row(
                &format!(
                    "warm blocking `result=true` invoke, Rust hello, cluster: controller → NATS → invoker → controller ({client})"
                ),
                &pair.cluster,
                "≤ 1 ms",
                Some(pair.cluster.p50() <= WARM_TARGET),
            );
            row(
                &format!("the same, standalone, interleaved ({client})"),
                &pair.standalone,
                "",
                None,
            );
        }
        if !self.latency.is_empty() {
            println!("\n| warm invoke, cluster ÷ standalone | p50 | p99 |");
            println!("|---|---|---|");
            for pair in &self.latency {
                let ratio = |q: fn(&Samples) -> Duration| {
                    q(&pair.cluster).as_secs_f64() / q(&pair.standalone).as_secs_f64().max(1e-9)
                };
                println!(
                    "| {} | {:.2}× | {:.2}× |",
                    pair.client.name(),
                    ratio(Samples::p50),
                    ratio(Samples::p99)
                );
            }
        }
    }

    fn print_nats(&self) {
        if let Some((counts, invokes)) = &self.nats_per_invoke {
            let per = |n: u64| n as f64 / (*invokes).max(1) as f64;
            println!(
                "\n| nats-server's `/varz` over the sequential cluster invokes | invokes | messages in per invoke | messages out per invoke | bytes in per invoke | bytes out per invoke |"
            );
            println!("|---|---|---|---|---|---|");
            println!(
                "| all clients (controller, invokers) | {invokes} | {:.1} | {:.1} | {:.0} | {:.0} |",
                per(counts.in_msgs),
                per(counts.out_msgs),
                per(counts.in_bytes),
                per(counts.out_bytes)
            );
        }
        if let Some(hops) = &self.hops {
            println!(
                "\n| one NATS hop, from the bench through the same nats-server (1 KiB payload) | p50 | p90 | p99 | samples |"
            );
            println!("|---|---|---|---|---|");
            for (what, samples) in [
                ("core NATS request → reply", &hops.request_reply),
                (
                    "JetStream publish → ack (file-stored work queue)",
                    &hops.publish_ack,
                ),
            ] {
                println!(
                    "| {what} | {} | {} | {} | {} |",
                    human(samples.p50()),
                    human(samples.p90()),
                    human(samples.p99()),
                    samples.len()
                );
            }
        }
    }

    fn print_throughput(&self) {
        if self.throughput.is_empty() {
            return;
        }
        println!(
            "\n| throughput: Rust hello ×2 actions, blocking `result=true` | client | clients | invokes | failed | invokes/s | p50 | p99 | sandboxes after it | target | |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for (what, run, sandboxes) in &self.throughput {
            let held: Vec<String> = sandboxes
                .iter()
                .map(|(n, count)| format!("invoker{n}: {count}"))
                .collect();
            let (target, verdict) = if *what == "cluster" {
                ("≥ 5,000/s", met(run.rate() >= THROUGHPUT_TARGET))
            } else {
                ("(reference)", "")
            };
            println!(
                "| {what} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {target} | {verdict} |",
                run.client.name(),
                run.clients,
                run.ok,
                run.failed,
                run.rate(),
                human(run.latency.p50()),
                human(run.latency.p99()),
                held.join(", "),
            );
        }
        for (what, run, _) in &self.throughput {
            if let Some(failure) = &run.first_failure {
                println!("\nfirst failure ({what}, {}): {failure}", run.client.name());
            }
        }
    }

    fn print_cpu(&self) {
        if self.throughput.is_empty() {
            return;
        }
        let heads: Vec<String> = self
            .throughput
            .iter()
            .map(|(what, run, _)| format!("{what}, {}", run.client.name()))
            .collect();
        println!(
            "\n| CPU over the measured phase: seconds (cores) | {} |",
            heads.join(" | ")
        );
        println!("|---|{}", "---|".repeat(heads.len()));
        let cell = |seconds: f64, run: &Throughput| {
            format!(
                "{seconds:.2} s ({:.2})",
                seconds / run.took.as_secs_f64().max(1e-9)
            )
        };
        for (i, process) in PROCESSES.iter().enumerate() {
            let cells: Vec<String> = self
                .throughput
                .iter()
                .map(|(_, run, _)| cell(run.cpu.get(i).copied().unwrap_or(0.0), run))
                .collect();
            println!("| {process} | {} |", cells.join(" | "));
        }
        let cells: Vec<String> = self
            .throughput
            .iter()
            .map(|(_, run, _)| cell(run.bench_cpu, run))
            .collect();
        println!("| the bench (its clients) | {} |", cells.join(" | "));
        let totals: Vec<f64> = self
            .throughput
            .iter()
            .map(|(_, run, _)| run.cpu.iter().sum::<f64>() + run.bench_cpu)
            .collect();
        let cells: Vec<String> = self
            .throughput
            .iter()
            .zip(&totals)
            .map(|((_, run, _), total)| cell(*total, run))
            .collect();
        println!("| **all** | {} |", cells.join(" | "));
        let cells: Vec<String> = self
            .throughput
            .iter()
            .map(|(what, run, _)| {
                let servers: f64 = if *what == "cluster" {
                    run.cpu.iter().take(CLUSTER_PROCESSES).sum()
                } else {
                    run.cpu.get(CLUSTER_PROCESSES).copied().unwrap_or(0.0)
                };
                format!("{:.0} µs", servers * 1e6 / run.ok.max(1) as f64)
            })
            .collect();
        println!(
            "| server CPU per invoke (the cluster's five processes, or standalone; not the clients) | {} |",
            cells.join(" | ")
        );
    }

    fn print_kills(&self) {
        if self.kills.is_empty() {
            return;
        }
        let ttl = self.lease.as_secs();
        println!(
            "\n| dead invoker, SIGKILLed | SIGKILL → its `whisk/invokers/N` key deleted | target (lease TTL) | | then: blocking invoke of the action | answered | its sandboxes after it | |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for kill in &self.kills {
            let answered = match &kill.failure {
                None => "200, greeting".to_string(),
                Some(failure) => format!("failed: {failure}"),
            };
            let on: Vec<String> = kill.ran_on.iter().map(|n| format!("invoker{n}")).collect();
            let moved = kill.failure.is_none()
                && !kill.ran_on.is_empty()
                && !kill.ran_on.contains(&kill.victim);
            println!(
                "| invoker{} (holding the action's sandbox; its home: invoker{}) | {:.2} s | ≤ {ttl} s | {} | {} | {answered} | {} | {} |",
                kill.victim,
                kill.home,
                kill.to_gone.as_secs_f64(),
                met(kill.to_gone <= self.lease),
                human(kill.invoke),
                on.join(", "),
                if moved {
                    "no longer chosen"
                } else {
                    "**still chosen**"
                }
            );
        }
    }
}

/// A latency row; `verdict` is whether its target was met, if it has one.
fn row(what: &str, samples: &Samples, target: &str, verdict: Option<bool>) {
    println!(
        "| {what} | {} | {} | {} | {} | {target} | {} |",
        human(samples.p50()),
        human(samples.p90()),
        human(samples.p99()),
        samples.len(),
        verdict.map(met).unwrap_or("")
    );
}
