//! The pool's bookkeeping: which sandbox is in which of OpenWhisk's pools,
//! how much memory each pool holds, and what to do with a creation message.
//!
//! ```text
//!                 ready_to_work                   take (prewarm)
//!  PrewarmStarting ───────────▶ Prewarmed ──────────────────────┐
//!                                                               ▼
//!      creation message ── cold ──────────────────────────▶ InProgress ──initialized/resumed──▶ Busy
//!                                                               ▲                               │  ▲
//!                                                   take (warm) │                        paused │  │
//!                                                               └──────────── Warmed ◀─────────┘  │
//!                                                                              (resume) ──────────┘
//!  any pool ──removed──▶ (gone);  Busy/Warmed ──disable/delete──▶ Disabling ──removed──▶ (gone)
//!  Busy ──reclaim (another namespace's fair share)──▶ Disabling
//! ```
//!
//! OpenWhisk: docs/openwhisk.md §1.1–§1.3, §1.5. This is plain synchronous code: every event
//! returns a decision (which sandbox to resume, which stem cell to take, which
//! warmed sandboxes to evict, which ack to send) and the async pool carries
//! it out. Memory follows OpenWhisk exactly:
//! - in-progress entries count the memory they were taken with (a promoted
//!   stem cell counts its own, larger, memory until it is initialized);
//! - prewarmed and starting stem cells are outside `user-memory`;
//! - the report's free memory is `user-memory − busy − in-progress`, so warmed
//!   sandboxes count as free: the pool evicts them itself, least recently used
//!   first, when a creation needs their room.
//!
//! Between namespaces it keeps the fair share of [`super::share`]: a
//! namespace over its share is refused while another waits, and a refused
//! namespace within its share gets busy sandboxes of over-share namespaces
//! reclaimed (Busy ──reclaim──▶ Disabling).
//!
//! The pending creation message of each sandbox is kept here (generic `M`,
//! opaque to the pool) so the success or failure ack can be sent for it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use super::share::{self, Candidate, Waiting};
use super::slot::*;

/// The pools. Invariants: every sandbox is in exactly one slot; `busy_mb`,
/// `in_progress_mb` and `warmed_mb` equal the sums over their slots;
/// `warm_index` and `lru` hold exactly the warmed sandboxes.
#[derive(Debug)]
pub struct PoolState<M> {
    user_memory_mb: u64,
    prewarm_promotion: bool,
    shutting_down: bool,
    next_id: SandboxId,
    slots: HashMap<SandboxId, Slot>,
    creations: HashMap<SandboxId, M>,
    busy_mb: u64,
    in_progress_mb: u64,
    warmed_mb: u64,
    /// Warmed sandboxes per action. A `Vec`: most actions have one or two,
    /// and a `BTreeSet` node would cost ~100 B per action.
    warm_index: HashMap<WarmKey, Vec<SandboxId>>,
    lru: BTreeSet<(Instant, SandboxId)>,
    disabling: HashSet<SandboxId>,
    /// Namespaces refused memory within their share, recently.
    waiting: Waiting,
}

impl<M> PoolState<M> {
    /// Empty pools for `user_memory_mb`; `prewarm_promotion` lets an action
    /// take a bigger stem cell than it needs.
    pub fn new(user_memory_mb: u64, prewarm_promotion: bool) -> PoolState<M> {
        PoolState {
            user_memory_mb,
            prewarm_promotion,
            shutting_down: false,
            next_id: 1,
            slots: HashMap::new(),
            creations: HashMap::new(),
            busy_mb: 0,
            in_progress_mb: 0,
            warmed_mb: 0,
            warm_index: HashMap::new(),
            lru: BTreeSet::new(),
            disabling: HashSet::new(),
            waiting: Waiting::default(),
        }
    }

    fn new_id(&mut self) -> SandboxId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Where `id` is.
    pub fn slot(&self, id: SandboxId) -> Option<&Slot> {
        self.slots.get(&id)
    }

    /// Every sandbox and its slot, in no particular order.
    pub fn slots(&self) -> impl Iterator<Item = (SandboxId, &Slot)> {
        self.slots.iter().map(|(id, slot)| (*id, slot))
    }

    /// True while disabled / shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Memory not held by busy, in-progress or warmed sandboxes.
    fn free_mb(&self) -> u64 {
        self.user_memory_mb
            .saturating_sub(self.busy_mb + self.in_progress_mb + self.warmed_mb)
    }

