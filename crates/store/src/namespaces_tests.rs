//! The file, its schema, its lock, and namespaces as SQLite keeps them. What
//! every store does with namespaces and keys is the conformance suite's, run
//! by tests/store_conformance.rs.

use super::test_support::*;
use super::*;
use wasmwhisk_core::config::StoreConfig;

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn schema_is_created_and_survives_reopen() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let creds = db.create_namespace("guest").unwrap();
    drop(db);
    assert_eq!(user_version(&tmp.path()), schema::SCHEMA_VERSION);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (db, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery, Recovery::default());
    let who = db.authenticate(&creds.uuid, &creds.key).await.unwrap();
    assert_eq!(who.unwrap().namespace.name, "guest");
}

#[test]
fn a_newer_schema_is_refused() {
    let tmp = TempDb::new();
    drop(tmp.open());
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    conn.execute_batch("PRAGMA user_version=99").unwrap();
    drop(conn);
    let err = Database::open(&tmp.path(), &StoreConfig::default()).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let tmp = TempDb::new();
    std::fs::write(tmp.path(), vec![7u8; 4096]).unwrap();
    let err = Database::open(&tmp.path(), &StoreConfig::default()).unwrap_err();
    assert!(matches!(err, DbError::Internal(_)), "{err}");
}

#[test]
fn a_key_is_stored_only_as_its_hash() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let guest = db.create_namespace("guest").unwrap();
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    let stored: Vec<u8> = conn
        .query_row(
            "SELECT key_hash FROM namespaces WHERE name='guest'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stored,
        blake3::hash(guest.key.as_bytes()).as_bytes().to_vec()
    );
}

/// What a deletion removes is the conformance suite's; here, that its
/// records leave the file, and no other namespace's.
#[tokio::test]
async fn deleting_a_namespace_deletes_its_record_rows() {
    let tmp = TempDb::new();
    let db = tmp.open();
    db.create_namespace("guest").unwrap();
    db.create_namespace("other").unwrap();
    let now = wasmwhisk_protocol::ids::now_epoch_ms();
    db.store_activation(&record("guest", "a", now))
        .await
        .unwrap();
    db.store_activation(&record("other", "a", now))
        .await
        .unwrap();
    assert_eq!(db.activation_count().await.unwrap(), 2);
    assert!(db.delete_namespace("guest").unwrap());
    assert_eq!(db.activation_count().await.unwrap(), 1);
}

#[test]
fn namespace_admin_works_without_a_runtime() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let creds = db.create_namespace("guest").unwrap();
    assert_eq!(db.list_namespaces().unwrap()[0].uuid, creds.uuid);
    assert!(db.delete_namespace("guest").unwrap());
    assert!(exists(&schema::lock_path(&tmp.path())));
}
