//! Action documents in `{prefix}-actions` (history 2): puts, gets at the
//! latest or an exact revision, lists and deletes (see the module doc of
//! [`super`] for the rules; the code is in [`super::code`]).

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use async_nats::jetstream::stream::DirectGetErrorKind;
use serde::{Deserialize, Serialize};

use super::super::escape::escape_token;
use super::code::DocKey;
use super::{KEPT_REVISIONS, NatsStore, corrupt, nats_error, scan};
use wasmwhisk_core::entities::{DbError, PutOutcome};
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_protocol::ids::{now_epoch_ms, random_bytes};
use wasmwhisk_protocol::{
    DocRevision, EntityName, EntityPath, FullyQualifiedEntityName, WhiskActionMetaData,
};
use wasmwhisk_sandbox::engine::CacheKey;

/// Most attempts of one compare-and-set write before giving up (each
/// failed attempt means another writer's put of the same action landed).
const MAX_ATTEMPTS: usize = 64;

/// The stored JSON of one revision of an action.
#[derive(Debug, Serialize, Deserialize)]
struct ActionDoc {
    /// `"{generation}-{32 hex}"`.
    revision: String,
    /// The integer before the `-`.
    generation: u64,
    /// blake3 of the code, hex: its name in `{prefix}-code`.
    digest: String,
    /// Length of the code.
    code_size: u64,
    /// The engine's compile cache key of the code, hex.
    code_key: Option<String>,
    /// The action without its code (OpenWhisk's JSON).
    action: WhiskActionMetaData,
}

/// The generation of a document that does not decode as a whole.
#[derive(Deserialize)]
struct GenerationOnly {
    generation: u64,
}

/// The KV key of action `name` in `path`: one escaped token per segment.
fn action_key(path: &EntityPath, name: &EntityName) -> String {
    let mut key: Vec<String> = path.segments().map(|s| escape_token(s.as_str())).collect();
    key.push(escape_token(name.as_str()));
    key.join(".")
}

/// Whether a KV message is a value (not a delete or purge marker).
pub(super) fn is_value(headers: Option<&HeaderMap>) -> bool {
    let Some(headers) = headers else {
        return true;
    };
    let deleted = headers
        .get("KV-Operation")
        .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
    !deleted && headers.get("Nats-Marker-Reason").is_none()
}

/// A fresh revision of generation `generation`: `"{generation}-{32 hex}"`.
fn new_revision(generation: u64) -> String {
    let mut raw = [0u8; 16];
    random_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("{generation}-{hex}")
}

fn decode(doc: &str, seq: u64, value: &[u8]) -> Result<ActionDoc, DbError> {
    serde_json::from_slice(value)
        .map_err(|e| corrupt(format_args!("action {doc} (KV revision {seq})"), e))
}

fn parse_hash(doc: &str, field: &str, hex: &str) -> Result<blake3::Hash, DbError> {
    blake3::Hash::from_hex(hex).map_err(|e| corrupt(format_args!("the {field} of action {doc}"), e))
}

/// A document as read: seen before (with its code), or just decoded.
enum Seen {
    Cached(Arc<ExecutableAction>),
    Decoded(Box<ActionDoc>),
}

impl Seen {
    fn revision(&self) -> &str {
        match self {
            Seen::Cached(action) => action.revision.as_str().unwrap_or_default(),
            Seen::Decoded(stored) => &stored.revision,
        }
    }
}

/// What a put replaces: the previous revision (if live and readable), the
/// last generation given, and the KV revision to write over.
struct Previous {
    replaced: Option<Arc<ExecutableAction>>,
    generation: u64,
    expected: u64,
}

impl NatsStore {
    /// The last KV entry of `key`, delete markers included.
    async fn entry(&self, key: &str, doc: &str) -> Result<Option<kv::Entry>, DbError> {
        self.inner
            .actions
            .kv
            .entry(key)
            .await
            .map_err(|e| nats_error(format_args!("reading action {doc}"), e))
    }

