//! The consumers of OpenWhisk's topics: a subscription that yields each
//! message parsed, and skips — logs and counts — anything that does not parse.
//!
//! A malformed message (not JSON, or JSON that is not the expected message)
//! and an unknown one (a shape none of the expected messages has) are the
//! same to a reader: it cannot act on them. Neither stops the consumer; the
//! next good message is returned as if they had not been sent.

use std::marker::PhantomData;

use async_nats::Subscriber;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use serde::de::DeserializeOwned;

use super::NatsBus;
use super::NatsError;
use wasmwhisk_protocol::{
    AcknowledgementMessage, ContainerCreationAckMessage, ContainerMessage, ControllerInstanceId,
    SchedulerInstanceId,
};

/// How many messages a consumer skipped: a cheap handle to read for metrics.
/// It is a Prometheus counter, so one registered in
/// [`Metrics`](wasmwhisk_core::metrics::Metrics) can be handed to a consumer
/// ([`Incoming::counting_into`]) and `/metrics` shows it.
#[derive(Clone, Debug, Default)]
pub struct MalformedCount(Counter);

impl MalformedCount {
    /// Counts into `counter`.
    pub fn new(counter: Counter) -> Self {
        MalformedCount(counter)
    }

    /// Messages skipped so far.
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    pub(super) fn add(&self) {
        self.0.inc();
    }
}

/// The messages of one subject, parsed as `T`.
#[derive(Debug)]
pub struct Incoming<T> {
    subject: String,
    subscriber: Subscriber,
    malformed: MalformedCount,
    _message: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Incoming<T> {
    async fn subscribe(bus: &NatsBus, subject: String) -> Result<Incoming<T>, NatsError> {
        let subscriber =
            bus.client()
                .subscribe(subject.clone())
                .await
                .map_err(|e| NatsError::Subscribe {
                    subject: subject.clone(),
                    reason: e.to_string(),
                })?;
        // Once the server has seen the subscription, whatever is published
        // from now on reaches it. If the connection is down, the
        // subscription is made when it is back.
        if bus.is_connected()
            && let Err(e) = bus.flush().await
        {
            tracing::debug!(subject = %subject, error = %e, "the subscription is not confirmed");
        }
        Ok(Incoming {
            subject,
            subscriber,
            malformed: MalformedCount::default(),
            _message: PhantomData,
        })
    }

    /// The next message that parses; `None` once the connection is closed
    /// for good. Malformed messages are logged, counted and skipped.
    pub async fn next(&mut self) -> Option<T> {
        loop {
            let message = self.subscriber.next().await?;
            match serde_json::from_slice::<T>(&message.payload) {
                Ok(parsed) => return Some(parsed),
                Err(e) => {
                    self.malformed.add();
                    tracing::warn!(
                        subject = %self.subject,
                        bytes = message.payload.len(),
                        error = %e,
                        "skipping a message that does not parse"
                    );
                }
            }
        }
    }

    /// The subject listened to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Counts the skipped messages into `count` from now on (e.g. one
    /// registered in the process's metrics).
    pub fn counting_into(mut self, count: MalformedCount) -> Self {
        self.malformed = count;
        self
    }

    /// The count of skipped messages (shared: read it from anywhere).
    pub fn malformed(&self) -> MalformedCount {
        self.malformed.clone()
    }
}

impl NatsBus {
    /// The invoker's side of `whisk.invoker{N}`: container creation and
    /// deletion messages (a creation if it has a `creationId`).
    pub async fn container_messages(
        &self,
        invoker: u32,
    ) -> Result<Incoming<ContainerMessage>, NatsError> {
        Incoming::subscribe(self, self.subjects().invoker(invoker)).await
    }

    /// The scheduler's side of `whisk.creationAck{sid}`.
    pub async fn creation_acks(
        &self,
        scheduler: &SchedulerInstanceId,
    ) -> Result<Incoming<ContainerCreationAckMessage>, NatsError> {
        Incoming::subscribe(self, self.subjects().creation_ack(scheduler)).await
    }

    /// The controller's side of `whisk.completed{ctrl}`: combined,
    /// completion and result messages.
    pub async fn completions(
        &self,
        controller: &ControllerInstanceId,
    ) -> Result<Incoming<AcknowledgementMessage>, NatsError> {
        Incoming::subscribe(self, self.subjects().completed(controller)).await
    }
}
