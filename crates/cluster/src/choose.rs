//! The controller's invoker choice (docs/cluster.md#which-invoker): **warm first**, then the
//! action's **home invoker** and the **coprime step walk** of OpenWhisk's
//! `ShardingContainerPoolBalancer` (docs/openwhisk.md §5.5), over the invokers'
//! etcd reports (docs/openwhisk.md §3.5, §5.3). Pure and synchronous: the caller
//! hands in the reports it mirrors and gets back a decision.
//!
//! ```text
//! hash = abs(javaHash(invocationNamespace) ^ javaHash(fqn without version))
//! pool = invoker slots 0..n by instance number, n = highest instance ever seen + 1
//! steps = pairwiseCoprimes(n)
//! home = hash mod n                    step = steps[hash mod |steps|]
//! walk = home, home+step, home+2·step, … (mod n): every invoker once
//! ```
//!
//! As in OpenWhisk, whose list of invokers is indexed by instance number and
//! keeps a gone invoker as `Offline`, the untagged walk is over every slot
//! ever seen (a slot with no live report is skipped), so an invoker's
//! lease expiring moves no other action's home. Tagged invokers are walked
//! as a list sorted by instance.
//!
//! Because `step` is coprime with `n`, the walk visits every invoker once;
//! because `home` depends only on the action, the same action keeps landing
//! on the same invoker while it has room — where its warm sandboxes are —
//! and different actions spread over the cluster.
//!
//! An invoker is **usable** for a request when its status is `up`, its free
//! memory (less what this chooser reserved there recently) covers the
//! action's memory, it accepts the invocation namespace (no dedicated
//! namespaces, or the namespace among them) and its tags include the
//! action's `invoker-resources`. The choice, in order:
//! 1. the first usable invoker of `warmed` not in `avoid`;
//! 2. the first usable invoker of the walk not in `avoid` — for an action
//!    without required tags the walk covers the untagged invokers first,
//!    then the tagged ones (docs/openwhisk.md §5.3: untagged actions fall back to
//!    tagged invokers); with required tags, only invokers carrying them;
//! 3. the first usable invoker of that walk even though it is in `avoid`
//!    (it refused before, but it is all there is; its refusal is retried).
//!
//! No usable invoker at all is `NoAvailableInvokersError`; usable invokers
//! of which none has the required tags is `NoAvailableResourceInvokersError`
//! (OpenWhisk's strict `invoker-resources` policy).
//!
//! Where we differ from OpenWhisk, on purpose:
//! - No managed/blackbox split of the invokers: every invoker can run the
//!   Docker fallback, so every invoker is in the walk.
//! - Instead of per-controller memory shards (`NestedSemaphore` over
//!   `userMemory / clusterSize`), each choice **reserves** the action's
//!   memory on the chosen invoker for `reservation_ttl` (default 2 s, about
//!   two memory-sync intervals, by when the invoker's report counts the
//!   sandbox), or until [`Chooser::release`] on the creation's ack. A burst
//!   of creations in one tick therefore fills the home invoker up to its
//!   free memory and then walks on, instead of all landing on it.
//! - `abs(Int.MinValue)` stays negative in Java, and `hash % n` then gives a
//!   negative index (an exception in OpenWhisk). We take the Euclidean
//!   (non-negative) remainder, so that one hash maps to
//!   `i32::MIN.rem_euclid(n)` (home 2 of 10 invokers) like any other.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::etcd::InvokerReport;
use wasmwhisk_core::config::MAX_INSTANCE;
use wasmwhisk_core::sync::lock;
use wasmwhisk_protocol::ContainerCreationError;

/// How long a choice holds its memory on the chosen invoker unless released
/// earlier: about two memory-sync intervals (1 s each), by when the
/// invoker's own report counts the new sandbox.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(2);

