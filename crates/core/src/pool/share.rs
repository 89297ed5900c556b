//! Fair share of `user-memory` between namespaces (issue 20, defect 3).
//!
//! OpenWhisk's invoker has none: a creation evicts *warmed* (paused)
//! containers, least recently used first, and is refused when even that
//! does not make room. A busy container is never taken away, and a busy
//! container with nothing to do stays busy for `pause-grace` (10 s) after
//! its last activation. So one namespace invoking its actions every few
//! seconds keeps the whole pool busy, and every other namespace's creation
//! is refused until its activations expire in the queue. The only bound is
//! the namespace's `concurrentInvocations` (a container count, enforced by
//! the scheduler), which does not help when a few containers fill an
//! invoker.
//!
//! wasmwhisk adds a share. A namespace's *held* memory is what its
//! in-progress, busy, warmed and disabling sandboxes count against
//! `user-memory`. Its share is `user-memory / n`, `n` being the namespaces
//! that hold memory or wait for it (the asking one included):
//! - a namespace is *waiting* when a creation it is entitled to (its held
//!   memory plus the action's fits in its share) was refused; it stays so
//!   for [`WAITING_WINDOW`] after its last refusal (the controller retries a
//!   refused creation within 1.6 s) or until one of its creations is taken;
//! - while another namespace waits, a namespace may not grow beyond its
//!   share: its creations (warm reuse included) are refused;
//! - when an entitled creation is refused, busy sandboxes of namespaces
//!   holding more than their share are reclaimed (shut down; an activation
//!   in hand finishes first), the most over-share namespace first, until
//!   their memory covers what is missing. The creation itself is refused
//!   (`ResourceNotEnoughError`); the controller's retry finds the room.
//!
//! With one namespace, or with everyone within their share, nothing changes.
//! These are pure functions over the pool's books; [`super::state`] calls
//! them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::slot::SandboxId;

/// How long a refused, entitled namespace counts as waiting after its last
/// refusal: longer than the controller's longest retry backoff (1.6 s).
pub const WAITING_WINDOW: Duration = Duration::from_secs(3);

/// Namespaces refused memory they were entitled to, and when last.
/// Invariant: at most one entry per namespace; entries older than
/// [`WAITING_WINDOW`] are ignored and dropped at the next look.
#[derive(Debug, Default)]
pub struct Waiting {
    last_refused: HashMap<String, Instant>,
}

impl Waiting {
    /// `namespace` was refused at `now`.
    pub fn mark(&mut self, namespace: &str, now: Instant) {
        match self.last_refused.get_mut(namespace) {
            Some(at) => *at = now,
            None => {
                self.last_refused.insert(namespace.to_string(), now);
            }
        }
    }

    /// `namespace` got a sandbox: it no longer waits.
    pub fn clear(&mut self, namespace: &str) {
        self.last_refused.remove(namespace);
    }

    /// Drops the entries older than the window; the namespaces still waiting.
    pub fn current(&mut self, now: Instant) -> impl Iterator<Item = &str> {
        self.last_refused
            .retain(|_, at| now.saturating_duration_since(*at) < WAITING_WINDOW);
        self.last_refused.keys().map(String::as_str)
    }
}

/// The share of each namespace: `user_memory_mb` divided by the namespaces
/// that hold memory (`held`), wait (`waiting`), or ask (`asking`).
pub fn share_mb<'a>(
    user_memory_mb: u64,
    held: &HashMap<&'a str, u64>,
    waiting: impl Iterator<Item = &'a str>,
    asking: &'a str,
) -> u64 {
    let mut active: Vec<&str> = held
        .iter()
        .filter(|(_, mb)| **mb > 0)
        .map(|(ns, _)| *ns)
        .chain(waiting)
        .chain(std::iter::once(asking))
        .collect();
    active.sort_unstable();
    active.dedup();
    user_memory_mb / active.len().max(1) as u64
}

/// A busy sandbox that could be reclaimed: `(id, namespace, memory)`.
pub type Candidate<'a> = (SandboxId, &'a str, u64);

