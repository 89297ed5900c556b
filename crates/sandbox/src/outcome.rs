//! How an activation ended, classified exactly as OpenWhisk does
//! (`RunResponse.processRunResponseContent`, docs/openwhisk.md §6.2).
//!
//! Three kinds of failure stay apart:
//! - an **application error** is a normal result (`{"error": …}` returned by
//!   the action); the sandbox stays warm;
//! - a **developer error** is the action's fault (trap, timeout, memory,
//!   failed init, a result that is not a JSON object or array); the sandbox
//!   is retired;
//! - a **whisk error** is ours (the host failed); it feeds the invoker's
//!   health buffer and the sandbox is retired.

use serde_json::{Map, Value, json};

use wasmwhisk_protocol::depth;

/// OpenWhisk's messages, word for word, so clients that match on them work.
pub mod messages {
    use std::time::Duration;

    /// A run that exceeded `limits.timeout`.
    pub fn timed_out(timeout: Duration) -> String {
        format!(
            "The action exceeded its time limits of {} milliseconds.",
            timeout.as_millis()
        )
    }

    /// An init that exceeded `limits.timeout`.
    pub fn init_timed_out(timeout: Duration) -> String {
        format!(
            "The action exceeded its time limits of {} milliseconds during initialization.",
            timeout.as_millis()
        )
    }

    /// A sandbox that ran out of its memory limit.
    pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";
    /// The sandbox died (trapped) during init.
    pub const ABNORMAL_INIT: &str = "The action did not initialize and exited unexpectedly.";
    /// The sandbox died (trapped) during run.
    pub const ABNORMAL_RUN: &str =
        "The action did not produce a valid response and exited unexpectedly.";

    /// A result that is neither a JSON object nor an array.
    pub fn invalid_run_response(body: &str) -> String {
        if body.is_empty() {
            "The action did not produce a valid JSON or JSON Array response.".to_string()
        } else {
            format!("The action did not produce a valid JSON or JSON Array response: {body}")
        }
    }

    /// A result nested deeper than a stored record could be read back with.
    pub fn too_deep_response(max: usize) -> String {
        format!(
            "The action did not produce a valid JSON or JSON Array response: \
             it nests arrays and objects more than {max} levels deep."
        )
    }

    /// An init that reported a failure without a message.
    pub fn invalid_init_response(body: &str) -> String {
        if body.is_empty() {
            "The action failed during initialization.".to_string()
        } else {
            format!("The action failed during initialization: {body}")
        }
    }

    /// A result larger than the payload limit; `truncated` is its beginning.
    pub fn truncated_response(length: usize, max: usize, truncated: &str) -> String {
        format!(
            "The action produced a response that exceeded the allowed length: {length} > {max} bytes. \
             The truncated response was: {truncated}"
        )
    }

    /// The notice appended to logs cut at `limits.logs`.
    pub fn truncated_logs(limit_bytes: usize) -> String {
        format!(
            "Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."
        )
    }

    /// The notice appended to logs cut at the most lines kept per
    /// activation (wasmwhisk's bound; OpenWhisk has none).
    pub fn truncated_log_lines(max_lines: usize) -> String {
        format!(
            "Logs were truncated because the number of lines exceeds the limit of {max_lines} lines."
        )
    }
}

/// OpenWhisk's `statusCode` of an activation response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// 0: the action returned a result.
    Success,
    /// 1: the action returned `{"error": …}`.
    ApplicationError,
    /// 2: the action failed (trap, timeout, memory, bad init or result).
    ActionDeveloperError,
    /// 3: wasmwhisk failed.
    WhiskInternalError,
}

impl ResponseStatus {
    /// The numeric `statusCode` (0..=3).
    pub fn code(self) -> u8 {
        match self {
            ResponseStatus::Success => 0,
            ResponseStatus::ApplicationError => 1,
            ResponseStatus::ActionDeveloperError => 2,
            ResponseStatus::WhiskInternalError => 3,
        }
    }

    /// The API's `status` string (`"success"`, `"application error"`, ...).
    pub fn as_api_str(self) -> &'static str {
        match self {
            ResponseStatus::Success => "success",
            ResponseStatus::ApplicationError => "application error",
            ResponseStatus::ActionDeveloperError => "action developer error",
            ResponseStatus::WhiskInternalError => "whisk internal error",
        }
    }

    /// True when the sandbox that produced this response must be retired:
    /// developer and whisk errors destroy the container in OpenWhisk.
    pub fn retires_sandbox(self) -> bool {
        matches!(
            self,
            ResponseStatus::ActionDeveloperError | ResponseStatus::WhiskInternalError
        )
    }
}

/// What one `/run` (or a failed `/init`) answered, classified: a status and
/// a result. The activation record's `response` (OpenWhisk's
/// `ActivationResponse`, with its status code and size) is made from it by
/// the pool (`pool::record::record_response`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunResponse {
    /// How it ended.
    pub status: ResponseStatus,
    /// The result object (for errors: `{"error": message}`).
    pub result: Value,
}

impl RunResponse {
    /// A successful result.
    pub fn success(result: Value) -> Self {
        RunResponse {
            status: ResponseStatus::Success,
            result,
        }
    }

    /// An application error carrying `error` (any JSON value).
    pub fn application_error(error: Value) -> Self {
        RunResponse {
            status: ResponseStatus::ApplicationError,
            result: json!({ "error": error }),
        }
    }

    /// A developer error with OpenWhisk's message.
    pub fn developer_error(message: impl Into<String>) -> Self {
        RunResponse {
            status: ResponseStatus::ActionDeveloperError,
            result: json!({ "error": message.into() }),
        }
    }

