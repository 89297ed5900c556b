//! `[invoker]`, `[nats]` and `[etcd]`: who this process is and where the
//! cluster's transport and state live. Names follow OpenWhisk where it has
//! one (`whisk.invoker.resource.tags`, `whisk.invoker.dedicated.namespaces`,
//! `whisk.etcd.lease.timeout`, `whisk.cluster.name`); the flags of docs/architecture.md#modes
//! (`--id`, `--port`, `--data-dir`, `--nats`, `--etcd`) set the same fields.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units;
use super::{ConfigError, invalid};

/// The highest instance number (`--id`): the scheduler walks invoker
/// numbers 0..=N as OpenWhisk does, so they must stay small.
pub const MAX_INSTANCE: u32 = 4095;

/// `[invoker]`: this invoker's identity and its own API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct InvokerConfig {
    /// Invoker instance number `N` (`invoker{N}` in subjects and etcd keys).
    /// Default `0`.
    pub id: u32,
    /// Resource tags the scheduler matches actions against
    /// (`whisk.invoker.resource.tags`). Default none.
    pub tags: Vec<String>,
    /// Namespaces this invoker is dedicated to
    /// (`whisk.invoker.dedicated.namespaces`). Default none (serves all).
    pub dedicated_namespaces: Vec<String>,
    /// Port of the REST API (standalone, controller) or of the invoker's
    /// admin API. Default `3233`.
    pub port: u16,
    /// Data directory: database, compile cache, generated keys. Default
    /// unset: `$XDG_DATA_HOME/wasmwhisk`, else `~/.local/share/wasmwhisk`,
    /// else `./.wasmwhisk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Default for InvokerConfig {
    fn default() -> Self {
        InvokerConfig {
            id: 0,
            tags: Vec::new(),
            dedicated_namespaces: Vec::new(),
            port: 3233,
            data_dir: None,
        }
    }
}

impl InvokerConfig {
    /// Tags and namespaces are non-empty words without commas or slashes
    /// (OpenWhisk writes them comma-separated and puts them in etcd keys).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id > MAX_INSTANCE {
            return Err(invalid(
                "invoker.id",
                format!("expected 0..={MAX_INSTANCE}, got {}", self.id),
            ));
        }
        for (key, words) in [
            ("invoker.tags", &self.tags),
            ("invoker.dedicated-namespaces", &self.dedicated_namespaces),
        ] {
            if let Some(bad) = words
                .iter()
                .find(|w| w.trim().is_empty() || w.contains([',', '/']))
            {
                return Err(invalid(
                    key,
                    format!("expected non-empty names without ',' or '/', got {bad:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// `[nats]`: the message bus of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NatsConfig {
    /// Server URL. Default `"nats://127.0.0.1:4222"`.
    pub url: String,
    /// How long JetStream waits for an activation's ack before it gives the
    /// activation to another sandbox: how soon a dead invoker's activations
    /// move on (live invokers keep theirs with in-progress acks). Set when an
    /// action's queue is first made. Default `"10 seconds"`.
    #[serde(with = "units::duration")]
    pub ack_wait: Duration,
    /// The longest an invoker keeps one activation before it lets JetStream
    /// redeliver it: longer than any init + run. Default `"15 minutes"`.
    #[serde(with = "units::duration")]
    pub max_hold: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".to_string(),
            ack_wait: Duration::from_secs(10),
            max_hold: Duration::from_secs(15 * 60),
        }
    }
}

/// `[etcd]`: the cluster state store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EtcdConfig {
    /// Endpoints of the etcd cluster. Default `["http://127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
    /// TTL of this process's lease; every key it writes disappears this long
    /// after it dies (`whisk.etcd.lease.timeout`). Whole seconds. Default
    /// `"10 seconds"`.
    #[serde(with = "units::duration")]
    pub lease_timeout: Duration,
    /// First segment of every etcd key (`whisk.cluster.name`). Default `"whisk"`.
    pub cluster_name: String,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            lease_timeout: Duration::from_secs(10),
            cluster_name: "whisk".to_string(),
        }
    }
}

impl NatsConfig {
    /// The URL is not empty; `ack-wait` is at least a second and `max-hold`
    /// longer than it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return Err(invalid("nats.url", "expected a URL, got \"\"".to_string()));
        }
        if self.ack_wait < Duration::from_secs(1) {
            return Err(invalid(
                "nats.ack-wait",
                format!(
                    "expected at least 1 second, got \"{}\"",
                    units::format_duration(self.ack_wait)
                ),
            ));
        }
        if self.max_hold <= self.ack_wait {
            return Err(invalid(
                "nats.max-hold",
                format!(
                    "expected more than nats.ack-wait, got \"{}\"",
                    units::format_duration(self.max_hold)
                ),
            ));
        }
        Ok(())
    }
}

impl EtcdConfig {
    /// At least one endpoint; the lease a whole number of seconds ≥ 1 (etcd
    /// lease TTLs are in seconds); the cluster name one key segment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.endpoints.is_empty() || self.endpoints.iter().any(|e| e.trim().is_empty()) {
            return Err(invalid(
                "etcd.endpoints",
                format!("expected one or more URLs, got {:?}", self.endpoints),
            ));
        }
        if self.lease_timeout < Duration::from_secs(1) || self.lease_timeout.subsec_nanos() != 0 {
            return Err(invalid(
                "etcd.lease-timeout",
                format!(
                    "expected a whole number of seconds, at least 1, got \"{}\"",
                    units::format_duration(self.lease_timeout)
                ),
            ));
        }
        if self.cluster_name.is_empty() || self.cluster_name.contains('/') {
            return Err(invalid(
                "etcd.cluster-name",
                format!(
                    "expected a non-empty name without '/', got {:?}",
                    self.cluster_name
                ),
            ));
        }
        Ok(())
    }
}
