//! The HTTP server every wasmwhisk process runs its API on: an accept loop
//! with a connection cap, each connection served by [`super::connection`]
//! under the timeouts of `[http]`.
//!
//! `axum::serve` accepts every connection the kernel hands it and bounds no
//! client's time, so a client without a key could open connections until
//! the process ran out of file descriptors — then new clients were never
//! accepted and a PUT failed writing its compiled component (EMFILE). Here:
//!
//! - the soft `RLIMIT_NOFILE` is raised to the hard one at start;
//! - at most [`connection_cap`] connections are served at once: a
//!   [`Semaphore`] permit is taken *before* `accept`, so further clients
//!   wait in the kernel's listen backlog (costing the process nothing)
//!   until a connection closes; the cap leaves [`FD_HEADROOM`] descriptors
//!   (or half of them, if that is more) for the server's own files;
//! - each connection is closed when its head, its idle spell or its body
//!   takes too long.
//!
//! While the process is out of descriptors, `accept` fails at once; the
//! loop backs off [`ACCEPT_BACKOFF`] and warns at most every
//! [`WARN_EVERY`] ([`Throttle`]), counting the failures it did not log.
//!
//! # Shutdown
//! When `stop` resolves, the listener is closed (new clients are refused),
//! every connection is told to finish the request in hand and close, and
//! [`serve`] returns once all have closed — or once the shutdown grace has
//! passed, aborting the connections still open: a client that never
//! finishes cannot hold the process up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::HttpConfig;

/// File descriptors kept for the server's own files (database, compile
/// cache, sandboxes' memory images, cluster connections) when the cap is
/// derived from `RLIMIT_NOFILE`.
pub const FD_HEADROOM: usize = 512;

/// How long to wait before accepting again after an error that is not the
/// client's (out of descriptors or memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The least time between two warnings about failing accepts.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Lets a repeated warning through at most once every `every`, counting
/// the ones it held back.
#[derive(Debug)]
struct Throttle {
    every: Duration,
    /// When a warning was last let through; `None` before the first.
    last: Option<Instant>,
    /// Warnings held back since `last`.
    suppressed: u64,
}

impl Throttle {
    fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: warn now, `n` warnings having been held back since the
    /// last; `None`: hold this one back.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if due {
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }
}

/// Connections served at once: `max_connections`, lowered to leave
/// [`FD_HEADROOM`] of the `nofile` descriptors (at least half of them) to
/// the rest of the process; at least 1. `None`: the limit is unknown.
pub fn connection_cap(max_connections: usize, nofile: Option<u64>) -> usize {
    let cap = match nofile {
        Some(nofile) => {
            let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
            let room = nofile.saturating_sub(FD_HEADROOM).max(nofile / 2);
            max_connections.min(room)
        }
        None => max_connections,
    };
    cap.clamp(1, u32::MAX as usize)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; the soft limit now in
/// force, or `None` if it cannot be read.
#[allow(
    unsafe_code,
    reason = "getrlimit and setrlimit are C calls; the SAFETY comments say why they hold"
)]
pub fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        } else {
            tracing::debug!(
                soft = limit.rlim_cur,
                hard = limit.rlim_max,
                "could not raise the file descriptor limit"
            );
        }
    }
    Some(limit.rlim_cur)
}

/// Serves `router` on `listener` under `bounds` until `stop` resolves; then
/// lets open requests finish and returns once every connection is closed,
/// or after `grace`, aborting the connections still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: &HttpConfig,
    grace: Duration,
    stop: impl Future<Output = ()>,
) {
    let nofile = raise_fd_limit();
    let cap = connection_cap(bounds.max_connections, nofile);
    if cap < bounds.max_connections {
        tracing::warn!(
            max_connections = bounds.max_connections,
            cap,
            nofile,
            "http.max-connections lowered to leave file descriptors for the server's own files"
        );
    }
    let permits = Arc::new(Semaphore::new(cap));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection's task; finished ones are reaped at each accept, so
    // it holds at most `cap` running tasks and a few finished ones.
    let mut connections = JoinSet::new();
    let mut accept_warning = Throttle::new(WARN_EVERY);
    tokio::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                connections.spawn(super::connection::serve(
                    stream,
                    router.clone(),
                    bounds.clone(),
                    stop_rx.clone(),
                    permit,
                ));
            }
            Err(error) if is_the_clients(&error) => {}
            Err(error) => {
                if let Some(suppressed) = accept_warning.allow(Instant::now()) {
                    tracing::warn!(
                        %error,
                        suppressed,
                        "accepting a connection failed; retrying"
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, closed).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            "connections still open after the shutdown grace; closing them"
        );
        connections.shutdown().await;
    }
}

/// An accept error that concerns only the connection being accepted.
fn is_the_clients(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_servers_own_files() {
        assert_eq!(connection_cap(1024, Some(20_000)), 1024);
        assert_eq!(connection_cap(1024, Some(1024)), 512);
        assert_eq!(connection_cap(1024, Some(640)), 320, "at least half");
        assert_eq!(connection_cap(1024, Some(2048)), 1024);
        assert_eq!(connection_cap(1024, Some(1500)), 988);
        assert_eq!(connection_cap(64, None), 64);
        assert_eq!(connection_cap(8, Some(1)), 1, "at least one");
        assert_eq!(
            connection_cap(usize::MAX, Some(u64::MAX)),
            u32::MAX as usize
        );
    }

    #[test]
    fn repeated_accept_warnings_are_throttled_and_counted() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(10));
        assert_eq!(throttle.allow(t0), Some(0), "the first one is logged");
        // out of descriptors: a failure every 100 ms for 10 s
        for i in 1..100 {
            let at = t0 + Duration::from_millis(100 * i);
            assert_eq!(throttle.allow(at), None, "held back at {i}");
        }
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(
            throttle.allow(t10),
            Some(99),
            "the held-back ones are counted"
        );
        assert_eq!(throttle.allow(t10 + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(t10 + Duration::from_secs(20)), Some(1));
    }

    #[test]
    #[allow(unsafe_code, reason = "getrlimit is a C call")]
    fn the_limit_is_raised_to_the_hard_one() {
        let Some(soft) = raise_fd_limit() else {
            return;
        };
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(soft, limit.rlim_cur);
        assert!(soft <= limit.rlim_max);
    }
}
