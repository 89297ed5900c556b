//! `wasmwhisk bench cluster`: cluster mode's targets (issue 5), measured
//! from outside on one machine. The bench starts and owns every process: a
//! nats-server (JetStream on) and an etcd on free loopback ports
//! ([`super::cluster_servers`]), `wasmwhisk controller --id 0`, two
//! `wasmwhisk invoker`s and, for comparison, a `wasmwhisk standalone` — all
//! this binary, each with a data directory in one temporary directory and
//! the compile cache linked from `{data-dir}/bench-cluster-cache` (kept
//! between runs). They are stopped with SIGTERM at the end, SIGKILLed on an
//! error, and on Ctrl-C every child of the bench is SIGKILLed.
//!
//! Rows ([`super::cluster_rows`] drives the processes for 1, 2 and 4;
//! [`super::cluster_report`] prints them):
//! 1. invoker start → `up`: spawn of `wasmwhisk invoker` → its report key
//!    `whisk/invokers/{N}` says `up` in the bench's etcd watch of
//!    `whisk/invokers/` (the prefix the controllers watch), over restarts
//!    with a warm compile cache;
//! 2. warm blocking `result=true` invoke of Rust hello, one client,
//!    sequential, keep-alive: controller → JetStream → invoker → completion
//!    → controller, and the same row against standalone, interleaved in
//!    rounds (cluster first in even rounds, standalone first in odd ones),
//!    through `reqwest` and the raw client; their ratio; the messages
//!    nats-server carried per cluster invoke, and the floor of a core NATS
//!    request → reply and of a JetStream publish → ack
//!    ([`super::cluster_nats`]);
//! 3. throughput: many clients invoking two Rust hello actions, one homed
//!    on each invoker, with every process's CPU time over the measured
//!    phase and the sandboxes each invoker held after it; standalone under
//!    the same load as a reference;
//! 4. a dead invoker: an action homed on the invoker that holds its warm
//!    sandbox; SIGKILL that invoker; time until its `whisk/invokers/{N}` key
//!    is deleted (its lease expired); then invoke the action, which must
//!    succeed on the other invoker (its sandbox keys say where it ran).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::api_client::{Api, Code};
use super::api_rows::{self, Client, Load};
use super::api_server::{Launch, Role, Server};
use super::cluster_nats;
use super::cluster_report::Report;
use super::cluster_rows::{invoker_starts, kill_one, name_homed_at, warm_rounds};
use super::cluster_servers::{self, Owned};
use super::cluster_watch::InvokerWatch;
use super::sandbox::HELLO_RUST;
use super::stats::machine;

/// The warm Rust action of the latency rows.
pub(super) const RUST: &str = "hello-rust";
/// Memory of every action, MB (the smallest OpenWhisk allows).
pub(super) const MEMORY_MB: u64 = 128;
/// How many invokers the cluster has.
pub(super) const INVOKERS: u32 = 2;
/// The longest an invoker may take to say `up`.
const UP_WITHIN: Duration = Duration::from_secs(60);

/// Flags of `wasmwhisk bench cluster`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterBenchArgs {
    /// Timed invoker starts of the start → `up` row (after one untimed).
    #[arg(long, default_value_t = 10)]
    pub restarts: usize,
    /// Samples of each warm invoke row, cluster and standalone alike
    /// (after 200 untimed).
    #[arg(long, default_value_t = 5_000)]
    pub warm_samples: usize,
    /// Rounds the warm samples are taken in, alternating cluster and
    /// standalone.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Concurrent clients of the throughput rows, each on its own connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds each throughput row is measured (after 2 s of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Invokers SIGKILLed by the dead-invoker row, one after the other (each
    /// waits out the lease, then restarts the invoker).
    #[arg(long, default_value_t = 3)]
    pub kills: usize,
    /// The etcd lease TTL of every process, seconds (`[etcd]
    /// lease-timeout`; default 10).
    #[arg(long, default_value_t = 10)]
    pub lease_seconds: u64,
    /// `[container-pool] user-memory` of each invoker and of standalone,
    /// MB: room for the sandboxes the throughput rows grow to.
    #[arg(long, default_value_t = 4096)]
    pub user_memory_mb: u64,
    /// An extra `KEY=VALUE` in the environment of every wasmwhisk process
    /// (repeatable), e.g. `WASMWHISK_CONTROLLER__STALE_THRESHOLD="10 ms"`.
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    pub server_env: Vec<String>,
    /// A run of a few seconds that only checks the bench works (a 2 s
    /// lease; the numbers mean nothing).
    #[arg(long)]
    pub quick: bool,
}

