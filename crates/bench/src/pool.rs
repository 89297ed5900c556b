//! `wasmwhisk bench pool`: the pool's targets (issue 3), measured in process
//! through the pool's own API — [`PoolHandle`] with real sandboxes and the
//! in-process ports of [`wasmwhisk_core::pool::local`], the ones standalone mode runs on.
//!
//! Rows (p50 / p90):
//! - creation message → success ack on the bus, for a JS action that takes a
//!   prewarmed stem cell and for a `wasm` cold start (the component already
//!   in memory);
//! - a warm activation: push into the queue → completion ack on the bus;
//! - throughput: activations spread over many actions, until every
//!   completion ack arrived;
//! - ten thousand warmed (paused) sandboxes held at once: heap, RSS and PSS
//!   per sandbox, and the CPU time and thread wake-ups of the idle pool
//!   ([`super::pool_live`]).
//!
//! Each row starts its own pool on one multi-threaded Tokio runtime with a
//! worker per core, and shuts it down after.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::pool_fixture::{Bench, Bus, activation, creation, deletion, finished, key, settings};
use super::pool_live::{self, LiveReport};
use super::sandbox::HELLO_RUST;
use super::stats::{Samples, human, machine};
use wasmwhisk_core::pool::local::{LocalActivationStore, Outgoing};
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_core::pool::prewarm::StemCellSpec;
use wasmwhisk_sandbox::action::ActionKind;
use wasmwhisk_sandbox::engine::{CacheKey, Engine, EngineConfig};

/// The JS hello example.
const HELLO_JS: &str = include_str!("../../../examples/hello.js");

/// Flags of `wasmwhisk bench pool`.
#[derive(clap::Args, Debug, Clone)]
pub struct PoolBenchArgs {
    /// Samples of each creation row.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Samples of the warm activation row.
    #[arg(long, default_value_t = 10_000)]
    pub warm_samples: usize,
    /// Activations of the throughput row.
    #[arg(long, default_value_t = 100_000)]
    pub activations: usize,
    /// Actions the throughput row spreads its activations over.
    #[arg(long, default_value_t = 64)]
    pub actions: usize,
    /// Warmed sandboxes held at once.
    #[arg(long, default_value_t = 10_000)]
    pub live: usize,
    /// Seconds over which the idle pool's CPU time is measured.
    #[arg(long, default_value_t = 5)]
    pub idle_seconds: u64,
}

/// The binary's heap counter (its global allocator); without one the heap
/// rows are left out.
#[derive(Clone, Copy, Debug)]
pub struct HeapCounter {
    /// Starts or stops counting (counting costs every allocation an atomic
    /// add, so the bench counts only around its heap rows).
    pub set_counting: fn(bool),
    /// Bytes allocated minus bytes freed while counting; only differences
    /// mean something.
    pub net_bytes: fn() -> isize,
}

/// One latency row of the report.
struct Row {
    what: &'static str,
    samples: Samples,
    target: Duration,
    target_text: &'static str,
}

/// One throughput row.
struct Throughput {
    what: String,
    activations: usize,
    took: Duration,
}

/// Runs the benchmark and prints a Markdown report.
pub fn run(data_dir: &Path, args: PoolBenchArgs, heap: Option<HeapCounter>) -> Result<()> {
    eprintln!("machine: {}", machine());
    let engine = Arc::new(
        Engine::new(EngineConfig::default(), &data_dir.join("bench-cache"))
            .context("starting the engine")?,
    );
    // Compiled once, outside every timed region: the JS runtime (seconds on
    // the first run with this data dir) and the Rust hello component.
    engine.prepare_runtime(ActionKind::Js)?;
    let hello_key = engine.wasm_key(HELLO_RUST);
    let (hello, _) = engine.prepare_wasm_keyed(&hello_key, HELLO_RUST)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;

    // The live row first: the heap and the page counts are cleanest in a
    // process that has not yet run (and freed) a hundred thousand activations.
    eprintln!("holding {} warmed sandboxes", args.live);
    if let Some(counter) = heap {
        (counter.set_counting)(true);
    }
    let live = {
        let (engine, args) = (engine.clone(), args.clone());
        on_runtime(&runtime, "live", async move {
            pool_live::hold(&engine, hello_key, &args, heap).await
        })?
    };
    let bare = pool_live::bare_sandboxes(&engine, &hello, args.live, heap)?;
    if let Some(counter) = heap {
        (counter.set_counting)(false);
    }

    let mut rows = Vec::new();
    eprintln!("creation → ack, JS on a prewarmed stem cell");
    let samples = {
        let (engine, n) = (engine.clone(), args.samples);
        on_runtime(&runtime, "prewarm", async move {
            prewarm_creation(&engine, n).await
        })?
    };
    rows.push(Row {
        what: "creation → success ack, JS action on a prewarmed stem cell",
        samples,
        target: Duration::from_millis(1),
        target_text: "≤ 1 ms",
    });
    eprintln!("creation → ack, `wasm` cold start");
    let samples = {
        let (engine, n) = (engine.clone(), args.samples);
        on_runtime(&runtime, "cold start", async move {
            cold_creation(&engine, hello_key, n).await
        })?
    };
    rows.push(Row {
        what: "creation → success ack, `wasm` cold start (Rust hello, component in memory)",
        samples,
        target: Duration::from_millis(1),
        target_text: "≤ 1 ms",
    });
    eprintln!("warm activation latency");
    let samples = {
        let (engine, n) = (engine.clone(), args.warm_samples);
        on_runtime(&runtime, "warm activation", async move {
            warm_latency(&engine, hello_key, n).await
        })?
    };
    rows.push(Row {
        what: "warm activation: queue push → completion ack (Rust hello)",
        samples,
        target: Duration::from_micros(50),
        target_text: "≤ 50 µs",
    });

    let mut throughput = Vec::new();
    for per_action in [2, 1] {
        eprintln!("throughput, {} actions × {per_action}", args.actions);
        let (engine, actions, n) = (engine.clone(), args.actions.max(1), args.activations);
        let took = on_runtime(&runtime, "throughput", async move {
            spread(&engine, hello_key, actions, per_action, n).await
        })?;
        throughput.push(Throughput {
            what: format!(
                "{actions} Rust hello actions × {per_action} busy sandbox{}",
                if per_action == 1 { "" } else { "es" }
            ),
            activations: n,
            took,
        });
    }
    runtime.shutdown_timeout(Duration::from_secs(5));

    print_report(&rows, &throughput, &live, &bare, args.idle_seconds);
    Ok(())
}

