//! Cluster mode's adapters: the pool's and the controller's ports over NATS
//! and etcd (docs/cluster.md). The `controller` and `invoker` processes that
//! wire them are the application's (`wasmwhisk::process`).

pub mod choose;
pub mod etcd;
pub mod nats;
pub mod scheduling;

use nats::{
    JetStreamQueue, JetStreamQueueConfig, MalformedCount, NatsBus, NatsError, NatsStore,
    NatsStoreConfig,
};
use wasmwhisk_core::config::Config;
use wasmwhisk_core::metrics::Metrics;

/// What both cluster processes open on NATS: the connection, the activation
/// queues (their malformed messages counted in `metrics`) and the shared
/// store.
pub async fn open_nats(
    config: &Config,
    metrics: &Metrics,
) -> Result<(NatsBus, JetStreamQueue, NatsStore), NatsError> {
    let bus = NatsBus::connect(&config.nats).await?;
    let mut queue_config = JetStreamQueueConfig::from_config(&config.nats);
    queue_config.malformed =
        MalformedCount::new(metrics.malformed_messages(&queue_config.subjects.all()));
    let queue = JetStreamQueue::open(&bus, queue_config).await?;
    let store = NatsStore::open(&bus, NatsStoreConfig::from_config(config)).await?;
    Ok((bus, queue, store))
}
