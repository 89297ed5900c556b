//! Warmed (paused) sandboxes, cached in moka.
//!
//! A paused sandbox is plain data: no task, no timer, no thread. It sits in
//! this cache until one of three things happens:
//! - a creation message for its action takes it back ([`WarmCache::take`]);
//! - the pool evicts it for room or drains it ([`WarmCache::take`] too, and
//!   the caller drops it);
//! - it stays idle for its time to live: `idle-container` first, then, if
//!   the keep decision kept it, `keeping-duration`. Expiry is per entry
//!   (moka's [`Expiry`]) and is noticed by the pool's one periodic
//!   maintenance call ([`WarmCache::expired`]), so ten thousand idle
//!   sandboxes cost no wake-ups at all. moka's timer wheel has buckets of
//!   about a second, so an expiry is noticed up to ~1 s late; against
//!   `idle-container`'s minutes that is noise.
//!
//! The pool's [`PoolState`](super::PoolState) stays the single source of
//! truth for memory and per-action lookup; this cache owns the sandboxes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::Expiry;
use moka::notification::RemovalCause;
use moka::sync::Cache;

use super::container::Container;
use super::ports::ExecutableAction;
use super::slot::SandboxId;
use crate::sync::lock;

/// How long a warmed sandbox may be kept after `idle-container`, from its
/// namespace's limits (`warmedContainerKeepingCount` / `…Timeout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keeping {
    /// Keep it while at most this many containers of the action exist.
    pub count: u32,
    /// How long to keep it; `None`: `keeping-duration`.
    pub timeout: Option<Duration>,
}

/// How often the live-count lookup of the keep decision is tried, and the
/// pause between tries (OpenWhisk's `DetermineKeepContainer`: 5 × 500 ms).
pub const LIVE_COUNT_ATTEMPTS: u32 = 5;
/// See [`LIVE_COUNT_ATTEMPTS`].
pub const LIVE_COUNT_RETRY: Duration = Duration::from_millis(500);

impl Keeping {
    /// OpenWhisk's `DetermineKeepContainer` once `idle-container` (or, for a
    /// kept sandbox, the keeping time) ran out: how much longer to keep the
    /// sandbox, `None` to remove it. A kept sandbox is removed at its second
    /// expiry; otherwise it is kept while the action's `live` containers (its
    /// own warmed key included) are at most `count`, for `timeout`, else
    /// `keeping_duration`. A live count that could not be read removes it.
    pub fn decide(
        &self,
        kept: bool,
        live: Option<usize>,
        keeping_duration: Duration,
    ) -> Option<Duration> {
        if kept {
            return None;
        }
        match live {
            Some(n) if n <= self.count as usize => Some(self.timeout.unwrap_or(keeping_duration)),
            _ => None,
        }
    }

    /// True when the decision needs the live count: a kept sandbox goes
    /// anyway, and with a count of 0 its own warmed key already exceeds it.
    pub fn needs_live_count(&self, kept: bool) -> bool {
        !kept && self.count > 0
    }
}

/// Reads the live count with `lookup`, trying [`LIVE_COUNT_ATTEMPTS`] times
/// [`LIVE_COUNT_RETRY`] apart; `None` when every try failed.
pub async fn live_count_with_retries<F, Fut>(mut lookup: F) -> Option<usize>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<usize>>,
{
    for attempt in 1..=LIVE_COUNT_ATTEMPTS {
        if let Some(n) = lookup().await {
            return Some(n);
        }
        if attempt < LIVE_COUNT_ATTEMPTS {
            tracing::warn!(attempt, "reading the live container count failed; retrying");
            tokio::time::sleep(LIVE_COUNT_RETRY).await;
        }
    }
    None
}

/// A paused sandbox and what it needs to run again.
#[derive(Debug)]
pub struct WarmEntry {
    /// The initialized sandbox (a paused container on Docker).
    pub sandbox: Container,
    /// Its action (name and revision of its warm-reuse identity).
    pub action: Arc<ExecutableAction>,
    /// The namespace it ran activations for (the rest of that identity).
    pub invocation_namespace: String,
    /// Its namespace's keeping limits.
    pub keeping: Keeping,
    /// True once the keep decision kept it (its second, last, life).
    pub kept: bool,
}

