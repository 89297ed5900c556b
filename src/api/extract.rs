//! axum's extractors with our rejections: a bad path segment, a malformed
//! query or a body over its limit answer OpenWhisk's error body, never
//! axum's plain-text rejection.
//!
//! A body whose `Content-Length` is already over its limit is refused by
//! [`declared_size`] before a byte of it is read; a body not received whole
//! within the connection's `body-read-timeout` is answered 408 by [`body`].

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequestParts, Path, Query as AxumQuery, Request, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::query::Query;

/// [`Path`] answering 400 with our body.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// The query as a map of strings, answering 400 with our body.
#[derive(Debug)]
pub struct ApiQuery(pub Query);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        AxumQuery::<Query>::from_request_parts(parts, state)
            .await
            .map(|AxumQuery(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// The answer (408) to a request whose body did not arrive whole within
/// `[http] body-read-timeout` of its head.
pub const BODY_TIMEOUT: &str = "The request body was not received in time.";

/// Middleware of a route that reads a body of at most `limit` bytes: a
/// request whose `Content-Length` says more is answered 413 (OpenWhisk's
/// message) at once, its body never read.
pub async fn declared_size(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(size) if size > limit as u64 => {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            ApiError::too_big("Request", size, limit).into_response()
        }
        _ => next.run(request).await,
    }
}

/// True when `error`, or an error it wraps, is the body-read timeout.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<super::connection::BodyTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The body, at most `limit` bytes (the route's `DefaultBodyLimit`): over
/// it, 413 naming `field` and the sizes; not received whole within the
/// body-read timeout, 408.
pub fn body(
    body: Result<Bytes, BytesRejection>,
    headers: &HeaderMap,
    limit: usize,
    field: &str,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match body {
        Ok(bytes) if bytes.len() > limit => Err(ApiError::too_big(field, bytes.len(), limit)),
        Ok(bytes) => Ok(bytes),
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            let size = declared.filter(|n| *n > limit).unwrap_or(limit + 1);
            Err(ApiError::too_big(field, size, limit))
        }
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let size = declared.filter(|n| *n > limit).unwrap_or(limit + 1);
            Err(ApiError::too_big(field, size, limit))
        }
        Err(e) if timed_out(&e) => Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, BODY_TIMEOUT)),
        Err(e) => Err(ApiError::bad_request(e.body_text())),
    }
}