/// The sizes of one run.
pub(super) struct Plan {
    /// Timed invoker starts.
    pub(super) restarts: usize,
    /// Untimed invokes before the first round of warm invokes.
    pub(super) warm_up: usize,
    /// Untimed invokes at the start of every later round.
    pub(super) round_warm_up: usize,
    /// Timed warm invokes of each row.
    pub(super) warm_samples: usize,
    /// Rounds they are taken in.
    pub(super) rounds: usize,
    /// Concurrent clients of the throughput rows.
    pub(super) clients: usize,
    /// Untimed load before each throughput row.
    pub(super) load_warm_up: Duration,
    /// Measured load of each throughput row.
    pub(super) load: Duration,
    /// Samples of the dead-invoker row.
    pub(super) kills: usize,
    /// The lease TTL.
    pub(super) lease: Duration,
}

impl Plan {
    fn of(args: &ClusterBenchArgs) -> Plan {
        if args.quick {
            return Plan {
                restarts: 2,
                warm_up: 5,
                round_warm_up: 2,
                warm_samples: 20,
                rounds: 2,
                clients: args.clients.clamp(1, 8),
                load_warm_up: Duration::from_millis(200),
                load: Duration::from_millis(500),
                kills: 1,
                lease: Duration::from_secs(2),
            };
        }
        Plan {
            restarts: args.restarts.max(1),
            warm_up: 200,
            round_warm_up: 20,
            warm_samples: args.warm_samples.max(1),
            rounds: args.rounds.clamp(1, args.warm_samples.max(1)),
            clients: args.clients.max(1),
            load_warm_up: Duration::from_secs(2),
            load: Duration::from_secs(args.seconds.max(1)),
            kills: args.kills,
            lease: Duration::from_secs(args.lease_seconds.max(1)),
        }
    }
}

/// Every process of the run. Fields drop in order: the wasmwhisk
/// processes first (SIGKILL), then the watch, etcd, nats-server, and last
/// the directory holding their data.
pub(super) struct Bench {
    /// The running invokers, by number.
    pub(super) invokers: BTreeMap<u32, Server>,
    controller: Server,
    standalone: Server,
    /// The invokers' keys in etcd.
    pub(super) watch: InvokerWatch,
    etcd: Owned,
    nats: Owned,
    exe: PathBuf,
    nats_url: String,
    /// nats-server's monitoring port (`/varz`).
    pub(super) nats_monitor: u16,
    etcd_url: String,
    cache: PathBuf,
    /// Of every cluster process: user memory, lease TTL, `--server-env`.
    env: Vec<(String, String)>,
    root: tempfile::TempDir,
}

impl Bench {
    /// `{root}/{name}`, made on first use, with the shared compile cache
    /// linked in.
    fn data_dir(&self, name: &str) -> Result<PathBuf> {
        data_dir(self.root.path(), name, &self.cache)
    }

    /// Spawns invoker `n`; waits until the watch sees it `up`. The server
    /// and spawn → `up`.
    pub(super) fn start_invoker(
        &self,
        runtime: &tokio::runtime::Runtime,
        n: u32,
    ) -> Result<(Server, Duration)> {
        let dir = self.data_dir(&format!("invoker{n}"))?;
        let role = cluster_role("invoker", n, &self.nats_url, &self.etcd_url, &dir);
        let launch = Launch {
            exe: self.exe.clone(),
            data_dir: dir,
            env: self.env.clone(),
        };
        let server = Server::start_as(&launch, &role)?;
        let up = self
            .watch
            .wait(runtime, n, Some("up"), server.spawned, UP_WITHIN)?;
        let to_up = up.saturating_duration_since(server.spawned);
        Ok((server, to_up))
    }

