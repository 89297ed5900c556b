//! Actions: one row per kept revision, the latest two of each action.
//!
//! The document id `doc` is OpenWhisk's, `ns[/pkg]/act`. A put gives the
//! next generation after the last one ever given to that id (kept in
//! `action_generations`, so a deleted and re-created action does not reuse
//! a revision number a queued activation or a warm sandbox may still hold),
//! then deletes all but the two newest rows.

use crate::Sql;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::{Applied, Done, Effect};
use super::{DbError, PutOutcome};
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_protocol::ids::{now_epoch_ms, random_bytes};
use wasmwhisk_protocol::{DocRevision, EntityPath, WhiskActionMetaData};
use wasmwhisk_sandbox::engine::CacheKey;

/// Revisions kept per action.
pub(super) const KEPT_REVISIONS: i64 = 2;

/// The document id of an action: `ns[/pkg]/act`.
pub(super) fn doc_id(meta: &WhiskActionMetaData) -> String {
    format!("{}/{}", meta.namespace, meta.name)
}

/// An action row as read, before its document is parsed.
struct RawAction {
    revision: String,
    document: String,
    code_key: Option<Vec<u8>>,
    code: Arc<[u8]>,
}

/// Reads the columns `revision, document, code_key, code` (the code only
/// when `with_code`).
fn raw(row: &Row<'_>, with_code: bool) -> rusqlite::Result<RawAction> {
    let code: Arc<[u8]> = if with_code {
        Arc::from(row.get_ref(3)?.as_blob()?)
    } else {
        Arc::from(Vec::new())
    };
    Ok(RawAction {
        revision: row.get(0)?,
        document: row.get(1)?,
        code_key: row.get(2)?,
        code,
    })
}

/// Parses a row; a corrupt one is an error naming the action.
fn decode(doc: &str, raw: RawAction) -> Result<ExecutableAction, DbError> {
    let meta: WhiskActionMetaData = serde_json::from_str(&raw.document).map_err(|e| {
        DbError::Internal(format!(
            "action {doc} revision {}: corrupt document: {e}",
            raw.revision
        ))
    })?;
    let code_key = match raw.code_key {
        None => None,
        Some(bytes) => Some(CacheKey(bytes.try_into().map_err(|bad: Vec<u8>| {
            DbError::Internal(format!(
                "action {doc} revision {}: corrupt code key ({} bytes)",
                raw.revision,
                bad.len()
            ))
        })?)),
    };
    Ok(ExecutableAction {
        meta,
        revision: DocRevision::new(&raw.revision),
        code: raw.code,
        code_key,
    })
}

/// Adds the action's id to a read error.
fn context(doc: &str) -> impl Fn(rusqlite::Error) -> DbError + '_ {
    move |e| DbError::Internal(format!("action {doc}: {e}"))
}

const LATEST: &str = "SELECT revision, document, code_key, code FROM actions \
                      WHERE doc = ?1 ORDER BY generation DESC LIMIT 1";

/// The latest revision of `doc`.
pub(super) fn latest(conn: &Connection, doc: &str) -> Result<Option<ExecutableAction>, DbError> {
    conn.prepare_cached(LATEST)
        .and_then(|mut stmt| stmt.query_row([doc], |row| raw(row, true)).optional())
        .map_err(context(doc))?
        .map(|raw| decode(doc, raw))
        .transpose()
}

/// Revision `revision` of `doc`, if it is still kept.
pub(super) fn at_revision(
    conn: &Connection,
    doc: &str,
    revision: &str,
) -> Result<Option<ExecutableAction>, DbError> {
    conn.prepare_cached(
        "SELECT revision, document, code_key, code FROM actions WHERE doc = ?1 AND revision = ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row([doc, revision], |row| raw(row, true))
            .optional()
    })
    .map_err(context(doc))?
    .map(|raw| decode(doc, raw))
    .transpose()
}

/// The latest revision of each action under `path`, by name, without code.
/// A namespace lists every action in it, packaged ones too (as `wsk action
/// list` does); `ns/pkg` lists the package's.
pub(super) fn list(
    conn: &Connection,
    path: &EntityPath,
    limit: usize,
    skip: usize,
) -> Result<Vec<ExecutableAction>, DbError> {
    let column = if path.len() == 1 { "ns" } else { "path" };
    let sql = format!(
        "SELECT revision, document, code_key FROM actions a WHERE {column} = ?1 \
         AND generation = (SELECT max(generation) FROM actions b WHERE b.doc = a.doc) \
         ORDER BY name, path LIMIT ?2 OFFSET ?3"
    );
    let path_s = path.to_string();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let skip = i64::try_from(skip).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(params![path_s, limit, skip], |row| raw(row, false))
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .map_err(context(&path_s))?;
    rows.into_iter().map(|raw| decode(&path_s, raw)).collect()
}

