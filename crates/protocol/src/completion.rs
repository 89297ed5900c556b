//! Acknowledgements to the controller on `whisk.completed{ctrl}` (docs/openwhisk.md
//! §3.4, `COM/core/connector/Message.scala`).
//!
//! A blocking activation gets its result early (`ResultMessage`) and its slot
//! freed later (`CompletionMessage`), or both at once
//! (`CombinedCompletionAndResultMessage`). Non-blocking acks are *shrunk*:
//! the activation is replaced by its id, so a big result never has to cross
//! the bus. Readers tell the three apart by which fields are present, as
//! OpenWhisk's `AcknowledgementMessage.serdes` does.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::{ActivationId, TransactionId};
use super::instance::InstanceId;
use super::record::WhiskActivation;

/// An ack's `response`: the whole activation, or only its id once shrunk.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivationOrId {
    /// The id only (a JSON string).
    Id(ActivationId),
    /// The whole activation (a JSON object).
    Activation(Box<WhiskActivation>),
}

impl ActivationOrId {
    /// The activation's id, either way.
    pub fn activation_id(&self) -> &ActivationId {
        match self {
            ActivationOrId::Id(id) => id,
            ActivationOrId::Activation(a) => &a.activation_id,
        }
    }

    /// The activation, unless shrunk.
    pub fn activation(&self) -> Option<&WhiskActivation> {
        match self {
            ActivationOrId::Id(_) => None,
            ActivationOrId::Activation(a) => Some(a),
        }
    }

    /// The id form.
    pub fn shrink(&self) -> ActivationOrId {
        ActivationOrId::Id(self.activation_id().clone())
    }
}

impl Serialize for ActivationOrId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ActivationOrId::Id(id) => id.serialize(serializer),
            ActivationOrId::Activation(a) => a.serialize(serializer),
        }
    }
}

struct ActivationOrIdVisitor;

impl<'de> Visitor<'de> for ActivationOrIdVisitor {
    type Value = ActivationOrId;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an activation id string or an activation object")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<ActivationOrId, E> {
        ActivationId::parse(s)
            .map(ActivationOrId::Id)
            .map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ActivationOrId, A::Error> {
        let activation = WhiskActivation::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(ActivationOrId::Activation(Box::new(activation)))
    }
}

impl<'de> Deserialize<'de> for ActivationOrId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ActivationOrIdVisitor)
    }
}

/// Result and freed slot at once. JSON: `{"transid","response","isSystemError"?,"instance"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CombinedCompletionAndResultMessage {
    /// The activation's transaction.
    pub transid: TransactionId,
    /// The activation, or its id when shrunk.
    pub response: ActivationOrId,
    /// Whether the activation ended with a whisk (system) error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_system_error: Option<bool>,
    /// Who sends the ack (the invoker).
    pub instance: InstanceId,
}

impl CombinedCompletionAndResultMessage {
    /// The combined ack for `activation`, sent by `instance`.
    pub fn new(transid: TransactionId, activation: WhiskActivation, instance: InstanceId) -> Self {
        CombinedCompletionAndResultMessage {
            transid,
            is_system_error: Some(activation.response.is_whisk_error()),
            response: ActivationOrId::Activation(Box::new(activation)),
            instance,
        }
    }
}

/// The freed slot only. JSON: `{"transid","activationId","isSystemError"?,"instance"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionMessage {
    /// The activation's transaction.
    pub transid: TransactionId,
    /// The activation.
    pub activation_id: ActivationId,
    /// Whether the activation ended with a whisk (system) error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_system_error: Option<bool>,
    /// Who sends the ack.
    pub instance: InstanceId,
}

impl CompletionMessage {
    /// The completion of `activation`, sent by `instance`.
    pub fn new(transid: TransactionId, activation: &WhiskActivation, instance: InstanceId) -> Self {
        CompletionMessage {
            transid,
            activation_id: activation.activation_id.clone(),
            is_system_error: Some(activation.response.is_whisk_error()),
            instance,
        }
    }
}

/// The result only (blocking activations, before logs are collected).
/// JSON: `{"transid","response"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultMessage {
    /// The activation's transaction.
    pub transid: TransactionId,
    /// The activation, or its id when shrunk.
    pub response: ActivationOrId,
}

impl ResultMessage {
    /// The result ack for `activation`.
    pub fn new(transid: TransactionId, activation: WhiskActivation) -> Self {
        ResultMessage {
            transid,
            response: ActivationOrId::Activation(Box::new(activation)),
        }
    }
}

