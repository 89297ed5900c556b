//! An action's metadata as creation and deletion messages carry it
//! (`WhiskActionMetaData`, docs/openwhisk.md §3.2): everything but the code.
//!
//! The invoker decides from this alone whether it can run the action (a
//! sequence is not executable), which kind of stem cell fits, and how much
//! memory to account; the code itself is fetched from the action store.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fqn::{EntityName, EntityPath, FullyQualifiedEntityName};
use super::ids::SemVer;
use super::params::Parameters;

/// The kind of sequences: actions that only name other actions.
pub const SEQUENCE_KIND: &str = "sequence";
/// The kind of Docker image actions.
pub const BLACKBOX_KIND: &str = "blackbox";

/// `exec` without the code: how the action runs.
///
/// JSON: `{"kind","binary","main"?,"image"?}` for code and blackbox actions,
/// `{"kind":"sequence","components":["/ns/pkg/act",…]}` for sequences. The
/// kind is read trimmed and lowercased, as OpenWhisk reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ExecRepr", into = "ExecRepr")]
pub enum ExecMetaData {
    /// An action with code (or a blackbox image).
    Code {
        /// The runtime kind (`nodejs:20`, `wasm`, `blackbox`, …).
        kind: String,
        /// Whether the code is binary (base64).
        binary: bool,
        /// The entry point, when not the kind's default.
        main: Option<String>,
        /// The Docker image of a blackbox action.
        image: Option<String>,
    },
    /// A sequence of other actions.
    Sequence {
        /// The actions run in order, as fully qualified names.
        components: Vec<FullyQualifiedEntityName>,
    },
}

#[derive(Serialize, Deserialize)]
struct ExecRepr {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    main: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    components: Option<Vec<Value>>,
}

impl TryFrom<ExecRepr> for ExecMetaData {
    type Error = String;
    fn try_from(r: ExecRepr) -> Result<Self, String> {
        let kind = r.kind.trim().to_lowercase();
        if kind.is_empty() {
            return Err("'kind' must be a string defined in 'exec'".into());
        }
        if kind == SEQUENCE_KIND {
            let components = r
                .components
                .ok_or("'components' must be defined for sequence kind")?
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<Vec<FullyQualifiedEntityName>, _>>()
                .map_err(|e| format!("'components' malformed: {e}"))?;
            return Ok(ExecMetaData::Sequence { components });
        }
        let binary = r
            .binary
            .ok_or("'binary' must be a boolean defined in 'exec'")?;
        if kind == BLACKBOX_KIND && r.image.is_none() {
            return Err("'image' must be a string defined in 'exec' for 'blackbox' actions".into());
        }
        Ok(ExecMetaData::Code {
            kind,
            binary,
            main: r.main,
            image: r.image,
        })
    }
}

impl From<ExecMetaData> for ExecRepr {
    fn from(e: ExecMetaData) -> Self {
        match e {
            ExecMetaData::Code {
                kind,
                binary,
                main,
                image,
            } => ExecRepr {
                kind,
                binary: Some(binary),
                main,
                image,
                components: None,
            },
            ExecMetaData::Sequence { components } => ExecRepr {
                kind: SEQUENCE_KIND.to_owned(),
                binary: None,
                main: None,
                image: None,
                components: Some(
                    components
                        .iter()
                        .map(|c| Value::String(c.qualified_name_with_leading_slash()))
                        .collect(),
                ),
            },
        }
    }
}

impl ExecMetaData {
    /// The kind: the runtime's, or `sequence`.
    pub fn kind(&self) -> &str {
        match self {
            ExecMetaData::Code { kind, .. } => kind,
            ExecMetaData::Sequence { .. } => SEQUENCE_KIND,
        }
    }

    /// True for a Docker image action (OpenWhisk's `pull`).
    pub fn is_blackbox(&self) -> bool {
        self.kind() == BLACKBOX_KIND
    }
}

/// An action's limits. JSON: `{"timeout":ms,"memory":MB,"logs":MB,"concurrency":n,"instances"?:n}`.
///
/// `timeout` and `memory` are required on read; `logs` and `concurrency`
/// default to OpenWhisk's 10 MB and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimits {
    /// The time limit of one activation, in milliseconds.
    pub timeout: u64,
    /// The memory limit of a container, in MB.
    pub memory: u64,
    /// The log size limit of one activation, in MB.
    #[serde(default = "default_logs")]
    pub logs: u64,
    /// How many activations one container runs at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// The most containers the action may have, when capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
}

fn default_logs() -> u64 {
    10
}

fn default_concurrency() -> u32 {
    1
}

impl Default for ActionLimits {
    /// OpenWhisk's defaults: 60 s, 256 MB, 10 MB of logs, concurrency 1.
    fn default() -> Self {
        ActionLimits {
            timeout: 60_000,
            memory: 256,
            logs: default_logs(),
            concurrency: default_concurrency(),
            instances: None,
        }
    }
}

