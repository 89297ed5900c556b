//! Activation records: one KV entry `{ns}.{activation id}` each in
//! `{prefix}-activations`, bounded by age and size; a record too large for
//! one message is kept in `{prefix}-records` and its entry only points at it.
//!
//! Every entry carries the fields a listing filters and sorts on as
//! headers — the record's `name`, its `path` annotation and its `start`
//! (names escaped into tokens, so any text is a valid header value) — so
//! [`NatsStore::scan_records`] reads the headers of a namespace's records,
//! not the records, and then only the page it returns.

use async_nats::HeaderMap;
use async_nats::jetstream::object_store::{GetErrorKind, ObjectMetadata};
use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncReadExt;

use super::super::escape::{escape_token, unescape_token};
use super::actions::is_value;
use super::{NatsStore, corrupt, nats_error, scan};
use wasmwhisk_core::entities::{ActivationQuery, DbError};
use wasmwhisk_core::pool::record::annotation;
use wasmwhisk_protocol::{ActivationId, WhiskActivation};

/// Header: the record's `name`, escaped.
const NAME: &str = "Wasmwhisk-Name";
/// Header: the record's `path` annotation, escaped (absent when it has none).
const PATH: &str = "Wasmwhisk-Path";
/// Header: the record's `start`, epoch ms.
const START: &str = "Wasmwhisk-Start";
/// Header: the object in `{prefix}-records` that holds the record.
const SPILLED: &str = "Wasmwhisk-Spilled";

/// Room kept in a message for its headers.
const HEADROOM: usize = 8 << 10;

/// The server's message size limit when it did not say (its default).
const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

/// Records of a listed page read at once.
const PAGE_READS: usize = 16;

/// The KV key of record `id` of `namespace`.
fn record_key(namespace: &str, id: &str) -> String {
    format!("{}.{}", escape_token(namespace), escape_token(id))
}

/// What a listing filters and sorts on.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    name: String,
    path: Option<String>,
    start: u64,
}

impl Head {
    fn of(activation: &WhiskActivation) -> Head {
        Head {
            name: activation.name.as_str().to_owned(),
            path: activation
                .annotation(annotation::PATH)
                .and_then(|p| p.as_str())
                .map(str::to_owned),
            start: activation.start,
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(NAME, escape_token(&self.name));
        if let Some(path) = &self.path {
            headers.insert(PATH, escape_token(path));
        }
        headers.insert(START, self.start.to_string());
        headers
    }

    /// The head in `headers`; `None` if they lack it.
    fn from_headers(headers: &HeaderMap) -> Option<Head> {
        let token = |name: &str| {
            headers
                .get(name)
                .and_then(|v| unescape_token(v.as_str()).ok())
        };
        Some(Head {
            name: token(NAME)?,
            path: token(PATH),
            start: headers.get(START)?.as_str().parse().ok()?,
        })
    }
}

/// [`ActivationQuery`] as predicates, exactly as the SQLite store reads it.
struct Filter {
    /// The record's name.
    name: Option<String>,
    /// What its `path` annotation must end with (for `name=pkg/act`).
    path_suffix: Option<String>,
    since: Option<u64>,
    upto: Option<u64>,
}

impl Filter {
    fn new(query: &ActivationQuery) -> Filter {
        let (name, path_suffix) = match query.name.as_deref().map(|n| n.trim_matches('/')) {
            None | Some("") => (None, None),
            Some(n) => match n.rsplit_once('/') {
                Some((_, last)) => (Some(last.to_owned()), Some(format!("/{n}"))),
                None => (Some(n.to_owned()), None),
            },
        };
        Filter {
            name,
            path_suffix,
            since: query.since,
            upto: query.upto,
        }
    }

    fn matches(&self, head: &Head) -> bool {
        self.name.as_deref().is_none_or(|n| head.name == n)
            && self
                .path_suffix
                .as_deref()
                .is_none_or(|s| head.path.as_deref().is_some_and(|p| p.ends_with(s)))
            && self.since.is_none_or(|since| head.start >= since)
            && self.upto.is_none_or(|upto| head.start <= upto)
    }
}

impl NatsStore {
    /// The largest record stored in the KV bucket itself.
    fn max_inline_record(&self) -> usize {
        let max = self.inner.client.server_info().max_payload;
        let max = if max == 0 { DEFAULT_MAX_PAYLOAD } else { max };
        max.saturating_sub(HEADROOM)
    }

