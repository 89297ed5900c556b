//! What the integration tests share: real servers on loopback ports that
//! cannot race (a nats-server with JetStream, an etcd), one way to wait
//! for a condition, and the one conformance suite every store implementation
//! runs ([`store_conformance`]). Dev-only: no crate depends on it outside
//! its tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a server that does not start, or a wait that times out, fails the test"
)]

pub mod etcd;
pub mod nats;
pub mod ports;
pub mod store_conformance;

use std::time::{Duration, Instant};

pub use ports::free_port;

/// Polls `check` every 20 ms until it gives `Some`, and returns that; panics
/// with `what` after `within`. The one wait of the tests: for a condition,
/// never for a fixed time.
pub fn eventually<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if start.elapsed() > within {
            panic!("not within {within:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`eventually`] for async checks, on the caller's runtime.
pub async fn eventually_async<T>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > within {
            panic!("not within {within:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
