//! The Wasm side of `bench docker`: the same three starts the sandbox bench
//! measures (`crates/bench/src/sandbox.rs`), one sample at a time so that the
//! rounds can interleave them with Docker's, and the density row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::{activation, hello_params};
use crate::sandbox::HELLO_RUST;
use wasmwhisk_sandbox::Sandbox;
use wasmwhisk_sandbox::action::{ActionKind, InitArgs, SandboxLimits};
use wasmwhisk_sandbox::engine::{CacheKey, Engine, Prepared};

/// The JS hello example, the code a stem cell is specialized with.
const HELLO_JS: &str = include_str!("../../../../examples/hello.js");

/// The engine, the compiled hello actions and one warm sandbox.
pub(crate) struct WasmSide {
    engine: Arc<Engine>,
    /// The Rust hello component's cache key (an action store keeps it).
    key: CacheKey,
    /// The Rust hello component, in memory: the in-memory cold starts and
    /// the density row's sandboxes.
    rust: Prepared,
    /// The JS runtime: stem cells.
    js: Prepared,
    /// A stem cell made ahead of the next specialize sample (not timed).
    stem_cell: Option<Sandbox>,
    /// The warm Rust hello sandbox of the warm row.
    warm: Sandbox,
    limits: SandboxLimits,
}

fn init_args(code: &str) -> InitArgs {
    InitArgs {
        name: "hello".into(),
        main: "main".into(),
        code: code.as_bytes().to_vec(),
        binary: false,
        env: Vec::new(),
    }
}

/// Instantiate, init and run once: a warm sandbox.
fn warm(engine: &Arc<Engine>, prepared: &Prepared, limits: &SandboxLimits) -> Result<Sandbox> {
    let mut sandbox = engine.instantiate(prepared, limits.memory_mb)?;
    if let Err(failure) = sandbox.init(init_args(""), limits) {
        bail!("init of Rust hello failed: {:?}", failure.response);
    }
    let report = sandbox.run(&activation(), &hello_params(), limits);
    ensure!(
        report.response.is_success(),
        "Rust hello failed: {:?}",
        report.response
    );
    Ok(sandbox)
}

impl WasmSide {
    /// Compiles (or loads from the cache) Rust hello and the JS runtime.
    pub(crate) fn new(engine: Arc<Engine>, limits: SandboxLimits) -> Result<WasmSide> {
        let (rust, _) = engine
            .prepare_wasm(HELLO_RUST)
            .context("compiling Rust hello")?;
        let key = engine.wasm_key(HELLO_RUST);
        let js = engine
            .prepare_runtime(ActionKind::Js)
            .context("preparing the JS runtime")?;
        let warm = warm(&engine, &rust, &limits)?;
        Ok(WasmSide {
            engine,
            key,
            rust,
            js,
            stem_cell: None,
            warm,
            limits,
        })
    }

    /// Wasm cold start from the disk cache: the in-memory component is
    /// forgotten first, then load + link + instantiate + init + run.
    pub(crate) fn cold(&mut self) -> Result<Duration> {
        self.engine.forget_prepared();
        let started = Instant::now();
        let (prepared, _) = self
            .engine
            .prepare_wasm_keyed(&self.key, HELLO_RUST)
            .context("loading Rust hello from the compile cache")?;
        let sandbox = warm(&self.engine, &prepared, &self.limits)?;
        let elapsed = started.elapsed();
        drop(sandbox);
        Ok(elapsed)
    }

    /// Wasm cold start with the component already in memory (every cold
    /// start of an action after its first in a process): instantiate +
    /// init + run.
    pub(crate) fn cold_in_memory(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let sandbox = warm(&self.engine, &self.rust, &self.limits)?;
        let elapsed = started.elapsed();
        drop(sandbox);
        Ok(elapsed)
    }

    /// Makes the stem cell the next [`WasmSide::stem_cell`] sample specializes.
    pub(crate) fn prewarm(&mut self) -> Result<()> {
        if self.stem_cell.is_none() {
            self.stem_cell = Some(self.engine.instantiate(&self.js, self.limits.memory_mb)?);
        }
        Ok(())
    }

