//! Function pulling over JetStream: every action's activations in one
//! work-queue stream, one durable pull consumer per action, and the pool's
//! [`ActivationQueue`] port on top (see the module doc of [`super`] for the
//! delivery semantics and the choice of `ack_wait`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind};
use async_nats::{Client, HeaderMap, Request, StatusCode, Subject};
use bytes::Bytes;

use super::inflight::{Chore, InFlight};
use super::keeper::ProgressKeeper;
use super::subjects::ActivationSubjects;
use super::{MalformedCount, NatsBus, NatsError};
use wasmwhisk_core::pool::queue::{ActivationQueue, DeliveryId, Pulled, QueueError};
use wasmwhisk_core::pool::slot::WarmKey;
use wasmwhisk_core::sync::lock;
use wasmwhisk_protocol::ActivationMessage;

/// Pulls shorter than this ask the server not to wait at all.
const MIN_EXPIRES: Duration = Duration::from_millis(10);

/// How long past a pull request's expiry the client waits for the server's
/// answer before it gives up on that request.
const REPLY_MARGIN: Duration = Duration::from_millis(500);

/// The JetStream API's subject prefix (no domains).
const API: &str = "$JS.API";

/// How the activation queues behave. Every knob states its default.
#[derive(Clone, Debug)]
pub struct JetStreamQueueConfig {
    /// The names of the stream, subjects and consumers. Default: under
    /// `whisk.`.
    pub subjects: ActivationSubjects,
    /// How long JetStream waits for an ack before it redelivers: how soon a
    /// dead invoker's activations go to another one. Live holders keep
    /// their deliveries with in-progress acks every `ack_wait / 2`, so
    /// this does not bound an activation's duration. Set when a consumer is
    /// created (the first process to create it decides). Default 10 s, the
    /// etcd lease TTL: a dead invoker's keys and its activations move on
    /// together.
    pub ack_wait: Duration,
    /// How long a process may hold one delivery before it stops keeping it
    /// (JetStream then redelivers it): longer than any init + run + store.
    /// Default 15 min (OpenWhisk's longest action timeout is 5 min, and
    /// init may take as long again).
    pub max_hold: Duration,
    /// The longest a single pull request waits at the server; longer pulls
    /// are several requests. Default 1 s, OpenWhisk's long-poll.
    pub max_pull_wait: Duration,
    /// Pull requests a consumer keeps waiting at once (idle sandboxes of
    /// one action across the cluster). Default 512, JetStream's own.
    pub max_waiting: i64,
    /// Deliveries of one action unacked at once, cluster-wide. Default
    /// 20,000.
    pub max_ack_pending: i64,
    /// Bound of every call that waits for the server: JetStream API calls,
    /// publish acks, confirmed acks. Default 5 s.
    pub request_timeout: Duration,
    /// Where messages on activation subjects that are not activations are
    /// counted (e.g. a counter of the process's metrics). Default: a
    /// counter of its own.
    pub malformed: MalformedCount,
}

impl JetStreamQueueConfig {
    /// The defaults, with `[nats] ack-wait` and `max-hold`.
    pub fn from_config(config: &wasmwhisk_core::config::NatsConfig) -> Self {
        JetStreamQueueConfig {
            ack_wait: config.ack_wait,
            max_hold: config.max_hold,
            ..JetStreamQueueConfig::default()
        }
    }
}

impl Default for JetStreamQueueConfig {
    fn default() -> Self {
        JetStreamQueueConfig {
            subjects: ActivationSubjects::default(),
            ack_wait: Duration::from_secs(10),
            max_hold: Duration::from_secs(15 * 60),
            max_pull_wait: Duration::from_secs(1),
            max_waiting: 512,
            max_ack_pending: 20_000,
            request_timeout: Duration::from_secs(5),
            malformed: MalformedCount::default(),
        }
    }
}

/// One action's consumer, as pulled from.
#[derive(Debug)]
struct Lane {
    /// The durable consumer's name.
    consumer: String,
    /// The action's subject (the consumer's filter).
    subject: String,
    /// `$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}`: where pulls go.
    next: Subject,
}

