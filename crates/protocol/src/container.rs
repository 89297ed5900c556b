//! Container messages (docs/openwhisk.md §3.2, §3.3): the scheduler asks an invoker to
//! create or delete containers on `whisk.invoker{N}`, and the invoker answers
//! each creation with an ack on `whisk.creationAck{sid}`.
//!
//! # The two ack-error quirks, fixed
//! OpenWhisk writes an ack's `error` as the case-object name, but its reader
//! has no case for `ShuttingDownError` and expects the misspelling
//! `NonExecutbleActionError`; an ack carrying either is dropped by the
//! scheduler and the creation job ends only by its 20 s timeout. We write all
//! 13 names correctly and read all 13 (case-insensitively, as OpenWhisk does),
//! and also accept the misspelling, so nothing we or OpenWhisk send is lost.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::action::WhiskActionMetaData;
use super::fqn::FullyQualifiedEntityName;
use super::ids::{CreationId, DocRevision, TransactionId};
use super::instance::{InvokerInstanceId, SchedulerInstanceId};

/// A request to create one container for an action (10 fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCreationMessage {
    /// The transaction.
    pub transid: TransactionId,
    /// The namespace the container will run activations for.
    pub invocation_namespace: String,
    /// The action.
    pub action: FullyQualifiedEntityName,
    /// The action document's revision.
    pub revision: DocRevision,
    /// The action's metadata.
    pub whisk_action_meta_data: WhiskActionMetaData,
    /// The scheduler to ack (`whisk.creationAck{sid}`).
    pub root_scheduler_index: SchedulerInstanceId,
    /// Where the action's queue is served.
    pub scheduler_host: String,
    /// The queue's port (gRPC in OpenWhisk).
    pub rpc_port: u16,
    /// How many times this creation was rescheduled (0 on read if absent).
    #[serde(default)]
    pub retry_count: u32,
    /// The creation's id, kept across retries.
    pub creation_id: CreationId,
}

/// A request to remove an action's containers of a revision (5 fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDeletionMessage {
    /// The transaction.
    pub transid: TransactionId,
    /// The namespace whose containers go.
    pub invocation_namespace: String,
    /// The action.
    pub action: FullyQualifiedEntityName,
    /// Containers of this revision and older go.
    pub revision: DocRevision,
    /// The action's metadata.
    pub whisk_action_meta_data: WhiskActionMetaData,
}

/// Anything on `whisk.invoker{N}`: a creation if it has a `creationId`, else
/// a deletion (OpenWhisk's `ContainerMessage.serdes`).
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerMessage {
    /// Create a container.
    Creation(Box<ContainerCreationMessage>),
    /// Delete containers.
    Deletion(Box<ContainerDeletionMessage>),
}

impl ContainerMessage {
    /// The message's transaction.
    pub fn transid(&self) -> &TransactionId {
        match self {
            ContainerMessage::Creation(m) => &m.transid,
            ContainerMessage::Deletion(m) => &m.transid,
        }
    }
}

impl Serialize for ContainerMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ContainerMessage::Creation(m) => m.serialize(serializer),
            ContainerMessage::Deletion(m) => m.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ContainerMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Err(D::Error::custom(
                "a container message must be a JSON object",
            ));
        }
        if value.get("creationId").is_some() {
            serde_json::from_value(value)
                .map(|m| ContainerMessage::Creation(Box::new(m)))
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(|m| ContainerMessage::Deletion(Box::new(m)))
                .map_err(D::Error::custom)
        }
    }
}

/// Why a container creation failed (docs/openwhisk.md §3.3). Written as the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerCreationError {
    /// No invoker is available.
    NoAvailableInvokersError,
    /// No invoker has the required resource tags.
    NoAvailableResourceInvokersError,
    /// The invoker has not enough memory.
    ResourceNotEnoughError,
    /// A recoverable system error.
    WhiskError,
    /// An unknown error (e.g. the container proxy failed to start).
    UnknownError,
    /// The scheduler gave up waiting for the ack.
    TimeoutError,
    /// The invoker is being disabled.
    ShuttingDownError,
    /// The action is not executable (a sequence).
    NonExecutableActionError,
    /// The invoker could not fetch the action from the database.
    DBFetchError,
    /// A blackbox image failed.
    BlackBoxError,
    /// The namespace's limit is 0.
    ZeroNamespaceLimit,
    /// Too many requests in flight.
    TooManyConcurrentRequests,
    /// A configured action limit is invalid.
    InvalidActionLimitError,
}

