//! Each move of the pool and each ack decision (docs/openwhisk.md §1.1–§1.5),
//! modelled on OpenWhisk's FunctionPullingContainerPoolTests.

use std::time::{Duration, Instant};

use super::*;

fn action(name: &str, kind: &str, memory_mb: u64) -> PoolAction {
    PoolAction {
        key: WarmKey {
            invocation_namespace: "guest".into(),
            action: format!("guest/{name}"),
            revision: "1-a".into(),
        },
        kind: kind.into(),
        memory_mb,
        executable: true,
    }
}

fn pool(user_mb: u64) -> PoolState<&'static str> {
    PoolState::new(user_mb, false)
}

fn id_of(decision: &CreationDecision) -> SandboxId {
    match decision {
        CreationDecision::Warm { id }
        | CreationDecision::Prewarm { id, .. }
        | CreationDecision::Cold { id, .. } => *id,
        CreationDecision::Refuse(r) => panic!("refused: {r:?}"),
        CreationDecision::Reclaim { reclaim } => panic!("reclaiming {reclaim:?}"),
    }
}

/// Creates, readies and pauses a sandbox of `a`; returns its id.
fn warmed(p: &mut PoolState<&'static str>, a: &PoolAction, at: Instant) -> SandboxId {
    let id = id_of(&p.create(a, "msg"));
    p.ready(id).expect("ready");
    p.paused(id, at).expect("paused");
    id
}

#[test]
fn ready_to_work_moves_starting_to_prewarmed() {
    let mut p = pool(1024);
    let id = p.start_prewarm("js", 256);
    assert!(matches!(p.slot(id), Some(Slot::PrewarmStarting { .. })));
    p.ready_to_work(id, None).expect("move");
    assert!(matches!(p.slot(id), Some(Slot::Prewarmed { .. })));
    assert!(
        p.ready_to_work(id, None).is_err(),
        "only from prewarm-starting"
    );
    assert_eq!(
        p.memory().free_mb,
        1024,
        "stem cells are outside user-memory"
    );
}

#[test]
fn cold_start_goes_in_progress_then_busy_with_a_success_ack() {
    let mut p = pool(1024);
    let a = action("a", "wasm", 256);
    let decision = p.create(&a, "creation-1");
    assert_eq!(
        decision,
        CreationDecision::Cold {
            id: 1,
            evict: vec![]
        }
    );
    assert_eq!(
        p.memory(),
        MemoryReport {
            free_mb: 768,
            busy_mb: 0,
            in_progress_mb: 256
        }
    );
    assert_eq!(p.ready(1), Ok(Some("creation-1")));
    assert_eq!(
        p.memory(),
        MemoryReport {
            free_mb: 768,
            busy_mb: 256,
            in_progress_mb: 0
        }
    );
    assert!(p.ready(1).is_err(), "only from in progress");
}

#[test]
fn a_stem_cell_of_the_kind_is_taken_and_replaced_at_once() {
    let mut p = pool(1024);
    let stem = p.start_prewarm("js", 256);
    p.ready_to_work(stem, None).expect("ready");
    let decision = p.create(&action("a", "js", 256), "m");
    let CreationDecision::Prewarm {
        id,
        replacement,
        evict,
    } = decision
    else {
        panic!("expected prewarm, got {decision:?}");
    };
    assert_eq!(id, stem);
    assert!(evict.is_empty());
    assert!(
        matches!(p.slot(replacement), Some(Slot::PrewarmStarting { kind, memory_mb: 256 }) if kind == "js")
    );
    assert!(matches!(
        p.slot(stem),
        Some(Slot::InProgress {
            start: StartKind::Prewarmed,
            ..
        })
    ));
}

#[test]
fn kind_and_memory_mismatch_fall_back_to_cold() {
    let mut p = pool(1024);
    let stem = p.start_prewarm("js", 256);
    p.ready_to_work(stem, None).expect("ready");
    // Another kind.
    assert!(matches!(
        p.create(&action("w", "wasm", 256), "m"),
        CreationDecision::Cold { .. }
    ));
    // More memory than the stem cell has.
    assert!(matches!(
        p.create(&action("big", "js", 512), "m"),
        CreationDecision::Cold { .. }
    ));
    // Less memory: without promotion only an exact fit is taken.
    assert!(matches!(
        p.create(&action("small", "js", 128), "m"),
        CreationDecision::Cold { .. }
    ));
    assert!(matches!(p.slot(stem), Some(Slot::Prewarmed { .. })));
}

