//! `[engine]`: the Wasmtime knobs of [`EngineConfig`], written with units.
//! The defaults are `EngineConfig::default()`'s, read from it, so the two
//! cannot drift; see `crates/sandbox/src/engine/config.rs` for why each default is what it is.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{self, ByteSize};
use super::{ConfigError, invalid};
use wasmwhisk_sandbox::engine::EngineConfig;

/// `[engine]`. Named `EngineSectionConfig` because [`EngineConfig`] is the
/// engine's own (unit-less) type this section is turned into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EngineSectionConfig {
    /// Sandboxes alive at once; reserves address space for each. Default `16384`.
    pub max_sandboxes: u32,
    /// Core instances per component counted into the pool. Default `4`.
    pub core_instances_per_sandbox: u32,
    /// Largest linear memory of a sandbox, whole MB; at least
    /// `limits.memory.max`. Default `"512 MB"`.
    #[serde(with = "units::size")]
    pub max_memory: ByteSize,
    /// Address space reserved per linear memory. Default `"4096 MB"` (4 GiB:
    /// lets Cranelift elide bounds checks).
    #[serde(with = "units::size")]
    pub memory_reservation: ByteSize,
    /// Period of the epoch ticker, the granularity of deadlines; > 0.
    /// Default `"1 millisecond"`.
    #[serde(with = "units::duration")]
    pub epoch_tick: Duration,
    /// Warm memory slots kept for reuse by the same component. Default `100`.
    pub max_unused_warm_slots: u32,
    /// Bytes of a freed linear memory kept resident for the next sandbox.
    /// Default `"0 MB"`.
    #[serde(with = "units::size")]
    pub linear_memory_keep_resident: ByteSize,
    /// Largest Wasm stack of one call; > 0. Default `"512 KB"`.
    #[serde(with = "units::size")]
    pub max_wasm_stack: ByteSize,
}

impl Default for EngineSectionConfig {
    fn default() -> Self {
        let e = EngineConfig::default();
        EngineSectionConfig {
            max_sandboxes: e.max_sandboxes,
            core_instances_per_sandbox: e.core_instances_per_sandbox,
            max_memory: ByteSize::from_mb(e.max_memory_mb),
            memory_reservation: ByteSize::from_bytes(e.memory_reservation),
            epoch_tick: e.epoch_tick,
            max_unused_warm_slots: e.max_unused_warm_slots,
            linear_memory_keep_resident: ByteSize::from_bytes(
                u64::try_from(e.linear_memory_keep_resident).unwrap_or(u64::MAX),
            ),
            max_wasm_stack: ByteSize::from_bytes(
                u64::try_from(e.max_wasm_stack).unwrap_or(u64::MAX),
            ),
        }
    }
}

impl EngineSectionConfig {
    /// The engine's configuration; `payload_max` (`limits.payload.max`) is
    /// the largest result an action may return.
    pub fn to_engine_config(&self, payload_max: ByteSize) -> EngineConfig {
        EngineConfig {
            max_sandboxes: self.max_sandboxes,
            core_instances_per_sandbox: self.core_instances_per_sandbox,
            max_memory_mb: self.max_memory.as_mb(),
            memory_reservation: self.memory_reservation.as_bytes(),
            epoch_tick: self.epoch_tick,
            max_unused_warm_slots: self.max_unused_warm_slots,
            linear_memory_keep_resident: self.linear_memory_keep_resident.as_usize(),
            max_wasm_stack: self.max_wasm_stack.as_usize(),
            max_result_bytes: payload_max.as_usize(),
        }
    }

    /// Counts and sizes > 0, `max-memory` whole MB and not below
    /// `max_action_memory` (`limits.memory.max`), or no action could reach
    /// its limit.
    pub fn validate(&self, max_action_memory: ByteSize) -> Result<(), ConfigError> {
        super::pool::positive_count(self.max_sandboxes, "engine.max-sandboxes")?;
        super::pool::positive_count(
            self.core_instances_per_sandbox,
            "engine.core-instances-per-sandbox",
        )?;
        super::pool::positive_duration(self.epoch_tick, "engine.epoch-tick")?;
        if !self.max_memory.is_whole_mb() || self.max_memory < max_action_memory {
            return Err(invalid(
                "engine.max-memory",
                format!(
                    "expected a whole number of MB, at least limits.memory.max ({max_action_memory}), got {}",
                    self.max_memory
                ),
            ));
        }
        if self.max_wasm_stack.as_bytes() == 0 {
            return Err(invalid(
                "engine.max-wasm-stack",
                "expected a size > 0, got 0 MB".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_map_back_to_the_engines_defaults() {
        let section = EngineSectionConfig::default();
        assert_eq!(section.max_memory.to_string(), "512 MB");
        assert_eq!(section.memory_reservation.to_string(), "4096 MB");
        assert_eq!(section.max_wasm_stack.to_string(), "512 KB");
        assert_eq!(units::format_duration(section.epoch_tick), "1 millisecond");
        assert_eq!(
            section.to_engine_config(ByteSize::from_mb(1)),
            EngineConfig::default()
        );
        assert!(section.validate(ByteSize::from_mb(512)).is_ok());
    }

    #[test]
    fn max_memory_below_the_action_limit_is_rejected() {
        let section = EngineSectionConfig {
            max_memory: ByteSize::from_mb(256),
            ..EngineSectionConfig::default()
        };
        let error = section
            .validate(ByteSize::from_mb(512))
            .map_err(|e| e.to_string());
        assert_eq!(
            error,
            Err("invalid value for 'engine.max-memory': expected a whole number of MB, at least limits.memory.max (512 MB), got 256 MB".to_string())
        );
    }
}
