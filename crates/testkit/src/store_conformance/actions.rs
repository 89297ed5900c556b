//! Actions: puts, revisions, versions, loads by revision, lists, deletes.

use std::collections::BTreeSet;

use wasmwhisk_core::entities::{DbError, EntityStore};
use wasmwhisk_core::pool::ports::{ActionStore, StoreError};
use wasmwhisk_protocol::{DocRevision, ExecMetaData, FullyQualifiedEntityName, SemVer};

use super::fixtures::{action, assert_revision, fqn, generation, names, path};
use super::{Difference, StoreAdapter, differs};

/// Asserts that revision `revision` of `name` no longer loads (pruned, or
/// its action deleted): `NotFound`, so that the creation of a sandbox for
/// it fails with `DBFetchError`. `seen`: whether `handle` stored or loaded
/// that revision before.
pub(super) async fn assert_no_revision<A: StoreAdapter>(
    handle: &A::Store,
    seen: bool,
    name: &FullyQualifiedEntityName,
    revision: &DocRevision,
) {
    let loaded = ActionStore::get(handle, name, revision).await;
    if seen && differs::<A>(Difference::SeenRevisionsStayLoadable) {
        // differs: this store keeps serving a revision it has seen from
        // memory; the contract (and every other store) says `NotFound`.
        assert!(
            loaded.as_ref().is_ok_and(|a| a.revision == *revision),
            "{name}@{revision}: {loaded:?} (if the store now answers NotFound, \
             drop Difference::SeenRevisionsStayLoadable from its adapter)"
        );
        return;
    }
    assert!(
        matches!(loaded, Err(StoreError::NotFound(_))),
        "{name}@{revision}: {loaded:?}"
    );
}

/// A first put creates revision 1 (`"1-{32 hex}"`, version 0.0.1, `updated`
/// set, the code and its key as given); a second put without `overwrite`
/// is `Exists` (HTTP 409) and changes nothing; an absent action is `None`.
pub async fn put_creates_then_refuses_without_overwrite<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let first = store
        .put_action(action("guest", "hello", b"v1"), false)
        .await
        .expect("a first put");
    assert!(first.replaced.is_none(), "a create replaces nothing");
    let stored = &first.stored;
    assert_revision(&stored.revision, 1);
    assert_eq!(stored.meta.version, SemVer::default());
    assert!(stored.meta.updated > 0);
    assert_eq!(&*stored.code, b"v1");
    assert_eq!(
        stored.code_key,
        action("guest", "hello", b"v1").action.code_key
    );

    let refused = store
        .put_action(action("guest", "hello", b"v2"), false)
        .await;
    assert!(matches!(refused, Err(DbError::Exists)), "{refused:?}");
    let got = store
        .get_action(&fqn("guest/hello"))
        .await
        .unwrap()
        .expect("the first put is stored");
    assert_eq!(
        got.revision, stored.revision,
        "a refused put changes nothing"
    );
    assert_eq!(&*got.code, b"v1");
    assert_eq!(got.code_key, stored.code_key);
    assert_eq!(got.meta, stored.meta);
    assert!(
        store
            .get_action(&fqn("guest/absent"))
            .await
            .unwrap()
            .is_none()
    );
}

/// A put with `overwrite` over an action is its next revision: the next
/// generation, the version's next patch, the previous revision answered as
/// replaced, and the latest from then on. Over a missing action it creates
/// it.
pub async fn overwrite_makes_the_next_revision_and_bumps_the_patch<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let first = store
        .put_action(action("guest", "hello", b"v1"), false)
        .await
        .unwrap();
    let second = store
        .put_action(action("guest", "hello", b"v2"), true)
        .await
        .expect("an update");
    assert_revision(&second.stored.revision, 2);
    assert_eq!(
        second.stored.meta.version,
        first.stored.meta.version.up_patch()
    );
    assert_eq!(second.stored.meta.version, SemVer::new(0, 0, 2).unwrap());
    assert!(second.stored.meta.updated >= first.stored.meta.updated);
    let replaced = second.replaced.expect("an update replaces");
    assert_eq!(replaced.revision, first.stored.revision);
    assert_eq!(&*replaced.code, b"v1");

    let latest = store
        .get_action(&fqn("guest/hello"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.revision, second.stored.revision);
    assert_eq!(&*latest.code, b"v2");
    assert_eq!(latest.meta.version, SemVer::new(0, 0, 2).unwrap());

    let fresh = store
        .put_action(action("guest", "new", b"n"), true)
        .await
        .expect("an overwrite of a missing action creates it");
    assert!(fresh.replaced.is_none());
    assert_revision(&fresh.stored.revision, 1);
    assert_eq!(fresh.stored.meta.version, SemVer::default());
}