/// The consumer state of one action: what a controller decides from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActionQueueStats {
    /// Activations waiting, never delivered yet.
    pub pending: u64,
    /// Activations delivered and not acked: running, or held by a dead
    /// invoker until `ack_wait` runs out.
    pub ack_pending: u64,
    /// Of those, how many are deliveries after the first.
    pub redelivered: u64,
    /// Pull requests waiting at the server: roughly the idle sandboxes of
    /// the action, cluster-wide.
    pub waiting_pulls: u64,
}

/// The numbers of a consumer's info.
fn stats_of(info: &jetstream::consumer::Info) -> ActionQueueStats {
    let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    ActionQueueStats {
        pending: info.num_pending,
        ack_pending: wide(info.num_ack_pending),
        redelivered: wide(info.num_redelivered),
        waiting_pulls: wide(info.num_waiting),
    }
}

/// Every action's activation queue, over JetStream. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JetStreamQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    js: jetstream::Context,
    stream: stream::Stream,
    config: JetStreamQueueConfig,
    /// The consumers this process made sure exist, by action. (Both locks
    /// are std mutexes: short sections, never held across an await.)
    lanes: std::sync::Mutex<HashMap<WarmKey, Arc<Lane>>>,
    /// Deliveries held by this process.
    in_flight: std::sync::Mutex<InFlight>,
    next_delivery: AtomicU64,
    /// [`JetStreamQueue::ack_wait`], ms.
    ack_wait_ms: AtomicU64,
    /// Messages on an activation subject that are not activation messages.
    malformed: MalformedCount,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("{what}: {e}"))
}

