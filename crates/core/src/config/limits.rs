//! `[limits]`: the ranges and defaults of an action's limits, with
//! OpenWhisk's names (`whisk.memory`, `whisk.time-limit`, `whisk.log-limit`,
//! `whisk.concurrency-limit`, each `{min, max, std}`; `whisk.exec-size-limit`;
//! `whisk.activation.payload`) and defaults (docs/openwhisk.md §7), and the check an
//! action's requested `limits` object goes through.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{self, ByteSize, format_duration};
use super::{ConfigError, invalid};
use wasmwhisk_sandbox::action::SandboxLimits;

/// `[limits]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Largest action code (`exec-size-limit`). Default `"48 MB"`.
    #[serde(with = "units::size")]
    pub exec_size_limit: ByteSize,
    /// Largest total size of an action's or package's parameters. Default `"1 MB"`.
    #[serde(with = "units::size")]
    pub parameter_size_limit: ByteSize,
    /// `[limits.memory]`.
    pub memory: MemoryLimitConfig,
    /// `[limits.time-limit]`.
    pub time_limit: TimeLimitConfig,
    /// `[limits.log-limit]`.
    pub log_limit: LogLimitConfig,
    /// `[limits.concurrency-limit]`.
    pub concurrency_limit: ConcurrencyLimitConfig,
    /// `[limits.payload]`: OpenWhisk's `whisk.activation.payload`.
    pub payload: PayloadConfig,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            exec_size_limit: ByteSize::from_mb(48),
            parameter_size_limit: ByteSize::from_mb(1),
            memory: MemoryLimitConfig::default(),
            time_limit: TimeLimitConfig::default(),
            log_limit: LogLimitConfig::default(),
            concurrency_limit: ConcurrencyLimitConfig::default(),
            payload: PayloadConfig::default(),
        }
    }
}

/// A `{min, max, std}` table whose missing keys keep their defaults.
macro_rules! range_config {
    ($(#[$doc:meta])* $name:ident, $t:ty, [$($field:meta),*], $min:expr, $max:expr, $std:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Smallest value an action may ask for.
            $(#[$field])*
            pub min: $t,
            /// Largest value an action may ask for.
            $(#[$field])*
            pub max: $t,
            /// The value of an action that asks for none.
            $(#[$field])*
            pub std: $t,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    min: $min,
                    max: $max,
                    std: $std,
                }
            }
        }
    };
}

range_config!(
    /// `[limits.memory]` (`whisk.memory`): an action's `limits.memory`.
    /// Default min `"128 MB"`, max `"512 MB"`, std `"256 MB"`.
    MemoryLimitConfig,
    ByteSize,
    [serde(with = "units::size")],
    ByteSize::from_mb(128),
    ByteSize::from_mb(512),
    ByteSize::from_mb(256)
);

range_config!(
    /// `[limits.log-limit]` (`whisk.log-limit`): an action's `limits.logs`.
    /// Default min `"0 MB"`, max `"10 MB"`, std `"10 MB"`.
    LogLimitConfig,
    ByteSize,
    [serde(with = "units::size")],
    ByteSize::from_mb(0),
    ByteSize::from_mb(10),
    ByteSize::from_mb(10)
);

range_config!(
    /// `[limits.concurrency-limit]` (`whisk.concurrency-limit`): an action's
    /// `limits.concurrency`. Default min 1, max 1, std 1 (raise `max` to
    /// allow concurrent activations in one sandbox).
    ConcurrencyLimitConfig,
    u32,
    [],
    1,
    1,
    1
);

/// `[limits.time-limit]` (`whisk.time-limit`): an action's `limits.timeout`.
/// Default min `"100 milliseconds"`, max `"5 minutes"`, std `"1 minute"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeLimitConfig {
    /// Smallest value an action may ask for.
    #[serde(with = "units::duration")]
    pub min: Duration,
    /// Largest value an action may ask for.
    #[serde(with = "units::duration")]
    pub max: Duration,
    /// The value of an action that asks for none.
    #[serde(with = "units::duration")]
    pub std: Duration,
}

impl Default for TimeLimitConfig {
    fn default() -> Self {
        TimeLimitConfig {
            min: Duration::from_millis(100),
            max: Duration::from_secs(300),
            std: Duration::from_secs(60),
        }
    }
}

/// `[limits.payload]`: activation payload sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayloadConfig {
    /// Largest parameters or result of one activation. Default `"1 MB"`.
    #[serde(with = "units::size")]
    pub max: ByteSize,
    /// Size a too large result is truncated to in the error. Default `"1 MB"`.
    #[serde(with = "units::size")]
    pub truncation: ByteSize,
}