/// What a put stored is what another handle reads, latest or by revision:
/// the whole document (parameters, annotations, limits, `main`,
/// `publish`), the revision, the code and its key — also a JavaScript
/// action's absent key, a blackbox action's empty code, and a packaged
/// action.
pub async fn an_action_reads_back_as_stored_from_a_fresh_handle<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let mut wasm = action("guest/pkg", "hello", b"\0asm code");
    let meta = &mut wasm.action.meta;
    meta.parameters.set("greeting", "hi");
    meta.parameters
        .set("nested", serde_json::json!({"a": [1, 2.5, null]}));
    meta.annotations.set("provide-api-key", false);
    meta.annotations.set("exec", "wasm");
    meta.limits.timeout = 1_000;
    meta.limits.memory = 128;
    meta.limits.concurrency = 4;
    meta.limits.instances = Some(2);
    meta.publish = true;
    if let ExecMetaData::Code { main, .. } = &mut meta.exec {
        *main = Some("entry".into());
    }
    let wasm = store.put_action(wasm, false).await.unwrap().stored;
    let mut js = action("guest", "js", b"function main(){}");
    js.action.code_key = None;
    let js = store.put_action(js, false).await.unwrap().stored;
    assert_eq!(js.code_key, None);
    let mut blackbox = action("guest", "image", b"");
    blackbox.action.code_key = None;
    if let ExecMetaData::Code { kind, image, .. } = &mut blackbox.action.meta.exec {
        *kind = "blackbox".into();
        *image = Some("me/act:1".into());
    }
    let blackbox = store.put_action(blackbox, false).await.unwrap().stored;
    assert!(blackbox.code.is_empty());

    let fresh = adapter.reopen().await;
    for (name, stored) in [
        ("guest/pkg/hello", &wasm),
        ("guest/js", &js),
        ("guest/image", &blackbox),
    ] {
        let got = fresh
            .get_action(&fqn(name))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} is stored"));
        assert_eq!(got.revision, stored.revision, "{name}");
        assert_eq!(got.meta, stored.meta, "{name}");
        assert_eq!(got.code, stored.code, "{name}");
        assert_eq!(got.code_key, stored.code_key, "{name}");
        let latest = ActionStore::get(&fresh, &fqn(name), &DocRevision::empty())
            .await
            .unwrap();
        assert_eq!(latest.revision, stored.revision, "{name}");
        let exact = ActionStore::get(&fresh, &fqn(name), &stored.revision)
            .await
            .unwrap();
        assert_eq!(exact.code, stored.code, "{name}");
        assert_eq!(exact.meta, stored.meta, "{name}");
    }
    let listed = fresh.list_actions(&path("guest"), 30, 0).await.unwrap();
    let listed_meta: Vec<_> = listed.iter().map(|a| &a.meta).collect();
    assert_eq!(listed_meta, [&wasm.meta, &blackbox.meta, &js.meta]);
}

