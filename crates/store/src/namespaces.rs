//! Namespaces and their keys.
//!
//! A key is OpenWhisk's guest-key format: a v4 UUID and 64 random
//! alphanumerics, `uuid:key`. Only the BLAKE3 hash of the key part is stored
//! (no salt needed: 64 characters of 62 symbols is ~381 bits of entropy, so
//! the hash cannot be reversed by guessing), and hashes are compared in
//! constant time (`blake3::Hash`'s `==`).
//!
//! A rejected key must not tell whether its uuid exists: every check that
//! missed the cache reads the uuid's row and calls [`key_matches`], which
//! compares one hash whether or not a row was found.

use crate::Sql;
use rusqlite::{Connection, OptionalExtension, params};

use super::cache::KnownKey;
use super::writer::{Applied, Done, Effect};
use super::{Credentials, DbError, NamespaceInfo, generate_key, hash_key};
use wasmwhisk_protocol::EntityName;
use wasmwhisk_protocol::ids::now_epoch_ms;

/// Creates namespace `name` with a fresh key (in the writer's transaction).
pub(super) fn create(conn: &Connection, name: &EntityName, if_absent: bool) -> Applied {
    let exists = conn
        .prepare_cached("SELECT 1 FROM namespaces WHERE name = ?1")?
        .exists([name.as_str()])?;
    if exists {
        return Ok(if if_absent {
            Ok(Done::Created(None))
        } else {
            Err(DbError::Exists)
        });
    }
    let key = match generate_key() {
        Ok(key) => key,
        Err(e) => return Ok(Err(e)),
    };
    let uuid = uuid::Uuid::new_v4().to_string();
    let created = i64::try_from(now_epoch_ms()).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO namespaces (name, uuid, key_hash, created) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        name.as_str(),
        uuid,
        hash_key(&key).as_bytes().as_slice(),
        created
    ])?;
    Ok(Ok(Done::Created(Some(Credentials {
        namespace: name.as_str().to_string(),
        uuid,
        key,
    }))))
}

/// Deletes namespace `name`, its actions and its activation records (in
/// the writer's transaction).
pub(super) fn delete(conn: &Connection, name: &str, effects: &mut Vec<Effect>) -> Applied {
    let uuid: Option<String> = conn
        .prepare_cached("SELECT uuid FROM namespaces WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?;
    let Some(uuid) = uuid else {
        return Ok(Ok(Done::NamespaceDeleted(false)));
    };
    conn.execute("DELETE FROM namespaces WHERE name = ?1", [name])?;
    conn.execute("DELETE FROM actions WHERE ns = ?1", [name])?;
    let (records, bytes): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(octet_length(record)), 0) FROM activations \
         WHERE namespace = ?1",
        [name],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    conn.execute("DELETE FROM activations WHERE namespace = ?1", [name])?;
    effects.push(Effect::ForgetAuth(uuid));
    effects.push(Effect::ForgetAllActions);
    effects.push(Effect::Records {
        namespace: name.to_string(),
        records: -records,
        bytes: -bytes,
    });
    Ok(Ok(Done::NamespaceDeleted(true)))
}

/// Every namespace, by name.
pub(super) fn list(conn: &Connection) -> Result<Vec<NamespaceInfo>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, uuid, created FROM namespaces ORDER BY name")
        .db()?;
    let rows = stmt
        .query_map([], |row| {
            Ok(NamespaceInfo {
                name: row.get(0)?,
                uuid: row.get(1)?,
                created: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            })
        })
        .db()?;
    rows.collect::<Result<Vec<_>, _>>().db()
}

/// The namespace and key hash of key uuid `uuid`.
///
/// An unknown uuid reads and decodes a stand-in row (an empty name, which
/// no namespace has), so that it costs what a known one does: both run the
/// same one index lookup (a left join from a one-row table) and decode one
/// row.
pub(super) fn lookup(conn: &Connection, uuid: &str) -> Result<Option<KnownKey>, DbError> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT coalesce(n.name, ''), coalesce(n.key_hash, zeroblob(32)) \
             FROM (SELECT ?1 AS uuid) AS q LEFT JOIN namespaces AS n ON n.uuid = q.uuid",
        )
        .db()?
        .query_row([uuid], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .db()?;
    let Some((namespace, hash)) = row.filter(|(name, _)| !name.is_empty()) else {
        return Ok(None);
    };
    let hash: [u8; 32] = hash.try_into().map_err(|bad: Vec<u8>| {
        DbError::Internal(format!(
            "namespace {namespace}: corrupt key hash ({} bytes)",
            bad.len()
        ))
    })?;
    Ok(Some(KnownKey {
        namespace: namespace.into(),
        hash: blake3::Hash::from_bytes(hash),
    }))
}
