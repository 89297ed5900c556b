//! Loopback ports for servers the tests start, which cannot race.
//!
//! Binding port 0 and releasing it (then starting a server on that port)
//! races: the kernel hands the same range out to every `bind(0)` and every
//! outgoing connection, so another socket can take the port before the
//! server binds it (seen in CI: etcd's `bind: address already in use`). The
//! ports here come from *below* the kernel's ephemeral range
//! (`net.ipv4.ip_local_port_range`), which the kernel never picks by itself,
//! and are handed out at most once per process. A server restarted on its
//! port finds it free for the same reason.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// The lowest port handed out.
const LOWEST: u16 = 10_000;

/// A loopback port that nothing listens on, outside the kernel's ephemeral
/// range, not handed out before by this process.
///
/// # Panics
/// When no port below the ephemeral range is free (a test setup failure).
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    let top = ephemeral_start().max(LOWEST + 1_000);
    let span = u32::from(top - LOWEST);
    // Start somewhere different in each process (pid and time), then walk.
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    let mut given = given.lock().unwrap_or_else(|e| e.into_inner());
    for step in 0..span {
        let offset = (seed.wrapping_add(step.wrapping_mul(7919))) % span;
        let port = LOWEST + u16::try_from(offset).unwrap_or(0);
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port between {LOWEST} and {top}");
}

/// The first port of the kernel's ephemeral range (32768 when unreadable).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_given_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|p| *p >= LOWEST && *p < ephemeral_start()));
    }
}