/// An action's document without its code (docs/openwhisk.md §3.2).
///
/// On read, fields OpenWhisk's constructor defaults (parameters, limits,
/// version, publish, annotations, updated) may be absent; they are always
/// written. `binding` is omitted when unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhiskActionMetaData {
    /// The path the action lives under: `ns` or `ns/pkg`.
    pub namespace: EntityPath,
    /// The action's name.
    pub name: EntityName,
    /// How it runs.
    pub exec: ExecMetaData,
    /// Default parameters.
    #[serde(default)]
    pub parameters: Parameters,
    /// Limits.
    #[serde(default)]
    pub limits: ActionLimits,
    /// Version, bumped on every update.
    #[serde(default)]
    pub version: SemVer,
    /// Whether the action is shared.
    #[serde(default)]
    pub publish: bool,
    /// Annotations (`[{"key","value"}]`).
    #[serde(default)]
    pub annotations: Parameters,
    /// Last update, in epoch milliseconds.
    #[serde(default)]
    pub updated: u64,
    /// The package binding the action was reached through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<EntityPath>,
}

impl WhiskActionMetaData {
    /// The action's fully qualified name, with its version.
    pub fn fully_qualified_name(&self) -> FullyQualifiedEntityName {
        FullyQualifiedEntityName::new(self.namespace.clone(), self.name.clone())
            .with_version(Some(self.version))
    }

    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&Value> {
        self.annotations.get(key)
    }

    /// Whether annotation `key` is truthy (OpenWhisk's `isTruthy`).
    pub fn has_truthy_annotation(&self, key: &str, if_missing: bool) -> bool {
        self.annotations.is_truthy(key, if_missing)
    }

    /// True when a container can run this action: anything but a sequence.
    pub fn is_executable(&self) -> bool {
        !matches!(self.exec, ExecMetaData::Sequence { .. })
    }

    /// The memory limit, in MB.
    pub fn memory_mb(&self) -> u64 {
        self.limits.memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::nodejs_metadata_json;
    use serde_json::json;

    #[test]
    fn code_action_round_trips() {
        let v = nodejs_metadata_json();
        let meta: WhiskActionMetaData = crate::fixtures::round_trip(&v);
        assert!(meta.is_executable());
        assert_eq!(meta.exec.kind(), "nodejs:20");
        assert_eq!(meta.annotation("exec"), Some(&json!("nodejs:20")));
        assert!(!meta.has_truthy_annotation("provide-api-key", true));
        assert_eq!(meta.fully_qualified_name().to_string(), "guest/hello@0.0.1");
        assert_eq!(meta.memory_mb(), 256);
    }

    #[test]
    fn blackbox_and_binding_and_instances_round_trip() {
        let v = json!({
            "namespace": "ns/pkg", "name": "img",
            "exec": {"kind": "blackbox", "image": "me/act:1", "binary": false, "main": "run"},
            "parameters": [], "limits": {"timeout": 1000, "memory": 128, "logs": 0,
                                         "concurrency": 4, "instances": 2},
            "version": "1.2.3", "publish": true, "annotations": [], "updated": 5,
            "binding": "other/bound"
        });
        let meta: WhiskActionMetaData = crate::fixtures::round_trip(&v);
        assert!(meta.exec.is_blackbox());
        assert_eq!(meta.limits.instances, Some(2));
    }

    #[test]
    fn sequence_is_not_executable_and_components_keep_their_form() {
        let v = json!({
            "namespace": "ns", "name": "seq",
            "exec": {"kind": "sequence", "components": ["/ns/a", "/ns/pkg/b"]},
            "parameters": [], "limits": {"timeout": 60000, "memory": 256, "logs": 10,
                                         "concurrency": 1},
            "version": "0.0.1", "publish": false, "annotations": [], "updated": 0
        });
        let meta: WhiskActionMetaData = crate::fixtures::round_trip(&v);
        assert!(!meta.is_executable());
        let ExecMetaData::Sequence { components } = &meta.exec else {
            panic!("not a sequence");
        };
        assert_eq!(components[1].as_string_without_version(), "ns/pkg/b");
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let meta: WhiskActionMetaData = serde_json::from_value(json!({
            "namespace": "ns", "name": "a", "exec": {"kind": " NodeJS:20 ", "binary": false},
            "limits": {"timeout": 100, "memory": 128}
        }))
        .unwrap();
        assert_eq!(meta.exec.kind(), "nodejs:20");
        assert_eq!((meta.limits.logs, meta.limits.concurrency), (10, 1));
        assert_eq!(meta.version, SemVer::default());
        assert_eq!(ActionLimits::default().timeout, 60_000);
    }

    #[test]
    fn malformed_metadata_is_an_error() {
        let mut base = nodejs_metadata_json();
        for (field, bad) in [
            ("exec", json!({"kind": "nodejs:20"})),
            ("exec", json!({"kind": "", "binary": false})),
            ("exec", json!({"kind": "sequence"})),
            ("exec", json!({"kind": "sequence", "components": ["solo"]})),
            ("exec", json!({"kind": "blackbox", "binary": false})),
            ("exec", json!("nodejs:20")),
            ("limits", json!({"memory": 256})),
            ("limits", json!({"timeout": -1, "memory": 256})),
            ("name", json!("a/b")),
            ("version", json!("x")),
        ] {
            let saved = base[field].take();
            base[field] = bad.clone();
            assert!(
                serde_json::from_value::<WhiskActionMetaData>(base.clone()).is_err(),
                "{field}: {bad}"
            );
            base[field] = saved;
        }
    }
}