impl Default for PayloadConfig {
    fn default() -> Self {
        PayloadConfig {
            max: ByteSize::from_mb(1),
            truncation: ByteSize::from_mb(1),
        }
    }
}

/// The `limits` object of an action document, as the user sent it: each
/// field optional, in OpenWhisk's units (ms, MB, MB, count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedLimits {
    /// `limits.timeout`, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// `limits.memory`, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// `limits.logs`, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<u64>,
    /// `limits.concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// An action limit outside its configured range; the message is OpenWhisk's
/// (`memory 1024 MB exceeds allowed threshold of 512 MB`), for a 400 answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} {value} {relation} allowed threshold of {threshold}")]
pub struct LimitError {
    /// `memory`, `duration`, `log size` or `concurrency`.
    pub name: &'static str,
    /// The requested value, with its unit.
    pub value: String,
    /// `below` or `exceeds`.
    pub relation: &'static str,
    /// The bound it crossed, with its unit.
    pub threshold: String,
}

/// Checks `value` against `[min, max]`, printing values with `show`.
fn check<T: PartialOrd + Copy>(
    name: &'static str,
    value: T,
    min: T,
    max: T,
    show: impl Fn(T) -> String,
) -> Result<T, LimitError> {
    let (relation, threshold) = if value < min {
        ("below", min)
    } else if value > max {
        ("exceeds", max)
    } else {
        return Ok(value);
    };
    Err(LimitError {
        name,
        value: show(value),
        relation,
        threshold: show(threshold),
    })
}

fn millis(d: Duration) -> String {
    format!("{} milliseconds", d.as_millis())
}

impl LimitsConfig {
    /// The limits of an action that asked for `requested`: each missing field
    /// takes its `std`, each given one must lie in `[min, max]`.
    pub fn action_limits(&self, requested: &RequestedLimits) -> Result<SandboxLimits, LimitError> {
        let memory = match requested.memory {
            Some(mb) => check(
                "memory",
                ByteSize::from_mb(mb),
                self.memory.min,
                self.memory.max,
                |s| s.to_string(),
            )?,
            None => self.memory.std,
        };
        let timeout = match requested.timeout {
            Some(ms) => check(
                "duration",
                Duration::from_millis(ms),
                self.time_limit.min,
                self.time_limit.max,
                millis,
            )?,
            None => self.time_limit.std,
        };
        let logs = match requested.logs {
            Some(mb) => check(
                "log size",
                ByteSize::from_mb(mb),
                self.log_limit.min,
                self.log_limit.max,
                |s| s.to_string(),
            )?,
            None => self.log_limit.std,
        };
        let concurrency = match requested.concurrency {
            Some(n) => check(
                "concurrency",
                n,
                self.concurrency_limit.min,
                self.concurrency_limit.max,
                |n| n.to_string(),
            )?,
            None => self.concurrency_limit.std,
        };
        Ok(SandboxLimits {
            timeout,
            memory_mb: memory.as_mb(),
            logs_mb: logs.as_mb(),
            concurrency,
        })
    }

    /// Each range has `min ≤ std ≤ max`; memory and logs are whole MB (an
    /// action's `limits` are in MB); a timeout and a concurrency are > 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (m, l) = (&self.memory, &self.log_limit);
        for (key, (min, max, std)) in [
            ("memory", (m.min, m.max, m.std)),
            ("log-limit", (l.min, l.max, l.std)),
        ] {
            for (bound, value) in [("min", min), ("max", max), ("std", std)] {
                if !value.is_whole_mb() {
                    return Err(invalid(
                        format!("limits.{key}.{bound}"),
                        format!("expected a whole number of MB, got {value}"),
                    ));
                }
            }
            ordered(key, min, std, max, |s| s.to_string())?;
        }
        if self.memory.min.as_mb() == 0 {
            return Err(invalid(
                "limits.memory.min",
                "expected at least 1 MB, got 0 MB".to_string(),
            ));
        }
        let t = &self.time_limit;
        super::pool::positive_duration(t.min, "limits.time-limit.min")?;
        ordered("time-limit", t.min, t.std, t.max, format_duration)?;
        let c = &self.concurrency_limit;
        super::pool::positive_count(c.min, "limits.concurrency-limit.min")?;
        ordered("concurrency-limit", c.min, c.std, c.max, |n| n.to_string())
    }
}

