//! The REST API of standalone mode: OpenWhisk's `/api/v1` subset
//! (docs/openwhisk.md §7) and the invoker's admin and operational routes, on axum.
//!
//! ```text
//!  request ─▶ metrics layer ─▶ route ─▶ extractors: Caller (Basic uuid:key → Identity, 401)
//!                                                  ApiPath / ApiQuery / body (400, 413)
//!                               handler ─▶ namespace check (403) ─▶ validate ─▶ store / controller
//!  every failure ─▶ ApiError ─▶ {"error": msg, "code": transaction id}
//! ```
//!
//! This module is an adapter (docs/architecture.md): it only translates HTTP to
//! calls on the core — the [`Database`](crate::store::Database), the
//! [`Controller`](crate::controller::Controller), the
//! [`Engine`](crate::engine::Engine) (compiling at deployment) and the
//! pool's handle (admin) — and their answers back to OpenWhisk's status
//! codes and bodies. Nothing here decides scheduling or stores anything
//! itself. One file per collection:
//!
//! | file | routes |
//! |---|---|
//! | [`actions`] | `PUT/GET/DELETE …/actions/{name}`, `GET …/actions` |
//! | [`invoke`] | `POST …/actions/{name}` |
//! | [`activations`] | `GET …/activations[/{id}[/result\|/logs]]` |
//! | [`admin`] | `/enable`, `/disable`, `/isEnabled`, `/pool`, `/pool/count`, `/ping`, `/metrics`, `/api/v1` |
//!
//! and the pieces they share: [`auth`], [`error`], [`extract`], [`query`],
//! [`validate`], [`compile`], [`render`]. `docs/api.md` is the user's
//! reference, with the deviations from OpenWhisk. [`server`] and
//! [`connection`] serve a router under the bounds of `[http]` (connection
//! cap, timeouts).

pub mod actions;
pub mod activations;
pub mod admin;
pub mod auth;
pub mod compile;
pub mod connection;
pub mod error;
pub mod extract;
pub mod invoke;
pub mod query;
pub mod render;
pub mod server;
pub mod validate;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use error::ApiError;

/// What the handlers share.
pub struct AppState {
    /// Keys, actions, activation records: the database in standalone mode,
    /// NATS JetStream in a cluster.
    pub store: Arc<dyn crate::store::EntityStore>,
    /// Runs invokes; told when a revision is replaced or deleted.
    pub controller: crate::controller::Controller,
    /// Compiles `wasm` code and checks `js` code at deployment.
    pub engine: Arc<crate::engine::Engine>,
    /// Limits and `controller.max-wait-for-blocking`.
    pub config: Arc<crate::config::Config>,
    /// Where requests and activations are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The admin routes' state (the invoker's pool, if this process runs
    /// one).
    pub admin: admin::AdminState,
}

impl axum::extract::FromRef<Arc<AppState>> for admin::AdminState {
    fn from_ref(state: &Arc<AppState>) -> Self {
        state.admin.clone()
    }
}

/// The route patterns, as the metrics label them.
pub mod routes {
    /// `GET` the API's description.
    pub const API: &str = "/api/v1";
    /// `GET` the caller's namespaces.
    pub const NAMESPACES: &str = "/api/v1/namespaces";
    /// `GET` the actions of a namespace.
    pub const ACTIONS: &str = "/api/v1/namespaces/{namespace}/actions";
    /// `PUT`, `GET`, `DELETE`, `POST` (invoke) one action.
    pub const ACTION: &str = "/api/v1/namespaces/{namespace}/actions/{name}";
    /// `GET` the activations of a namespace.
    pub const ACTIVATIONS: &str = "/api/v1/namespaces/{namespace}/activations";
    /// `GET` one activation.
    pub const ACTIVATION: &str = "/api/v1/namespaces/{namespace}/activations/{id}";
    /// `GET` one activation's response.
    pub const ACTIVATION_RESULT: &str = "/api/v1/namespaces/{namespace}/activations/{id}/result";
    /// `GET` one activation's logs.
    pub const ACTIVATION_LOGS: &str = "/api/v1/namespaces/{namespace}/activations/{id}/logs";
    /// `POST` (admin).
    pub const ENABLE: &str = "/enable";
    /// `POST` (admin).
    pub const DISABLE: &str = "/disable";
    /// `GET` (admin).
    pub const IS_ENABLED: &str = "/isEnabled";
    /// `GET` (admin).
    pub const POOL: &str = "/pool";
    /// `GET` (admin).
    pub const POOL_COUNT: &str = "/pool/count";
    /// `GET`.
    pub const PING: &str = "/ping";
    /// `GET`.
    pub const METRICS: &str = "/metrics";
    /// The label of a request no route matched.
    pub const UNMATCHED: &str = "unmatched";

