//! What only the cluster's shared store (`NatsStore`) does, against a real
//! nats-server (JetStream on): two controllers racing on one action or one
//! namespace, code stored once and seen by another controller at once, a
//! server restart, the buckets' configuration, and a watching controller's
//! memory. The contract it shares with standalone mode's SQLite store —
//! keys, puts, revisions, lists, deletes, records and their queries,
//! namespaces — is the conformance suite (`wasmwhisk_testkit::
//! store_conformance`), run against both stores by tests/store_conformance.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmwhisk::cluster::nats::{BusOptions, NatsBus, NatsStore, NatsStoreConfig};
use wasmwhisk::pool::ports::{ActionStore, ActivationStore, ExecutableAction, StoreError};
use wasmwhisk::protocol::{DocRevision, SemVer};
use wasmwhisk::store::{DbError, EntityStore};
use wasmwhisk_testkit::nats::NatsServer;
use wasmwhisk_testkit::store_conformance::{action, fqn, query, record};

// ---------------------------------------------------------------- fixtures

async fn connect(server: &NatsServer) -> NatsBus {
    NatsBus::connect_with(BusOptions {
        url: server.url(),
        ..BusOptions::default()
    })
    .await
    .expect("connecting to nats-server")
}

async fn open(server: &NatsServer) -> NatsStore {
    NatsStore::open(&connect(server).await, NatsStoreConfig::default())
        .await
        .expect("opening the store")
}

fn generation(action: &ExecutableAction) -> u64 {
    action.revision.generation().expect("a revision")
}

// ---------------------------------------------------------------- actions

#[tokio::test]
async fn concurrent_overwrites_both_land_and_revisions_are_kept_two_deep() {
    let server = NatsServer::start();
    let a = open(&server).await;
    let b = open(&server).await; // a second controller
    let first = a
        .put_action(action("guest/pkg", "act", b"v1"), false)
        .await
        .unwrap()
        .stored;

    let (x, y) = tokio::join!(
        a.put_action(action("guest/pkg", "act", b"from a"), true),
        b.put_action(action("guest/pkg", "act", b"from b"), true),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut generations = [generation(&x.stored), generation(&y.stored)];
    generations.sort();
    assert_eq!(generations, [2, 3], "each put is its own revision");
    // The later one replaced the earlier one: no update was lost.
    let (earlier, later) = if generation(&x.stored) == 2 {
        (x, y)
    } else {
        (y, x)
    };
    assert_eq!(earlier.replaced.unwrap().revision, first.revision);
    assert_eq!(later.replaced.unwrap().revision, earlier.stored.revision);
    assert_eq!(later.stored.meta.version, SemVer::new(0, 0, 3).unwrap());

    // A third store, with nothing cached, reads the kept revisions from NATS.
    let c = open(&server).await;
    let name = fqn("guest/pkg/act");
    let latest = ActionStore::get(&c, &name, &DocRevision::empty())
        .await
        .unwrap();
    assert_eq!(latest.revision, later.stored.revision);
    let previous = ActionStore::get(&c, &name, &earlier.stored.revision)
        .await
        .unwrap();
    assert_eq!(previous.code, earlier.stored.code);
    assert_eq!(previous.revision, earlier.stored.revision);
    // The first revision is third from the latest: pruned.
    let pruned = ActionStore::get(&c, &name, &first.revision).await;
    assert!(matches!(pruned, Err(StoreError::NotFound(_))), "{pruned:?}");
    let unknown = ActionStore::get(&c, &name, &DocRevision::new("9-nope")).await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))));
    let absent = ActionStore::get(&c, &fqn("guest/none"), &DocRevision::empty()).await;
    assert!(matches!(absent, Err(StoreError::NotFound(_))));
}

