//! The live row of `wasmwhisk bench pool`: ten thousand warmed (paused)
//! sandboxes held by one pool at once, what each costs, and what the idle
//! pool does.
//!
//! How each number is made:
//! - **warmed**: the pool's own snapshot, once every sandbox — created by a
//!   creation message, then given one activation so it initializes — paused
//!   (`pause-grace` 200 ms, `idle-container` an hour).
//! - **heap**: the binary's counting global allocator (bytes requested, not
//!   the system allocator's per-block overhead), read before the first
//!   creation and once all are paused, per sandbox. Everything outside the
//!   pool is in place before the first reading: the actions are deployed
//!   and every queue lane has carried one message; records go to a store
//!   that keeps none (a database's memory in a cluster, not the invoker's).
//!   The total is split into: *the sandbox itself*, measured on the same
//!   sandbox (instantiate, `init` with empty code as the pool gives a
//!   `wasm` action, one run) made outside
//!   the pool; *the cluster-state keys* the pool wrote (in process here;
//!   etcd holds them in a cluster), measured by copying them into a fresh
//!   map; and *the pool's bookkeeping*, the rest: its slot, warm-cache
//!   entry, warm key, container id.
//! - **RSS / PSS**: `/proc/self/smaps_rollup` before and after, per sandbox.
//! - **idle**: the process's user + system CPU time (`/proc/self/stat`,
//!   10 ms ticks) and its threads' context switches (`/proc/self/task/*/status`)
//!   over a few seconds in which nothing is sent to the pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Map, json};

use super::pool::{HeapCounter, PoolBenchArgs};
use super::pool_fixture::{Bench, NAMESPACE, activation, creation, finished, key, settings};
use super::sandbox::HELLO_RUST;
use super::stats::{pss_kib, rss_kib};
use wasmwhisk_core::pool::local::{LocalClusterState, Outgoing};
use wasmwhisk_core::pool::ports::{ActivationStore, ClusterState, StoreError};
use wasmwhisk_core::pool::queue::ActivationQueue;
use wasmwhisk_protocol::{ActivationId, WhiskActivation};
use wasmwhisk_sandbox::action::{ActivationContext, InitArgs, SandboxLimits};
use wasmwhisk_sandbox::engine::{CacheKey, Engine, Prepared};

/// Memory of each live action, MB (OpenWhisk's smallest default).
const MEMORY_MB: u64 = 128;
/// Creation messages in flight at once while filling the pool.
const WINDOW: usize = 16;

/// What the live row measured.
pub(super) struct LiveReport {
    /// Sandboxes asked for.
    count: usize,
    /// Warmed sandboxes in the pool's snapshot.
    warmed: usize,
    /// Creating all of them and running each once.
    filled_in: Duration,
    /// Heap bytes added per warmed sandbox, and of those the cluster keys'.
    heap: Option<(f64, f64)>,
    /// RSS and PSS added per warmed sandbox, KiB.
    rss_kib: f64,
    pss_kib: f64,
    /// CPU time and context switches while idle, and the threads alive.
    idle_cpu: Option<Duration>,
    idle_switches: u64,
    threads: usize,
}

/// The same sandbox made outside the pool.
pub(super) struct BareReport {
    /// Heap bytes per sandbox.
    heap: Option<f64>,
    /// PSS per sandbox, KiB.
    pss_kib: f64,
}

/// An activation store that keeps nothing (and counts what it was given).
#[derive(Debug, Default)]
struct Discard {
    stored: AtomicUsize,
}

