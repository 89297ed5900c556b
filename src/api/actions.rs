//! `…/namespaces/{ns}/actions[/{name}]`: create or update (PUT), get, list,
//! delete.
//!
//! A PUT is checked ([`super::validate`]), compiled ([`super::compile`])
//! and only then stored, so a rejected deployment leaves nothing behind.
//! Every stored PUT is a new revision; the controller is told of the one it
//! replaced (or of a deleted action) so that revision's warm sandboxes go.
//! Two concurrent updates of one action both succeed, in some order, as two
//! successive revisions: the last writer wins (OpenWhisk would answer the
//! loser 409 "Concurrent modification"; a single-process store has no stale
//! revision to refuse).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::compile::{Trial, compile, init_env};
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, body};
use super::query::{flag, list_limit, list_skip};
use super::render::{action_json, action_list_entry};
use super::validate::{
    ActionPut, NewKind, action_annotations, action_limits, action_version, check_parameters_size,
    decode_exec, parse_json,
};
use crate::pool::ports::ExecutableAction;
use crate::protocol::{
    DocRevision, EntityName, ExecMetaData, FullyQualifiedEntityName, WhiskActionMetaData,
};
use crate::store::{DbError, NewAction};

/// The largest PUT body: the code limit grown by base64 (4/3), plus the
/// parameters, the annotations and some room for the rest.
pub fn put_body_limit(state: &AppState) -> usize {
    let limits = &state.config.limits;
    let code = limits.exec_size_limit.as_usize();
    let params = limits.parameter_size_limit.as_usize();
    code.saturating_add(code / 3 + 4)
        .saturating_add(params.saturating_mul(2))
        .saturating_add(64 * 1024)
}

/// The action `name` in namespace `ns` of `caller`: 403 for another
/// namespace, 400 for a name OpenWhisk would not accept.
pub fn action_name(
    caller: &Caller,
    ns: &str,
    name: &str,
) -> Result<FullyQualifiedEntityName, ApiError> {
    let path = caller.namespace(ns)?;
    let name = EntityName::new(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(FullyQualifiedEntityName::new(path, name))
}

/// `PUT …/actions/{name}[?overwrite=true]`.
pub async fn put(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let fqn = action_name(&caller, &ns, &name)?;
    let overwrite = flag(&query, "overwrite", false)?;
    let raw = body(raw, &headers, put_body_limit(&state), "Request")?;
    let put: ActionPut = parse_json(&raw)?;
    drop(raw);
    let limits_config = &state.config.limits;
    let param_limit = limits_config.parameter_size_limit.as_usize();
    if let Some(p) = &put.parameters {
        check_parameters_size("Parameters", p, param_limit)?;
    }
    if let Some(a) = &put.annotations {
        check_parameters_size("Annotations", a, param_limit)?;
    }

    let current = state.store.get_action(&fqn).await?;
    if current.is_some() && !overwrite {
        return Err(ApiError::conflict());
    }
    let current_meta = current.as_deref().map(|c| &c.meta);
    let limits = action_limits(
        limits_config,
        put.limits.as_ref(),
        current_meta.map(|m| &m.limits),
    )?;
    let parameters = put
        .parameters
        .clone()
        .or_else(|| current_meta.map(|m| m.parameters.clone()))
        .unwrap_or_default();

    let (exec, code, code_key) = match (&put.exec, current.as_deref()) {
        (Some(exec), _) => {
            let image_kinds = state.config.runtimes.image_runtimes();
            let new = decode_exec(
                exec,
                limits_config.exec_size_limit.as_usize(),
                image_kinds.keys().map(String::as_str),
            )?;
            let code: Arc<[u8]> = Arc::from(new.code);
            let key = match &new.kind {
                NewKind::Wasm(kind) => {
                    let trial = Trial {
                        name: fqn.name().as_str().to_string(),
                        main: new.main.clone(),
                        limits,
                        env: init_env(&parameters),
                    };
                    compile(state.engine.clone(), *kind, code.clone(), trial).await?
                }
                // Image kinds are not compiled: their container gets the
                // code at `/init`, as in OpenWhisk.
                NewKind::Image { .. } => None,
            };
            let exec = ExecMetaData::Code {
                kind: new.kind.name().to_string(),
                binary: new.binary,
                main: new.main,
                image: match new.kind {
                    NewKind::Image { image, .. } => image,
                    NewKind::Wasm(_) => None,
                },
            };
            (exec, code, key)
        }
        (None, Some(current)) => match &current.meta.exec {
            exec @ ExecMetaData::Code { .. } => {
                (exec.clone(), current.code.clone(), current.code_key)
            }
            ExecMetaData::Sequence { .. } => {
                return Err(ApiError::bad_request(
                    "the action's kind cannot be updated without a new 'exec'",
                ));
            }
        },
        (None, None) => return Err(ApiError::bad_request("exec undefined")),
    };
    let kind = exec.kind().to_string();

    let meta = WhiskActionMetaData {
        namespace: fqn.path().clone(),
        name: fqn.name().clone(),
        exec,
        parameters,
        limits,
        version: action_version(put.version, current_meta.map(|m| m.version)),
        publish: put
            .publish
            .or(current_meta.map(|m| m.publish))
            .unwrap_or(false),
        annotations: action_annotations(
            put.annotations.as_ref(),
            put.del_annotations.as_deref(),
            current_meta.map(|m| &m.annotations),
            &kind,
        ),
        updated: 0,
        binding: None,
    };
    let new = NewAction {
        action: ExecutableAction {
            meta,
            revision: DocRevision::empty(),
            code,
            code_key,
        },
    };
    let outcome = state.store.put_action(new, overwrite).await?;
    if let Some(old) = &outcome.replaced {
        state.controller.action_replaced(old).await;
    }
    action_json(&outcome.stored, false).map(Json)
}

/// `GET …/actions/{name}[?code=true]`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let fqn = action_name(&caller, &ns, &name)?;
    let with_code = flag(&query, "code", false)?;
    let action = state
        .store
        .get_action(&fqn)
        .await?
        .ok_or_else(ApiError::not_found)?;
    action_json(&action, with_code).map(Json)
}

/// `DELETE …/actions/{name}`: answers the deleted action.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((ns, name)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let fqn = action_name(&caller, &ns, &name)?;
    let deleted = match state.store.delete_action(&fqn).await {
        Ok(Some(deleted)) => deleted,
        Ok(None) | Err(DbError::NotFound) => return Err(ApiError::not_found()),
        Err(e) => return Err(e.into()),
    };
    state.controller.action_replaced(&deleted).await;
    action_json(&deleted, false).map(Json)
}

/// `GET …/actions[?limit=&skip=]`: the latest revision of each action,
/// without parameters or code, by name.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(ns): ApiPath<String>,
    ApiQuery(query): ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let path = caller.namespace(&ns)?;
    let limit = list_limit(&query, "actions")?;
    let skip = list_skip(&query, "actions")?;
    let actions = state.store.list_actions(&path, limit, skip).await?;
    let entries = actions
        .iter()
        .map(|a| action_list_entry(a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Value::Array(entries)))
}
