//! Tests of `pool::prewarm`.
use super::*;

const MIN: Duration = Duration::from_secs(60);

fn reactive(min: u32, max: u32, threshold: u32, increment: u32) -> ReactiveSpec {
    ReactiveSpec {
        min_count: min,
        max_count: max,
        ttl: 2 * MIN,
        threshold,
        increment,
    }
}

/// js/256: initialCount 2, reactive {min 1, max 4, ttl 2 min, threshold 2, increment 3}.
fn js() -> StemCellSpec {
    spec("js", 256, 2, Some(reactive(1, 4, 2, 3)))
}

/// python/128: initialCount 1, not reactive.
fn py() -> StemCellSpec {
    spec("python", 128, 1, None)
}

fn spec(kind: &str, memory_mb: u64, initial_count: u32, r: Option<ReactiveSpec>) -> StemCellSpec {
    let kind = kind.to_owned();
    StemCellSpec {
        kind,
        memory_mb,
        initial_count,
        reactive: r,
    }
}

fn cell(
    id: u32,
    kind: &str,
    mem: u64,
    expires: Option<Instant>,
    ready: bool,
) -> StemCellView<'_, u32> {
    StemCellView {
        id,
        kind,
        memory_mb: mem,
        expires,
        ready,
    }
}

fn create(spec: &StemCellSpec, count: u32) -> CreatePrewarm {
    CreatePrewarm {
        kind: spec.kind.clone(),
        memory_mb: spec.memory_mb,
        ttl: spec.ttl(),
        count,
    }
}

fn planner() -> PrewarmPlanner {
    PrewarmPlanner::new(
        vec![js(), py()],
        DEFAULT_MAX_RETRY_LIMIT,
        DEFAULT_EXPIRATION_LIMIT,
    )
}

#[test]
fn reactive_desired_follows_get_reactive_cold() {
    let r = reactive(1, 4, 2, 3);
    // 5 cold starts: min(max(1, (5 / 2) * 3), 4) = min(6, 4) = 4.
    assert_eq!(reactive_desired(&r, Some(5)), 4);
    // 3: (3 / 2) * 3 = 3. 1: (1 / 2) * 3 = 0 → minCount 1.
    assert_eq!(reactive_desired(&r, Some(3)), 3);
    assert_eq!(reactive_desired(&r, Some(1)), 1);
    // None counted this cycle: minCount.
    assert_eq!(reactive_desired(&r, None), 1);
    assert_eq!(reactive_desired(&reactive(0, 4, 2, 3), None), 0);
    // A zero threshold divides by 1, never panics; huge counts saturate.
    assert_eq!(reactive_desired(&reactive(0, 9, 0, 2), Some(3)), 6);
    assert_eq!(reactive_desired(&reactive(0, 9, 1, 3), Some(u32::MAX)), 9);
}

#[test]
fn startup_deficit_counts_ready_expired_and_starting() {
    let t = Instant::now();
    let spec = js();
    assert_eq!(startup_deficit::<u32>(&spec, &[]), 2);
    // One ready but long expired, one of another memory, one of another kind.
    let view = [
        cell(1, "js", 256, Some(t), true),
        cell(2, "js", 512, None, true),
        cell(3, "python", 256, None, true),
    ];
    assert_eq!(startup_deficit(&spec, &view), 1);
    let view = [
        cell(1, "js", 256, Some(t), true),
        cell(2, "js", 256, None, false),
    ];
    assert_eq!(startup_deficit(&spec, &view), 0);
    let view = [
        cell(1, "js", 256, None, true),
        cell(2, "js", 256, None, true),
        cell(3, "js", 256, None, false),
    ];
    assert_eq!(startup_deficit(&spec, &view), 0);
}

#[test]
fn backfill_wants_min_count_else_initial_count() {
    assert_eq!(backfill_desired(&js()), 1);
    assert_eq!(backfill_desired(&py()), 1);
    assert_eq!(
        backfill_deficit::<u32>(&spec("python", 128, 3, None), &[]),
        3
    );
    assert_eq!(
        backfill_deficit(&js(), &[cell(1, "js", 256, None, false)]),
        0
    );
    assert_eq!(backfill_deficit::<u32>(&js(), &[]), 1);
}