#[tokio::test]
async fn code_is_stored_once_and_a_second_controller_sees_writes_at_once() {
    let server = NatsServer::start();
    let a = open(&server).await;
    let b = open(&server).await;
    let code = vec![7u8; 300 * 1024]; // several object chunks
    a.put_action(action("guest", "one", &code), false)
        .await
        .unwrap();
    a.put_action(action("guest", "two", &code), false)
        .await
        .unwrap();
    // b sees both, with the code, at once.
    for name in ["guest/one", "guest/two"] {
        let got = b.get_action(&fqn(name)).await.unwrap().unwrap();
        assert_eq!(&*got.code, code.as_slice());
    }
    let bus = connect(&server).await;
    let js = async_nats::jetstream::new(bus.client().clone());
    let objects = js.get_object_store("whisk-code").await.unwrap();
    let mut list = objects.list().await.unwrap();
    let mut count = 0;
    while let Some(object) = futures_util::StreamExt::next(&mut list).await {
        assert_eq!(object.unwrap().size, code.len());
        count += 1;
    }
    assert_eq!(count, 1, "one object for the shared code");

    // Every update by one controller is the next read of the other.
    for n in 0..5u8 {
        let put = a
            .put_action(action("guest", "one", &[n]), true)
            .await
            .unwrap();
        let got = b.get_action(&fqn("guest/one")).await.unwrap().unwrap();
        assert_eq!(got.revision, put.stored.revision);
        assert_eq!(&*got.code, &[n]);
    }
    // And b's update of it is a's next.
    let put = b
        .put_action(action("guest", "one", b"b"), true)
        .await
        .unwrap();
    assert_eq!(generation(&put.stored), 7);
    let got = EntityStore::get_action(&a, &fqn("guest/one"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.revision, put.stored.revision);
}

// ---------------------------------------------------------------- records

#[tokio::test]
async fn a_namespace_without_records_lists_at_once() {
    let server = NatsServer::start();
    let store = open(&server).await;
    let r = record("guest", "guest", "hello", 1_000);
    ActivationStore::store(&store, &r).await.unwrap();
    // One consumer creation, not a wait for records that never come.
    let before = Instant::now();
    assert!(
        store
            .list_activations("nobody", &query(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        before.elapsed() < Duration::from_secs(2),
        "{:?}",
        before.elapsed()
    );
}

#[tokio::test]
async fn records_and_actions_survive_a_server_restart() {
    let mut server = NatsServer::start();
    let bus = connect(&server).await;
    let store = NatsStore::open(&bus, NatsStoreConfig::default())
        .await
        .unwrap();
    let r = record("guest", "guest", "hello", 1_000);
    store.store_activation(&r).await.unwrap();
    let put = store
        .put_action(action("guest", "hello", b"code"), false)
        .await
        .unwrap();
    server.restart();
    // The client reconnects by itself; calls fail meanwhile.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bus.is_connected() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A request sent while JetStream is still recovering gets no answer:
    // each attempt is cut short and retried.
    let got = loop {
        let attempt = tokio::time::timeout(
            Duration::from_millis(250),
            store.get_activation("guest", &r.activation_id),
        )
        .await;
        match attempt {
            Ok(Ok(got)) => break got,
            failed if Instant::now() < deadline => {
                eprintln!("waiting for the server: {failed:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            failed => panic!("the store did not come back: {failed:?}"),
        }
    };
    assert_eq!(got, Some(r));
    // A fresh process reads everything from the server's disk.
    let fresh = open(&server).await;
    let action = fresh
        .get_action(&fqn("guest/hello"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(action.revision, put.stored.revision);
    assert_eq!(&*action.code, b"code");
}

// ---------------------------------------------------------------- namespaces

#[tokio::test]
async fn concurrent_ensures_on_two_controllers_create_the_namespace_once() {
    let server = NatsServer::start();
    let a = open(&server).await;
    let b = open(&server).await;
    // Exactly one creates (and gets the clear key); the other sees it.
    let (x, y) = tokio::join!(a.ensure_namespace("guest"), b.ensure_namespace("guest"));
    let created: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(created.len(), 1);
    let creds = created[0].clone();
    assert_eq!(creds.namespace, "guest");
    assert!(a.ensure_namespace("guest").await.unwrap().is_none());
    assert!(matches!(
        b.create_namespace("guest").await,
        Err(DbError::Exists)
    ));
    for store in [&a, &b] {
        let identity = store
            .authenticate(&creds.uuid, &creds.key)
            .await
            .unwrap()
            .expect("the key authenticates");
        assert_eq!(identity.namespace.name, "guest");
        let listed = store.list_namespaces().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uuid, creds.uuid);
    }
}

#[tokio::test]
async fn opening_is_idempotent_and_checks_the_prefix() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let opens = (0..4).map(|_| NatsStore::open(&bus, NatsStoreConfig::default()));
    for opened in futures_util::future::join_all(opens).await {
        opened.expect("opening at once");
    }
    let bad = NatsStore::open(
        &bus,
        NatsStoreConfig {
            prefix: "a.b".into(),
            ..NatsStoreConfig::default()
        },
    )
    .await;
    assert!(bad.is_err());
    // A changed retention is applied to the existing bucket.
    let config = NatsStoreConfig {
        activation_max_age: Duration::from_secs(3600),
        activation_max_bytes: 1 << 20,
        ..NatsStoreConfig::default()
    };
    NatsStore::open(&bus, config).await.unwrap();
    let js = async_nats::jetstream::new(bus.client().clone());
    let mut stream = js.get_stream("KV_whisk-activations").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    assert_eq!(info.config.max_bytes, 1 << 20);

    // A bucket made elsewhere that keeps other revisions is refused.
    // (async-nats's own `create_key_value` cannot read 2.9's account info.)
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "KV_other-actions".into(),
        subjects: vec!["$KV.other-actions.>".into()],
        max_messages_per_subject: 5,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let other = NatsStoreConfig {
        prefix: "other".into(),
        ..NatsStoreConfig::default()
    };
    let refused = NatsStore::open(&bus, other).await.unwrap_err();
    assert!(
        refused.to_string().contains("keeps 5 values per key"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_controller_serves_the_latest_revision_from_memory_until_it_changes() {
    let server = NatsServer::start();
    let watcher = open(&server).await;
    watcher.watch_actions();
    let writer = open(&server).await;
    let first = writer
        .put_action(action("guest", "hot", b"1"), false)
        .await
        .unwrap();
    // The watch starts in the background; the reads are right either way.
    for _ in 0..20 {
        let got = watcher
            .get_action(&fqn("guest/hot"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.revision, first.stored.revision);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Served from memory: the same Arc comes back.
    let a = watcher
        .get_action(&fqn("guest/hot"))
        .await
        .unwrap()
        .unwrap();
    let b = watcher
        .get_action(&fqn("guest/hot"))
        .await
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&a, &b), "the second read came from memory");
    // Another process's update and delete reach it within moments.
    for n in 2..5u8 {
        let put = writer
            .put_action(action("guest", "hot", &[n]), true)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let got = watcher
                .get_action(&fqn("guest/hot"))
                .await
                .unwrap()
                .unwrap();
            if got.revision == put.stored.revision {
                assert_eq!(&*got.code, &[n]);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the update never reached the watcher"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    writer.delete_action(&fqn("guest/hot")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while watcher
        .get_action(&fqn("guest/hot"))
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "the delete never reached the watcher"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Its own writes are its next read at once.
    let own = watcher
        .put_action(action("guest", "hot", b"own"), false)
        .await
        .unwrap();
    let got = watcher
        .get_action(&fqn("guest/hot"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.revision, own.stored.revision);
}
