//! `wasmwhisk bench docker`: Wasm and Docker cold starts side by side — one
//! run, one machine, the same action logic (issue 6's target: Wasm cold
//! start ≥ 1,000× faster than Docker's, p50).
//!
//! The action is hello-rust: the `wasm` component `wasmwhisk-test-guests` builds, and the
//! same source built as a static native executable, run by the action-proxy
//! image (`wasmwhisk/action-proxy:latest`) the way OpenWhisk runs `native`
//! actions (the executable is `/init`'s binary code). Both sides are driven
//! through the code the pool uses: [`wasmwhisk_sandbox::engine`] and
//! [`wasmwhisk_sandbox`] for Wasm, [`wasmwhisk_docker`] for Docker.
//!
//! ```text
//!   one round (× rounds), each side's samples in turn:
//!     Docker prewarmed   /init + /run on a container started a round ago
//!     Docker cold        create + start + /init + /run
//!     (start the next prewarmed container — not timed)
//!     Wasm cold ×c       load from the disk compile cache + link + instantiate + init + run,
//!                        and (alternating) instantiate + init + run of the loaded component
//!     Wasm stem cell ×s  init of hello.js on a prewarmed JS stem cell + run
//!     Wasm warm ×w       run
//!     Docker warm ×w'    /run
//!     Docker unpause ×p  (pause — not timed) unpause + /run
//!   then density: Wasm sandboxes until the budget or --wasm-live;
//!                 a sample of idle Docker containers, measured one by one
//! ```
//!
//! Interleaving puts the machine's slow phases on both sides alike.
//! Removed containers are removed before the next sample is taken, so that
//! Docker's work does not overlap Wasm's timings. Every container carries a
//! unique owner label; all are removed at the end, on error, and on
//! Ctrl-C/SIGTERM (the run stops at its next step and cleans up).

mod containers;
mod daemon;
mod footprint;
mod images;
mod plot;
mod report;
mod wasm;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use super::stats::{Samples, machine};
use containers::DockerSide;
use daemon::Daemon;
use report::Report;
use wasm::WasmSide;
use wasmwhisk_docker::{Docker, DockerSettings};
use wasmwhisk_sandbox::action::{ActivationContext, SandboxLimits};
use wasmwhisk_sandbox::engine::{Engine, EngineConfig};

/// Flags of `wasmwhisk bench docker`.
#[derive(clap::Args, Debug, Clone)]
pub struct DockerBenchArgs {
    /// Rounds of the interleaved loop: each takes one Docker cold and one
    /// Docker prewarmed sample, 10 of each Wasm start, 250 Wasm and 20
    /// Docker warm runs and 5 unpause + runs.
    #[arg(long, default_value_t = 40)]
    pub rounds: usize,
    /// The memory budget of the density rows, MiB.
    #[arg(long, default_value_t = 2048)]
    pub budget_mb: u64,
    /// Idle Docker containers started and measured for the density row.
    #[arg(long, default_value_t = 16)]
    pub containers: usize,
    /// Most live Wasm sandboxes of the density row (it stops earlier when
    /// they fill the budget).
    #[arg(long, default_value_t = 10_000)]
    pub wasm_live: usize,
    /// Memory limit of every sandbox and container, MB (OpenWhisk's default).
    #[arg(long, default_value_t = 256)]
    pub memory_mb: u64,
    /// Where the SVG plot of the latencies is written.
    #[arg(long, default_value = "docs/bench-cold-start.svg")]
    pub plot: PathBuf,
    /// hello-rust's native executable (static); by default the bench
    /// builds it with `runtimes/docker/build-action.sh` (run it from the
    /// repository's root).
    #[arg(long, value_name = "FILE")]
    pub native: Option<PathBuf>,
    /// A run of about half a minute that only checks the bench works (the
    /// numbers mean little).
    #[arg(long)]
    pub quick: bool,
}

/// Which side a measure is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Docker containers.
    Docker,
    /// Wasm sandboxes.
    Wasm,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Docker => "Docker",
            Side::Wasm => "Wasm",
        }
    }
}

