//! The cluster's shared store (`NatsStore`) against a real nats-server
//! (JetStream on): actions with their revisions and code, activation records
//! and their queries, namespaces and keys — seen alike by two stores, as by
//! two controllers, and surviving a server restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmwhisk::cluster::nats::{BusOptions, NatsBus, NatsStore, NatsStoreConfig};
use wasmwhisk::engine::CacheKey;
use wasmwhisk::pool::ports::{ActionStore, ActivationStore, ExecutableAction, StoreError};
use wasmwhisk::pool::record::fallback_activation_at;
use wasmwhisk::protocol::{
    ActionLimits, ActivationId, ActivationMessage, ActivationResponse, ControllerInstanceId,
    DocRevision, EntityName, EntityPath, FullyQualifiedEntityName, Identity, SemVer,
    WhiskActionMetaData, WhiskActivation,
};
use wasmwhisk::store::{ActivationQuery, DbError, EntityStore, NewAction};
use wasmwhisk_testkit::nats::NatsServer;

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

/// An action `path/name` (`path` is `ns` or `ns/pkg`) with `code`.
fn action(path: &str, name: &str, code: &[u8]) -> NewAction {
    let meta = WhiskActionMetaData::code_action(
        path.parse().unwrap(),
        EntityName::new(name).unwrap(),
        "wasm",
        true,
        ActionLimits::default(),
    );
    NewAction {
        action: ExecutableAction {
            meta,
            revision: DocRevision::empty(),
            code: Arc::from(code),
            code_key: Some(CacheKey(*blake3::hash(code).as_bytes())),
        },
    }
}

fn fqn(s: &str) -> FullyQualifiedEntityName {
    FullyQualifiedEntityName::parse(s).unwrap()
}

/// A record of an activation of `path/name` by namespace `ns`, started at
/// `start` ms.
fn record(ns: &str, path: &str, name: &str, start: u64) -> WhiskActivation {
    let meta = action(path, name, b"code").action.meta;
    let msg = ActivationMessage::for_action(
        &meta,
        DocRevision::new("1-abc"),
        Identity::basic(ns, "uuid", "key"),
        ControllerInstanceId::first(),
        Some(serde_json::json!({"n": start})),
        true,
    );
    let at = std::time::UNIX_EPOCH + Duration::from_millis(start);
    fallback_activation_at(
        &msg,
        Some("wasm"),
        ActivationResponse::success(Some(serde_json::json!({"start": start}))),
        at,
    )
}

fn query(limit: usize) -> ActivationQuery {
    ActivationQuery {
        limit,
        ..ActivationQuery::default()
    }
}

fn starts(records: &[WhiskActivation]) -> Vec<u64> {
    records.iter().map(|r| r.start).collect()
}

fn generation(action: &ExecutableAction) -> u64 {
    action.revision.generation().expect("a revision")
}

// ---------------------------------------------------------------- actions

