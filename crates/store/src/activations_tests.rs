//! Activation records as SQLite keeps them: the journal, recovery,
//! retention, corrupt rows, and the group commit under load. What every
//! store does with records (read by id, listed with every query field) is
//! the conformance suite's, run by tests/store_conformance.rs.

use std::time::{Duration, Instant};

use super::test_support::*;
use super::*;
use wasmwhisk_core::config::StoreConfig;
use wasmwhisk_core::controller::Journal;
use wasmwhisk_core::pool::ports::ActivationStore;
use wasmwhisk_protocol::ids::now_epoch_ms;
use wasmwhisk_protocol::{ActivationMessage, StatusCode};

fn pending_rows(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM pending", [], |r| r.get(0))
        .unwrap()
}

fn query(limit: usize) -> ActivationQuery {
    ActivationQuery {
        limit,
        ..Default::default()
    }
}

#[tokio::test]
async fn storing_the_record_clears_the_journal() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let a = action("guest", "hello", b"code");
    let msg = message(&a, "guest");
    db.accepted(&msg, "wasm").await.unwrap();
    assert_eq!(pending_rows(&tmp.path()), 1);
    // The journal keeps the message without its content.
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    let stored: String = conn
        .query_row("SELECT message FROM pending", [], |r| r.get(0))
        .unwrap();
    let stored: ActivationMessage = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored.content, None);
    assert_eq!(stored.activation_id, msg.activation_id);

    let mut record = record("guest", "hello", 5_000);
    record.activation_id = msg.activation_id.clone();
    ActivationStore::store(&db, &record).await.unwrap();
    assert_eq!(pending_rows(&tmp.path()), 0);
    let got = ActivationStore::get(&db, &msg.activation_id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&record));

    // A journal entry that comes after its record is not written.
    db.accepted(&msg, "wasm").await.unwrap();
    assert_eq!(pending_rows(&tmp.path()), 0);

    // A second store of the same id replaces the record.
    record.logs = vec!["line".into()];
    db.store_activation(&record).await.unwrap();
    assert_eq!(db.activation_count().await.unwrap(), 1);
    let got = db
        .get_activation("guest", &msg.activation_id)
        .await
        .unwrap();
    assert_eq!(got.unwrap().logs, ["line"]);
}

#[tokio::test]
async fn the_journal_port_is_queued_before_it_returns() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let a = action("guest", "hello", b"code");
    let msg = message(&a, "guest");
    let durable = Journal::accepted(&db, &msg, "wasm");
    let mut record = record("guest", "hello", 5_000);
    record.activation_id = msg.activation_id.clone();
    // Queued after the journal entry, so it clears it.
    ActivationStore::store(&db, &record).await.unwrap();
    durable.await.unwrap().unwrap();
    assert_eq!(pending_rows(&tmp.path()), 0);
}

#[tokio::test]
async fn open_records_activations_left_in_flight_as_failed() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let a = action("guest/pkg", "hello", b"code");
    let lost = message(&a, "caller");
    let done = message(&a, "caller");
    let before = now_epoch_ms();
    db.accepted(&lost, "nodejs:20").await.unwrap();
    db.accepted(&done, "nodejs:20").await.unwrap();
    let mut record = record("caller", "hello", before);
    record.activation_id = done.activation_id.clone();
    db.store_activation(&record).await.unwrap();
    // A second handle (the CLI) must not recover the live server's journal.
    let (cli, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery.failed_activations, 0);
    drop(cli);
    drop(db); // the crash: the journal entry of `lost` stays

    let (db, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery.failed_activations, 1);
    assert_eq!(pending_rows(&tmp.path()), 0);
    let failed = db
        .get_activation("caller", &lost.activation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.response.status_code, StatusCode::WhiskError);
    assert_eq!(
        failed.response.result,
        Some(serde_json::json!({"error": RECOVERED_MESSAGE}))
    );
    assert_eq!(failed.name.as_str(), "hello");
    assert_eq!(
        failed.annotation("kind"),
        Some(&serde_json::json!("nodejs:20"))
    );
    assert_eq!(
        failed.annotation("path"),
        Some(&serde_json::json!("guest/pkg/hello"))
    );
    assert!(failed.start >= before && failed.start <= now_epoch_ms());
    // The completed one is untouched, and a second open finds nothing.
    let kept = db
        .get_activation("caller", &done.activation_id)
        .await
        .unwrap();
    assert_eq!(kept.as_ref(), Some(&record));
    drop(db);
    let (_db, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery.failed_activations, 0);
}