/// What is timed; the report's rows, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Measure {
    DockerCold = 0,
    WasmCold,
    WasmColdInMemory,
    DockerPrewarmed,
    WasmStemCell,
    DockerWarm,
    DockerUnpaused,
    WasmWarm,
}

impl Measure {
    /// Every measure, in the table's order.
    pub(crate) const ALL: [Measure; 8] = [
        Measure::DockerCold,
        Measure::WasmCold,
        Measure::WasmColdInMemory,
        Measure::DockerPrewarmed,
        Measure::WasmStemCell,
        Measure::DockerWarm,
        Measure::DockerUnpaused,
        Measure::WasmWarm,
    ];
    /// The plot's order: slowest start first.
    pub(crate) const PLOT: [Measure; 8] = [
        Measure::DockerCold,
        Measure::WasmCold,
        Measure::WasmColdInMemory,
        Measure::DockerPrewarmed,
        Measure::WasmStemCell,
        Measure::DockerUnpaused,
        Measure::DockerWarm,
        Measure::WasmWarm,
    ];

    pub(crate) fn side(self) -> Side {
        match self {
            Measure::DockerCold
            | Measure::DockerPrewarmed
            | Measure::DockerWarm
            | Measure::DockerUnpaused => Side::Docker,
            Measure::WasmCold
            | Measure::WasmColdInMemory
            | Measure::WasmStemCell
            | Measure::WasmWarm => Side::Wasm,
        }
    }

    fn start(self) -> &'static str {
        match self {
            Measure::DockerCold | Measure::WasmCold => "cold",
            Measure::WasmColdInMemory => "cold, compiled code in memory",
            Measure::DockerPrewarmed => "prewarmed",
            Measure::WasmStemCell => "stem cell",
            Measure::DockerWarm | Measure::WasmWarm => "warm",
            Measure::DockerUnpaused => "warm after pause",
        }
    }

    fn timed(self) -> &'static str {
        match self {
            Measure::DockerCold => "create + start + `/init` + `/run`",
            Measure::WasmCold => {
                "`wasm` from the disk compile cache: load + link + instantiate + init + run"
            }
            Measure::WasmColdInMemory => {
                "`wasm`, component already loaded: instantiate + init + run"
            }
            Measure::DockerPrewarmed => "`/init` + `/run` on a started container",
            Measure::WasmStemCell => {
                "JS specialize: init of `hello.js` on a prewarmed stem cell + run"
            }
            Measure::DockerWarm => "`/run`",
            Measure::DockerUnpaused => "unpause + `/run`",
            Measure::WasmWarm => "run",
        }
    }

    fn short_label(self) -> &'static str {
        match self {
            Measure::DockerCold => "Docker cold (create+start+init+run)",
            Measure::WasmCold => "Wasm cold (disk cache+init+run)",
            Measure::WasmColdInMemory => "Wasm cold, in memory (inst.+init+run)",
            Measure::DockerPrewarmed => "Docker prewarmed (init+run)",
            Measure::WasmStemCell => "Wasm stem cell (JS specialize+run)",
            Measure::DockerUnpaused => "Docker warm after pause (unpause+run)",
            Measure::DockerWarm => "Docker warm (run)",
            Measure::WasmWarm => "Wasm warm (run)",
        }
    }
}

/// The sizes of one run.
#[derive(Clone, Debug)]
struct Plan {
    rounds: usize,
    wasm_cold: usize,
    wasm_stem_cell: usize,
    wasm_warm: usize,
    docker_warm: usize,
    docker_unpaused: usize,
    containers: usize,
    wasm_live: usize,
    /// How long the density containers sit idle before they are measured.
    settle: Duration,
}

impl Plan {
    fn of(args: &DockerBenchArgs) -> Plan {
        if args.quick {
            return Plan {
                rounds: 3,
                wasm_cold: 3,
                wasm_stem_cell: 3,
                wasm_warm: 20,
                docker_warm: 3,
                docker_unpaused: 2,
                containers: args.containers.clamp(1, 2),
                wasm_live: args.wasm_live.min(256),
                settle: Duration::from_millis(300),
            };
        }
        Plan {
            rounds: args.rounds.max(1),
            wasm_cold: 10,
            wasm_stem_cell: 10,
            wasm_warm: 250,
            docker_warm: 20,
            docker_unpaused: 5,
            containers: args.containers.max(1),
            wasm_live: args.wasm_live.max(1),
            settle: Duration::from_secs(2),
        }
    }
}