/// Runs `row` as a task on `runtime` and waits for it.
fn on_runtime<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    what: &str,
    row: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    runtime
        .block_on(runtime.spawn(row))
        .with_context(|| format!("the {what} row stopped"))?
}

fn print_report(
    rows: &[Row],
    throughput: &[Throughput],
    live: &LiveReport,
    bare: &pool_live::BareReport,
    idle_seconds: u64,
) {
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    println!("## Pool (`wasmwhisk bench pool`)\n");
    println!("Machine: {}\n", machine());
    println!("| what | p50 | p90 | samples | target (p50) | |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.what,
            human(row.samples.p50()),
            human(row.samples.p90()),
            row.samples.len(),
            row.target_text,
            met(row.samples.p50() <= row.target)
        );
    }
    println!("\n| throughput | activations | time | activations/s | target | |");
    println!("|---|---|---|---|---|---|");
    for row in throughput {
        let rate = row.activations as f64 / row.took.as_secs_f64().max(1e-9);
        println!(
            "| {} | {} | {:.2} s | {rate:.0} | ≥ 20,000/s | {} |",
            row.what,
            row.activations,
            row.took.as_secs_f64(),
            met(rate >= 20_000.0)
        );
    }
    pool_live::print(live, bare, idle_seconds);
}

/// Waits until nothing is busy, warmed, starting or being removed, and
/// `prewarmed` stem cells are ready.
async fn settled(bench: &Bench, prewarmed: usize) -> Result<()> {
    bench
        .until("the pool settles", Duration::from_millis(1), |m| {
            m.busy == 0
                && m.warmed == 0
                && m.in_progress == 0
                && m.disabling == 0
                && m.prewarm_starting == 0
                && m.prewarmed >= prewarmed
        })
        .await
}

/// Creation → ack of a JS action that takes a ready stem cell. Between
/// samples the sandbox is deleted and the replacement stem cell (created
/// when the first was taken) becomes ready.
async fn prewarm_creation(engine: &Arc<Engine>, samples: usize) -> Result<Samples> {
    const STEM_CELLS: u32 = 2;
    let mut settings = settings(1 << 30);
    settings.stem_cells = vec![StemCellSpec {
        kind: "js".into(),
        memory_mb: 256,
        initial_count: STEM_CELLS,
        reactive: None,
    }];
    let bench = Bench::start(engine, settings, Arc::new(LocalActivationStore::new()));
    let action = bench.deploy("greet", "nodejs:20", 256, HELLO_JS.as_bytes().into(), None)?;
    creation_to_ack(bench, &action, STEM_CELLS as usize, samples).await
}

/// Creation → ack of a `wasm` action with no sandbox: a cold start, its
/// compiled component already in memory.
async fn cold_creation(
    engine: &Arc<Engine>,
    code_key: CacheKey,
    samples: usize,
) -> Result<Samples> {
    let bench = Bench::start(
        engine,
        settings(1 << 30),
        Arc::new(LocalActivationStore::new()),
    );
    let action = bench.deploy("hello", "wasm", 128, HELLO_RUST.into(), Some(code_key))?;
    creation_to_ack(bench, &action, 0, samples).await
}

