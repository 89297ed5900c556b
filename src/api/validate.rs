//! Bad input stops here: the bodies of `PUT` (an action) and `POST` (an
//! invoke's parameters) are parsed, sized and checked before anything is
//! compiled, stored or run.
//!
//! Pure functions only, so each rule has a unit test. The rules are
//! OpenWhisk's (`WhiskActionPut`, `Actions.scala`): a `PUT` that updates an
//! existing action keeps every field it does not give; parameters,
//! annotations, payloads and code have size limits (413); limits must lie in
//! the configured ranges (400); a payload may not override a bound parameter
//! of an action annotated `final: true` (400).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ApiError, messages};
use crate::action::ActionKind;
use crate::config::{LimitsConfig, RequestedLimits};
use crate::protocol::action::ActionLimits;
use crate::protocol::depth;
use crate::protocol::params::json_type;
use crate::protocol::{Parameters, SemVer, WhiskActionMetaData};

/// The body of `PUT …/actions/{name}` (OpenWhisk's `WhiskActionPut`); every
/// field optional, unknown fields ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionPut {
    /// How the action runs, with its code.
    #[serde(default)]
    pub exec: Option<ExecPut>,
    /// Default parameters.
    #[serde(default)]
    pub parameters: Option<Parameters>,
    /// Annotations.
    #[serde(default)]
    pub annotations: Option<Parameters>,
    /// Limits; each missing one takes the configured default (or, on an
    /// update, the action's current value).
    #[serde(default)]
    pub limits: Option<LimitsPut>,
    /// The version (default: `0.0.1`, or the current one's next patch).
    #[serde(default)]
    pub version: Option<SemVer>,
    /// Whether the action is shared.
    #[serde(default)]
    pub publish: Option<bool>,
    /// Annotations an update removes.
    #[serde(default)]
    pub del_annotations: Option<Vec<String>>,
}

/// `exec` of a `PUT`.
#[derive(Debug, Default, Deserialize)]
pub struct ExecPut {
    /// `wasm`, `js` or a `nodejs:*` alias.
    pub kind: String,
    /// The code: base64 of the component (`wasm`) or the source (`js`).
    #[serde(default)]
    pub code: Option<String>,
    /// Whether `code` is base64.
    #[serde(default)]
    pub binary: Option<bool>,
    /// The entry point (default `main`).
    #[serde(default)]
    pub main: Option<String>,
    /// The Docker image of a `blackbox` action.
    #[serde(default)]
    pub image: Option<String>,
}

/// `limits` of a `PUT`, in OpenWhisk's units (ms, MB, MB, count).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct LimitsPut {
    /// `timeout`, milliseconds.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// `memory`, MB.
    #[serde(default)]
    pub memory: Option<u64>,
    /// `logs`, MB.
    #[serde(default)]
    pub logs: Option<u64>,
    /// `concurrency`.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// `instances` (kept, not enforced).
    #[serde(default)]
    pub instances: Option<u32>,
}

/// Parses a JSON body into `T`, naming the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            "the body is empty; expected a JSON object",
        ));
    }
    too_deep(body)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::malformed(&e.inner().to_string())
        } else {
            ApiError::malformed(&format!("{path}: {}", e.inner()))
        }
    })
}

/// 400 when `body` nests deeper than [`depth::MAX_DEPTH`]: what is stored
/// from it (an action document, an activation message) must stay within
/// what every later read can parse (see [`depth`]).
fn too_deep(body: &[u8]) -> Result<(), ApiError> {
    if depth::nests_deeper_than(body, depth::MAX_DEPTH) {
        return Err(ApiError::malformed(&depth::too_deep_message(
            depth::MAX_DEPTH,
        )));
    }
    Ok(())
}

/// What a new `exec` runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewKind {
    /// A Wasm kind.
    Wasm(ActionKind),
    /// A kind run by the Docker fallback: `blackbox` with its `image`, or an
    /// image kind of the runtimes manifest (`native`, …) with none.
    Image {
        /// The kind's name.
        kind: String,
        /// A `blackbox` action's image.
        image: Option<String>,
    },
}

impl NewKind {
    /// The kind's name in the action document.
    pub fn name(&self) -> &str {
        match self {
            NewKind::Wasm(kind) => kind.as_str(),
            NewKind::Image { kind, .. } => kind,
        }
    }
}

/// The code of a new `exec`, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    /// The kind it runs as.
    pub kind: NewKind,
    /// The component (`wasm`), the source (`js`), or an image kind's code
    /// (decoded when binary: a zip or an executable).
    pub code: Vec<u8>,
    /// Whether the code is binary (`wasm`; base64 code of image kinds).
    pub binary: bool,
    /// The entry point, when not `main`.
    pub main: Option<String>,
}