    /// The document of entry `seq` of `key`: from memory when seen before
    /// (the stored JSON starts with its revision, which must match).
    fn seen(&self, key: &str, doc: &str, seq: u64, value: &[u8]) -> Result<Seen, DbError> {
        let cached = self
            .inner
            .caches
            .docs
            .get(&DocKey::Entry(key.to_owned(), seq))
            .filter(|action| {
                let revision = action.revision.as_str().unwrap_or_default();
                let head = format!("{{\"revision\":\"{revision}\"");
                value.starts_with(head.as_bytes())
            });
        match cached {
            Some(action) => Ok(Seen::Cached(action)),
            None => decode(doc, seq, value).map(|d| Seen::Decoded(Box::new(d))),
        }
    }

    /// The action of a document, with its code (cached from then on).
    async fn load(
        &self,
        key: &str,
        doc: &str,
        seq: u64,
        seen: Seen,
    ) -> Result<Arc<ExecutableAction>, DbError> {
        self.try_load(key, doc, seq, seen)
            .await
            .and_then(|loaded| loaded)
    }

    /// [`load`](Self::load), telling apart a stored value that is unusable
    /// (`Ok(Err(_))`: corrupt, or its code is gone) from a failure to read
    /// it (`Err(_)`).
    async fn try_load(
        &self,
        key: &str,
        doc: &str,
        seq: u64,
        seen: Seen,
    ) -> Result<Result<Arc<ExecutableAction>, DbError>, DbError> {
        let stored = match seen {
            Seen::Cached(action) => return Ok(Ok(action)),
            Seen::Decoded(stored) => stored,
        };
        let digest = match parse_hash(doc, "code digest", &stored.digest) {
            Ok(digest) => digest,
            Err(corrupt) => return Ok(Err(corrupt)),
        };
        let Some(code) = self.code_of(doc, &digest, stored.code_size).await? else {
            return Ok(Err(DbError::Internal(format!(
                "NATS: the code of action {doc} (object {digest}) is missing"
            ))));
        };
        Ok(build(doc, *stored, code).map(|action| {
            let action = Arc::new(action);
            self.inner.caches.remember(key, seq, &action);
            action
        }))
    }

