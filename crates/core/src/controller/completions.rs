//! Where the controller learns that activations completed: a decorator of
//! the activation store.
//!
//! In a cluster the controller hears of a completion from the invoker's
//! completion ack. In one process there is a shorter way that carries more:
//! the pool stores every record (before it sends any ack) through the
//! [`ActivationStore`] port, so wrapping that port hands the controller the
//! whole record — logs included — the moment it is durable. A blocking
//! invoke waits on it; the metrics count it; the scheduler learns the
//! action's recent durations from it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::pool::ports::{ActivationStore, StoreError};
use crate::sync::lock;
use wasmwhisk_protocol::{ActivationId, WhiskActivation};

/// Durations kept per action (OpenWhisk's `duration-buffer-size`).
const DURATION_BUFFER: usize = 10;

/// Waiters of blocking invokes and the recent durations of each action.
#[derive(Debug)]
pub struct Completions {
    /// Invariant: an entry exists from just before the activation is queued
    /// until its record is stored or its invoke stops waiting.
    waiters: Mutex<HashMap<ActivationId, oneshot::Sender<WhiskActivation>>>,
    /// By invocation namespace, then action path: the last durations, ms.
    /// Nested so that the per-activation update and the per-tick read look
    /// up by `&str`, without building a key.
    durations: Mutex<HashMap<String, HashMap<String, VecDeque<u64>>>>,
    metrics: Arc<Metrics>,
}

impl Completions {
    /// Nothing waiting yet.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Completions> {
        Arc::new(Completions {
            waiters: Mutex::new(HashMap::new()),
            durations: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Registers a waiter for `id`'s record.
    pub fn wait_for(&self, id: ActivationId) -> oneshot::Receiver<WhiskActivation> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(id, tx);
        rx
    }

    /// Stops waiting for `id`.
    pub fn forget(&self, id: &ActivationId) {
        lock(&self.waiters).remove(id);
    }

    /// Stops every wait: each waiting invoke answers with its activation
    /// id (the controller is stopping).
    pub fn forget_all(&self) {
        lock(&self.waiters).clear();
    }

    /// How many invokes wait.
    pub fn waiting(&self) -> usize {
        lock(&self.waiters).len()
    }

    /// The average recent duration of an action, ms.
    pub fn average_duration(&self, namespace: &str, path: &str) -> Option<f64> {
        let durations = lock(&self.durations);
        let recent = durations.get(namespace)?.get(path)?;
        if recent.is_empty() {
            return None;
        }
        Some(recent.iter().sum::<u64>() as f64 / recent.len() as f64)
    }

    /// Forgets the durations of an action no longer queued.
    pub fn forget_durations(&self, namespace: &str, path: &str) {
        let mut durations = lock(&self.durations);
        if let Some(actions) = durations.get_mut(namespace) {
            actions.remove(path);
            if actions.is_empty() {
                durations.remove(namespace);
            }
        }
    }

    /// An activation completed with this record (stored, or carried by a
    /// completion message): counts it, learns its duration, and hands it to
    /// its waiting invoke.
    pub fn completed(&self, activation: &WhiskActivation) {
        self.metrics.activation_completed(activation);
        if let (Some(duration), Some(path)) = (
            activation.duration,
            activation
                .annotation("path")
                .and_then(serde_json::Value::as_str),
        ) && activation.response.is_success()
        {
            self.record_duration(activation.namespace.root().as_str(), path, duration);
        }
        let waiter = lock(&self.waiters).remove(&activation.activation_id);
        if let Some(waiter) = waiter {
            // The invoke may have stopped waiting just now: nothing to do.
            let _ = waiter.send(activation.clone());
        }
    }

    /// Keeps `duration` among the last ones of the action; allocates keys
    /// only for an action's first.
    fn record_duration(&self, namespace: &str, path: &str, duration: u64) {
        let mut durations = lock(&self.durations);
        let actions = match durations.get_mut(namespace) {
            Some(actions) => actions,
            None => durations.entry(namespace.to_string()).or_default(),
        };
        let recent = match actions.get_mut(path) {
            Some(recent) => recent,
            None => actions
                .entry(path.to_string())
                .or_insert_with(|| VecDeque::with_capacity(DURATION_BUFFER)),
        };
        if recent.len() == DURATION_BUFFER {
            recent.pop_front();
        }
        recent.push_back(duration);
    }
}

/// The activation store the pool is given: stores, then tells
/// [`Completions`].
pub struct RecordingStore {
    inner: Arc<dyn ActivationStore>,
    completions: Arc<Completions>,
}

impl RecordingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ActivationStore>, completions: Arc<Completions>) -> RecordingStore {
        RecordingStore { inner, completions }
    }
}

#[async_trait::async_trait]
impl ActivationStore for RecordingStore {
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        self.inner.store(activation).await?;
        self.completions.completed(activation);
        Ok(())
    }

    async fn get(&self, id: &ActivationId) -> Result<Option<WhiskActivation>, StoreError> {
        self.inner.get(id).await
    }

    async fn get_in(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<WhiskActivation>, StoreError> {
        self.inner.get_in(namespace, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::local::LocalActivationStore;
    use wasmwhisk_protocol::{
        ActivationResponse, EntityName, EntityPath, Parameter, Parameters, SemVer,
    };

    fn record(id: &ActivationId, duration: u64) -> WhiskActivation {
        WhiskActivation {
            namespace: EntityPath::namespace(EntityName::new("guest").expect("name")),
            name: EntityName::new("hello").expect("name"),
            subject: "guest".into(),
            activation_id: id.clone(),
            start: 1,
            end: 1 + duration,
            cause: None,
            response: ActivationResponse::success(None),
            logs: vec!["a log line".into()],
            version: SemVer::default(),
            publish: false,
            annotations: Parameters(vec![Parameter::new("path", "guest/hello")]),
            duration: Some(duration),
        }
    }

    #[tokio::test]
    async fn a_stored_record_reaches_its_waiter_with_its_logs() {
        let completions = Completions::new(Arc::new(Metrics::new()));
        let store = RecordingStore::new(Arc::new(LocalActivationStore::new()), completions.clone());
        let id = ActivationId::generate();
        let waiter = completions.wait_for(id.clone());
        store.store(&record(&id, 4)).await.expect("store");
        let got = waiter.await.expect("completed");
        assert_eq!(got.logs, vec!["a log line".to_string()]);
        assert_eq!(completions.waiting(), 0);
        assert_eq!(
            completions.average_duration("guest", "guest/hello"),
            Some(4.0)
        );
        assert!(store.get(&id).await.expect("get").is_some());
    }

    #[tokio::test]
    async fn durations_keep_the_last_ten() {
        let completions = Completions::new(Arc::new(Metrics::new()));
        let store = RecordingStore::new(Arc::new(LocalActivationStore::new()), completions.clone());
        for d in 0..20 {
            store
                .store(&record(&ActivationId::generate(), d))
                .await
                .expect("store");
        }
        // 10..=19.
        assert_eq!(
            completions.average_duration("guest", "guest/hello"),
            Some(14.5)
        );
        assert!(
            completions
                .metrics
                .render()
                .contains("wasmwhisk_activations_total{status=\"success\"} 20")
        );
    }
}