/// Times creation message → success ack for `action`, deleting its sandbox
/// after each and waiting, before the next, until the pool is back to
/// `prewarmed` ready stem cells and nothing else.
async fn creation_to_ack(
    mut bench: Bench,
    action: &ExecutableAction,
    prewarmed: usize,
    samples: usize,
) -> Result<Samples> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        settled(&bench, prewarmed).await?;
        let msg = creation(action)?;
        let id = msg.creation_id.clone();
        let t = Instant::now();
        bench.pool.create(msg).await;
        let ack = bench.bus.creation_ack(&id).await?;
        out.push(t.elapsed());
        ensure!(ack.is_success(), "the creation failed: {ack:?}");
        bench.pool.delete(deletion(action));
    }
    bench.pool.shutdown(Duration::from_secs(5)).await;
    Ok(Samples::new(out))
}

/// Push → completion ack of one blocking activation on a warm sandbox.
async fn warm_latency(engine: &Arc<Engine>, code_key: CacheKey, samples: usize) -> Result<Samples> {
    let records = Arc::new(LocalActivationStore::new());
    let mut bench = Bench::start(engine, settings(1 << 30), records.clone());
    let action = bench.deploy("hello", "wasm", 128, HELLO_RUST.into(), Some(code_key))?;
    let lane = key(&action);
    bench.create(&action).await?;
    let mut out = Vec::with_capacity(samples);
    let mut last = None;
    // The first 100 initialize the sandbox and warm the paths up.
    for i in 0..samples + 100 {
        let msg = activation(&action, true)?;
        let id = msg.activation_id.clone();
        let t = Instant::now();
        bench.queue.push(&lane, msg);
        bench.bus.completion(&id).await?;
        if i >= 100 {
            out.push(t.elapsed());
        }
        last = Some(id);
    }
    let record = last
        .and_then(|id| records.record(&id))
        .context("no record")?;
    ensure!(record.response.is_success(), "{:?}", record.response);
    bench.pool.shutdown(Duration::from_secs(5)).await;
    Ok(Samples::new(out))
}

/// `n` activations spread round-robin over `actions` actions with
/// `per_action` busy sandboxes each; the time from the first push until the
/// last completion ack. A task drains the bus meanwhile.
async fn spread(
    engine: &Arc<Engine>,
    code_key: CacheKey,
    actions: usize,
    per_action: usize,
    n: usize,
) -> Result<Duration> {
    let records = Arc::new(LocalActivationStore::new());
    let mut bench = Bench::start(engine, settings(1 << 30), records.clone());
    let code: Arc<[u8]> = HELLO_RUST.into();
    let mut deployed = Vec::with_capacity(actions);
    for i in 0..actions {
        let action = bench.deploy(
            &format!("spread-{i}"),
            "wasm",
            128,
            code.clone(),
            Some(code_key),
        )?;
        for _ in 0..per_action {
            bench.create(&action).await?;
        }
        deployed.push((key(&action), action));
    }
    // Warm-up: every sandbox initializes (a few activations each).
    let warm_up = actions * per_action * 4;
    for (lane, action) in deployed.iter().cycle().take(warm_up) {
        bench.queue.push(lane, activation(action, false)?);
    }
    let mut seen = 0;
    while seen < warm_up {
        if let Outgoing::Completion(_, ack) = bench.bus.next().await?
            && finished(&ack).is_some()
        {
            seen += 1;
        }
    }
    // Built before the clock starts: making messages is the controller's work.
    let mut messages = Vec::with_capacity(n);
    for (lane, action) in deployed.iter().cycle().take(n) {
        messages.push((lane, activation(action, false)?));
    }
    let last = messages.last().map(|(_, m)| m.activation_id.clone());
    let Bench {
        pool, queue, bus, ..
    } = bench;
    let drain = tokio::spawn(drain(bus, n));
    let t = Instant::now();
    for (lane, msg) in messages {
        queue.push(lane, msg);
    }
    let (done, system_errors) = drain.await.context("the bus drain stopped")??;
    let took = done.saturating_duration_since(t);
    ensure!(
        system_errors == 0,
        "{system_errors} activations ended with a system error"
    );
    let record = last
        .and_then(|id| records.record(&id))
        .context("no record")?;
    ensure!(record.response.is_success(), "{:?}", record.response);
    ensure!(
        records.len() == warm_up + n,
        "{} records, not {}",
        records.len(),
        warm_up + n
    );
    pool.shutdown(Duration::from_secs(5)).await;
    Ok(took)
}

/// Reads the bus until `n` completion acks came; returns when the last came
/// and how many were system errors.
async fn drain(mut bus: Bus, n: usize) -> Result<(Instant, usize)> {
    let mut seen = 0;
    let mut system_errors = 0;
    while seen < n {
        if let Outgoing::Completion(_, ack) = bus.next().await?
            && let Some((_, system_error)) = finished(&ack)
        {
            seen += 1;
            system_errors += usize::from(system_error);
        }
    }
    Ok((Instant::now(), system_errors))
}