#[async_trait::async_trait]
impl ActivationStore for Discard {
    async fn store(&self, _activation: &WhiskActivation) -> Result<(), StoreError> {
        self.stored.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn get(&self, _id: &ActivationId) -> Result<Option<WhiskActivation>, StoreError> {
        Ok(None)
    }
}

/// Fills a pool with `args.live` warmed sandboxes, one action each, and
/// measures it.
pub(super) async fn hold(
    engine: &Arc<Engine>,
    code_key: CacheKey,
    args: &PoolBenchArgs,
    heap: Option<HeapCounter>,
) -> Result<LiveReport> {
    let n = args.live.max(1);
    let mut settings = settings(n as u64 * MEMORY_MB + 1024);
    settings.pause_grace = Duration::from_millis(200);
    settings.idle_container = Duration::from_secs(3600);
    let records = Arc::new(Discard::default());
    let mut bench = Bench::start(engine, settings, records.clone());
    let code: Arc<[u8]> = HELLO_RUST.into();
    let mut deployed = Vec::with_capacity(n);
    for i in 0..n {
        let action = bench.deploy(
            &format!("live-{i:05}"),
            "wasm",
            MEMORY_MB,
            code.clone(),
            Some(code_key),
        )?;
        let lane = key(&action);
        // One message through the lane, so its buffers exist before we count.
        bench.queue.push(&lane, activation(&action, false)?);
        let pulled = bench
            .queue
            .pull(&lane, Duration::ZERO)
            .await?
            .context("the lane is empty")?;
        bench.queue.done(&lane, pulled.delivery).await?;
        deployed.push((lane, action));
    }
    settle_async(heap).await;
    let heap_before = heap.map(|h| (h.net_bytes)());
    let rss_before = rss_kib().context("reading /proc/self/smaps_rollup")?;
    let pss_before = pss_kib().context("reading /proc/self/smaps_rollup")?;

    let started = Instant::now();
    let mut pending = deployed.iter();
    let (mut in_flight, mut done) = (0_usize, 0);
    while done < n {
        while in_flight < WINDOW {
            let Some((lane, action)) = pending.next() else {
                break;
            };
            // Queued first: the sandbox pulls it as soon as it is ready.
            bench.queue.push(lane, activation(action, false)?);
            bench.pool.create(creation(action)?).await;
            in_flight += 1;
        }
        match bench.bus.next().await? {
            Outgoing::CreationAck(_, ack) => {
                ensure!(ack.is_success(), "the creation failed: {ack:?}")
            }
            Outgoing::Completion(_, ack) => {
                if let Some((id, system_error)) = finished(&ack) {
                    ensure!(!system_error, "activation {id} ended with a system error");
                    done += 1;
                    in_flight = in_flight.saturating_sub(1);
                    if done % 1000 == 0 {
                        eprintln!(
                            "  {done} sandboxes created and run ({:?})",
                            started.elapsed()
                        );
                    }
                }
            }
        }
    }
    let filled_in = started.elapsed();
    bench
        .until("every sandbox paused", Duration::from_millis(100), |m| {
            m.warmed == n && m.busy == 0 && m.in_progress == 0
        })
        .await?;
    let warmed = bench.metrics().await?.warmed;
    ensure!(
        records.stored.load(Ordering::Relaxed) >= n,
        "records are missing"
    );
    // Let the last paused proxies' tasks end.
    settle_async(heap).await;
    let heap_after = heap.map(|h| (h.net_bytes)());
    let rss_after = rss_kib().context("reading /proc/self/smaps_rollup")?;
    let pss_after = pss_kib().context("reading /proc/self/smaps_rollup")?;
    let heap = match (heap, heap_before, heap_after) {
        (Some(counter), Some(before), Some(after)) => {
            let keys = cluster_bytes(&bench.cluster, counter).await;
            Some((
                (after - before).max(0) as f64 / n as f64,
                keys as f64 / n as f64,
            ))
        }
        _ => None,
    };

    eprintln!("  idle for {} s", args.idle_seconds);
    let cpu_before = cpu_time();
    let switches_before = context_switches();
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let cpu_after = cpu_time();
    let switches_after = context_switches();
    let idle_cpu = cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b));
    let idle_switches = switches_after
        .iter()
        .map(|(tid, after)| after.saturating_sub(switches_before.get(tid).copied().unwrap_or(0)))
        .sum();
    let threads = switches_after.len();

    bench.pool.shutdown(Duration::from_secs(5)).await;
    Ok(LiveReport {
        count: n,
        warmed,
        filled_in,
        heap,
        rss_kib: rss_after.saturating_sub(rss_before) as f64 / n as f64,
        pss_kib: pss_after.saturating_sub(pss_before) as f64 / n as f64,
        idle_cpu,
        idle_switches,
        threads,
    })
}

