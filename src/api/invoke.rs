//! `POST …/actions/{name}?blocking=&result=&timeout=`: invoke.
//!
//! The hot path of the API: authenticate, load the action (the store keeps
//! it in memory), merge the parameters, hand the activation to the
//! controller and answer as OpenWhisk does (`Actions.scala`, `doInvoke`):
//!
//! | outcome | status | body |
//! |---|---|---|
//! | non-blocking, or blocking past the wait | 202 | `{"activationId"}` |
//! | success | 200 | the activation, or its `result` with `result=true` |
//! | application or developer error | 502 | the same |
//! | whisk error | 500 | the same |
//!
//! A result that is a JSON array is answered as the array, whatever
//! `result` says (OpenWhisk does so). Every answer that names an activation
//! carries its id in `x-openwhisk-activation-id`. The controller hands over
//! the stored record itself, logs included, so no read of the database is
//! needed to answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::actions::action_name;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, body};
use super::query::{blocking_wait, flag};
use super::validate::{invoke_parameters, parse_payload};
use crate::controller::{Invocation, InvokeRequest};
use crate::protocol::{ActivationId, StatusCode as ActivationStatus, WhiskActivation};

/// The header that carries the activation id.
pub const ACTIVATION_ID_HEADER: HeaderName = HeaderName::from_static("x-openwhisk-activation-id");

/// The largest invoke body: the payload limit.
pub fn invoke_body_limit(state: &AppState) -> usize {
    state.config.limits.payload.max.as_usize()
}

/// `POST …/actions/{name}`.
pub async fn invoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let fqn = action_name(&caller, &ns, &name)?;
    let blocking = flag(&query, "blocking", false)?;
    let result_only = flag(&query, "result", false)?;
    let wait = blocking_wait(&query, state.config.controller.max_wait_for_blocking)?;
    let raw = body(raw, &headers, invoke_body_limit(&state), "Request")?;
    let payload = parse_payload(&raw)?;
    // Parsed: the body's bytes need not outlive the (possibly long) wait.
    drop(raw);
    let action = state
        .store
        .get_action(&fqn)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let (content, init_args) = invoke_parameters(&action.meta, payload)?;
    let request = InvokeRequest {
        user: caller.0,
        action,
        content: Some(Value::Object(content)),
        init_args,
        blocking,
        wait,
    };
    match state.controller.invoke(request).await? {
        Invocation::Accepted(id) => Ok(accepted(&id)),
        Invocation::Completed(activation) => Ok(completed(&activation, result_only)),
    }
}

/// 202 `{"activationId": id}` with the header.
pub fn accepted(id: &ActivationId) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"activationId": id.as_str()})),
    )
        .into_response();
    with_activation_id(&mut response, id);
    response
}

/// The status of a completed activation's answer: 200 success, 502
/// application or developer error, 500 whisk error.
pub fn completed_status(status: ActivationStatus) -> StatusCode {
    match status {
        ActivationStatus::Success => StatusCode::OK,
        ActivationStatus::ApplicationError | ActivationStatus::DeveloperError => {
            StatusCode::BAD_GATEWAY
        }
        ActivationStatus::WhiskError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The body of a completed activation's answer: an array result as is,
/// else the result (`result_only`) or the extended activation.
pub fn completed_body(activation: &WhiskActivation, result_only: bool) -> Value {
    match &activation.response.result {
        Some(array @ Value::Array(_)) => array.clone(),
        Some(result) if result_only => result.clone(),
        None if result_only => json!({}),
        _ => activation.to_extended_json(),
    }
}

/// The answer of a completed activation.
pub fn completed(activation: &WhiskActivation, result_only: bool) -> Response {
    let status = completed_status(activation.response.status_code);
    let mut response = (status, Json(completed_body(activation, result_only))).into_response();
    with_activation_id(&mut response, &activation.activation_id);
    response
}

fn with_activation_id(response: &mut Response, id: &ActivationId) {
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ActivationResponse, EntityName, EntityPath, Parameters, SemVer};

    fn activation(response: ActivationResponse) -> WhiskActivation {
        WhiskActivation {
            namespace: EntityPath::namespace(EntityName::new("guest").unwrap()),
            name: EntityName::new("hello").unwrap(),
            subject: "guest".into(),
            activation_id: ActivationId::generate(),
            start: 1,
            end: 2,
            cause: None,
            response,
            logs: vec![],
            version: SemVer::default(),
            publish: false,
            annotations: Parameters::new(),
            duration: None,
        }
    }

    #[test]
    fn statuses_follow_openwhisk() {
        assert_eq!(completed_status(ActivationStatus::Success), StatusCode::OK);
        assert_eq!(
            completed_status(ActivationStatus::ApplicationError),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            completed_status(ActivationStatus::DeveloperError),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            completed_status(ActivationStatus::WhiskError),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn bodies_are_the_result_or_the_activation() {
        let ok = activation(ActivationResponse::success(Some(json!({"greeting": "hi"}))));
        assert_eq!(completed_body(&ok, true), json!({"greeting": "hi"}));
        let full = completed_body(&ok, false);
        assert_eq!(full["response"]["status"], json!("success"));
        assert_eq!(full["activationId"], json!(ok.activation_id.as_str()));

        let array = activation(ActivationResponse::success(Some(json!([1, 2]))));
        assert_eq!(completed_body(&array, false), json!([1, 2]));
        let none = activation(ActivationResponse::success(None));
        assert_eq!(completed_body(&none, true), json!({}));
        let failed = activation(ActivationResponse::developer_error("boom"));
        assert_eq!(completed_body(&failed, true), json!({"error": "boom"}));
    }

    #[test]
    fn answers_carry_the_activation_id_header() {
        let ok = activation(ActivationResponse::application_error("no"));
        let response = completed(&ok, true);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            response
                .headers()
                .get(ACTIVATION_ID_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some(ok.activation_id.as_str())
        );
        let id = ActivationId::generate();
        let response = accepted(&id);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(
            response
                .headers()
                .get(ACTIVATION_ID_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some(id.as_str())
        );
    }
}