#[test]
fn promotion_takes_the_smallest_bigger_stem_cell_and_counts_its_memory() {
    let mut p: PoolState<&str> = PoolState::new(1024, true);
    for memory in [512, 256] {
        let id = p.start_prewarm("js", memory);
        p.ready_to_work(id, None).expect("ready");
    }
    let decision = p.create(&action("small", "js", 128), "m");
    let id = id_of(&decision);
    assert!(matches!(
        p.slot(id),
        Some(Slot::InProgress { memory_mb: 256, .. })
    ));
    assert_eq!(
        p.memory().in_progress_mb,
        256,
        "a promoted stem cell counts its own memory"
    );
    p.ready(id).expect("ready");
    assert_eq!(
        p.memory().busy_mb,
        128,
        "once busy it counts the action's memory"
    );
}

/// OpenWhisk's "use a prewarmed container when kind is matched and create a
/// new one to fill its place when prewarmPromotion is true": the replacement
/// has the taken stem cell's memory, and a bigger stem cell is taken only if
/// it fits in free plus evictable (warmed) memory, evicting for it.
#[test]
fn use_a_prewarmed_container_when_kind_is_matched_and_create_a_new_one_to_fill_its_place_when_prewarm_promotion_is_true()
 {
    let mut p: PoolState<&str> = PoolState::new(1024, true);
    let now = Instant::now();
    let other = warmed(&mut p, &action("other", "wasm", 512), now);
    busy(&mut p, &action("busy", "wasm", 256), now);
    let stem = p.start_prewarm("js", 512);
    p.ready_to_work(stem, None).expect("ready");
    // free 256 + evictable 512 ≥ 512: the 512 MB stem cell is taken for a
    // 256 MB action, the warmed sandbox goes for the room.
    let decision = p.create(&action("small", "js", 256), "m");
    let CreationDecision::Prewarm {
        id,
        replacement,
        evict,
    } = decision
    else {
        panic!("expected prewarm, got {decision:?}");
    };
    assert_eq!(id, stem);
    assert_eq!(evict, vec![other]);
    assert!(
        matches!(p.slot(replacement), Some(Slot::PrewarmStarting { kind, memory_mb: 512 }) if kind == "js"),
        "the replacement has the taken stem cell's memory: {:?}",
        p.slot(replacement)
    );
    assert_eq!(p.memory().in_progress_mb, 512);
}

/// The other half: a bigger stem cell that does not fit in free plus
/// evictable memory is skipped, and the action starts cold.
#[test]
fn not_use_a_prewarmed_container_if_it_does_not_fit_free_and_evictable_memory_with_promotion() {
    let mut p: PoolState<&str> = PoolState::new(1024, true);
    busy(&mut p, &action("busy", "wasm", 768), Instant::now());
    let stem = p.start_prewarm("js", 512);
    p.ready_to_work(stem, None).expect("ready");
    let decision = p.create(&action("small", "js", 256), "m");
    assert!(
        matches!(decision, CreationDecision::Cold { ref evict, .. } if evict.is_empty()),
        "{decision:?}"
    );
    assert!(matches!(p.slot(stem), Some(Slot::Prewarmed { .. })));
    assert_eq!(p.memory().in_progress_mb, 256);
}

#[test]
fn warm_reuse_needs_the_same_namespace_action_and_revision() {
    let mut p = pool(1024);
    let a = action("a", "wasm", 256);
    let t = Instant::now();
    let id = warmed(&mut p, &a, t);
    assert_eq!(
        p.memory().free_mb,
        1024,
        "warmed counts as free in the report"
    );
    let mut other_rev = a.clone();
    other_rev.key.revision = "2-b".into();
    assert!(matches!(
        p.create(&other_rev, "m"),
        CreationDecision::Cold { .. }
    ));
    let mut other_ns = a.clone();
    other_ns.key.invocation_namespace = "other".into();
    assert!(matches!(
        p.create(&other_ns, "m"),
        CreationDecision::Cold { .. }
    ));
    assert_eq!(p.create(&a, "m"), CreationDecision::Warm { id });
    assert!(matches!(
        p.slot(id),
        Some(Slot::InProgress {
            start: StartKind::Warm,
            ..
        })
    ));
    assert_eq!(p.ready(id), Ok(Some("m")));
}