/// How long the heap is watched for changes before a reading.
const SETTLE_STEP: Duration = Duration::from_millis(200);

/// Waits (at most 5 s) until the heap changes by less than 64 KiB over
/// [`SETTLE_STEP`]: nothing is still being built or freed.
async fn settle_async(heap: Option<HeapCounter>) {
    let Some(heap) = heap else {
        tokio::time::sleep(SETTLE_STEP).await;
        return;
    };
    for _ in 0..25 {
        let before = (heap.net_bytes)();
        tokio::time::sleep(SETTLE_STEP).await;
        if (heap.net_bytes)().abs_diff(before) < 64 << 10 {
            return;
        }
    }
}

/// [`settle_async`] for blocking code.
fn settle(heap: Option<HeapCounter>) {
    let Some(heap) = heap else {
        std::thread::sleep(SETTLE_STEP);
        return;
    };
    for _ in 0..25 {
        let before = (heap.net_bytes)();
        std::thread::sleep(SETTLE_STEP);
        if (heap.net_bytes)().abs_diff(before) < 64 << 10 {
            return;
        }
    }
}

/// Heap bytes the cluster-state keys take: their copy into a fresh map.
async fn cluster_bytes(cluster: &LocalClusterState, heap: HeapCounter) -> usize {
    let pairs: Vec<(String, String)> = cluster
        .keys_with_prefix("")
        .into_iter()
        .map(|k| {
            let v = cluster.value(&k).unwrap_or_default();
            (k, v)
        })
        .collect();
    let before = (heap.net_bytes)();
    let copy = LocalClusterState::new();
    for (k, v) in &pairs {
        // Infallible in process.
        let _ = copy.put(k, v).await;
    }
    let after = (heap.net_bytes)();
    drop(copy);
    usize::try_from(after - before).unwrap_or(0)
}

/// Makes `n` warm sandboxes the way the pool does (instantiate, `init` with
/// empty code, one run) without a pool, and measures them. Blocking.
pub(super) fn bare_sandboxes(
    engine: &Arc<Engine>,
    prepared: &Prepared,
    n: usize,
    heap: Option<HeapCounter>,
) -> Result<BareReport> {
    let n = n.max(1);
    // The pool before may still be freeing its sandboxes.
    settle(heap);
    let (heap_per, pss_kib) = bare(engine, prepared, n, heap)?;
    Ok(BareReport {
        heap: heap_per,
        pss_kib,
    })
}

/// Heap bytes and PSS (KiB) per warm sandbox, `n` of them.
fn bare(
    engine: &Arc<Engine>,
    prepared: &Prepared,
    n: usize,
    heap: Option<HeapCounter>,
) -> Result<(Option<f64>, f64)> {
    let limits = SandboxLimits {
        timeout: Duration::from_secs(5),
        memory_mb: MEMORY_MB,
        logs_mb: 10,
        concurrency: 1,
    };
    let mut params = Map::new();
    params.insert("name".into(), json!("bench"));
    let heap_before = heap.map(|h| (h.net_bytes)());
    let pss_before = pss_kib().context("reading /proc/self/smaps_rollup")?;
    let mut live = Vec::with_capacity(n);
    for i in 0..n {
        let mut sandbox = engine.instantiate(prepared, MEMORY_MB)?;
        let args = InitArgs {
            name: format!("live-{i:05}"),
            main: "main".into(),
            code: Vec::new(),
            binary: true,
            env: Vec::new(),
        };
        if let Err(failure) = sandbox.init(args, &limits) {
            anyhow::bail!("init failed: {:?}", failure.response);
        }
        let report = sandbox.run(&context(i), &params, &limits);
        ensure!(report.response.is_success(), "{:?}", report.response);
        live.push(sandbox);
    }
    std::thread::sleep(Duration::from_millis(100));
    let heap_after = heap.map(|h| (h.net_bytes)());
    let pss_after = pss_kib().context("reading /proc/self/smaps_rollup")?;
    drop(live);
    Ok((
        heap_before
            .zip(heap_after)
            .map(|(b, a)| (a - b).max(0) as f64 / n as f64),
        pss_after.saturating_sub(pss_before) as f64 / n as f64,
    ))
}

