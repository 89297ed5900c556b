//! The rows of `wasmwhisk bench cluster` that drive its processes
//! ([`super::cluster`] starts them): invoker starts, the interleaved warm
//! invokes, and the dead invoker.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::api_client::{Api, Code, check_greeting};
use super::api_rows::{self, Client};
use super::cluster::{Bench, INVOKERS, MEMORY_MB, Plan, RUST};
use super::cluster_nats::NatsCounts;
use super::cluster_report::{Kill, LatencyPair, Starts};
use super::sandbox::HELLO_RUST;
use super::stats::Samples;
use wasmwhisk_cluster::choose::home_and_step;

/// An action name whose home invoker among [`INVOKERS`] is `home`.
pub(super) fn name_homed_at(home: u32, stem: &str) -> Result<String> {
    (0..10_000)
        .map(|i| format!("{stem}{i}"))
        .find(|name| {
            home_and_step("guest", &format!("guest/{name}"), INVOKERS as usize).0 == home as usize
        })
        .with_context(|| format!("no action name {stem}… is homed at invoker{home}"))
}

/// The start → `up` row: one untimed start of invoker 0 (a new data
/// directory), then `plan.restarts` timed ones, all stopped with SIGTERM
/// but the last, which stays up.
pub(super) fn invoker_starts(
    bench: &mut Bench,
    runtime: &tokio::runtime::Runtime,
    plan: &Plan,
    cache_was_warm: bool,
) -> Result<Starts> {
    let (first, first_up) = bench.start_invoker(runtime, 0)?;
    let first_listening = first.to_listening;
    first.stop().context("stopping invoker0")?;
    let mut to_listening = Vec::with_capacity(plan.restarts);
    let mut to_up = Vec::with_capacity(plan.restarts);
    for i in 0..plan.restarts {
        let (server, up) = bench.start_invoker(runtime, 0)?;
        to_listening.push(server.to_listening);
        to_up.push(up);
        if i + 1 < plan.restarts {
            server.stop().context("stopping invoker0")?;
        } else {
            bench.invokers.insert(0, server);
        }
    }
    Ok(Starts {
        cache_was_warm,
        first_listening,
        first_up,
        to_listening: Samples::new(to_listening),
        to_up: Samples::new(to_up),
    })
}

/// The warm invoke rows, cluster and standalone interleaved in rounds; and
/// what nats-server counted over the cluster's rounds, with how many
/// invokes those were.
pub(super) fn warm_rounds(
    sequential: &tokio::runtime::Runtime,
    bench: &Bench,
    cluster: &Api,
    standalone: &Api,
    plan: &Plan,
) -> Result<(Vec<LatencyPair>, (NatsCounts, usize))> {
    let mut counted = (NatsCounts::default(), 0);
    let per_round = plan.warm_samples.div_ceil(plan.rounds);
    // [client][0: cluster, 1: standalone]
    let mut parts: [[Vec<Samples>; 2]; 2] = Default::default();
    for round in 0..plan.rounds {
        let warm_up = if round == 0 {
            plan.warm_up
        } else {
            plan.round_warm_up
        };
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let api = if side == 0 { cluster } else { standalone };
            let before = NatsCounts::read(bench.nats_monitor)?;
            let reqwest =
                sequential.block_on(api_rows::warm_latency(api, RUST, warm_up, per_round))?;
            let raw = api_rows::warm_latency_raw(api, RUST, warm_up, per_round)?;
            if side == 0 {
                counted
                    .0
                    .add(&NatsCounts::read(bench.nats_monitor)?.since(&before));
                // `warm_latency` checks the greeting with one invoke first.
                counted.1 += 1 + 2 * (warm_up + per_round);
            }
            for (client, samples) in [(0, reqwest), (1, raw)] {
                if let Some(slot) = parts.get_mut(client).and_then(|p| p.get_mut(side)) {
                    slot.push(samples);
                }
            }
        }
    }
    let [reqwest, raw] = parts;
    let pairs = [(Client::Reqwest, reqwest), (Client::Raw, raw)]
        .into_iter()
        .map(|(client, [cluster, standalone])| LatencyPair {
            client,
            cluster: Samples::merge(cluster),
            standalone: Samples::merge(standalone),
        })
        .collect();
    Ok((pairs, counted))
}

/// One sample of the dead-invoker row: deploy a fresh action homed on
/// invoker `k % 2`, invoke it (a warm sandbox on some invoker: the victim),
/// SIGKILL the victim, wait until its report key is deleted, invoke again
/// and see where it ran; then start the victim again.
pub(super) fn kill_one(
    bench: &mut Bench,
    runtime: &tokio::runtime::Runtime,
    sequential: &tokio::runtime::Runtime,
    api: &Api,
    k: usize,
    plan: &Plan,
) -> Result<Kill> {
    let home = u32::try_from(k % INVOKERS as usize).unwrap_or(0);
    let name = name_homed_at(home, &format!("failover{k}-"))?;
    sequential.block_on(async {
        api.put_action(&name, Code::Wasm(HELLO_RUST), MEMORY_MB)
            .await?;
        api.invoke_checked(&name).await
    })?;
    let holders = bench.watch.holders(runtime, &name)?;
    let victim = *holders
        .iter()
        .next()
        .with_context(|| format!("no sandbox of {name} is in etcd after its invoke"))?;
    let server = bench
        .invokers
        .remove(&victim)
        .with_context(|| format!("invoker{victim} is not running"))?;
    let killed = Instant::now();
    drop(server); // SIGKILL, and reaped
    let gone = bench.watch.wait(
        runtime,
        victim,
        None,
        killed,
        plan.lease + Duration::from_secs(30),
    )?;
    let url = api.invoke_url(&name);
    let t = Instant::now();
    let answer = sequential.block_on(api.invoke(&url));
    let invoke = t.elapsed();
    let outcome = answer.and_then(|body| check_greeting(&body));
    let ran_on = bench.watch.holders(runtime, &name)?;
    let (server, _) = bench.start_invoker(runtime, victim)?;
    bench.invokers.insert(victim, server);
    Ok(Kill {
        victim,
        home,
        to_gone: gone.saturating_duration_since(killed),
        invoke,
        failure: outcome.err().map(|e| format!("{e:#}")),
        ran_on,
    })
}
