//! Namespaces and their keys: creation, authentication, listing, deletion.

use std::time::Duration;

use wasmwhisk_core::entities::{Credentials, DbError, EntityStore, KEY_LENGTH};
use wasmwhisk_core::pool::ports::{ActionStore, ActivationStore, StoreError};
use wasmwhisk_protocol::ids::now_epoch_ms;
use wasmwhisk_protocol::{DocRevision, SemVer};

use super::StoreAdapter;
use super::actions::assert_no_revision;
use super::fixtures::{action, assert_revision, fqn, names, path, query, record, starts};

/// How long both stores may remember a key that authenticated: the bound on
/// how long a namespace deleted by another process keeps working.
const AUTH_TTL: Duration = Duration::from_secs(5);

/// Asserts that `uuid` is a v4 UUID in its 8-4-4-4-12 lowercase-hex form.
fn assert_uuid_v4(uuid: &str) {
    let groups: Vec<&str> = uuid.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{uuid}");
    assert!(
        groups.iter().all(|g| g
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
        "{uuid}"
    );
    assert!(groups[2].starts_with('4'), "version 4: {uuid}");
}

/// Asserts that `store` authenticates `creds` as their namespace.
async fn assert_authenticates<S: EntityStore>(store: &S, creds: &Credentials) {
    let identity = store
        .authenticate(&creds.uuid, &creds.key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the key of {} authenticates", creds.namespace));
    assert_eq!(identity.namespace.name, creds.namespace);
    assert_eq!(identity.namespace.uuid, creds.uuid);
    assert_eq!(identity.subject, creds.namespace);
    assert_eq!(identity.authkey.api_key(), Some(creds.api_key().as_str()));
}

/// Asserts that `store` refuses `uuid:key` (`None`, not an error).
async fn assert_refused<S: EntityStore>(store: &S, uuid: &str, key: &str) {
    let answer = store.authenticate(uuid, key).await;
    assert!(
        matches!(answer, Ok(None)),
        "{uuid}:{key} is refused: {answer:?}"
    );
}

/// A namespace's credentials are OpenWhisk's guest-key format: a v4 UUID
/// and 64 alphanumerics, `uuid:key`; every namespace gets its own.
pub async fn namespace_credentials_are_openwhisk_guest_keys<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let guest = A::create_namespace(store, "guest").await.unwrap();
    let other = A::create_namespace(store, "other").await.unwrap();
    assert_eq!(guest.namespace, "guest");
    assert_eq!(other.namespace, "other");
    for creds in [&guest, &other] {
        assert_eq!(creds.key.len(), KEY_LENGTH);
        assert!(creds.key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_uuid_v4(&creds.uuid);
        assert_eq!(creds.api_key(), format!("{}:{}", creds.uuid, creds.key));
    }
    assert_ne!(guest.uuid, other.uuid);
    assert_ne!(guest.key, other.key);
}

/// Only a namespace's own `uuid:key` authenticates, as that namespace —
/// on the handle that created it and on another, before and after a
/// success is remembered. A wrong key, another namespace's key, an unknown
/// or odd uuid, and empty parts are refused with `None`, never an error.
pub async fn authenticate_accepts_only_the_namespaces_own_key<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let guest = A::create_namespace(store, "guest").await.unwrap();
    let other = A::create_namespace(store, "other").await.unwrap();
    let fresh = adapter.reopen().await;
    let mut altered = guest.key.clone();
    let last = if altered.ends_with('a') { "b" } else { "a" };
    altered.replace_range(KEY_LENGTH - 1.., last);
    let long = "u".repeat(1_000);
    for handle in [store, &fresh] {
        // Twice: the second time a success may be answered from memory.
        for _ in 0..2 {
            assert_authenticates(handle, &guest).await;
            assert_authenticates(handle, &other).await;
            assert_refused(handle, &guest.uuid, "wrong").await;
            assert_refused(handle, &guest.uuid, &altered).await;
            assert_refused(handle, &guest.uuid, &other.key).await;
            assert_refused(handle, &other.uuid, &guest.key).await;
            assert_refused(handle, &guest.uuid, "").await;
            assert_refused(handle, "no-such-uuid", &guest.key).await;
            assert_refused(handle, "", &guest.key).await;
            assert_refused(handle, "", "").await;
            assert_refused(handle, "a.b *>", &guest.key).await;
            assert_refused(handle, &long, &guest.key).await;
        }
    }
}

/// Creating an existing namespace is `Exists`; a name that is not an
/// entity name is `Invalid`, for `create` and `ensure` alike, and creates
/// nothing.
pub async fn create_refuses_an_existing_or_invalid_namespace<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let guest = A::create_namespace(store, "guest").await.unwrap();
    let again = A::create_namespace(store, "guest").await;
    assert!(matches!(again, Err(DbError::Exists)), "{again:?}");
    for bad in ["not/valid", "", " x", "x ", "-x", "a*b", "a>b"] {
        let created = A::create_namespace(store, bad).await;
        assert!(
            matches!(created, Err(DbError::Invalid(_))),
            "{bad:?}: {created:?}"
        );
        let ensured = A::ensure_namespace(store, bad).await;
        assert!(
            matches!(ensured, Err(DbError::Invalid(_))),
            "{bad:?}: {ensured:?}"
        );
    }
    let listed = A::list_namespaces(store).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].uuid, guest.uuid);
    assert_authenticates(store, &guest).await;
}