    /// Stem cell: init of `hello.js` on a prewarmed JS stem cell + its first run.
    pub(crate) fn stem_cell(&mut self) -> Result<Duration> {
        self.prewarm()?;
        let mut sandbox = self.stem_cell.take().context("no stem cell")?;
        let started = Instant::now();
        if let Err(failure) = sandbox.init(init_args(HELLO_JS), &self.limits) {
            bail!("init of hello.js failed: {:?}", failure.response);
        }
        let report = sandbox.run(&activation(), &hello_params(), &self.limits);
        let elapsed = started.elapsed();
        ensure!(
            report.response.is_success(),
            "hello.js failed: {:?}",
            report.response
        );
        drop(sandbox);
        self.prewarm()?;
        Ok(elapsed)
    }

    /// Warm: one run of the warm Rust hello sandbox.
    pub(crate) fn warm(&mut self) -> Result<Duration> {
        let context = activation();
        let params = hello_params();
        let started = Instant::now();
        let report = self.warm.run(&context, &params, &self.limits);
        let elapsed = started.elapsed();
        ensure!(
            report.response.is_success(),
            "Rust hello failed: {:?}",
            report.response
        );
        Ok(elapsed)
    }

    /// Density: makes warm Rust hello sandboxes (instantiate, init, one
    /// run) and keeps them alive until the process's RSS has grown by
    /// `budget_kib` or `max` of them live; `tick` is called every 256.
    pub(crate) fn density(
        &mut self,
        budget_kib: u64,
        max: usize,
        mut tick: impl FnMut(usize),
    ) -> Result<WasmDensity> {
        self.stem_cell = None;
        let before = rss_kib().context("reading /proc/self/status")?;
        let pss_before = crate::stats::pss_kib().context("reading smaps_rollup")?;
        let started = Instant::now();
        let mut live = Vec::with_capacity(max.min(1 << 16));
        let mut filled = false;
        while live.len() < max {
            live.push(
                warm(&self.engine, &self.rust, &self.limits).with_context(|| {
                    format!("making live Rust hello sandbox number {}", live.len() + 1)
                })?,
            );
            if live.len().is_multiple_of(256) {
                tick(live.len());
                let now = rss_kib().unwrap_or(before);
                if now.saturating_sub(before) >= budget_kib {
                    filled = true;
                    break;
                }
            }
        }
        let made_in = started.elapsed();
        std::thread::sleep(Duration::from_millis(100));
        let rss_growth_kib = rss_kib()
            .context("reading /proc/self/status")?
            .saturating_sub(before);
        let pss_growth_kib = crate::stats::pss_kib()
            .context("reading smaps_rollup")?
            .saturating_sub(pss_before);
        let count = live.len();
        drop(live);
        Ok(WasmDensity {
            live: count,
            rss_growth_kib,
            pss_growth_kib,
            filled: filled || rss_growth_kib >= budget_kib,
            made_in,
            engine_cap: self.engine.config().max_sandboxes,
        })
    }
}

/// What the Wasm density row measured.
#[derive(Clone, Debug)]
pub(crate) struct WasmDensity {
    /// Live warm sandboxes at the reading.
    pub live: usize,
    /// Growth of this process's RSS with them alive, KiB.
    pub rss_growth_kib: u64,
    /// Growth of its PSS, KiB.
    pub pss_growth_kib: u64,
    /// True when the growth reached the budget: the count was measured
    /// outright, not extrapolated.
    pub filled: bool,
    /// How long making them took.
    pub made_in: Duration,
    /// The most sandboxes the engine's configuration allows at once.
    pub engine_cap: u32,
}

impl WasmDensity {
    /// RSS per live sandbox, KiB.
    pub(crate) fn per_sandbox_kib(&self) -> f64 {
        self.rss_growth_kib as f64 / self.live.max(1) as f64
    }
}

/// This process's resident set, KiB: `VmRSS` of `/proc/self/status`
/// (kept by counters, so cheap to read even with tens of thousands of
/// mappings, unlike `smaps_rollup`).
fn rss_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}
