//! `wasmwhisk bench api`: standalone mode's targets (issue 4), measured from
//! outside the way a user meets them — the real `wasmwhisk standalone`
//! started as a child process on a fresh data directory, driven over
//! loopback HTTP with keep-alive connections.
//!
//! Rows ([`api_report`](super::api_report) prints them):
//! 1. start → serving with a warm compile cache: spawn → the listening line,
//!    and spawn → the first `GET /ping` answered, over restarts of one data
//!    directory (after one start that deployed the actions and so compiled
//!    everything);
//! 2. memory: RSS and PSS of the idle server after start and after the runs;
//! 3. warm blocking `result=true` invokes of Rust and JS hello, one client,
//!    sequential — through `reqwest` and through a raw HTTP/1.1 client
//!    ([`super::api_raw`]), which shows the client's share;
//! 4. first invoke after create, `wasm` and `js` (a stem cell specialized):
//!    a fresh action per sample, deleted after it;
//! 5. throughput: many concurrent clients invoking Rust hello, with the
//!    server's and the bench's CPU time (they share the machine's cores).
//!
//! The data directory is a temporary one, but its compile cache is a link to
//! `{data-dir}/bench-api-cache`, kept between runs: the JS runtime is
//! compiled once, not at every run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::api_client::{Api, Code};
use super::api_report::{Memory, Report, StartRows};
use super::api_rows::{self, Client};
use super::api_server::{Launch, ProcStats, Server};
use super::sandbox::HELLO_RUST;
use super::stats::{Samples, machine};

/// The JS hello example.
const HELLO_JS: &str = include_str!("../../../examples/hello.js");
/// The warm Rust action.
const RUST: &str = "hello-rust";
/// The warm JS action.
const JS: &str = "hello-js";
/// Memory of the `wasm` actions, MB (the smallest OpenWhisk allows).
const WASM_MEMORY_MB: u64 = 128;
/// Memory of the `js` actions, MB: the default stem cells' size, so a stem
/// cell serves them.
const JS_MEMORY_MB: u64 = 256;

/// Flags of `wasmwhisk bench api`.
#[derive(clap::Args, Debug, Clone)]
pub struct ApiBenchArgs {
    /// Timed restarts of the start → serving row.
    #[arg(long, default_value_t = 20)]
    pub restarts: usize,
    /// Samples of each warm invoke row (after 200 untimed).
    #[arg(long, default_value_t = 5_000)]
    pub warm_samples: usize,
    /// Samples of each first-invoke-after-create row.
    #[arg(long, default_value_t = 50)]
    pub first_samples: usize,
    /// Concurrent clients of the throughput rows, each on its own connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds each throughput row is measured (after 2 s of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Seconds the server is left idle before its memory is read.
    #[arg(long, default_value_t = 5)]
    pub idle_seconds: u64,
    /// The server's `[container-pool] user-memory`, MB: room for the
    /// sandboxes the throughput rows grow to.
    #[arg(long, default_value_t = 4096)]
    pub user_memory_mb: u64,
    /// An extra `KEY=VALUE` in the server's environment (repeatable), e.g.
    /// `WASMWHISK_CONTROLLER__STALE_THRESHOLD="10 ms"` to try a setting.
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    pub server_env: Vec<String>,
    /// A run of a few seconds that only checks the bench works (the
    /// numbers mean nothing).
    #[arg(long)]
    pub quick: bool,
}

/// The sizes of one run.
struct Plan {
    restarts: usize,
    warm_up: usize,
    warm_samples: usize,
    first_samples: usize,
    clients: usize,
    load_warm_up: Duration,
    load: Duration,
    idle: Duration,
}

impl Plan {
    fn of(args: &ApiBenchArgs) -> Plan {
        if args.quick {
            return Plan {
                restarts: 2,
                warm_up: 5,
                warm_samples: 20,
                first_samples: 2,
                clients: args.clients.min(8),
                load_warm_up: Duration::from_millis(200),
                load: Duration::from_millis(500),
                idle: Duration::from_millis(200),
            };
        }
        Plan {
            restarts: args.restarts.max(1),
            warm_up: 200,
            warm_samples: args.warm_samples.max(1),
            first_samples: args.first_samples.max(1),
            clients: args.clients.max(1),
            load_warm_up: Duration::from_secs(2),
            load: Duration::from_secs(args.seconds.max(1)),
            idle: Duration::from_secs(args.idle_seconds),
        }
    }
}

