//! `[container-pool]` and `[container-proxy.timeouts]`: OpenWhisk's
//! `whisk.container-pool` (`ContainerPoolConfig`) and
//! `whisk.container-proxy.timeouts` (`ContainerProxyTimeoutConfig`), key for
//! key, with their defaults and the checks OpenWhisk makes on them
//! (docs/openwhisk.md §8.1, §2.2), plus the CPU share arithmetic of §1.3.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{self, ByteSize};
use super::{ConfigError, invalid};

/// `[container-pool]`: the invoker's memory budget and prewarm policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContainerPoolConfig {
    /// Memory for action sandboxes (busy, warmed and in-progress; prewarmed
    /// stem cells are outside it). Default `"1024 MB"`.
    #[serde(with = "units::size")]
    pub user_memory: ByteSize,
    /// CPUs shared by the sandboxes in proportion to their memory (OpenWhisk's
    /// `--cpus`); see [`cpu_limit`](Self::cpu_limit). Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_cpus: Option<f64>,
    /// Peek factor of OpenWhisk's old (non-FPC) invoker; kept for
    /// compatibility, must be in (0, 1]. Default `0.5`.
    pub concurrent_peek_factor: f64,
    /// Delay before the first prewarm expiration check. Default `"10 minutes"`.
    #[serde(with = "units::duration")]
    pub prewarm_expiration_check_init_delay: Duration,
    /// Period of the prewarm expiration check; must be > 0. Default `"10 minutes"`.
    #[serde(with = "units::duration")]
    pub prewarm_expiration_check_interval: Duration,
    /// Upper bound of a random delay added to the interval, drawn once at pool
    /// start. Default `"10 seconds"`.
    #[serde(with = "units::duration")]
    pub prewarm_expiration_check_interval_variance: Duration,
    /// Expired prewarms removed per check; must be > 0. Default `100`.
    pub prewarm_expiration_limit: u32,
    /// Failed prewarm creations tolerated before prewarming stops until the
    /// next reset. Default `5`.
    pub prewarm_max_retry_limit: u32,
    /// Let an action take a larger stem cell when none of its size is free.
    /// Default `false`.
    pub prewarm_promotion: bool,
    /// Period of the memory report to etcd; must be > 0. Default `"1 second"`.
    #[serde(with = "units::duration")]
    pub memory_sync_interval: Duration,
    /// Sandboxes drained at once when the invoker is disabled; must be > 0.
    /// Default `10`.
    pub batch_deletion_size: u32,
    /// Throttles prewarm creation when set. Default unset (no throttle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prewarm_container_creation_config: Option<PrewarmContainerCreationConfig>,
}

impl Default for ContainerPoolConfig {
    fn default() -> Self {
        ContainerPoolConfig {
            user_memory: ByteSize::from_mb(1024),
            user_cpus: None,
            concurrent_peek_factor: 0.5,
            prewarm_expiration_check_init_delay: Duration::from_secs(600),
            prewarm_expiration_check_interval: Duration::from_secs(600),
            prewarm_expiration_check_interval_variance: Duration::from_secs(10),
            prewarm_expiration_limit: 100,
            prewarm_max_retry_limit: 5,
            prewarm_promotion: false,
            memory_sync_interval: Duration::from_secs(1),
            batch_deletion_size: 10,
            prewarm_container_creation_config: None,
        }
    }
}

/// `[container-pool.prewarm-container-creation-config]`: at most
/// `max-concurrent` prewarms are started every `creation-delay`. Both keys are
/// required when the table is present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PrewarmContainerCreationConfig {
    /// Prewarms started per tick; must be > 0.
    pub max_concurrent: u32,
    /// Period of the tick; must be > 0.
    #[serde(with = "units::duration")]
    pub creation_delay: Duration,
}

/// Docker's total CPU share, which OpenWhisk divides among containers.
const TOTAL_SHARE: u64 = 1024;
/// The smallest CPU share Docker accepts.
const MIN_CPU_SHARE: u64 = 2;
/// The smallest CPU limit OpenWhisk gives a container.
const MIN_CPU_LIMIT: f64 = 0.01;