fn context(i: usize) -> ActivationContext {
    ActivationContext {
        activation_id: wasmwhisk_sandbox::action::new_activation_id(),
        namespace: NAMESPACE.into(),
        action_name: format!("/{NAMESPACE}/live-{i:05}"),
        action_version: "0.0.1".into(),
        transaction_id: "bench".into(),
        api_key: Some("uuid-bench:key-bench".into()),
    }
}

/// User + system CPU time of this process (`/proc/self/stat`; Linux counts
/// it in ticks of 1/100 s).
fn cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Voluntary + involuntary context switches of each live thread, by id.
fn context_switches() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.insert(task.file_name().to_string_lossy().into_owned(), switches);
    }
    out
}

/// Prints the live table.
pub(super) fn print(live: &LiveReport, bare: &BareReport, idle_seconds: u64) {
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    let n = live.count;
    println!("\n| {n} warmed sandboxes held at once | measured | target | |");
    println!("|---|---|---|---|");
    println!(
        "| warmed sandboxes in the pool's snapshot | {} | {n} | {} |",
        live.warmed,
        met(live.warmed == n)
    );
    println!(
        "| creating them and running each once ({WINDOW} creations in flight) | {:.2} s | | |",
        live.filled_in.as_secs_f64()
    );
    match (live.heap, bare.heap) {
        (Some((total, keys)), Some(sandbox)) => {
            println!("| heap per warmed sandbox (counting allocator) | {total:.0} B | | |");
            println!(
                "|   of which the sandbox itself (the same sandbox outside the pool) | {sandbox:.0} B | | |"
            );
            println!(
                "|   of which cluster-state keys (in process here; etcd's in a cluster) | {keys:.0} B | | |"
            );
            println!(
                "|   of which the pool's bookkeeping (the rest) | {:.0} B | | |",
                total - sandbox - keys
            );
        }
        _ => println!(
            "| heap per warmed sandbox | not counted (no counting allocator in this binary) | | |"
        ),
    }
    println!(
        "| RSS added per warmed sandbox | {:.1} KiB ({:.0} MiB in all) | | |",
        live.rss_kib,
        live.rss_kib * n as f64 / 1024.0
    );
    println!(
        "| PSS added per warmed sandbox | {:.1} KiB | | |",
        live.pss_kib
    );
    println!(
        "|   the same sandbox outside the pool (made after the pool row, reusing its freed pages) | {:.1} KiB | | |",
        bare.pss_kib
    );
    match live.idle_cpu {
        Some(cpu) => println!(
            "| process CPU time over {idle_seconds} s, all paused | {} ms | ≈ 0 (< 1% of a core) | {} |",
            cpu.as_millis(),
            met(cpu.as_secs_f64() < idle_seconds as f64 * 0.01)
        ),
        None => println!("| process CPU time over {idle_seconds} s, all paused | unreadable | | |"),
    }
    // A wake-up per sandbox would be thousands; the pool's own timers are a
    // handful whatever the count.
    let most = (n as u64 / 100).max(100);
    println!(
        "| thread wake-ups (context switches) over those {idle_seconds} s | {} in {} threads | none per sandbox (< {most}) | {} |",
        live.idle_switches,
        live.threads,
        met(live.idle_switches < most)
    );
}
