//! Activation records, the journal of accepted activations and crash
//! recovery (retention is [`super::retention`]).
//!
//! Rows are built ([`RecordRow`], [`PendingRow`]) by the caller, so the JSON
//! serialization runs on the callers' threads and the writer only executes
//! SQL. Storing a record deletes its journal entry in the same transaction;
//! a journal entry is not written for an activation whose record is already
//! stored.

use crate::Sql;
use std::time::{Duration, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::writer::{Applied, Done, Effect};
use super::{ActivationQuery, DbError, Recovery};
use wasmwhisk_core::pool::record::{annotation, fallback_activation_at};
use wasmwhisk_protocol::ids::now_epoch_ms;
use wasmwhisk_protocol::{
    ActivationMessage, ActivationResponse, AuthKey, Identity, WhiskActivation,
};

/// The error of an activation recovered by [`Database::open`](super::Database::open).
pub const RECOVERED_MESSAGE: &str =
    "The activation was accepted but wasmwhisk stopped before it completed.";

/// Epoch ms as SQLite's integer.
pub(super) fn sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A record ready to insert.
#[derive(Debug)]
pub(super) struct RecordRow {
    id: String,
    namespace: String,
    name: String,
    /// The `path` annotation (`ns[/pkg]/act`), for `name=pkg/act` queries.
    path: Option<String>,
    start: i64,
    json: String,
}

impl RecordRow {
    /// The activation id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Serializes `activation`.
    pub fn new(activation: &WhiskActivation) -> Result<Self, DbError> {
        let json = serde_json::to_string(activation).map_err(|e| {
            DbError::Internal(format!(
                "activation {}: cannot serialize: {e}",
                activation.activation_id
            ))
        })?;
        Ok(RecordRow {
            id: activation.activation_id.as_str().to_string(),
            namespace: activation.namespace.to_string(),
            name: activation.name.as_str().to_string(),
            path: activation
                .annotation(annotation::PATH)
                .and_then(|p| p.as_str())
                .map(str::to_string),
            start: sql_ms(activation.start),
            json,
        })
    }
}

/// A journal entry ready to insert: the message without its `content` and
/// without the caller's key (`user.authkey` is `{}`). Recovery needs the
/// ids, the action, the subject and the namespace to write a failed record —
/// never the key, which must not reach the disk (the namespaces table keeps
/// only its hash).
#[derive(Debug)]
pub(super) struct PendingRow {
    id: String,
    message: String,
    kind: String,
    accepted: i64,
}

impl PendingRow {
    /// The activation id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Serializes `msg` without `content` (which may be a megabyte, and is
    /// not needed to record a failure) and without the caller's key.
    pub fn new(msg: &ActivationMessage, kind: &str) -> Result<Self, DbError> {
        let small = ActivationMessage {
            transid: msg.transid.clone(),
            action: msg.action.clone(),
            revision: msg.revision.clone(),
            user: Identity {
                authkey: AuthKey::default(),
                ..msg.user.clone()
            },
            activation_id: msg.activation_id.clone(),
            root_controller_index: msg.root_controller_index.clone(),
            blocking: msg.blocking,
            content: None,
            init_args: msg.init_args.clone(),
            locked_args: msg.locked_args.clone(),
            cause: msg.cause.clone(),
            trace_context: msg.trace_context.clone(),
        };
        let message = serde_json::to_string(&small).map_err(|e| {
            DbError::Internal(format!(
                "activation {}: cannot serialize: {e}",
                msg.activation_id
            ))
        })?;
        Ok(PendingRow {
            id: msg.activation_id.as_str().to_string(),
            message,
            kind: kind.to_string(),
            accepted: sql_ms(now_epoch_ms()),
        })
    }
}

/// Journals an accepted activation, unless its record is already stored.
pub(super) fn insert_pending(conn: &Connection, row: &PendingRow) -> Applied {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO pending (id, message, kind, accepted) \
         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM activations WHERE id = ?1)",
    )?
    .execute(params![row.id, row.message, row.kind, row.accepted])?;
    Ok(Ok(Done::Written))
}

