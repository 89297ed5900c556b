//! The NATS side of cluster mode against a real nats-server (JetStream on):
//! OpenWhisk's messages on core subjects, and the per-action JetStream work
//! queues sandboxes pull from — including a server killed and restarted under
//! load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use wasmwhisk::cluster::nats::{
    BusOptions, JetStreamQueueConfig, NatsBus, NatsError, NatsMessenger,
};
use wasmwhisk::pool::ports::Messenger;
use wasmwhisk::pool::slot::WarmKey;
use wasmwhisk::protocol::{
    AcknowledgementMessage, ActionLimits, ActivationMessage, ContainerCreationAckMessage,
    ContainerMessage, ControllerInstanceId, DocRevision, EntityName, EntityPath, Identity,
    SchedulerInstanceId, WhiskActionMetaData,
};
use wasmwhisk_testkit::free_port;
use wasmwhisk_testkit::nats::NatsServer;

// ---------------------------------------------------------------- fixtures

#[path = "cluster_nats/wire.rs"]
mod wire;

async fn connect(server: &NatsServer) -> NatsBus {
    NatsBus::connect_with(BusOptions {
        url: server.url(),
        ..BusOptions::default()
    })
    .await
    .expect("connecting to nats-server")
}

/// A short `ack_wait` so redelivery tests take a second, not ten.
fn quick_config(ack_wait: Duration) -> JetStreamQueueConfig {
    JetStreamQueueConfig {
        ack_wait,
        ..JetStreamQueueConfig::default()
    }
}

fn key(ns: &str, action: &str, rev: &str) -> WarmKey {
    WarmKey {
        invocation_namespace: ns.into(),
        action: action.into(),
        revision: rev.into(),
    }
}

fn hello_key() -> WarmKey {
    key("guest", "guest/hello", "1-abc")
}

/// An activation of `guest/hello` with parameter `n`.
fn activation(n: u64) -> ActivationMessage {
    let meta = WhiskActionMetaData::code_action(
        EntityPath::namespace(EntityName::new("guest").unwrap()),
        EntityName::new("hello").unwrap(),
        "nodejs:20",
        false,
        ActionLimits::default(),
    );
    ActivationMessage::for_action(
        &meta,
        DocRevision::new("1-abc"),
        Identity::basic("guest", "uuid-1", "key-1"),
        ControllerInstanceId::first(),
        Some(json!({ "n": n })),
        true,
    )
}

fn n_of(message: &ActivationMessage) -> u64 {
    message
        .content
        .as_ref()
        .and_then(|c| c["n"].as_u64())
        .expect("n")
}

async fn raw_json(subscriber: &mut async_nats::Subscriber) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(5), subscriber.next())
        .await
        .expect("a message within 5 s")
        .expect("subscription open");
    serde_json::from_slice(&message.payload).expect("JSON on the wire")
}

async fn within<T>(what: &str, future: impl Future<Output = Option<T>>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 5 s"))
        .unwrap_or_else(|| panic!("{what}: subscription closed"))
}

// ------------------------------------------------------------ connection

#[tokio::test]
async fn connecting_where_no_server_answers_is_a_clear_error() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let error = NatsBus::connect_with(BusOptions {
        url: url.clone(),
        ..BusOptions::default()
    })
    .await
    .expect_err("no server");
    assert!(
        matches!(&error, NatsError::Connect { url: u, .. } if *u == url),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("no NATS server answers at {url}: ")),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

