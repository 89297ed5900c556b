//! One round of the controller's decisions, as a pure function.
//!
//! Every tick the controller looks at every queue it knows (docs/openwhisk.md
//! §5): which creations still count as coming, which were never answered,
//! how many sandboxes each queue it leads should get (within its
//! namespace's limit of concurrent invocations), and which queues went idle.
//! [`plan_round`] makes those decisions from plain numbers — ages instead of
//! clocks, counts instead of the live view — so each step is tested on its
//! own; the controller gathers the [`RoundInput`] under its lock, and carries
//! out the [`RoundPlan`] (books and sends the creations, refuses the timed-out
//! ones, forgets the idle queues).

use std::collections::HashMap;
use std::time::Duration;

use super::decide::{QueueSnapshot, sandboxes_to_add};
use super::ports::{QueueKey, QueueStats};
use wasmwhisk_protocol::CreationId;

/// A creation in progress, as the round sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct CreationView {
    /// Its id.
    pub id: CreationId,
    /// Since it was (last) sent.
    pub sent_ago: Duration,
    /// When answered with success: how long ago, and how many live
    /// sandboxes of the revision were seen then.
    pub acked: Option<(Duration, usize)>,
}

/// One queue, as the round sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueView {
    /// Its key.
    pub key: QueueKey,
    /// Live sandboxes of its revision (keys seen).
    pub existing: usize,
    /// Its creations in progress.
    pub in_progress: Vec<CreationView>,
    /// Its numbers, when this controller leads it and could read them
    /// this round; `None` otherwise.
    pub stats: Option<QueueStats>,
    /// True when this controller leads it.
    pub led: bool,
    /// Since something was last queued.
    pub last_used_ago: Duration,
    /// Average duration of its recent activations, ms.
    pub avg_duration_ms: Option<f64>,
}

/// What the round decides from.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundInput {
    /// Every queue, in the order the round takes them.
    pub queues: Vec<QueueView>,
    /// Live sandboxes per invocation namespace, all actions together.
    pub namespace_existing: HashMap<String, usize>,
    /// The limit of concurrent invocations per namespace.
    pub concurrent_invocations: i64,
    /// How long an answered creation counts as coming while no new key of
    /// its action is seen.
    pub acked_settle: Duration,
    /// How long a creation may go unanswered.
    pub creation_timeout: Duration,
    /// How long an empty queue is kept.
    pub idle_grace: Duration,
}

/// What the round decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoundPlan {
    /// Creations that no longer count as coming (their sandbox is seen, or
    /// their settle passed): forget them.
    pub settled: Vec<(QueueKey, CreationId)>,
    /// Creations never answered in time: refuse them (`TimeoutError`).
    pub timed_out: Vec<(QueueKey, CreationId)>,
    /// Sandboxes to create now, per queue.
    pub add: Vec<(QueueKey, usize)>,
    /// Queues gone idle: forget them.
    pub idle: Vec<QueueKey>,
}

/// Still coming: not answered yet, or answered so recently that its key
/// may not be seen yet, and no more keys seen than at its answer.
fn still_coming(creation: &CreationView, existing: usize, settle: Duration) -> bool {
    creation
        .acked
        .is_none_or(|(ago, seen)| existing <= seen && ago < settle)
}

/// The round's decisions.
pub fn plan_round(input: &RoundInput) -> RoundPlan {
    let mut plan = RoundPlan::default();
    // What each namespace uses: its live sandboxes and every creation
    // booked (before this round's settling, as the limit must not be
    // overrun by a creation whose sandbox is about to show).
    let mut namespace_use: HashMap<&str, i64> = HashMap::new();
    for queue in &input.queues {
        *namespace_use
            .entry(queue.key.invocation_namespace.as_str())
            .or_default() += count(queue.in_progress.len());
    }
    for (namespace, used) in namespace_use.iter_mut() {
        *used += input
            .namespace_existing
            .get(*namespace)
            .copied()
            .map(count)
            .unwrap_or(0);
    }
    for queue in &input.queues {
        let mut coming = 0usize;
        for creation in &queue.in_progress {
            if !still_coming(creation, queue.existing, input.acked_settle) {
                plan.settled.push((queue.key.clone(), creation.id.clone()));
                continue;
            }
            coming += 1;
            if creation.acked.is_none() && creation.sent_ago > input.creation_timeout {
                plan.timed_out
                    .push((queue.key.clone(), creation.id.clone()));
            }
        }
        let Some(stats) = &queue.stats else {
            // Not led here, or unreadable this round.
            if queue.last_used_ago > input.idle_grace && coming == 0 && !queue.led {
                plan.idle.push(queue.key.clone());
            }
            continue;
        };
        // Activations delivered while no sandbox of the action is alive
        // were held by one that died (a killed invoker): they come back to
        // the queue, and a sandbox must be there to take them.
        let available = if queue.existing == 0 && coming == 0 {
            stats.available + stats.in_flight
        } else {
            stats.available
        };
        let namespace = queue.key.invocation_namespace.as_str();
        let used = namespace_use.get(namespace).copied().unwrap_or(0);
        let add = sandboxes_to_add(&QueueSnapshot {
            existing: queue.existing,
            in_progress: coming,
            available,
            stale: stats.stale,
            avg_duration_ms: queue.avg_duration_ms,
            namespace_capacity: input.concurrent_invocations - used,
        });
        if add > 0 {
            plan.add.push((queue.key.clone(), add));
            if let Some(used) = namespace_use.get_mut(namespace) {
                *used += count(add);
            }
        }
        if stats.available == 0
            && stats.in_flight == 0
            && coming + add == 0
            && queue.last_used_ago > input.idle_grace
        {
            plan.idle.push(queue.key.clone());
        }
    }
    plan
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod tests;
