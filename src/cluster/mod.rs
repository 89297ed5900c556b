//! Cluster mode's adapters and processes: the pool's and the controller's
//! ports over NATS and etcd, and the `controller` and `invoker` commands
//! (docs/cluster.md).

pub mod choose;
pub mod controller;
pub mod etcd;
pub mod invoker;
pub mod nats;
pub mod scheduling;

use crate::config::Config;
use crate::metrics::Metrics;
use nats::{
    JetStreamQueue, JetStreamQueueConfig, MalformedCount, NatsBus, NatsError, NatsStore,
    NatsStoreConfig,
};

/// What both cluster processes open on NATS: the connection, the activation
/// queues (their malformed messages counted in `metrics`) and the shared
/// store.
pub(crate) async fn open_nats(
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
