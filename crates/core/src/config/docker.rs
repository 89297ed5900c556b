//! `[docker]`: the Docker fallback backend (docs/openwhisk.md §6, docs/docker.md).
//!
//! Actions whose kind has no Wasm runtime but an image (`blackbox`, and the
//! kinds of `[runtimes.images]`) run in Docker containers through OpenWhisk's
//! `/init`/`/run` protocol. Wasm kinds never need Docker: when the daemon is
//! not there, only image kinds fail, with a clear error.
//!
//! ```toml
//! [docker]
//! enabled = true
//! host = ""            # "": $DOCKER_HOST, else unix:///var/run/docker.sock
//! network = "bridge"
//! owner = ""           # "": invoker{N} in a cluster, standalone-<hash of the data dir> standalone
//! api-host = ""        # __OW_API_HOST of every container; "": the invoker's own API
//! ```

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// `[docker]`: how to reach the Docker engine and label its containers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DockerConfig {
    /// Use Docker for image kinds. `false`: those kinds fail at once with a
    /// clear error. Default true.
    pub enabled: bool,
    /// The daemon: `unix:///path` or `tcp://host:port`. Empty: `$DOCKER_HOST`,
    /// else the local socket.
    pub host: String,
    /// The network containers join; the invoker reaches each at its address
    /// there, port 8080. Default `bridge`.
    pub network: String,
    /// The `wasmwhisk.owner` label of this invoker's containers: it removes
    /// every container so labelled at start (leftovers of a crash) and at
    /// shutdown. Empty: `invoker{N}`, or `standalone-<hash of the data dir>`
    /// in standalone mode.
    pub owner: String,
    /// `__OW_API_HOST` of every container. Empty: the invoker's API address.
    pub api_host: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            enabled: true,
            host: String::new(),
            network: "bridge".to_string(),
            owner: String::new(),
            api_host: String::new(),
        }
    }
}

impl DockerConfig {
    /// Checks the host's scheme and the label's characters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let host = self.host.trim();
        if !host.is_empty()
            && !["unix://", "tcp://"]
                .iter()
                .any(|scheme| host.starts_with(scheme))
        {
            return Err(invalid(
                "docker.host",
                format!("expected unix:///path/to/docker.sock or tcp://host:port, got {host:?}"),
            ));
        }
        if self.network.trim().is_empty() {
            return Err(invalid(
                "docker.network",
                "expected a network name, got an empty string".to_string(),
            ));
        }
        if !self
            .owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(
                "docker.owner",
                format!(
                    "expected letters, digits, '-', '_' or '.' (it is part of container names), got {:?}",
                    self.owner
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let config = DockerConfig::default();
        assert!(config.enabled);
        assert!(config.validate().is_ok());
        let bad_host = DockerConfig {
            host: "/var/run/docker.sock".into(),
            ..DockerConfig::default()
        };
        assert!(bad_host.validate().is_err());
        let bad_owner = DockerConfig {
            owner: "a b".into(),
            ..DockerConfig::default()
        };
        assert!(bad_owner.validate().is_err());
        let ok = DockerConfig {
            host: "unix:///run/docker.sock".into(),
            owner: "standalone-1a2b".into(),
            ..DockerConfig::default()
        };
        assert!(ok.validate().is_ok());
    }
}