/// `ensure` creates a namespace only when it is absent: of two racing
/// calls exactly one gets the credentials (the only time the clear key is
/// seen); later calls answer `None` and the key stays the first one.
pub async fn ensure_creates_a_namespace_once<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let (x, y) = tokio::join!(
        A::ensure_namespace(store, "guest"),
        A::ensure_namespace(store, "guest")
    );
    let created: Vec<Credentials> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(created.len(), 1, "{created:?}");
    let creds = &created[0];
    assert_eq!(creds.namespace, "guest");
    assert_eq!(A::ensure_namespace(store, "guest").await.unwrap(), None);
    let again = A::create_namespace(store, "guest").await;
    assert!(matches!(again, Err(DbError::Exists)), "{again:?}");
    let listed = A::list_namespaces(store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uuid, creds.uuid);
    assert_authenticates(store, creds).await;
}

/// The namespaces list by name (bytewise), each with its key's uuid and its
/// creation time in epoch ms; an empty store lists none.
pub async fn namespaces_list_by_name<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    assert!(A::list_namespaces(store).await.unwrap().is_empty());
    let before = now_epoch_ms();
    let mut created = Vec::new();
    for name in ["other", "guest", "a-team", "Zeta"] {
        created.push(A::create_namespace(store, name).await.unwrap());
    }
    let after = now_epoch_ms();
    let listed = A::list_namespaces(store).await.unwrap();
    let listed_names: Vec<&str> = listed.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(listed_names, ["Zeta", "a-team", "guest", "other"]);
    for info in &listed {
        let creds = created
            .iter()
            .find(|c| c.namespace == info.name)
            .expect("a created namespace");
        assert_eq!(info.uuid, creds.uuid);
        assert!(
            (before..=after).contains(&info.created),
            "{} created at {} (between {before} and {after})",
            info.name,
            info.created
        );
    }
}

