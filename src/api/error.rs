//! The API's one error type and OpenWhisk's error body.
//!
//! Every failure a handler can meet ends as an [`ApiError`]: a status code
//! and a message. It renders as OpenWhisk's `{"error": msg, "code": tid}`
//! (`ErrorResponse`), where `code` is a fresh transaction id a user can quote
//! and an operator can find in the logs. The messages are OpenWhisk's words
//! (`Messages` in `ErrorResponse.scala`) wherever OpenWhisk has one, so
//! clients that match on them keep working.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::controller::InvokeError;
use crate::protocol::TransactionId;
use crate::store::DbError;

/// OpenWhisk's messages, word for word.
pub mod messages {
    /// A missing, malformed or unknown API key (401).
    pub const AUTH_INVALID: &str = "The supplied authentication is invalid.";
    /// An entity that does not exist (404).
    pub const NOT_FOUND: &str = "The requested resource does not exist.";
    /// A create without `overwrite=true` of an existing entity (409).
    pub const EXISTS: &str = "resource already exists";
    /// A payload key overriding a bound parameter of a `final` action (400).
    pub const PARAMETERS_NOT_ALLOWED: &str =
        "Request defines parameters that are not allowed (e.g., reserved properties).";

    /// Another namespace in the path than the caller's (403).
    pub fn not_authorized(namespace: &str) -> String {
        format!("The supplied authentication is not authorized to access '{namespace}'.")
    }

    /// A size over its limit (413): `Request larger than allowed: 2000000 > 1048576 bytes.`
    pub fn too_big(field: &str, size: usize, limit: usize) -> String {
        format!("{field} larger than allowed: {size} > {limit} bytes.")
    }

    /// A body that is not the JSON expected (400).
    pub fn malformed(detail: &str) -> String {
        format!("The request content was malformed:\n{detail}")
    }

    /// A `timeout` query parameter out of `1..=max` (400).
    pub fn invalid_timeout(max_ms: u128) -> String {
        format!("Timeout must be number of milliseconds up to {max_ms}.")
    }
}

/// A failed request: the status and OpenWhisk's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `error` of the body.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 for a body that is not the JSON expected.
    pub fn malformed(detail: &str) -> ApiError {
        ApiError::bad_request(messages::malformed(detail))
    }

    /// 401: missing or bad credentials.
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, messages::AUTH_INVALID)
    }

    /// 403: `namespace` is not the caller's.
    pub fn forbidden(namespace: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, messages::not_authorized(namespace))
    }

    /// 404.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, messages::NOT_FOUND)
    }

    /// 409: the entity exists and `overwrite` was not set.
    pub fn conflict() -> ApiError {
        ApiError::new(StatusCode::CONFLICT, messages::EXISTS)
    }

    /// 413: `field` is `size` bytes, over `limit`.
    pub fn too_big(field: &str, size: usize, limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            messages::too_big(field, size, limit),
        )
    }

    /// 500 with `message` (logged: it is our fault).
    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!(error = %message, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The JSON body with a fresh transaction id as `code`.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.message, "code": TransactionId::generate().id})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::Exists => ApiError::conflict(),
            DbError::NotFound => ApiError::not_found(),
            DbError::Invalid(message) => ApiError::bad_request(message),
            DbError::Internal(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> ApiError {
        let status = match e {
            InvokeError::Throttled { .. } | InvokeError::QueueFull(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            InvokeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_openwhisks_body_with_a_fresh_code() {
        let e = ApiError::not_found();
        let body = e.body();
        assert_eq!(
            body["error"],
            json!("The requested resource does not exist.")
        );
        let code = body["code"].as_str().unwrap_or_default();
        assert_eq!(code.len(), 32);
        assert!(code.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(e.body()["code"], body["code"]);
        assert_eq!(e.into_response().status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn store_and_controller_errors_map_to_openwhisks_statuses() {
        let status = |e: DbError| ApiError::from(e).status;
        assert_eq!(status(DbError::Exists), StatusCode::CONFLICT);
        assert_eq!(status(DbError::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            status(DbError::Invalid("x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(DbError::Internal("disk".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(ApiError::conflict().message, "resource already exists");
        let throttled = ApiError::from(InvokeError::Throttled {
            count: 10,
            allowed: 10,
        });
        assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(throttled.message.starts_with("Too many"));
        let down = ApiError::from(InvokeError::Unavailable("no invoker".into()));
        assert_eq!(
            (down.status, down.message.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "no invoker")
        );
        let big = ApiError::too_big("Request", 2_000_000, 1_048_576);
        assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            big.message,
            "Request larger than allowed: 2000000 > 1048576 bytes."
        );
    }
}