    /// The report for the schedulers (warmed counts as free).
    pub fn memory(&self) -> MemoryReport {
        MemoryReport {
            free_mb: self
                .user_memory_mb
                .saturating_sub(self.busy_mb + self.in_progress_mb),
            busy_mb: self.busy_mb,
            in_progress_mb: self.in_progress_mb,
        }
    }

    /// Memory held by warmed sandboxes, MB.
    pub fn warmed_mb(&self) -> u64 {
        self.warmed_mb
    }

    /// Starts a stem cell of `kind` (prewarm-starting); returns its id.
    pub fn start_prewarm(&mut self, kind: &str, memory_mb: u64) -> SandboxId {
        let id = self.new_id();
        self.slots.insert(
            id,
            Slot::PrewarmStarting {
                kind: kind.to_string(),
                memory_mb,
            },
        );
        id
    }

    /// `ReadyToWork`: prewarm-starting → prewarmed.
    pub fn ready_to_work(
        &mut self,
        id: SandboxId,
        expires: Option<Instant>,
    ) -> Result<(), WrongSlot> {
        match self.slots.get(&id) {
            Some(Slot::PrewarmStarting { kind, memory_mb }) => {
                let slot = Slot::Prewarmed {
                    kind: kind.clone(),
                    memory_mb: *memory_mb,
                    expires,
                };
                self.slots.insert(id, slot);
                Ok(())
            }
            _ => Err(WrongSlot {
                id,
                expected: "prewarm-starting",
            }),
        }
    }

    /// [`PoolState::create_at`] now.
    pub fn create(&mut self, action: &PoolAction, message: M) -> CreationDecision {
        self.create_at(action, message, Instant::now())
    }

    /// Handles a creation message at `now` (docs/openwhisk.md §1.2): warm, else
    /// prewarm, else cold, evicting warmed sandboxes for room, else refuse.
    /// Between namespaces ([`super::share`]): a namespace over its share
    /// while another waits is refused first; a refused namespace within its
    /// share waits, and busy sandboxes of over-share namespaces are
    /// reclaimed for it. The message is kept until its ack.
    pub fn create_at(&mut self, action: &PoolAction, message: M, now: Instant) -> CreationDecision {
        if self.shutting_down {
            return CreationDecision::Refuse(Refusal::ShuttingDown);
        }
        if !action.executable {
            return CreationDecision::Refuse(Refusal::NonExecutable);
        }
        if self.over_share_while_others_wait(action, now) {
            return CreationDecision::Refuse(Refusal::ResourceNotEnough);
        }
        let decision = match self.take_warmed(action) {
            Some(id) => CreationDecision::Warm { id },
            None => match self.take_container(action) {
                Some(decision) => decision,
                None => return self.refuse_for_memory(action, now),
            },
        };
        let id = match &decision {
            CreationDecision::Warm { id }
            | CreationDecision::Prewarm { id, .. }
            | CreationDecision::Cold { id, .. } => *id,
            CreationDecision::Refuse(_) | CreationDecision::Reclaim { .. } => return decision,
        };
        self.waiting.clear(&action.key.invocation_namespace);
        self.creations.insert(id, message);
        decision
    }

    /// The creation message sandbox `id` serves, while not yet acked.
    pub fn creation(&self, id: SandboxId) -> Option<&M> {
        self.creations.get(&id)
    }

    /// Retries a creation whose resume failed (`ResumeFailed`), with the
    /// normal choice at `now`; the warmed sandbox `id` was dropped.
    pub fn retry_after_resume_failed(
        &mut self,
        id: SandboxId,
        action: &PoolAction,
        now: Instant,
    ) -> Option<CreationDecision> {
        let message = self.creations.remove(&id)?;
        self.remove_slot(id);
        Some(self.create_at(action, message, now))
    }

    /// Memory each namespace holds: its in-progress, busy, warmed and
    /// disabling sandboxes.
    fn held_by_namespace(&self) -> HashMap<&str, u64> {
        let mut held: HashMap<&str, u64> = HashMap::new();
        for slot in self.slots.values() {
            let (action, mb) = match slot {
                Slot::InProgress {
                    action, memory_mb, ..
                } => (action, *memory_mb),
                Slot::Busy { action }
                | Slot::Warmed { action, .. }
                | Slot::Disabling { action } => (action, action.memory_mb),
                Slot::PrewarmStarting { .. } | Slot::Prewarmed { .. } => continue,
            };
            *held
                .entry(action.key.invocation_namespace.as_str())
                .or_default() += mb;
        }
        held
    }

