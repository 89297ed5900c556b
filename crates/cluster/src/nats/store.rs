//! The cluster's shared store on NATS JetStream: what CouchDB is to
//! OpenWhisk, so that any controller can answer any REST request and every
//! invoker loads action code from the same place.
//!
//! It answers the same ports as standalone mode's SQLite
//! [`Database`](wasmwhisk_core::entities::Database) — [`EntityStore`] for the REST API,
//! [`ActionStore`] and [`ActivationStore`] for the pool — with the same
//! answers and the same errors, plus the namespace administration
//! (`ensure_namespace`, `create_namespace`, `list_namespaces`,
//! `delete_namespace`).
//!
//! # Buckets (prefix `whisk` by default)
//! | bucket | kind | key → value | retention |
//! |---|---|---|---|
//! | `{prefix}-actions` | KV, history 2 | `ns.act` / `ns.pkg.act` → action document (JSON) | the latest two revisions of each action |
//! | `{prefix}-code` | object store | blake3 hex of the code → the code | never deleted (see *Limits*) |
//! | `{prefix}-activations` | KV, history 1 | `{ns}.{activation id}` → the record (JSON) | `max_age` (7 days) and `max_bytes` (1 GiB), oldest dropped first |
//! | `{prefix}-records` | object store | `{ns}.{activation id}` → a record too large for one message | as the activations |
//! | `{prefix}-auth` | KV, history 1 | `ns.{name}` → `{"uuid","created"}`, `key.{uuid}` → `{"namespace","hash"}` | for ever |
//!
//! Every key segment is one subject token, escaped by
//! [`escape_token`](super::escape::escape_token): an action `guest/hello` is
//! the key `guest.hello`, `guest/my pkg/a.b` is `guest.my_20pkg.a_2Eb`. A
//! namespace's actions are then the subjects `…{ns}.>` and a package's
//! `…{ns}.{pkg}.*`, and its records `…{ns}.*`: listing never reads another
//! namespace's keys. All buckets use file storage (they survive a server
//! restart) and one replica.
//!
//! # Actions
//! The document holds the `WhiskActionMetaData` (OpenWhisk's JSON), the
//! revision `"{generation}-{32 hex}"`, the generation, the code's blake3
//! digest and size, and the engine's compile cache key. The code itself is
//! stored once per digest in `{prefix}-code` (only if absent), before the
//! document that names it, so no reader ever finds a document without its
//! code; actions with the same code share one object.
//!
//! The rules are the SQLite store's: a put makes the next generation after
//! the last one ever given to the action (a deleted action is a KV delete
//! marker whose previous revision still holds the generation, so a
//! re-created action continues after it), bumps the patch version of an
//! update, sets `updated`, and refuses an existing action without
//! `overwrite` (`Exists`). **Concurrent puts never lose an update**: each
//! writes with the KV revision it read as the expected last revision
//! (compare-and-set) and, when another writer got there first, reads again
//! and retries, so concurrent puts land as successive revisions. Deletes
//! are compare-and-set too.
//!
//! # Caches (per process)
//! - Code, by digest (moka, weighed by bytes, 256 MiB): an invoker fetches
//!   each code once.
//! - Action documents by their immutable KV revision and by (action,
//!   revision) (moka, weighed by code size, 256 MiB). A request for an
//!   exact revision (the invoker's) is answered from memory for as long as
//!   the cache keeps it.
//! - The latest revision of each action: by default **never** served from
//!   memory — `get_action` reads the key's last entry (one direct get), so
//!   after a put every process sees the new revision on its next read, and
//!   only the decoding is skipped when that entry was seen before. A
//!   controller calls [`NatsStore::watch_actions`]: then the latest
//!   revision is served from memory until a watch of the bucket reports a
//!   change to it (`store_latest.rs`), as OpenWhisk's controllers cache
//!   entities until told of a change.
//! - Positive authentications, 5 s (as standalone).
//!
//! # Costs
//! - `get_action`, `get_activation`, `authenticate` (uncached): one or two
//!   direct gets. `ActivationStore::get` by id alone: one message get with
//!   a wildcard subject `…*.{id}`, which the server answers by scanning the
//!   subjects it keeps (nats-server ≥ 2.9), so it is rare-path only.
//! - `list_actions`: O(actions of the namespace or package) documents
//!   (without code), then sorted.
//! - `list_activations`: O(records kept for the namespace): an ephemeral
//!   consumer delivers the **headers** of every record of the namespace
//!   (name, path and start are stored as headers), which are filtered and
//!   sorted here; then only the page asked for (≤ `limit`) is read. A
//!   namespace without records returns after one consumer creation.
//! - Storing a record: one publish; storing an action: one code existence
//!   check (a code upload only for new code), one read, one write.
//!
//! # Limits
//! - Code objects are never deleted: whether any kept revision of any
//!   action still names a digest is not known without reading every
//!   document, and a sweep racing a put could delete code just named.
//! - A record larger than the server's `max_payload` (1 MiB by default;
//!   logs may be 10 MB) is kept in `{prefix}-records` and its KV entry
//!   only points at it.
//! - Activation retention is JetStream's: records older than `max_age`
//!   go, and past `max_bytes` the oldest are dropped to make room.
//!
//! # Failures
//! A NATS failure is `DbError::Internal("NATS: reading action guest/hello
//! failed: …")`; a value that cannot be decoded is an error naming its key,
//! never a panic. While the server is away every call fails at once or
//! within the request timeout (5 s); async-nats reconnects by itself.