/// The activation every sample runs.
pub(crate) fn activation() -> ActivationContext {
    ActivationContext {
        activation_id: "0123456789abcdef0123456789abcdef".into(),
        namespace: "guest".into(),
        action_name: "/guest/hello".into(),
        action_version: "0.0.1".into(),
        transaction_id: "bench".into(),
        api_key: None,
    }
}

/// `{"name": "bench"}`.
pub(crate) fn hello_params() -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("name".into(), json!("bench"));
    map
}

/// The samples of every measure.
struct Collected {
    samples: Vec<Vec<Duration>>,
}

impl Collected {
    fn new() -> Collected {
        Collected {
            samples: vec![Vec::new(); Measure::ALL.len()],
        }
    }

    fn push(&mut self, measure: Measure, sample: Duration) {
        if let Some(samples) = self.samples.get_mut(measure as usize) {
            samples.push(sample);
        }
    }

    fn into_samples(self) -> Vec<Samples> {
        self.samples.into_iter().map(Samples::new).collect()
    }
}

/// Runs the benchmark, prints the Markdown report and writes the plot.
pub fn run(data_dir: &Path, args: DockerBenchArgs) -> Result<()> {
    let started = Instant::now();
    let when = now_utc();
    let plan = Plan::of(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let owner = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let settings = DockerSettings {
        owner: owner.clone(),
        user_memory_mb: args.budget_mb.max(args.memory_mb),
        ..DockerSettings::default()
    };
    let docker = runtime
        .block_on(Docker::connect(settings))
        .context("`bench docker` needs a running Docker daemon (start it, or set DOCKER_HOST)")?;
    eprintln!("machine: {}", machine());
    eprintln!("containers are labelled wasmwhisk.owner={owner}");
    let daemon = Daemon::connect(&docker)?;
    let facts = runtime.block_on(daemon.facts())?;
    let native = images::prepare(&runtime, &docker, &daemon, args.native.as_deref())?;

    // Ctrl-C or SIGTERM: the run stops at its next step and removes its
    // containers on the way out; after 30 s, or at a second signal, they are
    // removed from here and the process exits.
    let interrupt = Interrupt::default();
    let on_signal = (docker.clone(), interrupt.clone());
    runtime.spawn(async move {
        let (docker, interrupt) = on_signal;
        if !signalled().await {
            return;
        }
        eprintln!("\ninterrupted: stopping and removing the bench's containers");
        interrupt.set();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = signalled() => {}
        }
        let _ = docker.remove_owned().await;
        std::process::exit(130);
    });

    let limits = SandboxLimits {
        memory_mb: args.memory_mb,
        logs_mb: 1,
        timeout: Duration::from_secs(60),
        concurrency: 1,
    };
    let mut docker_side = DockerSide::new(
        docker.clone(),
        &native.image,
        native.code,
        limits,
        interrupt.clone(),
    );
    let native_bytes = native.size;
    let bar = progress(&plan);
    let outcome = (|| {
        let engine = Arc::new(Engine::new(
            EngineConfig::default(),
            &data_dir.join("bench-cache"),
        )?);
        bar.set_message("compiling or loading hello-rust and the JS runtime");
        let mut wasm_side = WasmSide::new(engine, limits)?;
        measure(
            &runtime,
            &mut docker_side,
            &mut wasm_side,
            &plan,
            &bar,
            &interrupt,
        )
        .map(|collected| (collected, wasm_side))
    })();
    let outcome = outcome.and_then(|(collected, mut wasm_side)| {
        bar.set_message("density: Wasm sandboxes");
        let budget_kib = args.budget_mb.saturating_mul(1024);
        interrupt.check()?;
        let wasm = wasm_side.density(budget_kib, plan.wasm_live, |n| {
            bar.set_message(format!("density: {n} live Wasm sandboxes"));
        })?;
        drop(wasm_side);
        bar.inc(1);
        bar.set_message("density: Docker containers");
        let docker =
            runtime.block_on(
                docker_side.density(&daemon, plan.containers, plan.settle, |_| bar.inc(1)),
            )?;
        Ok((collected, wasm, docker))
    });
    bar.finish_and_clear();
    runtime.block_on(docker_side.shutdown());
    let left = runtime.block_on(docker.remove_owned());
    let (collected, wasm, docker_density) = outcome?;
    match left {
        Ok(0) => {}
        Ok(n) => eprintln!("removed {n} leftover containers"),
        Err(error) => {
            return Err(error).context(format!(
                "removing the bench's containers (label wasmwhisk.owner={owner})"
            ));
        }
    }

    let report = Report {
        when,
        machine: machine(),
        daemon: facts.line(),
        wasm_bytes: super::sandbox::HELLO_RUST.len(),
        native_bytes,
        image: native.image,
        memory_mb: args.memory_mb,
        rounds: plan.rounds,
        samples: collected.into_samples(),
        budget_mb: args.budget_mb,
        wasm,
        docker: docker_density,
        elapsed: started.elapsed(),
    };
    let svg = plot::svg(
        "Wasm vs Docker: cold, prewarmed and warm starts of the same action",
        &machine(),
        &report.caption(),
        &report.bars(),
    );
    if let Some(dir) = args.plot.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.plot, svg)
        .with_context(|| format!("writing the plot to {}", args.plot.display()))?;
    print!("{}", report.markdown());
    println!("\nPlot: `{}`", args.plot.display());
    Ok(())
}

