//! OpenWhisk's action container protocol as pure functions: the bodies of
//! `/init` and `/run`, and how their answers are classified (docs/openwhisk.md §6.1,
//! §6.2, `RunResponse.processInitResponseContent` and
//! `processRunResponseContent`). No I/O here, so every rule has a unit test.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use wasmwhisk_protocol::depth;
use wasmwhisk_sandbox::action::{ActivationContext, InitArgs};
use wasmwhisk_sandbox::outcome::floor_char_boundary;
use wasmwhisk_sandbox::{ResponseStatus, RunResponse, messages};

/// The body of `POST /init`: `{"value":{"name","main","binary","env","code"?}}`.
///
/// `args.code` holds the action's code as stored: source text, or the
/// decoded bytes of binary code (the API decodes base64 on upload). Binary
/// code is sent base64-encoded, as OpenWhisk sends it; empty code is left
/// out, so a blackbox image runs its own `/action/exec`. Base64 needs no
/// JSON escaping, so a large executable is encoded straight into the body.
pub(crate) fn init_body(args: &InitArgs) -> Vec<u8> {
    let mut value = Map::new();
    value.insert("name".into(), args.name.clone().into());
    let main = if args.main.is_empty() {
        "main"
    } else {
        &args.main
    };
    value.insert("main".into(), main.into());
    value.insert("binary".into(), args.binary.into());
    let env: Map<String, Value> = args
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    value.insert("env".into(), Value::Object(env));
    let fields = Value::Object(value).to_string();
    // `fields` is a JSON object: `{…}`; the code goes in before its `}`.
    let fields = fields.strip_suffix('}').unwrap_or(&fields);
    let mut body = Vec::with_capacity(fields.len() + args.code.len() * 4 / 3 + 32);
    body.extend_from_slice(b"{\"value\":");
    body.extend_from_slice(fields.as_bytes());
    if !args.code.is_empty() {
        body.extend_from_slice(b",\"code\":");
        if args.binary {
            body.push(b'"');
            body.extend_from_slice(STANDARD.encode(&args.code).as_bytes());
            body.push(b'"');
        } else {
            let text = Value::String(String::from_utf8_lossy(&args.code).into_owned());
            body.extend_from_slice(text.to_string().as_bytes());
        }
    }
    body.extend_from_slice(b"}}");
    body
}

/// The body of `POST /run`: the parameters as `value` and the activation's
/// context; `deadline` is epoch milliseconds **as a string**, as OpenWhisk's
/// code sends it.
pub(crate) fn run_body(
    context: &ActivationContext,
    params: Map<String, Value>,
    deadline_ms: u64,
) -> Value {
    let mut body = Map::new();
    body.insert("value".into(), Value::Object(params));
    body.insert("namespace".into(), context.namespace.clone().into());
    body.insert("action_name".into(), context.action_name.clone().into());
    body.insert(
        "action_version".into(),
        context.action_version.clone().into(),
    );
    body.insert("activation_id".into(), context.activation_id.clone().into());
    body.insert(
        "transaction_id".into(),
        context.transaction_id.clone().into(),
    );
    body.insert("deadline".into(), deadline_ms.to_string().into());
    if let Some(key) = &context.api_key {
        body.insert("api_key".into(), key.clone().into());
    }
    Value::Object(body)
}

/// An HTTP answer of the action container, its body read up to the
/// payload limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The body (lossy UTF-8), at most the payload limit.
    pub body: String,
    /// `Some(length)` when the body was longer than the payload limit and
    /// cut; `length` is its announced (or read so far) length in bytes.
    pub truncated: Option<usize>,
}

/// What an answer to `/init` means.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum InitVerdict {
    /// 200: initialized; the body is ignored.
    Ready,
    /// 503: the container is shutting down; give the activation back.
    Reschedule,
    /// Any other status: a developer error.
    Failed(RunResponse),
}

