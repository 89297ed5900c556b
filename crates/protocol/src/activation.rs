//! The activation message (docs/openwhisk.md §3.1): one invocation, as the controller
//! queues it and a sandbox pulls it, with the identity of the caller.
//!
//! `Identity` and `UserLimits` mirror `COM/core/entity/Identity.scala`. The
//! limits are all optional and omitted when unset, so a message from a
//! controller that sets none is `"limits":{}` on the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fqn::FullyQualifiedEntityName;
use super::ids::{ActivationId, DocRevision, TransactionId};
use super::instance::ControllerInstanceId;
use super::size::ByteSize;

/// A right a key holds on its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Privilege {
    /// Read entities.
    Read,
    /// Create and update entities.
    Put,
    /// Delete entities.
    Delete,
    /// Invoke actions and fire triggers.
    Activate,
    /// Blocked: every request is rejected.
    Reject,
}

/// A namespace and its id. JSON: `{"name","uuid"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace name.
    pub name: String,
    /// The namespace's uuid (the user part of its key).
    pub uuid: String,
}

/// The credentials of an identity. OpenWhisk's `GenericAuthKey` is any JSON
/// object; for basic auth it is `{"api_key":"uuid:key"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthKey(pub serde_json::Map<String, Value>);

impl AuthKey {
    /// Basic-auth credentials `uuid:key`.
    pub fn basic(uuid: &str, key: &str) -> Self {
        let mut map = serde_json::Map::new();
        map.insert("api_key".into(), Value::String(format!("{uuid}:{key}")));
        AuthKey(map)
    }

    /// The `uuid:key` string, when the key is a basic-auth key.
    pub fn api_key(&self) -> Option<&str> {
        self.0.get("api_key").and_then(Value::as_str)
    }
}

/// Per-namespace limits; every field optional and omitted when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLimits {
    /// Invocations per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations_per_minute: Option<u32>,
    /// Concurrent invocations; in FPC, the namespace's container limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_invocations: Option<u32>,
    /// Trigger fires per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fires_per_minute: Option<u32>,
    /// The action kinds the namespace may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_kinds: Option<Vec<String>>,
    /// Whether activations are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_activations: Option<bool>,
    /// Smallest action memory, in MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_memory: Option<u64>,
    /// Largest action memory, in MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_memory: Option<u64>,
    /// Smallest action log limit, in MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_logs: Option<u64>,
    /// Largest action log limit, in MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_logs: Option<u64>,
    /// Shortest action timeout, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_timeout: Option<u64>,
    /// Longest action timeout, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_timeout: Option<u64>,
    /// Smallest intra-container concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_concurrency: Option<u32>,
    /// Largest intra-container concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_concurrency: Option<u32>,
    /// Largest parameter size (`"1 MB"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parameter_size: Option<ByteSize>,
    /// Largest payload size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload_size: Option<ByteSize>,
    /// Size results are truncated to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation_size: Option<ByteSize>,
    /// Paused containers kept past the idle timeout, per action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_container_keeping_count: Option<u32>,
    /// How long those are kept (a duration string such as `"60 minutes"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_container_keeping_timeout: Option<String>,
    /// The most containers one action may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_instances: Option<u32>,
}

/// Who invoked: subject, namespace, key, rights and limits.
///
/// JSON: `{"subject","namespace":{"name","uuid"},"authkey":{"api_key":"uuid:key"},
/// "rights":[…],"limits":{…}}`. `rights` and `limits` may be absent on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The subject (the user).
    pub subject: String,
    /// The namespace the key belongs to.
    pub namespace: Namespace,
    /// The key.
    pub authkey: AuthKey,
    /// What the key may do.
    #[serde(default)]
    pub rights: Vec<Privilege>,
    /// The namespace's limits.
    #[serde(default)]
    pub limits: UserLimits,
}

