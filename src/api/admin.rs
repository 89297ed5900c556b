//! The invoker's admin API (`FPCInvokerServer`), the open operational routes
//! (`/ping`, `/metrics`) and the API's self-description (`/api/v1`).
//!
//! The admin routes sit at the root, as OpenWhisk's invoker serves them,
//! behind Basic credentials of their own (`{data-dir}/admin.auth`), not a
//! namespace key: disabling the invoker is an operator's act.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

use super::AppState;
use super::auth::{Caller, is_admin};
use super::error::ApiError;
use super::routes as paths;
use crate::pool::PoolSnapshot;
use crate::pool::health::HealthState;

/// What the admin routes need: the process's pool (none in a cluster's
/// controller), its metrics and the admin credentials. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    /// The invoker pool, if this process runs one.
    pub pool: Option<crate::pool::PoolHandle>,
    /// Where requests and activations are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `user:password` of the admin routes.
    pub admin_auth: Arc<str>,
}

/// The admin routes, `/ping` and `/metrics`, for any state that holds an
/// [`AdminState`].
pub fn routes<S>() -> Router<S>
where
    AdminState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(paths::ENABLE, post(enable))
        .route(paths::DISABLE, post(disable))
        .route(paths::IS_ENABLED, get(is_enabled))
        .route(paths::POOL, get(pool))
        .route(paths::POOL_COUNT, get(pool_count))
        .route(paths::PING, get(ping))
        .route(paths::METRICS, get(metrics))
}

/// A request carrying the admin credentials.
#[derive(Debug)]
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    AdminState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Admin, ApiError> {
        let state = AdminState::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        if is_admin(header, &state.admin_auth) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// The pool, or 404 in a process that runs none (a cluster's controller).
fn the_pool(state: &AdminState) -> Result<&crate::pool::PoolHandle, ApiError> {
    state.pool.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this process runs no invoker pool (the admin routes are the invoker's)",
        )
    })
}

async fn snapshot(state: &AdminState) -> Result<PoolSnapshot, ApiError> {
    the_pool(state)?.snapshot().await.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the invoker pool has stopped",
        )
    })
}

fn invoker_name(pool: &crate::pool::PoolHandle) -> String {
    format!("invoker{}", pool.shared().invoker.instance)
}

/// `POST /enable`: the health test runs, then the invoker is `up`.
pub async fn enable(State(state): State<AdminState>, _: Admin) -> Result<String, ApiError> {
    let pool = the_pool(&state)?;
    pool.enable();
    Ok(format!("{} is now enabled.", invoker_name(pool)))
}

/// `POST /disable`: `down`; the pool drains.
pub async fn disable(State(state): State<AdminState>, _: Admin) -> Result<String, ApiError> {
    let pool = the_pool(&state)?;
    pool.disable();
    Ok(format!("{} is now disabled.", invoker_name(pool)))
}

/// `GET /isEnabled`: `{"enabled": bool}`; enabled unless offline (the
/// health test of a just-enabled invoker counts as enabled).
pub async fn is_enabled(
    State(state): State<AdminState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let snapshot = snapshot(&state).await?;
    Ok(Json(
        json!({"enabled": snapshot.health != HealthState::Offline}),
    ))
}

/// `GET /pool`: OpenWhisk's `TotalContainerPoolState`.
pub async fn pool(State(state): State<AdminState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let snapshot = snapshot(&state).await?;
    serde_json::to_value(&snapshot.state)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("serializing the pool state: {e}")))
}

/// `GET /pool/count`: busy + paused + in-progress sandboxes.
pub async fn pool_count(
    State(state): State<AdminState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let snapshot = snapshot(&state).await?;
    Ok(Json(json!(snapshot.state.count())))
}

/// `GET /ping`.
pub async fn ping() -> &'static str {
    "pong"
}

/// The content type of `/metrics` (it ends with `# EOF`).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`: the controller's and API's metrics, then the pool's.
pub async fn metrics(State(state): State<AdminState>) -> Response {
    let mut text = state.metrics.render();
    if let Some(pool) = &state.pool
        && let Some(snapshot) = pool.snapshot().await
    {
        text.push_str(
            &snapshot
                .metrics
                .prometheus_text(pool.shared().invoker.instance),
        );
    }
    text.push_str("# EOF\n");
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    response
}

/// `GET /api/v1`: what this API is, its kinds and its limits (OpenWhisk's
/// info route, in its units: ms and bytes).
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let l = &state.config.limits;
    Json(json!({
        "description": "wasmwhisk: Apache OpenWhisk's REST API with WebAssembly sandboxes",
        "api_paths": ["/api/v1"],
        "build": env!("CARGO_PKG_VERSION"),
        "runtimes": {
            "wasm": [{"kind": "wasm", "default": true}],
            "nodejs": [{"kind": "js", "default": true,
                        "aliases": ["nodejs", "nodejs:default", "nodejs:20", "nodejs:22"]}]
        },
        "limits": {
            "min_action_duration": l.time_limit.min.as_millis() as u64,
            "max_action_duration": l.time_limit.max.as_millis() as u64,
            "min_action_memory": l.memory.min.as_bytes(),
            "max_action_memory": l.memory.max.as_bytes(),
            "min_action_logs": l.log_limit.min.as_bytes(),
            "max_action_logs": l.log_limit.max.as_bytes(),
            "max_action_code": l.exec_size_limit.as_bytes(),
            "max_parameters": l.parameter_size_limit.as_bytes(),
            "max_payload": l.payload.max.as_bytes(),
        }
    }))
}

/// `GET /api/v1/namespaces`: the caller's namespace (a key has one).
pub async fn namespaces(caller: Caller) -> Json<Value> {
    Json(json!([caller.namespace_name()]))
}
