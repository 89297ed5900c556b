//! What an action is, as far as a sandbox is concerned: its kind, its code,
//! its limits, and the context of one activation.
//!
//! The names and defaults are OpenWhisk's (`limits.memory`, `limits.timeout`,
//! `limits.logs` in the action document; docs/openwhisk.md §7).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How an action's code is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// A compiled component implementing the `action` world; its code is the
    /// component itself. Cold-starts from the compile cache, no stem cell.
    Wasm,
    /// JavaScript source run by the QuickJS runtime component (`runtimes/js`),
    /// whose prewarmed instances are the stem cells of this kind.
    Js,
}

impl ActionKind {
    /// The kind's name in action documents and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Wasm => "wasm",
            ActionKind::Js => "js",
        }
    }

    /// The kind a file is deployed as, from its extension (`.wasm`, `.js`).
    pub fn from_path(path: &std::path::Path) -> Option<ActionKind> {
        match path.extension()?.to_str()? {
            "wasm" => Some(ActionKind::Wasm),
            "js" | "mjs" | "cjs" => Some(ActionKind::Js),
            _ => None,
        }
    }

    /// True when the code is given to a runtime component's `init` (the kind
    /// has stem cells); false when the code is the component.
    pub fn has_runtime(self) -> bool {
        matches!(self, ActionKind::Js)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown action kind.
#[derive(Debug, thiserror::Error)]
#[error("unknown action kind '{0}' (known kinds: wasm, js, nodejs:default)")]
pub struct UnknownKind(pub String);

impl FromStr for ActionKind {
    type Err = UnknownKind;

    /// Accepts our names and OpenWhisk's `nodejs:*` aliases for `js`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wasm" | "wasm:default" => Ok(ActionKind::Wasm),
            "js" | "js:default" | "nodejs" | "nodejs:default" | "nodejs:20" | "nodejs:22" => {
                Ok(ActionKind::Js)
            }
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

/// The limits a sandbox enforces on an action: its time, memory and log
/// budgets. OpenWhisk's `limits` object as stored and sent
/// (`wasmwhisk_protocol::ActionLimits`) is converted to these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock limit of `init` and of each `run` (`limits.timeout`, default 60 s).
    pub timeout: Duration,
    /// Linear memory of the sandbox, in MiB (`limits.memory`, default 256).
    pub memory_mb: u64,
    /// Log bytes kept per activation, in MiB (`limits.logs`, default 10; 0 = no logs).
    pub logs_mb: u64,
    /// Activations one sandbox runs at once (`limits.concurrency`, default 1).
    pub concurrency: u32,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            timeout: Duration::from_secs(60),
            memory_mb: 256,
            logs_mb: 10,
            concurrency: 1,
        }
    }
}

impl SandboxLimits {
    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Log limit in bytes.
    pub fn log_bytes(&self) -> usize {
        usize::try_from(self.logs_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// What `init` receives (OpenWhisk's `/init` `value`).
#[derive(Clone, Debug, Default)]
pub struct InitArgs {
    /// The action's name.
    pub name: String,
    /// Entry point; `main` by default.
    pub main: String,
    /// Source text for a runtime kind; empty for `wasm`.
    pub code: Vec<u8>,
    /// True if `code` is binary.
    pub binary: bool,
    /// Init-time environment (`__OW_*` known at init, init parameters).
    pub env: Vec<(String, String)>,
}

/// The context of one activation (OpenWhisk's `/run` body besides `value`).
#[derive(Clone, Debug, Default)]
pub struct ActivationContext {
    /// 32 lowercase hex characters.
    pub activation_id: String,
    /// The invoking namespace.
    pub namespace: String,
    /// `/ns[/pkg]/name`.
    pub action_name: String,
    /// Semantic version of the action, `0.0.1` by default.
    pub action_version: String,
    /// The transaction id.
    pub transaction_id: String,
    /// `uuid:key`, when the action may see an API key.
    pub api_key: Option<String>,
}

/// A fresh activation id: 32 lowercase hex characters, like OpenWhisk's.
pub fn new_activation_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock, still unique per call.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_with_openwhisk_aliases() {
        assert_eq!("wasm".parse::<ActionKind>().ok(), Some(ActionKind::Wasm));
        assert_eq!(
            "nodejs:default".parse::<ActionKind>().ok(),
            Some(ActionKind::Js)
        );
        assert!("python:3".parse::<ActionKind>().is_err());
        assert_eq!(
            ActionKind::from_path(std::path::Path::new("a/b.js")),
            Some(ActionKind::Js)
        );
        assert_eq!(ActionKind::from_path(std::path::Path::new("b.txt")), None);
    }

    #[test]
    fn activation_ids_are_32_hex_chars_and_differ() {
        let a = new_activation_id();
        let b = new_activation_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
