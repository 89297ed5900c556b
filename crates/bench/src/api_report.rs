//! The report of `wasmwhisk bench api`: Markdown tables, each row with its
//! target from issue 4 and whether it was met.

use std::time::Duration;

use super::api_rows::Throughput;
use super::api_server::ProcStats;
use super::stats::{Samples, human, machine};

/// The idle RSS target, MiB.
const RSS_TARGET_MIB: f64 = 40.0;
/// The start → serving target.
const START_TARGET: Duration = Duration::from_millis(300);
/// The throughput target, invokes per second.
const THROUGHPUT_TARGET: f64 = 10_000.0;

/// The start rows.
pub(super) struct StartRows {
    /// Spawn → listening line of the first start on the new data directory.
    pub(super) first_start: Duration,
    /// Whether the shared compile cache held anything before this run.
    pub(super) cache_was_warm: bool,
    /// Spawn → listening line, each restart.
    pub(super) to_listening: Samples,
    /// Spawn → first `/ping` answered, each restart.
    pub(super) to_ping: Samples,
}

/// Memory of the server at one moment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Memory {
    rss_kib: u64,
    pss_kib: u64,
    threads: u64,
}

impl Memory {
    /// The memory part of `stats`.
    pub(super) fn of(stats: ProcStats) -> Memory {
        Memory {
            rss_kib: stats.rss_kib,
            pss_kib: stats.pss_kib,
            threads: stats.threads,
        }
    }
}

/// One latency row.
struct Row {
    what: String,
    samples: Samples,
    target: Duration,
}

/// Everything measured, printed at the end.
pub(super) struct Report {
    starts: StartRows,
    env: Vec<(String, String)>,
    idle: Duration,
    rows: Vec<Row>,
    throughput: Vec<Throughput>,
    memory: Option<(Memory, Memory)>,
    stopped_in: Option<Duration>,
    database: Option<(u64, u64)>,
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report {
    /// A report of the start rows; the rest is added as measured.
    pub(super) fn new(starts: StartRows, env: Vec<(String, String)>, idle: Duration) -> Report {
        Report {
            starts,
            env,
            idle,
            rows: Vec::new(),
            throughput: Vec::new(),
            memory: None,
            stopped_in: None,
            database: None,
        }
    }

    /// A latency row whose p50 target is `target_us` µs.
    pub(super) fn latency(&mut self, what: &str, samples: Samples, target_us: u64) {
        self.rows.push(Row {
            what: what.to_string(),
            samples,
            target: Duration::from_micros(target_us),
        });
    }

    /// A throughput row.
    pub(super) fn throughput(&mut self, run: Throughput) {
        self.throughput.push(run);
    }

    /// The idle memory after start and after the runs.
    pub(super) fn memory(&mut self, after_start: Memory, after_runs: Memory) {
        self.memory = Some((after_start, after_runs));
    }

    /// Sizes of the database file and its WAL after the runs, bytes.
    pub(super) fn database(&mut self, db: u64, wal: u64) {
        self.database = Some((db, wal));
    }

    /// How long the server took to exit after SIGTERM.
    pub(super) fn stopped_in(&mut self, took: Duration) {
        self.stopped_in = Some(took);
    }

    /// Prints the tables.
    pub(super) fn print(&self) {
        println!("## REST API (`wasmwhisk bench api`)\n");
        println!("Machine: {}\n", machine());
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("`{k}={v}`")).collect();
        println!(
            "Server: `wasmwhisk standalone --port 0` on a new data directory in {}, with {}; \
             clients on the same machine, loopback, keep-alive.\n",
            std::env::temp_dir().display(),
            env.join(", ")
        );
        println!("| what | p50 | p90 | p99 | samples | target (p50) | |");
        println!("|---|---|---|---|---|---|---|");
        let s = &self.starts;
        println!(
            "| first start on the new data directory → listening line (compile cache {}) | {} | | | 1 | | |",
            if s.cache_was_warm { "warm" } else { "cold" },
            human(s.first_start)
        );
        for (what, samples) in [
            (
                "start → listening line, warm compile cache",
                &s.to_listening,
            ),
            ("start → first `GET /ping` answered", &s.to_ping),
        ] {
            print_row(what, samples, START_TARGET, "≤ 300 ms");
        }
        for row in &self.rows {
            print_row(
                &row.what,
                &row.samples,
                row.target,
                &target_text(row.target),
            );
        }
        self.print_throughput();
        self.print_memory();
        if let Some((db, wal)) = self.database {
            println!(
                "\nDatabase after the runs: `wasmwhisk.db` {:.1} MiB, WAL {:.1} MiB",
                mib(db / 1024),
                mib(wal / 1024)
            );
        }
        if let Some(took) = self.stopped_in {
            println!("\nSIGTERM → exit (status 0), idle server: {}", human(took));
        }
    }

    fn print_throughput(&self) {
        println!(
            "\n| throughput: Rust hello, blocking `result=true` | clients | invokes | failed | invokes/s | p50 | p99 | server CPU | bench CPU | server disk writes | target | |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for run in &self.throughput {
            let secs = run.took.as_secs_f64().max(1e-9);
            println!(
                "| {} | {} | {} | {} | {:.0} | {} | {} | {:.2} cores | {:.2} cores | {:.1} KiB/invoke | ≥ 10,000/s | {} |",
                run.client.name(),
                run.clients,
                run.ok,
                run.failed,
                run.rate(),
                human(run.latency.p50()),
                human(run.latency.p99()),
                run.server_cpu / secs,
                run.bench_cpu / secs,
                run.server_written as f64 / 1024.0 / run.ok.max(1) as f64,
                met(run.rate() >= THROUGHPUT_TARGET)
            );
            if let Some(failure) = &run.first_failure {
                println!("\nfirst failure ({}): {failure}\n", run.client.name());
            }
        }
    }

    fn print_memory(&self) {
        let Some((start, runs)) = self.memory else {
            return;
        };
        let idle = self.idle.as_secs_f64();
        println!("\n| server memory, idle {idle:.1} s | RSS | PSS | threads | target | |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| after start | {:.1} MiB | {:.1} MiB | {} | RSS ≤ 40 MiB | {} |",
            mib(start.rss_kib),
            mib(start.pss_kib),
            start.threads,
            met(mib(start.rss_kib) <= RSS_TARGET_MIB)
        );
        println!(
            "| after the runs (warm sandboxes kept) | {:.1} MiB | {:.1} MiB | {} | | |",
            mib(runs.rss_kib),
            mib(runs.pss_kib),
            runs.threads
        );
    }
}

/// `≤ 250 µs`, `≤ 2 ms`.
fn target_text(target: Duration) -> String {
    let micros = target.as_micros();
    if micros >= 1000 && micros.is_multiple_of(1000) {
        format!("≤ {} ms", micros / 1000)
    } else {
        format!("≤ {micros} µs")
    }
}

fn print_row(what: &str, samples: &Samples, target: Duration, target_text: &str) {
    println!(
        "| {what} | {} | {} | {} | {} | {target_text} | {} |",
        human(samples.p50()),
        human(samples.p90()),
        human(samples.p99()),
        samples.len(),
        met(samples.p50() <= target)
    );
}
