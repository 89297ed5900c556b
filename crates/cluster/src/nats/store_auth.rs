//! Namespaces and their keys in `{prefix}-auth`: `ns.{name}` →
//! `{"uuid","created"}`, `key.{uuid}` → `{"namespace","hash"}` (the BLAKE3
//! hash of the key, hex; the key itself is never stored, as in standalone).
//!
//! Creating a namespace writes its key first, then the namespace with a KV
//! create (only if absent), which decides a race between creators: only the
//! winner gets credentials; a loser removes the key it wrote. So a visible
//! namespace always has a working key. A key authenticates only while its
//! namespace still names it, so a key left behind (a loser that died before
//! removing it, a deletion cut short) never does.
//!
//! As in standalone, a rejected key does not tell whether its uuid exists:
//! the cache answers only the key that authenticated, and every other check
//! reads `key.{uuid}` and compares one hash
//! ([`key_matches`](wasmwhisk_core::entities::key_matches)), found or not.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{CreateErrorKind, Operation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::escape::{escape_token, unescape_token};
use super::actions::is_value;
use super::{NatsStore, corrupt, nats_error, scan};
use wasmwhisk_core::entities::{
    Credentials, DbError, NamespaceInfo, generate_key, hash_key, key_matches, valid_name,
};
use wasmwhisk_protocol::Identity;
use wasmwhisk_protocol::ids::now_epoch_ms;

/// How long a positive authentication is trusted: the bound on how long a
/// namespace deleted elsewhere keeps working here.
pub(super) const AUTH_TTL: Duration = Duration::from_secs(5);

/// Most keys remembered at once.
const AUTH_CAPACITY: u64 = 10_000;

/// Longer key uuids are not looked up (a uuid is 36 characters).
const MAX_UUID: usize = 256;

