//! axum's extractors with our rejections: a bad path segment, a malformed
//! query or a body over its limit answer OpenWhisk's error body, never
//! axum's plain-text rejection.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequestParts, Path, Query as AxumQuery};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
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

/// The body, at most `limit` bytes (the route's `DefaultBodyLimit`): over
/// it, 413 naming `field` and the sizes.
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
        Err(e) => Err(ApiError::bad_request(e.body_text())),
    }
}
