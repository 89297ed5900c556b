//! Actions: puts, revisions, pruning, the ports, listing, corruption.

use std::collections::HashSet;

use super::test_support::*;
use super::*;
use wasmwhisk_core::pool::ports::{ActionStore, StoreError};
use wasmwhisk_protocol::{DocRevision, SemVer};

fn fqn(s: &str) -> FullyQualifiedEntityName {
    FullyQualifiedEntityName::parse(s).unwrap()
}

#[tokio::test]
async fn put_creates_then_updates_with_new_revisions() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let first = db
        .put_action(new_action("guest", "hello", b"v1"), false)
        .await
        .unwrap();
    assert!(first.replaced.is_none());
    let stored = &first.stored;
    assert!(stored.revision.as_str().unwrap().starts_with("1-"));
    assert_eq!(stored.revision.as_str().unwrap().len(), 2 + 32);
    assert_eq!(stored.meta.version, SemVer::default());
    assert!(stored.meta.updated > 0);
    assert_eq!(&*stored.code, b"v1");
    assert_eq!(stored.code_key, action("guest", "hello", b"v1").code_key);

    assert!(matches!(
        db.put_action(new_action("guest", "hello", b"v2"), false)
            .await,
        Err(DbError::Exists)
    ));

    let second = db
        .put_action(new_action("guest", "hello", b"v2"), true)
        .await
        .unwrap();
    assert_eq!(second.stored.revision.generation(), Some(2));
    assert_eq!(second.stored.meta.version, SemVer::new(0, 0, 2).unwrap());
    let replaced = second.replaced.unwrap();
    assert_eq!(replaced.revision, first.stored.revision);
    assert_eq!(&*replaced.code, b"v1");

    let latest = db.get_action(&fqn("guest/hello")).await.unwrap().unwrap();
    assert_eq!(latest.revision, second.stored.revision);
    assert_eq!(&*latest.code, b"v2");
    // An overwrite of a missing action creates it.
    let fresh = db
        .put_action(new_action("guest", "new", b"n"), true)
        .await
        .unwrap();
    assert!(fresh.replaced.is_none());
    assert_eq!(fresh.stored.revision.generation(), Some(1));
}

#[tokio::test]
async fn only_the_latest_two_revisions_are_kept() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let mut revisions = Vec::new();
    for v in 0..4u8 {
        let out = db
            .put_action(new_action("guest", "a", &[v]), true)
            .await
            .unwrap();
        revisions.push(out.stored.revision.clone());
    }
    let a = fqn("guest/a");
    // The two newest load by revision (the newest from the cache, the other
    // from the file); older ones are gone: a queued activation of them
    // fails with DBFetchError.
    let newest = ActionStore::get(&db, &a, &revisions[3]).await.unwrap();
    assert_eq!(&*newest.code, &[3]);
    let previous = ActionStore::get(&db, &a, &revisions[2]).await.unwrap();
    assert_eq!(&*previous.code, &[2]);
    assert_eq!(previous.revision, revisions[2]);
    for old in &revisions[..2] {
        assert!(matches!(
            ActionStore::get(&db, &a, old).await,
            Err(StoreError::NotFound(_))
        ));
    }
    let latest = ActionStore::get(&db, &a, &DocRevision::empty())
        .await
        .unwrap();
    assert_eq!(latest.revision, revisions[3]);
    assert!(matches!(
        ActionStore::get(&db, &fqn("guest/missing"), &DocRevision::empty()).await,
        Err(StoreError::NotFound(_))
    ));
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn delete_removes_every_revision_and_generations_continue() {
    let tmp = TempDb::new();
    let db = tmp.open();
    db.put_action(new_action("guest", "a", b"1"), false)
        .await
        .unwrap();
    let second = db
        .put_action(new_action("guest", "a", b"2"), true)
        .await
        .unwrap();
    assert!(db.get_action(&fqn("guest/a")).await.unwrap().is_some());

    let deleted = db.delete_action(&fqn("guest/a")).await.unwrap().unwrap();
    assert_eq!(deleted.revision, second.stored.revision);
    assert!(db.get_action(&fqn("guest/a")).await.unwrap().is_none());
    assert!(db.delete_action(&fqn("guest/a")).await.unwrap().is_none());

    // Re-created: a new document (version 0.0.1), but the next generation,
    // so it never shares a revision number with the deleted one.
    let again = db
        .put_action(new_action("guest", "a", b"3"), false)
        .await
        .unwrap();
    assert_eq!(again.stored.revision.generation(), Some(3));
    assert_eq!(again.stored.meta.version, SemVer::default());
}

