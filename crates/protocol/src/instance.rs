//! Instance ids of the three components: scheduler, controller and invoker
//! (`COM/core/entity/InstanceId.scala`).
//!
//! Scheduler and controller ids become part of topic (here: subject) names,
//! so OpenWhisk restricts them to `[a-zA-Z0-9._-]`, at most 128 characters;
//! we check the same. The invoker id carries its memory and placement
//! (`tags`, `dedicatedNamespaces`) because acks and the etcd report use it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::size::ByteSize;

/// The longest scheduler or controller id OpenWhisk accepts (249 − 121).
pub const MAX_INSTANCE_NAME_LENGTH: usize = 128;

/// An instance id that breaks OpenWhisk's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceIdError {
    /// A scheduler or controller id with characters outside `[a-zA-Z0-9._-]`.
    #[error(
        "{kind} instance id '{value}' contains invalid characters (allowed: [a-zA-Z0-9._-], at most 128)"
    )]
    InvalidCharacters {
        /// `scheduler` or `controller`.
        kind: &'static str,
        /// The rejected id.
        value: String,
    },
}

fn check_instance_name(kind: &'static str, value: &str) -> Result<(), InstanceIdError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if value.is_empty() || value.len() > MAX_INSTANCE_NAME_LENGTH || !value.chars().all(legal) {
        return Err(InstanceIdError::InvalidCharacters {
            kind,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// A scheduler's id. JSON: `{"asString":"0"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SchedulerRepr", into = "SchedulerRepr")]
pub struct SchedulerInstanceId(String);

#[derive(Serialize, Deserialize)]
struct SchedulerRepr {
    #[serde(rename = "asString")]
    as_string: String,
}

impl SchedulerInstanceId {
    /// Validates a scheduler id.
    pub fn new(id: impl Into<String>) -> Result<Self, InstanceIdError> {
        let id = id.into();
        check_instance_name("scheduler", &id)?;
        Ok(SchedulerInstanceId(id))
    }

    /// Scheduler `0`: standalone mode's only one.
    pub fn first() -> Self {
        SchedulerInstanceId("0".to_owned())
    }

    /// The id (`asString`): the `{sid}` of subjects and keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SchedulerInstanceId {
    /// OpenWhisk's `toString`: `scheduler{id}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scheduler{}", self.0)
    }
}

impl TryFrom<SchedulerRepr> for SchedulerInstanceId {
    type Error = InstanceIdError;
    fn try_from(r: SchedulerRepr) -> Result<Self, InstanceIdError> {
        SchedulerInstanceId::new(r.as_string)
    }
}

impl From<SchedulerInstanceId> for SchedulerRepr {
    fn from(id: SchedulerInstanceId) -> Self {
        SchedulerRepr { as_string: id.0 }
    }
}

/// A controller's id. JSON: `{"asString":"0","instanceType":"controller"}`;
/// read also without `instanceType`, as OpenWhisk does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "ControllerRepr", into = "ControllerRepr")]
pub struct ControllerInstanceId(String);

#[derive(Serialize, Deserialize)]
struct ControllerRepr {
    #[serde(rename = "asString")]
    as_string: String,
    #[serde(rename = "instanceType", default = "controller_type")]
    instance_type: String,
}

fn controller_type() -> String {
    "controller".to_owned()
}

impl ControllerInstanceId {
    /// Validates a controller id.
    pub fn new(id: impl Into<String>) -> Result<Self, InstanceIdError> {
        let id = id.into();
        check_instance_name("controller", &id)?;
        Ok(ControllerInstanceId(id))
    }

    /// Controller `0`: standalone mode's only one.
    pub fn first() -> Self {
        ControllerInstanceId("0".to_owned())
    }

    /// The id (`asString`): the `{ctrl}` of `whisk.completed{ctrl}`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ControllerInstanceId {
    /// OpenWhisk's `toString`: `controller{id}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "controller{}", self.0)
    }
}

impl TryFrom<ControllerRepr> for ControllerInstanceId {
    type Error = String;
    fn try_from(r: ControllerRepr) -> Result<Self, String> {
        if r.instance_type != "controller" {
            return Err(format!(
                "could not read ControllerInstanceId: instanceType is '{}'",
                r.instance_type
            ));
        }
        ControllerInstanceId::new(r.as_string).map_err(|e| e.to_string())
    }
}

impl From<ControllerInstanceId> for ControllerRepr {
    fn from(id: ControllerInstanceId) -> Self {
        ControllerRepr {
            as_string: id.0,
            instance_type: controller_type(),
        }
    }
}

/// An invoker's id, with the memory and placement the scheduler needs.
///
/// JSON: `{"instance":0,"userMemory":"2048 MB","busyMemory"?,"instanceType":"invoker",
/// "tags":[],"dedicatedNamespaces":[],"uniqueName"?,"displayedName"?}` — in
/// that order, as OpenWhisk writes it. `tags` and `dedicatedNamespaces` may be
/// absent on read (empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "InvokerRepr", into = "InvokerRepr")]
pub struct InvokerInstanceId {
    /// The invoker's number `N` (`invoker{N}`).
    pub instance: u32,
    /// The memory the invoker offers to actions.
    pub user_memory: ByteSize,
    /// Memory in use, when reported.
    pub busy_memory: Option<ByteSize>,
    /// Resource tags (`whisk.invoker.resource.tags`).
    pub tags: Vec<String>,
    /// Namespaces this invoker is reserved for; empty means any.
    pub dedicated_namespaces: Vec<String>,
    /// A unique name (e.g. the pod name), when set.
    pub unique_name: Option<String>,
    /// A display name, when set.
    pub displayed_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvokerRepr {
    instance: u32,
    user_memory: ByteSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    busy_memory: Option<ByteSize>,
    instance_type: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    dedicated_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unique_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    displayed_name: Option<String>,
}

impl InvokerInstanceId {
    /// Invoker `instance` offering `user_memory`, with no tags or names.
    pub fn new(instance: u32, user_memory: ByteSize) -> Self {
        InvokerInstanceId {
            instance,
            user_memory,
            busy_memory: None,
            tags: Vec::new(),
            dedicated_namespaces: Vec::new(),
            unique_name: None,
            displayed_name: None,
        }
    }
}

impl fmt::Display for InvokerInstanceId {
    /// OpenWhisk's `toString`: `invoker{N}[/{uniqueName}[/{displayedName}]]`,
    /// the instance part of the lease key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invoker{}", self.instance)?;
        for name in self.unique_name.iter().chain(&self.displayed_name) {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

impl TryFrom<InvokerRepr> for InvokerInstanceId {
    type Error = String;
    fn try_from(r: InvokerRepr) -> Result<Self, String> {
        if r.instance_type != "invoker" {
            return Err(format!(
                "could not read InvokerInstanceId: instanceType is '{}'",
                r.instance_type
            ));
        }
        Ok(InvokerInstanceId {
            instance: r.instance,
            user_memory: r.user_memory,
            busy_memory: r.busy_memory,
            tags: r.tags,
            dedicated_namespaces: r.dedicated_namespaces,
            unique_name: r.unique_name,
            displayed_name: r.displayed_name,
        })
    }
}

impl From<InvokerInstanceId> for InvokerRepr {
    fn from(i: InvokerInstanceId) -> Self {
        InvokerRepr {
            instance: i.instance,
            user_memory: i.user_memory,
            busy_memory: i.busy_memory,
            instance_type: "invoker".to_owned(),
            tags: i.tags,
            dedicated_namespaces: i.dedicated_namespaces,
            unique_name: i.unique_name,
            displayed_name: i.displayed_name,
        }
    }
}

/// Whichever component sent an acknowledgement (the `instance` field of
/// completion messages; OpenWhisk's polymorphic `InstanceId`).
///
/// Told apart by `instanceType`. OpenWhisk's own reader knows only invokers
/// and controllers, yet its scheduler sends some fallback completions with a
/// `SchedulerInstanceId` (`{"asString"}`, no `instanceType`); we read that
/// form too instead of dropping the ack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstanceId {
    /// An invoker (the usual sender).
    Invoker(InvokerInstanceId),
    /// A controller.
    Controller(ControllerInstanceId),
    /// A scheduler (fallback activations it completes itself).
    Scheduler(SchedulerInstanceId),
}

impl InstanceId {
    /// The invoker id, if an invoker sent it.
    pub fn as_invoker(&self) -> Option<&InvokerInstanceId> {
        match self {
            InstanceId::Invoker(i) => Some(i),
            _ => None,
        }
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceId::Invoker(i) => i.fmt(f),
            InstanceId::Controller(c) => c.fmt(f),
            InstanceId::Scheduler(s) => s.fmt(f),
        }
    }
}

impl From<InvokerInstanceId> for InstanceId {
    fn from(i: InvokerInstanceId) -> Self {
        InstanceId::Invoker(i)
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            InstanceId::Invoker(i) => i.serialize(serializer),
            InstanceId::Controller(c) => c.serialize(serializer),
            InstanceId::Scheduler(s) => s.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let kind = value.get("instanceType").map(Value::as_str);
        let result = match kind {
            Some(Some("invoker")) => serde_json::from_value(value).map(InstanceId::Invoker),
            Some(Some("controller")) => serde_json::from_value(value).map(InstanceId::Controller),
            None if value.get("asString").is_some() => {
                serde_json::from_value(value).map(InstanceId::Scheduler)
            }
            _ => return Err(D::Error::custom("could not read InstanceId")),
        };
        result.map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(v: Value) -> T {
        let parsed: T = serde_json::from_value(v.clone()).expect("deserializes");
        assert_eq!(serde_json::to_value(&parsed).expect("serializes"), v);
        parsed
    }

    #[test]
    fn scheduler_and_controller_ids() {
        let s: SchedulerInstanceId = round_trip(json!({"asString": "0"}));
        assert_eq!((s.as_str(), s.to_string().as_str()), ("0", "scheduler0"));
        let c: ControllerInstanceId =
            round_trip(json!({"asString": "0", "instanceType": "controller"}));
        assert_eq!(c.to_string(), "controller0");
        let c: ControllerInstanceId = serde_json::from_value(json!({"asString": "1"})).unwrap();
        assert_eq!(c.as_str(), "1");
        assert!(
            serde_json::from_value::<ControllerInstanceId>(
                json!({"asString": "1", "instanceType": "invoker"})
            )
            .is_err()
        );
        assert!(serde_json::from_value::<SchedulerInstanceId>(json!({"asString": "a/b"})).is_err());
        assert!(SchedulerInstanceId::new("").is_err());
        assert!(ControllerInstanceId::new("x".repeat(129)).is_err());
    }

    #[test]
    fn invoker_id_minimal_and_full() {
        let v = json!({"instance": 0, "userMemory": "2048 MB", "instanceType": "invoker",
                       "tags": [], "dedicatedNamespaces": []});
        let i: InvokerInstanceId = round_trip(v);
        assert_eq!(i, InvokerInstanceId::new(0, ByteSize::from_mb(2048)));
        assert_eq!(i.to_string(), "invoker0");

        let v = json!({"instance": 3, "userMemory": "1024 MB", "busyMemory": "256 MB",
                       "instanceType": "invoker", "tags": ["gpu"], "dedicatedNamespaces": ["ns"],
                       "uniqueName": "pod-3", "displayedName": "edge"});
        let i: InvokerInstanceId = round_trip(v);
        assert_eq!(i.to_string(), "invoker3/pod-3/edge");
        assert_eq!(i.busy_memory, Some(ByteSize::from_mb(256)));
    }

    #[test]
    fn invoker_id_field_order_is_openwhisks() {
        let mut i = InvokerInstanceId::new(1, ByteSize::from_mb(512));
        i.unique_name = Some("u".into());
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            r#"{"instance":1,"userMemory":"512 MB","instanceType":"invoker","tags":[],"dedicatedNamespaces":[],"uniqueName":"u"}"#
        );
    }

    #[test]
    fn malformed_invoker_ids_are_errors() {
        for bad in [
            json!({"instance": 0, "userMemory": "2048 MB", "instanceType": "controller"}),
            json!({"instance": 0, "userMemory": "2048 MB"}),
            json!({"instance": -1, "userMemory": "2048 MB", "instanceType": "invoker"}),
            json!({"instance": 0, "userMemory": 2048, "instanceType": "invoker"}),
            json!([0]),
        ] {
            assert!(
                serde_json::from_value::<InvokerInstanceId>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn instance_id_dispatches_on_instance_type() {
        let inv = json!({"instance": 0, "userMemory": "0 MB", "instanceType": "invoker",
                         "tags": [], "dedicatedNamespaces": []});
        assert!(matches!(
            round_trip::<InstanceId>(inv),
            InstanceId::Invoker(_)
        ));
        let ctl = json!({"asString": "0", "instanceType": "controller"});
        assert!(matches!(
            round_trip::<InstanceId>(ctl),
            InstanceId::Controller(_)
        ));
        let sch = json!({"asString": "0"});
        assert!(matches!(
            round_trip::<InstanceId>(sch),
            InstanceId::Scheduler(_)
        ));
        for bad in [
            json!({"instanceType": "x", "asString": "0"}),
            json!({}),
            json!(1),
        ] {
            assert!(
                serde_json::from_value::<InstanceId>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
