//! The senders of OpenWhisk's topics: the invoker's [`Messenger`] (creation
//! acks, completions) and the scheduler's container messages.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::NatsBus;
use wasmwhisk_core::pool::ports::{Messenger, SendError};
use wasmwhisk_protocol::{
    AcknowledgementMessage, ContainerCreationAckMessage, ContainerMessage, ControllerInstanceId,
    SchedulerInstanceId,
};

/// How long a publish may wait for room in the client's buffer (it fills
/// only while the server is away) before it is an error.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends OpenWhisk's messages as core NATS messages (see the module doc of
/// [`super`] for why not JetStream).
#[derive(Clone, Debug)]
pub struct NatsMessenger {
    bus: NatsBus,
}

impl NatsMessenger {
    /// A messenger on `bus`.
    pub fn new(bus: NatsBus) -> Self {
        NatsMessenger { bus }
    }

    /// The scheduler's side of `whisk.invoker{N}`: asks invoker `invoker` to
    /// create or delete containers.
    pub async fn send_container_message(
        &self,
        invoker: u32,
        message: &ContainerMessage,
    ) -> Result<(), SendError> {
        let what = match message {
            ContainerMessage::Creation(_) => "a container creation message",
            ContainerMessage::Deletion(_) => "a container deletion message",
        };
        let payload = json(what, message)?;
        self.publish(what, self.bus.subjects().invoker(invoker), payload)
            .await
    }

    async fn publish(
        &self,
        what: &'static str,
        subject: String,
        payload: Bytes,
    ) -> Result<(), SendError> {
        let send = self.bus.client().publish(subject, payload);
        match tokio::time::timeout(PUBLISH_TIMEOUT, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError {
                what,
                reason: e.to_string(),
            }),
            Err(_) => Err(SendError {
                what,
                reason: format!(
                    "the NATS client's buffer stayed full for {PUBLISH_TIMEOUT:?} (server away?)"
                ),
            }),
        }
    }

    /// The largest payload the server takes.
    fn max_payload(&self) -> usize {
        self.bus.client().server_info().max_payload
    }
}

fn json(what: &'static str, message: &impl Serialize) -> Result<Bytes, SendError> {
    serde_json::to_vec(message)
        .map(Bytes::from)
        .map_err(|e| SendError {
            what,
            reason: e.to_string(),
        })
}

#[async_trait::async_trait]
impl Messenger for NatsMessenger {
    async fn creation_ack(
        &self,
        scheduler: &SchedulerInstanceId,
        ack: ContainerCreationAckMessage,
    ) -> Result<(), SendError> {
        const WHAT: &str = "a creation ack";
        let payload = json(WHAT, &ack)?;
        self.publish(WHAT, self.bus.subjects().creation_ack(scheduler), payload)
            .await
    }

    async fn completion(
        &self,
        controller: &ControllerInstanceId,
        ack: AcknowledgementMessage,
    ) -> Result<(), SendError> {
        const WHAT: &str = "a completion";
        let mut payload = json(WHAT, &ack)?;
        // OpenWhisk re-sends an ack too large for Kafka shrunk: the
        // activation replaced by its id (the record is in the store).
        let max = self.max_payload();
        if max > 0 && payload.len() > max {
            tracing::debug!(
                activation = %ack.activation_id(),
                bytes = payload.len(),
                max,
                "completion too large for NATS; sending it shrunk"
            );
            payload = json(WHAT, &ack.shrink())?;
        }
        self.publish(WHAT, self.bus.subjects().completed(controller), payload)
            .await
    }
}