/// Java's `String.hashCode`: `h = 31·h + c` over the UTF-16 code units,
/// wrapping on overflow.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// OpenWhisk's `pairwiseCoprimeNumbersUntil(x)`: each `cur` in `1..=x`
/// coprime with `x` and with every number kept before it.
pub fn pairwise_coprimes_until(x: usize) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for cur in 1..=x {
        if gcd(cur, x) == 1 && kept.iter().all(|&p| gcd(cur, p) == 1) {
            kept.push(cur);
        }
    }
    kept
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The action's hash: `abs(ns.hashCode ^ fqn.hashCode)`, with Java's `abs`
/// (`i32::MIN` stays `i32::MIN`).
pub fn action_hash(invocation_namespace: &str, fqn_without_version: &str) -> i32 {
    (java_string_hash(invocation_namespace) ^ java_string_hash(fqn_without_version)).wrapping_abs()
}

/// The home index and the step of the action's walk over `n` invokers
/// (docs/openwhisk.md §5.5). The remainders are Euclidean, so the one negative hash
/// (`i32::MIN`) still gives an index in `0..n`. `(0, 0)` when `n` is 0.
pub fn home_and_step(
    invocation_namespace: &str,
    fqn_without_version: &str,
    n: usize,
) -> (usize, usize) {
    walk_start(action_hash(invocation_namespace, fqn_without_version), n)
}

fn walk_start(hash: i32, n: usize) -> (usize, usize) {
    let steps = pairwise_coprimes_until(n);
    match (euclid(hash, n), euclid(hash, steps.len())) {
        (Some(home), Some(i)) => (home, steps.get(i).copied().unwrap_or(1)),
        _ => (0, 0),
    }
}

/// `hash mod n` in `0..n`, or `None` when `n` is 0.
fn euclid(hash: i32, n: usize) -> Option<usize> {
    let n = i64::try_from(n).ok().filter(|&n| n > 0)?;
    usize::try_from(i64::from(hash).rem_euclid(n)).ok()
}

/// The indices of the walk over `n` invokers: every index once.
fn walk(home: usize, step: usize, n: usize) -> impl Iterator<Item = usize> {
    let mut index = home;
    (0..n).map(move |_| {
        let current = index;
        index = (index + step) % n;
        current
    })
}

/// What a creation needs from an invoker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChoiceRequest {
    /// The namespace the sandbox runs activations for.
    pub invocation_namespace: String,
    /// The action without version (`ns[/pkg]/act`), as in the etcd keys.
    pub fqn: String,
    /// The action's memory limit, in MB.
    pub memory_mb: u64,
    /// The action's `invoker-resources` annotation; empty when it has none.
    pub required_tags: Vec<String>,
    /// Invokers holding a warmed sandbox of this action and revision that
    /// no other creation has claimed (the caller keeps the claims).
    pub warmed: Vec<u32>,
    /// Invokers that already refused this creation.
    pub avoid: Vec<u32>,
}

/// Memory held on an invoker by a recent choice.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    memory_mb: u64,
    until: Instant,
}

/// Chooses invokers and remembers the memory its recent choices took.
/// Shared by every queue of a controller (`Send + Sync`; one short lock per
/// choice).
#[derive(Debug)]
pub struct Chooser {
    reservation_ttl: Duration,
    /// Per invoker, the reservations of choices not yet released; entries
    /// whose `until` has passed are dropped at the next choice. No invoker
    /// maps to an empty list after a choice.
    reservations: Mutex<HashMap<u32, Vec<Reservation>>>,
    /// One more than the highest invoker number ever seen: the untagged
    /// walk's length, which never shrinks (OpenWhisk keeps a gone invoker's
    /// slot as `Offline`).
    slots: Mutex<usize>,
}

impl Default for Chooser {
    /// A chooser with [`DEFAULT_RESERVATION_TTL`].
    fn default() -> Self {
        Chooser::new(DEFAULT_RESERVATION_TTL)
    }
}

impl Chooser {
    /// A chooser whose choices hold their memory for `reservation_ttl`.
    pub fn new(reservation_ttl: Duration) -> Self {
        Chooser {
            reservation_ttl,
            reservations: Mutex::new(HashMap::new()),
            slots: Mutex::new(0),
        }
    }

    /// How long a choice holds its memory unless released.
    pub fn reservation_ttl(&self) -> Duration {
        self.reservation_ttl
    }

