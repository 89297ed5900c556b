//! [`EtcdReader`]: what the controller reads from etcd — the invokers'
//! reports (`{cluster}/invokers/…` → [`InvokerResourceMessage`]), any
//! prefix, and watches that resume after reconnects.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use etcd_client::{Client, GetOptions, KeyValue};

use super::EtcdSettings;
use super::watch::PrefixWatch;
use wasmwhisk_core::pool::ports::ClusterError;
use wasmwhisk_protocol::{EtcdKeys, InvokerResourceMessage};

/// One invoker's report, read from `{cluster}/invokers/{N}[/{unique}[/{displayed}]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokerReport {
    /// The invoker number `N`.
    pub instance: u32,
    /// The unique name in the key, if any.
    pub unique_name: Option<String>,
    /// The displayed name in the key, if any.
    pub displayed_name: Option<String>,
    /// Health and memory.
    pub resource: InvokerResourceMessage,
}

/// Keys and values under a prefix, as of one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Each key and its value, in key order.
    pub entries: Vec<(String, String)>,
    /// The store's revision the listing is of; a watch from `revision + 1`
    /// misses nothing.
    pub revision: i64,
}

/// Reads the cluster state. Cheap to clone; holds no lease and writes
/// nothing.
#[derive(Clone)]
pub struct EtcdReader {
    settings: EtcdSettings,
    keys: EtcdKeys,
    client: Client,
    /// Values that were not valid reports (or not UTF-8), skipped.
    malformed: Arc<AtomicU64>,
}

impl std::fmt::Debug for EtcdReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdReader")
            .field("endpoints", &self.settings.endpoints)
            .field("cluster", &self.keys.cluster())
            .field("malformed", &self.malformed())
            .finish()
    }
}

impl EtcdReader {
    /// A reader of cluster `keys` at `settings.endpoints`. Connects lazily:
    /// fails only on a malformed endpoint.
    pub async fn new(settings: EtcdSettings, keys: EtcdKeys) -> Result<Self, ClusterError> {
        let client = settings.client().await?;
        Ok(EtcdReader {
            settings,
            keys,
            client,
            malformed: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The keys of the cluster read.
    pub fn keys(&self) -> &EtcdKeys {
        &self.keys
    }

    /// How many malformed entries were skipped so far (keys or values that
    /// are not UTF-8, invoker keys or reports that do not parse).
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Every key under `prefix` with its value (entries that are not UTF-8
    /// are logged, counted and skipped).
    pub async fn list_prefix(&self, prefix: &str) -> Result<Listing, ClusterError> {
        let mut client = self.client.clone();
        let mut response = self
            .settings
            .timed(
                "listing keys",
                client.get(prefix, Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let entries = response
            .take_kvs()
            .iter()
            .filter_map(|kv| self.text(kv))
            .collect();
        Ok(Listing { entries, revision })
    }

    /// Every invoker's report, by invoker number; malformed ones are logged,
    /// counted and skipped.
    pub async fn invokers(&self) -> Result<Vec<InvokerReport>, ClusterError> {
        let prefix = format!("{}/", self.keys.invokers_prefix());
        let listing = self.list_prefix(&prefix).await?;
        Ok(self.parse_invokers(&listing.entries))
    }

    /// The reports among `entries` (from a listing or a watch snapshot),
    /// sorted by invoker number; malformed ones are logged, counted and
    /// skipped.
    pub fn parse_invokers(&self, entries: &[(String, String)]) -> Vec<InvokerReport> {
        let mut reports: Vec<InvokerReport> = entries
            .iter()
            .filter_map(|(key, value)| self.parse_invoker(key, value))
            .collect();
        reports.sort_by_key(|r| r.instance);
        reports
    }

    /// One invoker report, or `None` (logged and counted) if the key or the
    /// value is not one.
    pub fn parse_invoker(&self, key: &str, value: &str) -> Option<InvokerReport> {
        let (instance, unique_name, displayed_name) = match self.keys.parse_invoker_key(key) {
            Ok(parts) => parts,
            Err(e) => {
                self.skip(key, &e);
                return None;
            }
        };
        match serde_json::from_str::<InvokerResourceMessage>(value) {
            Ok(resource) => Some(InvokerReport {
                instance,
                unique_name,
                displayed_name,
                resource,
            }),
            Err(e) => {
                self.skip(key, &e);
                None
            }
        }
    }

    /// A watch of every change under `prefix`: first a
    /// [`Snapshot`](super::WatchEvent::Snapshot), then puts and deletes,
    /// resumed after a reconnect (a fresh snapshot if etcd compacted the
    /// revisions missed). Stops when dropped.
    pub fn watch_prefix(&self, prefix: &str) -> PrefixWatch {
        PrefixWatch::start(
            self.settings.clone(),
            prefix.to_owned(),
            self.malformed.clone(),
        )
    }

    fn text(&self, kv: &KeyValue) -> Option<(String, String)> {
        text(kv, &self.malformed)
    }

    fn skip(&self, key: &str, error: &dyn std::fmt::Display) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(key, error = %error, "skipping a malformed invoker report in etcd");
    }
}

/// A key and value as text, or `None` (logged and counted in `malformed`).
pub(super) fn text(kv: &KeyValue, malformed: &AtomicU64) -> Option<(String, String)> {
    match (kv.key_str(), kv.value_str()) {
        (Ok(key), Ok(value)) => Some((key.to_owned(), value.to_owned())),
        _ => {
            malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                key = %String::from_utf8_lossy(kv.key()),
                "skipping an etcd entry that is not UTF-8"
            );
            None
        }
    }
}