    /// True when another namespace waits and `action`'s namespace would
    /// hold more than its share with this creation (a warm reuse adds
    /// nothing, but keeps what it holds out of reach of eviction).
    fn over_share_while_others_wait(&mut self, action: &PoolAction, now: Instant) -> bool {
        let namespace = action.key.invocation_namespace.as_str();
        let others: Vec<String> = self
            .waiting
            .current(now)
            .filter(|ns| *ns != namespace)
            .map(str::to_string)
            .collect();
        if others.is_empty() {
            return false;
        }
        let held = self.held_by_namespace();
        let share = share::share_mb(
            self.user_memory_mb,
            &held,
            others.iter().map(String::as_str),
            namespace,
        );
        let mine = held.get(namespace).copied().unwrap_or(0);
        let more = if self.warm_index.contains_key(&action.key) {
            0
        } else {
            action.memory_mb
        };
        mine + more > share
    }

    /// The creation does not fit. Within its share, its namespace now waits
    /// and busy sandboxes of over-share namespaces are reclaimed for the
    /// memory still missing (disabling ones count as coming free).
    fn refuse_for_memory(&mut self, action: &PoolAction, now: Instant) -> CreationDecision {
        let namespace = action.key.invocation_namespace.as_str();
        let refused = CreationDecision::Refuse(Refusal::ResourceNotEnough);
        let waiting: Vec<String> = self.waiting.current(now).map(str::to_string).collect();
        let reclaim = {
            let held = self.held_by_namespace();
            let share = share::share_mb(
                self.user_memory_mb,
                &held,
                waiting.iter().map(String::as_str),
                namespace,
            );
            if held.get(namespace).copied().unwrap_or(0) + action.memory_mb > share {
                return refused;
            }
            let coming = self.free_mb() + self.warmed_mb + self.disabling_mb();
            let missing = action.memory_mb.saturating_sub(coming);
            let candidates: Vec<Candidate<'_>> = self
                .slots
                .iter()
                .filter_map(|(id, slot)| match slot {
                    Slot::Busy { action } => Some((
                        *id,
                        action.key.invocation_namespace.as_str(),
                        action.memory_mb,
                    )),
                    _ => None,
                })
                .collect();
            share::reclaim(&candidates, &held, share, namespace, missing)
        };
        self.waiting.mark(namespace, now);
        if reclaim.is_empty() {
            return refused;
        }
        for id in &reclaim {
            self.start_disabling(*id);
        }
        CreationDecision::Reclaim { reclaim }
    }

    /// Memory of disabling sandboxes: held until they are removed.
    fn disabling_mb(&self) -> u64 {
        self.disabling
            .iter()
            .filter_map(|id| match self.slots.get(id) {
                Some(Slot::Disabling { action }) => Some(action.memory_mb),
                _ => None,
            })
            .sum()
    }

    fn take_warmed(&mut self, action: &PoolAction) -> Option<SandboxId> {
        let ids = self.warm_index.get(&action.key)?;
        // The most recently used warm sandbox of the action.
        let id = ids
            .iter()
            .copied()
            // Ties go to the newest sandbox (the highest id).
            .max_by_key(|id| match self.slots.get(id) {
                Some(Slot::Warmed { last_used, .. }) => Some((*last_used, *id)),
                _ => None,
            })?;
        let Some(Slot::Warmed { action: warm, .. }) = self.remove_slot(id) else {
            return None;
        };
        self.in_progress_mb += warm.memory_mb;
        self.slots.insert(
            id,
            Slot::InProgress {
                memory_mb: warm.memory_mb,
                action: warm,
                start: StartKind::Warm,
            },
        );
        Some(id)
    }

