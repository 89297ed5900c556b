//! The controller's ports in a cluster: JetStream work queues as its
//! [`Queues`], and invokers reached over NATS as its [`Dispatch`].
//!
//! # Queues
//! An invoke is accepted once JetStream stored the activation
//! ([`JetStreamQueue::enqueue`]). The decisions read the action's durable
//! consumer: `pending` is what waits, `ack_pending` what runs (or what a
//! dead invoker held until `ack_wait` gives it to another), and the age of
//! the oldest pending activation tells whether the waiting ones are stale.
//! JetStream gives one age, not one per message, so when the oldest waited
//! past the stale threshold every waiting activation counts as stale — the
//! decisions then ask for `ceil(pending / maxConcurrent)` sandboxes minus
//! those coming, which is what OpenWhisk asks for once its queue has been
//! stale for one tick. Expired activations (older than
//! `queue-max-retention`) are pulled out by the controller itself, failed
//! with OpenWhisk's message, and acked only once that record is stored.
//!
//! # Dispatch
//! Each creation goes to an invoker chosen by [`Chooser`] from the invokers'
//! etcd reports (warm first, then the action's home invoker and the coprime
//! step walk), over `whisk.invoker{N}`. A refusal is retried elsewhere
//! (the controller keeps the list of invokers that refused). Deletions go to
//! every invoker holding a sandbox of the old revision (etcd keys), or to
//! every known invoker when none is visible.
//!
//! # Several controllers
//! Every controller accepts invokes for every action (the queue is shared),
//! but one controller decides for each action queue: the live controller
//! (by its etcd lease key `{cluster}/instance/controller{K}/lease`) with the
//! highest rendezvous hash of the queue. When a controller dies its queues
//! move to the others as soon as its lease expires; a controller that did
//! not accept the activations of a queue it now leads finds the queue by
//! listing the stream's consumers ([`adopt_orphans`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::choose::{ChoiceRequest, Chooser};
use crate::etcd::ClusterMirror;
use crate::nats::{JetStreamQueue, NatsMessenger};
use wasmwhisk_core::controller::ports::QueueKey;
use wasmwhisk_core::controller::{Controller, Dispatch, NotSent, QueueStats, Queues, Taken};
use wasmwhisk_core::pool::ports::{ActionStore, ExecutableAction};
use wasmwhisk_core::pool::queue::{ActivationQueue, DeliveryId, QueueError};
use wasmwhisk_core::sync::lock;
use wasmwhisk_protocol::{
    ActivationMessage, ContainerCreationError, ContainerCreationMessage, ContainerDeletionMessage,
    ContainerKeyKind, ContainerMessage, CreationId, DocRevision, EtcdKeys,
};

/// Most expired activations taken out of one queue per decision round.
const EXPIRE_BATCH: usize = 256;

/// How often activations held by dead sandboxes are pulled to check their
/// age.
const ORPHAN_CHECK: Duration = Duration::from_secs(1);

/// How long the controller's own pull for an expired activation waits.
const EXPIRE_PULL: Duration = Duration::from_millis(50);

/// The JetStream queues as the controller's [`Queues`].
#[derive(Debug)]
pub struct ClusterQueues {
    queue: JetStreamQueue,
    /// Waiting activations per queue, as of the last decision round (the
    /// 429 limit needs no request per invoke).
    waiting: Mutex<HashMap<QueueKey, usize>>,
    /// When each queue was last looked at, and the age of its oldest
    /// waiting activation then.
    oldest: Mutex<HashMap<QueueKey, (Instant, Duration)>>,
    /// When each queue's activations held by dead sandboxes were last
    /// pulled to check their age.
    orphans_checked: Mutex<HashMap<QueueKey, Instant>>,
}