    fn invoker(&self, n: u32) -> Result<&Server> {
        self.invokers
            .get(&n)
            .with_context(|| format!("invoker{n} is not running"))
    }

    /// SIGTERM to every process, each checked to exit (the wasmwhisk ones
    /// with status 0).
    fn stop(self) -> Result<()> {
        let Bench {
            invokers,
            controller,
            standalone,
            watch,
            mut etcd,
            mut nats,
            root,
            ..
        } = self;
        for (n, invoker) in invokers {
            invoker
                .stop()
                .with_context(|| format!("stopping invoker{n}"))?;
        }
        controller.stop().context("stopping controller0")?;
        standalone.stop().context("stopping standalone")?;
        drop(watch);
        etcd.stop()?;
        nats.stop()?;
        root.close().context("removing the servers' data")
    }
}

/// `{root}/{name}` with `cache` linked in as its compile cache.
fn data_dir(root: &Path, name: &str, cache: &Path) -> Result<PathBuf> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let link = dir.join("cache");
    if !link.exists() {
        std::os::unix::fs::symlink(cache, &link).context("linking the compile cache")?;
    }
    Ok(dir)
}

/// `wasmwhisk {role} --id {n} --port 0 --nats … --etcd …`, logging to
/// `{dir}/process.log`.
fn cluster_role(role: &str, n: u32, nats: &str, etcd: &str, dir: &Path) -> Role {
    Role {
        args: [
            role,
            "--id",
            &n.to_string(),
            "--port",
            "0",
            "--nats",
            nats,
            "--etcd",
            etcd,
        ]
        .map(String::from)
        .to_vec(),
        name: format!("{role}{n}"),
        wskprops: role == "controller",
        log: Some(dir.join("process.log")),
    }
}