/// Only the latest two revisions of an action are kept: both load by
/// revision (from the writing handle and from another), older ones and
/// unknown revisions are `NotFound` — an activation still queued for them
/// fails with OpenWhisk's `DBFetchError` — and so is an absent action.
pub async fn only_the_latest_two_revisions_load_by_revision<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let mut revisions = Vec::new();
    for v in 0..4u8 {
        let put = store
            .put_action(action("guest", "a", &[v]), true)
            .await
            .unwrap();
        revisions.push(put.stored.revision.clone());
    }
    let a = fqn("guest/a");
    let fresh = adapter.reopen().await;
    for handle in [store, &fresh] {
        for (v, revision) in [(3u8, &revisions[3]), (2, &revisions[2])] {
            let kept = ActionStore::get(handle, &a, revision)
                .await
                .unwrap_or_else(|e| panic!("revision {revision} is kept: {e}"));
            assert_eq!(&*kept.code, &[v]);
            assert_eq!(&kept.revision, revision);
        }
        let seen = std::ptr::eq(handle, store);
        for old in &revisions[..2] {
            assert_no_revision::<A>(handle, seen, &a, old).await;
        }
        let latest = ActionStore::get(handle, &a, &DocRevision::empty())
            .await
            .unwrap();
        assert_eq!(latest.revision, revisions[3]);
        let unknown = ActionStore::get(handle, &a, &DocRevision::new("9-nope")).await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound(_))),
            "{unknown:?}"
        );
        let absent = ActionStore::get(handle, &fqn("guest/missing"), &DocRevision::empty()).await;
        assert!(matches!(absent, Err(StoreError::NotFound(_))), "{absent:?}");
    }
}

/// Concurrent overwrites of one action never lose an update: each is its
/// own successive revision, replacing exactly the one before it, each
/// bumping the version; the last writer's is the latest everywhere.
pub async fn concurrent_overwrites_each_get_the_next_revision<A: StoreAdapter>(adapter: &A) {
    const WRITERS: u8 = 20;
    let store = adapter.store();
    store
        .put_action(action("guest", "a", b"0"), false)
        .await
        .unwrap();
    let tasks: Vec<_> = (1..=WRITERS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put_action(action("guest", "a", &[i]), true).await })
        })
        .collect();
    let mut generations = BTreeSet::new();
    let mut last = None;
    for task in tasks {
        let put = task.await.expect("the task").expect("each put lands");
        let generation = generation(&put.stored);
        let replaced = put.replaced.expect("each put replaces one");
        assert_eq!(
            replaced.revision.generation(),
            Some(generation - 1),
            "each replaced the one before it"
        );
        assert_eq!(put.stored.meta.version, replaced.meta.version.up_patch());
        assert!(generations.insert(generation));
        if generation == u64::from(WRITERS) + 1 {
            last = Some(put.stored);
        }
    }
    assert_eq!(generations, (2..=u64::from(WRITERS) + 1).collect());
    let last = last.expect("the last writer");
    assert_eq!(last.meta.version, SemVer::new(0, 0, 21).unwrap());
    let fresh = adapter.reopen().await;
    for handle in [store, &fresh] {
        let latest = handle.get_action(&fqn("guest/a")).await.unwrap().unwrap();
        assert_eq!(latest.revision, last.revision);
        assert_eq!(latest.code, last.code);
        assert_eq!(latest.meta.version, SemVer::new(0, 0, 21).unwrap());
    }
}