impl ClusterQueues {
    /// Over `queue`.
    pub fn new(queue: JetStreamQueue) -> Self {
        ClusterQueues {
            queue,
            waiting: Mutex::new(HashMap::new()),
            oldest: Mutex::new(HashMap::new()),
            orphans_checked: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a second has passed since `key`'s orphans were last checked
    /// (and if so, the check is due now).
    fn orphan_check_due(&self, key: &QueueKey) -> bool {
        let mut checked = lock(&self.orphans_checked);
        match checked.get(key) {
            Some(at) if at.elapsed() < ORPHAN_CHECK => false,
            _ => {
                checked.insert(key.clone(), Instant::now());
                true
            }
        }
    }
}

#[async_trait::async_trait]
impl Queues for ClusterQueues {
    async fn push(
        &self,
        key: &QueueKey,
        msg: ActivationMessage,
        _charge: usize,
    ) -> Result<(), QueueError> {
        self.queue.enqueue(key, &msg).await
    }

    fn waiting(&self, key: &QueueKey) -> usize {
        lock(&self.waiting).get(key).copied().unwrap_or(0)
    }

    async fn stats(&self, key: &QueueKey, stale_after: Duration) -> Result<QueueStats, QueueError> {
        let (stats, oldest) = self.queue.stats_and_oldest(key).await?;
        let available = usize::try_from(stats.pending).unwrap_or(usize::MAX);
        let stale = match oldest {
            Some(age) if age > stale_after => available,
            _ => 0,
        };
        lock(&self.waiting).insert(key.clone(), available);
        let seen = oldest.map(|age| (Instant::now(), age));
        match seen {
            Some(seen) => lock(&self.oldest).insert(key.clone(), seen),
            None => lock(&self.oldest).remove(key),
        };
        Ok(QueueStats {
            available,
            in_flight: usize::try_from(stats.ack_pending).unwrap_or(usize::MAX),
            stale,
        })
    }

    async fn take_waiting(
        &self,
        key: &QueueKey,
        older_than: Option<Duration>,
        orphans: bool,
    ) -> Result<Vec<Taken>, QueueError> {
        if let Some(limit) = older_than {
            // From the last look at the queue (every decision round):
            // nothing to do, without a request, until the oldest could be
            // that old — or, for activations a dead sandbox held (their age
            // is unknown until pulled), once a second.
            let oldest = lock(&self.oldest).get(key).copied();
            let old_enough = oldest.is_some_and(|(seen, age)| age + seen.elapsed() > limit);
            let orphan_check = orphans && self.orphan_check_due(key);
            if !(old_enough || orphan_check) {
                return Ok(Vec::new());
            }
        }
        let limit_ms = older_than.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut taken = Vec::new();
        while taken.len() < EXPIRE_BATCH {
            let Some(pulled) = self.queue.pull(key, EXPIRE_PULL).await? else {
                break;
            };
            let age = wasmwhisk_protocol::ids::now_epoch_ms()
                .saturating_sub(pulled.message.transid.start_ms);
            if limit_ms.is_some_and(|limit| age <= limit) {
                // Younger than the retention: back to the queue, and the
                // rest is younger still.
                if let Err(e) = self.queue.redeliver(key, pulled.delivery).await {
                    tracing::debug!(error = %e, "handing back a young activation failed");
                }
                break;
            }
            taken.push(Taken {
                message: pulled.message,
                delivery: pulled.delivery,
            });
        }
        Ok(taken)
    }

    async fn settle(&self, key: &QueueKey, taken: &[DeliveryId]) {
        for delivery in taken {
            if let Err(e) = self.queue.done(key, *delivery).await {
                tracing::warn!(error = %e, "acking a failed activation failed (the keeper retries)");
            }
        }
    }

    async fn give_back(&self, key: &QueueKey, taken: Vec<Taken>) {
        for t in taken {
            if let Err(e) = self.queue.redeliver(key, t.delivery).await {
                tracing::warn!(error = %e, "handing back an activation failed (it is redelivered after ack-wait)");
            }
        }
    }

    async fn forget(&self, key: &QueueKey) {
        // The durable consumer stays: warm sandboxes may still pull from it.
        lock(&self.waiting).remove(key);
        lock(&self.oldest).remove(key);
        lock(&self.orphans_checked).remove(key);
    }

    fn durable(&self) -> bool {
        true
    }
}

/// Creations and deletions to invokers over NATS, chosen from etcd.
pub struct NatsDispatch {
    messenger: NatsMessenger,
    mirror: ClusterMirror,
    chooser: Chooser,
    keys: EtcdKeys,
    /// `controller{K}`: this controller's instance name.
    me: String,
    /// Warmed sandboxes promised to creations not answered yet, by the
    /// action revision's warmed-key prefix and invoker: each warmed sandbox
    /// serves one creation (OpenWhisk claims its key), so a burst does not
    /// send every creation to the one invoker holding one.
    claims: Mutex<HashMap<(String, u32), Vec<Claim>>>,
}

/// A warmed sandbox promised to a creation, since when.
type Claim = (CreationId, Instant);

/// How long a claim on a warmed sandbox holds when its creation is not
/// answered (the chooser's reservation time).
const CLAIM_TTL: Duration = crate::choose::DEFAULT_RESERVATION_TTL;

impl std::fmt::Debug for NatsDispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsDispatch")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl NatsDispatch {
    /// Sends through `messenger`, chooses from `mirror`; `me` is this
    /// controller's instance name (`controller0`).
    pub fn new(
        messenger: NatsMessenger,
        mirror: ClusterMirror,
        keys: EtcdKeys,
        me: String,
    ) -> Self {
        NatsDispatch {
            messenger,
            mirror,
            chooser: Chooser::default(),
            keys,
            me,
            claims: Mutex::new(HashMap::new()),
        }
    }

    /// The warmed-key prefix of `msg`'s action revision.
    fn warmed_prefix(&self, msg: &ContainerCreationMessage) -> Option<String> {
        self.keys
            .containers_prefix(
                ContainerKeyKind::Warmed,
                &msg.invocation_namespace,
                &msg.action,
                Some(&msg.revision),
            )
            .ok()
    }

    /// The invokers holding a warmed sandbox under `prefix` that no
    /// unanswered creation has claimed, by number.
    fn unclaimed_warm(&self, prefix: &str) -> Vec<u32> {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for key in self.mirror.state().keys_with_prefix(prefix) {
            if let Ok(n) = self.keys.parse_container_key(&key).map(|k| k.invoker) {
                *counts.entry(n).or_default() += 1;
            }
        }
        let mut claims = lock(&self.claims);
        claims.retain(|_, held| {
            held.retain(|(_, t)| t.elapsed() < CLAIM_TTL);
            !held.is_empty()
        });
        let mut free: Vec<u32> = counts
            .into_iter()
            .filter(|(n, count)| {
                let claimed = claims.get(&(prefix.to_string(), *n)).map_or(0, Vec::len);
                *count > claimed
            })
            .map(|(n, _)| n)
            .collect();
        free.sort_unstable();
        free
    }

    /// The invokers holding a sandbox (live or warmed) of `msg`'s action
    /// revision.
    fn holders(&self, msg: &ContainerDeletionMessage) -> Vec<u32> {
        let mut holders = Vec::new();
        for kind in [ContainerKeyKind::Existing, ContainerKeyKind::Warmed] {
            let Ok(prefix) = self.keys.containers_prefix(
                kind,
                &msg.invocation_namespace,
                &msg.action,
                Some(&msg.revision),
            ) else {
                continue;
            };
            for key in self.mirror.state().keys_with_prefix(&prefix) {
                if let Ok(n) = self.keys.parse_container_key(&key).map(|k| k.invoker)
                    && !holders.contains(&n)
                {
                    holders.push(n);
                }
            }
        }
        holders
    }
}

/// The rendezvous weight of an action's queue at `controller`.
fn weight(invocation_namespace: &str, action: &str, controller: &str) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for part in [invocation_namespace, action, controller] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    *hasher.finalize().as_bytes()
}