/// OpenWhisk's `Exec.isBinaryCode`: non-empty, a multiple of 4 long, and
/// base64 characters only.
fn looks_binary(code: &str) -> bool {
    let t = code.trim();
    !t.is_empty()
        && t.len().is_multiple_of(4)
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r'))
}

/// A Docker image reference as `docker` accepts it: no whitespace or
/// control characters, at most 255 bytes.
fn check_image(image: &str) -> Result<String, ApiError> {
    let image = image.trim();
    if image.is_empty()
        || image.len() > 255
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_request(format!(
            "'image' must be a Docker image name such as 'me/action:1', got {image:?}"
        )));
    }
    Ok(image.to_string())
}

/// Decodes and checks an `exec` of an image kind: `blackbox` needs `image`
/// and may have code; a manifest kind needs code and takes no image.
fn decode_image_exec(exec: &ExecPut, kind: String, exec_limit: usize) -> Result<NewCode, ApiError> {
    let blackbox = kind == crate::protocol::BLACKBOX_KIND;
    let image = match (&exec.image, blackbox) {
        (Some(image), true) => Some(check_image(image)?),
        (None, true) => {
            return Err(ApiError::bad_request(
                "'image' must be a string defined in 'exec' for 'blackbox' actions",
            ));
        }
        (Some(_), false) => {
            return Err(ApiError::bad_request(format!(
                "'image' is for 'blackbox' actions; a '{kind}' action runs the image of its kind"
            )));
        }
        (None, false) => None,
    };
    let text = exec.code.as_deref().unwrap_or_default();
    if text.is_empty() && !blackbox {
        return Err(ApiError::bad_request(format!(
            "'code' must be a string defined in 'exec' for '{kind}' actions"
        )));
    }
    let binary = exec.binary.unwrap_or_else(|| looks_binary(text));
    // Binary code is stored decoded, like a `wasm` component; the container
    // gets it base64-encoded again at `/init`, as OpenWhisk sends it.
    let code = if binary {
        decode_base64(text).map_err(|e| {
            ApiError::bad_request(format!(
                "'code' of a binary '{kind}' action must be base64 (of a zip with an 'exec' file, or of the executable): {e}"
            ))
        })?
    } else {
        text.as_bytes().to_vec()
    };
    if code.len() > exec_limit {
        return Err(ApiError::too_big("Exec code", code.len(), exec_limit));
    }
    Ok(NewCode {
        kind: NewKind::Image { kind, image },
        code,
        binary,
        main: exec.main.clone().filter(|m| !m.trim().is_empty()),
    })
}

/// Decodes and checks `exec`: a known kind, code present, base64 for `wasm`,
/// source for `js`, an image for `blackbox`, at most `exec_limit` bytes
/// (413). `image_kinds` are the manifest's kinds run by Docker.
pub fn decode_exec<'a>(
    exec: &ExecPut,
    exec_limit: usize,
    image_kinds: impl IntoIterator<Item = &'a str>,
) -> Result<NewCode, ApiError> {
    let requested = exec.kind.trim().to_ascii_lowercase();
    let kind: ActionKind = match requested.parse() {
        Ok(kind) => kind,
        Err(crate::action::UnknownKind(_)) => {
            let images: Vec<&str> = image_kinds.into_iter().collect();
            if requested == crate::protocol::BLACKBOX_KIND || images.contains(&requested.as_str()) {
                return decode_image_exec(exec, requested, exec_limit);
            }
            return Err(ApiError::bad_request(format!(
                "unknown action kind '{requested}' (known kinds: wasm, js, nodejs:default, blackbox{})",
                images.iter().map(|k| format!(", {k}")).collect::<String>()
            )));
        }
    };
    if exec.image.is_some() {
        return Err(ApiError::bad_request(format!(
            "'image' is for 'blackbox' actions; a '{requested}' action runs in a Wasm sandbox"
        )));
    }
    let Some(text) = exec.code.as_deref() else {
        return Err(ApiError::bad_request(format!(
            "'code' must be a string defined in 'exec' for '{requested}' actions"
        )));
    };
    let code = match kind {
        ActionKind::Wasm => decode_base64(text).map_err(|e| {
            ApiError::bad_request(format!(
                "'code' of a 'wasm' action must be a base64-encoded WebAssembly component: {e}"
            ))
        })?,
        ActionKind::Js => {
            if exec.binary == Some(true) {
                return Err(ApiError::bad_request(
                    "a 'js' action takes its JavaScript source as 'code' with 'binary': false \
                     (zip archives are not supported)",
                ));
            }
            text.as_bytes().to_vec()
        }
    };
    if code.len() > exec_limit {
        return Err(ApiError::too_big("Exec code", code.len(), exec_limit));
    }
    let main = exec.main.clone().filter(|m| !m.trim().is_empty());
    Ok(NewCode {
        kind: NewKind::Wasm(kind),
        binary: kind == ActionKind::Wasm,
        code,
        main,
    })
}