#[path = "store_actions.rs"]
mod actions;
#[path = "store_activations.rs"]
mod activations;
#[path = "store_auth.rs"]
mod auth;
#[path = "store_code.rs"]
mod code;
#[path = "store_latest.rs"]
mod latest;
#[path = "store_ports.rs"]
mod ports;
#[path = "store_scan.rs"]
mod scan;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::object_store::ObjectStore;
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_nats::jetstream::{self, kv};

use super::{NatsBus, NatsError};
use wasmwhisk_core::config::Config;
use wasmwhisk_core::entities::{Credentials, DbError, NamespaceInfo};
use wasmwhisk_core::pool::ports::StoreError;
use wasmwhisk_protocol::WhiskActivation;

/// How long one JetStream request (API call, publish ack, get) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Revisions kept per action, as in the SQLite store.
const KEPT_REVISIONS: i64 = 2;

/// How the store's buckets are named and bounded. Every knob states its
/// default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsStoreConfig {
    /// First part of every bucket name (`{prefix}-actions`, …): letters,
    /// digits, `-` and `_`. Default `"whisk"`.
    pub prefix: String,
    /// Activation records older than this are dropped (the bucket's
    /// `max_age`). Default 7 days, as `[store] max-activation-age`.
    pub activation_max_age: Duration,
    /// The most bytes of activation records kept (the bucket's
    /// `max_bytes`, and separately that of `{prefix}-records`); past it
    /// the oldest records are dropped to make room. Default 1 GiB, as
    /// `[store] max-bytes`.
    pub activation_max_bytes: i64,
}

impl Default for NatsStoreConfig {
    fn default() -> Self {
        NatsStoreConfig {
            prefix: "whisk".to_owned(),
            activation_max_age: Duration::from_secs(7 * 24 * 3600),
            activation_max_bytes: 1 << 30,
        }
    }
}

impl NatsStoreConfig {
    /// The defaults, with the record bounds of `[store]
    /// max-activation-age` and `max-bytes`.
    pub fn from_config(config: &Config) -> Self {
        NatsStoreConfig {
            activation_max_age: config.store.max_activation_age,
            activation_max_bytes: i64::try_from(config.store.max_bytes.as_bytes())
                .unwrap_or(i64::MAX),
            ..NatsStoreConfig::default()
        }
    }

