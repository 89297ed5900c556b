//! The file, its schema, its lock, and namespaces.

use std::time::{Duration, Instant};

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

#[tokio::test]
async fn namespaces_create_authenticate_and_delete() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let guest = db.create_namespace("guest").unwrap();
    let other = db.create_namespace("other").unwrap();
    assert_eq!(guest.namespace, "guest");
    assert_eq!(guest.key.len(), 64);
    assert!(uuid::Uuid::parse_str(&guest.uuid).is_ok());
    assert_eq!(guest.api_key(), format!("{}:{}", guest.uuid, guest.key));
    assert!(matches!(db.create_namespace("guest"), Err(DbError::Exists)));
    assert!(matches!(
        db.create_namespace("bad/name"),
        Err(DbError::Invalid(_))
    ));

    let listed = db.list_namespaces().unwrap();
    let names: Vec<_> = listed.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["guest", "other"]);
    assert_eq!(listed[0].uuid, guest.uuid);
    assert!(listed[0].created > 0);

    // The key is never stored in clear.
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

    let id = db
        .authenticate(&guest.uuid, &guest.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id.namespace.name, "guest");
    assert_eq!(id.namespace.uuid, guest.uuid);
    assert_eq!(id.authkey.api_key(), Some(guest.api_key().as_str()));
    // Cached now; a wrong key is still refused, as are another's key and
    // an unknown uuid.
    assert!(
        db.authenticate(&guest.uuid, "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.authenticate(&guest.uuid, &other.key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(db.authenticate("nope", &guest.key).await.unwrap().is_none());

    assert!(db.delete_namespace("guest").unwrap());
    assert!(!db.delete_namespace("guest").unwrap());
    // Deleted in this process: refused at once, despite the cache.
    assert!(
        db.authenticate(&guest.uuid, &guest.key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.authenticate(&other.uuid, &other.key)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn ensure_namespace_creates_once() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let first = db.ensure_namespace("guest").unwrap();
    assert!(first.is_some());
    assert_eq!(db.ensure_namespace("guest").unwrap(), None);
    assert!(matches!(
        db.ensure_namespace(" x"),
        Err(DbError::Invalid(_))
    ));
    assert_eq!(db.list_namespaces().unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_actions_and_records() {
    let tmp = TempDb::new();
    let db = tmp.open();
    db.create_namespace("guest").unwrap();
    db.create_namespace("other").unwrap();
    db.put_action(new_action("guest", "a", b"1"), false)
        .await
        .unwrap();
    db.put_action(new_action("guest/pkg", "b", b"2"), false)
        .await
        .unwrap();
    db.put_action(new_action("other", "a", b"3"), false)
        .await
        .unwrap();
    db.store_activation(&record("guest", "a", 1_000))
        .await
        .unwrap();
    db.store_activation(&record("other", "a", 1_000))
        .await
        .unwrap();
    let fqn = |s: &str| FullyQualifiedEntityName::parse(s).unwrap();
    assert!(db.get_action(&fqn("guest/a")).await.unwrap().is_some());

    assert!(db.delete_namespace("guest").unwrap());
    assert!(db.get_action(&fqn("guest/a")).await.unwrap().is_none());
    assert!(db.get_action(&fqn("guest/pkg/b")).await.unwrap().is_none());
    assert!(db.get_action(&fqn("other/a")).await.unwrap().is_some());
    let all = ActivationQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(db.list_activations("guest", &all).await.unwrap().is_empty());
    assert_eq!(db.list_activations("other", &all).await.unwrap().len(), 1);
    assert_eq!(db.activation_count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_namespace_deleted_by_another_process_stops_working_within_the_ttl() {
    let tmp = TempDb::new();
    let server = tmp.open();
    let guest = server.create_namespace("guest").unwrap();
    assert!(
        server
            .authenticate(&guest.uuid, &guest.key)
            .await
            .unwrap()
            .is_some()
    );

    // The CLI: a second handle on the same file (it does not hold the lock).
    let (cli, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery, Recovery::default());
    assert!(cli.delete_namespace("guest").unwrap());
    drop(cli);

    let deadline = Instant::now() + cache::AUTH_TTL + Duration::from_secs(2);
    loop {
        if server
            .authenticate(&guest.uuid, &guest.key)
            .await
            .unwrap()
            .is_none()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the deleted key still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
