//! The activation queues: one JetStream work queue per action that
//! sandboxes pull from.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use wasmwhisk::cluster::nats::JetStreamQueue;
use wasmwhisk::pool::queue::{ActivationQueue, QueueError};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_is_enqueued_pulled_and_done() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let queue = JetStreamQueue::open(&bus, JetStreamQueueConfig::default())
        .await
        .unwrap();
    let action = hello_key();
    let sent = activation(1);

    queue.enqueue(&action, &sent).await.unwrap();
    // Enqueued twice (a producer's retry): stored once.
    queue.enqueue(&action, &sent).await.unwrap();
    let stats = queue.stats(&action).await.unwrap();
    assert_eq!((stats.pending, stats.ack_pending), (1, 0), "{stats:?}");
    let age = queue.oldest_pending_age(&action).await.unwrap();
    assert!(age.is_some_and(|a| a < Duration::from_secs(5)), "{age:?}");

    let pulled = queue
        .pull(&action, Duration::from_secs(1))
        .await
        .unwrap()
        .expect("the activation");
    assert_eq!(pulled.message, sent);
    let stats = queue.stats(&action).await.unwrap();
    assert_eq!((stats.pending, stats.ack_pending), (0, 1), "{stats:?}");
    assert_eq!(queue.in_flight(), 1);
    assert_eq!(queue.oldest_pending_age(&action).await.unwrap(), None);

    queue.done(&action, pulled.delivery).await.unwrap();
    assert_eq!(queue.in_flight(), 0);
    let stats = queue.stats(&action).await.unwrap();
    assert_eq!((stats.pending, stats.ack_pending), (0, 0), "{stats:?}");
    assert!(matches!(
        queue.done(&action, pulled.delivery).await,
        Err(QueueError::UnknownDelivery(_))
    ));
    // A work queue: the acked message is gone from the stream too.
    let info = bus
        .client()
        .request("$JS.API.STREAM.INFO.whisk-activations", "".into())
        .await
        .unwrap();
    let info: Value = serde_json::from_slice(&info.payload).unwrap();
    assert_eq!(info["state"]["messages"], json!(0), "{info}");
    assert!(queue.pull(&action, Duration::ZERO).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_with_nothing_queued_returns_none_after_its_wait() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let queue = JetStreamQueue::open(&bus, JetStreamQueueConfig::default())
        .await
        .unwrap();
    let action = hello_key();
    queue.stats(&action).await.unwrap(); // the consumer exists

    for wait in [
        Duration::ZERO,
        Duration::from_millis(5),
        Duration::from_millis(300),
        Duration::from_millis(2500), // longer than one 1 s server request
    ] {
        let started = Instant::now();
        let pulled = queue.pull(&action, wait).await.unwrap();
        let took = started.elapsed();
        assert!(pulled.is_none());
        assert!(
            took + Duration::from_millis(15) >= wait,
            "{wait:?}: {took:?}"
        );
        assert!(
            took < wait + Duration::from_millis(750),
            "{wait:?}: {took:?}"
        );
    }

    // A pull that waits gets what arrives meanwhile, at once.
    let waiting = {
        let (queue, action) = (queue.clone(), action.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let pulled = queue.pull(&action, Duration::from_secs(3)).await;
            (pulled, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    queue.enqueue(&action, &activation(7)).await.unwrap();
    let (pulled, took) = waiting.await.unwrap();
    let pulled = pulled.unwrap().expect("the activation");
    assert_eq!(n_of(&pulled.message), 7);
    assert!(took < Duration::from_millis(2600), "{took:?}");
    queue.done(&action, pulled.delivery).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_pull_leaves_no_activation_behind() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let queue = JetStreamQueue::open(&bus, JetStreamQueueConfig::default())
        .await
        .unwrap();
    let action = hello_key();
    queue.stats(&action).await.unwrap();

    // A sandbox removed while it waits: its pull is dropped half-way, and
    // its request is still waiting at the server for most of a second.
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        queue.pull(&action, Duration::from_secs(1)),
    )
    .await;
    assert!(dropped.is_err());
    tokio::time::sleep(Duration::from_millis(50)).await;
    queue.enqueue(&action, &activation(1)).await.unwrap();
    // The next puller gets it at once, not after ack_wait (10 s).
    let pulled = queue
        .pull(&action, Duration::from_millis(500))
        .await
        .unwrap()
        .expect("the activation was not taken by the dropped pull");
    queue.done(&action, pulled.delivery).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_activation_goes_to_the_next_puller_at_once() {
    let server = NatsServer::start();
    let queue_a = JetStreamQueue::open(&connect(&server).await, JetStreamQueueConfig::default())
        .await
        .unwrap();
    let queue_b = JetStreamQueue::open(&connect(&server).await, JetStreamQueueConfig::default())
        .await
        .unwrap();
    let action = hello_key();
    let sent = activation(1);
    queue_a.enqueue(&action, &sent).await.unwrap();
    let first = queue_a
        .pull(&action, Duration::from_secs(1))
        .await
        .unwrap()
        .expect("first delivery");
    queue_a.redeliver(&action, first.delivery).await.unwrap();
    assert_eq!(queue_a.in_flight(), 0);
    let started = Instant::now();
    let second = queue_b
        .pull(&action, Duration::from_secs(2))
        .await
        .unwrap()
        .expect("redelivered");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(second.message, sent);
    let stats = queue_b.stats(&action).await.unwrap();
    assert_eq!(stats.redelivered, 1, "{stats:?}");
    queue_b.done(&action, second.delivery).await.unwrap();
    assert!(matches!(
        queue_a.redeliver(&action, first.delivery).await,
        Err(QueueError::UnknownDelivery(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pullers_get_distinct_activations() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let producer = JetStreamQueue::open(&bus, JetStreamQueueConfig::default())
        .await
        .unwrap();
    let action = hello_key();
    const N: u64 = 40;
    for n in 0..N {
        producer.enqueue(&action, &activation(n)).await.unwrap();
    }
    let mut pullers = Vec::new();
    for _ in 0..2 {
        let queue = JetStreamQueue::open(&connect(&server).await, JetStreamQueueConfig::default())
            .await
            .unwrap();
        let action = action.clone();
        pullers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(pulled) = queue
                .pull(&action, Duration::from_millis(300))
                .await
                .unwrap()
            {
                got.push(n_of(&pulled.message));
                // Slow enough that the other puller gets its share.
                tokio::time::sleep(Duration::from_millis(5)).await;
                queue.done(&action, pulled.delivery).await.unwrap();
            }
            got
        }));
    }
    let a = pullers.remove(0).await.unwrap();
    let b = pullers.remove(0).await.unwrap();
    let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
    all.sort();
    assert_eq!(all, (0..N).collect::<Vec<_>>(), "a {a:?} b {b:?}");
    assert!(!a.is_empty() && !b.is_empty(), "a {a:?} b {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_held_by_a_dead_puller_is_redelivered_after_ack_wait() {
    let server = NatsServer::start();
    let ack_wait = Duration::from_secs(1);
    let action = hello_key();
    let sent = activation(1);
    let survivor = JetStreamQueue::open(&connect(&server).await, quick_config(ack_wait))
        .await
        .unwrap();
    survivor.enqueue(&action, &sent).await.unwrap();
    {
        // An invoker pulls, then dies: no done, no nak, connection gone.
        let dying_bus = connect(&server).await;
        let dying = JetStreamQueue::open(&dying_bus, quick_config(ack_wait))
            .await
            .unwrap();
        let pulled = dying
            .pull(&action, Duration::from_secs(1))
            .await
            .unwrap()
            .expect("pulled by the dying invoker");
        assert_eq!(pulled.message, sent);
        drop(dying);
        drop(dying_bus);
    }
    let started = Instant::now();
    let again = survivor
        .pull(&action, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("redelivered after ack_wait");
    let took = started.elapsed();
    assert_eq!(again.message, sent);
    assert!(took >= ack_wait / 2 && took < ack_wait * 3, "{took:?}");
    survivor.done(&action, again.delivery).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_activation_on_a_live_invoker_is_kept_past_ack_wait() {
    let server = NatsServer::start();
    let ack_wait = Duration::from_millis(800);
    let action = hello_key();
    let holder = JetStreamQueue::open(&connect(&server).await, quick_config(ack_wait))
        .await
        .unwrap();
    let other = JetStreamQueue::open(&connect(&server).await, quick_config(ack_wait))
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let keeper = tokio::spawn(holder.keeper().run(stopped));

    holder.enqueue(&action, &activation(1)).await.unwrap();
    let pulled = holder
        .pull(&action, Duration::from_secs(1))
        .await
        .unwrap()
        .expect("pulled");
    // Runs for 4 × ack_wait: nobody else gets it meanwhile.
    let stolen = other.pull(&action, ack_wait * 4).await.unwrap();
    assert!(stolen.is_none(), "redelivered while its holder was alive");
    holder.done(&action, pulled.delivery).await.unwrap();
    let stats = other.stats(&action).await.unwrap();
    assert_eq!(
        (stats.pending, stats.ack_pending, stats.redelivered),
        (0, 0, 0)
    );
    stop.send(true).unwrap();
    keeper.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_action_names_get_their_own_queues() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let queue = JetStreamQueue::open(&bus, JetStreamQueueConfig::default())
        .await
        .unwrap();
    let long = "x".repeat(256);
    let keys = vec![
        key("guest", "guest/hello", "1-abc"),
        key("guest", "guest/Hello", "1-abc"),
        key("a.b", "a.b/pkg.v1/act.v2", "1-abc"),
        key("a_2Eb", "a_2Eb/pkg_2Ev1/act_2Ev2", "1-abc"),
        key("x@y&z", "x@y&z/my pkg/a b", "null"),
        key("*", ">/.", ""),
        key("guest", "guest/hello", "2-abc"),
        key("g", &format!("g/{long}/{long}"), "1-abc"),
        key("日本", "日本/アクション", "1-é"),
    ];
    for (n, k) in keys.iter().enumerate() {
        queue.enqueue(k, &activation(n as u64)).await.unwrap();
    }
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(queue.stats(k).await.unwrap().pending, 1, "{k:?}");
        let pulled = queue
            .pull(k, Duration::from_millis(500))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("nothing for {k:?}"));
        assert_eq!(n_of(&pulled.message), n as u64, "{k:?}");
        queue.done(k, pulled.delivery).await.unwrap();
        assert!(
            queue.pull(k, Duration::ZERO).await.unwrap().is_none(),
            "{k:?}"
        );
    }

    // Not an activation on an activation subject: terminated, counted,
    // skipped; the good one behind it comes through.
    let subject = queue.config().subjects.activation(&keys[2]);
    bus.client()
        .publish(subject, "garbage".into())
        .await
        .unwrap();
    queue.enqueue(&keys[2], &activation(99)).await.unwrap();
    let pulled = queue
        .pull(&keys[2], Duration::from_millis(500))
        .await
        .unwrap()
        .expect("the good one");
    assert_eq!(n_of(&pulled.message), 99);
    assert_eq!(queue.malformed().get(), 1);
    queue.done(&keys[2], pulled.delivery).await.unwrap();
    assert_eq!(queue.stats(&keys[2]).await.unwrap().ack_pending, 0);

    // An outdated revision's queue goes, with what waits in it.
    queue.enqueue(&keys[0], &activation(100)).await.unwrap();
    queue.enqueue(&keys[0], &activation(101)).await.unwrap();
    assert_eq!(queue.remove(&keys[0]).await.unwrap(), 2);
    assert_eq!(queue.remove(&keys[0]).await.unwrap(), 0, "already gone");
    assert_eq!(queue.stats(&keys[0]).await.unwrap().pending, 0);
    assert_eq!(queue.stats(&keys[1]).await.unwrap().pending, 0);
}

/// The producer enqueues, two invokers pull, and the server is killed
/// (SIGKILL) and started again on the same port and store in the middle:
/// every activation whose enqueue returned Ok is eventually pulled and done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_server_under_load_loses_no_activation() {
    const N: u64 = 400;
    let mut server = NatsServer::start();
    let config = quick_config(Duration::from_secs(2));
    let action = hello_key();
    let producer = JetStreamQueue::open(&connect(&server).await, config.clone())
        .await
        .unwrap();
    producer.stats(&action).await.unwrap();

    let done: Arc<Mutex<BTreeMap<u64, u32>>> = Arc::default();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let queue = JetStreamQueue::open(&connect(&server).await, config.clone())
            .await
            .unwrap();
        tasks.push(tokio::spawn(queue.keeper().run(stopped.clone())));
        let (action, done, stopped) = (action.clone(), done.clone(), stopped.clone());
        tasks.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                match queue.pull(&action, Duration::from_millis(200)).await {
                    Ok(Some(pulled)) => {
                        tokio::time::sleep(Duration::from_millis(10)).await; // "runs"
                        // A failed done is retried by the keeper, or the
                        // activation comes back after ack_wait.
                        let _ = queue.done(&action, pulled.delivery).await;
                        *done
                            .lock()
                            .unwrap()
                            .entry(n_of(&pulled.message))
                            .or_default() += 1;
                    }
                    Ok(None) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }

    let enqueued: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let producing = {
        let (producer, action, enqueued) = (producer.clone(), action.clone(), enqueued.clone());
        tokio::spawn(async move {
            for n in 0..N {
                // The producer's duty: retry until the server confirms.
                let deadline = Instant::now() + Duration::from_secs(30);
                while let Err(e) = producer.enqueue(&action, &activation(n)).await {
                    assert!(Instant::now() < deadline, "enqueue {n} kept failing: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                enqueued.lock().unwrap().insert(n);
                if n % 4 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };

    // Kill the server while activations are queued, in flight and done.
    let deadline = Instant::now() + Duration::from_secs(20);
    while enqueued.lock().unwrap().len() < (N / 2) as usize || done.lock().unwrap().len() < 20 {
        assert!(Instant::now() < deadline, "no load before the restart");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_kill = (enqueued.lock().unwrap().len(), done.lock().unwrap().len());
    assert!(
        at_kill.0 > at_kill.1 + 20,
        "a backlog is queued at the kill: {at_kill:?}"
    );
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    producing.await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let finished = done.lock().unwrap().len() as u64;
        if finished == N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {finished} of {N} done (killed at {at_kill:?} enqueued/done)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(enqueued.lock().unwrap().len() as u64, N);
    let done = done.lock().unwrap().clone();
    assert_eq!(
        done.keys().copied().collect::<Vec<_>>(),
        (0..N).collect::<Vec<_>>()
    );
    let twice = done.values().filter(|&&times| times > 1).count();
    eprintln!("killed at {at_kill:?} (enqueued, done); {twice} activations ran twice");

    // Everything is acked in the end: the stream is empty.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(stats) = producer.stats(&action).await
            && stats.pending == 0
            && stats.ack_pending == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
}
