//! Cluster mode's adapters: the pool's ports over NATS and etcd.

pub mod etcd;
pub mod nats;
