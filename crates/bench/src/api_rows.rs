//! The measurements of `wasmwhisk bench api` against a running server: warm
//! invoke latency, first invoke after create, and throughput under many
//! clients — each through `reqwest` or the raw client of
//! [`super::api_raw`].

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::api_client::{Api, Code, PARAMS, PoolCounts, check_greeting};
use super::api_raw::RawConn;
use super::api_server::ProcStats;
use super::stats::Samples;

/// The longest the pool may take to settle between two samples.
const SETTLE: Duration = Duration::from_secs(10);

/// Which client sends the invokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Client {
    /// `reqwest`, async, on the bench's Tokio runtime.
    Reqwest,
    /// [`RawConn`]: a blocking socket per client thread.
    Raw,
}

impl Client {
    /// Its name in the report.
    pub(super) fn name(self) -> &'static str {
        match self {
            Client::Reqwest => "reqwest",
            Client::Raw => "raw HTTP/1.1",
        }
    }
}

/// Sequential blocking invokes of `action` on one connection through
/// `reqwest`: `warm_up` untimed, then `samples` timed.
pub(super) async fn warm_latency(
    api: &Api,
    action: &str,
    warm_up: usize,
    samples: usize,
) -> Result<Samples> {
    let url = api.invoke_url(action);
    check_greeting(&api.invoke(&url).await?)?;
    let mut out = Vec::with_capacity(samples);
    for i in 0..warm_up + samples {
        let t = Instant::now();
        api.invoke(&url).await?;
        if i >= warm_up {
            out.push(t.elapsed());
        }
    }
    Ok(Samples::new(out))
}

