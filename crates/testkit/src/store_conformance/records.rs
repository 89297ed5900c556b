//! Activation records: stored by the pool, read by id, listed newest first
//! with every field of the REST API's query.

use wasmwhisk_core::entities::{ActivationQuery, EntityStore};
use wasmwhisk_core::pool::ports::ActivationStore;
use wasmwhisk_protocol::{ActivationId, WhiskActivation};

use super::StoreAdapter;
use super::fixtures::{query, record, starts};

/// Stores `records` through the pool's port.
async fn store_all<S: ActivationStore>(store: &S, records: &[WhiskActivation]) {
    for r in records {
        ActivationStore::store(store, r)
            .await
            .unwrap_or_else(|e| panic!("storing {}: {e}", r.activation_id));
    }
}

/// The starts of `namespace`'s records that `query` lists.
async fn listed<S: EntityStore>(store: &S, namespace: &str, query: ActivationQuery) -> Vec<u64> {
    starts(&store.list_activations(namespace, &query).await.unwrap())
}

/// `query(30)` for records of action `name` (`act` or `pkg/act`).
fn named(name: &str) -> ActivationQuery {
    ActivationQuery {
        name: Some(name.to_owned()),
        ..query(30)
    }
}

/// A stored record reads back whole by its id in the namespace that
/// invoked it — through the REST API's port, the pool's by id alone and
/// the pool's knowing the namespace, from the writing handle and from
/// another — and not in another namespace; an unknown id is `None`.
pub async fn records_are_stored_then_read_by_id<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let mine = record("guest", "guest", "hello", 1_000);
    // `someone` invoked guest's action: the record is someone's.
    let theirs = record("someone", "guest", "hello", 2_000);
    store_all(store, &[mine.clone(), theirs.clone()]).await;
    let fresh = adapter.reopen().await;
    for handle in [store, &fresh] {
        for (ns, r) in [("guest", &mine), ("someone", &theirs)] {
            let id = &r.activation_id;
            let got = handle.get_activation(ns, id).await.unwrap();
            assert_eq!(got.as_ref(), Some(r), "{ns}");
            let got = ActivationStore::get(handle, id).await.unwrap();
            assert_eq!(got.as_ref(), Some(r), "{ns}");
            let got = ActivationStore::get_in(handle, ns, id).await.unwrap();
            assert_eq!(got.as_ref(), Some(r), "{ns}");
        }
        let wrong = handle
            .get_activation("someone", &mine.activation_id)
            .await
            .unwrap();
        assert_eq!(wrong, None);
        let wrong = handle
            .get_activation("guest", &theirs.activation_id)
            .await
            .unwrap();
        assert_eq!(wrong, None);
        let unknown = ActivationId::generate();
        assert_eq!(
            handle.get_activation("guest", &unknown).await.unwrap(),
            None
        );
        assert_eq!(ActivationStore::get(handle, &unknown).await.unwrap(), None);
    }
}

/// A second store of the same id replaces the record (the pool retries a
/// failed store with the same record): one record, the second's content.
pub async fn a_second_store_of_an_id_replaces_the_record<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let first = record("guest", "guest", "hello", 1_000);
    let other = record("guest", "guest", "hello", 2_000);
    store_all(store, &[first.clone(), other.clone()]).await;
    let mut again = first.clone();
    again.logs = vec!["line".into()];
    store_all(store, std::slice::from_ref(&again)).await;

    let id = &first.activation_id;
    let got = store.get_activation("guest", id).await.unwrap().unwrap();
    assert_eq!(got.logs, ["line"]);
    assert_eq!(got, again);
    let got = ActivationStore::get(store, id).await.unwrap().unwrap();
    assert_eq!(got.logs, ["line"]);
    let all = store.list_activations("guest", &query(30)).await.unwrap();
    assert_eq!(all, [other, again]);
}

/// A namespace's records list newest first by `start` (whatever order they
/// were stored in), whole, paged by `limit` and `skip`; `limit` 0 lists
/// nothing (the store takes it literally); a namespace without records
/// lists nothing.
pub async fn records_list_newest_first_with_limit_and_skip<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let records: Vec<WhiskActivation> = [3_000, 1_000, 5_000, 2_000, 4_000]
        .into_iter()
        .map(|start| record("guest", "guest", "hello", start))
        .collect();
    store_all(store, &records).await;

    let all = store.list_activations("guest", &query(30)).await.unwrap();
    assert_eq!(starts(&all), [5_000, 4_000, 3_000, 2_000, 1_000]);
    assert_eq!(all[0], records[2], "a listed record is whole");
    let page = |limit, skip| ActivationQuery {
        skip,
        ..query(limit)
    };
    assert_eq!(listed(store, "guest", page(2, 1)).await, [4_000, 3_000]);
    assert_eq!(listed(store, "guest", page(1, 0)).await, [5_000]);
    assert_eq!(listed(store, "guest", page(30, 4)).await, [1_000]);
    assert!(listed(store, "guest", page(30, 5)).await.is_empty());
    assert!(listed(store, "guest", page(0, 0)).await.is_empty());
    assert!(listed(store, "nobody", query(30)).await.is_empty());
}