impl ContainerPoolConfig {
    /// Checks the constraints OpenWhisk states, and ours (`memory-sync-interval`
    /// and `prewarm-expiration-limit` > 0, memory in whole MB).
    pub fn validate(&self) -> Result<(), ConfigError> {
        const P: &str = "container-pool";
        if self.user_memory.as_mb() == 0 || !self.user_memory.is_whole_mb() {
            return Err(invalid(
                format!("{P}.user-memory"),
                format!(
                    "expected a whole number of MB, at least 1 MB, got {}",
                    self.user_memory
                ),
            ));
        }
        if let Some(cpus) = self.user_cpus
            && !(cpus.is_finite() && cpus > 0.0)
        {
            return Err(invalid(
                format!("{P}.user-cpus"),
                format!("expected a number of CPUs > 0, got {cpus}"),
            ));
        }
        let factor = self.concurrent_peek_factor;
        if !(factor > 0.0 && factor <= 1.0) {
            return Err(invalid(
                format!("{P}.concurrent-peek-factor"),
                format!("expected a number in (0, 1], got {factor}"),
            ));
        }
        positive_duration(
            self.prewarm_expiration_check_interval,
            &format!("{P}.prewarm-expiration-check-interval"),
        )?;
        positive_duration(
            self.memory_sync_interval,
            &format!("{P}.memory-sync-interval"),
        )?;
        positive_count(
            self.prewarm_expiration_limit,
            &format!("{P}.prewarm-expiration-limit"),
        )?;
        positive_count(
            self.batch_deletion_size,
            &format!("{P}.batch-deletion-size"),
        )?;
        if let Some(creation) = &self.prewarm_container_creation_config {
            let q = format!("{P}.prewarm-container-creation-config");
            positive_count(creation.max_concurrent, &format!("{q}.max-concurrent"))?;
            positive_duration(creation.creation_delay, &format!("{q}.creation-delay"))?;
        }
        Ok(())
    }

    /// How many sandboxes of `memory` fit in `user-memory`, at least 1
    /// (OpenWhisk's `userMemory.toBytes / reservedMemory.toBytes`).
    fn slots(&self, memory: ByteSize) -> u64 {
        (self.user_memory.as_bytes() / memory.as_bytes().max(1)).max(1)
    }

    /// Docker `--cpu-shares` of a sandbox of `memory` (docs/openwhisk.md §1.3):
    /// `max(1024 / (user-memory / memory), 2)`, both divisions integer.
    ///
    /// With 1024 MB of user memory a 256 MB sandbox gets 1024 / 4 = 256; with
    /// 2048 MB a 384 MB one gets 1024 / 5 = 204. Where OpenWhisk divides by
    /// zero (a sandbox larger than `user-memory`) this gives the whole share,
    /// 1024; a sandbox of 0 bytes gets the floor, 2.
    pub fn cpu_share(&self, memory: ByteSize) -> u64 {
        if memory.as_bytes() == 0 {
            return MIN_CPU_SHARE;
        }
        (TOTAL_SHARE / self.slots(memory)).max(MIN_CPU_SHARE)
    }

    /// Docker `--cpus` of a sandbox of `memory` (docs/openwhisk.md §1.3), only when
    /// `user-cpus` is set: `user-cpus / (user-memory / memory)` (integer
    /// division inside), rounded to 5 decimals, at least 0.01.
    ///
    /// With 2 CPUs and 1024 MB, a 256 MB sandbox gets 2 / 4 = 0.5; with
    /// 1 CPU and 2048 MB a 384 MB one gets 1 / 5 = 0.2; with 0.1 CPU and
    /// 1024 MB a 128 MB one gets 0.0125 and a 1 MB one the floor, 0.01.
    pub fn cpu_limit(&self, memory: ByteSize) -> Option<f64> {
        let cpus = self.user_cpus?;
        if memory.as_bytes() == 0 {
            return Some(MIN_CPU_LIMIT);
        }
        #[allow(clippy::cast_precision_loss)] // slots ≤ 2^64, far beyond any real ratio
        let share = cpus / self.slots(memory) as f64;
        // Java's Math.round(x) = floor(x + 0.5).
        let rounded = (share * 100_000.0 + 0.5).floor() / 100_000.0;
        Some(rounded.max(MIN_CPU_LIMIT))
    }
}

/// `[container-proxy.timeouts]`: how long an idle sandbox lives (docs/openwhisk.md
/// §2.2). Effective idle life of a warm sandbox: `pause-grace` pulling, then
/// `idle-container` paused, then possibly `keeping-duration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContainerProxyTimeoutsConfig {
    /// Time a paused (warmed) sandbox waits before the keep/remove decision.
    /// Default `"10 minutes"`.
    #[serde(with = "units::duration")]
    pub idle_container: Duration,
    /// Time without an activation before a pulling sandbox pauses. Default
    /// `"10 seconds"`.
    #[serde(with = "units::duration")]
    pub pause_grace: Duration,
    /// Lifetime of a kept "last" paused sandbox of an action. Default
    /// `"10 minutes"`.
    #[serde(with = "units::duration")]
    pub keeping_duration: Duration,
}