    /// The latest revision of `fqn`, read from NATS (only its decoding may
    /// come from memory).
    pub(super) async fn latest_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        let doc = fqn.as_string_without_version();
        let key = action_key(fqn.path(), fqn.name());
        if let Some(action) = self.inner.latest.get(&key) {
            return Ok(Some(action));
        }
        let epoch = self.inner.latest.epoch();
        let Some(entry) = self.entry(&key, &doc).await? else {
            return Ok(None);
        };
        if entry.operation != Operation::Put {
            return Ok(None);
        }
        let seen = self.seen(&key, &doc, entry.revision, &entry.value)?;
        let action = self.load(&key, &doc, entry.revision, seen).await?;
        self.inner.latest.fill(&key, &action, epoch);
        Ok(Some(action))
    }

    /// Revision `wanted` of `fqn`, while it is one of the two kept.
    pub(super) async fn action_at(
        &self,
        fqn: &FullyQualifiedEntityName,
        wanted: &str,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        let doc = fqn.as_string_without_version();
        let key = action_key(fqn.path(), fqn.name());
        let cached = DocKey::Revision(key.clone(), wanted.to_owned());
        if let Some(action) = self.inner.caches.docs.get(&cached) {
            return Ok(Some(action));
        }
        let Some(latest) = self.entry(&key, &doc).await? else {
            return Ok(None);
        };
        if latest.operation != Operation::Put {
            return Ok(None);
        }
        let seen = self.seen(&key, &doc, latest.revision, &latest.value)?;
        if seen.revision() == wanted {
            return self.load(&key, &doc, latest.revision, seen).await.map(Some);
        }
        // The other kept revision is the first message of the key.
        let subject = self.inner.actions.subject(&key);
        let first = match self
            .inner
            .actions
            .stream
            .direct_get_first_for_subject(subject)
            .await
        {
            Ok(first) => first,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(nats_error(format_args!("reading action {doc}"), e)),
        };
        if first.sequence >= latest.revision || !is_value(Some(&first.headers)) {
            return Ok(None);
        }
        let seen = self.seen(&key, &doc, first.sequence, &first.payload)?;
        if seen.revision() != wanted {
            return Ok(None);
        }
        self.load(&key, &doc, first.sequence, seen).await.map(Some)
    }

    /// What a put over `latest` replaces. A corrupt latest revision (or one
    /// whose code is gone) counts as absent, so overwriting repairs it.
    async fn previous(
        &self,
        key: &str,
        doc: &str,
        latest: Option<&kv::Entry>,
    ) -> Result<Previous, DbError> {
        let Some(entry) = latest else {
            return Ok(Previous {
                replaced: None,
                generation: 0,
                expected: 0,
            });
        };
        if entry.operation != Operation::Put {
            // Deleted: the value before the marker holds the last generation.
            return Ok(Previous {
                replaced: None,
                generation: self.generation_before(key, doc, entry.revision).await?,
                expected: entry.revision,
            });
        }
        let loaded = match self.seen(key, doc, entry.revision, &entry.value) {
            Ok(seen) => self.try_load(key, doc, entry.revision, seen).await?,
            Err(corrupt) => Err(corrupt),
        };
        match loaded {
            Ok(old) => Ok(Previous {
                generation: old.revision.generation().unwrap_or(0),
                replaced: Some(old),
                expected: entry.revision,
            }),
            Err(error) => {
                tracing::warn!(action = doc, %error, "overwriting a corrupt action");
                Ok(Previous {
                    replaced: None,
                    generation: lenient_generation(&entry.value),
                    expected: entry.revision,
                })
            }
        }
    }

    /// The generation of the value kept before the delete marker at `seq`.
    async fn generation_before(&self, key: &str, doc: &str, seq: u64) -> Result<u64, DbError> {
        let subject = self.inner.actions.subject(key);
        match self
            .inner
            .actions
            .stream
            .direct_get_first_for_subject(subject)
            .await
        {
            Ok(first) if first.sequence < seq && is_value(Some(&first.headers)) => {
                Ok(lenient_generation(&first.payload))
            }
            Ok(_) => Ok(0),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(0),
            Err(e) => Err(nats_error(format_args!("reading action {doc}"), e)),
        }
    }

    /// Stores a new revision of `action` (see the module doc of [`super`]).
    pub(super) async fn write_action(
        &self,
        action: ExecutableAction,
        overwrite: bool,
    ) -> Result<PutOutcome, DbError> {
        let doc = format!("{}/{}", action.meta.namespace, action.meta.name);
        let key = action_key(&action.meta.namespace, &action.meta.name);
        let live =
            |e: &Option<kv::Entry>| e.as_ref().is_some_and(|e| e.operation == Operation::Put);
        let mut latest = self.entry(&key, &doc).await?;
        if live(&latest) && !overwrite {
            return Err(DbError::Exists);
        }
        let digest = blake3::hash(&action.code);
        self.store_code(&doc, &digest, &action.code).await?;
        let what = format!("writing action {doc}");
        for _ in 0..MAX_ATTEMPTS {
            if live(&latest) && !overwrite {
                return Err(DbError::Exists);
            }
            let previous = self.previous(&key, &doc, latest.as_ref()).await?;
            let generation = previous.generation.saturating_add(1);
            let revision = new_revision(generation);
            let mut meta = action.meta.clone();
            meta.updated = now_epoch_ms();
            if let Some(old) = &previous.replaced {
                // OpenWhisk bumps the patch on every update.
                meta.version = old.meta.version.up_patch();
            }
            let stored = ActionDoc {
                revision: revision.clone(),
                generation,
                digest: digest.to_hex().to_string(),
                code_size: u64::try_from(action.code.len()).unwrap_or(u64::MAX),
                code_key: action.code_key.map(|k| k.to_hex()),
                action: meta,
            };
            let value = serde_json::to_vec(&stored)
                .map_err(|e| DbError::Internal(format!("action {doc}: cannot serialize: {e}")))?;
            match self
                .inner
                .actions
                .kv
                .update(&key, value.into(), previous.expected)
                .await
            {
                Ok(seq) => {
                    self.inner.latest.changed(&key);
                    let action = Arc::new(ExecutableAction {
                        meta: stored.action,
                        revision: DocRevision::new(&revision),
                        code: action.code.clone(),
                        code_key: action.code_key,
                    });
                    self.inner.caches.remember(&key, seq, &action);
                    return Ok(PutOutcome {
                        stored: action,
                        replaced: previous.replaced,
                    });
                }
                // Another writer's put landed first: read it, go again.
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    latest = self.entry(&key, &doc).await?;
                }
                Err(e) => return Err(nats_error(what, e)),
            }
        }
        Err(nats_error(
            what,
            format!("{MAX_ATTEMPTS} concurrent writes of the same action won each time"),
        ))
    }

    /// Deletes `fqn` (a KV delete marker; its previous revision keeps the
    /// generation); returns the revision deleted. A corrupt latest revision
    /// is not deleted (overwrite it first): the caller must be told what
    /// was deleted.
    pub(super) async fn remove_action(
        &self,
        fqn: &FullyQualifiedEntityName,
    ) -> Result<Option<Arc<ExecutableAction>>, DbError> {
        let doc = fqn.as_string_without_version();
        let key = action_key(fqn.path(), fqn.name());
        let what = format!("deleting action {doc}");
        for _ in 0..MAX_ATTEMPTS {
            let Some(entry) = self.entry(&key, &doc).await? else {
                return Ok(None);
            };
            if entry.operation != Operation::Put {
                return Ok(None);
            }
            let seen = self.seen(&key, &doc, entry.revision, &entry.value)?;
            let old = self.load(&key, &doc, entry.revision, seen).await?;
            match self
                .inner
                .actions
                .kv
                .delete_expect_revision(&key, Some(entry.revision))
                .await
            {
                Ok(()) => {
                    self.inner.latest.changed(&key);
                    return Ok(Some(old));
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(nats_error(what, e)),
            }
        }
        Err(nats_error(
            what,
            format!("{MAX_ATTEMPTS} concurrent writes of the same action won each time"),
        ))
    }

    /// The latest revision of each action under `path`, by name (then
    /// path), without code.
    pub(super) async fn scan_actions(
        &self,
        path: &EntityPath,
        limit: usize,
        skip: usize,
    ) -> Result<Vec<Arc<ExecutableAction>>, DbError> {
        if path.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let tokens: Vec<String> = path.segments().map(|s| escape_token(s.as_str())).collect();
        let tail = if path.len() == 1 { ">" } else { "*" };
        let filter = format!("{}{}.{tail}", self.inner.actions.prefix, tokens.join("."));
        let messages =
            scan::last_per_subject(&self.inner.actions.stream, filter, false, KEPT_REVISIONS)
                .await
                .map_err(|e| nats_error(format_args!("listing the actions of {path}"), e))?;
        let mut docs = Vec::with_capacity(messages.len());
        for message in messages {
            if !is_value(message.headers.as_ref()) {
                continue;
            }
            let key = message
                .subject
                .strip_prefix(self.inner.actions.prefix.as_str())
                .unwrap_or(message.subject.as_str());
            let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            docs.push(decode(key, seq, &message.payload)?);
        }
        docs.sort_by(|a, b| {
            (a.action.name.as_str(), a.action.namespace.to_string())
                .cmp(&(b.action.name.as_str(), b.action.namespace.to_string()))
        });
        docs.into_iter()
            .skip(skip)
            .take(limit)
            .map(|stored| {
                let doc = format!("{}/{}", stored.action.namespace, stored.action.name);
                build(&doc, stored, Arc::from(Vec::new())).map(Arc::new)
            })
            .collect()
    }

    /// Deletes every action of namespace `name` (namespace deletion).
    pub(super) async fn remove_actions_of(&self, name: &str) -> Result<(), DbError> {
        let filter = format!("{}{}.>", self.inner.actions.prefix, escape_token(name));
        let what = format!("deleting the actions of namespace {name}");
        let messages =
            scan::last_per_subject(&self.inner.actions.stream, filter, true, KEPT_REVISIONS)
                .await
                .map_err(|e| nats_error(&what, e))?;
        for message in messages {
            if !is_value(message.headers.as_ref()) {
                continue;
            }
            if let Some(key) = message
                .subject
                .strip_prefix(self.inner.actions.prefix.as_str())
            {
                self.inner
                    .actions
                    .kv
                    .delete(key)
                    .await
                    .map_err(|e| nats_error(&what, e))?;
            }
        }
        Ok(())
    }
}