/// One activation as queued for a sandbox (docs/openwhisk.md §3.1, 12 fields).
///
/// `content`, `cause` and `traceContext` are omitted when unset; `initArgs`
/// and `lockedArgs` are always written and default to empty on read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationMessage {
    /// The transaction (its start is the controller's receive time, which
    /// the `waitTime` annotation is measured from).
    pub transid: TransactionId,
    /// The action, with its version.
    pub action: FullyQualifiedEntityName,
    /// The action document's revision.
    pub revision: DocRevision,
    /// Who invoked.
    pub user: Identity,
    /// This activation's id.
    pub activation_id: ActivationId,
    /// The controller to send the completion to (`whisk.completed{ctrl}`).
    pub root_controller_index: ControllerInstanceId,
    /// Whether the caller waits for the result.
    pub blocking: bool,
    /// The parameters (a JSON object), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// Parameter names passed to `/init` rather than `/run`.
    #[serde(default)]
    pub init_args: Vec<String>,
    /// Encrypted parameter names and their encryption scheme.
    #[serde(default)]
    pub locked_args: BTreeMap<String, String>,
    /// The sequence activation this one is a component of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    /// Tracing context, when tracing is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<BTreeMap<String, String>>,
}

impl ActivationMessage {
    /// True when the activation is a component of a sequence.
    pub fn caused_by_sequence(&self) -> bool {
        self.cause.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{activation_message_json, identity_json};
    use serde_json::json;

    #[test]
    fn minimal_activation_message_round_trips() {
        let v = activation_message_json();
        let msg: ActivationMessage = crate::fixtures::round_trip(&v);
        assert_eq!(msg.action.to_string(), "guest/hello@0.0.1");
        assert_eq!(msg.user.authkey.api_key(), Some("uuid-1:key-1"));
        assert_eq!(msg.root_controller_index.as_str(), "0");
        assert!(!msg.caused_by_sequence());
    }

    #[test]
    fn full_activation_message_round_trips() {
        let mut v = activation_message_json();
        v["content"] = json!({"name": "world", "secret": "x"});
        v["initArgs"] = json!(["secret"]);
        v["lockedArgs"] = json!({"secret": "aes-128"});
        v["cause"] = json!("fedcba9876543210fedcba9876543210");
        v["traceContext"] = json!({"traceparent": "00-abc-def-01"});
        v["revision"] = json!(null);
        let msg: ActivationMessage = crate::fixtures::round_trip(&v);
        assert!(msg.caused_by_sequence());
        assert!(msg.revision.is_empty());
    }

    #[test]
    fn init_and_locked_args_default_to_empty() {
        let mut v = activation_message_json();
        let obj = v.as_object_mut().unwrap();
        obj.remove("initArgs");
        obj.remove("lockedArgs");
        let msg: ActivationMessage = serde_json::from_value(v).unwrap();
        assert!(msg.init_args.is_empty() && msg.locked_args.is_empty());
        let written = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            (&written["initArgs"], &written["lockedArgs"]),
            (&json!([]), &json!({}))
        );
    }

    #[test]
    fn identity_with_every_user_limit_round_trips() {
        let mut v = identity_json();
        v["limits"] = json!({
            "invocationsPerMinute": 60, "concurrentInvocations": 30, "firesPerMinute": 60,
            "allowedKinds": ["nodejs:20"], "storeActivations": true,
            "minActionMemory": 128, "maxActionMemory": 512, "minActionLogs": 0,
            "maxActionLogs": 10, "minActionTimeout": 100, "maxActionTimeout": 300000,
            "minActionConcurrency": 1, "maxActionConcurrency": 1,
            "maxParameterSize": "1 MB", "maxPayloadSize": "1 MB", "truncationSize": "1 MB",
            "warmedContainerKeepingCount": 1, "warmedContainerKeepingTimeout": "60 minutes",
            "maxActionInstances": 10
        });
        let id: Identity = crate::fixtures::round_trip(&v);
        assert_eq!(id.limits.max_payload_size, Some(ByteSize::from_mb(1)));
        assert_eq!(id.rights.len(), 4);
    }

    #[test]
    fn malformed_activation_messages_are_errors() {
        for (field, bad) in [
            ("activationId", json!("not-hex")),
            ("transid", json!("tid")),
            ("action", json!("noslash")),
            ("rootControllerIndex", json!({"asString": "a b"})),
            ("blocking", json!("yes")),
            ("user", json!({"subject": "s"})),
        ] {
            let mut v = activation_message_json();
            v[field] = bad.clone();
            assert!(
                serde_json::from_value::<ActivationMessage>(v).is_err(),
                "{field}: {bad}"
            );
        }
        let mut v = activation_message_json();
        v["user"]["rights"] = json!(["FLY"]);
        assert!(serde_json::from_value::<ActivationMessage>(v).is_err());
        assert!(serde_json::from_str::<ActivationMessage>("{").is_err());
        assert!(serde_json::from_str::<ActivationMessage>("[]").is_err());
    }
}