/// Any ack on `whisk.completed{ctrl}`.
///
/// Read by field presence: `instance` and `response` → combined; `instance`
/// only → completion; neither → result.
#[derive(Debug, Clone, PartialEq)]
pub enum AcknowledgementMessage {
    /// Result and slot.
    Combined(CombinedCompletionAndResultMessage),
    /// Slot only.
    Completion(CompletionMessage),
    /// Result only.
    Result(ResultMessage),
}

impl AcknowledgementMessage {
    /// The activation's transaction.
    pub fn transid(&self) -> &TransactionId {
        match self {
            Self::Combined(m) => &m.transid,
            Self::Completion(m) => &m.transid,
            Self::Result(m) => &m.transid,
        }
    }

    /// The acknowledged activation's id.
    pub fn activation_id(&self) -> &ActivationId {
        match self {
            Self::Combined(m) => m.response.activation_id(),
            Self::Completion(m) => &m.activation_id,
            Self::Result(m) => m.response.activation_id(),
        }
    }

    /// The result, if this ack carries one.
    pub fn result(&self) -> Option<&ActivationOrId> {
        match self {
            Self::Combined(m) => Some(&m.response),
            Self::Completion(_) => None,
            Self::Result(m) => Some(&m.response),
        }
    }

    /// The instance whose slot is free, if this ack frees one.
    pub fn slot_freed_by(&self) -> Option<&InstanceId> {
        match self {
            Self::Combined(m) => Some(&m.instance),
            Self::Completion(m) => Some(&m.instance),
            Self::Result(_) => None,
        }
    }

    /// Whether the activation ended with a system error, when known.
    pub fn is_system_error(&self) -> Option<bool> {
        match self {
            Self::Combined(m) => m.is_system_error,
            Self::Completion(m) => m.is_system_error,
            Self::Result(m) => m.response.activation().map(|a| a.response.is_whisk_error()),
        }
    }

    /// The shrunk form: the activation replaced by its id (what non-blocking
    /// acks, and acks too large for the bus, carry).
    pub fn shrink(&self) -> AcknowledgementMessage {
        match self {
            Self::Combined(m) => Self::Combined(CombinedCompletionAndResultMessage {
                response: m.response.shrink(),
                ..m.clone()
            }),
            Self::Completion(m) => Self::Completion(m.clone()),
            Self::Result(m) => Self::Result(ResultMessage {
                transid: m.transid.clone(),
                response: m.response.shrink(),
            }),
        }
    }
}

impl From<CombinedCompletionAndResultMessage> for AcknowledgementMessage {
    fn from(m: CombinedCompletionAndResultMessage) -> Self {
        Self::Combined(m)
    }
}

impl From<CompletionMessage> for AcknowledgementMessage {
    fn from(m: CompletionMessage) -> Self {
        Self::Completion(m)
    }
}

impl From<ResultMessage> for AcknowledgementMessage {
    fn from(m: ResultMessage) -> Self {
        Self::Result(m)
    }
}

impl Serialize for AcknowledgementMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Combined(m) => m.serialize(serializer),
            Self::Completion(m) => m.serialize(serializer),
            Self::Result(m) => m.serialize(serializer),
        }
    }
}

/// Every field any ack has; which are present decides the ack's type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AckFields {
    transid: TransactionId,
    #[serde(default)]
    response: Option<ActivationOrId>,
    #[serde(default)]
    activation_id: Option<ActivationId>,
    #[serde(default)]
    is_system_error: Option<bool>,
    #[serde(default)]
    instance: Option<InstanceId>,
}

impl<'de> Deserialize<'de> for AcknowledgementMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = AckFields::deserialize(deserializer)?;
        Ok(match (f.instance, f.response) {
            (Some(instance), Some(response)) => {
                Self::Combined(CombinedCompletionAndResultMessage {
                    transid: f.transid,
                    response,
                    is_system_error: f.is_system_error,
                    instance,
                })
            }
            (Some(instance), None) => Self::Completion(CompletionMessage {
                transid: f.transid,
                activation_id: f
                    .activation_id
                    .ok_or_else(|| de::Error::missing_field("activationId"))?,
                is_system_error: f.is_system_error,
                instance,
            }),
            (None, response) => Self::Result(ResultMessage {
                transid: f.transid,
                response: response.ok_or_else(|| de::Error::missing_field("response"))?,
            }),
        })
    }
}

#[cfg(test)]
#[path = "completion_tests.rs"]
mod tests;