#[test]
fn eviction_takes_the_least_recently_used_warmed_first() {
    let mut p = pool(768);
    let t = Instant::now();
    let old = warmed(&mut p, &action("old", "wasm", 256), t);
    let mid = warmed(
        &mut p,
        &action("mid", "wasm", 256),
        t + Duration::from_secs(1),
    );
    let new = warmed(
        &mut p,
        &action("new", "wasm", 256),
        t + Duration::from_secs(2),
    );
    let decision = p.create(&action("x", "wasm", 512), "m");
    let CreationDecision::Cold { evict, .. } = decision else {
        panic!("{decision:?}");
    };
    assert_eq!(evict, vec![old, mid]);
    assert!(p.slot(old).is_none() && p.slot(mid).is_none());
    assert!(matches!(p.slot(new), Some(Slot::Warmed { .. })));
}

#[test]
fn not_enough_memory_is_refused_even_after_eviction() {
    let mut p = pool(512);
    let busy = id_of(&p.create(&action("a", "wasm", 256), "m"));
    p.ready(busy).expect("ready");
    warmed(&mut p, &action("b", "wasm", 128), Instant::now());
    assert_eq!(
        p.create(&action("c", "wasm", 512), "m"),
        CreationDecision::Refuse(Refusal::ResourceNotEnough)
    );
    assert_eq!(
        p.counts().warmed,
        1,
        "nothing was evicted for a refused creation"
    );
}

#[test]
fn shutting_down_and_non_executable_are_refused() {
    let mut p = pool(1024);
    let mut seq = action("seq", "sequence", 256);
    seq.executable = false;
    assert_eq!(
        p.create(&seq, "m"),
        CreationDecision::Refuse(Refusal::NonExecutable)
    );
    p.disable_batch(10);
    assert_eq!(
        p.create(&action("a", "wasm", 256), "m"),
        CreationDecision::Refuse(Refusal::ShuttingDown)
    );
    p.enable();
    assert!(matches!(
        p.create(&action("a", "wasm", 256), "m"),
        CreationDecision::Cold { .. }
    ));
}

#[test]
fn removal_reports_unacked_creations_and_failed_stem_cells() {
    let mut p = pool(1024);
    let stem = p.start_prewarm("js", 256);
    assert_eq!(
        p.removed(stem),
        Removed {
            was_starting: true,
            unacked: None
        }
    );
    let id = id_of(&p.create(&action("a", "wasm", 256), "creation"));
    assert_eq!(
        p.removed(id),
        Removed {
            was_starting: false,
            unacked: Some("creation")
        }
    );
    assert_eq!(
        p.memory(),
        MemoryReport {
            free_mb: 1024,
            busy_mb: 0,
            in_progress_mb: 0
        }
    );
}

#[test]
fn creation_failure_returns_the_message_and_leaves_the_pools() {
    let mut p = pool(1024);
    let id = id_of(&p.create(&action("a", "wasm", 256), "creation"));
    assert_eq!(p.creation_failed(id), Some("creation"));
    assert!(matches!(p.slot(id), Some(Slot::InProgress { .. })));
    assert_eq!(p.removed(id).unacked, None);
}

#[test]
fn a_failed_resume_retries_with_the_normal_choice() {
    let mut p = pool(1024);
    let a = action("a", "wasm", 256);
    let id = warmed(&mut p, &a, Instant::now());
    assert_eq!(p.create(&a, "creation"), CreationDecision::Warm { id });
    let retry = p
        .retry_after_resume_failed(id, &a, Instant::now())
        .expect("retry");
    assert!(matches!(retry, CreationDecision::Cold { .. }));
    assert!(p.slot(id).is_none());
    assert_eq!(p.memory().in_progress_mb, 256);
}

