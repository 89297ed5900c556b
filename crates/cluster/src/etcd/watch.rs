//! [`PrefixWatch`]: every change under a prefix, as a stream of
//! [`WatchEvent`]s that survives etcd going away.
//!
//! The watch starts with a snapshot (a listing at revision `R`) and then
//! watches from `R + 1`, remembering the revision after the last event it
//! delivered. When the stream breaks it reconnects with backoff and resumes
//! from that revision, so nothing is missed and nothing repeats; if etcd has
//! compacted those revisions away it sends a fresh snapshot instead, which
//! replaces the consumer's view. While etcd is away no events come: the
//! consumer's view is as of the last event.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use etcd_client::{EventType, GetOptions, WatchOptions};
use tokio::sync::mpsc;

use super::reader::text;
use super::{EtcdSettings, Task};

/// How many events may wait for a slow consumer before the watch waits.
const BUFFER: usize = 1024;

/// One change under the watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Every key under the prefix now, with its value, in key order: the
    /// first event, and again whenever the watch could not resume where it
    /// left off. Replaces whatever the consumer knew.
    Snapshot {
        /// Keys and values.
        entries: Vec<(String, String)>,
        /// The revision of the listing.
        revision: i64,
    },
    /// `key` was written.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
        /// The revision of the write.
        revision: i64,
    },
    /// `key` was deleted (or its lease expired).
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        revision: i64,
    },
}

/// A running watch; dropping it stops it.
#[derive(Debug)]
pub struct PrefixWatch {
    events: mpsc::Receiver<WatchEvent>,
    _task: Task<()>,
}

impl PrefixWatch {
    pub(super) fn start(settings: EtcdSettings, prefix: String, malformed: Arc<AtomicU64>) -> Self {
        let (tx, events) = mpsc::channel(BUFFER);
        let task = Task::spawn(run(settings, prefix, malformed, tx));
        PrefixWatch {
            events,
            _task: task,
        }
    }

    /// The next change; waits while there is none (or etcd is away).
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }
}

/// Why one connection's watch ended.
enum Stop {
    /// The consumer is gone.
    Closed,
    /// etcd was lost; reconnect and resume.
    Lost(String),
    /// The revisions to resume from are gone; start over at once.
    Compacted(i64),
}

/// Watches until the consumer is gone, reconnecting with backoff.
async fn run(
    settings: EtcdSettings,
    prefix: String,
    malformed: Arc<AtomicU64>,
    tx: mpsc::Sender<WatchEvent>,
) {
    let mut cursor = Cursor::default();
    loop {
        match watch_once(&settings, &prefix, &malformed, &tx, &mut cursor).await {
            Stop::Closed => return,
            Stop::Compacted(revision) => {
                tracing::info!(
                    prefix,
                    revision,
                    "etcd compacted the revisions the watch needed; starting over from a snapshot"
                );
            }
            Stop::Lost(reason) => {
                if cursor.failures == 0 {
                    tracing::warn!(
                        prefix,
                        reason,
                        "etcd watch lost; resuming when etcd is back"
                    );
                } else {
                    tracing::debug!(prefix, reason, "etcd watch still lost");
                }
                let delay = settings.backoff(cursor.failures);
                cursor.failures = cursor.failures.saturating_add(1);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = tx.closed() => return,
                }
            }
        }
    }
}

/// Where the watch is.
#[derive(Debug, Default)]
struct Cursor {
    /// The revision to resume from; `None`: start with a snapshot.
    next: Option<i64>,
    /// Reconnect attempts since the watch last ran.
    failures: u32,
}

/// One connection: a snapshot if needed, then events until the stream
/// breaks.
async fn watch_once(
    settings: &EtcdSettings,
    prefix: &str,
    malformed: &AtomicU64,
    tx: &mpsc::Sender<WatchEvent>,
    cursor: &mut Cursor,
) -> Stop {
    let mut client = match settings.client().await {
        Ok(client) => client,
        Err(e) => return Stop::Lost(e.0),
    };
    let from = match cursor.next {
        Some(next) => next,
        None => {
            let listed = settings
                .timed(
                    "listing keys",
                    client.get(prefix, Some(GetOptions::new().with_prefix())),
                )
                .await;
            let mut response = match listed {
                Ok(response) => response,
                Err(e) => return Stop::Lost(e.0),
            };
            let revision = response.header().map_or(0, |h| h.revision());
            let entries = response
                .take_kvs()
                .iter()
                .filter_map(|kv| text(kv, malformed))
                .collect();
            if tx
                .send(WatchEvent::Snapshot { entries, revision })
                .await
                .is_err()
            {
                return Stop::Closed;
            }
            cursor.next = Some(revision + 1);
            revision + 1
        }
    };
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(from)
        .with_progress_notify();
    let mut stream = match settings
        .timed("watching keys", client.watch(prefix, Some(options)))
        .await
    {
        Ok(stream) => stream,
        Err(e) => return Stop::Lost(e.0),
    };
    cursor.failures = 0;
    loop {
        let message = tokio::select! {
            message = stream.message() => message,
            () = tx.closed() => return Stop::Closed,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => return Stop::Lost("the watch stream ended".into()),
            Err(e) => return Stop::Lost(format!("the watch stream failed: {e}")),
        };
        if response.compact_revision() > 0 {
            cursor.next = None;
            return Stop::Compacted(response.compact_revision());
        }
        if response.canceled() {
            return Stop::Lost(format!(
                "the watch was canceled: {}",
                response.cancel_reason()
            ));
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let revision = kv.mod_revision();
            let change = match event.event_type() {
                EventType::Put => text(kv, malformed).map(|(key, value)| WatchEvent::Put {
                    key,
                    value,
                    revision,
                }),
                EventType::Delete => {
                    text(kv, malformed).map(|(key, _)| WatchEvent::Delete { key, revision })
                }
            };
            if let Some(change) = change
                && tx.send(change).await.is_err()
            {
                return Stop::Closed;
            }
            cursor.next = Some(revision + 1);
        }
        // A progress notification: every event up to the header's revision
        // has been delivered.
        if response.events().is_empty()
            && !response.created()
            && let Some(header) = response.header()
        {
            cursor.next = cursor.next.max(Some(header.revision() + 1));
        }
    }
}
