//! `wasmwhisk bench sandbox`: what a sandbox costs, in one run on one machine.
//!
//! Rows (p50 / p99): compile; cold start of a compiled `wasm` action from the
//! on-disk cache (load + verify + instantiate + init + first run) and with
//! the component already in memory; JS stem-cell instantiate; JS specialize
//! (init of a 34-line action + its first run); warm runs of the Rust and JS
//! hello actions; then the proportional set size (PSS) each live warm
//! sandbox adds, with 1,000 and with 10,000 of them alive at once.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Map, Value, json};

use super::stats::{Samples, human, machine, pss_kib};
use wasmwhisk_sandbox::action::{ActionKind, ActivationContext, InitArgs, SandboxLimits};
use wasmwhisk_sandbox::engine::{Engine, EngineConfig, Prepared};
use wasmwhisk_sandbox::{AsyncSandbox, Sandbox};

/// The Rust hello example, built from `examples/hello-rust`.
pub(super) const HELLO_RUST: &[u8] = wasmwhisk_test_guests::HELLO_RUST;
/// The JS hello example.
const HELLO_JS: &str = include_str!("../../../examples/hello.js");
/// The 34-line JS example (JSON work, string building).
const INVOICE_JS: &str = include_str!("../../../examples/invoice.js");

/// Flags of `wasmwhisk bench sandbox`.
#[derive(clap::Args, Debug, Clone)]
pub struct SandboxBenchArgs {
    /// Iterations of the per-operation rows (warm runs do 10×).
    #[arg(long, default_value_t = 1000)]
    pub iterations: usize,
    /// Live sandboxes for the large memory row (the small row is 1/10 of it).
    #[arg(long, default_value_t = 10_000)]
    pub live: usize,
}

/// One row of the report.
struct Row {
    what: &'static str,
    samples: Samples,
    target: &'static str,
}

fn context() -> ActivationContext {
    ActivationContext {
        activation_id: "0123456789abcdef0123456789abcdef".into(),
        namespace: "guest".into(),
        action_name: "/guest/bench".into(),
        action_version: "0.0.1".into(),
        transaction_id: "bench".into(),
        api_key: None,
    }
}

fn params() -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("name".into(), json!("bench"));
    map
}

