//! The loop that keeps a process's deliveries owned: in-progress acks for
//! the running ones, retried acks for the done ones (the bookkeeping is
//! [`super::inflight`]).

use std::time::Duration;

use tokio::sync::watch;

use super::inflight::Chore;
use super::queue::JetStreamQueue;

/// Keeps a queue's deliveries owned: in-progress acks for running ones,
/// retried acks for done ones. Made by
/// [`JetStreamQueue::keeper`].
#[derive(Debug)]
pub struct ProgressKeeper {
    queue: JetStreamQueue,
}

impl ProgressKeeper {
    pub(super) fn new(queue: JetStreamQueue) -> Self {
        ProgressKeeper { queue }
    }

    /// Runs until `shutdown` turns true (or its sender is dropped), every
    /// `ack_wait / 4` — the shortest `ack_wait` of the consumers pulled
    /// from, which another process may have set.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let every = (self.queue.ack_wait() / 4).max(Duration::from_millis(10));
            tokio::select! {
                _ = tokio::time::sleep(every) => self.keep().await,
                changed = shutdown.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn keep(&self) {
        let queue = &self.queue;
        // Nothing gets through while disconnected: keep the chores for
        // when the connection is back.
        if queue.connected().is_err() {
            return;
        }
        let (chores, given_up) = queue.due_chores();
        for delivery in given_up {
            tracing::warn!(
                delivery,
                max_hold = ?queue.config().max_hold,
                "a delivery was held too long; no longer kept"
            );
        }
        for chore in chores {
            match chore {
                Chore::Progress(reply) => queue.progress(reply).await,
                Chore::RetryAck(delivery, reply) => {
                    if let Err(e) = queue.confirm_ack(delivery, reply).await {
                        tracing::debug!(delivery, error = %e, "an ack is still not confirmed");
                    }
                }
            }
        }
    }
}