    /// A whisk (system) error.
    pub fn whisk_error(message: impl Into<String>) -> Self {
        RunResponse {
            status: ResponseStatus::WhiskInternalError,
            result: json!({ "error": message.into() }),
        }
    }

    /// True for success.
    pub fn is_success(&self) -> bool {
        self.status == ResponseStatus::Success
    }

    /// The error message, if the result is `{"error": "<string>"}`.
    pub fn error_message(&self) -> Option<&str> {
        self.result.get("error").and_then(Value::as_str)
    }

    /// Classifies the JSON text an action's `run` returned.
    ///
    /// - a JSON object with an `error` field → application error keeping
    ///   **only** `{"error": …}` (OpenWhisk drops the other fields);
    /// - a JSON object or array → success;
    /// - anything else (a scalar, `null`, not JSON) → developer error;
    /// - longer than `max_bytes` → application error with the truncated text;
    /// - nested deeper than [`depth::MAX_DEPTH`] → developer error (its record
    ///   could not be read back; see [`depth`]).
    pub fn from_run_result(text: &str, max_bytes: usize) -> Self {
        if text.len() > max_bytes {
            let cut = floor_char_boundary(text, max_bytes.min(64 * 1024));
            return RunResponse::application_error(Value::String(messages::truncated_response(
                text.len(),
                max_bytes,
                &text[..cut],
            )));
        }
        if depth::nests_deeper_than(text.as_bytes(), depth::MAX_DEPTH) {
            return RunResponse::developer_error(messages::too_deep_response(depth::MAX_DEPTH));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut map)) => match map.remove("error") {
                Some(error) => RunResponse::application_error(error),
                None => RunResponse::success(Value::Object(map)),
            },
            Ok(array @ Value::Array(_)) => RunResponse::success(array),
            Ok(_) | Err(_) => RunResponse::developer_error(messages::invalid_run_response(text)),
        }
    }

    /// The response as the REST API shows it (`toExtendedJson`): `status`,
    /// `statusCode`, `success` and `result`.
    pub fn to_api_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("status".into(), self.status.as_api_str().into());
        map.insert("statusCode".into(), self.status.code().into());
        map.insert("success".into(), self.is_success().into());
        map.insert("result".into(), self.result.clone());
        Value::Object(map)
    }
}

/// The largest index ≤ `at` that is a char boundary of `s`.
pub fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1 << 20;

    #[test]
    fn objects_and_arrays_are_success() {
        let r = RunResponse::from_run_result(r#"{"a":1}"#, MB);
        assert_eq!(r, RunResponse::success(json!({"a": 1})));
        let r = RunResponse::from_run_result("[1,2]", MB);
        assert_eq!(r.status, ResponseStatus::Success);
    }

    #[test]
    fn error_field_is_an_application_error_keeping_only_error() {
        let r = RunResponse::from_run_result(r#"{"error":"nope","other":1}"#, MB);
        assert_eq!(r.status, ResponseStatus::ApplicationError);
        assert_eq!(r.result, json!({"error": "nope"}));
        assert!(!r.status.retires_sandbox());
        let r = RunResponse::from_run_result(r#"{"error":{"code":7}}"#, MB);
        assert_eq!(r.result, json!({"error": {"code": 7}}));
    }

    #[test]
    fn scalars_and_garbage_are_developer_errors() {
        for text in ["42", "\"str\"", "null", "not json", ""] {
            let r = RunResponse::from_run_result(text, MB);
            assert_eq!(r.status, ResponseStatus::ActionDeveloperError, "{text}");
            assert!(r.status.retires_sandbox());
            assert!(
                r.error_message()
                    .unwrap_or_default()
                    .starts_with("The action did not produce a valid JSON or JSON Array response")
            );
        }
    }

    #[test]
    fn results_nested_too_deep_are_developer_errors() {
        let nest = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        let ok = RunResponse::from_run_result(&nest(depth::MAX_DEPTH), MB);
        assert_eq!(ok.status, ResponseStatus::Success);
        let deep = RunResponse::from_run_result(&nest(depth::MAX_DEPTH + 1), MB);
        assert_eq!(deep.status, ResponseStatus::ActionDeveloperError);
        assert_eq!(
            deep.error_message(),
            Some(messages::too_deep_response(depth::MAX_DEPTH).as_str())
        );
    }

    #[test]
    fn oversized_results_are_truncated_application_errors() {
        let text = format!(r#"{{"big":"{}"}}"#, "é".repeat(100));
        let r = RunResponse::from_run_result(&text, 51);
        assert_eq!(r.status, ResponseStatus::ApplicationError);
        let msg = r.error_message().unwrap_or_default();
        assert!(msg.starts_with(&format!(
            "The action produced a response that exceeded the allowed length: {} > 51 bytes.",
            text.len()
        )));
    }

    #[test]
    fn api_json_has_openwhisk_fields() {
        let api = RunResponse::developer_error("x").to_api_json();
        assert_eq!(api["status"], "action developer error");
        assert_eq!(api["statusCode"], 2);
        assert_eq!(api["success"], false);
        assert_eq!(api["result"]["error"], "x");
    }

    #[test]
    fn messages_match_openwhisk() {
        use std::time::Duration;
        assert_eq!(
            messages::timed_out(Duration::from_millis(100)),
            "The action exceeded its time limits of 100 milliseconds."
        );
        assert_eq!(
            messages::truncated_logs(64),
            "Logs were truncated because the total bytes size exceeds the limit of 64 bytes."
        );
    }
}
