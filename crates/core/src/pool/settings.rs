//! The pool's settings (from the configuration) and its ports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::container::ContainerHost;
use super::ports::{ActionStore, ActivationStore, ClusterState, ExecutableAction, Messenger};
use super::prewarm::{DEFAULT_EXPIRATION_LIMIT, ReactiveSpec, StemCellSpec};
use super::queue::ActivationQueue;
use crate::config::Config;
use wasmwhisk_protocol::ActivationMessage;
use wasmwhisk_sandbox::action::ActionKind;
use wasmwhisk_sandbox::runtimes::Backend;
/// The pool's settings, from the configuration (docs/openwhisk.md §8.1, §2.2).
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// `user-memory`, MB.
    pub user_memory_mb: u64,
    /// `prewarm-promotion`.
    pub prewarm_promotion: bool,
    /// `memory-sync-interval`.
    pub memory_sync_interval: Duration,
    /// `batch-deletion-size`.
    pub batch_deletion_size: usize,
    /// `pause-grace`: a sandbox with no activation for this long pauses.
    pub pause_grace: Duration,
    /// `idle-container`: a paused sandbox lives this long before the keep
    /// decision.
    pub idle_container: Duration,
    /// `keeping-duration`: how long a kept sandbox lives on.
    pub keeping_duration: Duration,
    /// The longest a pull waits (OpenWhisk's scheduler: 1 s).
    pub poll_wait: Duration,
    /// Period of the disable round (OpenWhisk: 5 s).
    pub disable_retry: Duration,
    /// The stem cell configs of every runtime.
    pub stem_cells: Vec<StemCellSpec>,
    /// `prewarm-max-retry-limit`.
    pub max_retry_limit: u32,
    /// `prewarm-expiration-limit`.
    pub expiration_limit: usize,
    /// `prewarm-expiration-check-init-delay`.
    pub expiration_check_init_delay: Duration,
    /// `prewarm-expiration-check-interval`.
    pub expiration_check_interval: Duration,
    /// `prewarm-expiration-check-interval-variance`.
    pub expiration_check_variance: Duration,
    /// Pause between two health-test activations while unhealthy.
    pub health_test_interval: Duration,
    /// `prewarm-container-creation-config`: start at most `.0` stem cells
    /// every `.1`; `None` starts them at once.
    pub prewarm_throttle: Option<(usize, Duration)>,
    /// The image kinds (kind → image) the Docker fallback runs.
    pub images: BTreeMap<String, String>,
}

impl PoolSettings {
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> PoolSettings {
        let pool = &config.container_pool;
        let timeouts = &config.container_proxy.timeouts;
        let mut stem_cells = Vec::new();
        let image_runtimes = config.runtimes.image_runtimes();
        let wasm_kinds = [ActionKind::Js, ActionKind::Wasm]
            .map(|kind| (kind.as_str().to_string(), config.runtimes.stem_cells(kind)));
        let image_kinds = image_runtimes
            .iter()
            .map(|(kind, runtime)| (kind.clone(), runtime.stem_cells.as_slice()));
        for (kind, cells) in wasm_kinds.into_iter().chain(image_kinds) {
            for cell in cells {
                stem_cells.push(StemCellSpec {
                    kind: kind.clone(),
                    memory_mb: cell.memory.as_mb(),
                    initial_count: cell.initial_count,
                    reactive: cell.reactive.as_ref().map(|r| ReactiveSpec {
                        min_count: r.min_count,
                        max_count: r.max_count,
                        ttl: r.ttl,
                        threshold: r.threshold,
                        increment: r.increment,
                    }),
                });
            }
        }
        let images = image_runtimes
            .into_iter()
            .map(|(kind, runtime)| (kind, runtime.image))
            .collect();
        PoolSettings {
            user_memory_mb: pool.user_memory.as_mb(),
            prewarm_promotion: pool.prewarm_promotion,
            memory_sync_interval: pool.memory_sync_interval,
            batch_deletion_size: usize::try_from(pool.batch_deletion_size).unwrap_or(usize::MAX),
            pause_grace: timeouts.pause_grace,
            idle_container: timeouts.idle_container,
            keeping_duration: timeouts.keeping_duration,
            poll_wait: Duration::from_secs(1),
            disable_retry: Duration::from_secs(5),
            stem_cells,
            max_retry_limit: pool.prewarm_max_retry_limit,
            expiration_limit: usize::try_from(pool.prewarm_expiration_limit)
                .unwrap_or(DEFAULT_EXPIRATION_LIMIT),
            expiration_check_init_delay: pool.prewarm_expiration_check_init_delay,
            expiration_check_interval: pool.prewarm_expiration_check_interval,
            expiration_check_variance: pool.prewarm_expiration_check_interval_variance,
            health_test_interval: Duration::from_millis(100),
            prewarm_throttle: pool.prewarm_container_creation_config.as_ref().map(|c| {
                (
                    usize::try_from(c.max_concurrent)
                        .unwrap_or(usize::MAX)
                        .max(1),
                    c.creation_delay,
                )
            }),
            images,
        }
    }

    /// What runs `action`, if anything can.
    pub fn backend(&self, action: &ExecutableAction) -> Option<Backend> {
        match &action.meta.exec {
            wasmwhisk_protocol::ExecMetaData::Code { kind, image, .. } => {
                wasmwhisk_sandbox::runtimes::backend(kind, image.as_deref(), &self.images)
            }
            wasmwhisk_protocol::ExecMetaData::Sequence { .. } => None,
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings::from_config(&Config::default())
    }
}

/// The pool's ports (see [`super::ports`]).
#[derive(Clone)]
pub struct PoolPorts {
    /// Where actions are loaded from.
    pub actions: Arc<dyn ActionStore>,
    /// Where activation records go.
    pub activations: Arc<dyn ActivationStore>,
    /// Where sandboxes pull activations from.
    pub queue: Arc<dyn ActivationQueue<ActivationMessage>>,
    /// Where acks go.
    pub messenger: Arc<dyn Messenger>,
    /// Where health and container keys go.
    pub cluster: Arc<dyn ClusterState>,
    /// Where containers of image kinds come from (the Docker fallback;
    /// [`NoContainers`](super::container::NoContainers) when disabled).
    pub containers: Arc<dyn ContainerHost>,
}