#[test]
fn deletion_takes_busy_and_warmed_up_to_the_revision() {
    let mut p = pool(2048);
    let t = Instant::now();
    let mut revs = Vec::new();
    for rev in ["1-a", "2-b", "3-c"] {
        let mut a = action("a", "wasm", 256);
        a.key.revision = rev.into();
        revs.push(warmed(&mut p, &a, t));
    }
    let mut busy = action("a", "wasm", 256);
    busy.key.revision = "2-x".into();
    let busy_id = id_of(&p.create(&busy, "m"));
    p.ready(busy_id).expect("ready");
    let other = warmed(&mut p, &action("b", "wasm", 256), t);
    let mut deleted = p.delete("guest", "guest/a", "2-z");
    deleted.sort_unstable();
    assert_eq!(deleted, vec![revs[0], revs[1], busy_id]);
    assert!(matches!(p.slot(revs[2]), Some(Slot::Warmed { .. })));
    assert!(matches!(p.slot(other), Some(Slot::Warmed { .. })));
    assert_eq!(p.counts().disabling, 3);
}

#[test]
fn disable_drains_busy_then_warmed_in_batches() {
    let mut p = pool(4096);
    let t = Instant::now();
    let warm: Vec<_> = (0..3)
        .map(|i| warmed(&mut p, &action(&format!("w{i}"), "wasm", 128), t))
        .collect();
    let busy: Vec<_> = (0..3)
        .map(|i| {
            let id = id_of(&p.create(&action(&format!("b{i}"), "wasm", 128), "m"));
            p.ready(id).expect("ready");
            id
        })
        .collect();
    let stem = p.start_prewarm("js", 256);
    let first = p.disable_batch(2);
    assert_eq!(
        first,
        busy[..2].to_vec(),
        "busy first, at most the batch size"
    );
    assert!(
        p.disable_batch(2).is_empty(),
        "the batch is still disabling"
    );
    p.removed(first[0]);
    let second = p.disable_batch(2);
    assert_eq!(second, vec![busy[2]]);
    for id in first.iter().skip(1).chain(&second) {
        p.removed(*id);
    }
    let third = p.disable_batch(2);
    assert_eq!(third, warm[..2].to_vec());
    assert!(!p.drained());
    for id in third {
        p.removed(id);
    }
    let last = p.disable_batch(2);
    p.removed(last[0]);
    assert!(p.drained());
    assert!(
        p.slot(stem).is_some(),
        "stem cells are not removed on disable"
    );
    assert_eq!(
        p.memory(),
        MemoryReport {
            free_mb: 4096,
            busy_mb: 0,
            in_progress_mb: 0
        }
    );
}

#[test]
fn a_burst_beyond_user_memory_is_refused_and_memory_returns_to_zero() {
    let mut p = pool(10 * 256);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..1000 {
        match p.create(&action(&format!("a{i}"), "wasm", 256), "m") {
            CreationDecision::Refuse(Refusal::ResourceNotEnough) => refused += 1,
            d => accepted.push(id_of(&d)),
        }
    }
    assert_eq!(accepted.len(), 10);
    assert_eq!(refused, 990);
    assert_eq!(p.memory().free_mb, 0);
    for (i, id) in accepted.iter().enumerate() {
        p.ready(*id).expect("ready");
        if i % 2 == 0 {
            p.paused(*id, Instant::now()).expect("pause");
        }
    }
    for id in accepted {
        p.removed(id);
    }
    assert_eq!(
        p.memory(),
        MemoryReport {
            free_mb: 2560,
            busy_mb: 0,
            in_progress_mb: 0
        }
    );
    assert_eq!(p.warmed_mb(), 0);
    assert!(p.drained());
}

#[test]
fn revisions_order_by_their_number() {
    assert!(revision_number("10-a") > revision_number("9-z"));
    assert_eq!(revision_number("garbage"), 0);
    assert_eq!(revision_number(""), 0);
}

/// `name` in namespace `ns`.
fn action_in(ns: &str, name: &str, memory_mb: u64) -> PoolAction {
    PoolAction {
        key: WarmKey {
            invocation_namespace: ns.into(),
            action: format!("{ns}/{name}"),
            revision: "1-a".into(),
        },
        kind: "wasm".into(),
        memory_mb,
        executable: true,
    }
}

/// Creates and readies a sandbox of `a` (busy); returns its id.
fn busy(p: &mut PoolState<&'static str>, a: &PoolAction, at: Instant) -> SandboxId {
    let id = id_of(&p.create_at(a, "m", at));
    p.ready(id).expect("ready");
    id
}

#[test]
fn a_namespace_alone_may_use_the_whole_pool_and_is_refused_as_before() {
    let t0 = Instant::now();
    let mut p = pool(512);
    busy(&mut p, &action_in("b", "b1", 256), t0);
    busy(&mut p, &action_in("b", "b2", 256), t0);
    assert_eq!(
        p.create_at(&action_in("b", "b3", 256), "m", t0),
        CreationDecision::Refuse(Refusal::ResourceNotEnough),
        "its own busy sandboxes are never reclaimed"
    );
}

