//! The processes: `standalone` (everything in one process, no servers),
//! and a cluster's `controller` and `invoker`. Each wires the core to its
//! adapters and serves until SIGINT or SIGTERM.

#[cfg(feature = "cluster")]
pub mod controller;
#[cfg(feature = "cluster")]
pub mod invoker;
pub mod standalone;

use std::sync::Arc;

use crate::config::Config;
use crate::pool::container::ContainerHost;

/// The pool's containers of image kinds: Docker with `[docker]`'s settings
/// (`owner` replacing the default owner label), or none when disabled or
/// built without the `docker` feature.
pub fn containers(config: &Config, owner: Option<String>) -> Arc<dyn ContainerHost> {
    #[cfg(feature = "docker")]
    if config.docker.enabled {
        let mut settings = wasmwhisk_docker::docker_settings(config);
        if let Some(owner) = owner {
            settings.owner = owner;
        }
        return wasmwhisk_docker::DockerPort::new(Some(settings));
    }
    #[cfg(not(feature = "docker"))]
    if config.docker.enabled {
        let _ = owner;
        return Arc::new(crate::pool::container::NoContainers::because(
            "this wasmwhisk was built without the Docker backend (the `docker` feature), so actions of image kinds cannot run",
        ));
    }
    Arc::new(crate::pool::container::NoContainers::default())
}