/// Classifies an answer to `/init` (`processInitResponseContent`): the
/// body's `error` field when it is a JSON object with one, else
/// OpenWhisk's "failed during initialization" message with the body.
pub(crate) fn classify_init(reply: &Reply) -> InitVerdict {
    match reply.status {
        200 => InitVerdict::Ready,
        503 => InitVerdict::Reschedule,
        _ => {
            let error = match serde_json::from_str::<Value>(&reply.body) {
                Ok(Value::Object(mut map)) => map.remove("error"),
                _ => None,
            };
            InitVerdict::Failed(match error {
                Some(error) => developer_error_value(error),
                None => RunResponse::developer_error(messages::invalid_init_response(&reply.body)),
            })
        }
    }
}

/// What an answer to `/run` means.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RunVerdict {
    /// The activation's response.
    Response(RunResponse),
    /// 503: the container is shutting down; give the activation back.
    Reschedule,
}

/// Classifies an answer to `/run` (`processRunResponseContent`):
/// - a body past the payload limit → application error with the truncated
///   text, whatever the status;
/// - 503 → reschedule;
/// - 200 + object without `error` → success; with `error` → application
///   error keeping only `{"error": …}`; 200 + array → success;
/// - other status + object → developer error with its `error` field (or
///   the invalid-response message); anything else → developer error.
pub(crate) fn classify_run(reply: &Reply, max_bytes: usize) -> RunVerdict {
    if let Some(length) = reply.truncated {
        let cut = floor_char_boundary(&reply.body, max_bytes.min(64 * 1024));
        return RunVerdict::Response(RunResponse::application_error(Value::String(
            messages::truncated_response(length, max_bytes, &reply.body[..cut]),
        )));
    }
    if reply.status == 503 {
        return RunVerdict::Reschedule;
    }
    if reply.status == 200 {
        return RunVerdict::Response(RunResponse::from_run_result(&reply.body, max_bytes));
    }
    if depth::nests_deeper_than(reply.body.as_bytes(), depth::MAX_DEPTH) {
        return RunVerdict::Response(RunResponse::developer_error(messages::too_deep_response(
            depth::MAX_DEPTH,
        )));
    }
    let invalid = || RunResponse::developer_error(messages::invalid_run_response(&reply.body));
    RunVerdict::Response(match serde_json::from_str::<Value>(&reply.body) {
        Ok(Value::Object(mut map)) => match map.remove("error") {
            Some(error) => developer_error_value(error),
            None => invalid(),
        },
        _ => invalid(),
    })
}

/// A developer error whose `error` is any JSON value (a container's own
/// error field is kept as it is, not only strings).
fn developer_error_value(error: Value) -> RunResponse {
    RunResponse {
        status: ResponseStatus::ActionDeveloperError,
        result: json!({ "error": error }),
    }
}

/// A container's CPU shares: its fraction of the invoker's user memory
/// times Docker's default 1024, at least 2 (Docker's minimum), as
/// OpenWhisk's `DockerContainerFactory` computes them.
pub(crate) fn cpu_shares(memory_mb: u64, user_memory_mb: u64) -> i64 {
    let shares = 1024u128 * u128::from(memory_mb) / u128::from(user_memory_mb.max(1));
    i64::try_from(shares).unwrap_or(i64::MAX).max(2)
}

/// A container's CPU limit in nano-CPUs: `user_cpus` shared in proportion
/// to memory, as `--cpus` takes it; `None` without a CPU budget.
pub(crate) fn nano_cpus(
    user_cpus: Option<f64>,
    memory_mb: u64,
    user_memory_mb: u64,
) -> Option<i64> {
    let cpus = user_cpus.filter(|c| c.is_finite() && *c > 0.0)?;
    let share = cpus * memory_mb as f64 / user_memory_mb.max(1) as f64;
    // At least a thousandth of a CPU, at most what the invoker has.
    let nanos = (share.clamp(0.001, cpus) * 1e9).round();
    Some(nanos as i64)
}

/// A container's name: `wasmwhisk_<owner>_<sandbox id>`, with characters
/// Docker does not accept in names replaced by `-`.
pub(crate) fn container_name(owner: &str, sandbox_id: u64) -> String {
    let owner: String = owner
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("wasmwhisk_{owner}_{sandbox_id}")
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
