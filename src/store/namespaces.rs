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

use rusqlite::{Connection, OptionalExtension, params};

use super::cache::KnownKey;
use super::writer::{Applied, Done, Effect};
use super::{Credentials, DbError, NamespaceInfo};
use crate::protocol::EntityName;
use crate::protocol::ids::now_epoch_ms;

/// Characters of a key.
const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of a key.
pub(super) const KEY_LENGTH: usize = 64;

/// A fresh 64-character alphanumeric key from the OS's random source
/// (rejection sampling, so every character is equally likely).
pub fn generate_key() -> Result<String, DbError> {
    // 248 = 4 × 62: bytes at or above it would bias the first characters.
    const LIMIT: u8 = 248;
    let mut key = String::with_capacity(KEY_LENGTH);
    let mut buf = [0u8; 96];
    while key.len() < KEY_LENGTH {
        getrandom::fill(&mut buf)
            .map_err(|e| DbError::Internal(format!("no random source for a key: {e}")))?;
        for b in buf.iter().filter(|b| **b < LIMIT) {
            if key.len() == KEY_LENGTH {
                break;
            }
            if let Some(c) = KEY_ALPHABET.get(usize::from(*b) % KEY_ALPHABET.len()) {
                key.push(char::from(*c));
            }
        }
    }
    Ok(key)
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> blake3::Hash {
    blake3::hash(key.as_bytes())
}

/// True when `presented` (the hash of the key a caller sent) is the stored
/// hash `stored`. With no stored hash (an unknown uuid) it still compares
/// one hash, against a fixed one no key hashes to, so an unknown uuid and a
/// known uuid with a wrong key take the same work to reject.
pub fn key_matches(stored: Option<&blake3::Hash>, presented: &blake3::Hash) -> bool {
    const UNKNOWN: blake3::Hash = blake3::Hash::from_bytes([0; 32]);
    let found = stored.is_some();
    // `blake3::Hash` compares in constant time; `&` does not short-circuit.
    (stored.unwrap_or(&UNKNOWN) == presented) & found
}

/// Validates a namespace name.
pub fn valid_name(name: &str) -> Result<EntityName, DbError> {
    EntityName::new(name).map_err(|e| DbError::Invalid(e.to_string()))
}

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
    let mut stmt =
        conn.prepare_cached("SELECT name, uuid, created FROM namespaces ORDER BY name")?;
    let rows = stmt.query_map([], |row| {
        Ok(NamespaceInfo {
            name: row.get(0)?,
            uuid: row.get(1)?,
            created: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
        )?
        .query_row([uuid], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_alphanumerics_and_differ() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_eq!(a.len(), KEY_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_stored_hash_matches_and_an_unknown_uuid_matches_nothing() {
        let key = generate_key().unwrap();
        let stored = hash_key(&key);
        assert!(key_matches(Some(&stored), &hash_key(&key)));
        assert!(!key_matches(Some(&stored), &hash_key("wrong")));
        assert!(!key_matches(None, &hash_key(&key)));
        // not even the fixed hash an unknown uuid is compared against
        let zero = blake3::Hash::from_bytes([0; 32]);
        assert!(!key_matches(None, &zero));
    }
}
