//! The NATS side of cluster mode: OpenWhisk's Kafka topics as NATS subjects,
//! and OpenWhisk's scheduler queues as JetStream work queues that sandboxes
//! pull from.
//!
//! # What goes where
//! | subject | carries | from → to | transport |
//! |---|---|---|---|
//! | `whisk.invoker{N}` | ContainerCreationMessage / ContainerDeletionMessage | scheduler → invoker N | core NATS |
//! | `whisk.creationAck{sid}` | ContainerCreationAckMessage | invoker → scheduler `sid` | core NATS |
//! | `whisk.completed{ctrl}` | Combined / Completion / Result message | invoker → controller `ctrl` | core NATS |
//! | `whisk.activation.{invNs}.{action}.{rev}` | ActivationMessage | controller → a sandbox of the action | JetStream |
//!
//! The JSON is OpenWhisk's, field for field ([`wasmwhisk_protocol`]); the
//! first three subjects come from [`Subjects`](wasmwhisk_protocol::Subjects),
//! the activation subjects from [`ActivationSubjects`] (names escaped into
//! tokens by [`escape`]).
//!
//! # Core NATS or JetStream
//! OpenWhisk's Kafka keeps every topic durably. Here only the activations
//! are durable, because only they must never be lost; each of the others is
//! covered by a timeout that OpenWhisk already has, and durability would make
//! them worse:
//! - **Creation and deletion messages** lost while an invoker is down are
//!   covered by the scheduler's creation-job timeout (20 s): the job fails
//!   with `TimeoutError`, a reschedulable error, and goes to another invoker.
//!   Kept durably, they would instead be replayed by the invoker when it comes
//!   back — creating sandboxes for jobs long since rescheduled elsewhere. A
//!   deletion lost while an invoker is away concerns sandboxes that died with
//!   it, or (a short disconnection) outdated warm sandboxes that receive no
//!   more work and expire idle.
//! - **Creation acks** lost while the scheduler is away: its creation jobs
//!   lived in its memory and died with it; a live scheduler that misses one
//!   times the job out, as for a lost creation message.
//! - **Completions** lost while a controller is away: the waiting request
//!   died with the controller, and the record was stored before the ack was
//!   sent (the pool stores, then acks, then marks the delivery done), so the
//!   client reads the result by activation id. A live controller that misses
//!   one reads the record from the store when its wait ends.
//!
//! Core NATS delivers to whoever subscribes at that moment, at most once,
//! with the lowest latency. A subscription made before a server restart
//! receives again once async-nats has reconnected (it resubscribes).
//!
//! # Activation queues (JetStream)
//! One stream `{prefix}-activations` (work-queue retention: a message is gone
//! once acked; file storage: it survives a server restart) holds every
//! action's activations, one subject per action; each action has one durable
//! pull consumer filtered on its subject, shared by every sandbox of the
//! action across the cluster. [`JetStreamQueue`] is the pool's
//! [`ActivationQueue`](wasmwhisk_core::pool::queue::ActivationQueue):
//! - `pull(action, wait)` asks for one message, waiting at most `wait`, in
//!   server requests of at most 1 s (OpenWhisk's long-poll) each with its own
//!   inbox; a pull dropped half-way leaves nothing behind (the server sees no
//!   interest and serves the next puller).
//! - `done` acks — after the record is stored, which is when the pool calls
//!   it — and waits for the server to confirm the ack; an unconfirmed ack is
//!   retried in the background.
//! - `redeliver` naks: the server delivers the activation again at once, to
//!   the next puller.
//! - The producer's [`JetStreamQueue::enqueue`] returns once the server has
//!   stored the activation, with the activation id as `Nats-Msg-Id`, so a
//!   retried enqueue is stored once. [`JetStreamQueue::stats`] gives a
//!   controller the consumer's state (pending, ack-pending, redelivered,
//!   waiting pulls) and [`JetStreamQueue::oldest_pending_age`] the age of the
//!   oldest waiting activation.
//!
//! **Delivery is at least once.** An invoker that dies holding an activation
//! does not ack it; JetStream redelivers it to another sandbox once the
//! consumer's `ack_wait` has passed. So that this happens soon, `ack_wait` is
//! short (10 s by default, the etcd lease TTL) and does **not** depend on the
//! action's timeout: while a process holds a delivery its
//! [`ProgressKeeper`] sends an in-progress ack (`+WPI`) every `ack_wait / 2`,
//! so a long activation on a live invoker is never taken away from it, up to
//! `max_hold` (15 min), past which the process stops keeping it. An
//! activation is therefore never silently lost: it ends with a stored record
//! (then acked), or it is redelivered. An activation may run twice: when its
//! invoker died after running it but before the ack, or when the ack was
//! lost; records are stored by activation id, so the second replaces the
//! first. A message on an activation subject that is not an activation is
//! logged, counted, terminated (never redelivered) and skipped.
//!
//! # Shared store (JetStream KV and object stores)
//! [`NatsStore`] is the cluster's entity and activation store, so any
//! controller answers any request: buckets `{prefix}-actions` (KV, the
//! latest two revisions of each action document), `{prefix}-code` (object
//! store, code by blake3 digest), `{prefix}-activations` (KV, records with
//! bounded age and size), `{prefix}-records` (records too large for one
//! message) and `{prefix}-auth` (namespaces and key hashes). See its module
//! doc for the keys and the rules.
//!
//! # Failures
//! - No server at start: [`NatsBus::connect`] fails with the URL and the
//!   reason.
//! - The server goes away: async-nats reconnects for ever (at most a second
//!   between attempts) and resubscribes. Meanwhile publishes wait in the
//!   client's buffer (a publish that waits 5 s for room is an error), pulls
//!   fail at once with `Unavailable` (the pool retries), and confirmed acks
//!   fail and are retried by the keeper. Activations survive a server
//!   restart on disk; an enqueue whose store was not confirmed is an error
//!   the producer retries (stored once, by its id).
//! - Malformed or unknown messages never stop a consumer: logged, counted
//!   ([`MalformedCount`]), skipped.

mod bus;
pub mod escape;
mod incoming;
mod inflight;
mod keeper;
mod messenger;
mod queue;
mod store;
mod subjects;

pub use bus::{BusOptions, NatsBus};
pub use incoming::{Incoming, MalformedCount};
pub use keeper::ProgressKeeper;
pub use messenger::NatsMessenger;
pub use queue::{ActionQueueStats, JetStreamQueue, JetStreamQueueConfig};
pub use store::{NatsStore, NatsStoreConfig};
pub use subjects::ActivationSubjects;

/// Why talking to NATS failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NatsError {
    /// No server answered at the URL.
    #[error("no NATS server answers at {url}: {reason}")]
    Connect {
        /// The URL(s) tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// A subscription could not be made.
    #[error("subscribing to {subject} failed: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// A JetStream stream or consumer could not be opened.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The connection is down.
    #[error("NATS is unavailable: {0}")]
    Unavailable(String),
}
