//! Configuration: one TOML file with OpenWhisk's names and defaults.
//!
//! # Why OpenWhisk's names
//! wasmwhisk mirrors OpenWhisk's invoker, so an operator who knows
//! `whisk.container-pool.user-memory` or a `runtimes.json` stem cell should
//! find the same knob under the same name, with the same default and the same
//! checks: `[container-pool]` is `whisk.container-pool`,
//! `[container-proxy.timeouts]` is `whisk.container-proxy.timeouts`,
//! `[limits.memory]` is `whisk.memory`, `[runtimes.js] stemCells` is the
//! manifest's `stemCells` (camelCase there, as in `runtimes.json`; kebab-case
//! everywhere else, as in HOCON). Durations and sizes are written the way
//! HOCON writes them (`"10 minutes"`, `"256 MB"`; see [`units`]).
//!
//! Unknown keys are an error naming the key, never silently ignored: a typo
//! such as `user-memroy` would otherwise leave the default in force unnoticed.
//!
//! # Where a value comes from
//! Later sources override earlier ones, key by key:
//! 1. the defaults ([`Config::default`], OpenWhisk's);
//! 2. the TOML file named by `--config FILE`, else by `$WASMWHISK_CONFIG`
//!    (no file is read implicitly);
//! 3. environment variables `WASMWHISK_<TABLE>__<KEY>`: the TOML table and
//!    the key in upper case, `-` and `.` written `_`, table and key joined by
//!    a double underscore — `WASMWHISK_CONTAINER_POOL__USER_MEMORY="2048 MB"`
//!    sets `[container-pool] user-memory`,
//!    `WASMWHISK_CONTAINER_PROXY_TIMEOUTS__PAUSE_GRACE` sets
//!    `[container-proxy.timeouts] pause-grace`. Lists are comma-separated
//!    (`WASMWHISK_INVOKER__TAGS=gpu,edge`); `stemCells` takes a TOML inline
//!    array. Then the variables of the common flags (docs/architecture.md#modes):
//!    `WASMWHISK_DATA_DIR`, `WASMWHISK_PORT`, `WASMWHISK_NATS`,
//!    `WASMWHISK_ETCD` (comma-separated), `WASMWHISK_ID`;
//! 4. the flags `--data-dir`, `--port`, `--nats`, `--etcd`, `--id` ([`Flags`]).
//!
//! An unknown `WASMWHISK_<TABLE>__<KEY>` variable is an error like an unknown
//! key in the file; other `WASMWHISK_*` variables without `__` are not ours to
//! judge and are left alone. Errors say which key, where its value came from,
//! and what was expected.
//!
//! The whole configuration is checked once loaded ([`Config::validate`]), so
//! the rest of the program can rely on it.

mod cluster;
mod controller;
mod docker;
mod engine;
mod http;
pub mod layout;
mod limits;
mod load;
mod pool;
mod runtimes;
pub mod units;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use cluster::{EtcdConfig, InvokerConfig, MAX_INSTANCE, NatsConfig};
pub use controller::{ControllerConfig, StoreConfig};
pub use docker::DockerConfig;
pub use engine::EngineSectionConfig;
pub use http::HttpConfig;
pub use limits::{
    ConcurrencyLimitConfig, LimitError, LimitsConfig, LogLimitConfig, MemoryLimitConfig,
    PayloadConfig, RequestedLimits, TimeLimitConfig,
};
pub use load::{ENV_PREFIX, Flags};
pub use pool::{
    ContainerPoolConfig, ContainerProxyConfig, ContainerProxyTimeoutsConfig,
    PrewarmContainerCreationConfig,
};
pub use runtimes::{
    ImageRuntimeConfig, ReactiveConfig, RuntimeConfig, RuntimesConfig, StemCellConfig,
};
pub use units::{ByteSize, UnitError};

use wasmwhisk_sandbox::engine::EngineConfig;