/// Deleting a namespace deletes its key (refused at once, here and on a
/// handle that never saw it), its actions (packaged ones too) and its
/// records; a second deletion, like one of an absent namespace, answers
/// false. Other namespaces — even one whose name starts alike — keep
/// everything.
pub async fn deleting_a_namespace_deletes_its_key_actions_and_records<A: StoreAdapter>(
    adapter: &A,
) {
    let store = adapter.store();
    let guest = A::create_namespace(store, "guest").await.unwrap();
    let mut kept = Vec::new();
    for ns in ["other", "guest2"] {
        kept.push(A::create_namespace(store, ns).await.unwrap());
    }
    for (path, name) in [
        ("guest", "hello"),
        ("guest/pkg", "hello"),
        ("other", "hello"),
        ("guest2", "hello"),
    ] {
        store
            .put_action(action(path, name, b"x"), false)
            .await
            .unwrap();
    }
    let gone = record("guest", "guest", "hello", 1);
    let kept_records = [
        record("other", "other", "hello", 1),
        record("guest2", "guest2", "hello", 1),
    ];
    for r in std::iter::once(&gone).chain(&kept_records) {
        ActivationStore::store(store, r).await.unwrap();
    }
    // Remembered as a success: the deletion must forget it.
    assert_authenticates(store, &guest).await;
    assert!(
        store
            .get_action(&fqn("guest/hello"))
            .await
            .unwrap()
            .is_some()
    );

    assert!(A::delete_namespace(store, "guest").await.unwrap());
    assert!(!A::delete_namespace(store, "guest").await.unwrap());
    assert!(!A::delete_namespace(store, "never").await.unwrap());

    let fresh = adapter.reopen().await;
    for handle in [store, &fresh] {
        assert_refused(handle, &guest.uuid, &guest.key).await;
        assert!(
            handle
                .list_actions(&path("guest"), 30, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            handle
                .list_actions(&path("guest/pkg"), 30, 0)
                .await
                .unwrap()
                .is_empty()
        );
        for name in ["guest/hello", "guest/pkg/hello"] {
            assert!(
                handle.get_action(&fqn(name)).await.unwrap().is_none(),
                "{name}"
            );
            let loaded = ActionStore::get(handle, &fqn(name), &DocRevision::empty()).await;
            assert!(matches!(loaded, Err(StoreError::NotFound(_))), "{loaded:?}");
        }
        assert!(
            handle
                .list_activations("guest", &query(30))
                .await
                .unwrap()
                .is_empty()
        );
        let id = &gone.activation_id;
        assert_eq!(handle.get_activation("guest", id).await.unwrap(), None);
        assert_eq!(ActivationStore::get(handle, id).await.unwrap(), None);

        for (creds, r) in kept.iter().zip(&kept_records) {
            let ns = creds.namespace.as_str();
            assert_authenticates(handle, creds).await;
            let actions = handle.list_actions(&path(ns), 30, 0).await.unwrap();
            assert_eq!(names(&actions), [format!("{ns}/hello@0.0.1")]);
            let got = handle.get_activation(ns, &r.activation_id).await.unwrap();
            assert_eq!(got.as_ref(), Some(r));
        }
    }
    let listed: Vec<String> = A::list_namespaces(store)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(listed, ["guest2", "other"]);
}

/// A namespace created again after its deletion is a new one: a new key
/// (the old one stays refused), no actions; an action put again in it is
/// new (version 0.0.1, nothing replaced) and never shares a revision with
/// the deleted one: it continues after its generation.
pub async fn a_recreated_namespace_has_a_new_key_and_new_revisions<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let old = A::create_namespace(store, "guest").await.unwrap();
    assert_authenticates(store, &old).await;
    let deleted = store
        .put_action(action("guest", "hello", b"v1"), false)
        .await
        .unwrap()
        .stored;
    assert!(A::delete_namespace(store, "guest").await.unwrap());

    let renewed = A::create_namespace(store, "guest").await.unwrap();
    assert_ne!(renewed.uuid, old.uuid);
    assert_ne!(renewed.key, old.key);
    let fresh = adapter.reopen().await;
    for handle in [store, &fresh] {
        assert_authenticates(handle, &renewed).await;
        assert_refused(handle, &old.uuid, &old.key).await;
        assert_refused(handle, &renewed.uuid, &old.key).await;
        assert!(
            handle
                .list_actions(&path("guest"), 30, 0)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let again = store
        .put_action(action("guest", "hello", b"v2"), false)
        .await
        .expect("a put in the new namespace");
    assert!(again.replaced.is_none());
    assert_eq!(again.stored.meta.version, SemVer::default());
    assert_ne!(again.stored.revision, deleted.revision);
    assert_revision(&again.stored.revision, 2);
    let hello = fqn("guest/hello");
    assert_no_revision::<A>(store, true, &hello, &deleted.revision).await;
    assert_no_revision::<A>(&fresh, false, &hello, &deleted.revision).await;
}

/// What another handle (the CLI beside a standalone server, another
/// controller) does to namespaces reaches this one: a namespace created
/// there authenticates and lists here at once; deleted there, it is
/// refused there at once and here within the 5 s a store may remember a
/// key that authenticated.
pub async fn namespace_changes_through_another_handle_reach_this_one<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let elsewhere = adapter.reopen().await;
    let creds = A::create_namespace(&elsewhere, "guest").await.unwrap();
    assert_authenticates(store, &creds).await;
    let listed = A::list_namespaces(store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uuid, creds.uuid);
    let again = A::create_namespace(store, "guest").await;
    assert!(matches!(again, Err(DbError::Exists)), "{again:?}");

    assert!(A::delete_namespace(&elsewhere, "guest").await.unwrap());
    assert_refused(&elsewhere, &creds.uuid, &creds.key).await;
    crate::eventually_async(
        AUTH_TTL + Duration::from_secs(2),
        "the key of a namespace deleted elsewhere is refused",
        async || {
            let answer = store.authenticate(&creds.uuid, &creds.key).await;
            matches!(answer, Ok(None)).then_some(())
        },
    )
    .await;
    assert!(A::list_namespaces(store).await.unwrap().is_empty());
}

/// Every character OpenWhisk allows in a name (`[A-Za-z0-9_@ .&-]`) works
/// in a namespace, a package and an action: the key authenticates, the
/// action is put, read, loaded by revision, listed and deleted by its
/// name, and its records are read and filtered by it.
pub async fn names_with_every_allowed_character_round_trip<A: StoreAdapter>(adapter: &A) {
    let store = adapter.store();
    let ns = "me@example.com_dev-1";
    let pkg = "my pkg.v1";
    let name = "a&b @c.d-e_f";
    let creds = A::create_namespace(store, ns).await.unwrap();
    assert_eq!(creds.namespace, ns);
    assert_authenticates(store, &creds).await;
    let listed = A::list_namespaces(store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, ns);

    let full = format!("{ns}/{pkg}/{name}");
    let put = store
        .put_action(action(&format!("{ns}/{pkg}"), name, b"code"), false)
        .await
        .unwrap()
        .stored;
    let got = store.get_action(&fqn(&full)).await.unwrap().unwrap();
    assert_eq!(got.meta, put.meta);
    assert_eq!(&*got.code, b"code");
    let exact = ActionStore::get(store, &fqn(&full), &put.revision)
        .await
        .unwrap();
    assert_eq!(exact.revision, put.revision);
    let expected = [format!("{full}@0.0.1")];
    let in_ns = store.list_actions(&path(ns), 30, 0).await.unwrap();
    assert_eq!(names(&in_ns), expected);
    let in_pkg = store
        .list_actions(&path(&format!("{ns}/{pkg}")), 30, 0)
        .await
        .unwrap();
    assert_eq!(names(&in_pkg), expected);

    let r = record(ns, &format!("{ns}/{pkg}"), name, 1_000);
    ActivationStore::store(store, &r).await.unwrap();
    let got = store.get_activation(ns, &r.activation_id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&r));
    for filter in [name.to_owned(), format!("{pkg}/{name}")] {
        let q = wasmwhisk_core::entities::ActivationQuery {
            name: Some(filter.clone()),
            ..query(30)
        };
        let listed = store.list_activations(ns, &q).await.unwrap();
        assert_eq!(starts(&listed), [1_000], "{filter}");
    }

    let deleted = store.delete_action(&fqn(&full)).await.unwrap().unwrap();
    assert_eq!(deleted.revision, put.revision);
    assert!(A::delete_namespace(store, ns).await.unwrap());
    assert!(A::list_namespaces(store).await.unwrap().is_empty());
    assert_refused(store, &creds.uuid, &creds.key).await;
}