/// As [`warm_latency`], through the raw client on the calling thread.
pub(super) fn warm_latency_raw(
    api: &Api,
    action: &str,
    warm_up: usize,
    samples: usize,
) -> Result<Samples> {
    let mut conn = raw_conn(api, action)?;
    let mut body = Vec::new();
    let mut out = Vec::with_capacity(samples);
    for i in 0..warm_up + samples {
        let t = Instant::now();
        let status = conn.send(&mut body)?;
        if i >= warm_up {
            out.push(t.elapsed());
        }
        ensure!(
            status == 200,
            "invoke: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    check_greeting(&body)?;
    Ok(Samples::new(out))
}

/// A raw connection that invokes `action`.
fn raw_conn(api: &Api, action: &str) -> Result<RawConn> {
    let url = api.invoke_url(action);
    let path = url.strip_prefix(api.base()).context("invoke URL")?;
    let auth = api.auth_header().to_str().context("auth header")?;
    RawConn::connect(api.base(), path, auth, PARAMS)
}

/// First invoke after create: per sample, deploy a fresh action (`code`,
/// `memory_mb`), time its first blocking invoke, delete it, and wait until
/// the pool is back to where it was (the sandbox removed, stem cells
/// replaced).
pub(super) async fn first_invoke(
    api: &Api,
    prefix: &str,
    code: Code<'_>,
    memory_mb: u64,
    samples: usize,
) -> Result<Samples> {
    let baseline = settled_baseline(api).await?;
    let mut out = Vec::with_capacity(samples);
    let mut unsettled = 0;
    for i in 0..samples {
        if !settle(api, baseline).await? {
            unsettled += 1;
        }
        let name = format!("{prefix}-{i}");
        api.put_action(&name, code, memory_mb).await?;
        let url = api.invoke_url(&name);
        let t = Instant::now();
        let body = api.invoke(&url).await?;
        out.push(t.elapsed());
        check_greeting(&body)?;
        api.delete_action(&name).await?;
    }
    if unsettled > 0 {
        eprintln!(
            "  warning: {unsettled} of {samples} samples started before the pool settled \
             (back to {baseline:?} within {SETTLE:?})"
        );
    }
    Ok(Samples::new(out))
}

/// The pool's counts once its stem cells stopped changing (at most
/// [`SETTLE`]).
async fn settled_baseline(api: &Api) -> Result<PoolCounts> {
    let deadline = Instant::now() + SETTLE;
    let mut last = api.pool().await?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = api.pool().await?;
        if (now == last && now.prewarmed > 0) || Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// Waits until no more sandboxes are given to actions than in `baseline`
/// and at least as many stem cells are ready; false if that took longer
/// than [`SETTLE`].
async fn settle(api: &Api, baseline: PoolCounts) -> Result<bool> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = api.pool().await?;
        if now.given <= baseline.given && now.prewarmed >= baseline.prewarmed {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What a throughput run measured.
pub(super) struct Throughput {
    /// The client.
    pub(super) client: Client,
    /// Concurrent clients, each on its own connection.
    pub(super) clients: usize,
    /// Invokes answered 200 in the measured phase.
    pub(super) ok: usize,
    /// Invokes answered otherwise (or failed) in the measured phase.
    pub(super) failed: usize,
    /// The first failure, if any.
    pub(super) first_failure: Option<String>,
    /// The measured phase's length.
    pub(super) took: Duration,
    /// Latency of each successful invoke.
    pub(super) latency: Samples,
    /// The server's CPU time over the measured phase, seconds (the sum over
    /// every watched process).
    pub(super) server_cpu: f64,
    /// The CPU time of each watched process over the measured phase,
    /// seconds, in the order they were given.
    pub(super) cpu: Vec<f64>,
    /// The bench's own CPU time over it, seconds.
    pub(super) bench_cpu: f64,
    /// Bytes the server wrote to storage over it (every watched process).
    pub(super) server_written: u64,
}

impl Throughput {
    /// Successful invokes per second.
    pub(super) fn rate(&self) -> f64 {
        self.ok as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// One client's tally.
#[derive(Default)]
struct Tally {
    latency: Vec<Duration>,
    failed: usize,
    first_failure: Option<String>,
}

impl Tally {
    fn record(&mut self, t: Instant, outcome: Result<()>) {
        match outcome {
            Ok(()) => self.latency.push(t.elapsed()),
            Err(e) => {
                self.failed += 1;
                self.first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

/// The clients of a throughput run, each with its own connection, kept
/// from the warm-up to the measured phase.
enum Clients {
    /// `reqwest` clients, each with its own connection pool and its URL.
    Reqwest(Vec<(Api, String)>),
    /// Raw connections (`None` once one failed: it is not reused).
    Raw(Vec<Option<RawConn>>),
}

/// `clients` concurrent clients, each on its own keep-alive connection,
/// invoke `action` back to back: for `warm_up` untimed (the connections
/// open, the pool grows to the load), then for `duration` measured, with
/// the server's (`pid`) and the bench's CPU time read around it.
pub(super) async fn throughput(
    api: &Api,
    action: &str,
    client: Client,
    clients: usize,
    warm_up: Duration,
    duration: Duration,
    pid: u32,
) -> Result<Throughput> {
    let load = Load {
        actions: &[action],
        client,
        clients,
        warm_up,
        duration,
    };
    throughput_of(api, &load, &[pid]).await
}

/// The shape of a throughput run.
pub(super) struct Load<'a> {
    /// The actions invoked: client `i` invokes `actions[i % len]`.
    pub(super) actions: &'a [&'a str],
    /// The client.
    pub(super) client: Client,
    /// Concurrent clients.
    pub(super) clients: usize,
    /// Untimed first.
    pub(super) warm_up: Duration,
    /// Measured after.
    pub(super) duration: Duration,
}

/// As [`throughput`], for `load`, with the CPU time and disk writes of
/// every process of `pids` (a server of several processes) read around the
/// measured phase.
pub(super) async fn throughput_of(api: &Api, load: &Load<'_>, pids: &[u32]) -> Result<Throughput> {
    ensure!(!load.actions.is_empty(), "a throughput run needs an action");
    let action = |i: usize| {
        load.actions
            .get(i % load.actions.len())
            .copied()
            .unwrap_or_default()
    };
    let connections = match load.client {
        Client::Reqwest => Clients::Reqwest(
            (0..load.clients)
                .map(|i| Ok((api.fresh()?, api.invoke_url(action(i)))))
                .collect::<Result<_>>()?,
        ),
        Client::Raw => Clients::Raw(
            (0..load.clients)
                .map(|i| raw_conn(api, action(i)).map(Some))
                .collect::<Result<_>>()?,
        ),
    };
    let (connections, _) = hammer(connections, load.warm_up).await?;
    let read = || -> Result<Vec<ProcStats>> {
        pids.iter()
            .map(|pid| ProcStats::read(&pid.to_string()))
            .collect()
    };
    let servers = read()?;
    let bench = ProcStats::read("self")?;
    let t = Instant::now();
    let (_, tallies) = hammer(connections, load.duration).await?;
    let took = t.elapsed();
    let servers_after = read()?;
    let cpu: Vec<f64> = servers
        .iter()
        .zip(&servers_after)
        .map(|(before, after)| after.cpu_seconds() - before.cpu_seconds())
        .collect();
    let server_written = servers
        .iter()
        .zip(&servers_after)
        .map(|(before, after)| after.write_bytes.saturating_sub(before.write_bytes))
        .sum();
    let bench_cpu = ProcStats::read("self")?.cpu_seconds() - bench.cpu_seconds();
    let mut latency = Vec::new();
    let (mut failed, mut first_failure) = (0, None);
    for tally in tallies {
        latency.extend(tally.latency);
        failed += tally.failed;
        first_failure = first_failure.or(tally.first_failure);
    }
    Ok(Throughput {
        client: load.client,
        clients: load.clients,
        ok: latency.len(),
        failed,
        first_failure,
        took,
        latency: Samples::new(latency),
        server_cpu: cpu.iter().sum(),
        cpu,
        bench_cpu,
        server_written,
    })
}

/// Runs every client until `duration` has passed; the clients back, and
/// their tallies.
async fn hammer(clients: Clients, duration: Duration) -> Result<(Clients, Vec<Tally>)> {
    let until = Instant::now() + duration;
    match clients {
        Clients::Reqwest(apis) => {
            let mut tasks = Vec::with_capacity(apis.len());
            for (api, url) in &apis {
                let (api, url) = (api.clone(), url.clone());
                tasks.push(tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while Instant::now() < until {
                        let t = Instant::now();
                        let outcome = api.invoke(&url).await.map(drop);
                        tally.record(t, outcome);
                    }
                    tally
                }));
            }
            let mut tallies = Vec::with_capacity(tasks.len());
            for task in tasks {
                tallies.push(task.await.context("a client task stopped")?);
            }
            Ok((Clients::Reqwest(apis), tallies))
        }
        Clients::Raw(conns) => {
            let (conns, tallies) = tokio::task::spawn_blocking(move || raw_hammer(conns, until))
                .await
                .context("the raw clients stopped")??;
            Ok((Clients::Raw(conns), tallies))
        }
    }
}

/// [`hammer`] with raw connections, a thread each.
fn raw_hammer(
    conns: Vec<Option<RawConn>>,
    until: Instant,
) -> Result<(Vec<Option<RawConn>>, Vec<Tally>)> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = conns
            .into_iter()
            .map(|conn| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    let Some(mut conn) = conn else {
                        return (None, tally);
                    };
                    let mut body = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        let outcome = match conn.send(&mut body) {
                            Ok(200) => Ok(()),
                            Ok(status) => Err(anyhow::anyhow!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body)
                            )),
                            Err(e) => {
                                // The connection is unusable after an I/O error.
                                tally.record(t, Err(e));
                                return (None, tally);
                            }
                        };
                        tally.record(t, outcome);
                    }
                    (Some(conn), tally)
                })
            })
            .collect();
        let mut conns = Vec::with_capacity(threads.len());
        let mut tallies = Vec::with_capacity(threads.len());
        for thread in threads {
            match thread.join() {
                Ok((conn, tally)) => {
                    conns.push(conn);
                    tallies.push(tally);
                }
                Err(_) => bail!("a raw client thread panicked"),
            }
        }
        Ok((conns, tallies))
    })
}