#[tokio::test]
async fn puts_make_successive_revisions_and_overwrite_false_refuses() {
    let server = NatsServer::start();
    let store = open(&server).await;

    let first = store
        .put_action(action("guest", "hello", b"v1"), false)
        .await
        .unwrap();
    assert!(first.replaced.is_none());
    let rev = first.stored.revision.as_str().unwrap().to_owned();
    assert!(rev.starts_with("1-") && rev.len() == 34, "{rev}");
    assert!(first.stored.meta.updated > 0);

    let got = store
        .get_action(&fqn("guest/hello"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.revision, first.stored.revision);
    assert_eq!(&*got.code, b"v1");
    assert_eq!(got.code_key, first.stored.code_key);
    assert_eq!(got.meta, first.stored.meta);

    assert!(matches!(
        store
            .put_action(action("guest", "hello", b"v2"), false)
            .await,
        Err(DbError::Exists)
    ));

    let second = store
        .put_action(action("guest", "hello", b"v2"), true)
        .await
        .unwrap();
    assert_eq!(generation(&second.stored), 2);
    let replaced = second.replaced.expect("an update replaces");
    assert_eq!(replaced.revision, first.stored.revision);
    assert_eq!(&*replaced.code, b"v1");
    assert_eq!(
        second.stored.meta.version,
        first.stored.meta.version.up_patch()
    );
    assert_eq!(second.stored.meta.version, SemVer::new(0, 0, 2).unwrap());

    let got = store
        .get_action(&fqn("guest/hello"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.revision, second.stored.revision);
    assert_eq!(&*got.code, b"v2");
    assert!(
        store
            .get_action(&fqn("guest/absent"))
            .await
            .unwrap()
            .is_none()
    );
}

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
async fn lists_by_name_without_code_and_deletes_return_the_latest() {
    let server = NatsServer::start();
    let store = open(&server).await;
    for (path, name) in [
        ("guest", "b"),
        ("guest", "a"),
        ("guest/pkg", "c"),
        ("guest/pkg", "a"),
        ("other", "a"),
    ] {
        store
            .put_action(action(path, name, name.as_bytes()), false)
            .await
            .unwrap();
    }
    let names = |list: &[Arc<ExecutableAction>]| -> Vec<String> {
        list.iter()
            .map(|a| format!("{}/{}", a.meta.namespace, a.meta.name))
            .collect()
    };
    let guest: EntityPath = "guest".parse().unwrap();
    let all = store.list_actions(&guest, 30, 0).await.unwrap();
    assert_eq!(
        names(&all),
        ["guest/a", "guest/pkg/a", "guest/b", "guest/pkg/c"]
    );
    assert!(
        all.iter()
            .all(|a| a.code.is_empty() && a.code_key.is_some())
    );
    assert!(all.iter().all(|a| generation(a) == 1));
    let page = store.list_actions(&guest, 2, 1).await.unwrap();
    assert_eq!(names(&page), ["guest/pkg/a", "guest/b"]);
    assert!(store.list_actions(&guest, 0, 0).await.unwrap().is_empty());
    let pkg: EntityPath = "guest/pkg".parse().unwrap();
    let packaged = store.list_actions(&pkg, 30, 0).await.unwrap();
    assert_eq!(names(&packaged), ["guest/pkg/a", "guest/pkg/c"]);
    let nobody: EntityPath = "nobody".parse().unwrap();
    assert!(store.list_actions(&nobody, 30, 0).await.unwrap().is_empty());

    // Delete returns the latest revision, with its code.
    let second = store
        .put_action(action("guest", "a", b"a2"), true)
        .await
        .unwrap()
        .stored;
    let deleted = store.delete_action(&fqn("guest/a")).await.unwrap().unwrap();
    assert_eq!(deleted.revision, second.revision);
    assert_eq!(&*deleted.code, b"a2");
    assert!(store.get_action(&fqn("guest/a")).await.unwrap().is_none());
    assert!(
        store
            .delete_action(&fqn("guest/a"))
            .await
            .unwrap()
            .is_none()
    );
    let left = store.list_actions(&guest, 30, 0).await.unwrap();
    assert_eq!(names(&left), ["guest/pkg/a", "guest/b", "guest/pkg/c"]);
    // Another process finds no revision of the deleted action.
    let other = open(&server).await;
    let gone = ActionStore::get(&other, &fqn("guest/a"), &second.revision).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    // Re-created, it continues after the deleted generation.
    let again = store
        .put_action(action("guest", "a", b"a3"), false)
        .await
        .unwrap();
    assert!(again.replaced.is_none());
    assert_eq!(generation(&again.stored), 3);
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
async fn records_are_stored_got_and_listed_with_every_query_field() {
    let server = NatsServer::start();
    let store = open(&server).await;
    let other = open(&server).await;
    let records = [
        record("guest", "guest", "hello", 1_000),
        record("guest", "guest/pkg", "hello", 2_000),
        record("guest", "guest", "bye", 3_000),
        record("guest", "guest", "hello", 4_000),
        record("guest", "guest/pkg", "hello", 5_000),
        record("someone", "guest", "hello", 2_500),
    ];
    for r in &records {
        ActivationStore::store(&store, r).await.unwrap();
    }
    let first = &records[0];
    let id = &first.activation_id;
    assert_eq!(
        other.get_activation("guest", id).await.unwrap().as_ref(),
        Some(first)
    );
    assert_eq!(other.get_activation("someone", id).await.unwrap(), None);
    assert_eq!(
        ActivationStore::get(&other, id).await.unwrap().as_ref(),
        Some(first)
    );
    assert_eq!(
        ActivationStore::get(&other, &ActivationId::generate())
            .await
            .unwrap(),
        None
    );

    let list = |q: ActivationQuery| {
        let other = other.clone();
        async move { starts(&other.list_activations("guest", &q).await.unwrap()) }
    };
    assert_eq!(list(query(30)).await, [5_000, 4_000, 3_000, 2_000, 1_000]);
    assert_eq!(
        list(ActivationQuery {
            skip: 1,
            ..query(2)
        })
        .await,
        [4_000, 3_000]
    );
    assert!(list(query(0)).await.is_empty());
    let named = |name: &str| ActivationQuery {
        name: Some(name.to_owned()),
        ..query(30)
    };
    assert_eq!(list(named("hello")).await, [5_000, 4_000, 2_000, 1_000]);
    assert_eq!(list(named("pkg/hello")).await, [5_000, 2_000]);
    assert_eq!(list(named("/other/hello/")).await, Vec::<u64>::new());
    assert_eq!(list(named("bye")).await, [3_000]);
    assert_eq!(
        list(ActivationQuery {
            since: Some(2_000),
            upto: Some(4_000),
            ..query(30)
        })
        .await,
        [4_000, 3_000, 2_000]
    );
    assert_eq!(
        list(ActivationQuery {
            since: Some(4_001),
            ..named("hello")
        })
        .await,
        [5_000]
    );
    let got = other.list_activations("someone", &query(30)).await.unwrap();
    assert_eq!(got, [records[5].clone()]);

    // A second store of the same id replaces the record.
    let mut again = first.clone();
    again.logs = vec!["line".into()];
    store.store_activation(&again).await.unwrap();
    let got = other.get_activation("guest", id).await.unwrap().unwrap();
    assert_eq!(got.logs, ["line"]);
    assert_eq!(list(query(30)).await.len(), 5);

    // A namespace without records answers at once.
    let before = Instant::now();
    assert!(
        other
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
async fn a_record_larger_than_a_message_is_stored_and_listed() {
    let server = NatsServer::start();
    let store = open(&server).await;
    let mut big = record("guest", "guest", "chatty", 9_000);
    big.logs = (0..3_000).map(|i| format!("{i:>1000}")).collect(); // 3 MB
    ActivationStore::store(&store, &big).await.unwrap();
    let small = record("guest", "guest", "quiet", 8_000);
    ActivationStore::store(&store, &small).await.unwrap();
    let got = store
        .get_activation("guest", &big.activation_id)
        .await
        .unwrap();
    assert_eq!(got.as_ref(), Some(&big));
    let got = ActivationStore::get(&store, &big.activation_id)
        .await
        .unwrap();
    assert_eq!(got.as_ref(), Some(&big));
    let listed = store.list_activations("guest", &query(30)).await.unwrap();
    assert_eq!(listed, [big, small]);
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
async fn namespaces_keys_and_their_deletion() {
    let server = NatsServer::start();
    let a = open(&server).await;
    let b = open(&server).await;

    // Concurrent ensures: exactly one creates (and gets the clear key).
    let (x, y) = tokio::join!(a.ensure_namespace("guest"), b.ensure_namespace("guest"));
    let created: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(created.len(), 1);
    let creds = created[0].clone();
    assert_eq!(creds.namespace, "guest");
    assert!(a.ensure_namespace("guest").await.unwrap().is_none());
    assert!(matches!(
        a.create_namespace("guest").await,
        Err(DbError::Exists)
    ));
    assert!(matches!(
        a.create_namespace("not/valid").await,
        Err(DbError::Invalid(_))
    ));
    let other = b.create_namespace("other").await.unwrap();

    let identity = a
        .authenticate(&creds.uuid, &creds.key)
        .await
        .unwrap()
        .expect("the key authenticates");
    assert_eq!(identity.namespace.name, "guest");
    assert_eq!(identity.namespace.uuid, creds.uuid);
    assert!(
        a.authenticate(&creds.uuid, "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.authenticate("no-such-uuid", &creds.key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.authenticate(&creds.uuid, &other.key)
            .await
            .unwrap()
            .is_none()
    );

    let listed = b.list_namespaces().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["guest", "other"]);
    assert_eq!(listed[0].uuid, creds.uuid);
    assert!(listed[0].created > 0);

    // Deleting a namespace deletes its key, actions and records.
    a.put_action(action("guest", "hello", b"x"), false)
        .await
        .unwrap();
    a.put_action(action("guest/pkg", "hello", b"x"), false)
        .await
        .unwrap();
    a.put_action(action("other", "hello", b"x"), false)
        .await
        .unwrap();
    let r = record("guest", "guest", "hello", 1);
    a.store_activation(&r).await.unwrap();
    let kept = record("other", "other", "hello", 1);
    a.store_activation(&kept).await.unwrap();

    assert!(b.delete_namespace("guest").await.unwrap());
    assert!(!b.delete_namespace("guest").await.unwrap());
    // b never cached the key: it is refused at once (a, within 5 s).
    assert!(
        b.authenticate(&creds.uuid, &creds.key)
            .await
            .unwrap()
            .is_none()
    );
    let guest: EntityPath = "guest".parse().unwrap();
    assert!(a.list_actions(&guest, 30, 0).await.unwrap().is_empty());
    assert!(
        a.get_action(&fqn("guest/pkg/hello"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.list_activations("guest", &query(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        a.get_activation("guest", &r.activation_id)
            .await
            .unwrap()
            .is_none()
    );
    // The other namespace is untouched.
    assert!(a.get_action(&fqn("other/hello")).await.unwrap().is_some());
    assert_eq!(
        a.get_activation("other", &kept.activation_id)
            .await
            .unwrap(),
        Some(kept)
    );
    let names: Vec<String> = a
        .list_namespaces()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["other"]);
    // Re-created, it has a new key and the old one stays refused.
    let renewed = a.create_namespace("guest").await.unwrap();
    assert_ne!(renewed.uuid, creds.uuid);
    assert!(
        b.authenticate(&renewed.uuid, &renewed.key)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        b.authenticate(&creds.uuid, &creds.key)
            .await
            .unwrap()
            .is_none()
    );
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