/// Runs the benchmark and prints a Markdown report.
pub fn run(data_dir: &Path, args: ClusterBenchArgs) -> Result<()> {
    eprintln!("machine: {}", machine());
    let plan = Plan::of(&args);
    let exe = crate::wasmwhisk_bin()?;
    let cache = data_dir.join("bench-cluster-cache");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let cache_was_warm = std::fs::read_dir(&cache)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    let root = tempfile::Builder::new()
        .prefix("wasmwhisk-bench-cluster-")
        .tempdir()
        .context("creating the servers' data directory")?;
    eprintln!("servers' data: {}", root.path().display());
    // The watch, the signal handler and the throughput clients run on a
    // worker per core; sequential requests on one thread, the client's
    // connection task beside the request (as `bench api`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let sequential = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    cluster_servers::on_signal_kill_children(&runtime, root.path().to_path_buf());

    let mut common = vec![(
        "WASMWHISK_CONTAINER_POOL__USER_MEMORY".to_string(),
        format!("{} MB", args.user_memory_mb),
    )];
    for pair in &args.server_env {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--server-env {pair:?}: expected KEY=VALUE"))?;
        common.push((key.to_string(), value.to_string()));
    }
    let mut env = common.clone();
    env.push((
        "WASMWHISK_ETCD__LEASE_TIMEOUT".to_string(),
        format!("{} seconds", plan.lease.as_secs()),
    ));

    eprintln!("starting nats-server, etcd, controller0 and standalone");
    let nats_dir = root.path().join("nats");
    let etcd_dir = root.path().join("etcd");
    for dir in [&nats_dir, &etcd_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (nats, nats_url, nats_monitor) = cluster_servers::nats(&nats_dir)?;
    let (etcd, etcd_url) = cluster_servers::etcd(&etcd_dir)?;
    let watch = InvokerWatch::start(&runtime, &etcd_url)?;
    let controller_dir = self::data_dir(root.path(), "controller0", &cache)?;
    let controller = Server::start_as(
        &Launch {
            exe: exe.clone(),
            data_dir: controller_dir.clone(),
            env: env.clone(),
        },
        &cluster_role("controller", 0, &nats_url, &etcd_url, &controller_dir),
    )?;
    let standalone = Server::start(&Launch {
        exe: exe.clone(),
        data_dir: self::data_dir(root.path(), "standalone", &cache)?,
        env: common,
    })?;
    let mut bench = Bench {
        invokers: BTreeMap::new(),
        controller,
        standalone,
        watch,
        etcd,
        nats,
        exe,
        nats_url,
        nats_monitor,
        etcd_url,
        cache,
        env: env.clone(),
        root,
    };
    let mut report = Report::new(&plan, env, &bench.nats.version, &bench.etcd.version);

    eprintln!("invoker starts: 1 + {}", plan.restarts);
    report.starts = Some(invoker_starts(&mut bench, &runtime, &plan, cache_was_warm)?);
    let (invoker1, _) = bench.start_invoker(&runtime, 1)?;
    bench.invokers.insert(1, invoker1);

    let cluster = Api::new(
        &bench.controller.base,
        &bench.controller.auth,
        &bench.controller.admin,
    )?;
    let standalone = Api::new(
        &bench.standalone.base,
        &bench.standalone.auth,
        &bench.standalone.admin,
    )?;
    let load_actions = [name_homed_at(0, "load-a")?, name_homed_at(1, "load-b")?];
    eprintln!(
        "deploying {RUST}, {} and {}",
        load_actions[0], load_actions[1]
    );
    sequential.block_on(async {
        for api in [&cluster, &standalone] {
            for name in [RUST, &load_actions[0], &load_actions[1]] {
                api.put_action(name, Code::Wasm(HELLO_RUST), MEMORY_MB)
                    .await?;
                api.invoke_checked(name).await?;
            }
        }
        anyhow::Ok(())
    })?;

    eprintln!(
        "warm invokes: {} rounds, cluster and standalone interleaved",
        plan.rounds
    );
    let (latency, counted) = warm_rounds(&sequential, &bench, &cluster, &standalone, &plan)?;
    report.latency = latency;
    report.nats_per_invoke = Some(counted);
    eprintln!("NATS hops from the bench");
    report.hops = Some(sequential.block_on(cluster_nats::hops(
        &bench.nats_url,
        plan.warm_up,
        plan.warm_samples,
    ))?);

    let actions: Vec<&str> = load_actions.iter().map(String::as_str).collect();
    let pids = [
        bench.controller.pid(),
        bench.invoker(0)?.pid(),
        bench.invoker(1)?.pid(),
        bench.nats.pid(),
        bench.etcd.pid(),
        bench.standalone.pid(),
    ];
    for (api, client, what) in [
        (&cluster, Client::Raw, "cluster"),
        (&cluster, Client::Reqwest, "cluster"),
        (&standalone, Client::Raw, "standalone"),
    ] {
        eprintln!(
            "throughput, {what}, {} clients ({})",
            plan.clients,
            client.name()
        );
        let load = Load {
            actions: &actions,
            client,
            clients: plan.clients,
            warm_up: plan.load_warm_up,
            duration: plan.load,
        };
        let run = runtime.block_on(api_rows::throughput_of(api, &load, &pids))?;
        if run.ok == 0 {
            bail!(
                "no invoke succeeded under load ({what}): {}",
                run.first_failure.unwrap_or_default()
            );
        }
        let mut sandboxes = BTreeMap::new();
        if what == "cluster" {
            for action in &actions {
                for (n, count) in bench.watch.sandboxes(&runtime, action)? {
                    *sandboxes.entry(n).or_default() += count;
                }
            }
        }
        report.throughput.push((what, run, sandboxes));
    }

    for k in 0..plan.kills {
        eprintln!(
            "dead invoker {}/{}: SIGKILL, waiting out the lease",
            k + 1,
            plan.kills
        );
        let kill = kill_one(&mut bench, &runtime, &sequential, &cluster, k, &plan)?;
        report.kills.push(kill);
    }

    drop((cluster, standalone));
    report.print();
    let t = Instant::now();
    bench.stop()?;
    eprintln!("every process stopped (SIGTERM) in {:?}", t.elapsed());
    Ok(())
}
