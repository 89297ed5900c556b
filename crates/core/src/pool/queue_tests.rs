//! The in-process queue's contract, with Tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::pool::queue_bytes::ByteLimits;

fn key(action: &str) -> WarmKey {
    WarmKey {
        invocation_namespace: "guest".into(),
        action: format!("guest/{action}"),
        revision: "1-a".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_pull_waits_its_time_then_answers_none() {
    let queue: LocalQueue<u32> = LocalQueue::new();
    let started = tokio::time::Instant::now();
    let pulled = queue
        .pull(&key("a"), Duration::from_secs(1))
        .await
        .expect("pull");
    assert_eq!(pulled, None);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_push_wakes_a_waiting_puller_in_fifo_order() {
    let queue: Arc<LocalQueue<u32>> = Arc::new(LocalQueue::new());
    let waiter = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.pull(&key("a"), Duration::from_secs(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = queue.push(&key("a"), 1);
    queue.push(&key("a"), 2);
    let pulled = waiter
        .await
        .expect("join")
        .expect("pull")
        .expect("a message");
    assert_eq!(
        pulled,
        Pulled {
            message: 1,
            delivery: first
        }
    );
    let second = queue.pull(&key("a"), Duration::ZERO).await.expect("pull");
    assert_eq!(second.map(|p| p.message), Some(2));
    assert_eq!(queue.depth(&key("a")), (0, 2));
}

#[tokio::test(start_paused = true)]
async fn actions_are_isolated() {
    let queue: LocalQueue<u32> = LocalQueue::new();
    queue.push(&key("a"), 1);
    assert_eq!(
        queue
            .pull(&key("b"), Duration::from_millis(10))
            .await
            .expect("pull"),
        None
    );
    let mut other_rev = key("a");
    other_rev.revision = "2-b".into();
    assert_eq!(
        queue.pull(&other_rev, Duration::ZERO).await.expect("pull"),
        None
    );
    assert!(
        queue
            .pull(&key("a"), Duration::ZERO)
            .await
            .expect("pull")
            .is_some()
    );
}

#[tokio::test(start_paused = true)]
async fn done_finishes_and_redeliver_puts_it_first_again() {
    let queue: LocalQueue<u32> = LocalQueue::new();
    queue.push(&key("a"), 1);
    queue.push(&key("a"), 2);
    let one = queue
        .pull(&key("a"), Duration::ZERO)
        .await
        .expect("pull")
        .expect("one");
    queue
        .redeliver(&key("a"), one.delivery)
        .await
        .expect("redeliver");
    let again = queue
        .pull(&key("a"), Duration::ZERO)
        .await
        .expect("pull")
        .expect("again");
    assert_eq!(again, one, "the same delivery, before message 2");
    queue.done(&key("a"), again.delivery).await.expect("done");
    assert!(matches!(
        queue.done(&key("a"), again.delivery).await,
        Err(QueueError::UnknownDelivery(_))
    ));
    assert_eq!(queue.depth(&key("a")), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn many_pullers_each_get_a_different_message_and_none_is_lost() {
    let queue: Arc<LocalQueue<u32>> = Arc::new(LocalQueue::new());
    let pullers: Vec<_> = (0..8)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(p) = queue
                    .pull(&key("a"), Duration::from_secs(1))
                    .await
                    .expect("pull")
                {
                    queue.done(&key("a"), p.delivery).await.expect("done");
                    got.push(p.message);
                }
                got
            })
        })
        .collect();
    for i in 0..100 {
        queue.push(&key("a"), i);
        if i % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut all = Vec::new();
    for puller in pullers {
        all.extend(puller.await.expect("join"));
    }
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(queue.depth(&key("a")), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn stats_count_waiting_in_flight_and_stale() {
    let queue: LocalQueue<u32> = LocalQueue::new();
    assert_eq!(queue.stats(&key("a"), |_| true), (0, 0, 0));
    for n in 1..=5 {
        queue.push(&key("a"), n);
    }
    let pulled = queue
        .pull(&key("a"), Duration::from_secs(1))
        .await
        .expect("pull");
    assert_eq!(pulled.map(|p| p.message), Some(1));
    assert_eq!(queue.stats(&key("a"), |n| *n >= 4), (4, 1, 2));
    assert_eq!(queue.waiting(&key("a")), 4);
    assert_eq!(queue.waiting(&key("b")), 0);
}

#[tokio::test(start_paused = true)]
async fn remove_pending_takes_only_matching_waiting_messages() {
    let queue: LocalQueue<u32> = LocalQueue::new();
    for n in 1..=4 {
        queue.push(&key("a"), n);
    }
    let pulled = queue
        .pull(&key("a"), Duration::from_secs(1))
        .await
        .expect("pull")
        .expect("one");
    // 1 is in flight: not removable; 2 and 4 are even.
    assert_eq!(
        queue.remove_pending(&key("a"), |n| n % 2 == 0 || *n == 1),
        vec![2, 4]
    );
    assert_eq!(queue.stats(&key("a"), |_| false), (1, 1, 0));
    queue.done(&key("a"), pulled.delivery).await.expect("done");
}

#[tokio::test(start_paused = true)]
async fn an_empty_queue_is_forgotten_but_not_under_a_waiting_puller() {
    let queue: Arc<LocalQueue<u32>> = Arc::new(LocalQueue::new());
    let waiter = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.pull(&key("a"), Duration::from_secs(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    queue.forget_if_empty(&key("a"));
    // The puller still waits on the same lane, so this push reaches it.
    queue.push(&key("a"), 7);
    let pulled = waiter.await.expect("join").expect("pull").expect("one");
    assert_eq!(pulled.message, 7);
    queue.done(&key("a"), pulled.delivery).await.expect("done");
    queue.forget_if_empty(&key("a"));
    assert_eq!(lock(&queue.lanes).len(), 0);
}

#[tokio::test(start_paused = true)]
async fn queued_bytes_are_charged_until_done_or_removed() {
    let queue: LocalQueue<u32> = LocalQueue::with_byte_limits(ByteLimits {
        total: 1000,
        per_namespace: 500,
    });
    let a = key("a");
    assert_eq!(queue.admit(&a, 400), Ok(()));
    queue.push_sized(&a, 1, 400);
    assert!(queue.admit(&a, 200).is_err(), "over the namespace's bound");
    assert_eq!(queue.queued_bytes("guest"), (400, 400));

    // In flight still holds its bytes; a redelivery keeps them.
    let pulled = queue
        .pull(&a, Duration::from_secs(1))
        .await
        .expect("pull")
        .expect("a message");
    assert_eq!(queue.queued_bytes("guest"), (400, 400));
    queue
        .redeliver(&a, pulled.delivery)
        .await
        .expect("redeliver");
    assert_eq!(queue.queued_bytes("guest"), (400, 400));
    let pulled = queue
        .pull(&a, Duration::from_secs(1))
        .await
        .expect("pull")
        .expect("a message");
    queue.done(&a, pulled.delivery).await.expect("done");
    assert_eq!(queue.queued_bytes("guest"), (0, 0));

    // Removed (expired) messages give their bytes back too.
    queue.push_sized(&a, 2, 300);
    queue.push_sized(&a, 3, 100);
    let removed = queue.remove_pending(&a, |m| *m == 2);
    assert_eq!(removed, vec![2]);
    assert_eq!(queue.queued_bytes("guest"), (100, 100));
    assert_eq!(queue.admit(&a, 400), Ok(()));
}
