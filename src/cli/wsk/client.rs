//! The HTTP side of the client: one keep-alive `reqwest` client, Basic auth
//! with the resolved key, and OpenWhisk's error bodies turned into errors
//! that print as the API's message.
//!
//! A request fails in one of three ways, kept apart because the user fixes
//! each differently: the server is not there ([`RequestError::Unreachable`]:
//! start it), it refused ([`RequestError::Api`]: its `error` and `code`), or
//! the exchange broke ([`RequestError::Transport`]). Callers that must look
//! at a non-2xx answer themselves (a blocking invoke's 502 carries the
//! activation) get the raw [`Answer`].

use std::io::{IsTerminal, Read};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Url;
use reqwest::blocking::Body;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::props::Target;

/// The header OpenWhisk puts on every answer that carries an activation.
pub const ACTIVATION_ID_HEADER: &str = "x-openwhisk-activation-id";

/// Why a request did not get a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Nothing listens at the API host.
    #[error(
        "the server at {apihost} is not reachable ({reason}); is `wasmwhisk standalone` running?"
    )]
    Unreachable {
        /// The API host.
        apihost: String,
        /// The connection error.
        reason: String,
    },
    /// The API answered with an error status.
    #[error("{message} ({})", match code { Some(code) => format!("code {code}"), None => format!("HTTP {status}") })]
    Api {
        /// The HTTP status.
        status: u16,
        /// The body's `error`, else the body's text, else the status's reason.
        message: String,
        /// The body's `code` (the transaction id).
        code: Option<String>,
    },
    /// The request or the answer broke.
    #[error("the request to {url} failed: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl RequestError {
    /// A hint to print after the error, when there is an obvious fix.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RequestError::Api { status: 401, .. } => {
                Some("check the key: --auth, WASMWHISK_AUTH, or the props file")
            }
            _ => None,
        }
    }
}

/// An answer of any status.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `x-openwhisk-activation-id` header.
    pub activation_id: Option<String>,
    /// The body as JSON (`null` when empty, a string when not JSON).
    pub body: Value,
}

impl Answer {
    /// The body of a 2xx answer, else the API's error.
    pub fn into_ok(self) -> Result<Value, RequestError> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(self.into_error())
        }
    }

    /// The answer as the API's error: `{"error", "code"}`, or whatever the
    /// body says.
    pub fn into_error(self) -> RequestError {
        let code = self.body.get("code").and_then(value_text);
        let message = match self.body.get("error").and_then(value_text) {
            Some(message) => message,
            None => match &self.body {
                Value::String(text) if !text.trim().is_empty() => text.trim().to_string(),
                Value::Null => reqwest::StatusCode::from_u16(self.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_string(),
                other => other.to_string(),
            },
        };
        RequestError::Api {
            status: self.status,
            message,
            code,
        }
    }
}

/// A string as itself, a number or other JSON as its text.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// What a request carries.
#[derive(Debug)]
pub enum Payload {
    /// No body.
    Empty,
    /// A JSON body.
    Json(Value),
    /// A large JSON body (an action's code), sent with a progress indicator
    /// labelled `label` when stderr is a terminal.
    Upload {
        /// The serialized body.
        json: Vec<u8>,
        /// What is uploaded, e.g. `hello.wasm (1.2 MiB)`.
        label: String,
    },
}

/// The API client: one connection pool, one key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    target: Target,
}

impl Client {
    /// A client of `target`. No request timeout: a blocking invoke waits as
    /// long as the server lets it, and compiling a large component at create
    /// takes its time; connecting gives up after 10 s.
    pub fn new(target: Target) -> Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("wasmwhisk-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(None)
            .build()
            .context("building the HTTP client")?;
        Ok(Client { http, target })
    }