/// A cache value: the time to live chosen at insertion, and the entry,
/// taken out exactly once.
#[derive(Debug)]
struct Held {
    ttl: Duration,
    entry: Mutex<Option<WarmEntry>>,
}

impl Held {
    fn take(&self) -> Option<WarmEntry> {
        lock(&self.entry).take()
    }
}

/// Each entry expires after its own `ttl`, counted from its insertion.
struct PerEntry;

impl Expiry<SandboxId, Arc<Held>> for PerEntry {
    fn expire_after_create(
        &self,
        _key: &SandboxId,
        value: &Arc<Held>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The warmed sandboxes of one pool.
pub struct WarmCache {
    cache: Cache<SandboxId, Arc<Held>>,
    expired: Arc<Mutex<Vec<(SandboxId, WarmEntry)>>>,
}

impl std::fmt::Debug for WarmCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for WarmCache {
    fn default() -> Self {
        Self::new()
    }
}

impl WarmCache {
    /// An empty cache.
    pub fn new() -> WarmCache {
        let expired: Arc<Mutex<Vec<(SandboxId, WarmEntry)>>> = Arc::default();
        let sink = expired.clone();
        let cache = Cache::builder()
            .expire_after(PerEntry)
            .eviction_listener(move |id: Arc<SandboxId>, held: Arc<Held>, cause| {
                if cause == RemovalCause::Expired
                    && let Some(entry) = held.take()
                {
                    lock(&sink).push((*id, entry));
                }
            })
            .build();
        WarmCache { cache, expired }
    }

    /// Holds `entry` as sandbox `id` for `ttl`.
    pub fn insert(&self, id: SandboxId, entry: WarmEntry, ttl: Duration) {
        let held = Arc::new(Held {
            ttl,
            entry: Mutex::new(Some(entry)),
        });
        self.cache.insert(id, held);
    }

    /// Takes sandbox `id` out (to resume, evict or drain it).
    pub fn take(&self, id: SandboxId) -> Option<WarmEntry> {
        if let Some(held) = self.cache.remove(&id) {
            return held.take();
        }
        // Expired but not yet handed to the pool: still ours to take.
        let mut expired = lock(&self.expired);
        let at = expired.iter().position(|(e, _)| *e == id)?;
        Some(expired.swap_remove(at).1)
    }

    /// Runs moka's maintenance and returns the entries whose time to live
    /// ran out since the last call.
    pub fn expired(&self) -> Vec<(SandboxId, WarmEntry)> {
        self.cache.run_pending_tasks();
        std::mem::take(&mut *lock(&self.expired))
    }

    /// How many sandboxes are held (after pending maintenance).
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every held sandbox out (shutdown).
    pub fn drain(&self) -> Vec<(SandboxId, WarmEntry)> {
        let ids: Vec<SandboxId> = self.cache.iter().map(|(id, _)| *id).collect();
        let mut out: Vec<(SandboxId, WarmEntry)> = ids
            .into_iter()
            .filter_map(|id| self.take(id).map(|e| (id, e)))
            .collect();
        out.append(&mut lock(&self.expired));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmwhisk_protocol::{DocRevision, EntityName, EntityPath, WhiskActionMetaData};

    fn entry() -> Option<WarmEntry> {
        // The compiled code is mapped before the directory goes: the
        // sandbox outlives it.
        let cache = tempfile::tempdir().ok()?;
        let engine = wasmwhisk_sandbox::engine::Engine::new(
            wasmwhisk_sandbox::engine::EngineConfig {
                max_sandboxes: 4,
                ..Default::default()
            },
            cache.path(),
        )
        .ok()?;
        let engine = Arc::new(engine);
        let code = std::fs::read(wasmwhisk_test_guests::path("hello_rust")).ok()?;
        let (prepared, _) = engine.prepare_wasm(&code).ok()?;
        let sandbox = engine.instantiate(&prepared, 128).ok()?;
        let meta = WhiskActionMetaData::code_action(
            EntityPath::namespace(EntityName::new("guest").ok()?),
            EntityName::new("hello").ok()?,
            "wasm",
            true,
            Default::default(),
        );
        Some(WarmEntry {
            sandbox: sandbox.into(),
            action: Arc::new(ExecutableAction {
                meta,
                revision: DocRevision::new("1-a"),
                code: code.into(),
                code_key: None,
            }),
            invocation_namespace: "guest".into(),
            keeping: Keeping::default(),
            kept: false,
        })
    }

    fn keeping(count: u32) -> Keeping {
        Keeping {
            count,
            timeout: Some(Duration::from_secs(10)),
        }
    }

    const DEFAULT_KEEP: Duration = Duration::from_secs(600);

    #[test]
    fn keep_the_container_if_live_count_is_less_than_warmed_container_keeping_count_configuration()
    {
        assert!(keeping(2).needs_live_count(false));
        assert_eq!(
            keeping(2).decide(false, Some(1), DEFAULT_KEEP),
            Some(Duration::from_secs(10))
        );
        // Equal keeps too; no namespace timeout falls back to keeping-duration.
        let no_timeout = Keeping {
            count: 1,
            timeout: None,
        };
        assert_eq!(
            no_timeout.decide(false, Some(1), DEFAULT_KEEP),
            Some(DEFAULT_KEEP)
        );
    }

    #[test]
    fn remove_the_container_if_live_count_is_greater_than_warmed_container_keeping_count_configuration()
     {
        assert_eq!(keeping(1).decide(false, Some(2), DEFAULT_KEEP), None);
        // A count of 0: its own warmed key exceeds it, no lookup needed.
        assert!(!keeping(0).needs_live_count(false));
        assert_eq!(keeping(0).decide(false, Some(1), DEFAULT_KEEP), None);
    }

    #[test]
    fn destroy_container_proxy_even_if_there_is_1_container_if_timeout_in_keep() {
        // The second expiry (the keeping time ran out) removes it.
        assert!(!keeping(1).needs_live_count(true));
        assert_eq!(keeping(1).decide(true, Some(1), DEFAULT_KEEP), None);
    }

    #[tokio::test(start_paused = true)]
    async fn destroy_container_proxy_when_stopping_due_to_timeout_and_getting_live_count_fails_once()
     {
        let start = tokio::time::Instant::now();
        let mut calls = 0;
        let live = live_count_with_retries(|| {
            calls += 1;
            let answer = (calls > 1).then_some(2);
            async move { answer }
        })
        .await;
        assert_eq!(live, Some(2), "the second try is read");
        assert_eq!(calls, 2);
        assert_eq!(start.elapsed(), LIVE_COUNT_RETRY);
        // 2 live containers > a keeping count of 1: removed.
        assert_eq!(keeping(1).decide(false, live, DEFAULT_KEEP), None);
    }

    #[tokio::test(start_paused = true)]
    async fn destroy_container_proxy_when_stopping_due_to_timeout_and_getting_live_count_fails_permanently()
     {
        let start = tokio::time::Instant::now();
        let mut calls = 0;
        let live = live_count_with_retries(|| {
            calls += 1;
            async { None }
        })
        .await;
        assert_eq!(live, None);
        assert_eq!(calls, LIVE_COUNT_ATTEMPTS);
        assert_eq!(
            start.elapsed(),
            LIVE_COUNT_RETRY * (LIVE_COUNT_ATTEMPTS - 1)
        );
        assert_eq!(keeping(5).decide(false, live, DEFAULT_KEEP), None);
    }

    #[test]
    fn entries_expire_after_their_own_ttl_and_can_be_taken_before() {
        let cache = WarmCache::new();
        let (Some(a), Some(b)) = (entry(), entry()) else {
            panic!("building test sandboxes failed");
        };
        cache.insert(1, a, Duration::from_millis(30));
        cache.insert(2, b, Duration::from_secs(600));
        assert_eq!(cache.len(), 2);
        // moka's timer wheel has ~1 s buckets: expiry is noticed within one.
        let mut expired = Vec::new();
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(100));
            expired = cache.expired();
            if !expired.is_empty() {
                break;
            }
        }
        assert_eq!(
            expired.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![1]
        );
        assert!(cache.expired().is_empty(), "handed out once");
        assert!(cache.take(1).is_none());
        assert!(cache.take(2).is_some());
        assert!(cache.take(2).is_none());
        assert!(cache.is_empty());
    }
}
