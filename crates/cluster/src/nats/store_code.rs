//! Action code in `{prefix}-code`, one object per blake3 digest (stored
//! only if absent), and the per-process caches of code and of action
//! documents (see the module doc of [`super`]).

use std::sync::Arc;

use async_nats::jetstream::object_store::{GetErrorKind, InfoErrorKind, ObjectMetadata};
use tokio::io::AsyncReadExt;

use super::{NatsStore, nats_error};
use wasmwhisk_core::entities::DbError;
use wasmwhisk_core::pool::ports::ExecutableAction;

/// Bytes of code, and of action documents, kept in memory (each).
const CACHE_BYTES: u64 = 256 << 20;

/// What a cached document weighs besides its code.
const DOC_WEIGHT: usize = 1024;

/// The largest buffer reserved up front for a code read (the size comes
/// from the document, which might be corrupt).
const MAX_RESERVE: usize = 64 << 20;

/// How a cached document is found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum DocKey {
    /// By action key and KV revision (stream sequence): an entry never
    /// changes. (The key guards against a bucket re-created under a running
    /// process, whose sequences start again; so does the check of the
    /// revision in [`NatsStore::seen`].)
    Entry(String, u64),
    /// By action key and revision string.
    Revision(String, String),
}

/// The per-process caches of code and documents.
pub(super) struct Caches {
    /// Code by blake3 digest: present only once stored in or read from NATS.
    pub(super) code: moka::sync::Cache<[u8; 32], Arc<[u8]>>,
    /// Actions with their code, by [`DocKey`].
    pub(super) docs: moka::sync::Cache<DocKey, Arc<ExecutableAction>>,
}

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Caches {
    pub(super) fn new() -> Self {
        Caches {
            code: moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES)
                .weigher(|_, code: &Arc<[u8]>| weight(code.len()))
                .build(),
            docs: moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES)
                .weigher(|_, action: &Arc<ExecutableAction>| {
                    weight(action.code.len().saturating_add(DOC_WEIGHT))
                })
                .build(),
        }
    }

    pub(super) fn remember(&self, key: &str, seq: u64, action: &Arc<ExecutableAction>) {
        self.docs
            .insert(DocKey::Entry(key.to_owned(), seq), action.clone());
        if let Some(revision) = action.revision.as_str() {
            self.docs.insert(
                DocKey::Revision(key.to_owned(), revision.to_owned()),
                action.clone(),
            );
        }
    }
}

impl NatsStore {
    /// The code named `digest`; `None` when no such object exists.
    pub(super) async fn code_of(
        &self,
        doc: &str,
        digest: &blake3::Hash,
        size: u64,
    ) -> Result<Option<Arc<[u8]>>, DbError> {
        if size == 0 {
            return Ok(Some(Arc::from(Vec::new())));
        }
        if let Some(code) = self.inner.caches.code.get(digest.as_bytes()) {
            return Ok(Some(code));
        }
        let name = digest.to_hex();
        let what = format!("reading the code of action {doc}");
        // A second try: a concurrent first upload of the same code may have
        // replaced the chunks under a reader.
        let mut last_error = String::new();
        for _ in 0..2 {
            let mut object = match self.inner.code.get(name.as_str()).await {
                Ok(object) => object,
                Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(nats_error(&what, e)),
            };
            let reserve = usize::try_from(size)
                .unwrap_or(MAX_RESERVE)
                .min(MAX_RESERVE);
            let mut bytes = Vec::with_capacity(reserve);
            match object.read_to_end(&mut bytes).await {
                Ok(_) if blake3::hash(&bytes) == *digest => {
                    let code: Arc<[u8]> = Arc::from(bytes);
                    self.inner
                        .caches
                        .code
                        .insert(*digest.as_bytes(), code.clone());
                    return Ok(Some(code));
                }
                Ok(_) => last_error = format!("object {name} does not match its digest"),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(nats_error(what, last_error))
    }

    /// Stores `code` under its digest, unless it is already stored.
    pub(super) async fn store_code(
        &self,
        doc: &str,
        digest: &blake3::Hash,
        code: &Arc<[u8]>,
    ) -> Result<(), DbError> {
        if code.is_empty() || self.inner.caches.code.contains_key(digest.as_bytes()) {
            return Ok(());
        }
        let name = digest.to_hex().to_string();
        let what = format!("storing the code of action {doc}");
        match self.inner.code.info(&name).await {
            Ok(info) if !info.deleted && info.size == code.len() => {}
            Ok(_) => self.upload(&name, code, &what).await?,
            Err(e) if e.kind() == InfoErrorKind::NotFound => {
                self.upload(&name, code, &what).await?
            }
            Err(e) => return Err(nats_error(what, e)),
        }
        self.inner
            .caches
            .code
            .insert(*digest.as_bytes(), code.clone());
        Ok(())
    }

    async fn upload(&self, name: &str, code: &[u8], what: &str) -> Result<(), DbError> {
        let meta = ObjectMetadata {
            name: name.to_owned(),
            ..ObjectMetadata::default()
        };
        self.inner
            .code
            .put(meta, &mut &code[..])
            .await
            .map(drop)
            .map_err(|e| nats_error(what, e))
    }
}
