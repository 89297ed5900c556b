//! The activation record (docs/openwhisk.md §6.5, `COM/core/entity/WhiskActivation.scala`):
//! what an activation produced, as stored and as sent in completion acks.
//!
//! Two JSON forms exist. The stored form (serde) has `response.statusCode`;
//! the REST API form ([`WhiskActivation::to_extended_json`]) replaces it with
//! `success` and a human `status`, and always shows a `duration`. The API
//! form is built by hand from owned values, so it cannot fail.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fqn::{EntityName, EntityPath};
use super::ids::{ActivationId, SemVer};
use super::params::Parameters;

/// How an activation ended. JSON: the number 0..3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum StatusCode {
    /// 0: the action ran and returned a result.
    Success,
    /// 1: the action ran and returned `{"error": …}`; the container stays warm.
    ApplicationError,
    /// 2: the action failed (bad init, timeout, crash, bad result).
    DeveloperError,
    /// 3: the system failed.
    WhiskError,
}

impl StatusCode {
    /// The number on the wire.
    pub fn code(self) -> u8 {
        match self {
            StatusCode::Success => 0,
            StatusCode::ApplicationError => 1,
            StatusCode::DeveloperError => 2,
            StatusCode::WhiskError => 3,
        }
    }

    /// The API's `status` text (`messageForCode`): `success`,
    /// `application error`, `action developer error`, `whisk internal error`.
    pub fn message(self) -> &'static str {
        match self {
            StatusCode::Success => "success",
            StatusCode::ApplicationError => "application error",
            StatusCode::DeveloperError => "action developer error",
            StatusCode::WhiskError => "whisk internal error",
        }
    }

    /// The internal status id (`statusForCode`): `success`,
    /// `application_error`, `action_developer_error`, `whisk_internal_error`.
    pub fn status_id(self) -> &'static str {
        match self {
            StatusCode::Success => "success",
            StatusCode::ApplicationError => "application_error",
            StatusCode::DeveloperError => "action_developer_error",
            StatusCode::WhiskError => "whisk_internal_error",
        }
    }
}

impl TryFrom<u8> for StatusCode {
    type Error = String;
    fn try_from(code: u8) -> Result<Self, String> {
        match code {
            0 => Ok(StatusCode::Success),
            1 => Ok(StatusCode::ApplicationError),
            2 => Ok(StatusCode::DeveloperError),
            3 => Ok(StatusCode::WhiskError),
            _ => Err(format!("activation status code {code} is not in 0..=3")),
        }
    }
}

impl From<StatusCode> for u8 {
    fn from(s: StatusCode) -> u8 {
        s.code()
    }
}

/// An activation's outcome. JSON: `{"statusCode":0..3,"result":{…}?,"size":n?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationResponse {
    /// How it ended.
    pub status_code: StatusCode,
    /// The result; errors are `{"error": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The result's size in bytes, when it was measured (or truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl ActivationResponse {
    /// A success with `result`.
    pub fn success(result: Option<Value>) -> Self {
        ActivationResponse {
            status_code: StatusCode::Success,
            result,
            size: None,
        }
    }

    /// An error response: the result is `{"error": error}`.
    pub fn error(status_code: StatusCode, error: impl Into<Value>) -> Self {
        let mut result = Map::new();
        result.insert("error".into(), error.into());
        ActivationResponse {
            status_code,
            result: Some(Value::Object(result)),
            size: None,
        }
    }

    /// An application error (status 1) with `{"error": error}`.
    pub fn application_error(error: impl Into<Value>) -> Self {
        Self::error(StatusCode::ApplicationError, error)
    }

    /// A developer error (status 2) with `{"error": message}`.
    pub fn developer_error(message: impl Into<Value>) -> Self {
        Self::error(StatusCode::DeveloperError, message)
    }

    /// A whisk error (status 3) with `{"error": message}`.
    pub fn whisk_error(message: impl Into<Value>) -> Self {
        Self::error(StatusCode::WhiskError, message)
    }

    /// True for status 0.
    pub fn is_success(&self) -> bool {
        self.status_code == StatusCode::Success
    }

    /// True for status 3: the system's fault (`isSystemError` of acks).
    pub fn is_whisk_error(&self) -> bool {
        self.status_code == StatusCode::WhiskError
    }

    /// The API form: `statusCode` replaced by `"success"` and `"status"`.
    pub fn to_extended_json(&self) -> Value {
        let mut obj = Map::new();
        if let Some(result) = &self.result {
            obj.insert("result".into(), result.clone());
        }
        if let Some(size) = self.size {
            obj.insert("size".into(), size.into());
        }
        obj.insert("success".into(), self.is_success().into());
        obj.insert("status".into(), self.status_code.message().into());
        Value::Object(obj)
    }
}

/// One activation's record (docs/openwhisk.md §6.5).
///
/// On read, the fields OpenWhisk's constructor defaults (`response`, `logs`,
/// `version`, `publish`, `annotations`) may be absent; they are always
/// written. `cause` and `duration` are omitted when unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhiskActivation {
    /// The invoking namespace.
    pub namespace: EntityPath,
    /// The action's name.
    pub name: EntityName,
    /// The subject that invoked.
    pub subject: String,
    /// The activation's id.
    pub activation_id: ActivationId,
    /// Start, in epoch ms (run start, minus the init time after a cold start).
    pub start: u64,
    /// End of the run, in epoch ms (0 for an activation that never ended).
    pub end: u64,
    /// The sequence activation this one is a component of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    /// The outcome.
    #[serde(default = "default_response")]
    pub response: ActivationResponse,
    /// Log lines (`"<iso time> stdout: <text>"`).
    #[serde(default)]
    pub logs: Vec<String>,
    /// The action's version.
    #[serde(default)]
    pub version: SemVer,
    /// Whether the activation is public.
    #[serde(default)]
    pub publish: bool,
    /// Annotations: `path`, `kind`, `limits`, `waitTime`, `initTime`, …
    #[serde(default)]
    pub annotations: Parameters,
    /// Duration in ms (including init after a cold start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

