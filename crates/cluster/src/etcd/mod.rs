//! The cluster state on etcd, exactly as OpenWhisk keeps it (docs/openwhisk.md §4.2,
//! §4.3): one lease per process, every key written under it, so that all
//! of a dead process's keys vanish together one lease TTL after it died.
//!
//! ```text
//!            connect: grant lease, put {cluster}/instance/{instance}/lease = lease id
//!                                  │
//!   ┌──────────────────────────────▼─────────────────────────────┐
//!   │ Online: put/delete are written (batched in one txn per     │
//!   │ round trip) and awaited; keep-alive every 500 ms (≤ TTL/3) │
//!   └──┬─────────────────────────────────────────────▲───────────┘
//!      │ keep-alive stream ends, a write or a       │ re-grant a lease, re-put
//!      │ keep-alive fails, the lease expired,       │ every held key and the
//!      │ the lease key was deleted                  │ lease key, delete what was
//!      ▼                                            │ deleted meanwhile, revoke
//!   ┌──────────────────────────────────────────────┴───┐ the old lease
//!   │ Offline: put/delete are remembered and fail fast  │
//!   │ with ClusterError; reconnect with backoff         │
//!   └───────────────────────────────────────────────────┘
//!   shutdown: stop taking writes, write what is pending (`down`), revoke the lease
//! ```
//!
//! [`EtcdClusterState`] is the invoker's side: the pool's
//! [`ClusterState`](wasmwhisk_core::pool::ports::ClusterState) port. It remembers
//! every key it holds (key → latest value), which is what lets it come back
//! after etcd was away: the lease may have expired and taken the keys with
//! it, so it grants a new one and writes them all again. [`EtcdReader`] is
//! the controller's side: the invokers' reports, any prefix, and a
//! [`PrefixWatch`] that resumes after reconnects.
//!
//! Where we differ from OpenWhisk, on purpose: OpenWhisk revokes the old
//! lease *before* granting a new one (every key vanishes until it is
//! re-put); we re-put under the new lease first, then revoke the old one, so
//! a reconnect never makes a live invoker look dead. OpenWhisk retries a
//! failed write forever in the background and the caller never hears of it;
//! here the caller gets a [`ClusterError`](wasmwhisk_core::pool::ports::ClusterError)
//! at once while etcd is away (the pool logs and carries on) and the write
//! still happens when etcd is back — the latest value wins.

mod book;
mod mirror;
mod reader;
mod session;
mod state;
mod watch;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};

use etcd_client::{Client, ConnectOptions};

use wasmwhisk_core::config::EtcdConfig;
use wasmwhisk_core::pool::ports::ClusterError;

pub use mirror::ClusterMirror;
pub use reader::{EtcdReader, InvokerReport, Listing};
pub use state::{EtcdClusterState, EtcdStats};
pub use watch::{PrefixWatch, WatchEvent};

/// OpenWhisk's keep-alive period (`LeaseKeepAliveService`): far inside any
/// TTL, and a lost etcd is noticed within it.
const OPENWHISK_KEEP_ALIVE: Duration = Duration::from_millis(500);

/// How often an idle connection is pinged (HTTP/2).
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(10);

/// How the etcd adapters connect and how they ride out an outage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Endpoints of the etcd cluster (`[etcd] endpoints`).
    pub endpoints: Vec<String>,
    /// TTL of the lease; whole seconds, at least 1 (`[etcd] lease-timeout`).
    /// Default 10 s.
    pub lease_ttl: Duration,
    /// How often the lease is kept alive. Default 500 ms (OpenWhisk's), or
    /// a third of the TTL if that is shorter.
    pub keep_alive_interval: Duration,
    /// The longest one request may take before etcd counts as away.
    /// Default 2 s.
    pub request_timeout: Duration,
    /// The longest a TCP connect to an endpoint may take. Default 1 s.
    pub connect_timeout: Duration,
    /// First delay between reconnect attempts; it doubles up to
    /// [`reconnect_max`](Self::reconnect_max). Default 100 ms.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts. Default 2 s.
    pub reconnect_max: Duration,
}

impl Default for EtcdSettings {
    fn default() -> Self {
        EtcdSettings::from_config(&EtcdConfig::default())
    }
}

impl EtcdSettings {
    /// The settings of `[etcd]`, with the defaults above for the rest.
    pub fn from_config(config: &EtcdConfig) -> Self {
        let lease_ttl = config.lease_timeout.max(Duration::from_secs(1));
        EtcdSettings {
            endpoints: config.endpoints.clone(),
            lease_ttl,
            keep_alive_interval: OPENWHISK_KEEP_ALIVE.min(lease_ttl / 3),
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
        }
    }

    /// The lease TTL in etcd's unit (whole seconds, at least 1).
    fn ttl_secs(&self) -> i64 {
        i64::try_from(self.lease_ttl.as_secs().max(1)).unwrap_or(i64::MAX)
    }

    /// A client for the endpoints. Connecting is lazy (no I/O happens here),
    /// so this only fails on a malformed endpoint.
    async fn client(&self) -> Result<Client, ClusterError> {
        // No per-request timeout here: it would also cut the long-lived
        // streams (keep-alive, watch); `timed` bounds each call instead.
        // HTTP/2 pings make a silent peer break those streams; etcd refuses
        // pings more often than every 5 s (`--grpc-keepalive-min-time`).
        let options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_keep_alive(HTTP2_PING_INTERVAL, self.request_timeout)
            .with_keep_alive_while_idle(true);
        Client::connect(&self.endpoints, Some(options))
            .await
            .map_err(|e| unavailable("connecting", &e))
    }

    /// `future` bounded by the request timeout. The client's own timeout
    /// does not cover the wait for a connection when every endpoint is
    /// down, so every call goes through here.
    async fn timed<T>(
        &self,
        what: &str,
        future: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.request_timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(unavailable(what, &e)),
            Err(_) => Err(ClusterError(format!(
                "etcd did not answer {what} within {:?}",
                self.request_timeout
            ))),
        }
    }

    /// The delay before reconnect attempt `attempt` (0-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.reconnect_min
            .saturating_mul(factor)
            .min(self.reconnect_max)
    }
}

/// A spawned task, aborted when its owner drops it: no background loop of
/// this module outlives the value that started it.
#[derive(Debug)]
struct Task<T>(JoinHandle<T>);

impl<T: Send + 'static> Task<T> {
    fn spawn(future: impl Future<Output = T> + Send + 'static) -> Self {
        Task(tokio::spawn(future))
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

fn unavailable(what: &str, error: &etcd_client::Error) -> ClusterError {
    ClusterError(format!("etcd failed {what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_the_config() {
        let s = EtcdSettings::default();
        assert_eq!(s.lease_ttl, Duration::from_secs(10));
        assert_eq!(s.keep_alive_interval, Duration::from_millis(500));
        assert_eq!(s.endpoints, vec!["http://127.0.0.1:2379".to_string()]);
        let short = EtcdSettings::from_config(&EtcdConfig {
            lease_timeout: Duration::from_secs(1),
            ..EtcdConfig::default()
        });
        assert_eq!(short.keep_alive_interval, Duration::from_secs(1) / 3);
        assert_eq!(short.ttl_secs(), 1);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = EtcdSettings::default();
        let delays: Vec<_> = (0..7).map(|a| s.backoff(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(2));
    }
}