#[derive(Debug, Serialize, Deserialize)]
struct NamespaceDoc {
    uuid: String,
    /// Epoch ms.
    created: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyDoc {
    namespace: String,
    /// BLAKE3 of the key, hex.
    hash: String,
}

/// A key that authenticated.
#[derive(Clone, Debug)]
struct KnownKey {
    namespace: Arc<str>,
    hash: blake3::Hash,
}

/// Positive authentications by key uuid, for [`AUTH_TTL`].
pub(super) struct AuthCache {
    keys: moka::sync::Cache<String, KnownKey>,
}

impl AuthCache {
    pub(super) fn new() -> Self {
        AuthCache {
            keys: moka::sync::Cache::builder()
                .max_capacity(AUTH_CAPACITY)
                .time_to_live(AUTH_TTL)
                .build(),
        }
    }
}

fn namespace_key(name: &str) -> String {
    format!("ns.{}", escape_token(name))
}

fn uuid_key(uuid: &str) -> String {
    format!("key.{}", escape_token(uuid))
}

impl NatsStore {
    /// The value of auth key `key`, with its KV revision.
    async fn auth_value<T: DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, DbError> {
        match self.inner.auth.kv.entry(key).await {
            Ok(Some(entry)) if entry.operation == Operation::Put => {
                serde_json::from_slice(&entry.value)
                    .map(Some)
                    .map_err(|e| corrupt(format_args!("{what} (key {key})"), e))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(nats_error(format_args!("reading {what}"), e)),
        }
    }

    /// Whether namespace key `ns_key` holds a namespace.
    async fn namespace_exists(&self, ns_key: &str, name: &str) -> Result<bool, DbError> {
        self.inner
            .auth
            .kv
            .entry(ns_key)
            .await
            .map(|e| e.is_some_and(|e| e.operation == Operation::Put))
            .map_err(|e| nats_error(format_args!("reading namespace {name}"), e))
    }

    /// Creates namespace `name` with a fresh key; when it exists, `None` if
    /// `if_absent`, else `Exists`.
    pub(super) async fn create_namespace_if(
        &self,
        name: &str,
        if_absent: bool,
    ) -> Result<Option<Credentials>, DbError> {
        let name = valid_name(name)?;
        let name = name.as_str();
        let exists = || {
            if if_absent {
                Ok(None)
            } else {
                Err(DbError::Exists)
            }
        };
        let ns_key = namespace_key(name);
        if self.namespace_exists(&ns_key, name).await? {
            return exists();
        }
        let key = generate_key()?;
        let uuid = uuid::Uuid::new_v4().to_string();
        let what = format!("creating namespace {name}");
        let serialize = |e: serde_json::Error| DbError::Internal(format!("{what}: {e}"));
        let key_doc = serde_json::to_vec(&KeyDoc {
            namespace: name.to_owned(),
            hash: hash_key(&key).to_hex().to_string(),
        })
        .map_err(serialize)?;
        let ns_doc = serde_json::to_vec(&NamespaceDoc {
            uuid: uuid.clone(),
            created: now_epoch_ms(),
        })
        .map_err(serialize)?;
        let kv = &self.inner.auth.kv;
        kv.create(uuid_key(&uuid), key_doc.into())
            .await
            .map_err(|e| nats_error(&what, e))?;
        match kv.create(&ns_key, ns_doc.into()).await {
            Ok(_) => Ok(Some(Credentials {
                namespace: name.to_owned(),
                uuid,
                key,
            })),
            Err(e) => {
                if let Err(error) = kv.purge(uuid_key(&uuid)).await {
                    tracing::warn!(namespace = name, %error, "removing an unused key failed; it never authenticates");
                }
                if e.kind() == CreateErrorKind::AlreadyExists {
                    exists()
                } else {
                    Err(nats_error(what, e))
                }
            }
        }
    }

    /// Every namespace, by name.
    pub(super) async fn namespaces(&self) -> Result<Vec<NamespaceInfo>, DbError> {
        let bucket = &self.inner.auth;
        let prefix = format!("{}ns.", bucket.prefix);
        let messages = scan::last_per_subject(&bucket.stream, format!("{prefix}*"), false, 1)
            .await
            .map_err(|e| nats_error("listing the namespaces", e))?;
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            if !is_value(message.headers.as_ref()) {
                continue;
            }
            let token = message.subject.strip_prefix(prefix.as_str()).unwrap_or("");
            let name = unescape_token(token).map_err(|e| corrupt("a namespace key", e))?;
            let doc: NamespaceDoc = serde_json::from_slice(&message.payload)
                .map_err(|e| corrupt(format_args!("namespace {name}"), e))?;
            out.push(NamespaceInfo {
                name,
                uuid: doc.uuid,
                created: doc.created,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes namespace `name`: its actions and records first, then its
    /// key and itself (so a deletion cut short can be run again).
    pub(super) async fn remove_namespace(&self, name: &str) -> Result<bool, DbError> {
        let ns_key = namespace_key(name);
        if !self.namespace_exists(&ns_key, name).await? {
            return Ok(false);
        }
        // A corrupt document still gets deleted; its key then never
        // authenticates (it must be named by its namespace).
        let doc = self
            .auth_value::<NamespaceDoc>(&ns_key, "namespace")
            .await
            .ok()
            .flatten();
        self.remove_actions_of(name).await?;
        self.remove_records_of(name).await?;
        let what = format!("deleting namespace {name}");
        let kv = &self.inner.auth.kv;
        if let Some(doc) = &doc {
            kv.purge(uuid_key(&doc.uuid))
                .await
                .map_err(|e| nats_error(&what, e))?;
        }
        kv.purge(&ns_key).await.map_err(|e| nats_error(&what, e))?;
        if let Some(doc) = doc {
            self.inner.known_keys.keys.invalidate(&doc.uuid);
        }
        Ok(true)
    }

    /// The identity of API key `uuid:key` (see the module doc).
    pub(super) async fn check_key(
        &self,
        uuid: &str,
        key: &str,
    ) -> Result<Option<Identity>, DbError> {
        if uuid.len() > MAX_UUID {
            return Ok(None);
        }
        let hash = hash_key(key);
        let cached = self.inner.known_keys.keys.get(uuid);
        if let Some(known) = cached.filter(|k| key_matches(Some(&k.hash), &hash)) {
            return Ok(Some(Identity::basic(&known.namespace, uuid, key)));
        }
        let doc = self
            .auth_value::<KeyDoc>(&uuid_key(uuid), "an API key")
            .await?;
        let stored = match &doc {
            Some(doc) => Some(
                blake3::Hash::from_hex(&doc.hash)
                    .map_err(|e| corrupt(format_args!("the hash of API key {uuid}"), e))?,
            ),
            None => None,
        };
        if !key_matches(stored.as_ref(), &hash) {
            return Ok(None);
        }
        let (Some(doc), Some(stored)) = (doc, stored) else {
            return Ok(None);
        };
        let owner = self
            .auth_value::<NamespaceDoc>(&namespace_key(&doc.namespace), "a namespace")
            .await?;
        if owner.is_none_or(|owner| owner.uuid != uuid) {
            return Ok(None);
        }
        let known = KnownKey {
            namespace: Arc::from(doc.namespace),
            hash: stored,
        };
        self.inner
            .known_keys
            .keys
            .insert(uuid.to_owned(), known.clone());
        Ok(Some(Identity::basic(&known.namespace, uuid, key)))
    }
}