/// Runs the benchmark against `wasmwhisk standalone` (this binary) and
/// prints a Markdown report.
pub fn run(data_dir: &Path, args: ApiBenchArgs) -> Result<()> {
    eprintln!("machine: {}", machine());
    let plan = Plan::of(&args);
    let exe = crate::wasmwhisk_bin()?;
    let cache = data_dir.join("bench-api-cache");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let cache_was_warm = std::fs::read_dir(&cache)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    let dir = tempfile::Builder::new()
        .prefix("wasmwhisk-bench-api-")
        .tempdir()
        .context("creating the server's data directory")?;
    std::os::unix::fs::symlink(&cache, dir.path().join("cache"))
        .context("linking the compile cache")?;
    let mut env = vec![(
        "WASMWHISK_CONTAINER_POOL__USER_MEMORY".to_string(),
        format!("{} MB", args.user_memory_mb),
    )];
    for pair in &args.server_env {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--server-env {pair:?}: expected KEY=VALUE"))?;
        env.push((key.to_string(), value.to_string()));
    }
    let launch = Launch {
        exe,
        data_dir: dir.path().to_path_buf(),
        env: env.clone(),
    };
    // Sequential requests run on one thread, the client's connection task
    // beside the request (no wake-up crosses threads); the throughput rows'
    // clients on a worker per core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let load = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;

    eprintln!("first start: deploying {RUST} and {JS}");
    let first = Server::start(&launch)?;
    let first_start = first.to_listening;
    runtime.block_on(async {
        let api = api_of(&first)?;
        api.put_action(RUST, Code::Wasm(HELLO_RUST), WASM_MEMORY_MB)
            .await?;
        api.put_action(JS, Code::Js(HELLO_JS), JS_MEMORY_MB).await?;
        api.invoke_checked(RUST).await?;
        api.invoke_checked(JS).await
    })?;
    first.stop().context("stopping the first server")?;

    eprintln!("{} restarts", plan.restarts);
    let mut to_listening = Vec::with_capacity(plan.restarts);
    let mut to_ping = Vec::with_capacity(plan.restarts);
    let mut server = None;
    for i in 0..plan.restarts {
        let started = Server::start(&launch)?;
        to_listening.push(started.to_listening);
        let api = api_of(&started)?;
        to_ping.push(runtime.block_on(first_ping(&api, started.spawned))?);
        if i + 1 < plan.restarts {
            started.stop().context("stopping a restarted server")?;
        } else {
            server = Some(started);
        }
    }
    let server = server.context("no server left running")?;
    let starts = StartRows {
        first_start,
        cache_was_warm,
        to_listening: Samples::new(to_listening),
        to_ping: Samples::new(to_ping),
    };
    let api = api_of(&server)?;
    let pid = server.pid();

    std::thread::sleep(plan.idle);
    let after_start = Memory::of(ProcStats::read(&pid.to_string())?);

    let mut report = Report::new(starts, env, plan.idle);
    eprintln!("first invoke after create");
    let wasm = runtime.block_on(api_rows::first_invoke(
        &api,
        "first-wasm",
        Code::Wasm(HELLO_RUST),
        WASM_MEMORY_MB,
        plan.first_samples,
    ))?;
    report.latency(
        "first invoke after create, `wasm` (Rust hello, compiled at create)",
        wasm,
        2_000,
    );
    let js = runtime.block_on(api_rows::first_invoke(
        &api,
        "first-js",
        Code::Js(HELLO_JS),
        JS_MEMORY_MB,
        plan.first_samples,
    ))?;
    report.latency(
        "first invoke after create, `js` (hello.js on a stem cell)",
        js,
        2_000,
    );

    for (action, what, target_us) in [(RUST, "Rust hello", 250), (JS, "JS hello", 300)] {
        eprintln!("warm invokes of {what}");
        let samples = runtime.block_on(api_rows::warm_latency(
            &api,
            action,
            plan.warm_up,
            plan.warm_samples,
        ))?;
        report.latency(
            &format!(
                "warm blocking `result=true` invoke, {what} ({})",
                Client::Reqwest.name()
            ),
            samples,
            target_us,
        );
        let samples = api_rows::warm_latency_raw(&api, action, plan.warm_up, plan.warm_samples)?;
        report.latency(
            &format!(
                "warm blocking `result=true` invoke, {what} ({})",
                Client::Raw.name()
            ),
            samples,
            target_us,
        );
    }

    for client in [Client::Reqwest, Client::Raw] {
        eprintln!("throughput, {} clients ({})", plan.clients, client.name());
        let run = load.block_on(api_rows::throughput(
            &api,
            RUST,
            client,
            plan.clients,
            plan.load_warm_up,
            plan.load,
            pid,
        ))?;
        if run.ok == 0 {
            bail!(
                "no invoke succeeded under load: {}",
                run.first_failure.unwrap_or_default()
            );
        }
        report.throughput(run);
    }

    std::thread::sleep(plan.idle);
    let after_runs = Memory::of(ProcStats::read(&pid.to_string())?);
    report.memory(after_start, after_runs);
    let size = |file: &str| {
        std::fs::metadata(dir.path().join(file))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    report.database(size("wasmwhisk.db"), size("wasmwhisk.db-wal"));
    drop((runtime, load));
    let t = Instant::now();
    server.stop().context("stopping the server")?;
    report.stopped_in(t.elapsed());
    report.print();
    Ok(())
}

/// A client of `server` as the guest namespace.
fn api_of(server: &Server) -> Result<Api> {
    Api::new(&server.base, &server.auth, &server.admin)
}

/// Spawn → the first `GET /ping` answered 200 (tried every millisecond).
async fn first_ping(api: &Api, spawned: Instant) -> Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if api.ping().await.is_ok() {
            return Ok(spawned.elapsed());
        }
        if Instant::now() > deadline {
            bail!("/ping did not answer within 30 s of the listening line");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