/// A fresh revision of generation `generation`: `"{generation}-{32 hex}"`.
fn new_revision(generation: i64) -> String {
    let mut raw = [0u8; 16];
    random_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("{generation}-{hex}")
}

/// Stores a new revision of `action` (in the writer's transaction).
pub(super) fn put(
    conn: &Connection,
    action: &ExecutableAction,
    overwrite: bool,
    effects: &mut Vec<Effect>,
) -> Applied {
    let doc = doc_id(&action.meta);
    let old: Option<RawAction> = conn
        .prepare_cached(LATEST)?
        .query_row([&doc], |row| raw(row, true))
        .optional()?;
    if old.is_some() && !overwrite {
        return Ok(Err(DbError::Exists));
    }
    // A corrupt latest revision can be overwritten (that is how it is
    // repaired); it then counts as absent.
    let replaced = old.and_then(|raw| match decode(&doc, raw) {
        Ok(old) => Some(Arc::new(old)),
        Err(error) => {
            tracing::warn!(%error, "overwriting a corrupt action");
            None
        }
    });
    let last: Option<i64> = conn
        .prepare_cached("SELECT generation FROM action_generations WHERE doc = ?1")?
        .query_row([&doc], |row| row.get(0))
        .optional()?;
    let generation = last.unwrap_or(0).saturating_add(1);
    let revision = new_revision(generation);
    let now = now_epoch_ms();
    let mut meta = action.meta.clone();
    meta.updated = now;
    if let Some(old) = &replaced {
        // OpenWhisk bumps the patch on every update.
        meta.version = old.meta.version.up_patch();
    }
    let document = match serde_json::to_string(&meta) {
        Ok(document) => document,
        Err(e) => {
            return Ok(Err(DbError::Internal(format!(
                "action {doc}: cannot serialize: {e}"
            ))));
        }
    };
    conn.prepare_cached(
        "INSERT INTO actions (doc, ns, path, name, generation, revision, updated, document, code_key, code) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        doc,
        meta.namespace.root().as_str(),
        meta.namespace.to_string(),
        meta.name.as_str(),
        generation,
        revision,
        i64::try_from(now).unwrap_or(i64::MAX),
        document,
        action.code_key.as_ref().map(|k| k.0.as_slice()),
        &*action.code,
    ])?;
    conn.prepare_cached(
        "INSERT INTO action_generations (doc, generation) VALUES (?1, ?2) \
         ON CONFLICT (doc) DO UPDATE SET generation = excluded.generation",
    )?
    .execute(params![doc, generation])?;
    conn.prepare_cached(
        "DELETE FROM actions WHERE doc = ?1 AND generation NOT IN \
         (SELECT generation FROM actions WHERE doc = ?1 ORDER BY generation DESC LIMIT ?2)",
    )?
    .execute(params![doc, KEPT_REVISIONS])?;
    let stored = Arc::new(ExecutableAction {
        meta,
        revision: DocRevision::new(&revision),
        code: action.code.clone(),
        code_key: action.code_key,
    });
    effects.push(Effect::CacheAction(doc, stored.clone()));
    Ok(Ok(Done::Put(PutOutcome { stored, replaced })))
}

/// Deletes every revision of `doc` (in the writer's transaction). A corrupt
/// latest revision is not deleted (overwrite it first): the caller must be
/// told what was deleted.
pub(super) fn delete(conn: &Connection, doc: &str, effects: &mut Vec<Effect>) -> Applied {
    let old: Option<RawAction> = conn
        .prepare_cached(LATEST)?
        .query_row([doc], |row| raw(row, true))
        .optional()?;
    let Some(old) = old else {
        return Ok(Ok(Done::Deleted(None)));
    };
    let old = match decode(doc, old) {
        Ok(old) => Arc::new(old),
        Err(e) => return Ok(Err(e)),
    };
    conn.prepare_cached("DELETE FROM actions WHERE doc = ?1")?
        .execute([doc])?;
    effects.push(Effect::ForgetAction(doc.to_string()));
    Ok(Ok(Done::Deleted(Some(old))))
}