/// A namespace lists the latest revision of each of its actions, packaged
/// ones too, by name then path, without code (its key kept), paged by
/// `limit` and `skip`; a package lists its own; another namespace, even
/// one whose name starts alike, is never listed.
pub async fn actions_list_by_name_then_path_without_code<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    for (path, name) in [
        ("guest", "b"),
        ("guest", "a"),
        ("guest/pkg", "c"),
        ("guest/pkg", "a"),
        ("other", "a"),
        ("guests", "a"),
        ("guest2/pkg", "a"),
    ] {
        store
            .put_action(action(path, name, name.as_bytes()), false)
            .await
            .unwrap();
    }
    let b2 = store
        .put_action(action("guest", "b", b"b2"), true)
        .await
        .unwrap()
        .stored;
    let guest = path("guest");
    let all = store.list_actions(&guest, 30, 0).await.unwrap();
    assert_eq!(
        names(&all),
        [
            "guest/a@0.0.1",
            "guest/pkg/a@0.0.1",
            "guest/b@0.0.2",
            "guest/pkg/c@0.0.1"
        ]
    );
    assert!(
        all.iter()
            .all(|a| a.code.is_empty() && a.code_key.is_some()),
        "a list has no code, but the code's key"
    );
    let gens: Vec<u64> = all.iter().map(|a| generation(a)).collect();
    assert_eq!(gens, [1, 1, 2, 1]);
    assert_eq!(all[2].revision, b2.revision);

    let page = |limit, skip| {
        let guest = guest.clone();
        async move { names(&store.list_actions(&guest, limit, skip).await.unwrap()) }
    };
    assert_eq!(page(2, 1).await, ["guest/pkg/a@0.0.1", "guest/b@0.0.2"]);
    assert_eq!(page(1, 3).await, ["guest/pkg/c@0.0.1"]);
    assert_eq!(page(30, 3).await, ["guest/pkg/c@0.0.1"]);
    assert!(page(30, 4).await.is_empty());
    assert!(page(0, 0).await.is_empty());

    let packaged = store.list_actions(&path("guest/pkg"), 30, 0).await.unwrap();
    assert_eq!(names(&packaged), ["guest/pkg/a@0.0.1", "guest/pkg/c@0.0.1"]);
    let in_pkg = store.list_actions(&path("guest/pkg"), 1, 1).await.unwrap();
    assert_eq!(names(&in_pkg), ["guest/pkg/c@0.0.1"]);
    for empty in ["guest/none", "nobody", "gues"] {
        let listed = store.list_actions(&path(empty), 30, 0).await.unwrap();
        assert!(listed.is_empty(), "{empty}: {:?}", names(&listed));
    }
}

/// A delete answers the latest revision, with its code, and removes every
/// revision (none loads by revision any more, here or elsewhere); a second
/// delete, like one of an absent action, answers `None`. Re-created, the
/// action is new (version 0.0.1, nothing replaced) at the generation after
/// the deleted one's, so it never shares a revision with it.
pub async fn delete_answers_the_latest_and_removes_every_revision<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let first = store
        .put_action(action("guest", "a", b"a1"), false)
        .await
        .unwrap()
        .stored;
    let second = store
        .put_action(action("guest", "a", b"a2"), true)
        .await
        .unwrap()
        .stored;
    store
        .put_action(action("guest", "b", b"b"), false)
        .await
        .unwrap();

    let deleted = store
        .delete_action(&fqn("guest/a"))
        .await
        .unwrap()
        .expect("the deleted revision");
    assert_eq!(deleted.revision, second.revision);
    assert_eq!(&*deleted.code, b"a2");
    assert_eq!(deleted.meta.version, SemVer::new(0, 0, 2).unwrap());
    assert!(store.get_action(&fqn("guest/a")).await.unwrap().is_none());
    assert!(
        store
            .delete_action(&fqn("guest/a"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .delete_action(&fqn("guest/never"))
            .await
            .unwrap()
            .is_none()
    );
    let left = store.list_actions(&path("guest"), 30, 0).await.unwrap();
    assert_eq!(names(&left), ["guest/b@0.0.1"]);

    let fresh = adapter.reopen().await;
    for handle in [store, &fresh] {
        assert!(handle.get_action(&fqn("guest/a")).await.unwrap().is_none());
        let seen = std::ptr::eq(handle, store);
        for revision in [&second.revision, &first.revision] {
            assert_no_revision::<A>(handle, seen, &fqn("guest/a"), revision).await;
        }
        let latest = ActionStore::get(handle, &fqn("guest/a"), &DocRevision::empty()).await;
        assert!(matches!(latest, Err(StoreError::NotFound(_))), "{latest:?}");
    }

    let again = store
        .put_action(action("guest", "a", b"a3"), false)
        .await
        .expect("a deleted action can be created again");
    assert!(again.replaced.is_none());
    assert_revision(&again.stored.revision, 3);
    assert_eq!(again.stored.meta.version, SemVer::default());
}