/// Standard base64, ignoring line breaks and spaces (as `base64 -w 76` and
/// some clients write it).
fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        STANDARD.decode(compact)
    } else {
        STANDARD.decode(text)
    }
}

/// The size OpenWhisk counts for parameters: each key plus its value's JSON.
pub fn parameters_size(params: &Parameters) -> usize {
    params
        .0
        .iter()
        .map(|p| p.key.len() + p.value.to_string().len())
        .sum()
}

/// 413 when `params` (named `field`) are larger than `limit` bytes.
pub fn check_parameters_size(
    field: &str,
    params: &Parameters,
    limit: usize,
) -> Result<(), ApiError> {
    let size = parameters_size(params);
    if size > limit {
        return Err(ApiError::too_big(field, size, limit));
    }
    Ok(())
}

/// The limits of a created or updated action: each field from `put`, else
/// from `current` (an update), else the configured default; each checked
/// against its range (400 with OpenWhisk's message).
pub fn action_limits(
    config: &LimitsConfig,
    put: Option<&LimitsPut>,
    current: Option<&ActionLimits>,
) -> Result<ActionLimits, ApiError> {
    let put = put.copied().unwrap_or_default();
    let requested = RequestedLimits {
        timeout: put.timeout.or(current.map(|c| c.timeout)),
        memory: put.memory.or(current.map(|c| c.memory)),
        logs: put.logs.or(current.map(|c| c.logs)),
        concurrency: put.concurrency.or(current.map(|c| c.concurrency)),
    };
    let limits = config
        .action_limits(&requested)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(ActionLimits {
        timeout: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        memory: limits.memory_mb,
        logs: limits.logs_mb,
        concurrency: limits.concurrency,
        instances: put.instances.or(current.and_then(|c| c.instances)),
    })
}

/// The annotations of a created (`current` = `None`) or updated action, as
/// OpenWhisk's `amendAnnotations`: an update keeps the current ones minus
/// `del`, then sets the given ones; a create adds `provide-api-key: false`
/// unless given; both set `exec` to the kind.
pub fn action_annotations(
    put: Option<&Parameters>,
    del: Option<&[String]>,
    current: Option<&Parameters>,
    kind: &str,
) -> Parameters {
    let mut annotations = match current {
        Some(current) => {
            let mut kept = current.clone();
            if let Some(del) = del {
                kept.0.retain(|p| !del.contains(&p.key));
            }
            kept
        }
        None => Parameters::new(),
    };
    for p in put.map(|p| p.0.as_slice()).unwrap_or_default() {
        annotations.0.retain(|q| q.key != p.key);
        annotations.0.push(p.clone());
    }
    if current.is_none() && annotations.get("provide-api-key").is_none() {
        annotations.set("provide-api-key", false);
    }
    annotations.set("exec", kind);
    annotations
}

/// The version of a created or updated action: the given one, else the
/// current one's next patch (an update), else `0.0.1`.
pub fn action_version(put: Option<SemVer>, current: Option<SemVer>) -> SemVer {
    put.unwrap_or_else(|| current.map(SemVer::up_patch).unwrap_or_default())
}

/// The parameters of an invoke's body: none when empty or `null`, else a
/// JSON object (400 otherwise).
pub fn parse_payload(body: &[u8]) -> Result<Option<Map<String, Value>>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    too_deep(body)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(Value::Null) => Ok(None),
        Ok(other) => Err(ApiError::malformed(&format!(
            "the parameters must be a JSON object, got {}",
            json_type(&other)
        ))),
        Err(e) => Err(ApiError::malformed(&e.to_string())),
    }
}

/// The run parameters of an invoke (the action's parameters overridden by
/// the payload) and the names that go to `init`. A payload key naming a
/// bound (non-null) parameter of an action annotated `final: true` is 400.
pub fn invoke_parameters(
    action: &WhiskActionMetaData,
    payload: Option<Map<String, Value>>,
) -> Result<(Map<String, Value>, Vec<String>), ApiError> {
    let payload = payload.unwrap_or_default();
    if action.annotation("final") == Some(&Value::Bool(true)) {
        let overrides_bound = payload.keys().any(|key| {
            action
                .parameters
                .get(key)
                .is_some_and(|value| !value.is_null())
        });
        if overrides_bound {
            return Err(ApiError::bad_request(messages::PARAMETERS_NOT_ALLOWED));
        }
    }
    let init_args = action.parameters.init_keys().map(str::to_string).collect();
    if action.parameters.is_empty() {
        return Ok((payload, init_args));
    }
    let mut merged = action.parameters.to_object();
    merged.extend(payload);
    Ok((merged, init_args))
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
