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
//! # Shutdown
//! When `stop` resolves, the listener is closed (new clients are refused),
//! every connection is told to finish the request in hand and close, and
//! [`serve`] returns once all have closed: the permits all back.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::HttpConfig;

/// File descriptors kept for the server's own files (database, compile
/// cache, sandboxes' memory images, cluster connections) when the cap is
/// derived from `RLIMIT_NOFILE`.
pub const FD_HEADROOM: usize = 512;

/// How long to wait before accepting again after an error that is not the
/// client's (out of descriptors or memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
/// lets open requests finish and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: &HttpConfig,
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
    tokio::pin!(stop);
    loop {
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
                tokio::spawn(super::connection::serve(
                    stream,
                    router.clone(),
                    bounds.clone(),
                    stop_rx.clone(),
                    permit,
                ));
            }
            Err(error) if is_the_clients(&error) => {}
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
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