#[test]
fn an_entitled_namespace_reclaims_a_busy_sandbox_of_a_namespace_over_its_share() {
    let t0 = Instant::now();
    let mut p = pool(512);
    let b1 = busy(&mut p, &action_in("b", "b1", 256), t0);
    let b2 = busy(&mut p, &action_in("b", "b2", 256), t0);
    // a holds nothing; its share is 512 / 2 = 256; b holds 512.
    let a = action_in("a", "a", 256);
    assert_eq!(
        p.create_at(&a, "m", t0),
        CreationDecision::Reclaim {
            reclaim: vec![b1.min(b2)]
        }
    );
    let reclaimed = b1.min(b2);
    assert!(matches!(p.slot(reclaimed), Some(Slot::Disabling { .. })));
    // While it shuts down, the retry is refused without reclaiming more.
    assert_eq!(
        p.create_at(&a, "m", t0 + Duration::from_millis(100)),
        CreationDecision::Refuse(Refusal::ResourceNotEnough)
    );
    // b may not take it back while a waits: b is at its share.
    assert_eq!(
        p.create_at(
            &action_in("b", "b1", 256),
            "m",
            t0 + Duration::from_millis(150)
        ),
        CreationDecision::Refuse(Refusal::ResourceNotEnough)
    );
    // Gone: a's retry takes the room.
    p.removed(reclaimed);
    let id = id_of(&p.create_at(&a, "m", t0 + Duration::from_millis(300)));
    p.ready(id).expect("ready");
    // a got its sandbox and no longer waits; both hold their share and
    // neither reclaims from the other.
    assert_eq!(
        p.create_at(
            &action_in("b", "b1", 256),
            "m",
            t0 + Duration::from_millis(400)
        ),
        CreationDecision::Refuse(Refusal::ResourceNotEnough)
    );
    assert_eq!(
        p.create_at(
            &action_in("a", "a2", 256),
            "m",
            t0 + Duration::from_millis(500)
        ),
        CreationDecision::Refuse(Refusal::ResourceNotEnough)
    );
}

#[test]
fn a_creation_beyond_the_askers_share_neither_waits_nor_reclaims() {
    let t0 = Instant::now();
    let mut p = pool(1024);
    busy(&mut p, &action_in("b", "b1", 512), t0);
    busy(&mut p, &action_in("a", "a1", 256), t0);
    // c's share is 1024 / 3 = 341: 512 is more, so b keeps its sandbox.
    assert_eq!(
        p.create_at(&action_in("c", "c1", 512), "m", t0),
        CreationDecision::Refuse(Refusal::ResourceNotEnough)
    );
    // Nobody waits: b grows beyond its share into free memory.
    let b2 = p.create_at(&action_in("b", "b2", 256), "m", t0);
    assert!(matches!(b2, CreationDecision::Cold { .. }), "{b2:?}");
}

#[test]
fn warm_reuse_over_share_waits_while_another_namespace_waits_until_it_expires() {
    let t0 = Instant::now();
    let mut p = pool(768);
    let b = |n: &str| action_in("b", n, 256);
    let b1 = busy(&mut p, &b("b1"), t0);
    let b2 = busy(&mut p, &b("b2"), t0);
    let _b3 = busy(&mut p, &b("b3"), t0);
    // a's share is 384; b holds 768: one of b's sandboxes is reclaimed.
    assert_eq!(
        p.create_at(&action_in("a", "a", 256), "m", t0),
        CreationDecision::Reclaim { reclaim: vec![b1] }
    );
    p.removed(b1);
    p.paused(b2, t0).expect("paused");
    // b holds 512 > 384 while a waits: not even its warmed sandbox.
    assert_eq!(
        p.create_at(&b("b2"), "m", t0 + Duration::from_millis(10)),
        CreationDecision::Refuse(Refusal::ResourceNotEnough)
    );
    // a never came back: after the window b is served as usual.
    assert_eq!(
        p.create_at(
            &b("b2"),
            "m",
            t0 + share::WAITING_WINDOW + Duration::from_millis(1)
        ),
        CreationDecision::Warm { id: b2 }
    );
}