    /// The invoker for `request` among `invokers`, now; see the module doc.
    /// The chosen invoker holds `request.memory_mb` for the reservation TTL.
    pub fn choose(
        &self,
        invokers: &[InvokerReport],
        request: &ChoiceRequest,
    ) -> Result<u32, ContainerCreationError> {
        self.choose_at(invokers, request, Instant::now())
    }

    /// [`choose`](Self::choose) as of `now` (reservations made before
    /// `now - ttl` no longer count).
    pub fn choose_at(
        &self,
        invokers: &[InvokerReport],
        request: &ChoiceRequest,
        now: Instant,
    ) -> Result<u32, ContainerCreationError> {
        let mut reservations = lock(&self.reservations);
        reservations.retain(|_, held| {
            held.retain(|r| r.until > now);
            !held.is_empty()
        });
        let reserved = |invoker: u32| -> u64 {
            reservations
                .get(&invoker)
                .map_or(0, |held| held.iter().map(|r| r.memory_mb).sum())
        };
        let memory = i64::try_from(request.memory_mb).unwrap_or(i64::MAX);
        let fits = |r: &InvokerReport| {
            let held = i64::try_from(reserved(r.instance)).unwrap_or(i64::MAX);
            r.resource.is_usable()
                && r.resource.accepts_namespace(&request.invocation_namespace)
                && r.resource.free_memory.saturating_sub(held) >= memory
        };
        let tagged = |r: &InvokerReport| {
            request
                .required_tags
                .iter()
                .all(|tag| r.resource.tags.contains(tag))
        };
        let usable = |r: &InvokerReport| fits(r) && tagged(r);
        if !invokers.iter().any(fits) {
            return Err(ContainerCreationError::NoAvailableInvokersError);
        }
        if !invokers.iter().any(usable) {
            return Err(ContainerCreationError::NoAvailableResourceInvokersError);
        }
        let avoided = |instance: u32| request.avoid.contains(&instance);

        let warm = request
            .warmed
            .iter()
            .copied()
            .find(|&w| !avoided(w) && invokers.iter().any(|r| r.instance == w && usable(r)));
        let chosen = match warm {
            Some(invoker) => invoker,
            None => {
                let slots = {
                    let mut highest = lock(&self.slots);
                    let seen = invokers
                        .iter()
                        .filter(|r| r.instance <= MAX_INSTANCE)
                        .map(|r| r.instance as usize + 1)
                        .max()
                        .unwrap_or(0);
                    *highest = (*highest).max(seen);
                    *highest
                };
                let order = walk_order(invokers, request, slots);
                let first_usable = |skip_avoided: bool| {
                    order
                        .iter()
                        .find(|r| usable(r) && !(skip_avoided && avoided(r.instance)))
                        .map(|r| r.instance)
                };
                match first_usable(true).or_else(|| first_usable(false)) {
                    Some(invoker) => invoker,
                    // Unreachable: some invoker is usable, and the walk
                    // covers every invoker the tags allow.
                    None => return Err(ContainerCreationError::NoAvailableInvokersError),
                }
            }
        };
        reservations.entry(chosen).or_default().push(Reservation {
            memory_mb: request.memory_mb,
            until: now + self.reservation_ttl,
        });
        Ok(chosen)
    }

    /// Gives back one reservation of `memory_mb` on `invoker` (the
    /// creation was acked: the invoker's own report now counts it, or it
    /// failed). Nothing happens if there is none (it had already expired).
    pub fn release(&self, invoker: u32, memory_mb: u64) {
        let mut reservations = lock(&self.reservations);
        if let Some(held) = reservations.get_mut(&invoker) {
            if let Some(i) = held.iter().position(|r| r.memory_mb == memory_mb) {
                held.remove(i);
            }
            if held.is_empty() {
                reservations.remove(&invoker);
            }
        }
    }

