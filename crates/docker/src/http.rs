//! The HTTP exchange with an action container: one `POST` of a JSON body,
//! the answer read up to the payload limit, all within the action's time
//! limit.
//!
//! Like OpenWhisk (docs/openwhisk.md §6) connections are not reused: each call opens
//! its own (a few tens of microseconds on the bridge, next to the
//! milliseconds a `/run` takes), so a paused or replaced container never
//! leaves a stale pooled connection behind, whatever keep-alive the proxy
//! does. `/init` retries a refused connection every 50 ms within its
//! timeout (the proxy may not be listening yet); `/run` does not retry.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::time::Instant;

use super::protocol::Reply;

/// How often `/init` retries a refused connection.
const CONNECT_RETRY: Duration = Duration::from_millis(50);

/// Why an exchange got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Nothing accepted the connection (refused, no route).
    Connect(String),
    /// No complete answer within the time limit.
    Timeout,
    /// The connection broke before a complete answer.
    Lost(String),
}

/// The HTTP client for action containers: no proxy, no pooled connections.
pub(crate) fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .build()
}

/// `POST {url}` with `body` within `timeout`; the answer's body is read up
/// to `max_bytes` (past that it is marked truncated).
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Reply, Failure> {
    match tokio::time::timeout(timeout, exchange(client, url, body, max_bytes)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout),
    }
}

/// [`post`], retrying a refused connection every 50 ms until `timeout`.
pub(crate) async fn post_retrying_connect(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Reply, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        match post(client, url, body.clone(), left, max_bytes).await {
            Err(Failure::Connect(_)) => {
                let pause = CONNECT_RETRY.min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

async fn exchange(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    max_bytes: usize,
) -> Result<Reply, Failure> {
    let mut response = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                Failure::Connect(error_chain(&e))
            } else {
                Failure::Lost(error_chain(&e))
            }
        })?;
    let status = response.status().as_u16();
    let announced = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok());
    let mut bytes = Vec::new();
    let mut truncated = announced.filter(|n| *n > max_bytes);
    while truncated.is_none() {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max_bytes - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(chunk.get(..room).unwrap_or_default());
                    truncated = Some(announced.unwrap_or(max_bytes + chunk.len() - room));
                } else {
                    bytes.extend_from_slice(&chunk);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(Failure::Lost(error_chain(&e))),
        }
    }
    if truncated.is_some() && bytes.is_empty() {
        // Announced too long: keep its beginning for the message.
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = max_bytes.saturating_sub(bytes.len()).min(64 * 1024);
            bytes.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            if bytes.len() >= max_bytes.min(64 * 1024) {
                break;
            }
        }
    }
    Ok(Reply {
        status,
        body: String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        truncated,
    })
}

/// An error with its causes, `a: b: c`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