/// `name` selects the records of an action: a plain name matches the
/// action wherever it is (packaged or not), `pkg/name` (slashes around it
/// ignored) only the one in that package — a whole path segment, never a
/// part of one; with `limit` and `skip` applied after the filter.
pub async fn records_filter_by_action_name_and_package<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    store_all(
        store,
        &[
            record("guest", "guest", "hello", 1_000),
            record("guest", "guest/pkg", "hello", 2_000),
            record("guest", "guest", "bye", 3_000),
            record("guest", "guest", "hello", 4_000),
            record("guest", "guest/pkg", "hello", 5_000),
            record("guest", "guest/other", "hello", 6_000),
        ],
    )
    .await;
    let list = |q| listed(store, "guest", q);
    assert_eq!(
        list(named("hello")).await,
        [6_000, 5_000, 4_000, 2_000, 1_000]
    );
    assert_eq!(list(named("pkg/hello")).await, [5_000, 2_000]);
    assert_eq!(list(named("/pkg/hello/")).await, [5_000, 2_000]);
    assert_eq!(list(named("other/hello")).await, [6_000]);
    assert!(list(named("kg/hello")).await.is_empty());
    assert!(list(named("nope/hello")).await.is_empty());
    assert!(list(named("/nope/hello/")).await.is_empty());
    assert_eq!(list(named("bye")).await, [3_000]);
    assert!(list(named("hell")).await.is_empty());
    assert!(list(named("nothing")).await.is_empty());
    assert_eq!(
        list(ActivationQuery {
            limit: 2,
            skip: 1,
            ..named("hello")
        })
        .await,
        [5_000, 4_000]
    );
}

/// `since` and `upto` bound `start` inclusively (epoch ms), alone, together
/// and with `name`, `limit` and `skip`.
pub async fn records_filter_by_since_and_upto_inclusively<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let mut records: Vec<WhiskActivation> = (1..=5u64)
        .map(|i| record("guest", "guest", "hello", i * 1_000))
        .collect();
    records.push(record("guest", "guest", "bye", 4_500));
    store_all(store, &records).await;
    let window = |since, upto| ActivationQuery {
        since,
        upto,
        ..query(30)
    };
    let list = |q| listed(store, "guest", q);
    assert_eq!(
        list(window(Some(2_000), Some(4_000))).await,
        [4_000, 3_000, 2_000]
    );
    assert_eq!(list(window(Some(3_000), Some(3_000))).await, [3_000]);
    assert_eq!(list(window(None, Some(1_000))).await, [1_000]);
    assert_eq!(list(window(Some(4_001), None)).await, [5_000, 4_500]);
    assert!(list(window(Some(5_001), None)).await.is_empty());
    assert!(list(window(Some(4_000), Some(3_000))).await.is_empty());
    assert_eq!(
        list(ActivationQuery {
            since: Some(4_001),
            ..named("hello")
        })
        .await,
        [5_000]
    );
    assert_eq!(
        list(ActivationQuery {
            limit: 2,
            skip: 1,
            ..window(Some(2_000), None)
        })
        .await,
        [4_500, 4_000]
    );
}

/// A namespace lists and reads only the records it invoked: not those of
/// another namespace, even one invoking its actions or one whose name
/// starts alike or contains a dot.
pub async fn records_are_isolated_by_namespace<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let records = [
        ("guest", record("guest", "guest", "hello", 1_000)),
        ("guest2", record("guest2", "guest2", "hello", 2_000)),
        ("guest.x", record("guest.x", "guest", "hello", 3_000)),
        ("someone", record("someone", "guest", "hello", 4_000)),
    ];
    let all: Vec<WhiskActivation> = records.iter().map(|(_, r)| r.clone()).collect();
    store_all(store, &all).await;
    for (ns, r) in &records {
        let got = store.list_activations(ns, &query(30)).await.unwrap();
        assert_eq!(got, std::slice::from_ref(r), "{ns}");
        let got = store.list_activations(ns, &named("hello")).await.unwrap();
        assert_eq!(got, std::slice::from_ref(r), "{ns}");
        for (other, theirs) in &records {
            let got = store
                .get_activation(ns, &theirs.activation_id)
                .await
                .unwrap();
            assert_eq!(got.is_some(), ns == other, "{ns} reading {other}'s");
        }
    }
    assert!(listed(store, "gues", query(30)).await.is_empty());
}

/// A record of several megabytes (an activation's logs may be 10 MB) is
/// stored, read by id either way, and listed like any other.
pub async fn a_large_record_is_stored_got_and_listed<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let mut big = record("guest", "guest", "chatty", 9_000);
    big.logs = (0..3_000).map(|i| format!("{i:>1000}")).collect(); // 3 MB
    let small = record("guest", "guest", "quiet", 8_000);
    store_all(store, &[big.clone(), small.clone()]).await;
    let got = store
        .get_activation("guest", &big.activation_id)
        .await
        .unwrap();
    assert_eq!(got.as_ref(), Some(&big));
    let got = ActivationStore::get(store, &big.activation_id)
        .await
        .unwrap();
    assert_eq!(got.as_ref(), Some(&big));
    let listed = store.list_activations("guest", &query(30)).await.unwrap();
    assert_eq!(listed, [big, small]);
}
