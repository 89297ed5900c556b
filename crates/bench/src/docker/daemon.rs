//! What the bench asks the Docker daemon besides what the backend does: the
//! daemon's version and storage driver for the report, and a container's
//! memory from the stats API (`docker stats`).
//!
//! A second bollard client, on the host and API version the backend agreed
//! on ([`Docker::api_version`]), so the backend's handle stays as the pool
//! needs it.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use bollard::ClientVersion;
use bollard::query_parameters::{RemoveImageOptions, StatsOptions};
use futures_util::StreamExt;

use super::footprint;
use wasmwhisk_docker::Docker;

/// Timeout of one request to the daemon, seconds.
const TIMEOUT_SECS: u64 = 60;

/// A client of the daemon the backend is connected to.
pub(crate) struct Daemon {
    client: bollard::Docker,
}

/// The daemon, for the report.
#[derive(Clone, Debug, Default)]
pub(crate) struct DaemonFacts {
    /// `20.10.24+dfsg1`.
    pub version: String,
    /// The API version in use, `1.41`.
    pub api: String,
    /// `overlay2`, `fuse-overlayfs`, ….
    pub storage_driver: String,
    /// `cgroupfs v1`, `systemd v2`, ….
    pub cgroup: String,
    /// The default OCI runtime, `runc`.
    pub runtime: String,
}

impl DaemonFacts {
    /// One line for the report.
    pub(crate) fn line(&self) -> String {
        format!(
            "Docker {} (API {}), storage driver {}, cgroup {}, runtime {}",
            self.version, self.api, self.storage_driver, self.cgroup, self.runtime
        )
    }
}

/// A container's memory as its cgroup counts it, bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CgroupMemory {
    /// `usage`: everything charged, page cache included.
    pub usage: u64,
    /// `usage` less inactive page cache: what `docker stats` shows.
    pub without_cache: u64,
}

impl Daemon {
    /// Connects to the backend's daemon with its API version.
    pub(crate) fn connect(docker: &Docker) -> Result<Daemon> {
        let host = docker
            .settings()
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let api = docker.api_version();
        let version = api
            .split_once('.')
            .and_then(|(major, minor)| {
                Some(ClientVersion {
                    major_version: major.parse().ok()?,
                    minor_version: minor.parse().ok()?,
                })
            })
            .ok_or_else(|| anyhow!("unreadable Docker API version {api:?}"))?;
        let client = if host.starts_with("unix://") {
            bollard::Docker::connect_with_unix(&host, TIMEOUT_SECS, &version)
        } else {
            bollard::Docker::connect_with_http(&host, TIMEOUT_SECS, &version)
        }
        .with_context(|| format!("connecting to the Docker daemon at {host}"))?;
        Ok(Daemon { client })
    }

    /// Version, storage driver and cgroup setup.
    pub(crate) async fn facts(&self) -> Result<DaemonFacts> {
        let info = self
            .client
            .info()
            .await
            .context("asking the Docker daemon for its info")?;
        let version = self
            .client
            .version()
            .await
            .context("asking the Docker daemon for its version")?;
        let api = self.client.client_version();
        Ok(DaemonFacts {
            version: version.version.or(info.server_version).unwrap_or_default(),
            api: format!("{}.{}", api.major_version, api.minor_version),
            storage_driver: info.driver.unwrap_or_default(),
            cgroup: format!(
                "{} v{}",
                info.cgroup_driver
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                info.cgroup_version
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            ),
            runtime: info.default_runtime.unwrap_or_default(),
        })
    }

    /// Removes the image `tag` (only that tag if others share the image).
    pub(crate) async fn remove_image(&self, tag: &str) -> Result<()> {
        self.client
            .remove_image(tag, None::<RemoveImageOptions>, None)
            .await
            .with_context(|| format!("removing the image {tag}"))?;
        Ok(())
    }

    /// Container `id`'s memory, from one stats reading (`one-shot`).
    pub(crate) async fn memory(&self, id: &str) -> Result<CgroupMemory> {
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let stats = self
            .client
            .stats(id, Some(options))
            .next()
            .await
            .context("the stats API answered nothing")?
            .context("the stats API failed")?;
        let memory = stats
            .memory_stats
            .context("the stats API gave no memory figures")?;
        let usage = memory
            .usage
            .context("the stats API gave no memory usage (is the memory cgroup enabled?)")?;
        let detail = memory.stats.unwrap_or_else(HashMap::new);
        Ok(CgroupMemory {
            usage,
            without_cache: footprint::usage_without_cache(usage, &detail),
        })
    }
}