#[tokio::test]
async fn an_unreadable_journal_entry_is_dropped_at_open() {
    let tmp = TempDb::new();
    drop(tmp.open());
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    conn.execute(
        "INSERT INTO pending (id, message, kind, accepted) VALUES ('x', '{bad', 'wasm', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let (db, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery.failed_activations, 0);
    assert_eq!(pending_rows(&tmp.path()), 0);
    assert_eq!(db.activation_count().await.unwrap(), 0);
}

#[tokio::test]
async fn retention_by_count_keeps_the_newest() {
    let tmp = TempDb::new();
    let config = StoreConfig {
        max_activations: 10,
        ..StoreConfig::default()
    };
    let now = now_epoch_ms();
    let (db, _) = tmp.open_with(&config);
    for i in 0..25 {
        db.store_activation(&record("guest", "a", now - 100_000 + i * 1000))
            .await
            .unwrap();
    }
    // The writer enforces it at most once a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.activation_count().await.unwrap() > 10 {
        assert!(Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept = db.list_activations("guest", &query(100)).await.unwrap();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept.last().unwrap().start, now - 100_000 + 15 * 1000);

    // And at open.
    drop(db);
    let small = StoreConfig {
        max_activations: 3,
        ..StoreConfig::default()
    };
    let (db, _) = tmp.open_with(&small);
    let kept = db.list_activations("guest", &query(100)).await.unwrap();
    let starts: Vec<_> = kept.iter().map(|r| r.start).collect();
    assert_eq!(starts, [now - 76_000, now - 77_000, now - 78_000]);
}

#[tokio::test]
async fn retention_by_age_at_open() {
    let tmp = TempDb::new();
    let now = now_epoch_ms();
    let db = tmp.open();
    db.create_namespace("guest").unwrap();
    for start in [now - 7_200_000, now - 3_000_000, now - 1000, now] {
        db.store_activation(&record("guest", "a", start))
            .await
            .unwrap();
    }
    drop(db);
    let config = StoreConfig {
        max_activation_age: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let (db, _) = tmp.open_with(&config);
    let kept = db.list_activations("guest", &query(100)).await.unwrap();
    let starts: Vec<_> = kept.iter().map(|r| r.start).collect();
    assert_eq!(starts, [now, now - 1000, now - 3_000_000]);
    assert_eq!(db.activation_count().await.unwrap(), 3);
}

#[tokio::test]
async fn a_corrupt_record_is_an_error() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let r = record("guest", "a", 1000);
    db.store_activation(&r).await.unwrap();
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    conn.execute("UPDATE activations SET record = '[]'", [])
        .unwrap();
    drop(conn);
    let err = db
        .get_activation("guest", &r.activation_id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(r.activation_id.as_str()), "{err}");
    // A list leaves it out (and logs it) rather than failing whole.
    assert!(
        db.list_activations("guest", &query(10))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The group commit under load: 10,000 records stored by 64 concurrent
/// tasks on two worker threads. Asserts correctness; prints the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_records_are_all_stored() {
    const TASKS: u64 = 64;
    const RECORDS: u64 = 10_000;
    let tmp = TempDb::new();
    let db = tmp.open();
    let template = record("guest", "hello", now_epoch_ms());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let db = db.clone();
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (t..RECORDS).step_by(usize::try_from(TASKS).unwrap()) {
                let mut r = template.clone();
                r.activation_id = wasmwhisk_protocol::ActivationId::generate();
                r.start += i;
                ActivationStore::store(&db, &r).await.unwrap();
                ids.push(r.activation_id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    println!(
        "stored {RECORDS} records in {elapsed:?}: {:.0} records/s",
        RECORDS as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(ids.len() as u64, RECORDS);
    assert_eq!(db.activation_count().await.unwrap(), RECORDS);
    for id in ids.iter().step_by(997) {
        let got = db.get_activation("guest", id).await.unwrap().unwrap();
        assert_eq!(&got.activation_id, id);
    }
    let newest = db.list_activations("guest", &query(1)).await.unwrap();
    assert_eq!(newest[0].start, template.start + RECORDS - 1);
}

#[test]
fn the_list_and_retention_queries_use_an_index() {
    let tmp = TempDb::new();
    drop(tmp.open());
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    for (sql, index) in [
        (
            "SELECT record FROM activations WHERE namespace = 'g' AND start >= 1 \
             ORDER BY start DESC, rowid DESC LIMIT 30",
            "activations_by_namespace",
        ),
        (
            "SELECT record FROM activations WHERE namespace = 'g' AND name = 'a' \
             ORDER BY start DESC, rowid DESC LIMIT 30",
            "activations_by_name",
        ),
        (
            "DELETE FROM activations WHERE namespace IN (SELECT name FROM namespaces) AND start < 5",
            "activations_by_namespace",
        ),
    ] {
        let plan = plan(sql);
        assert!(plan.contains(index), "{sql}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
    }
}

/// A write that fails inside a batch fails alone: the batch is rolled back,
/// its writes retried one by one, and the writer goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_fails_alone_and_the_writer_survives() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON activations WHEN NEW.name = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
    )
    .unwrap();
    drop(conn);
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let db = db.clone();
        let name = if i == 100 { "poison" } else { "fine" };
        let r = record("guest", name, now_epoch_ms() + i);
        tasks.push(tokio::spawn(async move {
            (name, db.store_activation(&r).await)
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            ("poison", outcome) => {
                let err = outcome.unwrap_err();
                assert!(err.to_string().contains("poisoned"), "{err}");
            }
            (_, outcome) => outcome.unwrap(),
        }
    }
    assert_eq!(db.activation_count().await.unwrap(), 199);
    db.store_activation(&record("guest", "after", now_epoch_ms()))
        .await
        .unwrap();
    assert_eq!(db.activation_count().await.unwrap(), 200);
}

/// True when `needle` is in the database file or its WAL.
fn on_disk(path: &Path, needle: &[u8]) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), std::path::PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

#[tokio::test]
async fn the_journal_never_holds_the_callers_key() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let a = action("guest", "hello", b"code");
    let mut msg = message(&a, "guest");
    msg.user = wasmwhisk_protocol::Identity::basic("guest", "some-uuid", "SECRETKEY0123456789");
    db.accepted(&msg, "wasm").await.unwrap();
    assert_eq!(pending_rows(&tmp.path()), 1);
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    let stored: String = conn
        .query_row("SELECT message FROM pending", [], |r| r.get(0))
        .unwrap();
    assert!(!stored.contains("SECRETKEY"), "{stored}");
    let stored: ActivationMessage = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored.user.authkey, wasmwhisk_protocol::AuthKey::default());
    assert_eq!(stored.user.namespace, msg.user.namespace);
    drop(conn);
    drop(db);
    assert!(!on_disk(&tmp.path(), b"SECRETKEY"));
    // Recovery needs nothing else.
    let (_db, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery.failed_activations, 1);
}

#[tokio::test]
async fn an_old_journal_entry_with_a_key_is_recovered_and_its_key_erased() {
    let tmp = TempDb::new();
    drop(tmp.open());
    // An entry as the builds before wrote it: the whole message, key and all.
    let a = action("guest", "hello", b"code");
    let mut msg = message(&a, "guest");
    msg.user = wasmwhisk_protocol::Identity::basic("guest", "some-uuid", "OLDSECRET0123456789");
    msg.content = None;
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    conn.execute(
        "INSERT INTO pending (id, message, kind, accepted) VALUES (?1, ?2, 'wasm', 0)",
        [
            msg.activation_id.as_str().to_string(),
            serde_json::to_string(&msg).unwrap(),
        ],
    )
    .unwrap();
    drop(conn);
    assert!(on_disk(&tmp.path(), b"OLDSECRET"));
    let (db, recovery) = tmp.open_with(&StoreConfig::default());
    assert_eq!(recovery.failed_activations, 1);
    assert_eq!(pending_rows(&tmp.path()), 0);
    assert!(!on_disk(&tmp.path(), b"OLDSECRET"));
    let failed = db
        .get_activation("guest", &msg.activation_id)
        .await
        .unwrap();
    assert!(failed.is_some());
}

#[tokio::test]
async fn a_list_skips_an_unreadable_record() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let now = now_epoch_ms();
    for i in 0..3 {
        db.store_activation(&record("guest", "a", now + i))
            .await
            .unwrap();
    }
    let conn = rusqlite::Connection::open(tmp.path()).unwrap();
    conn.execute(
        "INSERT INTO activations (id, namespace, name, path, start, record) \
         VALUES ('0123456789abcdef0123456789abcdef', 'guest', 'a', NULL, ?1, '{\"broken\":')",
        [i64::try_from(now + 1).unwrap()],
    )
    .unwrap();
    drop(conn);
    let listed = db.list_activations("guest", &query(100)).await.unwrap();
    assert_eq!(listed.len(), 3);
    let id = ActivationId::parse("0123456789abcdef0123456789abcdef").unwrap();
    assert!(db.get_activation("guest", &id).await.is_err());
}

/// Waits until the writer's housekeeping brought the count to `want`.
async fn until_count(db: &Database, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.activation_count().await.unwrap() != want {
        assert!(Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn retention_by_count_is_per_namespace() {
    let tmp = TempDb::new();
    let config = StoreConfig {
        max_activations: 10,
        ..StoreConfig::default()
    };
    let now = now_epoch_ms();
    let (db, _) = tmp.open_with(&config);
    for i in 0..5 {
        db.store_activation(&record("quiet", "a", now - 100_000 + i))
            .await
            .unwrap();
    }
    for i in 0..30 {
        db.store_activation(&record("busy", "a", now - 50_000 + i))
            .await
            .unwrap();
    }
    until_count(&db, 15).await;
    assert_eq!(
        db.list_activations("quiet", &query(100))
            .await
            .unwrap()
            .len(),
        5
    );
    let busy = db.list_activations("busy", &query(100)).await.unwrap();
    assert_eq!(busy.len(), 10);
    assert_eq!(busy.last().unwrap().start, now - 50_000 + 20);
}

#[tokio::test]
async fn the_byte_budget_trims_the_largest_namespace_oldest_first() {
    let tmp = TempDb::new();
    let now = now_epoch_ms();
    let one = serde_json::to_string(&record("quiet", "a", now))
        .unwrap()
        .len() as u64;
    let db = tmp.open();
    for i in 0..4 {
        db.store_activation(&record("quiet", "a", now - 100_000 + i))
            .await
            .unwrap();
    }
    for i in 0..30 {
        db.store_activation(&record("noisy", "a", now - 50_000 + i))
            .await
            .unwrap();
    }
    drop(db);
    // Room for 20.5 records: trimmed to 90% of it, 18, all from `noisy`.
    let config = StoreConfig {
        max_bytes: wasmwhisk_core::config::ByteSize::from_bytes(20 * one + one / 2),
        ..StoreConfig::default()
    };
    let (db, _) = tmp.open_with(&config);
    assert_eq!(db.activation_count().await.unwrap(), 18);
    assert_eq!(
        db.list_activations("quiet", &query(100))
            .await
            .unwrap()
            .len(),
        4
    );
    let busy = db.list_activations("noisy", &query(100)).await.unwrap();
    assert_eq!(busy.len(), 14);
    assert_eq!(busy.last().unwrap().start, now - 50_000 + 16);
}
