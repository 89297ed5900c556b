use super::*;

fn online() -> Book {
    let mut book = Book::default();
    book.begin_resync("whisk/instance/invoker0/lease", 7);
    let batch = book.take_batch().expect("the lease key");
    assert_eq!(
        batch.ops,
        [(
            "whisk/instance/invoker0/lease".to_string(),
            Some("7".to_string())
        )]
    );
    batch.answer(&Ok(()));
    assert!(book.try_go_online(7));
    book
}

#[test]
fn starts_offline_and_goes_online_once_in_sync() {
    let mut book = Book::default();
    assert_eq!(book.phase(), Phase::Offline);
    book.begin_resync("lease", 1);
    assert!(!book.try_go_online(1), "the lease key is not written yet");
    book.take_batch().expect("batch").answer(&Ok(()));
    assert!(book.try_go_online(1));
    assert_eq!((book.phase(), book.lease()), (Phase::Online, Some(1)));
    assert_eq!(book.held().get("lease").map(String::as_str), Some("1"));
}

#[test]
fn online_writes_wait_and_are_answered() {
    let mut book = online();
    let mut put = book.record("a", Some("1")).expect("online");
    let mut del = book.record("b", None).expect("online");
    let batch = book.take_batch().expect("two writes");
    assert_eq!(
        batch.ops,
        [
            ("a".to_string(), Some("1".to_string())),
            ("b".to_string(), None)
        ]
    );
    assert!(put.try_recv().is_err(), "not answered before the write");
    batch.answer(&Ok(()));
    assert_eq!(put.try_recv(), Ok(Ok(())));
    assert_eq!(del.try_recv(), Ok(Ok(())));
    assert!(book.take_batch().is_none());
}

#[test]
fn the_latest_value_wins_and_both_callers_hear_of_it() {
    let mut book = online();
    let mut first = book.record("k", Some("old")).expect("online");
    let mut second = book.record("k", Some("new")).expect("online");
    let batch = book.take_batch().expect("one write");
    assert_eq!(batch.ops, [("k".to_string(), Some("new".to_string()))]);
    batch.answer(&Ok(()));
    assert_eq!(first.try_recv(), Ok(Ok(())));
    assert_eq!(second.try_recv(), Ok(Ok(())));
}

#[test]
fn a_write_during_a_batch_goes_in_the_next_one() {
    let mut book = online();
    drop(book.record("k", Some("1")).expect("online"));
    let in_flight = book.take_batch().expect("batch");
    let mut later = book.record("k", Some("2")).expect("online");
    in_flight.answer(&Ok(()));
    assert!(later.try_recv().is_err(), "its own write is still to come");
    let next = book.take_batch().expect("the newer value");
    assert_eq!(next.ops, [("k".to_string(), Some("2".to_string()))]);
    next.answer(&Ok(()));
    assert_eq!(later.try_recv(), Ok(Ok(())));
}

#[test]
fn a_failed_batch_is_requeued_and_its_callers_told() {
    let mut book = online();
    let mut put = book.record("k", Some("1")).expect("online");
    drop(book.record("gone", None).expect("online"));
    let batch = book.take_batch().expect("batch");
    book.requeue(batch.keys());
    let error = ClusterError("boom".into());
    batch.answer(&Err(error.clone()));
    assert_eq!(put.try_recv(), Ok(Err(error)));
    assert_eq!(book.pending(), 2, "the put and the delete are still due");
}

#[test]
fn offline_writes_fail_fast_but_are_kept() {
    let mut book = online();
    let mut waiting = book.record("w", Some("1")).expect("online");
    let waiters = book.go_offline();
    assert_eq!(waiters.len(), 1);
    for w in waiters {
        let _ = w.send(Err(ClusterError("away".into())));
    }
    assert!(matches!(waiting.try_recv(), Ok(Err(_))));
    assert_eq!((book.phase(), book.lease()), (Phase::Offline, None));

    assert!(book.record("a", Some("1")).is_err());
    assert!(book.record("a", Some("2")).is_err());
    assert!(book.record("lease", None).is_err());
    assert_eq!(book.held().get("a").map(String::as_str), Some("2"));
}

#[test]
fn resync_rewrites_every_held_key_and_deletes_what_went_away() {
    let mut book = online();
    drop(book.record("keep", Some("1")).expect("online"));
    drop(book.record("drop", Some("1")).expect("online"));
    book.take_batch().expect("batch").answer(&Ok(()));
    book.go_offline();
    let _ = book.record("drop", None);
    let _ = book.record("keep", Some("latest"));

    book.begin_resync("whisk/instance/invoker0/lease", 8);
    let batch = book.take_batch().expect("everything");
    assert_eq!(
        batch.ops,
        [
            ("drop".to_string(), None),
            ("keep".to_string(), Some("latest".to_string())),
            (
                "whisk/instance/invoker0/lease".to_string(),
                Some("8".to_string())
            ),
        ]
    );
    batch.answer(&Ok(()));
    // A write that lands while the resync runs keeps it offline one more round.
    let _ = book.record("late", Some("x"));
    assert!(!book.try_go_online(8));
    book.take_batch().expect("late").answer(&Ok(()));
    assert!(book.try_go_online(8));
    assert_eq!(book.lease(), Some(8));
}

#[test]
fn batches_are_bounded() {
    let mut book = Book::default();
    for i in 0..(MAX_BATCH_OPS + 5) {
        let _ = book.record(&format!("k{i:03}"), Some(""));
    }
    assert_eq!(book.take_batch().map(|b| b.ops.len()), Some(MAX_BATCH_OPS));
    assert_eq!(book.take_batch().map(|b| b.ops.len()), Some(5));
    assert!(book.take_batch().is_none());

    let big = "x".repeat(MAX_ENTRY_BYTES / 2);
    for i in 0..4 {
        let _ = book.record(&format!("big{i}"), Some(&big));
    }
    let first = book.take_batch().map(|b| b.ops.len());
    assert_eq!(first, Some(4), "the byte bound is checked before each key");
    let _ = book.record("too-big", Some(&"x".repeat(MAX_ENTRY_BYTES)));
    assert!(!book.held().contains_key("too-big"));
    assert!(book.record("", Some("v")).is_err());
}

#[test]
fn closed_refuses_writes() {
    let mut book = online();
    assert_eq!(book.close(), Phase::Online);
    assert!(book.record("k", Some("v")).is_err());
    assert!(!book.held().contains_key("k"));
    assert!(!book.try_go_online(9));
    book.go_offline();
    assert_eq!(book.phase(), Phase::Closed);
}
