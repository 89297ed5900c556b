//! The JSON the API answers with, built in one place: an action as OpenWhisk
//! returns it (with or without its code), an entry of an action list, and
//! the summary form of an activation list.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::action::ActionKind;
use crate::pool::ports::ExecutableAction;
use crate::pool::proxy::action_kind;
use crate::protocol::{ExecMetaData, WhiskActivation};

/// The action document as OpenWhisk's API returns it: `namespace`, `name`,
/// `version`, `publish`, `exec` (`kind`, `binary`, `main`?), `annotations`,
/// `limits`, `parameters`, `updated`; `exec.code` only when `with_code`
/// (base64 for `wasm`, the source for `js`).
pub fn action_json(action: &ExecutableAction, with_code: bool) -> Result<Value, ApiError> {
    let mut doc = match serde_json::to_value(&action.meta) {
        Ok(Value::Object(doc)) => doc,
        Ok(_) => {
            return Err(ApiError::internal(
                "an action did not serialize to an object",
            ));
        }
        Err(e) => return Err(ApiError::internal(format!("serializing an action: {e}"))),
    };
    doc.remove("binding");
    if with_code && let Some(Value::Object(exec)) = doc.get_mut("exec") {
        exec.insert("code".into(), code_json(action));
    }
    Ok(Value::Object(doc))
}

/// The code as `exec.code` carries it: base64 when binary (a `wasm`
/// component, an image kind's zip or executable), else the text.
fn code_json(action: &ExecutableAction) -> Value {
    let binary = match &action.meta.exec {
        ExecMetaData::Code { binary, .. } => *binary,
        ExecMetaData::Sequence { .. } => false,
    };
    if binary || action_kind(action) == Some(ActionKind::Wasm) {
        Value::String(STANDARD.encode(&action.code))
    } else {
        Value::String(String::from_utf8_lossy(&action.code).into_owned())
    }
}

/// An entry of `GET …/actions`: the document without parameters and code
/// (OpenWhisk's list view).
pub fn action_list_entry(action: &ExecutableAction) -> Result<Value, ApiError> {
    let mut doc = action_json(action, false)?;
    if let Value::Object(map) = &mut doc {
        map.remove("parameters");
    }
    Ok(doc)
}

/// The summary of an activation in `GET …/activations` without `docs=true`
/// (OpenWhisk's `summaryAsJson`): `namespace`, `name`, `version`,
/// `publish`, `annotations`, `activationId`, `start`, `cause`?, and once
/// ended `end`, `duration` and `statusCode`.
pub fn activation_summary(activation: &WhiskActivation) -> Value {
    let mut extended = match activation.to_extended_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut summary = Map::new();
    for key in [
        "namespace",
        "name",
        "version",
        "publish",
        "annotations",
        "activationId",
        "start",
        "cause",
    ] {
        if let Some(value) = extended.remove(key) {
            summary.insert(key.into(), value);
        }
    }
    if activation.end != 0 {
        for key in ["end", "duration"] {
            if let Some(value) = extended.remove(key) {
                summary.insert(key.into(), value);
            }
        }
        summary.insert(
            "statusCode".into(),
            activation.response.status_code.code().into(),
        );
    }
    Value::Object(summary)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