/// Which of the live `controllers` (instance names, `controller{K}`)
/// decides for the queues of `action` (`ns[/pkg]/name`, every revision)
/// invoked in `invocation_namespace`: the highest rendezvous weight.
pub fn queue_leader<'a>(
    invocation_namespace: &str,
    action: &str,
    controllers: &'a [String],
) -> Option<&'a String> {
    controllers
        .iter()
        .max_by_key(|c| weight(invocation_namespace, action, c))
}

/// [`queue_leader`] of a queue.
fn leader<'a>(queue: &QueueKey, controllers: &'a [String]) -> Option<&'a String> {
    queue_leader(&queue.invocation_namespace, &queue.action, controllers)
}

#[async_trait::async_trait]
impl Dispatch for NatsDispatch {
    async fn create(
        &self,
        msg: ContainerCreationMessage,
        action: &ExecutableAction,
        avoid: &[u32],
    ) -> Result<(), NotSent> {
        let fqn = msg.action.as_string_without_version();
        let warm_prefix = self.warmed_prefix(&msg);
        let request = ChoiceRequest {
            invocation_namespace: msg.invocation_namespace.clone(),
            fqn: fqn.clone(),
            memory_mb: action.meta.limits.memory,
            required_tags: required_tags(action),
            warmed: warm_prefix
                .as_deref()
                .map(|p| self.unclaimed_warm(p))
                .unwrap_or_default(),
            avoid: avoid.to_vec(),
        };
        let invokers = self.mirror.invokers();
        let invoker = self
            .chooser
            .choose(&invokers, &request)
            .map_err(|error| NotSent {
                error,
                reason: format!(
                    "no invoker can take {fqn} ({} MB): {} invokers known, none up with the memory{}",
                    action.meta.limits.memory,
                    invokers.len(),
                    if request.required_tags.is_empty() {
                        String::new()
                    } else {
                        format!(" and the tags {:?}", request.required_tags)
                    }
                ),
            })?;
        let memory = action.meta.limits.memory;
        if let Some(prefix) = &warm_prefix
            && request.warmed.contains(&invoker)
        {
            lock(&self.claims)
                .entry((prefix.clone(), invoker))
                .or_default()
                .push((msg.creation_id.clone(), Instant::now()));
        }
        self.messenger
            .send_container_message(invoker, &ContainerMessage::Creation(Box::new(msg)))
            .await
            .map_err(|e| {
                self.chooser.release(invoker, memory);
                NotSent {
                    error: ContainerCreationError::TimeoutError,
                    reason: e.to_string(),
                }
            })
    }