    fn take_container(&mut self, action: &PoolAction) -> Option<CreationDecision> {
        let free = self.free_mb();
        let deletable = self.warmed_mb;
        let required = action.memory_mb;
        if required > free + deletable {
            return None;
        }
        let max = if self.prewarm_promotion {
            free + deletable
        } else {
            required
        };
        let stem_cell = self
            .slots
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Prewarmed {
                    kind, memory_mb, ..
                } if *kind == action.kind && required <= *memory_mb && *memory_mb <= max => {
                    Some((*memory_mb, *id))
                }
                _ => None,
            })
            .min();
        match stem_cell {
            Some((memory_mb, id)) => {
                let evict = if memory_mb > free {
                    self.evict(memory_mb - free)
                } else {
                    Vec::new()
                };
                self.slots.insert(
                    id,
                    Slot::InProgress {
                        action: action.clone(),
                        memory_mb,
                        start: StartKind::Prewarmed,
                    },
                );
                self.in_progress_mb += memory_mb;
                let replacement = self.start_prewarm(&action.kind, memory_mb);
                Some(CreationDecision::Prewarm {
                    id,
                    replacement,
                    evict,
                })
            }
            None => {
                let evict = if required > free {
                    self.evict(required - free)
                } else {
                    Vec::new()
                };
                let id = self.new_id();
                self.slots.insert(
                    id,
                    Slot::InProgress {
                        action: action.clone(),
                        memory_mb: required,
                        start: StartKind::Cold,
                    },
                );
                self.in_progress_mb += required;
                Some(CreationDecision::Cold { id, evict })
            }
        }
    }

    /// Removes warmed sandboxes, least recently used first, until `mb` are
    /// covered; only if the warmed pool holds at least `mb`. Their memory
    /// counts as free at once; the caller destroys them.
    pub fn evict(&mut self, mb: u64) -> Vec<SandboxId> {
        if self.warmed_mb < mb {
            return Vec::new();
        }
        let mut freed = 0;
        let mut evicted = Vec::new();
        while freed < mb {
            let Some(&(_, id)) = self.lru.iter().next() else {
                break;
            };
            if let Some(Slot::Warmed { action, .. }) = self.remove_slot(id) {
                freed += action.memory_mb;
            }
            evicted.push(id);
        }
        evicted
    }

    /// `Initialized` / `Resumed`: in-progress → busy. Returns the creation
    /// message to ack as a success.
    pub fn ready(&mut self, id: SandboxId) -> Result<Option<M>, WrongSlot> {
        match self.slots.get(&id) {
            Some(Slot::InProgress { .. }) => {}
            _ => {
                return Err(WrongSlot {
                    id,
                    expected: "in progress",
                });
            }
        }
        if let Some(Slot::InProgress { action, .. }) = self.remove_slot(id) {
            self.busy_mb += action.memory_mb;
            self.slots.insert(id, Slot::Busy { action });
        }
        Ok(self.creations.remove(&id))
    }

    /// `ContainerCreationFailed`: the creation message to ack with an error;
    /// the pools are untouched (a `removed` follows).
    pub fn creation_failed(&mut self, id: SandboxId) -> Option<M> {
        self.creations.remove(&id)
    }

    /// `ContainerIsPaused`: busy → warmed at `now`.
    pub fn paused(&mut self, id: SandboxId, now: Instant) -> Result<(), WrongSlot> {
        match self.slots.get(&id) {
            Some(Slot::Busy { .. }) => {}
            _ => {
                return Err(WrongSlot {
                    id,
                    expected: "busy",
                });
            }
        }
        if let Some(Slot::Busy { action }) = self.remove_slot(id) {
            self.insert_warmed(id, action, now);
        }
        Ok(())
    }

    fn insert_warmed(&mut self, id: SandboxId, action: PoolAction, last_used: Instant) {
        self.warmed_mb += action.memory_mb;
        self.warm_index
            .entry(action.key.clone())
            .or_default()
            .push(id);
        self.lru.insert((last_used, id));
        self.slots.insert(id, Slot::Warmed { action, last_used });
    }

    /// `ContainerRemoved`: drops `id` from whatever pool holds it.
    pub fn removed(&mut self, id: SandboxId) -> Removed<M> {
        let was_starting = matches!(self.slots.get(&id), Some(Slot::PrewarmStarting { .. }));
        self.remove_slot(id);
        Removed {
            was_starting,
            unacked: self.creations.remove(&id),
        }
    }

    /// Takes `id` out of its slot, keeping the memory sums and indexes right.
    fn remove_slot(&mut self, id: SandboxId) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        match &slot {
            Slot::InProgress { memory_mb, .. } => self.in_progress_mb -= memory_mb,
            Slot::Busy { action } => self.busy_mb -= action.memory_mb,
            Slot::Disabling { action } => {
                self.busy_mb -= action.memory_mb;
                self.disabling.remove(&id);
            }
            Slot::Warmed { action, last_used } => {
                self.warmed_mb -= action.memory_mb;
                self.lru.remove(&(*last_used, id));
                if let Some(ids) = self.warm_index.get_mut(&action.key) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        self.warm_index.remove(&action.key);
                    }
                }
            }
            Slot::PrewarmStarting { .. } | Slot::Prewarmed { .. } => {}
        }
        Some(slot)
    }

    /// A `ContainerDeletionMessage` (§1.5): warmed and busy sandboxes of the
    /// action in `invocation_namespace` whose revision is ≤ `revision` (by
    /// the number before `-`) move to disabling; returns them to shut down.
    pub fn delete(
        &mut self,
        invocation_namespace: &str,
        action: &str,
        revision: &str,
    ) -> Vec<SandboxId> {
        let limit = revision_number(revision);
        let chosen: Vec<SandboxId> = self
            .slots
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Warmed { action: a, .. } | Slot::Busy { action: a }
                    if a.key.invocation_namespace == invocation_namespace
                        && a.key.action == action
                        && revision_number(&a.key.revision) <= limit =>
                {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        for id in &chosen {
            self.start_disabling(*id);
        }
        chosen
    }

    fn start_disabling(&mut self, id: SandboxId) {
        match self.remove_slot(id) {
            Some(Slot::Busy { action } | Slot::Warmed { action, .. }) => {
                self.busy_mb += action.memory_mb;
                self.disabling.insert(id);
                self.slots.insert(id, Slot::Disabling { action });
            }
            Some(other) => {
                self.slots.insert(id, other);
            }
            None => {}
        }
    }

    /// Disable (`GracefulShutdown`): refuse new creations and move the next
    /// batch of busy (first) then warmed sandboxes to disabling, keeping at
    /// most `batch_size` disabling at once. Call again (every 5 s in
    /// OpenWhisk) until [`PoolState::drained`]. Stem cells stay.
    pub fn disable_batch(&mut self, batch_size: usize) -> Vec<SandboxId> {
        self.shutting_down = true;
        let room = batch_size.saturating_sub(self.disabling.len());
        let mut busy: Vec<SandboxId> = Vec::new();
        let mut warmed: Vec<SandboxId> = Vec::new();
        for (id, slot) in &self.slots {
            match slot {
                Slot::Busy { .. } => busy.push(*id),
                Slot::Warmed { .. } => warmed.push(*id),
                _ => {}
            }
        }
        busy.sort_unstable();
        warmed.sort_unstable();
        let chosen: Vec<SandboxId> = busy.into_iter().chain(warmed).take(room).collect();
        for id in &chosen {
            self.start_disabling(*id);
        }
        chosen
    }

    /// True when nothing is in progress, busy, warmed or disabling.
    pub fn drained(&self) -> bool {
        !self.slots.values().any(|slot| {
            matches!(
                slot,
                Slot::InProgress { .. }
                    | Slot::Busy { .. }
                    | Slot::Warmed { .. }
                    | Slot::Disabling { .. }
            )
        })
    }

    /// `Enable`: accept creations again.
    pub fn enable(&mut self) {
        self.shutting_down = false;
    }

    /// Counts per pool.
    pub fn counts(&self) -> PoolCounts {
        let mut counts = PoolCounts::default();
        let mut by_kind: HashMap<&str, usize> = HashMap::new();
        for slot in self.slots.values() {
            match slot {
                Slot::PrewarmStarting { .. } => counts.prewarm_starting += 1,
                Slot::Prewarmed { kind, .. } => *by_kind.entry(kind).or_default() += 1,
                Slot::InProgress { .. } => counts.in_progress += 1,
                Slot::Busy { .. } => counts.busy += 1,
                Slot::Warmed { .. } => counts.warmed += 1,
                Slot::Disabling { .. } => counts.disabling += 1,
            }
        }
        let mut kinds: Vec<(String, usize)> = by_kind
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        kinds.sort();
        counts.prewarmed_by_kind = kinds;
        counts
    }

    /// Stem cells (prewarm-starting and prewarmed) as
    /// `(id, kind, memory, expires, ready)`, for the prewarm planner.
    pub fn stem_cells(&self) -> Vec<(SandboxId, &str, u64, Option<Instant>, bool)> {
        let mut cells: Vec<_> = self
            .slots
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::PrewarmStarting { kind, memory_mb } => {
                    Some((*id, kind.as_str(), *memory_mb, None, false))
                }
                Slot::Prewarmed {
                    kind,
                    memory_mb,
                    expires,
                } => Some((*id, kind.as_str(), *memory_mb, *expires, true)),
                _ => None,
            })
            .collect();
        cells.sort_by_key(|c| c.0);
        cells
    }
}

/// OpenWhisk's revision order: the integer before `-` (`DocInfo`); a
/// revision without one counts as 0.
pub fn revision_number(revision: &str) -> u64 {
    revision
        .split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