/// The interleaved rounds.
fn measure(
    runtime: &tokio::runtime::Runtime,
    docker: &mut DockerSide,
    wasm: &mut WasmSide,
    plan: &Plan,
    bar: &ProgressBar,
    interrupt: &Interrupt,
) -> Result<Collected> {
    bar.set_message("starting the warm and first prewarmed containers");
    runtime.block_on(async {
        docker.start_warm().await?;
        // One untimed cold start: the first container of an image pays for
        // mounting its layers.
        docker.cold().await?;
        docker.prewarm().await
    })?;
    for _ in 0..3 {
        wasm.cold()?;
        wasm.cold_in_memory()?;
        wasm.stem_cell()?;
        wasm.warm()?;
    }
    bar.inc(1);
    bar.set_message("interleaved rounds");
    let mut collected = Collected::new();
    for _ in 0..plan.rounds {
        interrupt.check()?;
        runtime.block_on(async {
            collected.push(Measure::DockerPrewarmed, docker.prewarmed().await?);
            collected.push(Measure::DockerCold, docker.cold().await?);
            docker.prewarm().await
        })?;
        for _ in 0..plan.wasm_cold {
            collected.push(Measure::WasmCold, wasm.cold()?);
            collected.push(Measure::WasmColdInMemory, wasm.cold_in_memory()?);
        }
        for _ in 0..plan.wasm_stem_cell {
            collected.push(Measure::WasmStemCell, wasm.stem_cell()?);
        }
        for _ in 0..plan.wasm_warm {
            collected.push(Measure::WasmWarm, wasm.warm()?);
        }
        runtime.block_on(async {
            for _ in 0..plan.docker_warm {
                collected.push(Measure::DockerWarm, docker.warm().await?);
            }
            for _ in 0..plan.docker_unpaused {
                collected.push(Measure::DockerUnpaused, docker.unpaused().await?);
            }
            Ok::<_, anyhow::Error>(())
        })?;
        bar.inc(1);
    }
    Ok(collected)
}

/// The progress bar: setup, rounds, Wasm density, each density container.
fn progress(plan: &Plan) -> ProgressBar {
    let bar = ProgressBar::new((1 + plan.rounds + 1 + plan.containers) as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Set on Ctrl-C or SIGTERM: the run stops at its next step (a round, a
/// container's creation) and cleans up as after an error.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// An error once interrupted.
    pub(crate) fn check(&self) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted");
        }
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM; `false` if neither can be listened for.
async fn signalled() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return tokio::signal::ctrl_c().await.is_ok();
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.is_ok(),
        got = term.recv() => got.is_some(),
    }
}

/// `2026-11-22 23:40 UTC`.
fn now_utc() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}