fn default_response() -> ActivationResponse {
    ActivationResponse::success(None)
}

impl WhiskActivation {
    /// The API form (`toExtendedJson`): the stored form with the extended
    /// response. If the activation ended (`end` ≠ 0), `duration` is set,
    /// computed as `end − start` when it was not recorded; otherwise `end`
    /// is left out.
    pub fn to_extended_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("namespace".into(), self.namespace.to_string().into());
        obj.insert("name".into(), self.name.as_str().into());
        obj.insert("subject".into(), self.subject.clone().into());
        obj.insert("activationId".into(), self.activation_id.as_str().into());
        obj.insert("start".into(), self.start.into());
        if let Some(cause) = &self.cause {
            obj.insert("cause".into(), cause.as_str().into());
        }
        obj.insert("response".into(), self.response.to_extended_json());
        obj.insert("logs".into(), self.logs.clone().into());
        obj.insert("version".into(), self.version.to_string().into());
        obj.insert("publish".into(), self.publish.into());
        obj.insert("annotations".into(), parameters_to_json(&self.annotations));
        if self.end != 0 {
            obj.insert("end".into(), self.end.into());
            let duration = self
                .duration
                .unwrap_or_else(|| self.end.saturating_sub(self.start));
            obj.insert("duration".into(), duration.into());
        } else if let Some(duration) = self.duration {
            obj.insert("duration".into(), duration.into());
        }
        Value::Object(obj)
    }

    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&Value> {
        self.annotations.get(key)
    }
}

/// Parameters in their JSON form, built without a fallible serializer.
fn parameters_to_json(params: &Parameters) -> Value {
    params
        .0
        .iter()
        .map(|p| {
            let mut obj = Map::new();
            obj.insert("key".into(), p.key.clone().into());
            obj.insert("value".into(), p.value.clone());
            if p.init {
                obj.insert("init".into(), true.into());
            }
            if let Some(e) = &p.encryption {
                obj.insert("encryption".into(), e.clone().into());
            }
            Value::Object(obj)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::whisk_activation_json;
    use serde_json::json;

    #[test]
    fn activation_record_round_trips() {
        let v = whisk_activation_json();
        let a: WhiskActivation = crate::fixtures::round_trip(&v);
        assert_eq!(a.annotation("initTime"), Some(&json!(30)));
        assert!(a.response.is_success());
    }

    #[test]
    fn optional_fields_are_omitted_and_cause_round_trips() {
        let mut v = whisk_activation_json();
        let obj = v.as_object_mut().unwrap();
        obj.remove("duration");
        obj["response"] = json!({"statusCode": 2, "result": {"error": "boom"}, "size": 17});
        obj.insert("cause".into(), json!("fedcba9876543210fedcba9876543210"));
        let a: WhiskActivation = crate::fixtures::round_trip(&v);
        assert_eq!(a.response.status_code, StatusCode::DeveloperError);
    }

    #[test]
    fn extended_json_is_the_api_form() {
        let a: WhiskActivation = serde_json::from_value(whisk_activation_json()).unwrap();
        let mut expected = whisk_activation_json();
        expected["response"] = json!({"result": {"greeting": "hi world"}, "success": true,
                                      "status": "success"});
        assert_eq!(a.to_extended_json(), expected);

        // Without a recorded duration, it is computed from start and end.
        let mut b = a.clone();
        b.duration = None;
        assert_eq!(b.to_extended_json()["duration"], json!(50));

        // An activation that never ended has no `end`.
        b.end = 0;
        let v = b.to_extended_json();
        assert!(v.get("end").is_none() && v.get("duration").is_none());
    }

    #[test]
    fn extended_status_texts() {
        for (code, status, id, success) in [
            (StatusCode::Success, "success", "success", true),
            (
                StatusCode::ApplicationError,
                "application error",
                "application_error",
                false,
            ),
            (
                StatusCode::DeveloperError,
                "action developer error",
                "action_developer_error",
                false,
            ),
            (
                StatusCode::WhiskError,
                "whisk internal error",
                "whisk_internal_error",
                false,
            ),
        ] {
            let r = ActivationResponse::error(code, "e");
            let ext = r.to_extended_json();
            assert_eq!(
                ext,
                json!({"result": {"error": "e"}, "success": success, "status": status})
            );
            assert_eq!(code.status_id(), id);
            assert_eq!(r.is_whisk_error(), code == StatusCode::WhiskError);
        }
    }

    #[test]
    fn defaults_fill_a_sparse_record() {
        let a: WhiskActivation = serde_json::from_value(json!({
            "namespace": "ns", "name": "a", "subject": "s",
            "activationId": "0123456789abcdef0123456789abcdef", "start": 1, "end": 2
        }))
        .unwrap();
        assert!(a.response.is_success() && a.logs.is_empty() && a.duration.is_none());
        assert_eq!(
            serde_json::to_value(&a.response).unwrap(),
            json!({"statusCode": 0})
        );
    }

    #[test]
    fn malformed_records_are_errors() {
        for (field, bad) in [
            ("response", json!({"statusCode": 4})),
            ("response", json!({"result": {}})),
            ("start", json!("2023-11-14T22:13:20Z")),
            ("activationId", json!("x")),
            ("logs", json!("line")),
            ("annotations", json!({})),
        ] {
            let mut v = whisk_activation_json();
            v[field] = bad.clone();
            assert!(
                serde_json::from_value::<WhiskActivation>(v).is_err(),
                "{field}: {bad}"
            );
        }
    }
}
