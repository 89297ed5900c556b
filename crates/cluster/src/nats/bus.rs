//! The connection to the NATS server, shared by everything that talks to it.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use futures_util::StreamExt;

use super::NatsError;
use wasmwhisk_core::config::NatsConfig;
use wasmwhisk_protocol::Subjects;

/// The longest pause between two reconnection attempts (async-nats's own
/// default backs off to 4 s; a restarted server is found within a second).
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How long the first connection may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to connect. `Default` is `nats://127.0.0.1:4222`, subjects under
/// `whisk.`, no client name.
#[derive(Clone, Debug)]
pub struct BusOptions {
    /// Server URL(s), comma-separated (`[nats] url`).
    pub url: String,
    /// The subjects of OpenWhisk's topics (prefix `whisk` by default).
    pub subjects: Subjects,
    /// The name the server shows for this connection (`invoker0`,
    /// `controller0`). Default none.
    pub name: Option<String>,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            url: NatsConfig::default().url,
            subjects: Subjects::default(),
            name: None,
        }
    }
}

impl From<&NatsConfig> for BusOptions {
    fn from(config: &NatsConfig) -> Self {
        BusOptions {
            url: config.url.clone(),
            ..BusOptions::default()
        }
    }
}

/// One connection to NATS: cheap to clone, shared by the messenger, the
/// consumers and the activation queue.
///
/// The first connection must succeed ([`NatsBus::connect`] fails with a
/// clear error when no server answers). After that the connection is kept
/// by async-nats: when the server goes away it reconnects for ever (backing
/// off to at most one attempt a second), restores every subscription, and
/// sends what was published meanwhile once it is back, as far as its buffer
/// holds. Connection changes are logged.
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: Client,
    subjects: Subjects,
}

impl NatsBus {
    /// Connects to `[nats] url`.
    pub async fn connect(config: &NatsConfig) -> Result<NatsBus, NatsError> {
        NatsBus::connect_with(BusOptions::from(config)).await
    }

    /// Connects with `options`.
    pub async fn connect_with(options: BusOptions) -> Result<NatsBus, NatsError> {
        let url = options.url.clone();
        let mut connect = ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(move |event| {
                let url = url.clone();
                async move { log_event(&url, event) }
            });
        if let Some(name) = &options.name {
            connect = connect.name(name);
        }
        let urls: Vec<&str> = options
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let client = connect
            .connect(urls.as_slice())
            .await
            .map_err(|e| NatsError::Connect {
                url: options.url.clone(),
                reason: e.to_string(),
            })?;
        tracing::info!(url = %options.url, "connected to NATS");
        Ok(NatsBus {
            client,
            subjects: options.subjects,
        })
    }

    /// The async-nats client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The subjects of OpenWhisk's topics.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Waits until the server has processed everything this connection sent
    /// so far: its publishes are routed and its subscriptions are in place,
    /// so a message another connection publishes from now on reaches them.
    /// (async-nats's own `flush` only writes the socket.) A round trip
    /// through a fresh inbox; fails after 5 s.
    pub async fn flush(&self) -> Result<(), NatsError> {
        let unavailable = |e: &dyn std::fmt::Display| NatsError::Unavailable(e.to_string());
        let inbox = self.client.new_inbox();
        let mut echo = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        self.client
            .publish(inbox, bytes::Bytes::new())
            .await
            .map_err(|e| unavailable(&e))?;
        match tokio::time::timeout(CONNECT_TIMEOUT, echo.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(unavailable(&"the connection closed")),
            Err(_) => Err(unavailable(&"the server did not answer")),
        }
    }
}

/// Backs off 0, 2, 4, … ms up to [`MAX_RECONNECT_DELAY`].
fn reconnect_delay(attempts: usize) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
    if attempts <= 1 {
        Duration::ZERO
    } else {
        Duration::from_millis(2u64.saturating_pow(exp)).min(MAX_RECONNECT_DELAY)
    }
}

fn log_event(url: &str, event: Event) {
    match event {
        Event::Connected => tracing::info!(url, "NATS connection restored"),
        Event::Disconnected => tracing::warn!(url, "NATS connection lost; reconnecting"),
        Event::SlowConsumer(sid) => {
            tracing::warn!(
                url,
                subscription = sid,
                "NATS dropped messages of a slow subscription"
            )
        }
        other => tracing::info!(url, event = %other, "NATS connection event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_to_a_second() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(2));
        assert_eq!(reconnect_delay(5), Duration::from_millis(16));
        assert_eq!(reconnect_delay(11), MAX_RECONNECT_DELAY);
        assert_eq!(reconnect_delay(usize::MAX), MAX_RECONNECT_DELAY);
    }
}