impl Default for ContainerProxyTimeoutsConfig {
    fn default() -> Self {
        ContainerProxyTimeoutsConfig {
            idle_container: Duration::from_secs(600),
            pause_grace: Duration::from_secs(10),
            keeping_duration: Duration::from_secs(600),
        }
    }
}

impl ContainerProxyTimeoutsConfig {
    /// Each timeout must be > 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const P: &str = "container-proxy.timeouts";
        positive_duration(self.idle_container, &format!("{P}.idle-container"))?;
        positive_duration(self.pause_grace, &format!("{P}.pause-grace"))?;
        positive_duration(self.keeping_duration, &format!("{P}.keeping-duration"))
    }
}

/// `[container-proxy]`: only its `timeouts` table so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContainerProxyConfig {
    /// `[container-proxy.timeouts]`.
    pub timeouts: ContainerProxyTimeoutsConfig,
}

pub(super) fn positive_duration(value: Duration, key: &str) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(invalid(
            key,
            "expected a duration > 0, got \"0 seconds\"".to_string(),
        ));
    }
    Ok(())
}

pub(super) fn positive_count(value: u32, key: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, "expected a number > 0, got 0".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(user_memory_mb: u64, user_cpus: Option<f64>) -> ContainerPoolConfig {
        ContainerPoolConfig {
            user_memory: ByteSize::from_mb(user_memory_mb),
            user_cpus,
            ..ContainerPoolConfig::default()
        }
    }

    #[test]
    fn cpu_share_is_integer_arithmetic_with_a_floor_of_2() {
        let p = pool(1024, None);
        assert_eq!(p.cpu_share(ByteSize::from_mb(256)), 256); // 1024 / (1024/256 = 4)
        assert_eq!(p.cpu_share(ByteSize::from_mb(128)), 128); // 1024 / 8
        assert_eq!(p.cpu_share(ByteSize::from_mb(512)), 512); // 1024 / 2
        assert_eq!(p.cpu_share(ByteSize::from_mb(1024)), 1024); // 1024 / 1
        assert_eq!(p.cpu_share(ByteSize::from_mb(300)), 341); // 1024 / (1024/300 = 3)
        assert_eq!(p.cpu_share(ByteSize::from_mb(1)), 2); // 1024 / 1024 = 1 → floor 2
        assert_eq!(p.cpu_share(ByteSize::from_mb(2048)), 1024); // larger than user-memory
        assert_eq!(p.cpu_share(ByteSize::from_bytes(0)), 2);
        let p = pool(2048, None);
        assert_eq!(p.cpu_share(ByteSize::from_mb(384)), 204); // 1024 / (2048/384 = 5) = 204
        assert_eq!(p.cpu_share(ByteSize::from_mb(256)), 128); // 1024 / 8
        let p = pool(65_536, None);
        assert_eq!(p.cpu_share(ByteSize::from_mb(128)), 2); // 1024 / 512 = 2
        assert_eq!(p.cpu_share(ByteSize::from_mb(64)), 2); // 1024 / 1024 = 1 → 2
    }

    #[test]
    fn cpu_limit_rounds_to_5_decimals_with_a_floor_of_001() {
        assert_eq!(pool(1024, None).cpu_limit(ByteSize::from_mb(256)), None);
        let p = pool(1024, Some(2.0));
        assert_eq!(p.cpu_limit(ByteSize::from_mb(256)), Some(0.5)); // 2 / 4
        assert_eq!(p.cpu_limit(ByteSize::from_mb(1024)), Some(2.0)); // 2 / 1
        assert_eq!(p.cpu_limit(ByteSize::from_mb(300)), Some(0.66667)); // 2 / 3
        assert_eq!(p.cpu_limit(ByteSize::from_mb(4096)), Some(2.0)); // larger than user-memory
        let p = pool(2048, Some(1.0));
        assert_eq!(p.cpu_limit(ByteSize::from_mb(384)), Some(0.2)); // 1 / 5
        assert_eq!(p.cpu_limit(ByteSize::from_mb(700)), Some(0.5)); // 1 / 2
        let p = pool(1024, Some(0.1));
        assert_eq!(p.cpu_limit(ByteSize::from_mb(128)), Some(0.0125)); // 0.1 / 8
        assert_eq!(p.cpu_limit(ByteSize::from_mb(1)), Some(0.01)); // 0.1 / 1024 ≈ 0.0001 → 0.01
        let p = pool(3072, Some(1.0));
        assert_eq!(p.cpu_limit(ByteSize::from_mb(256)), Some(0.08333)); // 1 / 12
        assert_eq!(p.cpu_limit(ByteSize::from_mb(1536)), Some(0.5)); // 1 / 2
        let p = pool(1024, Some(1.0));
        assert_eq!(p.cpu_limit(ByteSize::from_mb(48)), Some(0.04762)); // 1 / 21 = 0.047619…
    }

    #[test]
    fn defaults_are_openwhisks() {
        let p = ContainerPoolConfig::default();
        assert_eq!(p.user_memory, ByteSize::from_mb(1024));
        assert_eq!(p.user_cpus, None);
        assert_eq!(p.concurrent_peek_factor, 0.5);
        assert_eq!(
            p.prewarm_expiration_check_init_delay,
            Duration::from_secs(600)
        );
        assert_eq!(
            p.prewarm_expiration_check_interval,
            Duration::from_secs(600)
        );
        assert_eq!(
            p.prewarm_expiration_check_interval_variance,
            Duration::from_secs(10)
        );
        assert_eq!(p.prewarm_expiration_limit, 100);
        assert_eq!(p.prewarm_max_retry_limit, 5);
        assert!(!p.prewarm_promotion);
        assert_eq!(p.memory_sync_interval, Duration::from_secs(1));
        assert_eq!(p.batch_deletion_size, 10);
        assert_eq!(p.prewarm_container_creation_config, None);
        assert!(p.validate().is_ok());
        let t = ContainerProxyTimeoutsConfig::default();
        assert_eq!(t.idle_container, Duration::from_secs(600));
        assert_eq!(t.pause_grace, Duration::from_secs(10));
        assert_eq!(t.keeping_duration, Duration::from_secs(600));
        assert!(t.validate().is_ok());
    }

    fn rejects(p: ContainerPoolConfig, key: &str) {
        match p.validate() {
            Err(ConfigError::InvalidValue { key: k, .. }) => assert_eq!(k, key),
            other => panic!("expected an invalid {key}, got {other:?}"),
        }
    }

    #[test]
    fn openwhisks_constraints_are_checked() {
        let d = ContainerPoolConfig::default;
        rejects(
            ContainerPoolConfig {
                concurrent_peek_factor: 0.0,
                ..d()
            },
            "container-pool.concurrent-peek-factor",
        );
        rejects(
            ContainerPoolConfig {
                concurrent_peek_factor: 1.5,
                ..d()
            },
            "container-pool.concurrent-peek-factor",
        );
        assert!(
            ContainerPoolConfig {
                concurrent_peek_factor: 1.0,
                ..d()
            }
            .validate()
            .is_ok()
        );
        rejects(
            ContainerPoolConfig {
                prewarm_expiration_check_interval: Duration::ZERO,
                ..d()
            },
            "container-pool.prewarm-expiration-check-interval",
        );
        rejects(
            ContainerPoolConfig {
                batch_deletion_size: 0,
                ..d()
            },
            "container-pool.batch-deletion-size",
        );
        rejects(
            ContainerPoolConfig {
                user_cpus: Some(0.0),
                ..d()
            },
            "container-pool.user-cpus",
        );
        rejects(
            ContainerPoolConfig {
                user_memory: ByteSize::from_kb(1536),
                ..d()
            },
            "container-pool.user-memory",
        );
        rejects(
            ContainerPoolConfig {
                prewarm_container_creation_config: Some(PrewarmContainerCreationConfig {
                    max_concurrent: 0,
                    creation_delay: Duration::from_secs(1),
                }),
                ..d()
            },
            "container-pool.prewarm-container-creation-config.max-concurrent",
        );
        rejects(
            ContainerPoolConfig {
                prewarm_container_creation_config: Some(PrewarmContainerCreationConfig {
                    max_concurrent: 1,
                    creation_delay: Duration::ZERO,
                }),
                ..d()
            },
            "container-pool.prewarm-container-creation-config.creation-delay",
        );
    }
}