impl JetStreamQueue {
    /// The activation stream on `bus`, made if missing: work-queue
    /// retention (a message is gone once acked), file storage (it survives
    /// a server restart).
    pub async fn open(
        bus: &NatsBus,
        config: JetStreamQueueConfig,
    ) -> Result<JetStreamQueue, NatsError> {
        let client = bus.client().clone();
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client.clone());
        let name = config.subjects.stream_name();
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                description: Some("wasmwhisk: activations waiting to be pulled".to_owned()),
                subjects: vec![config.subjects.all()],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::JetStream(format!("opening stream {name}: {e}")))?;
        let config_ack_wait = config.ack_wait;
        let retention = stream.cached_info().config.retention;
        if retention != RetentionPolicy::WorkQueue {
            return Err(NatsError::JetStream(format!(
                "stream {name} exists with {retention:?} retention; activation queues need a work queue"
            )));
        }
        Ok(JetStreamQueue {
            inner: Arc::new(Inner {
                client,
                js,
                stream,
                malformed: config.malformed.clone(),
                config,
                lanes: std::sync::Mutex::new(HashMap::new()),
                in_flight: std::sync::Mutex::new(InFlight::default()),
                next_delivery: AtomicU64::new(1),
                ack_wait_ms: AtomicU64::new(
                    u64::try_from(config_ack_wait.as_millis()).unwrap_or(u64::MAX),
                ),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &JetStreamQueueConfig {
        &self.inner.config
    }

    /// The producer's side: queues `message` for `action`. Returns once the
    /// server has stored it. Idempotent per activation id within the
    /// stream's duplicate window (2 min): a retried enqueue is stored once.
    pub async fn enqueue(
        &self,
        action: &WarmKey,
        message: &ActivationMessage,
    ) -> Result<(), QueueError> {
        let lane = self.lane(action).await?;
        let payload = serde_json::to_vec(message)
            .map_err(|e| unavailable("serializing the activation", e))?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", message.activation_id.as_str());
        let ack = self
            .inner
            .js
            .publish_with_headers(lane.subject.clone(), headers, payload.into())
            .await
            .map_err(|e| unavailable("enqueueing the activation", e))?;
        ack.await
            .map_err(|e| unavailable("enqueueing the activation (not stored)", e))?;
        Ok(())
    }

    /// The consumer state of `action`.
    pub async fn stats(&self, action: &WarmKey) -> Result<ActionQueueStats, QueueError> {
        Ok(stats_of(&self.consumer_info(action).await?.1))
    }

    /// `action`'s lane and its consumer's state, from the server.
    async fn consumer_info(
        &self,
        action: &WarmKey,
    ) -> Result<(Arc<Lane>, jetstream::consumer::Info), QueueError> {
        let lane = self.lane(action).await?;
        let info = self
            .inner
            .stream
            .consumer_info(&lane.consumer)
            .await
            .map_err(|e| self.lost(action, "reading the consumer", e))?;
        Ok((lane, info))
    }

    /// How long the oldest never-delivered activation of `action` has
    /// waited (`None` when none waits). Two requests to the server.
    pub async fn oldest_pending_age(
        &self,
        action: &WarmKey,
    ) -> Result<Option<Duration>, QueueError> {
        Ok(self.stats_and_oldest(action).await?.1)
    }

    /// [`stats`](Self::stats) and [`oldest_pending_age`](Self::oldest_pending_age)
    /// in one look: one request, and a second only when activations wait.
    pub async fn stats_and_oldest(
        &self,
        action: &WarmKey,
    ) -> Result<(ActionQueueStats, Option<Duration>), QueueError> {
        let (lane, info) = self.consumer_info(action).await?;
        let stats = stats_of(&info);
        if info.num_pending == 0 {
            return Ok((stats, None));
        }
        let oldest = self
            .inner
            .stream
            .raw_message_builder()
            .sequence(info.delivered.stream_sequence.saturating_add(1))
            .next_by_subject(lane.subject.clone())
            .send()
            .await;
        match oldest {
            Ok(message) => {
                let age = time::OffsetDateTime::now_utc() - message.time;
                Ok((stats, Some(age.try_into().unwrap_or(Duration::ZERO))))
            }
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok((stats, None)),
            Err(e) => Err(unavailable("reading the oldest activation", e)),
        }
    }

    /// Deletes `action`'s consumer and its waiting activations (an outdated
    /// revision); returns how many were dropped. Complete them first: they
    /// are gone without a record.
    pub async fn remove(&self, action: &WarmKey) -> Result<u64, QueueError> {
        let config = &self.inner.config;
        let consumer = config.subjects.consumer_name(action);
        let subject = config.subjects.activation(action);
        lock(&self.inner.lanes).remove(action);
        match self.inner.stream.delete_consumer(&consumer).await {
            Ok(_) => {}
            Err(e)
                if matches!(e.kind(), stream::ConsumerErrorKind::JetStream(ref js)
                    if js.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) => {}
            Err(e) => return Err(unavailable("deleting the consumer", e)),
        }
        let purged = self
            .inner
            .stream
            .purge()
            .filter(subject)
            .await
            .map_err(|e| unavailable("purging the action's activations", e))?;
        Ok(purged.purged)
    }

    /// Every action queue the server knows with activations waiting or
    /// held, with its numbers (one listing of the stream's consumers):
    /// how a controller finds queues no controller decides for.
    pub async fn busy_queues(&self) -> Result<Vec<(WarmKey, ActionQueueStats)>, QueueError> {
        use futures_util::TryStreamExt;
        self.connected()?;
        let subjects = &self.inner.config.subjects;
        let infos: Vec<_> = self
            .inner
            .stream
            .consumers()
            .try_collect()
            .await
            .map_err(|e| unavailable("listing the action queues", e))?;
        Ok(infos
            .into_iter()
            .filter(|info| info.num_pending > 0 || info.num_ack_pending > 0)
            .filter_map(|info| {
                let key = subjects.parse(&info.config.filter_subject).ok()?;
                Some((key, stats_of(&info)))
            })
            .collect())
    }

    /// Deliveries this process holds.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.in_flight).len()
    }

    /// Messages on activation subjects that were not activation messages
    /// (logged, counted, terminated, skipped).
    pub fn malformed(&self) -> MalformedCount {
        self.inner.malformed.clone()
    }

    /// The loop that keeps this process's deliveries owned; spawn its
    /// [`run`](ProgressKeeper::run) once per queue in every process that
    /// pulls. Without it, an activation held longer than `ack_wait` is
    /// redelivered to another sandbox while it still runs, and an ack that
    /// failed is not retried.
    pub fn keeper(&self) -> ProgressKeeper {
        ProgressKeeper::new(self.clone())
    }

    /// What the keeper must send now (see [`InFlight::chores`]).
    pub(super) fn due_chores(&self) -> (Vec<Chore>, Vec<DeliveryId>) {
        let config = &self.inner.config;
        lock(&self.inner.in_flight).chores(Instant::now(), self.ack_wait() / 2, config.max_hold)
    }

    /// The shortest `ack_wait` among this process's configuration and the
    /// consumers it pulled from.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.inner.ack_wait_ms.load(Ordering::Relaxed))
    }

    /// Tells the server a held delivery is still being worked on.
    pub(super) async fn progress(&self, reply: Subject) {
        let progress = Bytes::from(AckKind::Progress);
        if let Err(e) = self.inner.client.publish(reply, progress).await {
            tracing::debug!(error = %e, "an in-progress ack failed");
        }
    }

    /// `action`'s consumer, made if missing.
    async fn lane(&self, action: &WarmKey) -> Result<Arc<Lane>, QueueError> {
        if let Some(lane) = lock(&self.inner.lanes).get(action) {
            return Ok(lane.clone());
        }
        self.connected()?;
        let config = &self.inner.config;
        let consumer = config.subjects.consumer_name(action);
        let subject = config.subjects.activation(action);
        let consumer_config = pull::Config {
            durable_name: Some(consumer.clone()),
            description: Some(ActivationSubjects::consumer_description(action)),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            filter_subject: subject.clone(),
            max_waiting: config.max_waiting,
            max_ack_pending: config.max_ack_pending,
            ..Default::default()
        };
        let made: jetstream::consumer::PullConsumer = self
            .inner
            .stream
            .get_or_create_consumer(&consumer, consumer_config)
            .await
            .map_err(|e| unavailable("opening the action's consumer", e))?;
        // The consumer keeps the `ack_wait` of the process that made it,
        // which may be shorter than ours: deliveries are kept alive in time
        // for the shortest seen.
        let ack_wait = made.cached_info().config.ack_wait;
        if !ack_wait.is_zero() {
            let ms = u64::try_from(ack_wait.as_millis()).unwrap_or(u64::MAX);
            self.inner.ack_wait_ms.fetch_min(ms, Ordering::Relaxed);
        }
        let lane = Arc::new(Lane {
            next: Subject::from(format!(
                "{API}.CONSUMER.MSG.NEXT.{}.{consumer}",
                self.inner.stream.cached_info().config.name
            )),
            consumer,
            subject,
        });
        lock(&self.inner.lanes).insert(action.clone(), lane.clone());
        Ok(lane)
    }

    /// An error that may mean the consumer is gone: it is looked up again
    /// (and made again) next time.
    fn lost(&self, action: &WarmKey, what: &str, e: impl std::fmt::Display) -> QueueError {
        lock(&self.inner.lanes).remove(action);
        unavailable(what, e)
    }

    pub(super) fn connected(&self) -> Result<(), QueueError> {
        if self.inner.client.connection_state() == async_nats::connection::State::Connected {
            Ok(())
        } else {
            Err(QueueError::Unavailable("not connected to NATS".to_owned()))
        }
    }

    /// Sends the ack of `delivery` and waits for the server to confirm it.
    pub(super) async fn confirm_ack(
        &self,
        delivery: DeliveryId,
        reply: Subject,
    ) -> Result<(), QueueError> {
        self.connected()?;
        let request = Request::new()
            .payload(Bytes::from(AckKind::Ack))
            .timeout(Some(self.inner.config.request_timeout));
        self.inner
            .client
            .send_request(reply, request)
            .await
            .map_err(|e| unavailable("the ack was not confirmed (retried in the background)", e))?;
        lock(&self.inner.in_flight).acked(delivery);
        Ok(())
    }

    /// Takes a pulled message: an activation now held, or a malformed one,
    /// terminated so that no one pulls it again.
    async fn take(&self, payload: &[u8], reply: Subject) -> Option<Pulled<ActivationMessage>> {
        match serde_json::from_slice::<ActivationMessage>(payload) {
            Ok(message) => {
                let delivery = self.inner.next_delivery.fetch_add(1, Ordering::Relaxed);
                lock(&self.inner.in_flight).insert(delivery, reply, Instant::now());
                Some(Pulled { message, delivery })
            }
            Err(e) => {
                self.inner.malformed.add();
                tracing::warn!(
                    subject = %reply,
                    bytes = payload.len(),
                    error = %e,
                    "dropping a queued message that is not an activation"
                );
                if let Err(e) = self
                    .inner
                    .client
                    .publish(reply, Bytes::from(AckKind::Term))
                    .await
                {
                    tracing::debug!(error = %e, "terminating the malformed message failed");
                }
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl ActivationQueue<ActivationMessage> for JetStreamQueue {
    async fn pull(
        &self,
        action: &WarmKey,
        wait: Duration,
    ) -> Result<Option<Pulled<ActivationMessage>>, QueueError> {
        let lane = self.lane(action).await?;
        let deadline = Instant::now() + wait;
        loop {
            self.connected()?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let expires = remaining.min(self.inner.config.max_pull_wait);
            let last = expires < MIN_EXPIRES;
            let body = if last {
                serde_json::json!({"batch": 1, "no_wait": true})
            } else {
                let nanos = u64::try_from(expires.as_nanos()).unwrap_or(u64::MAX);
                serde_json::json!({"batch": 1, "expires": nanos})
            };
            // A fresh inbox per request: when a pull is dropped half-way its
            // subscription goes, and the server gives the message it would
            // have sent there to the next puller instead.
            let request = Request::new()
                .payload(Bytes::from(body.to_string()))
                .inbox(self.inner.client.new_inbox())
                .timeout(Some(expires + REPLY_MARGIN));
            match self
                .inner
                .client
                .send_request(lane.next.clone(), request)
                .await
            {
                Ok(message) => match message.status {
                    None | Some(StatusCode::OK) => {
                        if let Some(reply) = message.reply {
                            if let Some(pulled) = self.take(&message.payload, reply).await {
                                return Ok(Some(pulled));
                            }
                        } else {
                            self.inner.malformed.add();
                            tracing::warn!("a pulled message without a reply subject; skipped");
                        }
                    }
                    // Nothing came during this request.
                    Some(StatusCode::TIMEOUT | StatusCode::NOT_FOUND) => {}
                    Some(status) => {
                        let why = message.description.unwrap_or_default();
                        return Err(self.lost(action, "pulling", format!("{status} {why}")));
                    }
                },
                // The server said nothing (it may be restarting).
                Err(e) if e.kind() == async_nats::RequestErrorKind::TimedOut => {}
                Err(e) => return Err(self.lost(action, "pulling", e)),
            }
            if last || Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    async fn done(&self, _action: &WarmKey, delivery: DeliveryId) -> Result<(), QueueError> {
        let reply = lock(&self.inner.in_flight)
            .start_ack(delivery)
            .ok_or(QueueError::UnknownDelivery(delivery))?;
        self.confirm_ack(delivery, reply).await
    }

    async fn redeliver(&self, _action: &WarmKey, delivery: DeliveryId) -> Result<(), QueueError> {
        let reply = lock(&self.inner.in_flight)
            .take(delivery)
            .ok_or(QueueError::UnknownDelivery(delivery))?;
        // If the -NAK is lost, `ack_wait` redelivers it all the same.
        self.inner
            .client
            .publish(reply, Bytes::from(AckKind::Nak(None)))
            .await
            .map_err(|e| unavailable("handing the activation back", e))
    }
}