    fn answered(&self, msg: &ContainerCreationMessage, invoker: u32) {
        self.chooser
            .release(invoker, msg.whisk_action_meta_data.limits.memory);
        if let Some(prefix) = self.warmed_prefix(msg) {
            let mut claims = lock(&self.claims);
            let key = (prefix, invoker);
            if let Some(held) = claims.get_mut(&key) {
                // Only the creation that claimed a warmed sandbox gives it up.
                held.retain(|(id, _)| *id != msg.creation_id);
                if held.is_empty() {
                    claims.remove(&key);
                }
            }
        }
    }

    async fn delete(&self, msg: ContainerDeletionMessage) {
        let mut targets = self.holders(&msg);
        if targets.is_empty() {
            targets = self.mirror.invokers().iter().map(|i| i.instance).collect();
        }
        let message = ContainerMessage::Deletion(Box::new(msg));
        for invoker in targets {
            if let Err(e) = self
                .messenger
                .send_container_message(invoker, &message)
                .await
            {
                tracing::warn!(invoker, error = %e, "sending a deletion failed");
            }
        }
    }

    fn leads(&self, key: &QueueKey) -> bool {
        let controllers = self.mirror.live_instances("controller");
        // Until etcd shows this controller (or any), it decides for itself.
        if !controllers.contains(&self.me) {
            return true;
        }
        leader(key, &controllers).is_none_or(|l| *l == self.me)
    }