// --------------------------------------------------- core NATS messages

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_messages_acks_and_completions_carry_openwhisk_json() {
    let server = NatsServer::start();
    let scheduler_bus = connect(&server).await;
    let invoker_bus = connect(&server).await;
    let scheduler = SchedulerInstanceId::new("0").unwrap();
    let controller = ControllerInstanceId::new("0").unwrap();
    let messenger = NatsMessenger::new(invoker_bus.clone());
    let client = scheduler_bus.client().clone();

    // Scheduler → invoker 3: a creation and a deletion, OpenWhisk's bytes.
    let mut invoker_side = invoker_bus.container_messages(3).await.unwrap();
    assert_eq!(invoker_side.subject(), "whisk.invoker3");
    for message in [wire::creation(), wire::deletion()] {
        client
            .publish("whisk.invoker3", message.to_string().into())
            .await
            .unwrap();
    }
    let creation = match within("creation", invoker_side.next()).await {
        ContainerMessage::Creation(c) => c,
        other => panic!("expected a creation, got {other:?}"),
    };
    assert_eq!(
        creation.creation_id.as_str(),
        "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb"
    );
    assert_eq!(serde_json::to_value(&*creation).unwrap(), wire::creation());
    let deletion = within("deletion", invoker_side.next()).await;
    assert!(
        matches!(deletion, ContainerMessage::Deletion(_)),
        "{deletion:?}"
    );
    assert_eq!(serde_json::to_value(&deletion).unwrap(), wire::deletion());

    // And the scheduler's own sender writes the same bytes.
    let mut raw = client.subscribe("whisk.invoker3").await.unwrap();
    scheduler_bus.flush().await.unwrap();
    let sent: ContainerMessage = serde_json::from_value(wire::creation()).unwrap();
    NatsMessenger::new(scheduler_bus.clone())
        .send_container_message(3, &sent)
        .await
        .unwrap();
    assert_eq!(raw_json(&mut raw).await, wire::creation());
    assert_eq!(within("creation again", invoker_side.next()).await, sent);

    // Invoker → scheduler 0: an ack with an error, and a success.
    let mut acks = scheduler_bus.creation_acks(&scheduler).await.unwrap();
    let mut raw = client.subscribe("whisk.creationAck0").await.unwrap();
    scheduler_bus.flush().await.unwrap();
    for json in [wire::ack(Some("ResourceNotEnoughError")), wire::ack(None)] {
        let ack: ContainerCreationAckMessage = serde_json::from_value(json.clone()).unwrap();
        messenger
            .creation_ack(&scheduler, ack.clone())
            .await
            .unwrap();
        assert_eq!(raw_json(&mut raw).await, json);
        assert_eq!(within("ack", acks.next()).await, ack);
    }

    // Invoker → controller 0: the three acknowledgements.
    let mut completions = scheduler_bus.completions(&controller).await.unwrap();
    let mut raw = client.subscribe("whisk.completed0").await.unwrap();
    scheduler_bus.flush().await.unwrap();
    for json in [wire::combined(), wire::completion(), wire::result()] {
        let ack: AcknowledgementMessage = serde_json::from_value(json.clone()).unwrap();
        messenger
            .completion(&controller, ack.clone())
            .await
            .unwrap();
        assert_eq!(raw_json(&mut raw).await, json);
        assert_eq!(within("completion", completions.next()).await, ack);
    }
    assert_eq!(invoker_side.malformed().get(), 0);
    assert_eq!(acks.malformed().get(), 0);
    assert_eq!(completions.malformed().get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_too_large_for_the_server_is_sent_shrunk() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let max = bus.client().server_info().max_payload;
    let controller = ControllerInstanceId::first();
    let mut completions = bus.completions(&controller).await.unwrap();
    let mut big = wire::combined();
    big["response"]["response"]["result"] = json!({ "blob": "x".repeat(max) });
    let ack: AcknowledgementMessage = serde_json::from_value(big).unwrap();
    NatsMessenger::new(bus.clone())
        .completion(&controller, ack.clone())
        .await
        .unwrap();
    let got = within("shrunk completion", completions.next()).await;
    assert_eq!(got, ack.shrink());
    let mut expected = wire::combined();
    expected["response"] = json!("0123456789abcdef0123456789abcdef");
    assert_eq!(serde_json::to_value(&got).unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_skipped_and_counted_while_good_ones_flow() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let client = bus.client().clone();
    let mut containers = bus.container_messages(0).await.unwrap();
    let mut acks = bus
        .creation_acks(&SchedulerInstanceId::new("0").unwrap())
        .await
        .unwrap();
    let mut completions = bus
        .completions(&ControllerInstanceId::first())
        .await
        .unwrap();
    let counter = containers.malformed();

    let mut unknown_error = wire::ack(None);
    unknown_error["error"] = json!("NoSuchError");
    let mut bad_creation = wire::creation();
    bad_creation["creationId"] = json!("not-an-id");
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("whisk.invoker0", b"not json".to_vec()),
        ("whisk.invoker0", b"".to_vec()),
        ("whisk.invoker0", json!([1, 2]).to_string().into_bytes()),
        (
            "whisk.invoker0",
            json!({"hello": "world"}).to_string().into_bytes(),
        ),
        ("whisk.invoker0", bad_creation.to_string().into_bytes()),
        ("whisk.invoker0", vec![0xff, 0xfe, 0x00]),
        ("whisk.creationAck0", unknown_error.to_string().into_bytes()),
        ("whisk.creationAck0", b"{".to_vec()),
        (
            "whisk.completed0",
            json!({"transid": wire::transid()}).to_string().into_bytes(),
        ),
        ("whisk.completed0", json!("text").to_string().into_bytes()),
    ];
    // Bad, good, bad, good: every good one gets through, in order.
    for round in 0..2 {
        for (subject, payload) in &garbage {
            client
                .publish(*subject, payload.clone().into())
                .await
                .unwrap();
        }
        let mut creation = wire::creation();
        creation["retryCount"] = json!(round);
        client
            .publish("whisk.invoker0", creation.to_string().into())
            .await
            .unwrap();
        client
            .publish("whisk.creationAck0", wire::ack(None).to_string().into())
            .await
            .unwrap();
        client
            .publish("whisk.completed0", wire::completion().to_string().into())
            .await
            .unwrap();
        match within("creation", containers.next()).await {
            ContainerMessage::Creation(c) => assert_eq!(c.retry_count, round),
            other => panic!("{other:?}"),
        }
        within("ack", acks.next()).await;
        within("completion", completions.next()).await;
    }
    assert_eq!(counter.get(), 12, "6 bad container messages, twice");
    assert_eq!(acks.malformed().get(), 4);
    assert_eq!(completions.malformed().get(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_subjects_are_at_most_once_and_resubscribe_after_a_server_restart() {
    let mut server = NatsServer::start();
    let bus = connect(&server).await;
    let messenger = NatsMessenger::new(bus.clone());
    let controller = ControllerInstanceId::first();
    let ack: AcknowledgementMessage = serde_json::from_value(wire::completion()).unwrap();

    // Sent while no controller listens: gone (the record is the fallback).
    messenger
        .completion(&controller, ack.clone())
        .await
        .unwrap();
    bus.flush().await.unwrap();
    let mut completions = bus.completions(&controller).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), completions.next())
            .await
            .is_err(),
        "a completion sent before the subscription must not arrive"
    );

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bus.is_connected() {
        assert!(Instant::now() < deadline, "no reconnection within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The subscription made before the restart receives again.
    let received = loop {
        messenger
            .completion(&controller, ack.clone())
            .await
            .unwrap();
        if let Ok(Some(got)) =
            tokio::time::timeout(Duration::from_millis(200), completions.next()).await
        {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "nothing received after the restart"
        );
    };
    assert_eq!(received, ack);
}

#[path = "cluster_nats/queue.rs"]
mod queue;