    /// Stores `activation` (replacing a record of the same id); returns once
    /// the server has stored it.
    pub(super) async fn write_record(&self, activation: &WhiskActivation) -> Result<(), DbError> {
        let id = activation.activation_id.as_str();
        let key = record_key(&activation.namespace.to_string(), id);
        let what = format!("storing activation {id}");
        let json = serde_json::to_vec(activation)
            .map_err(|e| DbError::Internal(format!("activation {id}: cannot serialize: {e}")))?;
        let mut headers = Head::of(activation).headers();
        let payload = if json.len() > self.max_inline_record() {
            let meta = ObjectMetadata {
                name: key.clone(),
                ..ObjectMetadata::default()
            };
            self.inner
                .records
                .put(meta, &mut json.as_slice())
                .await
                .map_err(|e| nats_error(&what, e))?;
            headers.insert(SPILLED, key.as_str());
            Bytes::new()
        } else {
            Bytes::from(json)
        };
        self.inner
            .js
            .publish_with_headers(self.inner.activations.subject(&key), headers, payload)
            .await
            .map_err(|e| nats_error(&what, e))?
            .await
            .map_err(|e| nats_error(&what, e))?;
        Ok(())
    }

    /// Decodes the record of KV message `key` (reading it from
    /// `{prefix}-records` when it was too large for the message).
    async fn record_of(
        &self,
        key: &str,
        headers: &HeaderMap,
        payload: Bytes,
    ) -> Result<Option<WhiskActivation>, DbError> {
        match self.json_of(key, headers, payload).await? {
            None => Ok(None),
            Some(json) => serde_json::from_slice(&json)
                .map(Some)
                .map_err(|e| corrupt(format_args!("activation record {key}"), e)),
        }
    }

    /// The JSON of the record of KV message `key`, read from
    /// `{prefix}-records` when it was too large for the message.
    async fn json_of(
        &self,
        key: &str,
        headers: &HeaderMap,
        payload: Bytes,
    ) -> Result<Option<Bytes>, DbError> {
        if !is_value(Some(headers)) {
            return Ok(None);
        }
        let json = match headers.get(SPILLED) {
            None => payload,
            Some(name) => {
                let what = format!("reading activation record {key}");
                let mut object = match self.inner.records.get(name.as_str()).await {
                    Ok(object) => object,
                    // Expired just before its entry.
                    Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(nats_error(what, e)),
                };
                let mut bytes = Vec::new();
                object
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(|e| nats_error(&what, e))?;
                Bytes::from(bytes)
            }
        };
        Ok(Some(json))
    }

