//! The deliveries a process holds, and what keeping them owned takes.
//!
//! JetStream redelivers a message whose ack did not come within the
//! consumer's `ack_wait`. So that a dead invoker's activations move on
//! quickly while a long one on a live invoker is never taken away from it,
//! `ack_wait` is short and the holder sends an *in-progress* ack
//! (`+WPI`, [`AckKind::Progress`](async_nats::jetstream::AckKind)) for every
//! delivery it still holds, before `ack_wait` runs out. This table is the
//! bookkeeping of that, plain data: [`InFlight::chores`] returns what to send,
//! the [`ProgressKeeper`](super::keeper::ProgressKeeper) sends it.
//!
//! ```text
//!            pull                 done                ack confirmed
//!   (none) ───────▶ Running ───────────────▶ Acking ───────────────▶ (gone)
//!                    │   │ held ≥ max_hold      ▲ │ ack failed: retried every
//!                    │   ▼                      │ │ tick until confirmed or
//!                    │  Abandoned ──── done ────┘ │ held ≥ max_hold
//!                    │   (no more +WPI: JetStream  ▼
//!                    │    redelivers it)         (gone)
//!                    └── redeliver (-NAK) ──────▶ (gone)
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::Subject;

use wasmwhisk_core::pool::queue::DeliveryId;

/// Where a held delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its activation runs: kept owned with in-progress acks.
    Running,
    /// Held past `max_hold`: no more in-progress acks, so JetStream will
    /// redeliver it (a leak or a hung sandbox must not hold it for ever).
    Abandoned,
    /// Done; the ack is not confirmed yet.
    Acking,
}

#[derive(Debug)]
struct Entry {
    /// The message's `$JS.ACK…` reply subject: where every ack goes.
    reply: Subject,
    pulled: Instant,
    /// When JetStream last heard of it (pull or in-progress ack).
    touched: Instant,
    state: State,
}

/// Something the keeper must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Chore {
    /// An in-progress ack.
    Progress(Subject),
    /// The ack of a done delivery, again.
    RetryAck(DeliveryId, Subject),
}

/// The deliveries held by this process. Invariant: every entry was pulled
/// and has been neither confirmed acked nor nak'ed.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    entries: HashMap<DeliveryId, Entry>,
}

impl InFlight {
    /// A new delivery, pulled `now`.
    pub(super) fn insert(&mut self, id: DeliveryId, reply: Subject, now: Instant) {
        self.entries.insert(
            id,
            Entry {
                reply,
                pulled: now,
                touched: now,
                state: State::Running,
            },
        );
    }

    /// Done: the ack to send (the entry stays until [`InFlight::acked`]).
    pub(super) fn start_ack(&mut self, id: DeliveryId) -> Option<Subject> {
        let entry = self.entries.get_mut(&id)?;
        entry.state = State::Acking;
        Some(entry.reply.clone())
    }

    /// The ack of `id` is confirmed.
    pub(super) fn acked(&mut self, id: DeliveryId) {
        self.entries.remove(&id);
    }

    /// Handed back: where to send the `-NAK`.
    pub(super) fn take(&mut self, id: DeliveryId) -> Option<Subject> {
        self.entries.remove(&id).map(|e| e.reply)
    }

    /// Deliveries held.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// What to send `now`: an in-progress ack for every running delivery
    /// JetStream has not heard of for `progress_every`, the ack of every
    /// unconfirmed done one. Deliveries held for `max_hold` are abandoned
    /// (running) or forgotten (acking); their ids are returned for the log.
    pub(super) fn chores(
        &mut self,
        now: Instant,
        progress_every: Duration,
        max_hold: Duration,
    ) -> (Vec<Chore>, Vec<DeliveryId>) {
        let mut chores = Vec::new();
        let mut given_up = Vec::new();
        self.entries.retain(|&id, entry| {
            let held = now.saturating_duration_since(entry.pulled);
            match entry.state {
                State::Running if held >= max_hold => {
                    entry.state = State::Abandoned;
                    given_up.push(id);
                }
                State::Running => {
                    if now.saturating_duration_since(entry.touched) >= progress_every {
                        entry.touched = now;
                        chores.push(Chore::Progress(entry.reply.clone()));
                    }
                }
                State::Abandoned => {}
                State::Acking if held >= max_hold => {
                    given_up.push(id);
                    return false;
                }
                State::Acking => chores.push(Chore::RetryAck(id, entry.reply.clone())),
            }
            true
        });
        (chores, given_up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn reply(n: u64) -> Subject {
        Subject::from(format!("$JS.ACK.s.c.1.{n}.{n}.0.0"))
    }

    #[test]
    fn running_deliveries_are_kept_alive_before_ack_wait() {
        let t0 = Instant::now();
        let mut table = InFlight::default();
        table.insert(1, reply(1), t0);
        // Young: nothing to send.
        assert_eq!(table.chores(t0 + SEC, 5 * SEC, 600 * SEC).0, vec![]);
        // Not heard of for progress_every: one +WPI, then quiet again.
        let (chores, _) = table.chores(t0 + 5 * SEC, 5 * SEC, 600 * SEC);
        assert_eq!(chores, vec![Chore::Progress(reply(1))]);
        assert_eq!(table.chores(t0 + 6 * SEC, 5 * SEC, 600 * SEC).0, vec![]);
        let (chores, _) = table.chores(t0 + 10 * SEC, 5 * SEC, 600 * SEC);
        assert_eq!(chores, vec![Chore::Progress(reply(1))]);
    }

    #[test]
    fn running_past_max_hold_is_abandoned_but_can_still_be_done() {
        let t0 = Instant::now();
        let mut table = InFlight::default();
        table.insert(1, reply(1), t0);
        let (chores, given_up) = table.chores(t0 + 60 * SEC, 5 * SEC, 60 * SEC);
        assert_eq!((chores, given_up), (vec![], vec![1]));
        // Abandoned: silent from now on.
        assert_eq!(
            table.chores(t0 + 90 * SEC, 5 * SEC, 60 * SEC),
            (vec![], vec![])
        );
        assert_eq!(table.start_ack(1), Some(reply(1)));
    }

    #[test]
    fn unconfirmed_acks_are_retried_until_confirmed_or_too_old() {
        let t0 = Instant::now();
        let mut table = InFlight::default();
        table.insert(1, reply(1), t0);
        table.insert(2, reply(2), t0);
        assert_eq!(table.start_ack(1), Some(reply(1)));
        assert_eq!(table.start_ack(2), Some(reply(2)));
        table.acked(2);
        let (chores, _) = table.chores(t0 + SEC, 5 * SEC, 60 * SEC);
        assert_eq!(chores, vec![Chore::RetryAck(1, reply(1))]);
        assert_eq!(table.len(), 1);
        let (chores, given_up) = table.chores(t0 + 60 * SEC, 5 * SEC, 60 * SEC);
        assert_eq!((chores, given_up), (vec![], vec![1]));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn handed_back_and_unknown_deliveries() {
        let t0 = Instant::now();
        let mut table = InFlight::default();
        table.insert(7, reply(7), t0);
        assert_eq!(table.take(7), Some(reply(7)));
        assert_eq!(table.take(7), None);
        assert_eq!(table.start_ack(7), None);
        assert_eq!(table.len(), 0);
    }
}