    /// Every pattern.
    pub const ALL: &[&str] = &[
        API,
        NAMESPACES,
        ACTIONS,
        ACTION,
        ACTIVATIONS,
        ACTIVATION,
        ACTIVATION_RESULT,
        ACTIVATION_LOGS,
        ENABLE,
        DISABLE,
        IS_ENABLED,
        POOL,
        POOL_COUNT,
        PING,
        METRICS,
    ];

    /// The static pattern of `matched` (metrics take `&'static str`).
    pub fn label(matched: Option<&str>) -> &'static str {
        matched
            .and_then(|m| ALL.iter().find(|r| **r == m).copied())
            .unwrap_or(UNMATCHED)
    }
}

/// The invoker's own API (a cluster's `wasmwhisk invoker`): the admin
/// routes, `/ping` and `/metrics`.
pub fn invoker_router(state: admin::AdminState) -> Router {
    admin::routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_admin_request,
        ))
        .with_state(state)
}

/// The API's router, with its state.
pub fn router(state: Arc<AppState>) -> Router {
    let put_limit = actions::put_body_limit(&state);
    let invoke_limit = invoke::invoke_body_limit(&state);
    Router::new()
        .route(routes::API, get(admin::info))
        .route(routes::NAMESPACES, get(admin::namespaces))
        .route(routes::ACTIONS, get(actions::list))
        .route(
            routes::ACTION,
            get(actions::get)
                .put(actions::put.layer(middleware::from_fn_with_state(
                    put_limit,
                    extract::declared_size,
                )))
                .delete(actions::delete)
                .post(
                    invoke::invoke
                        .layer(DefaultBodyLimit::max(invoke_limit))
                        .layer(middleware::from_fn_with_state(
                            invoke_limit,
                            extract::declared_size,
                        )),
                ),
        )
        .route(routes::ACTIVATIONS, get(activations::list))
        .route(routes::ACTIVATION, get(activations::get))
        .route(routes::ACTIVATION_RESULT, get(activations::result))
        .route(routes::ACTIVATION_LOGS, get(activations::logs))
        .merge(admin::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(put_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "The request method is not supported for this resource.",
    )
}

/// Counts each request by route pattern and status, with its latency.
async fn record_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    record(&state.metrics, request, next).await
}

/// [`record_request`] for the invoker's own API.
async fn record_admin_request(
    State(state): State<admin::AdminState>,
    request: Request,
    next: Next,
) -> Response {
    record(&state.metrics, request, next).await
}

async fn record(metrics: &crate::metrics::Metrics, request: Request, next: Next) -> Response {
    let route = routes::label(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.http_request(route, response.status().as_u16(), started.elapsed());
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::routes;

    #[test]
    fn route_labels_are_the_patterns() {
        assert_eq!(routes::label(Some(routes::ACTION)), routes::ACTION);
        assert_eq!(routes::label(Some("/elsewhere")), routes::UNMATCHED);
        assert_eq!(routes::label(None), routes::UNMATCHED);
    }
}