#[tokio::test]
async fn concurrent_puts_of_one_action_each_get_a_revision() {
    let tmp = TempDb::new();
    let db = tmp.open();
    db.put_action(new_action("guest", "a", b"0"), false)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 1..=20u8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.put_action(new_action("guest", "a", &[i]), true)
                .await
                .unwrap()
        }));
    }
    let mut generations = HashSet::new();
    let mut last = None;
    for task in tasks {
        let out = task.await.unwrap();
        let generation = out.stored.revision.generation().unwrap();
        // Each replaced exactly the one before it.
        assert_eq!(
            out.replaced.unwrap().revision.generation(),
            Some(generation - 1)
        );
        assert!(generations.insert(generation));
        if generation == 21 {
            last = Some(out.stored);
        }
    }
    assert_eq!(generations, (2..=21).collect());
    // Last writer wins, in the cache as in the file.
    let last = last.unwrap();
    let cached = db.get_action(&fqn("guest/a")).await.unwrap().unwrap();
    assert_eq!(cached.revision, last.revision);
    assert_eq!(cached.meta.version, SemVer::new(0, 0, 21).unwrap());
    drop(db);
    let db = tmp.open();
    let read = db.get_action(&fqn("guest/a")).await.unwrap().unwrap();
    assert_eq!(
        (read.revision.clone(), read.code.clone()),
        (last.revision.clone(), last.code.clone())
    );
}

#[tokio::test]
async fn list_actions_gives_metadata_by_name() {
    let tmp = TempDb::new();
    let db = tmp.open();
    for (path, name) in [
        ("guest", "b"),
        ("guest", "a"),
        ("guest/pkg", "c"),
        ("other", "a"),
    ] {
        db.put_action(new_action(path, name, b"code"), false)
            .await
            .unwrap();
    }
    db.put_action(new_action("guest", "b", b"code2"), true)
        .await
        .unwrap();
    let guest: EntityPath = "guest".parse().unwrap();
    let list = db.list_actions(&guest, 10, 0).await.unwrap();
    let names: Vec<_> = list
        .iter()
        .map(|a| a.meta.fully_qualified_name().to_string())
        .collect();
    assert_eq!(
        names,
        ["guest/a@0.0.1", "guest/b@0.0.2", "guest/pkg/c@0.0.1"]
    );
    assert!(
        list.iter()
            .all(|a| a.code.is_empty() && a.code_key.is_some())
    );
    let page = db.list_actions(&guest, 1, 1).await.unwrap();
    assert_eq!(page[0].meta.name.as_str(), "b");
    let pkg: EntityPath = "guest/pkg".parse().unwrap();
    assert_eq!(db.list_actions(&pkg, 10, 0).await.unwrap().len(), 1);
    let none: EntityPath = "nobody".parse().unwrap();
    assert!(db.list_actions(&none, 10, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn code_key_is_optional() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let mut js = new_action("guest", "js", b"function main(){}");
    js.action.code_key = None;
    db.put_action(js, false).await.unwrap();
    drop(db);
    let db = tmp.open();
    let read = db.get_action(&fqn("guest/js")).await.unwrap().unwrap();
    assert_eq!(read.code_key, None);
    assert_eq!(&*read.code, b"function main(){}");
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_panic_and_can_be_overwritten() {
    let tmp = TempDb::new();
    let db = tmp.open();
    db.put_action(new_action("guest", "a", b"1"), false)
        .await
        .unwrap();
    db.put_action(new_action("guest", "k", b"1"), false)
        .await
        .unwrap();
    drop(db);
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    conn.execute(
        "UPDATE actions SET document = '{not json' WHERE name = 'a'",
        [],
    )
    .unwrap();
    conn.execute("UPDATE actions SET code_key = x'0102' WHERE name = 'k'", [])
        .unwrap();
    drop(conn);

    let db = tmp.open();
    let err = db.get_action(&fqn("guest/a")).await.unwrap_err();
    assert!(err.to_string().contains("guest/a"), "{err}");
    let err = db.get_action(&fqn("guest/k")).await.unwrap_err();
    assert!(err.to_string().contains("corrupt code key"), "{err}");
    assert!(matches!(
        ActionStore::get(&db, &fqn("guest/a"), &DocRevision::empty()).await,
        Err(StoreError::Unavailable(_))
    ));
    let guest: EntityPath = "guest".parse().unwrap();
    assert!(matches!(
        db.list_actions(&guest, 10, 0).await,
        Err(DbError::Internal(_))
    ));
    assert!(matches!(
        db.delete_action(&fqn("guest/a")).await,
        Err(DbError::Internal(_))
    ));

    // The writer survived; overwriting repairs the action.
    let fixed = db
        .put_action(new_action("guest", "a", b"2"), true)
        .await
        .unwrap();
    assert!(fixed.replaced.is_none());
    assert_eq!(
        &*db.get_action(&fqn("guest/a")).await.unwrap().unwrap().code,
        b"2"
    );
}
