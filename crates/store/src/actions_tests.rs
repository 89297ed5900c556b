//! Actions as SQLite keeps them: pruned rows, corrupt rows. What every store
//! does with actions (puts, revisions, loads by revision, lists, deletes) is
//! the conformance suite's, run by tests/store_conformance.rs.

use super::test_support::*;
use super::*;
use wasmwhisk_core::pool::ports::{ActionStore, StoreError};
use wasmwhisk_protocol::DocRevision;

fn fqn(s: &str) -> FullyQualifiedEntityName {
    FullyQualifiedEntityName::parse(s).unwrap()
}

/// Which revisions load is the conformance suite's
/// (`only_the_latest_two_revisions_load_by_revision`); here, that the older
/// ones leave the file.
#[tokio::test]
async fn only_the_latest_two_revisions_stay_in_the_file() {
    let tmp = TempDb::new();
    let db = tmp.open();
    for v in 0..4u8 {
        db.put_action(new_action("guest", "a", &[v]), true)
            .await
            .unwrap();
    }
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM actions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
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
