//! One HTTP connection, served under the bounds of `[http]`.
//!
//! hyper reads requests and writes responses; what it does not bound is how
//! long a client may take. A client that opens a socket and sends half a
//! head, or keeps a connection alive and silent, would otherwise hold a file
//! descriptor and hyper's buffers for as long as it likes. So each
//! connection has a [`Phase`], moved by the bytes its socket reads and
//! writes ([`WatchedStream`]) and by its requests' handlers
//! ([`Watched`]), and a watchdog that closes it when its phase has lasted
//! too long:
//!
//! ```text
//!   accept ──▶ Head ──── head complete: handler called ────▶ Busy
//!               ▲                                              │
//!               │ first byte                 handler answered  │
//!               └─────────────── Idle ◀────────────────────────┘
//!
//!   Head  longer than header-read-timeout since it began   → closed
//!   Idle  longer than idle-timeout since a byte last moved  → closed
//!   Busy  no watchdog: the body is bounded by body-read-timeout
//!         (a 408 from the handler), the handler by its own limits
//! ```
//!
//! A request's body must arrive whole within `body-read-timeout` of the end
//! of its head ([`DeadlineBody`]): past it, the handler reading the body
//! gets [`BodyTimedOut`] and answers 408 ([`super::extract::body`]). The
//! deadline is total, not per piece: tower-http's `TimeoutBody` restarts its
//! timer at every piece, so a client sending one byte just under the
//! timeout held its connection for as long as it liked.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use hyper::Request;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Instant, Sleep};

use crate::config::HttpConfig;

/// hyper's read buffer, which bounds a request's head (larger: 431). hyper's
/// default, about 400 KB, would let a thousand half-sent heads hold 400 MB.
const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// What a connection is doing, as its watchdog sees it (see the module doc
/// for the diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading a request's head, begun at `since` (the accept, or the first
    /// byte after an idle spell).
    Head {
        /// When the head began.
        since: Instant,
    },
    /// Handling `requests` requests (hyper's HTTP/1 has at most one).
    Busy {
        /// Handlers running.
        requests: usize,
    },
    /// No request, nothing moving since `since`.
    Idle {
        /// When a byte last moved, or the last handler answered.
        since: Instant,
    },
}

/// Why the watchdog closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// A head took longer than `header-read-timeout`.
    Header,
    /// Idle longer than `idle-timeout`.
    Idle,
}

impl Phase {
    /// `n` bytes were read at `now`: the first byte after an idle spell
    /// begins a head.
    pub fn read(self, n: usize, now: Instant) -> Phase {
        match self {
            Phase::Idle { .. } if n > 0 => Phase::Head { since: now },
            other => other,
        }
    }

    /// `n` bytes were written at `now`: a response still going out keeps an
    /// idle connection alive.
    pub fn wrote(self, n: usize, now: Instant) -> Phase {
        match self {
            Phase::Idle { .. } if n > 0 => Phase::Idle { since: now },
            other => other,
        }
    }

    /// A request's head is complete and its handler called.
    pub fn begin(self) -> Phase {
        match self {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests.saturating_add(1),
            },
            Phase::Head { .. } | Phase::Idle { .. } => Phase::Busy { requests: 1 },
        }
    }

    /// A handler answered (or was dropped) at `now`.
    pub fn end(self, now: Instant) -> Phase {
        match self {
            Phase::Busy { requests } if requests > 1 => Phase::Busy {
                requests: requests - 1,
            },
            Phase::Busy { .. } => Phase::Idle { since: now },
            other => other,
        }
    }

    /// When this phase expires, and why; `None` while busy.
    /// A timeout too large for the clock (config validation refuses those
    /// anyway, see [`HttpConfig::MAX_TIMEOUT`]) never expires.
    pub fn deadline(&self, bounds: &HttpConfig) -> Option<(Instant, Expiry)> {
        match *self {
            Phase::Head { since } => since
                .checked_add(bounds.header_read_timeout)
                .map(|at| (at, Expiry::Header)),
            Phase::Idle { since } => since
                .checked_add(bounds.idle_timeout)
                .map(|at| (at, Expiry::Idle)),
            Phase::Busy { .. } => None,
        }
    }

    /// When the watchdog should look again, seen at `now`: the deadline, or
    /// sooner. A phase that begins later expires no sooner than `now` plus
    /// the shorter timeout, so looking at least that often is never late.
    pub fn next_look(&self, now: Instant, bounds: &HttpConfig) -> Instant {
        let shorter = bounds
            .header_read_timeout
            .min(bounds.idle_timeout)
            .min(HttpConfig::MAX_TIMEOUT);
        let soonest_new = now.checked_add(shorter).unwrap_or(now);
        match self.deadline(bounds) {
            Some((deadline, _)) => deadline.min(soonest_new),
            None => soonest_new,
        }
    }

    /// Why the connection must close at `now`, if it must.
    pub fn expired(&self, now: Instant, bounds: &HttpConfig) -> Option<Expiry> {
        self.deadline(bounds)
            .and_then(|(deadline, why)| (now >= deadline).then_some(why))
    }
}