/// `min ≤ std ≤ max`, or an error naming the key out of order.
fn ordered<T: PartialOrd + Copy>(
    key: &str,
    min: T,
    std: T,
    max: T,
    show: impl Fn(T) -> String,
) -> Result<(), ConfigError> {
    if min > max {
        return Err(invalid(
            format!("limits.{key}.min"),
            format!("expected at most max ({}), got {}", show(max), show(min)),
        ));
    }
    if std < min || std > max {
        return Err(invalid(
            format!("limits.{key}.std"),
            format!(
                "expected a value between min ({}) and max ({}), got {}",
                show(min),
                show(max),
                show(std)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_openwhisks_and_match_action_limits() {
        let l = LimitsConfig::default();
        assert_eq!(l.memory.min, ByteSize::from_mb(128));
        assert_eq!(l.memory.max, ByteSize::from_mb(512));
        assert_eq!(l.memory.std, ByteSize::from_mb(256));
        assert_eq!(l.time_limit.min, Duration::from_millis(100));
        assert_eq!(l.time_limit.max, Duration::from_secs(5 * 60));
        assert_eq!(l.time_limit.std, Duration::from_secs(60));
        assert_eq!(l.log_limit.min, ByteSize::from_mb(0));
        assert_eq!(l.log_limit.max, ByteSize::from_mb(10));
        assert_eq!(l.log_limit.std, ByteSize::from_mb(10));
        assert_eq!((l.concurrency_limit.min, l.concurrency_limit.max), (1, 1));
        assert_eq!(l.concurrency_limit.std, 1);
        assert_eq!(l.payload.max, ByteSize::from_mb(1));
        assert_eq!(l.payload.truncation, ByteSize::from_mb(1));
        assert_eq!(l.parameter_size_limit, ByteSize::from_mb(1));
        assert_eq!(l.exec_size_limit, ByteSize::from_mb(48));
        assert!(l.validate().is_ok());
        assert_eq!(
            l.action_limits(&RequestedLimits::default()),
            Ok(SandboxLimits::default())
        );
    }

    #[test]
    fn requested_limits_within_range_are_taken() {
        let l = LimitsConfig::default();
        let requested = RequestedLimits {
            timeout: Some(100),
            memory: Some(512),
            logs: Some(0),
            concurrency: Some(1),
        };
        assert_eq!(
            l.action_limits(&requested),
            Ok(SandboxLimits {
                timeout: Duration::from_millis(100),
                memory_mb: 512,
                logs_mb: 0,
                concurrency: 1,
            })
        );
    }

    #[test]
    fn requested_limits_out_of_range_get_openwhisks_messages() {
        let l = LimitsConfig::default();
        let message = |r: RequestedLimits| l.action_limits(&r).map_err(|e| e.to_string());
        assert_eq!(
            message(RequestedLimits {
                memory: Some(1024),
                ..Default::default()
            }),
            Err("memory 1024 MB exceeds allowed threshold of 512 MB".to_string())
        );
        assert_eq!(
            message(RequestedLimits {
                memory: Some(64),
                ..Default::default()
            }),
            Err("memory 64 MB below allowed threshold of 128 MB".to_string())
        );
        assert_eq!(
            message(RequestedLimits {
                timeout: Some(300_001),
                ..Default::default()
            }),
            Err(
                "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds"
                    .to_string()
            )
        );
        assert_eq!(
            message(RequestedLimits {
                timeout: Some(99),
                ..Default::default()
            }),
            Err("duration 99 milliseconds below allowed threshold of 100 milliseconds".to_string())
        );
        assert_eq!(
            message(RequestedLimits {
                logs: Some(11),
                ..Default::default()
            }),
            Err("log size 11 MB exceeds allowed threshold of 10 MB".to_string())
        );
        assert_eq!(
            message(RequestedLimits {
                concurrency: Some(2),
                ..Default::default()
            }),
            Err("concurrency 2 exceeds allowed threshold of 1".to_string())
        );
        assert_eq!(
            message(RequestedLimits {
                concurrency: Some(0),
                ..Default::default()
            }),
            Err("concurrency 0 below allowed threshold of 1".to_string())
        );
    }

    #[test]
    fn ranges_out_of_order_are_rejected() {
        let mut l = LimitsConfig::default();
        l.memory.std = ByteSize::from_mb(1024);
        assert!(
            matches!(l.validate(), Err(ConfigError::InvalidValue { key, .. }) if key == "limits.memory.std")
        );
        let mut l = LimitsConfig::default();
        l.time_limit.min = Duration::from_secs(600);
        assert!(
            matches!(l.validate(), Err(ConfigError::InvalidValue { key, .. }) if key == "limits.time-limit.min")
        );
        let mut l = LimitsConfig::default();
        l.concurrency_limit.min = 0;
        l.concurrency_limit.std = 0;
        assert!(
            matches!(l.validate(), Err(ConfigError::InvalidValue { key, .. }) if key == "limits.concurrency-limit.min")
        );
        let mut l = LimitsConfig::default();
        l.log_limit.max = ByteSize::from_kb(100);
        assert!(
            matches!(l.validate(), Err(ConfigError::InvalidValue { key, .. }) if key == "limits.log-limit.max")
        );
    }
}
