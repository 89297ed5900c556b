//! Cluster mode's adapters and processes: the pool's and the controller's
//! ports over NATS and etcd, and the `controller` and `invoker` commands
//! (docs/cluster.md).

pub mod choose;
pub mod controller;
pub mod etcd;
pub mod invoker;
pub mod nats;
pub mod scheduling;