impl ContainerCreationError {
    /// All 13 errors.
    pub const ALL: [ContainerCreationError; 13] = [
        Self::NoAvailableInvokersError,
        Self::NoAvailableResourceInvokersError,
        Self::ResourceNotEnoughError,
        Self::WhiskError,
        Self::UnknownError,
        Self::TimeoutError,
        Self::ShuttingDownError,
        Self::NonExecutableActionError,
        Self::DBFetchError,
        Self::BlackBoxError,
        Self::ZeroNamespaceLimit,
        Self::TooManyConcurrentRequests,
        Self::InvalidActionLimitError,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoAvailableInvokersError => "NoAvailableInvokersError",
            Self::NoAvailableResourceInvokersError => "NoAvailableResourceInvokersError",
            Self::ResourceNotEnoughError => "ResourceNotEnoughError",
            Self::WhiskError => "WhiskError",
            Self::UnknownError => "UnknownError",
            Self::TimeoutError => "TimeoutError",
            Self::ShuttingDownError => "ShuttingDownError",
            Self::NonExecutableActionError => "NonExecutableActionError",
            Self::DBFetchError => "DBFetchError",
            Self::BlackBoxError => "BlackBoxError",
            Self::ZeroNamespaceLimit => "ZeroNamespaceLimit",
            Self::TooManyConcurrentRequests => "TooManyConcurrentRequests",
            Self::InvalidActionLimitError => "InvalidActionLimitError",
        }
    }

    /// OpenWhisk's description of the error.
    pub fn description(self) -> &'static str {
        match self {
            Self::NoAvailableInvokersError => "no available invoker is found",
            Self::NoAvailableResourceInvokersError => {
                "no available invoker with the resources is found: "
            }
            Self::ResourceNotEnoughError => "invoker(s) have not enough resources",
            Self::WhiskError => "whisk error(recoverable) happens",
            Self::UnknownError => "a unknown error happens",
            Self::TimeoutError => "a timeout error happens",
            Self::ShuttingDownError => "shutting down error happens",
            Self::NonExecutableActionError => "no executable found for the action",
            Self::DBFetchError => "an error happens while fetching data from DB",
            Self::BlackBoxError => "a blackbox error happens",
            Self::ZeroNamespaceLimit => "the namespace has 0 limit configured",
            Self::TooManyConcurrentRequests => "too many concurrent requests are in flight.",
            Self::InvalidActionLimitError => "a configured action limit is invalid.",
        }
    }

    /// True when the scheduler retries the creation on another invoker
    /// (OpenWhisk's `whiskErrors`).
    pub fn is_reschedulable(self) -> bool {
        matches!(
            self,
            Self::NoAvailableInvokersError
                | Self::NoAvailableResourceInvokersError
                | Self::ResourceNotEnoughError
                | Self::WhiskError
                | Self::UnknownError
                | Self::TimeoutError
                | Self::ShuttingDownError
                | Self::ZeroNamespaceLimit
        )
    }

    /// Reads a name: trimmed, any case; also OpenWhisk's misspelling
    /// `NonExecutbleActionError`.
    pub fn parse(name: &str) -> Option<Self> {
        let wanted = name.trim();
        if wanted.eq_ignore_ascii_case("NonExecutbleActionError") {
            return Some(Self::NonExecutableActionError);
        }
        Self::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(wanted))
    }
}

impl fmt::Display for ContainerCreationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ContainerCreationError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ContainerCreationError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let name = String::deserialize(deserializer)?;
        Self::parse(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown ContainerCreationError '{name}'")))
    }
}

/// The invoker's answer to a creation message (12 fields). No `error` means
/// success; `error` and `reason` are omitted when unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCreationAckMessage {
    /// The transaction of the creation message.
    pub transid: TransactionId,
    /// The creation being answered.
    pub creation_id: CreationId,
    /// As in the creation message.
    pub invocation_namespace: String,
    /// As in the creation message.
    pub action: FullyQualifiedEntityName,
    /// As in the creation message.
    pub revision: DocRevision,
    /// As in the creation message.
    pub action_meta_data: WhiskActionMetaData,
    /// The invoker answering.
    pub root_invoker_index: InvokerInstanceId,
    /// As in the creation message.
    pub scheduler_host: String,
    /// As in the creation message.
    pub rpc_port: u16,
    /// As in the creation message (0 on read if absent).
    #[serde(default)]
    pub retry_count: u32,
    /// Why the creation failed; none on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ContainerCreationError>,
    /// A human-readable reason for the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ContainerCreationAckMessage {
    /// The ack for `msg` from `invoker`: success when `error` is `None`.
    pub fn answer(
        msg: &ContainerCreationMessage,
        invoker: InvokerInstanceId,
        error: Option<(ContainerCreationError, String)>,
    ) -> Self {
        let (error, reason) = error.map_or((None, None), |(e, r)| (Some(e), Some(r)));
        ContainerCreationAckMessage {
            transid: msg.transid.clone(),
            creation_id: msg.creation_id.clone(),
            invocation_namespace: msg.invocation_namespace.clone(),
            action: msg.action.clone(),
            revision: msg.revision.clone(),
            action_meta_data: msg.whisk_action_meta_data.clone(),
            root_invoker_index: invoker,
            scheduler_host: msg.scheduler_host.clone(),
            rpc_port: msg.rpc_port,
            retry_count: msg.retry_count,
            error,
            reason,
        }
    }

    /// True when the container was created.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// True when the failure is one the scheduler retries elsewhere.
    pub fn is_reschedulable(&self) -> bool {
        self.error
            .is_some_and(ContainerCreationError::is_reschedulable)
    }
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
