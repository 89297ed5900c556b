//! The Markdown report of `bench docker` (stdout) and its plot's bars.

use std::fmt::Write as _;
use std::time::Duration;

use super::Measure;
use super::containers::DockerDensity;
use super::plot::Bar;
use super::wasm::WasmDensity;
use crate::stats::{Samples, human};

/// The target of the headline ratio (issue 6): Docker cold ÷ Wasm cold, p50.
pub(crate) const TARGET_RATIO: f64 = 1000.0;

/// The pairs compared: (Docker, Wasm, what the pair is).
const PAIRS: [(Measure, Measure, &str); 5] = [
    (
        Measure::DockerCold,
        Measure::WasmCold,
        "cold: Docker cold ÷ Wasm cold",
    ),
    (
        Measure::DockerCold,
        Measure::WasmColdInMemory,
        "cold: Docker cold ÷ Wasm cold with the component in memory",
    ),
    (
        Measure::DockerPrewarmed,
        Measure::WasmStemCell,
        "prewarmed: Docker prewarmed ÷ Wasm stem cell",
    ),
    (
        Measure::DockerWarm,
        Measure::WasmWarm,
        "warm: Docker warm ÷ Wasm warm",
    ),
    (
        Measure::DockerUnpaused,
        Measure::WasmWarm,
        "warm after pause: Docker unpause + run ÷ Wasm warm",
    ),
];

/// Everything the report says.
pub(crate) struct Report {
    /// When the run started, UTC.
    pub when: String,
    /// The machine line.
    pub machine: String,
    /// The Docker daemon line.
    pub daemon: String,
    /// Size of the Wasm component and of the native executable, bytes.
    pub wasm_bytes: usize,
    /// Size of the native executable, bytes.
    pub native_bytes: usize,
    /// The image the containers run.
    pub image: String,
    /// Memory limit of every sandbox and container, MiB.
    pub memory_mb: u64,
    /// Rounds of the interleaved loop.
    pub rounds: usize,
    /// Samples per measure, in [`Measure::ALL`] order.
    pub samples: Vec<Samples>,
    /// The memory budget of the density rows, MiB.
    pub budget_mb: u64,
    /// Wasm density.
    pub wasm: WasmDensity,
    /// Docker density.
    pub docker: DockerDensity,
    /// How long the whole run took.
    pub elapsed: Duration,
}

/// `12345.6` → `12,346`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio for the table: `1,234×`, `12.3×`.
pub(crate) fn times(ratio: f64) -> String {
    if ratio >= 100.0 {
        format!("{}×", thousands(ratio))
    } else {
        format!("{ratio:.1}×")
    }
}

/// KiB for the table: `45.1 KiB`, `3.2 MiB`.
fn kib(value: f64) -> String {
    if value.abs() >= 1024.0 {
        format!("{:.2} MiB", value / 1024.0)
    } else {
        format!("{value:.1} KiB")
    }
}

fn ratio(docker: Duration, wasm: Duration) -> f64 {
    docker.as_secs_f64() / wasm.as_secs_f64().max(1e-9)
}

/// What a measure without samples reads as.
static NO_SAMPLES: Samples = Samples::EMPTY;

impl Report {
    fn of(&self, measure: Measure) -> &Samples {
        self.samples.get(measure as usize).unwrap_or(&NO_SAMPLES)
    }

    /// The headline: Docker cold ÷ Wasm cold, p50.
    pub(crate) fn headline(&self) -> f64 {
        ratio(
            self.of(Measure::DockerCold).p50(),
            self.of(Measure::WasmCold).p50(),
        )
    }

    /// What one more idle container adds, the count's basis, KiB: its
    /// cgroup's usage without inactive page cache + its shim's unique pages.
    /// A lower bound (shared pages and the daemons' growth left out), so the
    /// Docker count is an upper bound.
    fn container_kib(&self) -> f64 {
        self.docker.cgroup_kib() + self.docker.shim_uss_kib()
    }

    /// Everything one container can be charged with, KiB: the shim's whole
    /// RSS and the daemons' growth per container as well.
    fn container_all_kib(&self) -> f64 {
        self.docker.cgroup_kib() + self.docker.shim_rss_kib() + self.docker.daemons_kib().max(0.0)
    }

    /// The plot's bars, cold first.
    pub(crate) fn bars(&self) -> Vec<Bar> {
        Measure::PLOT
            .iter()
            .map(|&m| Bar {
                label: m.short_label().to_string(),
                side: m.side(),
                p50: self.of(m).p50(),
                p99: self.of(m).p99(),
            })
            .collect()
    }

