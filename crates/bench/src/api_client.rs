//! The bench's HTTP client of the REST API: `reqwest` (async, keep-alive)
//! for deploying, deleting and invoking actions and for the admin routes —
//! a client users would write — with the request of an invoke built once
//! so the timed loop only sends it.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

/// The parameters of every invoke.
pub(super) const PARAMS: &str = r#"{"name":"bench"}"#;
/// What hello answers to [`PARAMS`] (Rust and JS alike).
pub(super) const GREETING: &str = "Hello, bench!";

/// The code of an action to deploy.
#[derive(Clone, Copy)]
pub(super) enum Code<'a> {
    /// A component, kind `wasm`.
    Wasm(&'a [u8]),
    /// JavaScript source, kind `js`.
    Js(&'a str),
}

/// A keep-alive client of one server, as the guest namespace.
#[derive(Clone)]
pub(super) struct Api {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    admin: HeaderValue,
    credentials: (String, String),
}

impl Api {
    /// A client of the server at `base` (`http://127.0.0.1:{port}`), with
    /// the guest key `uuid:key` and the admin's `user:password`; its own
    /// connection pool (one connection per concurrent request).
    pub(super) fn new(base: &str, auth: &str, admin: &str) -> Result<Api> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(600))
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth: basic(auth)?,
            admin: basic(admin)?,
            credentials: (auth.to_string(), admin.to_string()),
        })
    }

    /// The same server and keys on a connection pool of its own.
    pub(super) fn fresh(&self) -> Result<Api> {
        Api::new(&self.base, &self.credentials.0, &self.credentials.1)
    }

    /// `http://127.0.0.1:{port}`.
    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// The `Authorization` header of the guest key.
    pub(super) fn auth_header(&self) -> &HeaderValue {
        &self.auth
    }

    fn action_url(&self, name: &str) -> String {
        format!("{}/api/v1/namespaces/_/actions/{name}", self.base)
    }

    /// The URL of a blocking invoke of `name` answering with the result only.
    pub(super) fn invoke_url(&self, name: &str) -> String {
        format!("{}?blocking=true&result=true", self.action_url(name))
    }

    /// `GET /ping` answers `200`.
    pub(super) async fn ping(&self) -> Result<()> {
        let response = self
            .http
            .get(format!("{}/ping", self.base))
            .send()
            .await
            .context("GET /ping")?;
        ensure!(
            response.status().is_success(),
            "/ping: {}",
            response.status()
        );
        Ok(())
    }

    /// Creates or replaces action `name`.
    pub(super) async fn put_action(
        &self,
        name: &str,
        code: Code<'_>,
        memory_mb: u64,
    ) -> Result<()> {
        let exec = match code {
            Code::Wasm(bytes) => json!({
                "kind": "wasm",
                "binary": true,
                "code": base64::engine::general_purpose::STANDARD.encode(bytes),
            }),
            Code::Js(source) => json!({"kind": "js", "code": source}),
        };
        let body = json!({"exec": exec, "limits": {"memory": memory_mb, "timeout": 60_000}});
        let response = self
            .http
            .put(format!("{}?overwrite=true", self.action_url(name)))
            .header(AUTHORIZATION, self.auth.clone())
            .json(&body)
            .send()
            .await
            .with_context(|| format!("PUT action {name}"))?;
        answer(response, &format!("PUT action {name}")).await?;
        Ok(())
    }

    /// Deletes action `name`.
    pub(super) async fn delete_action(&self, name: &str) -> Result<()> {
        let response = self
            .http
            .delete(self.action_url(name))
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
            .with_context(|| format!("DELETE action {name}"))?;
        answer(response, &format!("DELETE action {name}")).await?;
        Ok(())
    }

    /// One blocking `result=true` invoke through `url` (from
    /// [`Api::invoke_url`]); fails unless it answers 200. The body is read
    /// (the connection is reused only then) but not parsed.
    pub(super) async fn invoke(&self, url: &str) -> Result<bytes::Bytes> {
        let response = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(PARAMS)
            .send()
            .await
            .context("invoke")?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .context("reading an invoke's answer")?;
        if status != reqwest::StatusCode::OK {
            bail!("invoke: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// Invokes once and checks the greeting.
    pub(super) async fn invoke_checked(&self, name: &str) -> Result<()> {
        let body = self.invoke(&self.invoke_url(name)).await?;
        check_greeting(&body)
    }

    /// `GET /pool` (admin): ready stem cells, and sandboxes given to actions
    /// (busy + paused + in progress).
    pub(super) async fn pool(&self) -> Result<PoolCounts> {
        let response = self
            .http
            .get(format!("{}/pool", self.base))
            .header(AUTHORIZATION, self.admin.clone())
            .send()
            .await
            .context("GET /pool")?;
        let state = answer(response, "GET /pool").await?;
        let count = |path: &str| state.pointer(path).and_then(Value::as_u64).unwrap_or(0);
        Ok(PoolCounts {
            prewarmed: count("/prewarmedPool/total"),
            given: count("/busyPool/total")
                + count("/pausedPool/total")
                + count("/inProgressCount"),
        })
    }
}

/// Sandboxes of the pool, from `GET /pool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PoolCounts {
    /// Ready stem cells.
    pub(super) prewarmed: u64,
    /// Busy, paused and in-progress sandboxes.
    pub(super) given: u64,
}

/// Fails unless `body` is hello's answer to [`PARAMS`].
pub(super) fn check_greeting(body: &[u8]) -> Result<()> {
    let value: Value = serde_json::from_slice(body).context("the result is not JSON")?;
    ensure!(
        value.get("greeting").and_then(Value::as_str) == Some(GREETING),
        "unexpected result: {value}"
    );
    Ok(())
}

/// The JSON body of a 2xx answer; the API's error otherwise.
async fn answer(response: reqwest::Response, what: &str) -> Result<Value> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("{what}: reading"))?;
    if !status.is_success() {
        bail!("{what}: {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `Basic base64(credentials)`.
pub(super) fn basic(credentials: &str) -> Result<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    HeaderValue::from_str(&format!("Basic {encoded}")).context("credentials unfit for a header")
}
