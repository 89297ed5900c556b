//! How many sandboxes an action's queue asks for: OpenWhisk's
//! `SchedulingDecisionMaker` (docs/openwhisk.md §5.2) for a queue that is running,
//! as a pure function of one snapshot of the queue.
//!
//! A sandbox runs one activation at a time, whatever the action's
//! `concurrency` limit (docs/pool.md, "Concurrency of 1 per sandbox"), so
//! OpenWhisk's `maxConcurrent` divisor is always 1 here and is left out: a
//! divisor of `concurrency` would ask for too few sandboxes.
//!
//! Left out, because standalone mode has one invoker and no etcd throttle
//! flags: the namespace-throttling states (a queue whose namespace is at its
//! limit simply asks for nothing more; its activations wait and the oldest
//! fail after the retention) and `allow-over-provision-before-throttle`.

/// One look at an action's queue.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueSnapshot {
    /// Sandboxes pulling for the action (live `namespace/` keys).
    pub existing: usize,
    /// Creations sent and not yet answered.
    pub in_progress: usize,
    /// Activations waiting.
    pub available: usize,
    /// Of those, the ones waiting longer than the stale threshold.
    pub stale: usize,
    /// Average duration of its recent activations, ms; `None` before any.
    pub avg_duration_ms: Option<f64>,
    /// What the namespace may still add: its limit minus its live sandboxes
    /// and creations in progress (may be negative).
    pub namespace_capacity: i64,
}

/// `ceil(a / b)` for positive reals, as a count.
fn ceil_div(a: f64, b: f64) -> i64 {
    if b <= 0.0 {
        return 0;
    }
    (a / b).ceil() as i64
}

/// Sandboxes to add now (0 = skip).
pub fn sandboxes_to_add(s: &QueueSnapshot) -> usize {
    let containers = (s.existing + s.in_progress) as i64;
    let capacity = s.namespace_capacity;
    let in_progress = s.in_progress as i64;
    let available = s.available as i64;
    let stale = s.stale as i64;

    let wanted = if containers == 0 {
        // AddInitialContainer / AddContainer: the first sandbox.
        i64::from(available > 0)
    } else {
        match s.avg_duration_ms.filter(|d| *d > 0.0) {
            // One activation per sandbox: OpenWhisk's `ceil(stale / maxConcurrent)`.
            None => (stale - in_progress).min(available),
            Some(duration) => {
                let throughput = 100.0 / duration;
                let expected = throughput * containers as f64;
                let non_stale = available - stale;
                let stale_provision = ceil_div(stale as f64, throughput).min(stale) - in_progress;
                if non_stale as f64 >= expected && containers < non_stale {
                    let more = (ceil_div(non_stale as f64, throughput) - containers)
                        .min(non_stale - containers);
                    more + stale_provision.max(0)
                } else {
                    stale_provision
                }
            }
        }
    };
    usize::try_from(wanted.min(capacity)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> QueueSnapshot {
        QueueSnapshot {
            namespace_capacity: 30,
            ..QueueSnapshot::default()
        }
    }

    #[test]
    fn an_empty_queue_asks_for_nothing() {
        assert_eq!(sandboxes_to_add(&snapshot()), 0);
    }

    #[test]
    fn the_first_activation_asks_for_one_sandbox() {
        let s = QueueSnapshot {
            available: 5,
            ..snapshot()
        };
        assert_eq!(sandboxes_to_add(&s), 1);
    }

    #[test]
    fn a_creation_in_progress_covers_the_first_activations() {
        let s = QueueSnapshot {
            available: 5,
            in_progress: 1,
            ..snapshot()
        };
        assert_eq!(sandboxes_to_add(&s), 0);
    }

    #[test]
    fn without_a_duration_stale_activations_ask_one_each() {
        let s = QueueSnapshot {
            existing: 1,
            in_progress: 1,
            available: 6,
            stale: 4,
            ..snapshot()
        };
        // ceil(4/1) - 1 in progress.
        assert_eq!(sandboxes_to_add(&s), 3);
    }

    #[test]
    fn with_a_duration_the_backlog_is_sized_by_throughput() {
        // 50 ms per activation: a sandbox does 2 per 100 ms.
        let s = QueueSnapshot {
            existing: 1,
            available: 10,
            avg_duration_ms: Some(50.0),
            ..snapshot()
        };
        // ceil(10/2) - 1 = 4.
        assert_eq!(sandboxes_to_add(&s), 4);
    }

    #[test]
    fn fast_actions_need_no_more_sandboxes() {
        // 0.5 ms each: one sandbox does 200 per 100 ms.
        let s = QueueSnapshot {
            existing: 1,
            available: 50,
            avg_duration_ms: Some(0.5),
            ..snapshot()
        };
        assert_eq!(sandboxes_to_add(&s), 0);
    }

    #[test]
    fn stale_activations_of_a_slow_action_ask_for_more() {
        let s = QueueSnapshot {
            existing: 2,
            available: 3,
            stale: 3,
            avg_duration_ms: Some(1000.0),
            ..snapshot()
        };
        // throughput 0.1: min(ceil(3/0.1), 3) - 0 = 3.
        assert_eq!(sandboxes_to_add(&s), 3);
    }

    #[test]
    fn the_namespace_limit_caps_the_answer() {
        let s = QueueSnapshot {
            existing: 1,
            available: 100,
            stale: 100,
            namespace_capacity: 2,
            ..snapshot()
        };
        assert_eq!(sandboxes_to_add(&s), 2);
        let full = QueueSnapshot {
            namespace_capacity: 0,
            existing: 0,
            ..s
        };
        assert_eq!(sandboxes_to_add(&full), 0);
    }

    /// OpenWhisk's "add containers when action concurrency >1 when no average
    /// duration and there are stale activations", as wasmwhisk differs: its
    /// sandboxes take one activation at a time whatever the action's
    /// `concurrency`, so ten stale activations ask for ten sandboxes less the
    /// creations under way (the snapshot has no concurrency to divide by).
    #[test]
    fn add_containers_when_action_concurrency_over_1_when_no_average_duration_and_there_are_stale_activations()
     {
        let s = QueueSnapshot {
            existing: 1,
            in_progress: 2,
            available: 10,
            stale: 10,
            ..snapshot()
        };
        assert_eq!(sandboxes_to_add(&s), 8);
    }
}