    /// The Markdown text.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let budget_kib = self.budget_mb as f64 * 1024.0;
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "## Wasm vs Docker cold start (`wasmwhisk bench docker`)\n"
        );
        let _ = writeln!(
            out,
            "Run of {}, in {:.0} s.\n",
            self.when,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "- Machine: {}", self.machine);
        let _ = writeln!(out, "- {}", self.daemon);
        let _ = writeln!(
            out,
            "- Action: hello-rust, one source: the `wasm` component ({} KiB) and the native \
             executable ({} KiB, static) sent as binary code in `/init` to `{}`; memory limit \
             {} MB each",
            self.wasm_bytes / 1024,
            self.native_bytes / 1024,
            self.image,
            self.memory_mb
        );
        let _ = writeln!(
            out,
            "- {} rounds, each taking Docker's and Wasm's samples in turn\n",
            self.rounds
        );
        let _ = writeln!(
            out,
            "| start | backend | what is timed | p50 | p99 | samples |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for m in Measure::ALL {
            let s = self.of(m);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                m.start(),
                m.side().name(),
                m.timed(),
                human(s.p50()),
                human(s.p99()),
                s.len()
            );
        }
        let _ = writeln!(
            out,
            "\n| ratio (Docker ÷ Wasm) | p50 | p99 | target (p50) | |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for (i, (docker, wasm, what)) in PAIRS.iter().enumerate() {
            let (d, w) = (self.of(*docker), self.of(*wasm));
            let p50 = ratio(d.p50(), w.p50());
            let p99 = ratio(d.p99(), w.p99());
            if i == 0 {
                let met = if p50 >= TARGET_RATIO {
                    "met"
                } else {
                    "**missed**"
                };
                let _ = writeln!(
                    out,
                    "| **{what}** | **{}** | {} | ≥ {} | {met} |",
                    times(p50),
                    times(p99),
                    times(TARGET_RATIO)
                );
            } else {
                let _ = writeln!(out, "| {what} | {} | {} | | |", times(p50), times(p99));
            }
        }

        let wasm_per = self.wasm.per_sandbox_kib();
        let wasm_fit = budget_kib / wasm_per.max(1e-3);
        let wasm_how = if self.wasm.filled {
            format!(
                "measured outright: {} live sandboxes grew this process's RSS past the budget",
                thousands(self.wasm.live as f64)
            )
        } else {
            format!(
                "RSS growth of this process with {} live sandboxes (made in {:.1} s), measured; \
                 the count is extrapolated from it",
                thousands(self.wasm.live as f64),
                self.wasm.made_in.as_secs_f64()
            )
        };
        let container = self.container_kib();
        let docker_fit = budget_kib / container.max(1e-3);
        let docker_fit_all = budget_kib / self.container_all_kib().max(1e-3);
        let _ = writeln!(
            out,
            "\n| density in {} MiB | per sandbox | how it was obtained | fit in {} MiB |",
            self.budget_mb, self.budget_mb
        );
        let _ = writeln!(out, "|---|---|---|---|");
        let _ = writeln!(
            out,
            "| Wasm: warm Rust hello sandboxes (instantiate + init + one run) | {} RSS ({} PSS) | \
             {wasm_how} | **{}** (one process's engine holds at most {}: `max_sandboxes`) |",
            kib(wasm_per),
            kib(self.wasm.pss_growth_kib as f64 / self.wasm.live.max(1) as f64),
            thousands(wasm_fit),
            thousands(f64::from(self.wasm.engine_cap)),
        );
        let _ = writeln!(
            out,
            "| Docker: idle hello-rust containers after `/init` + `/run` | {} = {} cgroup \
             (`docker stats`; {} with page cache) + {} containerd-shim USS ({} PSS, {} RSS) | \
             {} containers started and measured (in {:.1} s); the count is extrapolated from \
             them | **{}** ({} with the shim's whole RSS and the daemons' growth, {} each) |",
            kib(container),
            kib(self.docker.cgroup_kib()),
            kib(self.docker.cgroup_usage_kib()),
            kib(self.docker.shim_uss_kib()),
            kib(self.docker.shim_pss_kib()),
            kib(self.docker.shim_rss_kib()),
            self.docker.per.len(),
            self.docker.made_in.as_secs_f64(),
            thousands(docker_fit),
            thousands(docker_fit_all),
            kib(self.container_all_kib()),
        );
        let _ = writeln!(
            out,
            "| Wasm ÷ Docker | {} less memory each | | **{}** more |",
            times(container / wasm_per.max(1e-3)),
            times(wasm_fit / docker_fit.max(1e-3)),
        );
        let _ = writeln!(
            out,
            "\n`dockerd` + `containerd` RSS: {} before the density containers, {} with them idle \
             ({} per container).",
            kib(self.docker.daemons_before.rss_kib as f64),
            kib(self.docker.daemons_after.rss_kib as f64),
            kib(self.docker.daemons_kib()),
        );
        out
    }

    /// The plot's caption.
    pub(crate) fn caption(&self) -> String {
        format!(
            "Docker cold ÷ Wasm cold: {} at p50 (target ≥ {}); hello-rust, {} interleaved rounds, {}.\n{}.",
            times(self.headline()),
            times(TARGET_RATIO),
            self.rounds,
            self.when,
            self.daemon
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(times(1234.4), "1,234×");
        assert_eq!(times(12.34), "12.3×");
        assert_eq!(kib(45.06), "45.1 KiB");
        assert_eq!(kib(2048.0), "2.00 MiB");
        assert_eq!(
            ratio(Duration::from_millis(600), Duration::from_micros(500)),
            1200.0
        );
    }
}
