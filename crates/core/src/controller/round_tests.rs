use super::*;

const SECOND: Duration = Duration::from_secs(1);

fn key(namespace: &str, action: &str) -> QueueKey {
    QueueKey {
        invocation_namespace: namespace.into(),
        action: format!("{namespace}/{action}"),
        revision: "1-a".into(),
    }
}

fn id(n: u8) -> CreationId {
    match CreationId::parse(&format!("{n:032x}")) {
        Ok(id) => id,
        Err(e) => panic!("creation id {n}: {e}"),
    }
}

/// A led queue with `available` waiting activations and nothing else.
fn queue(k: QueueKey, available: usize) -> QueueView {
    QueueView {
        key: k,
        existing: 0,
        in_progress: Vec::new(),
        stats: Some(QueueStats {
            available,
            in_flight: 0,
            stale: 0,
        }),
        led: true,
        last_used_ago: Duration::ZERO,
        avg_duration_ms: None,
    }
}

fn input(queues: Vec<QueueView>) -> RoundInput {
    RoundInput {
        queues,
        namespace_existing: HashMap::new(),
        concurrent_invocations: 30,
        acked_settle: SECOND,
        creation_timeout: 10 * SECOND,
        idle_grace: 60 * SECOND,
    }
}

fn unanswered(n: u8, sent_ago: Duration) -> CreationView {
    CreationView {
        id: id(n),
        sent_ago,
        acked: None,
    }
}

#[test]
fn a_first_activation_gets_a_first_sandbox() {
    let a = key("guest", "a");
    let plan = plan_round(&input(vec![queue(a.clone(), 1)]));
    assert_eq!(plan.add, vec![(a, 1)]);
    assert!(plan.settled.is_empty() && plan.timed_out.is_empty() && plan.idle.is_empty());
}

#[test]
fn a_creation_on_its_way_is_not_doubled() {
    let a = key("guest", "a");
    let mut q = queue(a, 1);
    q.in_progress.push(unanswered(1, SECOND));
    let plan = plan_round(&input(vec![q]));
    assert!(plan.add.is_empty(), "{plan:?}");
}

#[test]
fn an_answered_creation_settles_once_its_sandbox_is_seen_or_its_settle_passed() {
    let a = key("guest", "a");
    let mut q = queue(a.clone(), 0);
    q.existing = 1;
    q.in_progress = vec![
        // answered with 0 seen, now 1 is: its sandbox is there
        CreationView {
            id: id(1),
            sent_ago: SECOND,
            acked: Some((Duration::from_millis(10), 0)),
        },
        // answered with 1 seen, still 1, within the settle: still coming
        CreationView {
            id: id(2),
            sent_ago: SECOND,
            acked: Some((Duration::from_millis(10), 1)),
        },
        // answered with 1 seen, still 1, settle passed
        CreationView {
            id: id(3),
            sent_ago: 2 * SECOND,
            acked: Some((2 * SECOND, 1)),
        },
    ];
    let plan = plan_round(&input(vec![q]));
    assert_eq!(plan.settled, vec![(a.clone(), id(1)), (a, id(3))]);
}

#[test]
fn an_unanswered_creation_times_out_and_still_counts_as_coming() {
    let a = key("guest", "a");
    let mut q = queue(a.clone(), 1);
    q.in_progress = vec![unanswered(1, 11 * SECOND), unanswered(2, 9 * SECOND)];
    let plan = plan_round(&input(vec![q]));
    assert_eq!(plan.timed_out, vec![(a, id(1))]);
    assert!(plan.add.is_empty(), "both still count: {plan:?}");
}

#[test]
fn the_namespace_limit_counts_live_sandboxes_creations_and_this_rounds_additions() {
    let (a, b, c) = (key("ns", "a"), key("ns", "b"), key("ns", "c"));
    let mut round = input(vec![
        queue(a.clone(), 1),
        queue(b.clone(), 1),
        queue(c.clone(), 1),
    ]);
    round.concurrent_invocations = 3;
    round.namespace_existing.insert("ns".into(), 1);
    // 1 live sandbox elsewhere in the namespace: room for 2 more, taken in
    // the round's order.
    let plan = plan_round(&round);
    assert_eq!(plan.add, vec![(a, 1), (b, 1)]);

    // A creation in progress counts too, whatever its queue.
    let (d, e) = (key("ns2", "d"), key("ns2", "e"));
    let mut busy = queue(d, 0);
    busy.in_progress.push(unanswered(9, SECOND));
    let mut round = input(vec![busy, queue(e.clone(), 1)]);
    round.concurrent_invocations = 1;
    assert!(plan_round(&round).add.is_empty());
    round.concurrent_invocations = 2;
    assert_eq!(plan_round(&round).add, vec![(e, 1)]);
}

#[test]
fn namespaces_do_not_share_a_limit() {
    let (a, b) = (key("one", "a"), key("two", "b"));
    let mut round = input(vec![queue(a.clone(), 1), queue(b.clone(), 1)]);
    round.concurrent_invocations = 1;
    assert_eq!(plan_round(&round).add, vec![(a, 1), (b, 1)]);
}

#[test]
fn activations_held_by_a_dead_sandbox_count_as_waiting() {
    let a = key("guest", "a");
    let mut q = queue(a.clone(), 0);
    q.stats = Some(QueueStats {
        available: 0,
        in_flight: 2,
        stale: 0,
    });
    // No live sandbox and nothing coming: the in-flight ones come back.
    assert_eq!(plan_round(&input(vec![q.clone()])).add, vec![(a, 1)]);
    // With a live sandbox they are that sandbox's.
    q.existing = 1;
    assert!(plan_round(&input(vec![q])).add.is_empty());
}

#[test]
fn a_led_queue_goes_idle_only_empty_and_after_the_grace() {
    let a = key("guest", "a");
    let mut q = queue(a.clone(), 0);
    q.last_used_ago = 59 * SECOND;
    assert!(plan_round(&input(vec![q.clone()])).idle.is_empty());
    q.last_used_ago = 61 * SECOND;
    assert_eq!(plan_round(&input(vec![q.clone()])).idle, vec![a]);
    // Not while a creation is coming, nor with work in flight.
    let mut coming = q.clone();
    coming.in_progress.push(unanswered(1, SECOND));
    assert!(plan_round(&input(vec![coming])).idle.is_empty());
    q.stats = Some(QueueStats {
        available: 0,
        in_flight: 1,
        stale: 0,
    });
    q.existing = 1;
    assert!(plan_round(&input(vec![q])).idle.is_empty());
}

#[test]
fn a_queue_another_controller_leads_is_forgotten_after_the_grace_one_led_here_is_not() {
    let a = key("guest", "a");
    let mut q = queue(a.clone(), 0);
    q.stats = None;
    q.led = false;
    q.last_used_ago = 61 * SECOND;
    assert_eq!(plan_round(&input(vec![q.clone()])).idle, vec![a]);
    // Led here but unreadable this round: kept.
    q.led = true;
    assert!(plan_round(&input(vec![q])).idle.is_empty());
}

#[test]
fn a_queue_that_gets_a_sandbox_this_round_is_not_idle() {
    let a = key("guest", "a");
    let mut q = queue(a.clone(), 0);
    q.stats = Some(QueueStats {
        available: 0,
        in_flight: 1,
        stale: 0,
    });
    q.last_used_ago = 61 * SECOND;
    let plan = plan_round(&input(vec![q]));
    assert_eq!(plan.add, vec![(a, 1)]);
    assert!(plan.idle.is_empty());
}