/// The busy sandboxes to reclaim so that `missing_mb` come free for
/// `asking`: from namespaces (other than `asking`) holding more than
/// `share_mb`, the most over-share namespace first, lowest id first within
/// it; none at all if they cannot cover `missing_mb` (nothing is shut down
/// for a creation that would still not fit).
pub fn reclaim(
    candidates: &[Candidate<'_>],
    held: &HashMap<&str, u64>,
    share_mb: u64,
    asking: &str,
    missing_mb: u64,
) -> Vec<SandboxId> {
    let mut held: HashMap<&str, u64> = held.clone();
    let mut left: Vec<Candidate<'_>> = candidates
        .iter()
        .copied()
        .filter(|(_, ns, _)| *ns != asking)
        .collect();
    left.sort_unstable_by_key(|(id, _, _)| *id);
    let mut chosen = Vec::new();
    let mut freed = 0;
    while freed < missing_mb {
        // The namespace furthest over its share that still has a candidate.
        let Some(ns) = left
            .iter()
            .map(|(_, ns, _)| *ns)
            .filter(|ns| held.get(ns).copied().unwrap_or(0) > share_mb)
            .max_by_key(|ns| (held.get(ns).copied().unwrap_or(0), std::cmp::Reverse(*ns)))
        else {
            return Vec::new();
        };
        let Some(pos) = left.iter().position(|(_, n, _)| *n == ns) else {
            return Vec::new();
        };
        let (id, _, mb) = left.remove(pos);
        if let Some(h) = held.get_mut(ns) {
            *h = h.saturating_sub(mb);
        }
        freed += mb;
        chosen.push(id);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held<'a>(pairs: &[(&'a str, u64)]) -> HashMap<&'a str, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn the_share_divides_user_memory_among_holders_waiters_and_the_asker() {
        let h = held(&[("b", 1024), ("idle", 0)]);
        assert_eq!(share_mb(1024, &h, std::iter::empty(), "b"), 1024);
        assert_eq!(share_mb(1024, &h, std::iter::empty(), "a"), 512);
        assert_eq!(share_mb(1024, &h, ["c", "a"].into_iter(), "a"), 341);
    }

    #[test]
    fn waiting_namespaces_expire_after_the_window_and_clear_on_success() {
        let t0 = Instant::now();
        let mut w = Waiting::default();
        w.mark("a", t0);
        w.mark("b", t0);
        assert_eq!(w.current(t0 + Duration::from_secs(1)).count(), 2);
        w.clear("b");
        let now: Vec<&str> = w.current(t0 + Duration::from_secs(1)).collect();
        assert_eq!(now, ["a"]);
        w.mark("a", t0 + Duration::from_secs(2));
        assert_eq!(w.current(t0 + Duration::from_secs(4)).count(), 1, "renewed");
        assert_eq!(w.current(t0 + WAITING_WINDOW * 2).count(), 0, "expired");
    }

    #[test]
    fn reclaim_takes_from_the_most_over_share_namespace_until_covered() {
        // 1024 MB, share 341: b holds 512, c 384, a asks for 256.
        let h = held(&[("b", 512), ("c", 384)]);
        let c = [(1, "b", 256), (2, "b", 256), (3, "c", 128), (4, "c", 256)];
        assert_eq!(reclaim(&c, &h, 341, "a", 256), vec![1]);
        // After b gave one (256 < share), c is the one over its share.
        assert_eq!(reclaim(&c, &h, 341, "a", 384), vec![1, 3]);
        // Then both are within their share: 512 cannot be covered.
        assert!(reclaim(&c, &h, 341, "a", 512).is_empty());
    }

    #[test]
    fn reclaim_takes_nothing_when_it_cannot_cover_or_nobody_is_over_share() {
        let h = held(&[("b", 512), ("a", 512)]);
        let c = [(1, "b", 256), (2, "b", 256), (3, "a", 512)];
        assert!(
            reclaim(&c, &h, 512, "a", 256).is_empty(),
            "b is at its share"
        );
        let h = held(&[("b", 768)]);
        let c = [(1, "b", 256)];
        assert!(
            reclaim(&c, &h, 512, "a", 512).is_empty(),
            "256 MB cannot cover 512: nothing is shut down for nothing"
        );
        assert!(
            reclaim(&[(1, "a", 256)], &held(&[("a", 1024)]), 512, "a", 256).is_empty(),
            "never from the asking namespace"
        );
    }
}