#[test]
fn cold_starts_are_counted_only_for_configured_pairs() {
    let specs = [js(), py()];
    let mut c = ColdStartCounter::default();
    assert!(c.record(&specs, "js", 256));
    assert!(c.record(&specs, "js", 256));
    assert!(!c.record(&specs, "js", 512));
    assert!(!c.record(&specs, "wasm", 256));
    assert!(c.record(&specs, "python", 128));
    assert_eq!(c.get("js", 256), Some(2));
    assert_eq!(c.get("python", 128), Some(1));
    assert_eq!((c.get("js", 512), c.get("wasm", 256)), (None, None));
    c.clear();
    assert_eq!(c.get("js", 256), None);
}

#[test]
fn expired_are_oldest_first_capped_and_only_ready_reactive() {
    let t = Instant::now();
    let at = |s: u64| Some(t + Duration::from_secs(s));
    let specs = [js(), py(), spec("js", 512, 1, Some(reactive(1, 4, 2, 3)))];
    let view = [
        cell(1, "js", 256, at(30), true),
        cell(2, "js", 512, at(10), true),
        cell(3, "js", 256, at(20), true),
        cell(4, "js", 256, at(5), false), // starting: never removed
        cell(5, "python", 128, at(1), true), // not reactive
        cell(6, "js", 256, at(100), true), // expires after `now`
        cell(7, "js", 256, at(50), true), // expires exactly at `now`
        cell(8, "js", 256, None, true),   // no expiry
    ];
    let now = t + Duration::from_secs(50);
    let ids = |limit| -> Vec<u32> {
        let expired = select_expired(&specs, &view, now, limit);
        expired.iter().map(|c| c.id).collect()
    };
    assert_eq!(
        (ids(100), ids(2), ids(0)),
        (vec![2, 3, 1, 7], vec![2, 3], vec![])
    );
}

#[test]
fn retry_guard_trips_after_the_limit_and_resets() {
    let mut p = planner();
    // Five failures are tolerated: each backfills.
    for _ in 0..DEFAULT_MAX_RETRY_LIMIT {
        let plan = p.on_create_failed::<u32>(&[]);
        assert_eq!(plan.create, vec![create(&js(), 1), create(&py(), 1)]);
    }
    // The sixth makes failed > limit: creations are held back.
    let plan = p.on_create_failed::<u32>(&[]);
    assert!(plan.create.is_empty() && !p.creation_allowed());
    assert_eq!(plan.suppressed, 2);
    assert_eq!(p.on_taken::<u32>("js", 256).suppressed, 1);
    // A stem cell becoming ready resets the guard.
    p.on_ready();
    assert!(p.creation_allowed());
    assert_eq!(p.on_removed::<u32>(&[]).create.len(), 2);
    // So does a scheduled check, before it plans.
    for _ in 0..=DEFAULT_MAX_RETRY_LIMIT {
        p.on_create_failed::<u32>(&[]);
    }
    assert!(!p.creation_allowed());
    let plan = p.on_scheduled_check::<u32>(&[], Instant::now());
    assert_eq!(plan.create, vec![create(&js(), 1), create(&py(), 1)]);
    assert_eq!(plan.suppressed, 0);
}

#[test]
fn start_and_backfill_plan_per_config() {
    let p = planner();
    let plan = p.on_start::<u32>(&[]);
    assert_eq!(plan.create, vec![create(&js(), 2), create(&py(), 1)]);
    assert!(plan.remove.is_empty());
    // One js starting already: start creates one more; backfill nothing.
    let view = [
        cell(1, "js", 256, None, false),
        cell(2, "python", 128, None, true),
    ];
    assert_eq!(p.on_start(&view).create, vec![create(&js(), 1)]);
    assert!(p.on_removed(&view).is_empty());
}