    async fn shutdown(&self, _grace: Duration) {}
}

/// The action's `invoker-resources` annotation (tags an invoker must have).
fn required_tags(action: &ExecutableAction) -> Vec<String> {
    action
        .meta
        .annotations
        .get("invoker-resources")
        .and_then(|v| v.as_array())
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Finds action queues with activations and no controller deciding for
/// them (their controller died, or accepted them while this one leads
/// them), and hands those this controller leads to `controller`. Run every
/// second or so.
pub async fn adopt_orphans(
    controller: &Controller,
    queue: &JetStreamQueue,
    dispatch: &NatsDispatch,
    actions: &dyn ActionStore,
) {
    let busy = match queue.busy_queues().await {
        Ok(busy) => busy,
        Err(e) => {
            tracing::debug!(error = %e, "listing the action queues failed");
            return;
        }
    };
    for (key, stats) in busy {
        if controller.knows(&key) || !dispatch.leads(&key) {
            continue;
        }
        let Ok(fqn) = wasmwhisk_protocol::FullyQualifiedEntityName::parse(&key.action) else {
            tracing::warn!(action = %key.action, "a queue of an action with an invalid name");
            continue;
        };
        match actions.get(&fqn, &DocRevision::new(&key.revision)).await {
            Ok(action) => {
                tracing::info!(action = %key.action, pending = stats.pending, "taking over an action queue");
                controller.adopt(key, action);
            }
            Err(e) => {
                tracing::debug!(action = %key.action, error = %e, "a queue's action cannot be loaded")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(action: &str) -> QueueKey {
        QueueKey {
            invocation_namespace: "guest".into(),
            action: format!("guest/{action}"),
            revision: "1-abc".into(),
        }
    }

    #[test]
    fn container_keys_name_their_invoker() {
        let keys = EtcdKeys::default();
        let invoker = |key: &str| keys.parse_container_key(key).ok().map(|k| k.invoker);
        assert_eq!(
            invoker("whisk/namespace/guest/guest/a/1-x/invoker3/container/abc"),
            Some(3)
        );
        assert_eq!(
            invoker("whisk/warmed/guest/guest/a/1-x/invoker/12/container/abc"),
            Some(12)
        );
        assert_eq!(invoker("whisk/invokers/0"), None);
        assert_eq!(invoker("container/x"), None);
    }

    #[test]
    fn every_queue_has_one_leader_and_they_spread() {
        let controllers: Vec<String> = (0..3).map(|i| format!("controller{i}")).collect();
        let mut led = HashMap::new();
        for i in 0..300 {
            let k = key(&format!("a{i}"));
            let l = leader(&k, &controllers).expect("a leader");
            // The same answer every time, whatever the list's order.
            let mut reversed = controllers.clone();
            reversed.reverse();
            assert_eq!(Some(l), leader(&k, &reversed));
            *led.entry(l.clone()).or_insert(0) += 1;
        }
        assert_eq!(led.len(), 3);
        assert!(led.values().all(|n| *n > 50), "{led:?}");
        assert_eq!(leader(&key("a"), &[]), None);
    }

    #[test]
    fn a_dead_controllers_queues_move_and_the_others_stay() {
        let all: Vec<String> = (0..3).map(|i| format!("controller{i}")).collect();
        let without_1: Vec<String> = vec![all[0].clone(), all[2].clone()];
        for i in 0..100 {
            let k = key(&format!("a{i}"));
            let before = leader(&k, &all).expect("a leader");
            let after = leader(&k, &without_1).expect("a leader");
            if before != "controller1" {
                assert_eq!(before, after);
            }
        }
    }
}
