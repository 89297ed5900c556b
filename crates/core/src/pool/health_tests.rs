//! Tests of `pool::health`.
use super::*;
use HealthAction::{Publish, StartHealthTest, StopHealthTest};
use HealthState::{Healthy, Offline, Unhealthy};

fn fsm() -> InvokerHealth {
    InvokerHealth::new(1024, vec!["edge".into()], vec![])
}

fn report(status: HealthState, free: u64, busy: u64, in_progress: u64) -> HealthReport {
    HealthReport {
        status,
        free_memory_mb: free,
        busy_memory_mb: busy,
        in_progress_memory_mb: in_progress,
        tags: vec!["edge".into()],
        dedicated_namespaces: vec![],
    }
}

/// A publish of `status` with the initial memory numbers.
fn publish(status: HealthState) -> HealthAction {
    Publish(report(status, 1024, 0, 0))
}

#[test]
fn starts_offline_with_openwhisks_status_strings() {
    assert_eq!(
        [Offline, Unhealthy].map(HealthState::as_str),
        ["down", "unhealthy"]
    );
    assert_eq!(Healthy.to_string(), "up");
    let h = fsm();
    assert_eq!((h.state(), h.failures()), (Offline, 0));
    assert_eq!(h.report(), report(Offline, 1024, 0, 0));
}

#[test]
fn enable_starts_the_test_and_publishes_unhealthy() {
    let mut h = fsm();
    assert_eq!(h.enable(), vec![StartHealthTest, publish(Unhealthy)]);
    assert_eq!(h.state(), Unhealthy);
    // Enabling again is a no-op, in Unhealthy and in Healthy.
    assert!(h.enable().is_empty());
    h.outcome(true);
    assert!(h.enable().is_empty());
    assert_eq!(h.state(), Healthy);
}

#[test]
fn one_good_outcome_after_enable_makes_healthy_and_stops_the_test() {
    let mut h = fsm();
    h.enable();
    assert_eq!(h.outcome(true), vec![StopHealthTest, publish(Healthy)]);
    // More good outcomes change nothing and publish nothing.
    assert!(h.outcome(true).is_empty());
    assert_eq!(h.state(), Healthy);
}

#[test]
fn exactly_three_failures_make_unhealthy_two_do_not() {
    let mut h = fsm();
    h.enable();
    h.outcome(true);
    assert!(h.outcome(false).is_empty());
    assert!(h.outcome(false).is_empty());
    assert_eq!((h.state(), h.failures()), (Healthy, 2));
    assert_eq!(h.outcome(false), vec![StartHealthTest, publish(Unhealthy)]);
    assert_eq!((h.state(), h.failures()), (Unhealthy, 3));
    // Further failures neither restart the test nor republish.
    assert!(h.outcome(false).is_empty());
}

#[test]
fn recovers_once_failures_roll_out_of_the_buffer() {
    let mut h = fsm();
    h.enable();
    for _ in 0..3 {
        h.outcome(false);
    }
    // Buffer: F F F. Seven successes fill it to 10 with 3 failures.
    for _ in 0..7 {
        assert!(h.outcome(true).is_empty());
        assert_eq!(h.state(), Unhealthy);
    }
    assert_eq!(h.failures(), 3);
    // The 8th success pushes the oldest failure out: 2 < 3 → Healthy.
    assert_eq!(h.outcome(true), vec![StopHealthTest, publish(Healthy)]);
    assert_eq!(h.failures(), 2);
}

#[test]
fn buffer_keeps_only_the_last_ten_outcomes() {
    let mut h = fsm();
    h.enable();
    for _ in 0..25 {
        h.outcome(false);
    }
    assert_eq!(h.failures(), BUFFER_SIZE);
    for _ in 0..BUFFER_SIZE {
        h.outcome(true);
    }
    assert_eq!(h.failures(), 0);
}

#[test]
fn outcomes_are_ignored_while_offline() {
    let mut h = fsm();
    for ok in [false, false, false, true] {
        assert!(h.outcome(ok).is_empty());
    }
    assert_eq!((h.state(), h.failures()), (Offline, 0));
}

#[test]
fn disable_stops_a_running_test_and_publishes_down_once() {
    let mut h = fsm();
    // Never published: a disable still leaves `down` behind.
    assert_eq!(h.disable(), vec![publish(Offline)]);
    h.enable();
    assert_eq!(h.disable(), vec![StopHealthTest, publish(Offline)]);
    h.enable();
    h.outcome(true);
    // From Healthy no test runs.
    assert_eq!(h.disable(), vec![publish(Offline)]);
    assert!(h.disable().is_empty());
    assert_eq!(h.state(), Offline);
}

#[test]
fn buffer_survives_disable_and_enable() {
    let mut h = fsm();
    h.enable();
    for _ in 0..3 {
        h.outcome(false);
    }
    h.disable();
    h.enable();
    // The old failures still count: one success is not enough.
    assert!(h.outcome(true).is_empty());
    assert_eq!((h.state(), h.failures()), (Unhealthy, 3));
}

#[test]
fn test_sandbox_removed_restarts_the_test_only_while_unhealthy() {
    let mut h = fsm();
    assert!(h.test_sandbox_removed().is_empty());
    h.enable();
    assert_eq!(h.test_sandbox_removed(), vec![StartHealthTest]);
    h.outcome(true);
    assert!(h.test_sandbox_removed().is_empty());
}

#[test]
fn memory_updates_publish_once_per_change() {
    let mut h = fsm();
    // Offline: the first memory report publishes `down` with the numbers.
    assert_eq!(h.memory(1024, 0, 0), vec![publish(Offline)]);
    assert!(h.memory(1024, 0, 0).is_empty());
    h.enable();
    h.outcome(true);
    let changed = Publish(report(Healthy, 768, 128, 128));
    assert_eq!(h.memory(768, 128, 128), vec![changed]);
    assert!(h.memory(768, 128, 128).is_empty());
    assert!(h.memory(768, 128, 128).is_empty());
    let back = Publish(report(Healthy, 896, 128, 0));
    assert_eq!(h.memory(896, 128, 0), vec![back]);
}

#[test]
fn transitions_carry_the_latest_memory() {
    let mut h = fsm();
    h.memory(512, 256, 256);
    let expected = Publish(report(Unhealthy, 512, 256, 256));
    assert_eq!(h.enable(), vec![StartHealthTest, expected]);
}

#[test]
fn resync_republishes_the_unchanged_report() {
    let mut h = fsm();
    h.enable();
    assert_eq!(h.resync(), vec![publish(Unhealthy)]);
    assert!(h.memory(1024, 0, 0).is_empty());
}

#[test]
fn report_carries_tags_and_dedicated_namespaces() {
    let mut h = InvokerHealth::new(2048, vec!["gpu".into()], vec!["team-a".into()]);
    let expected = HealthReport {
        status: Unhealthy,
        free_memory_mb: 2048,
        busy_memory_mb: 0,
        in_progress_memory_mb: 0,
        tags: vec!["gpu".into()],
        dedicated_namespaces: vec!["team-a".into()],
    };
    assert_eq!(h.enable(), vec![StartHealthTest, Publish(expected)]);
}

#[test]
fn health_test_action_is_openwhisks_echo() {
    let a = health_test_action(3);
    assert_eq!(
        (a.namespace, a.name.as_str()),
        ("whisk.system", "invokerHealthTestAction3")
    );
    assert_eq!((a.kind, a.main), ("js", "main"));
    assert_eq!(a.code, "function main(params) { return params; }");
    assert_eq!((a.memory_mb, a.logs_mb), (128, 0));
}