fn invoice_params() -> Map<String, Value> {
    let value = json!({
        "customer": "Ada",
        "coupon": "tenoff",
        "items": [
            {"sku": "A1", "qty": 2, "price": 9.5},
            {"sku": "B22", "qty": 1, "price": 120},
            {"sku": "C333", "qty": 12, "price": 0.25}
        ]
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn init_args(code: &str) -> InitArgs {
    InitArgs {
        name: "bench".into(),
        main: "main".into(),
        code: code.as_bytes().to_vec(),
        binary: false,
        env: Vec::new(),
    }
}

/// Makes one warm sandbox: instantiate, init, one run.
fn warm(
    engine: &Arc<Engine>,
    prepared: &Prepared,
    code: &str,
    limits: &SandboxLimits,
) -> Result<Sandbox> {
    let mut sandbox = engine.instantiate(prepared, limits.memory_mb)?;
    if let Err(failure) = sandbox.init(init_args(code), limits) {
        anyhow::bail!("init failed: {:?}", failure.response);
    }
    let report = sandbox.run(&context(), &params(), limits);
    ensure!(
        report.response.is_success(),
        "run failed: {:?}",
        report.response
    );
    Ok(sandbox)
}

/// Runs the benchmark and prints a Markdown report.
pub fn run(data_dir: &Path, args: SandboxBenchArgs) -> Result<()> {
    let n = args.iterations.max(10);
    let bench_dir = data_dir.join("bench-cache");
    let engine = Arc::new(Engine::new(EngineConfig::default(), &bench_dir)?);
    let limits = SandboxLimits {
        logs_mb: 1,
        ..SandboxLimits::default()
    };
    let mut rows = Vec::new();
    eprintln!("machine: {}", machine());

    // Compile: a fresh compile of each component, no cache involved.
    let mut compile_rust = Vec::new();
    for _ in 0..n.min(20) {
        let t = Instant::now();
        engine.wasmtime().precompile_component(HELLO_RUST)?;
        compile_rust.push(t.elapsed());
    }
    rows.push(Row {
        what: "compile Rust hello (Cranelift)",
        samples: Samples::new(compile_rust),
        target: "",
    });
    let mut compile_js = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        engine
            .wasmtime()
            .precompile_component(wasmwhisk_sandbox::runtimes::JS_RUNTIME)?;
        compile_js.push(t.elapsed());
    }
    rows.push(Row {
        what: "compile JS runtime (Cranelift)",
        samples: Samples::new(compile_js),
        target: "",
    });

    // Cold start from the on-disk cache: forget the in-memory component each
    // time. The code's digest is known (an action store keeps it).
    engine.prepare_wasm(HELLO_RUST)?;
    let hello_key = engine.wasm_key(HELLO_RUST);
    let mut cold_disk = Vec::new();
    for _ in 0..n.min(500) {
        engine.forget_prepared();
        let t = Instant::now();
        let (prepared, _) = engine.prepare_wasm_keyed(&hello_key, HELLO_RUST)?;
        let sandbox = warm(&engine, &prepared, "", &limits)?;
        cold_disk.push(t.elapsed());
        drop(sandbox);
    }
    rows.push(Row {
        what: "`wasm` cold start from disk cache (load+verify+instantiate+init+run)",
        samples: Samples::new(cold_disk),
        target: "≤ 250 µs",
    });
    // Its parts: load + verify + deserialize, then link (import/export checks).
    let key = engine.cache().key("wasm-action", HELLO_RUST);
    let mut load = Vec::new();
    let mut link = Vec::new();
    for _ in 0..n.min(200) {
        let t = Instant::now();
        let component = engine
            .cache()
            .load(engine.wasmtime(), &key)
            .context("the artifact is cached")?;
        load.push(t.elapsed());
        let t = Instant::now();
        engine.link(component, ActionKind::Wasm, key)?;
        link.push(t.elapsed());
    }
    rows.push(Row {
        what: "  of which: load from disk (read sidecar, XXH3 check, mmap + deserialize)",
        samples: Samples::new(load),
        target: "",
    });
    rows.push(Row {
        what: "  of which: link (grant check, instantiate_pre type-check)",
        samples: Samples::new(link),
        target: "",
    });
    let (hello, _) = engine.prepare_wasm(HELLO_RUST)?;
    let mut cold_mem = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let sandbox = warm(&engine, &hello, "", &limits)?;
        cold_mem.push(t.elapsed());
        drop(sandbox);
    }
    rows.push(Row {
        what: "`wasm` cold start, component in memory (instantiate+init+run)",
        samples: Samples::new(cold_mem),
        target: "",
    });

    // JS stem cells.
    let js = engine.prepare_runtime(ActionKind::Js)?;
    let mut stem = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let sandbox = engine.instantiate(&js, limits.memory_mb)?;
        stem.push(t.elapsed());
        drop(sandbox);
    }
    rows.push(Row {
        what: "JS stem cell instantiate",
        samples: Samples::new(stem),
        target: "≤ 50 µs",
    });
    let mut specialize = Vec::new();
    let mut specialize_init = Vec::new();
    let mut specialize_run = Vec::new();
    for _ in 0..n {
        let mut sandbox = engine.instantiate(&js, limits.memory_mb)?;
        let t = Instant::now();
        if let Err(failure) = sandbox.init(init_args(INVOICE_JS), &limits) {
            anyhow::bail!("init failed: {:?}", failure.response);
        }
        let t_run = Instant::now();
        let report = sandbox.run(&context(), &invoice_params(), &limits);
        specialize_run.push(t_run.elapsed());
        specialize_init.push(t_run - t);
        specialize.push(t.elapsed());
        ensure!(report.response.is_success(), "{:?}", report.response);
    }
    rows.push(Row {
        what: "JS specialize (init of the 34-line invoice.js + first run)",
        samples: Samples::new(specialize),
        target: "≤ 500 µs",
    });
    rows.push(Row {
        what: "  of which: init (evaluate the source, find main)",
        samples: Samples::new(specialize_init),
        target: "",
    });
    rows.push(Row {
        what: "  of which: first run",
        samples: Samples::new(specialize_run),
        target: "",
    });
    let mut specialize_hello = Vec::new();
    for _ in 0..n {
        let mut sandbox = engine.instantiate(&js, limits.memory_mb)?;
        let t = Instant::now();
        if let Err(failure) = sandbox.init(init_args(HELLO_JS), &limits) {
            anyhow::bail!("init failed: {:?}", failure.response);
        }
        let report = sandbox.run(&context(), &params(), &limits);
        specialize_hello.push(t.elapsed());
        ensure!(report.response.is_success(), "{:?}", report.response);
    }
    rows.push(Row {
        what: "JS specialize (init of the 5-line hello.js + first run)",
        samples: Samples::new(specialize_hello),
        target: "",
    });

    // Warm runs.
    for (what, prepared, code, target) in [
        ("warm run, Rust hello", &hello, "", "≤ 10 µs"),
        ("warm run, JS hello", &js, HELLO_JS, "≤ 30 µs"),
    ] {
        let mut sandbox = warm(&engine, prepared, code, &limits)?;
        let p = params();
        let ctx = context();
        let mut samples = Vec::with_capacity(n * 10);
        for _ in 0..n * 10 {
            let t = Instant::now();
            let report = sandbox.run(&ctx, &p, &limits);
            samples.push(t.elapsed());
            ensure!(report.response.is_success(), "{:?}", report.response);
        }
        rows.push(Row {
            what,
            samples: Samples::new(samples),
            target,
        });
    }

    // The same warm run from async code: a hop to Tokio's blocking pool and back.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut offloaded = AsyncSandbox::new(warm(&engine, &hello, "", &limits)?);
    let offload_samples = runtime.block_on(async {
        let mut samples = Vec::with_capacity(n * 10);
        for _ in 0..n * 10 {
            let t = Instant::now();
            let report = offloaded.run(context(), params(), limits).await;
            samples.push(t.elapsed());
            if !report.response.is_success() {
                return Err(anyhow::anyhow!("{:?}", report.response));
            }
        }
        Ok(samples)
    })?;
    rows.push(Row {
        what: "warm run, Rust hello, from async code (AsyncSandbox: spawn_blocking hop)",
        samples: Samples::new(offload_samples),
        target: "",
    });

    // How far past its deadline a spinning action is stopped.
    let spin_limits = SandboxLimits {
        timeout: Duration::from_millis(50),
        ..limits
    };
    let mut overshoot = Vec::new();
    for _ in 0..20 {
        let mut sandbox = engine.instantiate(&js, limits.memory_mb)?;
        if let Err(failure) = sandbox.init(
            init_args("function main() { while (true) {} }"),
            &spin_limits,
        ) {
            anyhow::bail!("init failed: {:?}", failure.response);
        }
        let t = Instant::now();
        let report = sandbox.run(&context(), &params(), &spin_limits);
        overshoot.push(t.elapsed().saturating_sub(spin_limits.timeout));
        ensure!(sandbox.is_retired(), "{:?}", report.response);
    }
    rows.push(Row {
        what: "deadline overshoot: `while(true){}` stopped after its 50 ms limit",
        samples: Samples::new(overshoot),
        target: "a few ms",
    });

    println!("## Sandbox costs (`wasmwhisk bench sandbox`)\n");
    println!("Machine: {}\n", machine());
    println!("| what | p50 | p99 | samples | target (p50) |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            row.what,
            human(row.samples.p50()),
            human(row.samples.p99()),
            row.samples.len(),
            row.target
        );
    }

    // Memory per live warm sandbox.
    println!(
        "\n| live warm sandboxes | kind | PSS added per sandbox | total PSS added | memory mappings per sandbox | target |"
    );
    println!("|---|---|---|---|---|---|");
    let small = (args.live / 10).max(1);
    for (kind, prepared, code, target) in [
        ("Rust hello", &hello, "", "≤ 64 KiB"),
        ("JS hello", &js, HELLO_JS, "≤ 256 KiB"),
    ] {
        for count in [small, args.live] {
            let (per, total, maps) = pss_per_sandbox(&engine, prepared, code, &limits, count)
                .with_context(|| format!("holding {count} live {kind} sandboxes"))?;
            println!(
                "| {count} | {kind} | {per:.1} KiB | {:.1} MiB | {maps:.2} | {target} |",
                total as f64 / 1024.0
            );
        }
    }
    Ok(())
}

/// Memory mappings of this process (`/proc/self/maps` lines).
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// PSS added by `count` live warm sandboxes, per sandbox and in total (KiB),
/// and the memory mappings each adds.
fn pss_per_sandbox(
    engine: &Arc<Engine>,
    prepared: &Prepared,
    code: &str,
    limits: &SandboxLimits,
    count: usize,
) -> Result<(f64, u64, f64)> {
    let before = pss_kib().context("reading /proc/self/smaps_rollup")?;
    let maps_before = map_count();
    let mut live = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        live.push(warm(engine, prepared, code, limits)?);
        if i % 1000 == 999 {
            eprintln!("  {} live sandboxes ({:?})", i + 1, started.elapsed());
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = pss_kib().context("reading /proc/self/smaps_rollup")?;
    let maps = map_count().saturating_sub(maps_before) as f64 / count as f64;
    drop(live);
    let total = after.saturating_sub(before);
    Ok((total as f64 / count as f64, total, maps))
}
