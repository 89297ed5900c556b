//! What `wasmwhisk bench cluster` measures of NATS itself, to explain the
//! cluster's rows rather than guess: the messages nats-server carries per
//! invoke (its `/varz` counters around the sequential cluster invokes),
//! and the floor of the two kinds of hop an invoke is made of, timed from
//! the bench through the same server — a core NATS request → reply, and a
//! JetStream publish → its ack on a file-stored stream.

use std::time::Instant;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use super::cluster_servers;
use super::stats::Samples;

/// The payload of each timed hop: about an activation message's size.
const PAYLOAD: usize = 1024;

/// nats-server's message counters (`/varz`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct NatsCounts {
    /// Messages clients sent to the server (`in_msgs`).
    pub(super) in_msgs: u64,
    /// Messages the server delivered to clients (`out_msgs`).
    pub(super) out_msgs: u64,
    /// Their bytes in.
    pub(super) in_bytes: u64,
    /// Their bytes out.
    pub(super) out_bytes: u64,
}

impl NatsCounts {
    /// The counters of the server whose monitoring port is `monitor`.
    pub(super) fn read(monitor: u16) -> Result<NatsCounts> {
        let response = cluster_servers::get(monitor, "/varz")?;
        let body = response
            .split_once("\r\n\r\n")
            .map_or(response.as_str(), |(_, body)| body);
        let varz: Value = serde_json::from_str(body).context("nats-server's /varz is not JSON")?;
        let count = |name: &str| varz.get(name).and_then(Value::as_u64).unwrap_or(0);
        Ok(NatsCounts {
            in_msgs: count("in_msgs"),
            out_msgs: count("out_msgs"),
            in_bytes: count("in_bytes"),
            out_bytes: count("out_bytes"),
        })
    }

    /// What was counted from `before` to `self`.
    pub(super) fn since(&self, before: &NatsCounts) -> NatsCounts {
        NatsCounts {
            in_msgs: self.in_msgs.saturating_sub(before.in_msgs),
            out_msgs: self.out_msgs.saturating_sub(before.out_msgs),
            in_bytes: self.in_bytes.saturating_sub(before.in_bytes),
            out_bytes: self.out_bytes.saturating_sub(before.out_bytes),
        }
    }

    /// The sum of both.
    pub(super) fn add(&mut self, other: &NatsCounts) {
        self.in_msgs += other.in_msgs;
        self.out_msgs += other.out_msgs;
        self.in_bytes += other.in_bytes;
        self.out_bytes += other.out_bytes;
    }
}

/// The floor of one hop through nats-server, timed from the bench.
pub(super) struct Hops {
    /// Core NATS: a request to a subscriber of the bench's own, and its
    /// reply.
    pub(super) request_reply: Samples,
    /// JetStream: a publish to a file-stored work-queue stream, until its
    /// ack.
    pub(super) publish_ack: Samples,
}

/// Times `samples` of each hop (after `warm_up` untimed) through the server
/// at `url`, on the calling thread's runtime.
pub(super) async fn hops(url: &str, warm_up: usize, samples: usize) -> Result<Hops> {
    let client = async_nats::connect(url)
        .await
        .context("connecting to nats-server")?;
    let payload = Bytes::from(vec![b'x'; PAYLOAD]);

    let mut echo = client
        .subscribe("bench.echo")
        .await
        .context("subscribing")?;
    let responder = client.clone();
    let echoing = tokio::spawn(async move {
        while let Some(message) = echo.next().await {
            if let Some(reply) = message.reply {
                let _ = responder.publish(reply, message.payload).await;
            }
        }
    });
    let mut request_reply = Vec::with_capacity(samples);
    for i in 0..warm_up + samples {
        let t = Instant::now();
        client
            .request("bench.echo", payload.clone())
            .await
            .context("a NATS request")?;
        if i >= warm_up {
            request_reply.push(t.elapsed());
        }
    }
    echoing.abort();

    let js = jetstream::new(client);
    let name = "bench-hops";
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec!["bench.hops".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("creating a JetStream stream")?;
    let mut publish_ack = Vec::with_capacity(samples);
    for i in 0..warm_up + samples {
        let t = Instant::now();
        js.publish("bench.hops", payload.clone())
            .await
            .context("a JetStream publish")?
            .await
            .context("a JetStream publish's ack")?;
        if i >= warm_up {
            publish_ack.push(t.elapsed());
        }
    }
    js.delete_stream(name)
        .await
        .context("deleting the JetStream stream")?;
    Ok(Hops {
        request_reply: Samples::new(request_reply),
        publish_ack: Samples::new(publish_ack),
    })
}
