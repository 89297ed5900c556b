//! What invokers and schedulers publish about themselves in etcd: the
//! invoker's health and memory (docs/openwhisk.md §3.5, §3.6, value of
//! `whisk/invokers/{N}`) and a scheduler's endpoints (value of
//! `whisk/queue/{invNs}/{fqn}/leader` and part of `whisk/scheduler/{sid}`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::instance::SchedulerInstanceId;

/// An invoker's health as the schedulers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvokerState {
    /// `"up"`: healthy; the only state that gets work.
    Healthy,
    /// `"unhealthy"`: enabled, but its health test or recent activations fail.
    Unhealthy,
    /// `"unresponsive"`: used only by OpenWhisk's old controller supervision.
    Unresponsive,
    /// `"down"`: disabled or shutting down.
    Offline,
}

impl InvokerState {
    /// The text written in etcd.
    pub fn as_str(self) -> &'static str {
        match self {
            InvokerState::Healthy => "up",
            InvokerState::Unhealthy => "unhealthy",
            InvokerState::Unresponsive => "unresponsive",
            InvokerState::Offline => "down",
        }
    }

    /// True when work may be scheduled to the invoker (only `up`).
    pub fn is_usable(self) -> bool {
        self == InvokerState::Healthy
    }

    /// Reads a status as the scheduler does: `up` and `unhealthy` are
    /// themselves, anything else is down. (We also keep `unresponsive`, which
    /// the scheduler folds into down; it is unusable either way and this way
    /// it survives a round trip.)
    pub fn parse(status: &str) -> Self {
        match status {
            "up" => InvokerState::Healthy,
            "unhealthy" => InvokerState::Unhealthy,
            "unresponsive" => InvokerState::Unresponsive,
            _ => InvokerState::Offline,
        }
    }
}

impl fmt::Display for InvokerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for InvokerState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InvokerState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let status = String::deserialize(deserializer)?;
        Ok(InvokerState::parse(&status))
    }
}

/// An invoker's report in etcd (`whisk/invokers/{N}`), rewritten whenever it
/// changes. Memory in MB; free = user memory − busy − in progress, so paused
/// (warmed) containers count as free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokerResourceMessage {
    /// Health.
    pub status: InvokerState,
    /// Memory the schedulers may still place containers in, in MB. Signed:
    /// a promoted prewarm can briefly push it below zero.
    pub free_memory: i64,
    /// Memory of running containers, in MB.
    pub busy_memory: i64,
    /// Memory of containers being created, in MB.
    pub in_progress_memory: i64,
    /// Resource tags.
    pub tags: Vec<String>,
    /// Namespaces this invoker is reserved for; empty means any.
    pub dedicated_namespaces: Vec<String>,
}

impl InvokerResourceMessage {
    /// True when the invoker may get work.
    pub fn is_usable(&self) -> bool {
        self.status.is_usable()
    }

    /// True when the invoker takes containers for `invocation_namespace`.
    pub fn accepts_namespace(&self, invocation_namespace: &str) -> bool {
        self.dedicated_namespaces.is_empty()
            || self
                .dedicated_namespaces
                .iter()
                .any(|ns| ns == invocation_namespace)
    }

    /// True when `other` reports the same thing, comparing tags and
    /// namespaces as sets (OpenWhisk's equality, which decides whether the
    /// report is rewritten).
    pub fn same_report(&self, other: &InvokerResourceMessage) -> bool {
        fn same_set(a: &[String], b: &[String]) -> bool {
            a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
        }
        self.status == other.status
            && self.free_memory == other.free_memory
            && self.busy_memory == other.busy_memory
            && self.in_progress_memory == other.in_progress_memory
            && same_set(&self.tags, &other.tags)
            && same_set(&self.dedicated_namespaces, &other.dedicated_namespaces)
    }
}

/// Where a scheduler serves. JSON: `{"host","rpcPort","pekkoPort"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerEndpoints {
    /// Host name or address.
    pub host: String,
    /// The queue (fetch) port.
    pub rpc_port: u16,
    /// The cluster (actor) port; unused by wasmwhisk, kept for the format.
    pub pekko_port: u16,
}

impl SchedulerEndpoints {
    /// `host:rpcPort`.
    pub fn rpc_endpoint(&self) -> String {
        format!("{}:{}", self.host, self.rpc_port)
    }
}

/// A scheduler's entry in etcd (`whisk/scheduler/{sid}`).
/// JSON: `{"sid":{"asString"},"queueSize","endpoints":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerStates {
    /// The scheduler.
    pub sid: SchedulerInstanceId,
    /// How many queues it leads.
    pub queue_size: u32,
    /// Where it serves.
    pub endpoints: SchedulerEndpoints,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn report_json() -> Value {
        json!({"status": "up", "freeMemory": 1792, "busyMemory": 256, "inProgressMemory": 0,
               "tags": [], "dedicatedNamespaces": []})
    }

    #[test]
    fn resource_message_round_trips() {
        let v = report_json();
        let r: InvokerResourceMessage = crate::fixtures::round_trip(&v);
        assert!(r.is_usable() && r.accepts_namespace("anyone"));

        let v = json!({"status": "unhealthy", "freeMemory": -128, "busyMemory": 0,
                       "inProgressMemory": 512, "tags": ["gpu", "edge"],
                       "dedicatedNamespaces": ["ns1"]});
        let r: InvokerResourceMessage = crate::fixtures::round_trip(&v);
        assert!(!r.is_usable());
        assert!(r.accepts_namespace("ns1") && !r.accepts_namespace("ns2"));
        let mut reordered = r.clone();
        reordered.tags.reverse();
        assert!(r.same_report(&reordered) && r != reordered);
    }

    #[test]
    fn states_parse_with_the_schedulers_rule() {
        for state in [
            InvokerState::Healthy,
            InvokerState::Unhealthy,
            InvokerState::Unresponsive,
            InvokerState::Offline,
        ] {
            let v = serde_json::to_value(state).unwrap();
            assert_eq!(serde_json::from_value::<InvokerState>(v).unwrap(), state);
        }
        assert_eq!(InvokerState::parse("UP"), InvokerState::Offline);
        assert_eq!(InvokerState::parse("starting"), InvokerState::Offline);
        assert_eq!(InvokerState::parse(""), InvokerState::Offline);
        assert!(InvokerState::Healthy.is_usable());
        assert!(!InvokerState::Unresponsive.is_usable());
        assert_eq!(InvokerState::Offline.to_string(), "down");
    }

    #[test]
    fn malformed_reports_are_errors() {
        for (field, bad) in [
            ("status", json!(1)),
            ("freeMemory", json!("1792")),
            ("tags", json!("gpu")),
        ] {
            let mut v = report_json();
            v[field] = bad.clone();
            assert!(
                serde_json::from_value::<InvokerResourceMessage>(v).is_err(),
                "{field}"
            );
        }
        let mut v = report_json();
        v.as_object_mut().map(|o| o.remove("busyMemory"));
        assert!(serde_json::from_value::<InvokerResourceMessage>(v).is_err());
    }

    #[test]
    fn scheduler_values_round_trip() {
        let v = json!({"host": "10.0.0.5", "rpcPort": 13001, "pekkoPort": 25520});
        let e: SchedulerEndpoints = crate::fixtures::round_trip(&v);
        assert_eq!(e.rpc_endpoint(), "10.0.0.5:13001");

        let v = json!({"sid": {"asString": "0"}, "queueSize": 3, "endpoints": v});
        crate::fixtures::round_trip::<SchedulerStates>(&v);
    }
}