#[test]
fn taken_stem_cell_is_replaced_with_its_configs_ttl() {
    let p = planner();
    let plan = p.on_taken::<u32>("js", 256);
    assert_eq!(plan.create, vec![create(&js(), 1)]);
    assert_eq!(plan.create[0].ttl, Some(2 * MIN));
    assert!(p.on_taken::<u32>("js", 1024).is_empty());
    let t = Instant::now();
    assert_eq!(plan.create[0].expires(t), Some(t + 2 * MIN));
    assert_eq!(create(&py(), 1).expires(t), None);
}

#[test]
fn variance_is_drawn_once_and_fixes_the_period() {
    let s = ExpiryCheckSchedule::new(10 * MIN, 10 * MIN, Duration::from_secs(10), 0.5);
    assert_eq!(s.init_delay(), 10 * MIN);
    assert_eq!(s.period(), 10 * MIN + Duration::from_secs(5));
    // Out-of-range draws add nothing; a draw of 1 adds the whole variance.
    for draw in [f64::NAN, -0.2, 1.5, f64::INFINITY, 0.0] {
        assert_eq!(ExpiryCheckSchedule::new(MIN, MIN, MIN, draw).period(), MIN);
    }
    assert_eq!(
        ExpiryCheckSchedule::new(MIN, MIN, MIN, 1.0).period(),
        2 * MIN
    );
    let zero = Duration::ZERO;
    let floor = ExpiryCheckSchedule::new(zero, zero, zero, 0.3).period();
    assert_eq!(floor, Duration::from_secs(1));
}

#[test]
fn full_scheduled_cycle() {
    let t0 = Instant::now();
    let mut p = planner();
    assert!(p.needs_scheduled_check());
    assert!(!PrewarmPlanner::new(vec![py()], 5, 100).needs_scheduled_check());
    // Start: 2 js (ttl 2 min) and 1 python.
    let plan = p.on_start::<u32>(&[]);
    assert_eq!(plan.create, vec![create(&js(), 2), create(&py(), 1)]);
    let exp = plan.create[0].expires(t0);
    let view = [
        cell(1, "js", 256, exp, true),
        cell(2, "js", 256, exp, true),
        cell(3, "python", 128, None, true),
    ];
    // Cold starts this cycle: 5 of js/256, 2 of an unconfigured pair.
    for _ in 0..5 {
        assert!(p.on_cold_start("js", 256));
    }
    assert!(!p.on_cold_start("js", 512) && !p.on_cold_start("js", 512));
    assert_eq!(p.cold_starts("js", 256), Some(5));

    // First check at t0 + 10 min: both js expired and go; desired
    // min(max(1, (5/2)*3), 4) = 4 with 0 left → create 4; python is full.
    let plan = p.on_scheduled_check(&view, t0 + 10 * MIN);
    assert_eq!(plan.remove, vec![1, 2]);
    assert_eq!(plan.create, vec![create(&js(), 4)]);
    assert_eq!(p.cold_starts("js", 256), None);

    // Second check, no cold starts: desired falls to minCount 1, but the
    // four fresh stem cells are not removed before they expire.
    let fresh = Some(t0 + 12 * MIN);
    let view: Vec<_> = (10..14)
        .map(|id| cell(id, "js", 256, fresh, true))
        .chain([cell(3, "python", 128, None, true)])
        .collect();
    assert!(p.on_scheduled_check(&view, t0 + 11 * MIN).is_empty());

    // Third check, after they expired: the limit caps removal at 2 of
    // the 4; the 2 left already cover minCount 1.
    let mut capped = PrewarmPlanner::new(vec![js(), py()], 5, 2);
    let plan = capped.on_scheduled_check(&view, t0 + 13 * MIN);
    assert_eq!(plan.remove, vec![10, 11]);
    assert!(plan.create.is_empty());
    // Without a cap, all four go and one is recreated (minCount).
    let plan = p.on_scheduled_check(&view, t0 + 13 * MIN);
    assert_eq!(plan.remove, vec![10, 11, 12, 13]);
    assert_eq!(plan.create, vec![create(&js(), 1)]);
}
