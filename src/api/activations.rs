//! `…/namespaces/{ns}/activations[/{id}[/result|/logs]]`: the records of
//! the caller's namespace, newest first (`Activations.scala`).
//!
//! A list shows OpenWhisk's summaries (no result, no logs) unless
//! `docs=true`; one record, its `result` (the extended response) and its
//! `logs` (`{"logs": [...]}`) are read by id. Another namespace's record is
//! 404 even with a valid id: records are looked up within the caller's
//! namespace only.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::query::{Query, epoch_ms, flag, list_limit, list_skip};
use super::render::activation_summary;
use crate::protocol::{ActivationId, EntityName, WhiskActivation};
use crate::store::ActivationQuery;

/// The store query of `GET …/activations`: `name` (`action` or
/// `package/action`), `limit`, `skip`, `since`, `upto`.
pub fn activation_query(query: &Query) -> Result<ActivationQuery, ApiError> {
    let name = match query
        .get("name")
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
    {
        None => None,
        Some(name) => {
            let segments: Vec<&str> = name.split('/').collect();
            let valid = segments.len() <= 2 && segments.iter().all(|s| EntityName::new(*s).is_ok());
            if !valid {
                return Err(ApiError::bad_request(format!(
                    "Parameter may be a 'simple' name or 'package-name/simple' name: {name}"
                )));
            }
            Some(name.to_string())
        }
    };
    Ok(ActivationQuery {
        name,
        limit: list_limit(query, "activations")?,
        skip: list_skip(query, "activations")?,
        since: epoch_ms(query, "since")?,
        upto: epoch_ms(query, "upto")?,
    })
}

/// `GET …/activations`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(ns): ApiPath<String>,
    ApiQuery(query): ApiQuery,
) -> Result<Json<Value>, ApiError> {
    caller.namespace(&ns)?;
    let docs = flag(&query, "docs", false)?;
    let store_query = activation_query(&query)?;
    let records = state
        .store
        .list_activations(caller.namespace_name(), &store_query)
        .await?;
    let entries = records
        .iter()
        .map(|a| {
            if docs {
                a.to_extended_json()
            } else {
                activation_summary(a)
            }
        })
        .collect();
    Ok(Json(Value::Array(entries)))
}

/// The record `id` of the caller's namespace `ns`.
async fn record(
    state: &AppState,
    caller: &Caller,
    ns: &str,
    id: &str,
) -> Result<WhiskActivation, ApiError> {
    caller.namespace(ns)?;
    let id = ActivationId::parse(id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .store
        .get_activation(caller.namespace_name(), &id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// `GET …/activations/{id}`: the extended record.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((ns, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let activation = record(&state, &caller, &ns, &id).await?;
    Ok(Json(activation.to_extended_json()))
}

/// `GET …/activations/{id}/result`: the extended response.
pub async fn result(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((ns, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let activation = record(&state, &caller, &ns, &id).await?;
    Ok(Json(activation.response.to_extended_json()))
}

/// `GET …/activations/{id}/logs`: `{"logs": [...]}`.
pub async fn logs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((ns, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let activation = record(&state, &caller, &ns, &id).await?;
    Ok(Json(json!({"logs": activation.logs})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn activation_queries_take_openwhisks_parameters() {
        let q = activation_query(&query(&[])).unwrap();
        assert_eq!(
            q,
            ActivationQuery {
                name: None,
                limit: 30,
                skip: 0,
                since: None,
                upto: None
            }
        );
        let q = activation_query(&query(&[
            ("name", "pkg/hello"),
            ("limit", "5"),
            ("skip", "2"),
            ("since", "10"),
            ("upto", "20"),
        ]))
        .unwrap();
        assert_eq!(
            q,
            ActivationQuery {
                name: Some("pkg/hello".into()),
                limit: 5,
                skip: 2,
                since: Some(10),
                upto: Some(20)
            }
        );
        for bad in ["a/b/c", "bad*name", "/x"] {
            let err = activation_query(&query(&[("name", bad)])).unwrap_err();
            assert!(
                err.message.starts_with("Parameter may be a 'simple' name"),
                "{bad}"
            );
        }
        assert!(activation_query(&query(&[("limit", "500")])).is_err());
        assert!(activation_query(&query(&[("since", "x")])).is_err());
    }
}