/// The generation of a document, even one that does not decode as a whole.
fn lenient_generation(value: &[u8]) -> u64 {
    serde_json::from_slice::<GenerationOnly>(value)
        .map(|g| g.generation)
        .unwrap_or(0)
}

/// The action of document `stored` with `code`.
fn build(doc: &str, stored: ActionDoc, code: Arc<[u8]>) -> Result<ExecutableAction, DbError> {
    let code_key = stored
        .code_key
        .as_deref()
        .map(|hex| parse_hash(doc, "code key", hex).map(|h| CacheKey(*h.as_bytes())))
        .transpose()?;
    Ok(ExecutableAction {
        meta: stored.action,
        revision: DocRevision::new(&stored.revision),
        code,
        code_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_one_token_per_segment() {
        let path: EntityPath = "guest".parse().unwrap();
        let name = EntityName::new("hello").unwrap();
        assert_eq!(action_key(&path, &name), "guest.hello");
        let path: EntityPath = "guest/my pkg".parse().unwrap();
        let name = EntityName::new("a.b").unwrap();
        assert_eq!(action_key(&path, &name), "guest.my_20pkg.a_2Eb");
    }

    #[test]
    fn revisions_carry_their_generation() {
        let revision = new_revision(7);
        assert_eq!(DocRevision::new(&revision).generation(), Some(7));
        assert_eq!(revision.len(), 2 + 32);
        assert_eq!(lenient_generation(br#"{"generation": 4, "action": 1}"#), 4);
        assert_eq!(lenient_generation(b"garbage"), 0);
    }

    #[test]
    fn documents_start_with_their_revision() {
        // `NatsStore::seen` relies on it to check a cached entry.
        let stored = ActionDoc {
            revision: "1-ab".into(),
            generation: 1,
            digest: "d".into(),
            code_size: 0,
            code_key: None,
            action: WhiskActionMetaData::code_action(
                "guest".parse().unwrap(),
                EntityName::new("a").unwrap(),
                "wasm",
                true,
                wasmwhisk_protocol::ActionLimits::default(),
            ),
        };
        let json = serde_json::to_vec(&stored).unwrap();
        assert!(json.starts_with(br#"{"revision":"1-ab""#));
    }

    #[test]
    fn markers_are_not_values() {
        assert!(is_value(None));
        let mut headers = HeaderMap::new();
        assert!(is_value(Some(&headers)));
        headers.insert("KV-Operation", "DEL");
        assert!(!is_value(Some(&headers)));
        let mut headers = HeaderMap::new();
        headers.insert("KV-Operation", "PURGE");
        assert!(!is_value(Some(&headers)));
    }
}
