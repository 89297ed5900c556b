//! `[controller]` and `[store]`: the controller side of standalone mode (its
//! per-action queues and blocking invokes) and the embedded database's
//! retention of activation records.
//!
//! Names follow OpenWhisk where it has one: `max-wait-for-blocking` is
//! `whisk.controller.activation.max-wait-for-blocking-activation`,
//! `queue-max-retention` and `queue-max-size` are the scheduler's
//! `whisk.scheduler.queue.max-retention-ms` and `max-retention-size`,
//! `stale-threshold` and `check-interval` are the queue's, and
//! `concurrent-invocations` is a namespace's default `concurrentInvocations`
//! (in the function-pulling scheduler: its container limit).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{self, ByteSize};
use super::{ConfigError, invalid};

/// `[controller]`: per-action queues and invokes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ControllerConfig {
    /// Longest a blocking invoke waits for its result before answering 202
    /// with the activation id; a request's `timeout` may ask for less.
    /// Default `"60 seconds"`.
    #[serde(with = "units::duration")]
    pub max_wait_for_blocking: Duration,
    /// Longest an activation waits in its action's queue before it is failed
    /// with "Activation processing is not initiated for N ms". Default
    /// `"60 seconds"`.
    #[serde(with = "units::duration")]
    pub queue_max_retention: Duration,
    /// Activations one action's queue holds; beyond, invokes answer 429.
    /// Default `10000`.
    pub queue_max_size: usize,
    /// Memory the activations queued by all namespaces together may hold
    /// (their parameters, waiting or running); beyond, invokes answer 429.
    /// Default `"512 MB"`.
    #[serde(with = "units::size")]
    pub queue_max_bytes: ByteSize,
    /// Memory the activations queued by one invocation namespace may hold;
    /// beyond, that namespace's invokes answer 429. Default `"128 MB"`.
    #[serde(with = "units::size")]
    pub queue_max_bytes_per_namespace: ByteSize,
    /// An activation queued longer than this is *stale* and asks for more
    /// sandboxes. Default `"100 ms"`.
    #[serde(with = "units::duration")]
    pub stale_threshold: Duration,
    /// Period of each queue's scheduling decision. Default `"100 ms"`.
    #[serde(with = "units::duration")]
    pub check_interval: Duration,
    /// Sandboxes (live and being created) one namespace may hold at once
    /// (`concurrentInvocations`). Default `30`.
    pub concurrent_invocations: usize,
    /// On SIGINT/SIGTERM, how long in-flight activations may take to
    /// finish. Default `"30 seconds"`.
    #[serde(with = "units::duration")]
    pub shutdown_grace: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            max_wait_for_blocking: Duration::from_secs(60),
            queue_max_retention: Duration::from_secs(60),
            queue_max_size: 10_000,
            queue_max_bytes: ByteSize::from_mb(512),
            queue_max_bytes_per_namespace: ByteSize::from_mb(128),
            stale_threshold: Duration::from_millis(100),
            check_interval: Duration::from_millis(100),
            concurrent_invocations: 30,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl ControllerConfig {
    /// Every period is positive and every count at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "controller.max-wait-for-blocking",
                self.max_wait_for_blocking,
            ),
            ("controller.queue-max-retention", self.queue_max_retention),
            ("controller.check-interval", self.check_interval),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "expected a positive duration".to_string()));
            }
        }
        for (key, value) in [
            ("controller.queue-max-size", self.queue_max_size),
            (
                "controller.concurrent-invocations",
                self.concurrent_invocations,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "expected at least 1".to_string()));
            }
        }
        for (key, value) in [
            ("controller.queue-max-bytes", self.queue_max_bytes),
            (
                "controller.queue-max-bytes-per-namespace",
                self.queue_max_bytes_per_namespace,
            ),
        ] {
            if value.as_bytes() == 0 {
                return Err(invalid(key, "expected a positive size".to_string()));
            }
        }
        Ok(())
    }
}

/// `[store]`: the embedded database (standalone mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct StoreConfig {
    /// Activation records kept per namespace; a namespace's oldest beyond
    /// are deleted (another namespace's traffic never deletes its records).
    /// Default `100000`.
    pub max_activations: u64,
    /// Activation records older than this are deleted. Default `"7 days"`.
    #[serde(with = "units::duration")]
    pub max_activation_age: Duration,
    /// The size of all activation records together (their stored JSON);
    /// beyond, the oldest records of the namespaces using the most are
    /// deleted until the records fit in 90% of it. Default `"1 GB"`.
    #[serde(with = "units::size")]
    pub max_bytes: ByteSize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_activations: 100_000,
            max_activation_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: ByteSize::from_gb(1),
        }
    }
}

impl StoreConfig {
    /// Every bound is positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_activations == 0 {
            return Err(invalid(
                "store.max-activations",
                "expected at least 1".to_string(),
            ));
        }
        if self.max_bytes.as_bytes() == 0 {
            return Err(invalid(
                "store.max-bytes",
                "expected a positive size".to_string(),
            ));
        }
        if self.max_activation_age.is_zero() {
            return Err(invalid(
                "store.max-activation-age",
                "expected a positive duration".to_string(),
            ));
        }
        Ok(())
    }
}