/// A connection's phase, shared by its socket, its handlers and its
/// watchdog. A `std` mutex: every critical section is one match on a
/// `Copy` value.
#[derive(Clone, Debug)]
struct Clock(Arc<Mutex<Phase>>);

impl Clock {
    fn new(now: Instant) -> Clock {
        Clock(Arc::new(Mutex::new(Phase::Head { since: now })))
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, step: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.lock();
        *phase = step(*phase);
    }

    fn now(&self) -> Phase {
        *self.lock()
    }

    /// Marks a handler running until the guard drops.
    fn begin(&self) -> BusyGuard {
        self.update(Phase::begin);
        BusyGuard(self.clone())
    }
}

/// A running handler; dropping it (answer or cancellation) ends it.
struct BusyGuard(Clock);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.update(|phase| phase.end(Instant::now()));
    }
}

/// The socket, telling the clock about every byte.
struct WatchedStream {
    inner: TcpStream,
    clock: Clock,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = buf.filled().len().saturating_sub(before);
            this.clock.update(|phase| phase.read(n, Instant::now()));
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.clock.update(|phase| phase.wrote(n, Instant::now()));
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            this.clock.update(|phase| phase.wrote(n, Instant::now()));
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request body past its deadline: `body-read-timeout` after its head.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the body-read timeout")]
pub struct BodyTimedOut;

/// A request body that must arrive whole before a deadline set when its
/// head was complete; past it, reading yields [`BodyTimedOut`].
struct DeadlineBody {
    inner: Incoming,
    /// Fires at the deadline; boxed so the body stays `Unpin`.
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(timeout: Duration, inner: Incoming) -> DeadlineBody {
        DeadlineBody {
            inner,
            // tokio clamps a deadline past the clock's end to "far future".
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The router as hyper's service: each request's body under
/// `body-read-timeout`, each handler marked busy while it runs.
#[derive(Clone)]
struct Watched {
    router: TowerToHyperService<Router>,
    clock: Clock,
    body_read_timeout: Duration,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Watched {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        let busy = self.clock.begin();
        let timeout = self.body_read_timeout;
        let request = request.map(|body| DeadlineBody::new(timeout, body));
        let answer = self.router.call(request);
        Box::pin(async move {
            let response = answer.await;
            drop(busy);
            response
        })
    }
}

/// Serves HTTP/1.1 on `stream` until the client closes it, a bound of
/// `bounds` closes it, or `stop` turns true (then the request in hand is
/// answered first). `permit` is the connection's place under
/// `max-connections`, given back when this returns.
pub(super) async fn serve(
    stream: TcpStream,
    router: Router,
    bounds: HttpConfig,
    mut stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let clock = Clock::new(Instant::now());
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        clock: clock.clone(),
    });
    let service = Watched {
        router: TowerToHyperService::new(router),
        clock: clock.clone(),
        body_read_timeout: bounds.body_read_timeout,
    };
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BUFFER)
        // The watchdog bounds heads; hyper's own timer would also run on
        // idle connections and needs a timer it would warn about.
        .header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let look = clock.now().next_look(Instant::now(), &bounds);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(look) => {
                if let Some(expiry) = clock.now().expired(Instant::now(), &bounds) {
                    tracing::debug!(?expiry, "closing a connection past its bound");
                    break;
                }
            }
        }
    }
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> HttpConfig {
        HttpConfig {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4,
        }
    }

    #[test]
    fn a_new_connection_must_send_its_head_in_time() {
        let t0 = Instant::now();
        let phase = Phase::Head { since: t0 };
        let b = bounds();
        assert_eq!(phase.expired(t0 + Duration::from_secs(9), &b), None);
        // bytes of the head do not restart the clock
        let phase = phase.read(100, t0 + Duration::from_secs(9));
        assert_eq!(
            phase.expired(t0 + Duration::from_secs(10), &b),
            Some(Expiry::Header)
        );
    }

    #[test]
    fn a_busy_connection_never_expires_and_turns_idle_when_answered() {
        let t0 = Instant::now();
        let b = bounds();
        let busy = Phase::Head { since: t0 }.begin();
        assert_eq!(busy, Phase::Busy { requests: 1 });
        assert_eq!(busy.expired(t0 + Duration::from_secs(3600), &b), None);
        assert_eq!(busy.read(10, t0), busy, "body bytes keep it busy");
        let t1 = t0 + Duration::from_secs(100);
        let idle = busy.end(t1);
        assert_eq!(idle, Phase::Idle { since: t1 });
        assert_eq!(idle.expired(t1 + Duration::from_secs(59), &b), None);
        assert_eq!(
            idle.expired(t1 + Duration::from_secs(60), &b),
            Some(Expiry::Idle)
        );
        assert_eq!(busy.begin().end(t1), busy, "requests are counted");
    }

    #[test]
    fn an_idle_connection_starts_a_head_at_its_first_byte() {
        let t0 = Instant::now();
        let b = bounds();
        let idle = Phase::Idle { since: t0 };
        assert_eq!(idle.read(0, t0 + Duration::from_secs(1)), idle);
        // A head begun at 55 s is timed from then: it outlives the idle
        // deadline (60 s) and expires at 65 s.
        let t1 = t0 + Duration::from_secs(55);
        let head = idle.read(1, t1);
        assert_eq!(head, Phase::Head { since: t1 });
        assert_eq!(head.expired(t0 + Duration::from_secs(60), &b), None);
        assert_eq!(
            head.expired(t1 + Duration::from_secs(10), &b),
            Some(Expiry::Header)
        );
        // a response still being written keeps it alive
        assert_eq!(idle.wrote(5, t1), Phase::Idle { since: t1 });
        assert_eq!(head.wrote(5, t1 + Duration::from_secs(1)), head);
    }

    #[test]
    fn a_timeout_too_large_for_the_clock_does_not_panic() {
        let t0 = Instant::now();
        let huge = HttpConfig {
            header_read_timeout: Duration::MAX,
            idle_timeout: Duration::MAX,
            ..bounds()
        };
        for phase in [Phase::Head { since: t0 }, Phase::Idle { since: t0 }] {
            assert_eq!(phase.deadline(&huge), None, "never expires");
            assert_eq!(phase.expired(t0 + Duration::from_secs(3600), &huge), None);
            let look = phase.next_look(t0, &huge);
            assert!(look > t0 && look <= t0 + HttpConfig::MAX_TIMEOUT);
        }
    }

    #[test]
    fn the_watchdog_looks_before_any_later_phase_can_expire() {
        let t0 = Instant::now();
        let b = bounds();
        // idle: its own deadline is 60 s away, but a head begun now would
        // expire in 10 s
        let idle = Phase::Idle { since: t0 };
        assert_eq!(idle.next_look(t0, &b), t0 + Duration::from_secs(10));
        let busy = Phase::Busy { requests: 1 };
        assert_eq!(busy.next_look(t0, &b), t0 + Duration::from_secs(10));
        let head = Phase::Head { since: t0 };
        let t8 = t0 + Duration::from_secs(8);
        assert_eq!(head.next_look(t8, &b), t0 + Duration::from_secs(10));
    }
}