    /// `{apihost}/api/v1/namespaces/{namespace}/{segments…}?{query}`, each
    /// segment percent-encoded.
    pub fn url(&self, namespace: &str, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.target.apihost.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "namespaces", namespace])
                .extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request and reads its answer, whatever its status.
    pub fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        payload: Payload,
    ) -> Result<Answer, RequestError> {
        let url_text = url.to_string();
        let request = self
            .http
            .request(method, url)
            .basic_auth(&self.target.uuid, Some(&self.target.key));
        let mut progress = None;
        let request = match payload {
            Payload::Empty => request,
            Payload::Json(value) => request.json(&value),
            Payload::Upload { json, label } => {
                let len = json.len() as u64;
                let reader = std::io::Cursor::new(json);
                let body = if std::io::stderr().is_terminal() {
                    let bar = upload_bar(len, &label);
                    progress = Some(bar.clone());
                    Body::sized(
                        UploadProgress {
                            inner: reader,
                            bar,
                            label,
                            sent: 0,
                            len,
                        },
                        len,
                    )
                } else {
                    Body::sized(reader, len)
                };
                request.header(CONTENT_TYPE, "application/json").body(body)
            }
        };
        let result = request.send();
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        let response = result.map_err(|e| self.failure(&url_text, &e))?;
        let status = response.status().as_u16();
        let activation_id = response
            .headers()
            .get(ACTIVATION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().map_err(|e| self.failure(&url_text, &e))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer {
            status,
            activation_id,
            body,
        })
    }

    /// Sends and insists on a 2xx answer.
    pub fn call(
        &self,
        method: reqwest::Method,
        url: Url,
        payload: Payload,
    ) -> Result<Value, RequestError> {
        self.send(method, url, payload)?.into_ok()
    }

    fn failure(&self, url: &str, error: &reqwest::Error) -> RequestError {
        if error.is_connect() {
            RequestError::Unreachable {
                apihost: self
                    .target
                    .apihost
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
                reason: root_cause(error),
            }
        } else {
            RequestError::Transport {
                url: url.to_string(),
                reason: root_cause(error),
            }
        }
    }
}

/// The innermost cause's message ("Connection refused (os error 111)"),
/// more useful than reqwest's outer "error sending request".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Bytes shown the way the progress indicator and messages show them.
pub fn human_size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

fn upload_bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{spinner} uploading {msg} {percent}%") {
        bar.set_style(style);
    }
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// The body's reader: advances the bar, and once every byte is sent says
/// that the server is compiling (the answer comes when it is done). The
/// client reads exactly the body's length, never up to an end of file, so
/// the switch is made on the count.
struct UploadProgress<R> {
    inner: R,
    bar: ProgressBar,
    label: String,
    /// Bytes read so far.
    sent: u64,
    /// The body's length.
    len: u64,
}

impl<R: Read> Read for UploadProgress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let before = self.sent;
        self.sent = self.sent.saturating_add(n as u64);
        self.bar.inc(n as u64);
        if before < self.len && self.sent >= self.len {
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                self.bar.set_style(style);
            }
            self.bar.set_message(format!(
                "uploaded {}; the server is compiling it",
                self.label
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, body: Value) -> Answer {
        Answer {
            status,
            activation_id: None,
            body,
        }
    }

    #[test]
    fn api_errors_print_openwhisks_message_and_code() {
        let e = answer(
            404,
            json!({"error": "The requested resource does not exist.", "code": "abc"}),
        )
        .into_ok()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "The requested resource does not exist. (code abc)"
        );
        assert_eq!(
            answer(502, json!("Bad Gateway\n")).into_error().to_string(),
            "Bad Gateway (HTTP 502)"
        );
        assert_eq!(
            answer(503, Value::Null).into_error().to_string(),
            "Service Unavailable (HTTP 503)"
        );
        assert!(
            answer(401, json!({"error": "x"}))
                .into_error()
                .hint()
                .is_some()
        );
        assert_eq!(answer(200, json!([1])).into_ok().unwrap(), json!([1]));
    }

    #[test]
    fn no_server_says_so() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(Target {
            apihost: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            uuid: "u".into(),
            key: "k".into(),
        })
        .unwrap();
        let url = client.url("_", &["actions"], &[]);
        let error = client
            .call(reqwest::Method::GET, url, Payload::Empty)
            .unwrap_err();
        assert!(
            matches!(error, RequestError::Unreachable { .. }),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "the server at http://127.0.0.1:{port} is not reachable"
            )),
            "{text}"
        );
        assert!(
            text.contains("is `wasmwhisk standalone` running?"),
            "{text}"
        );
    }

    #[test]
    fn urls_encode_each_segment() {
        let client = Client::new(Target {
            apihost: Url::parse("http://127.0.0.1:3233/prefix/").unwrap(),
            uuid: "u".into(),
            key: "k".into(),
        })
        .unwrap();
        let url = client.url(
            "_",
            &["actions", "my action"],
            &[("blocking", "true".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:3233/prefix/api/v1/namespaces/_/actions/my%20action?blocking=true"
        );
    }
}