/// The whole configuration of a wasmwhisk process. Every table is optional
/// in the file; a missing key keeps its default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `[invoker]`: instance id, tags, dedicated namespaces, port, data dir.
    pub invoker: InvokerConfig,
    /// `[nats]`: the message bus.
    pub nats: NatsConfig,
    /// `[etcd]`: the cluster state store and lease.
    pub etcd: EtcdConfig,
    /// `[container-pool]`: memory budget and prewarm policy.
    pub container_pool: ContainerPoolConfig,
    /// `[container-proxy.timeouts]`: idle sandbox lifetimes.
    pub container_proxy: ContainerProxyConfig,
    /// `[limits]`: action limit ranges and defaults.
    pub limits: LimitsConfig,
    /// `[engine]`: Wasmtime knobs.
    pub engine: EngineSectionConfig,
    /// `[runtimes]`: stem cells per kind.
    pub runtimes: RuntimesConfig,
    /// `[controller]`: per-action queues and blocking invokes.
    pub controller: ControllerConfig,
    /// `[store]`: the embedded database's retention.
    pub store: StoreConfig,
    /// `[docker]`: the Docker fallback for image kinds.
    pub docker: DockerConfig,
    /// `[http]`: timeouts and the connection cap of the HTTP servers.
    pub http: HttpConfig,
}

impl Config {
    /// Checks every table, then the rules that span tables.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.invoker.validate()?;
        self.nats.validate()?;
        self.etcd.validate()?;
        self.container_pool.validate()?;
        self.container_proxy.timeouts.validate()?;
        self.limits.validate()?;
        self.engine.validate(self.limits.memory.max)?;
        self.controller.validate()?;
        self.store.validate()?;
        self.docker.validate()?;
        self.http.validate()?;
        self.runtimes.validate()
    }

    /// The engine's configuration: `[engine]`, with `limits.payload.max` as
    /// the largest result.
    pub fn to_engine_config(&self) -> EngineConfig {
        self.engine.to_engine_config(self.limits.payload.max)
    }

    /// Docker `--cpu-shares` of a sandbox of `memory`
    /// ([`ContainerPoolConfig::cpu_share`]).
    pub fn cpu_share(&self, memory: ByteSize) -> u64 {
        self.container_pool.cpu_share(memory)
    }

    /// Docker `--cpus` of a sandbox of `memory`, if `user-cpus` is set
    /// ([`ContainerPoolConfig::cpu_limit`]).
    pub fn cpu_limit(&self, memory: ByteSize) -> Option<f64> {
        self.container_pool.cpu_limit(memory)
    }

    /// The configuration as TOML, every key written out in canonical form;
    /// reading it back gives the same configuration.
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Print(e.to_string()))
    }
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// A default, or not known.
    #[default]
    Unknown,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag (its long name).
    Flag(&'static str),
}

impl fmt::Display for Origin {
    /// `""`, `" in FILE"`, `" (from VARIABLE)"` or `" (from --flag)"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Unknown => Ok(()),
            Origin::File(path) => write!(f, " in {}", path.display()),
            Origin::Env(var) => write!(f, " (from {var})"),
            Origin::Flag(flag) => write!(f, " (from --{flag})"),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading configuration file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("configuration file {} is not valid TOML", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and why, with the offending line.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A key (or `WASMWHISK_<TABLE>__<KEY>` variable) that is not ours.
    #[error("unknown configuration key '{key}'{origin}")]
    UnknownKey {
        /// Dotted path, e.g. `container-pool.user-memroy`.
        key: String,
        /// Where it was written.
        origin: Origin,
    },
    /// A value of the wrong type or outside its allowed range.
    #[error("invalid value for '{key}'{origin}: {message}")]
    InvalidValue {
        /// Dotted path, e.g. `container-pool.batch-deletion-size`.
        key: String,
        /// Where the value came from.
        origin: Origin,
        /// What was expected, and what was found.
        message: String,
    },
    /// The configuration could not be written as TOML.
    #[error("printing the configuration: {0}")]
    Print(String),
}

/// An [`ConfigError::InvalidValue`] whose origin the loader fills in.
pub(crate) fn invalid(key: impl Into<String>, message: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        origin: Origin::Unknown,
        message,
    }
}