    /// The memory, in MB, this chooser holds on `invoker` as of `now`.
    pub fn reserved_mb(&self, invoker: u32, now: Instant) -> u64 {
        lock(&self.reservations).get(&invoker).map_or(0, |held| {
            held.iter()
                .filter(|r| r.until > now)
                .map(|r| r.memory_mb)
                .sum()
        })
    }
}

/// The invokers the request may go to, in the order it tries them: the
/// walk over the untagged invokers then the walk over the tagged ones (no
/// required tags), or the walk over the invokers carrying the tags.
fn walk_order<'a>(
    invokers: &'a [InvokerReport],
    request: &ChoiceRequest,
    slots: usize,
) -> Vec<&'a InvokerReport> {
    // An instance number past the configured bound (a stray etcd key)
    // would make the walk huge: such a report is never chosen.
    let mut sorted: Vec<&InvokerReport> = invokers
        .iter()
        .filter(|r| r.instance <= MAX_INSTANCE)
        .collect();
    sorted.sort_by_key(|r| r.instance);
    let pools: Vec<Vec<Option<&InvokerReport>>> = if request.required_tags.is_empty() {
        let (untagged, tagged): (Vec<&InvokerReport>, Vec<&InvokerReport>) =
            sorted.into_iter().partition(|r| r.resource.tags.is_empty());
        // The untagged walk is over instance numbers 0..slots, as
        // OpenWhisk's list of invokers is: an invoker that is gone (its key
        // expired) keeps its slot, so the other actions' homes stay.
        let slots = slots.max(
            untagged
                .iter()
                .map(|r| r.instance as usize + 1)
                .max()
                .unwrap_or(0),
        );
        let mut by_slot: Vec<Option<&InvokerReport>> = vec![None; slots];
        for r in untagged {
            if let Some(slot) = by_slot.get_mut(r.instance as usize) {
                *slot = Some(r);
            }
        }
        vec![by_slot, tagged.into_iter().map(Some).collect()]
    } else {
        vec![
            sorted
                .into_iter()
                .filter(|r| {
                    request
                        .required_tags
                        .iter()
                        .all(|tag| r.resource.tags.contains(tag))
                })
                .map(Some)
                .collect(),
        ]
    };
    let hash = action_hash(&request.invocation_namespace, &request.fqn);
    let mut order = Vec::with_capacity(invokers.len());
    for pool in pools {
        let (home, step) = walk_start(hash, pool.len());
        order.extend(walk(home, step, pool.len()).filter_map(|i| pool.get(i).copied().flatten()));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmwhisk_protocol::{InvokerResourceMessage, InvokerState};

    fn report(instance: u32, status: InvokerState, free: i64) -> InvokerReport {
        InvokerReport {
            instance,
            unique_name: None,
            displayed_name: None,
            resource: InvokerResourceMessage {
                status,
                free_memory: free,
                busy_memory: 0,
                in_progress_memory: 0,
                tags: vec![],
                dedicated_namespaces: vec![],
            },
        }
    }

    fn up(n: u32, free: i64) -> Vec<InvokerReport> {
        (0..n)
            .map(|i| report(i, InvokerState::Healthy, free))
            .collect()
    }

    fn request(fqn: &str, memory_mb: u64) -> ChoiceRequest {
        ChoiceRequest {
            invocation_namespace: "guest".into(),
            fqn: fqn.into(),
            memory_mb,
            ..ChoiceRequest::default()
        }
    }

    #[test]
    fn a_gone_invoker_keeps_its_slot_so_other_homes_stay() {
        let chooser = Chooser::default();
        let all = up(3, 4096);
        // Actions homed at 0 and 1 of 3 (found by walking names).
        let homed = |home: u32| {
            (0..1000)
                .map(|i| request(&format!("guest/a{i}"), 128))
                .find(|r| walk_of(r, 3)[0] == home)
                .expect("a name homed there")
        };
        let (at0, at1) = (homed(0), homed(1));
        assert_eq!(chooser.choose(&all, &at0), Ok(0));
        assert_eq!(chooser.choose(&all, &at1), Ok(1));
        // Invoker 2's key expires: the walk still has 3 slots.
        let without_2: Vec<InvokerReport> = all.into_iter().filter(|r| r.instance != 2).collect();
        assert_eq!(chooser.choose(&without_2, &at0), Ok(0));
        assert_eq!(chooser.choose(&without_2, &at1), Ok(1));
        // An action homed at the gone invoker walks on to a live one.
        let at2 = homed(2);
        let chosen = chooser.choose(&without_2, &at2).expect("a live invoker");
        assert_eq!(chosen, walk_of(&at2, 3)[1]);
    }

    #[test]
    fn a_stray_huge_instance_number_is_never_walked() {
        let chooser = Chooser::default();
        let mut invokers = up(2, 4096);
        invokers.push(report(u32::MAX, InvokerState::Healthy, 4096));
        let req = request("guest/hello", 128);
        let chosen = chooser.choose(&invokers, &req).expect("a usable invoker");
        assert!(chosen < 2, "{chosen}");
    }

    /// The instances of the request's walk over `n` invokers.
    fn walk_of(req: &ChoiceRequest, n: usize) -> Vec<u32> {
        let (home, step) = home_and_step(&req.invocation_namespace, &req.fqn, n);
        walk(home, step, n)
            .map(|i| u32::try_from(i).expect("small"))
            .collect()
    }

    #[test]
    fn java_hashes_match_java() {
        // Values printed by `String.hashCode` on OpenJDK.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("é"), 233);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("guest"), 98_708_952);
        assert_eq!(java_string_hash("guest/hello"), 86_723_035);
        // U+1F600: two UTF-16 units, D83D DE00.
        assert_eq!(java_string_hash("😀"), 1_772_899);
        assert_eq!(java_string_hash("Hello World"), -862_545_276);
        assert_eq!(
            java_string_hash("The quick brown fox jumps over the lazy dog"),
            -609_428_141
        );
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn coprimes_follow_openwhisk() {
        assert_eq!(pairwise_coprimes_until(10), [1, 3, 7]);
        assert!(pairwise_coprimes_until(0).is_empty());
        assert_eq!(pairwise_coprimes_until(1), [1]);
        assert_eq!(pairwise_coprimes_until(2), [1]);
        assert_eq!(pairwise_coprimes_until(12), [1, 5, 7, 11]);
    }

    #[test]
    fn the_reference_walk() {
        // n=10, hash=13: home 3, steps [1,3,7], 13 % 3 = 1 → step 3.
        assert_eq!(walk_start(13, 10), (3, 3));
        let order: Vec<usize> = walk(3, 3, 10).collect();
        assert_eq!(order, [3, 6, 9, 2, 5, 8, 1, 4, 7, 0]);
        // OpenWhisk's hash of guest/hello: abs(98708952 ^ 86723035) = 13198339.
        assert_eq!(action_hash("guest", "guest/hello"), 13_198_339);
        // 13198339 % 10 = 9; 13198339 % 3 = 1 → step 3.
        assert_eq!(home_and_step("guest", "guest/hello", 10), (9, 3));
        assert_eq!(home_and_step("guest", "guest/hello", 0), (0, 0));
        assert_eq!(home_and_step("guest", "guest/hello", 1), (0, 1));
    }

    #[test]
    fn the_one_negative_hash_still_gives_an_index() {
        // "" hashes to 0, so the xor is i32::MIN; Java's abs keeps it, and
        // Java's `%` would give -8 (an exception in OpenWhisk). Euclidean:
        // -2^31 = -214748365·10 + 2 → home 2; -2^31 ≡ 1 (mod 3) → step 3.
        assert_eq!(action_hash("", "polygenelubricants"), i32::MIN);
        assert_eq!(home_and_step("", "polygenelubricants", 10), (2, 3));
        assert_eq!(home_and_step("", "polygenelubricants", 1), (0, 1));
    }

    #[test]
    fn the_same_action_stays_home_and_another_may_go_elsewhere() {
        let chooser = Chooser::default();
        let invokers = up(10, 2048);
        let hello = request("guest/hello", 256);
        let home = walk_of(&hello, 10)[0];
        for _ in 0..8 {
            assert_eq!(chooser.choose(&invokers, &hello), Ok(home));
        }
        let other = (0..100)
            .map(|i| request(&format!("guest/act{i}"), 256))
            .find(|r| walk_of(r, 10)[0] != home)
            .expect("an action with another home");
        let elsewhere = walk_of(&other, 10)[0];
        assert_eq!(chooser.choose(&invokers, &other), Ok(elsewhere));
        assert_ne!(elsewhere, home);
    }

    #[test]
    fn warm_comes_first() {
        let chooser = Chooser::default();
        let mut invokers = up(10, 2048);
        let mut req = request("guest/hello", 256);
        let walk = walk_of(&req, 10);
        let (home, warm) = (walk[0], walk[5]);
        req.warmed = vec![warm];
        assert_eq!(chooser.choose(&invokers, &req), Ok(warm));
        // A warm invoker that refused before, is down or is full is passed.
        req.avoid = vec![warm];
        assert_eq!(chooser.choose(&invokers, &req), Ok(home));
        req.avoid.clear();
        invokers[warm as usize].resource.status = InvokerState::Unhealthy;
        assert_eq!(chooser.choose(&invokers, &req), Ok(home));
        invokers[warm as usize] = report(warm, InvokerState::Healthy, 128);
        assert_eq!(chooser.choose(&invokers, &req), Ok(home));
        // An unknown warmed invoker (its report is gone) is passed too.
        req.warmed = vec![99];
        assert_eq!(chooser.choose(&invokers, &req), Ok(home));
    }

    #[test]
    fn a_full_invoker_passes_to_the_next_in_the_walk() {
        let chooser = Chooser::default();
        let req = request("guest/hello", 256);
        let walk = walk_of(&req, 10);
        let mut invokers = up(10, 2048);
        invokers[walk[0] as usize].resource.free_memory = 255;
        invokers[walk[1] as usize].resource.free_memory = 0;
        assert_eq!(chooser.choose(&invokers, &req), Ok(walk[2]));
    }

    #[test]
    fn reservations_fill_the_home_then_walk_on_until_released_or_expired() {
        let chooser = Chooser::new(Duration::from_secs(2));
        let req = request("guest/hello", 256);
        let walk = walk_of(&req, 4);
        let invokers = up(4, 512);
        let t0 = Instant::now();
        let picks: Vec<u32> = (0..8)
            .map(|_| chooser.choose_at(&invokers, &req, t0).expect("room"))
            .collect();
        let expected: Vec<u32> = walk.iter().flat_map(|&i| [i, i]).collect();
        assert_eq!(picks, expected, "two per invoker, in walk order");
        assert_eq!(chooser.reserved_mb(walk[0], t0), 512);
        assert_eq!(
            chooser.choose_at(&invokers, &req, t0),
            Err(ContainerCreationError::NoAvailableInvokersError)
        );
        // An ack gives one back at once.
        chooser.release(walk[0], 256);
        assert_eq!(chooser.reserved_mb(walk[0], t0), 256);
        assert_eq!(chooser.choose_at(&invokers, &req, t0), Ok(walk[0]));
        // Releasing what is not held changes nothing.
        chooser.release(walk[0], 128);
        chooser.release(42, 256);
        assert_eq!(chooser.reserved_mb(walk[0], t0), 512);
        // After the TTL the reports alone count again.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(chooser.reserved_mb(walk[0], later), 0);
        assert_eq!(chooser.choose_at(&invokers, &req, later), Ok(walk[0]));
    }

    #[test]
    fn dedicated_namespaces_take_only_their_own() {
        let chooser = Chooser::default();
        let mut req = request("guest/hello", 256);
        let walk = walk_of(&req, 3);
        let mut invokers = up(3, 2048);
        invokers[walk[0] as usize].resource.dedicated_namespaces = vec!["other".into()];
        assert_eq!(chooser.choose(&invokers, &req), Ok(walk[1]));
        invokers[walk[0] as usize].resource.dedicated_namespaces =
            vec!["other".into(), "guest".into()];
        assert_eq!(chooser.choose(&invokers, &req), Ok(walk[0]));
        req.invocation_namespace = "third".into();
        let only = vec![invokers[walk[0] as usize].clone()];
        assert_eq!(
            chooser.choose(&only, &req),
            Err(ContainerCreationError::NoAvailableInvokersError)
        );
    }

    #[test]
    fn tags_are_required_and_untagged_actions_prefer_untagged_invokers() {
        let chooser = Chooser::default();
        let mut invokers = up(4, 2048);
        invokers[1].resource.tags = vec!["gpu".into(), "edge".into()];
        invokers[3].resource.tags = vec!["edge".into()];
        let mut req = request("guest/hello", 256);
        req.required_tags = vec!["gpu".into()];
        assert_eq!(chooser.choose(&invokers, &req), Ok(1));
        req.required_tags = vec!["edge".into()];
        let edge = chooser.choose(&invokers, &req).expect("an edge invoker");
        assert!(edge == 1 || edge == 3);
        req.required_tags = vec!["tpu".into()];
        assert_eq!(
            chooser.choose(&invokers, &req),
            Err(ContainerCreationError::NoAvailableResourceInvokersError)
        );

        // Untagged: only 0 and 2 while they have room, then the tagged ones.
        let untagged = request("guest/hello", 1024);
        for _ in 0..4 {
            let pick = chooser.choose(&invokers, &untagged).expect("room");
            assert!(pick == 0 || pick == 2, "{pick}");
        }
        let pick = chooser.choose(&invokers, &untagged).expect("room");
        assert!(pick == 1 || pick == 3, "{pick}");
    }

    #[test]
    fn avoided_invokers_come_last() {
        let chooser = Chooser::new(Duration::ZERO);
        let mut req = request("guest/hello", 256);
        let walk = walk_of(&req, 5);
        let invokers = up(5, 2048);
        req.avoid = vec![walk[0], walk[1]];
        assert_eq!(chooser.choose(&invokers, &req), Ok(walk[2]));
        // Only avoided invokers are usable: the walk's first one anyway.
        req.avoid = walk.clone();
        assert_eq!(chooser.choose(&invokers, &req), Ok(walk[0]));
        let mut full = invokers.clone();
        full[walk[0] as usize].resource.free_memory = 0;
        assert_eq!(chooser.choose(&full, &req), Ok(walk[1]));
        // An untagged action goes to a tagged invoker before an avoided one.
        let mut mixed = up(2, 2048);
        mixed[1].resource.tags = vec!["gpu".into()];
        req.avoid = vec![0];
        assert_eq!(chooser.choose(&mixed, &req), Ok(1));
    }

    #[test]
    fn only_up_invokers_are_used() {
        let chooser = Chooser::default();
        let req = request("guest/hello", 256);
        let walk = walk_of(&req, 4);
        let mut invokers = up(4, 2048);
        invokers[walk[0] as usize].resource.status = InvokerState::Unhealthy;
        invokers[walk[1] as usize].resource.status = InvokerState::Offline;
        invokers[walk[2] as usize].resource.status = InvokerState::Unresponsive;
        assert_eq!(chooser.choose(&invokers, &req), Ok(walk[3]));
        // The walk is over every invoker: the homes do not move when one
        // goes down.
        invokers.reverse();
        assert_eq!(chooser.choose(&invokers, &req), Ok(walk[3]));
    }

    #[test]
    fn nothing_usable_is_an_error() {
        let chooser = Chooser::default();
        let req = request("guest/hello", 256);
        assert_eq!(
            chooser.choose(&[], &req),
            Err(ContainerCreationError::NoAvailableInvokersError)
        );
        let invokers = vec![
            report(0, InvokerState::Offline, 2048),
            report(1, InvokerState::Healthy, 128),
            report(2, InvokerState::Healthy, -64),
        ];
        assert_eq!(
            chooser.choose(&invokers, &req),
            Err(ContainerCreationError::NoAvailableInvokersError)
        );
        assert_eq!(chooser.reserved_mb(0, Instant::now()), 0);
    }
}