    fn bucket(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}

/// The cluster's store (see the module doc). Cheap to clone: every clone
/// shares the buckets and the caches.
#[derive(Clone)]
pub struct NatsStore {
    inner: Arc<Inner>,
}

/// What every clone shares.
struct Inner {
    config: NatsStoreConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    actions: Bucket,
    code: ObjectStore,
    activations: Bucket,
    records: ObjectStore,
    auth: Bucket,
    caches: code::Caches,
    known_keys: auth::AuthCache,
    /// The latest revisions, while [`NatsStore::watch_actions`] runs.
    latest: latest::Latest,
}

/// A KV bucket: its KV handle (for compare-and-set writes) and its stream
/// (for gets with headers and for scans).
struct Bucket {
    kv: kv::Store,
    stream: stream::Stream,
    /// `$KV.{bucket}.`: a key's subject is this and the key.
    prefix: String,
}

impl Bucket {
    fn subject(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl std::fmt::Debug for NatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStore")
            .field("prefix", &self.inner.config.prefix)
            .finish_non_exhaustive()
    }
}

/// `DbError::Internal("NATS: {what} failed: {error}")`.
fn nats_error(what: impl std::fmt::Display, error: impl std::fmt::Display) -> DbError {
    DbError::Internal(format!("NATS: {what} failed: {error}"))
}

/// A value that does not decode.
fn corrupt(what: impl std::fmt::Display, error: impl std::fmt::Display) -> DbError {
    DbError::Internal(format!("NATS: {what} is corrupt: {error}"))
}

/// The pool's view of a store error.
fn store_error(e: DbError, what: impl FnOnce() -> String) -> StoreError {
    match e {
        DbError::NotFound => StoreError::NotFound(what()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The stream behind KV bucket `bucket`, as async-nats makes it, with our
/// history, bounds and discard policy.
fn kv_stream_config(bucket: &str, description: &str, history: i64) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        storage: StorageType::File,
        num_replicas: 1,
        discard: DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        ..Default::default()
    }
}

/// The stream behind object store `bucket`, as async-nats makes it.
fn object_stream_config(bucket: &str, description: &str) -> stream::Config {
    stream::Config {
        name: format!("OBJ_{bucket}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
        storage: StorageType::File,
        num_replicas: 1,
        discard: DiscardPolicy::New,
        allow_rollup: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Opens stream `config.name`, creating it when missing. Idempotent and
/// safe when several processes open at once (a creation that loses the
/// race opens the winner's). An existing stream keeps its configuration,
/// except the age and size bounds when `bounds` is set: those follow ours.
async fn open_stream(
    js: &jetstream::Context,
    config: stream::Config,
    bounds: bool,
) -> Result<stream::Stream, NatsError> {
    let name = config.name.clone();
    let failed = |e: &dyn std::fmt::Display| NatsError::JetStream(format!("opening {name}: {e}"));
    let mut stream = match js.get_stream(&name).await {
        Ok(stream) => stream,
        Err(_) => match js.create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            // Another process may just have created it.
            Err(create) => js.get_stream(&name).await.map_err(|_| failed(&create))?,
        },
    };
    let info = stream.cached_info().config.clone();
    if bounds && (info.max_age != config.max_age || info.max_bytes != config.max_bytes) {
        tracing::info!(
            stream = %name,
            max_age = ?config.max_age,
            max_bytes = config.max_bytes,
            "updating the retention of the activation records"
        );
        let updated = stream::Config {
            max_age: config.max_age,
            max_bytes: config.max_bytes,
            discard: config.discard,
            ..info
        };
        js.update_stream(updated).await.map_err(|e| failed(&e))?;
        stream = js.get_stream(&name).await.map_err(|e| failed(&e))?;
    }
    Ok(stream)
}

async fn open_bucket(
    js: &jetstream::Context,
    config: stream::Config,
    bounds: bool,
) -> Result<Bucket, NatsError> {
    let bucket = config.name.trim_start_matches("KV_").to_owned();
    let history = config.max_messages_per_subject;
    let stream = open_stream(js, config, bounds).await?;
    let kept = stream.cached_info().config.max_messages_per_subject;
    if kept != history {
        return Err(NatsError::JetStream(format!(
            "KV bucket {bucket} keeps {kept} values per key; wasmwhisk needs {history} \
             (delete the bucket, or give the store another prefix)"
        )));
    }
    let kv = js
        .get_key_value(&bucket)
        .await
        .map_err(|e| NatsError::JetStream(format!("opening KV bucket {bucket}: {e}")))?;
    Ok(Bucket {
        kv,
        stream,
        prefix: format!("$KV.{bucket}."),
    })
}

async fn open_objects(
    js: &jetstream::Context,
    config: stream::Config,
    bounds: bool,
) -> Result<ObjectStore, NatsError> {
    let bucket = config.name.trim_start_matches("OBJ_").to_owned();
    open_stream(js, config, bounds).await?;
    js.get_object_store(&bucket)
        .await
        .map_err(|e| NatsError::JetStream(format!("opening object store {bucket}: {e}")))
}

impl NatsStore {
    /// Opens the store's buckets on `bus`, creating those that are missing
    /// (idempotent: any number of processes may open at once). The record
    /// buckets take `config`'s retention, also when they exist.
    pub async fn open(bus: &NatsBus, config: NatsStoreConfig) -> Result<NatsStore, NatsError> {
        let valid = !config.prefix.is_empty()
            && config
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(NatsError::JetStream(format!(
                "'{}' is not a bucket prefix: use letters, digits, '-' and '_'",
                config.prefix
            )));
        }
        let client = bus.client().clone();
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        let actions = open_bucket(
            &js,
            kv_stream_config(
                &config.bucket("actions"),
                "wasmwhisk: action documents, the latest two revisions",
                KEPT_REVISIONS,
            ),
            false,
        )
        .await?;
        let code = open_objects(
            &js,
            object_stream_config(&config.bucket("code"), "wasmwhisk: action code by digest"),
            false,
        )
        .await?;
        let records_bounds = |mut c: stream::Config| {
            c.max_age = config.activation_max_age;
            c.max_bytes = config.activation_max_bytes;
            c.discard = DiscardPolicy::Old;
            c
        };
        let activations = open_bucket(
            &js,
            records_bounds(kv_stream_config(
                &config.bucket("activations"),
                "wasmwhisk: activation records",
                1,
            )),
            true,
        )
        .await?;
        let records = open_objects(
            &js,
            records_bounds(object_stream_config(
                &config.bucket("records"),
                "wasmwhisk: activation records too large for one message",
            )),
            true,
        )
        .await?;
        let auth = open_bucket(
            &js,
            kv_stream_config(
                &config.bucket("auth"),
                "wasmwhisk: namespaces and their keys",
                1,
            ),
            false,
        )
        .await?;
        Ok(NatsStore {
            inner: Arc::new(Inner {
                config,
                client,
                js,
                actions,
                code,
                activations,
                records,
                auth,
                caches: code::Caches::new(),
                known_keys: auth::AuthCache::new(),
                latest: latest::Latest::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NatsStoreConfig {
        &self.inner.config
    }

    /// Creates namespace `name` only if it does not exist: `Some` with the
    /// new credentials (the clear key) only for the caller that created
    /// it, also when several race.
    pub async fn ensure_namespace(&self, name: &str) -> Result<Option<Credentials>, DbError> {
        self.create_namespace_if(name, true).await
    }

    /// Creates namespace `name` with a fresh key; `Exists` if it exists,
    /// `Invalid` if `name` is not an entity name.
    pub async fn create_namespace(&self, name: &str) -> Result<Credentials, DbError> {
        self.create_namespace_if(name, false)
            .await?
            .ok_or(DbError::Exists)
    }

    /// Every namespace, by name.
    pub async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, DbError> {
        self.namespaces().await
    }

    /// Deletes namespace `name`, its key, its actions and its activation
    /// records; false if absent. Other processes stop accepting the key
    /// within 5 s (the authentication cache).
    pub async fn delete_namespace(&self, name: &str) -> Result<bool, DbError> {
        self.remove_namespace(name).await
    }

    /// Stores `activation` (replacing a record of the same id).
    pub async fn store_activation(&self, activation: &WhiskActivation) -> Result<(), DbError> {
        self.write_record(activation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_follows_the_store_section() {
        let mut config = Config::default();
        config.store.max_activation_age = Duration::from_secs(3600);
        let store = NatsStoreConfig::from_config(&config);
        assert_eq!(store.activation_max_age, Duration::from_secs(3600));
        assert_eq!(store.prefix, "whisk");
        assert_eq!(store.activation_max_bytes, 1 << 30);
        assert_eq!(store.bucket("actions"), "whisk-actions");
    }
}