    /// The record `id` of `namespace`: one direct get.
    pub(super) async fn read_record(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, DbError> {
        let key = record_key(namespace, id.as_str());
        let subject = self.inner.activations.subject(&key);
        match self
            .inner
            .activations
            .stream
            .direct_get_last_for_subject(subject)
            .await
        {
            Ok(message) => {
                self.record_of(&key, &message.headers, message.payload)
                    .await
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(nats_error(format_args!("reading activation {id}"), e)),
        }
    }

    /// The record `id`, whatever its namespace: one get of the last
    /// message on `…*.{id}`.
    pub(super) async fn find_record(
        &self,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, DbError> {
        let bucket = &self.inner.activations;
        let subject = format!("{}*.{}", bucket.prefix, escape_token(id.as_str()));
        match bucket
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(message) => {
                let key = message
                    .subject
                    .strip_prefix(bucket.prefix.as_str())
                    .unwrap_or(message.subject.as_str())
                    .to_owned();
                self.record_of(&key, &message.headers, message.payload)
                    .await
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(nats_error(format_args!("reading activation {id}"), e)),
        }
    }

    /// The record at stream sequence `seq`, if still there, for a list: a
    /// record that does not parse is logged and left out rather than
    /// failing the whole list (reading it by id still reports it corrupt).
    async fn record_at(&self, seq: u64) -> Result<Option<WhiskActivation>, DbError> {
        let bucket = &self.inner.activations;
        match bucket.stream.direct_get(seq).await {
            Ok(message) => {
                let key = message
                    .subject
                    .strip_prefix(bucket.prefix.as_str())
                    .unwrap_or(message.subject.as_str())
                    .to_owned();
                let Some(json) = self
                    .json_of(&key, &message.headers, message.payload)
                    .await?
                else {
                    return Ok(None);
                };
                match serde_json::from_slice(&json) {
                    Ok(record) => Ok(Some(record)),
                    Err(error) => {
                        tracing::warn!(record = %key, %error, "skipping an unreadable activation record in a list");
                        Ok(None)
                    }
                }
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(nats_error("reading an activation record", e)),
        }
    }

    /// Records of `namespace` matching `query`, newest first (by `start`,
    /// then by when they were stored). Reads the headers of every record
    /// kept for the namespace, then the records of the page. A record that
    /// expires between the two is left out.
    pub(super) async fn scan_records(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<WhiskActivation>, DbError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let bucket = &self.inner.activations;
        let filter = format!("{}{}.*", bucket.prefix, escape_token(namespace));
        let what = format!("listing the activations of {namespace}");
        let messages = scan::last_per_subject(&bucket.stream, filter, true, 1)
            .await
            .map_err(|e| nats_error(&what, e))?;
        let wanted = Filter::new(query);
        let mut found: Vec<(u64, u64)> = Vec::new();
        for message in messages {
            if !is_value(message.headers.as_ref()) {
                continue;
            }
            let seq = message
                .info()
                .map(|i| i.stream_sequence)
                .map_err(|e| nats_error(&what, e))?;
            let head = match message.headers.as_ref().and_then(Head::from_headers) {
                Some(head) => head,
                // Not written by this store: read the record itself.
                None => match self.record_at(seq).await? {
                    Some(record) => Head::of(&record),
                    None => continue,
                },
            };
            if wanted.matches(&head) {
                found.push((head.start, seq));
            }
        }
        found.sort_unstable_by(|a, b| b.cmp(a));
        let page: Vec<u64> = found
            .into_iter()
            .skip(query.skip)
            .take(query.limit)
            .map(|(_, seq)| seq)
            .collect();
        let records: Vec<Option<WhiskActivation>> = futures_util::stream::iter(page)
            .map(|seq| self.record_at(seq))
            .buffered(PAGE_READS)
            .try_collect()
            .await?;
        Ok(records.into_iter().flatten().collect())
    }

    /// Deletes every record of namespace `name` (namespace deletion).
    /// Records kept in `{prefix}-records` expire with their age bound.
    pub(super) async fn remove_records_of(&self, name: &str) -> Result<(), DbError> {
        let bucket = &self.inner.activations;
        bucket
            .stream
            .purge()
            .filter(format!("{}{}.*", bucket.prefix, escape_token(name)))
            .await
            .map(drop)
            .map_err(|e| nats_error(format_args!("deleting the activations of {name}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(name: &str, path: Option<&str>, start: u64) -> Head {
        Head {
            name: name.to_owned(),
            path: path.map(str::to_owned),
            start,
        }
    }

    #[test]
    fn heads_round_trip_through_headers() {
        for h in [
            head("hello", Some("guest/pkg/hello"), 5),
            head("a b.c", None, u64::MAX),
            head("x", Some("ns/x\r\n"), 0),
        ] {
            assert_eq!(Head::from_headers(&h.headers()), Some(h));
        }
        assert_eq!(Head::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn the_query_reads_as_the_sqlite_store_reads_it() {
        let query = |name: Option<&str>, since, upto| ActivationQuery {
            name: name.map(str::to_owned),
            limit: 10,
            skip: 0,
            since,
            upto,
        };
        let plain = head("hello", Some("guest/hello"), 10);
        let packaged = head("hello", Some("guest/pkg/hello"), 20);
        let f = Filter::new(&query(Some("hello"), None, None));
        assert!(f.matches(&plain) && f.matches(&packaged));
        let f = Filter::new(&query(Some("/pkg/hello/"), None, None));
        assert!(!f.matches(&plain) && f.matches(&packaged));
        let f = Filter::new(&query(Some(""), Some(15), None));
        assert!(!f.matches(&plain) && f.matches(&packaged));
        let f = Filter::new(&query(None, Some(10), Some(10)));
        assert!(f.matches(&plain) && !f.matches(&packaged));
        let f = Filter::new(&query(Some("pkg/hello"), None, None));
        assert!(!f.matches(&head("hello", None, 1)));
    }
}