/// Stores a record (replacing one of the same id) and clears its journal entry.
pub(super) fn insert_record(
    conn: &Connection,
    row: &RecordRow,
    effects: &mut Vec<Effect>,
) -> Applied {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO activations (id, namespace, name, path, start, record) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            row.id,
            row.namespace,
            row.name,
            row.path,
            row.start,
            row.json
        ])?;
    let bytes = i64::try_from(row.json.len()).unwrap_or(i64::MAX);
    if inserted == 0 {
        let (namespace, old): (String, i64) = conn
            .prepare_cached(
                "SELECT namespace, octet_length(record) FROM activations WHERE id = ?1",
            )?
            .query_row([&row.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        effects.push(Effect::Records {
            namespace,
            records: -1,
            bytes: -old,
        });
        conn.prepare_cached(
            "UPDATE activations SET namespace = ?2, name = ?3, path = ?4, start = ?5, record = ?6 \
             WHERE id = ?1",
        )?
        .execute(params![
            row.id,
            row.namespace,
            row.name,
            row.path,
            row.start,
            row.json
        ])?;
    }
    effects.push(Effect::Records {
        namespace: row.namespace.clone(),
        records: 1,
        bytes,
    });
    conn.prepare_cached("DELETE FROM pending WHERE id = ?1")?
        .execute([&row.id])?;
    Ok(Ok(Done::Written))
}

/// How many records are stored.
pub(super) fn count(conn: &Connection) -> Result<u64, DbError> {
    let n: i64 = conn
        .query_row("SELECT count(*) FROM activations", [], |row| row.get(0))
        .db()?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Records every journaled activation as failed (whisk internal error,
/// [`RECOVERED_MESSAGE`]), started when it was accepted. A journal entry
/// that cannot be read is dropped with a warning: it cannot become a record,
/// and keeping it would fail every start.
///
/// Every journal entry is deleted here. An entry written by a build before
/// the journal dropped keys holds the caller's `uuid:key`: its row is
/// deleted with `secure_delete=ON` (the freed bytes are zeroed, overflow
/// pages too), and the WAL, which held the row's pages, is checkpointed and
/// truncated to nothing.
pub(super) fn recover(conn: &mut Connection) -> Result<Recovery, DbError> {
    conn.execute_batch("PRAGMA secure_delete=ON").db()?;
    let recovered = recover_rows(conn);
    // Back to the writer's setting whether or not recovery worked.
    conn.execute_batch("PRAGMA secure_delete=FAST").db()?;
    let (recovery, had_keys) = recovered?;
    if had_keys {
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .db()?;
        if busy != 0 {
            tracing::warn!(
                "the WAL could not be truncated after removing journal entries holding API keys (a reader is active); it is overwritten as the database is used"
            );
        }
    }
    Ok(recovery)
}

/// [`recover`]'s transaction; also says whether an entry held a key.
fn recover_rows(conn: &mut Connection) -> Result<(Recovery, bool), DbError> {
    let mut had_keys = false;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let pending: Vec<(String, String, String, i64)> = {
        let mut stmt = tx
            .prepare("SELECT id, message, kind, accepted FROM pending")
            .db()?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .db()?;
        rows.collect::<Result<_, _>>().db()?
    };
    let mut recovered = 0;
    for (id, message, kind, accepted) in pending {
        // This build writes `"authkey":{}`; anything else may hold a key.
        had_keys |= !message.contains(r#""authkey":{}"#);
        let recorded = tx
            .prepare_cached("SELECT 1 FROM activations WHERE id = ?1")
            .db()?
            .exists([&id])
            .db()?;
        match serde_json::from_str::<ActivationMessage>(&message) {
            // Never the case (a record clears its entry in the same
            // transaction), but a real record must never be overwritten.
            _ if recorded => {
                tx.execute("DELETE FROM pending WHERE id = ?1", [&id])
                    .db()?;
            }
            Ok(msg) => {
                let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(accepted).unwrap_or(0));
                let record = fallback_activation_at(
                    &msg,
                    Some(&kind),
                    ActivationResponse::whisk_error(RECOVERED_MESSAGE),
                    at,
                );
                let row = RecordRow::new(&record)?;
                // The effect (count) is not needed: the writer counts after.
                insert_record(&tx, &row, &mut Vec::new()).db()?.map(drop)?;
                recovered += 1;
            }
            Err(error) => {
                tracing::warn!(activation = %id, %error, "dropping an unreadable journal entry");
                tx.execute("DELETE FROM pending WHERE id = ?1", [&id])
                    .db()?;
            }
        }
    }
    tx.commit().db()?;
    Ok((
        Recovery {
            failed_activations: recovered,
        },
        had_keys,
    ))
}

/// Parses a stored record.
fn decode(id: &str, json: &str) -> Result<WhiskActivation, DbError> {
    serde_json::from_str(json)
        .map_err(|e| DbError::Internal(format!("activation {id}: corrupt record: {e}")))
}

/// The record `id`, of `namespace` when given.
pub(super) fn get(
    conn: &Connection,
    namespace: Option<&str>,
    id: &str,
) -> Result<Option<WhiskActivation>, DbError> {
    let json: Option<String> = match namespace {
        Some(ns) => conn
            .prepare_cached("SELECT record FROM activations WHERE id = ?1 AND namespace = ?2")
            .db()?
            .query_row([id, ns], |row| row.get(0))
            .optional(),
        None => conn
            .prepare_cached("SELECT record FROM activations WHERE id = ?1")
            .db()?
            .query_row([id], |row| row.get(0))
            .optional(),
    }
    .map_err(|e| DbError::Internal(format!("activation {id}: {e}")))?;
    json.map(|json| decode(id, &json)).transpose()
}

/// Records of `namespace` matching `query`, newest first.
pub(super) fn list(
    conn: &Connection,
    namespace: &str,
    query: &ActivationQuery,
) -> Result<Vec<WhiskActivation>, DbError> {
    let mut sql = String::from("SELECT id, record FROM activations WHERE namespace = ?1");
    let (name, path_suffix) = match query.name.as_deref().map(|n| n.trim_matches('/')) {
        None | Some("") => (None, None),
        Some(n) => match n.rsplit_once('/') {
            Some((_, last)) => (Some(last.to_string()), Some(format!("/{n}"))),
            None => (Some(n.to_string()), None),
        },
    };
    if name.is_some() {
        sql.push_str(" AND name = ?2");
    }
    if path_suffix.is_some() {
        sql.push_str(" AND substr(path, -length(?3)) = ?3");
    }
    if query.since.is_some() {
        sql.push_str(" AND start >= ?4");
    }
    if query.upto.is_some() {
        sql.push_str(" AND start <= ?5");
    }
    sql.push_str(" ORDER BY start DESC, rowid DESC LIMIT ?6 OFFSET ?7");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(
            params![
                namespace,
                name,
                path_suffix,
                query.since.map(sql_ms),
                query.upto.map(sql_ms),
                i64::try_from(query.limit).unwrap_or(i64::MAX),
                i64::try_from(query.skip).unwrap_or(i64::MAX),
            ],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row.map_err(|e| DbError::Internal(format!("listing activations: {e}")))?;
        // One unreadable record (written by an older build, or damaged on
        // disk) must not hide every other record of the page: it is left
        // out and logged. Read by id, it is still reported corrupt.
        match decode(&id, &json) {
            Ok(record) => out.push(record),
            Err(error) => {
                tracing::warn!(activation = %id, namespace, %error, "skipping an unreadable activation record in a list");
            }
        }
    }
    Ok(out)
}
