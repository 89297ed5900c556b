//! What the client sends: entity paths and the body of an action's `PUT`.
//!
//! Bodies follow OpenWhisk's `WhiskActionPut` (docs/openwhisk.md §7): `exec`
//! `{kind, code, binary, main?}`, `parameters` and `annotations` as
//! `[{key, value}]`, `limits` with only the limits given. A `wasm` action's
//! code is its component, base64 with `binary: true`; a `js` action's code is
//! its source text.

use std::path::Path;

use anyhow::{Result, bail};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::action::ActionKind;

/// An action's place in the API: `/namespaces/{namespace}/actions/{segments}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPath {
    /// The namespace (`_` is the caller's own).
    pub namespace: String,
    /// `[package, ]name`.
    pub segments: Vec<String>,
}

impl ActionPath {
    /// `NAME`, `PKG/NAME`, or fully qualified `/NS/NAME`, `/NS/PKG/NAME`.
    pub fn parse(text: &str) -> Result<ActionPath> {
        let (namespace, rest) = match text.strip_prefix('/') {
            Some(qualified) => match qualified.split_once('/') {
                Some((ns, rest)) if !ns.is_empty() => (ns.to_string(), rest),
                _ => bail!("'{text}' names a namespace, not an action: use /NAMESPACE/NAME"),
            },
            None => ("_".to_string(), text),
        };
        let segments: Vec<String> = rest.split('/').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) || segments.len() > 2 {
            bail!("'{text}' is not an action name: use NAME, PKG/NAME or /NAMESPACE/[PKG/]NAME");
        }
        Ok(ActionPath {
            namespace,
            segments,
        })
    }

    /// `/namespace/[pkg/]name`, as messages show it.
    pub fn display(&self) -> String {
        format!("/{}/{}", self.namespace, self.segments.join("/"))
    }
}

/// The code of an action to deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct Exec {
    /// The `exec.kind` sent: the `--kind` given, else the kind's own name.
    pub kind: String,
    /// The code as sent: base64 when `binary`.
    pub code: String,
    /// True for `wasm` (a component).
    pub binary: bool,
    /// `--main`.
    pub main: Option<String>,
    /// `--docker IMAGE`: a blackbox action's image.
    pub image: Option<String>,
}

impl Exec {
    /// A blackbox action with no code of its own: its image has the action.
    pub fn image(image: Option<String>, main: Option<String>) -> Exec {
        Exec {
            kind: crate::protocol::BLACKBOX_KIND.to_string(),
            code: String::new(),
            binary: false,
            main,
            image,
        }
    }

    /// The code of `file`: its kind from `kind` (any name [`ActionKind`]
    /// parses, sent as given) or else from its extension.
    pub fn new(
        file: &Path,
        bytes: &[u8],
        kind: Option<&str>,
        main: Option<String>,
    ) -> Result<Exec> {
        let (parsed, kind) = match kind {
            // Not a Wasm kind: a kind the server runs in Docker. `native`
            // and `blackbox` code is an executable or a zip: base64. Another
            // image kind's code goes as `wsk` sends it: text, unless it is a
            // zip or not UTF-8.
            Some(name) if name.parse::<ActionKind>().is_err() => {
                let forced = matches!(name, "native" | crate::protocol::BLACKBOX_KIND);
                let text = std::str::from_utf8(bytes)
                    .ok()
                    .filter(|_| !forced && !bytes.starts_with(b"PK\x03\x04"));
                let (code, binary) = match text {
                    Some(text) => (text.to_string(), false),
                    None => (
                        base64::engine::general_purpose::STANDARD.encode(bytes),
                        true,
                    ),
                };
                return Ok(Exec {
                    kind: name.to_string(),
                    code,
                    binary,
                    main,
                    image: None,
                });
            }
            Some(name) => (name.parse::<ActionKind>()?, name.to_string()),
            None => match ActionKind::from_path(file) {
                Some(kind) => (kind, kind.as_str().to_string()),
                None => bail!(
                    "cannot tell the kind of {} from its extension; use --kind wasm|js",
                    file.display()
                ),
            },
        };
        let (code, binary) = match parsed {
            ActionKind::Wasm => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                true,
            ),
            ActionKind::Js => match std::str::from_utf8(bytes) {
                Ok(text) => (text.to_string(), false),
                Err(_) => bail!(
                    "{} is not UTF-8 text, as a js action must be",
                    file.display()
                ),
            },
        };
        Ok(Exec {
            kind,
            code,
            binary,
            main,
            image: None,
        })
    }
}

/// Limits given on the command line; `None` leaves the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// `limits.memory`, MB.
    pub memory: Option<u64>,
    /// `limits.timeout`, ms.
    pub timeout: Option<u64>,
    /// `limits.logs`, MB.
    pub logs: Option<u64>,
}

/// The body of `PUT …/actions/NAME`. `exec` is absent for an update that
/// changes only parameters, annotations or limits; empty lists and limits
/// are left out so an update keeps what it does not mention.
pub fn action_put(
    exec: Option<&Exec>,
    parameters: &Map<String, Value>,
    annotations: &Map<String, Value>,
    limits: Limits,
) -> Value {
    let mut body = Map::new();
    if let Some(exec) = exec {
        let mut e = Map::new();
        e.insert("kind".into(), exec.kind.clone().into());
        if !exec.code.is_empty() || exec.image.is_none() {
            e.insert("code".into(), exec.code.clone().into());
        }
        e.insert("binary".into(), exec.binary.into());
        if let Some(image) = &exec.image {
            e.insert("image".into(), image.clone().into());
        }
        if let Some(main) = &exec.main {
            e.insert("main".into(), main.clone().into());
        }
        body.insert("exec".into(), Value::Object(e));
    }
    if !parameters.is_empty() {
        body.insert("parameters".into(), key_values(parameters));
    }
    if !annotations.is_empty() {
        body.insert("annotations".into(), key_values(annotations));
    }
    let mut l = Map::new();
    for (key, value) in [
        ("memory", limits.memory),
        ("timeout", limits.timeout),
        ("logs", limits.logs),
    ] {
        if let Some(value) = value {
            l.insert(key.into(), value.into());
        }
    }
    if !l.is_empty() {
        body.insert("limits".into(), Value::Object(l));
    }
    Value::Object(body)
}

/// `{k: v, …}` as OpenWhisk's `[{"key": k, "value": v}, …]`.
fn key_values(map: &Map<String, Value>) -> Value {
    Value::Array(
        map.iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect(),
    )
}

/// `-p`/`-a` pairs (clap gives them flat: key, value, key, value…) over the
/// object of a `-P` file: later pairs win.
pub fn merge_pairs(mut base: Map<String, Value>, flat: &[String]) -> Map<String, Value> {
    for pair in flat.chunks_exact(2) {
        if let [key, value] = pair {
            base.insert(key.clone(), crate::cli::params::value_of(value));
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_paths() {
        let p = ActionPath::parse("hello").unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.segments.clone()),
            ("_", vec!["hello".to_string()])
        );
        assert_eq!(p.display(), "/_/hello");
        let p = ActionPath::parse("pkg/hello").unwrap();
        assert_eq!(p.segments, ["pkg", "hello"]);
        let p = ActionPath::parse("/guest/pkg/hello").unwrap();
        assert_eq!(p.namespace, "guest");
        assert_eq!(p.display(), "/guest/pkg/hello");
        for bad in ["", "/guest", "//x", "a//b", "a/b/c", "/ns/a/b/c", "x/"] {
            assert!(ActionPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kind_from_flag_else_extension() {
        let wasm = Exec::new(Path::new("a.wasm"), b"\0asm", None, None).unwrap();
        assert_eq!((wasm.kind.as_str(), wasm.binary), ("wasm", true));
        assert_eq!(wasm.code, "AGFzbQ==");
        let js = Exec::new(
            Path::new("a.js"),
            b"function main(){}",
            None,
            Some("go".into()),
        )
        .unwrap();
        assert_eq!((js.kind.as_str(), js.binary), ("js", false));
        assert_eq!(js.code, "function main(){}");
        let alias = Exec::new(Path::new("a.txt"), b"x", Some("nodejs:20"), None).unwrap();
        assert_eq!((alias.kind.as_str(), alias.binary), ("nodejs:20", false));
        let forced = Exec::new(Path::new("a.js"), b"\0asm", Some("wasm"), None).unwrap();
        assert!(forced.binary);
        assert!(Exec::new(Path::new("a.txt"), b"x", None, None).is_err());
        // A kind with no Wasm runtime goes to the server as base64: the
        // server knows which image kinds it runs (and refuses the others).
        let native = Exec::new(Path::new("exec"), b"\x7fELF", Some("native"), None).unwrap();
        assert_eq!(
            (native.kind.as_str(), native.code.as_str(), native.binary),
            ("native", "f0VMRg==", true)
        );
        let source = Exec::new(
            Path::new("a.py"),
            b"def main(a): ...",
            Some("python:3"),
            None,
        )
        .unwrap();
        assert_eq!(
            (source.code.as_str(), source.binary),
            ("def main(a): ...", false)
        );
        let zip = Exec::new(
            Path::new("a.zip"),
            b"PK\x03\x04rest",
            Some("python:3"),
            None,
        )
        .unwrap();
        assert!(zip.binary);
        let image = Exec::image(Some("me/act:1".into()), None);
        let body = action_put(Some(&image), &Map::new(), &Map::new(), Limits::default());
        assert_eq!(
            body,
            serde_json::json!({"exec": {"kind": "blackbox", "binary": false, "image": "me/act:1"}})
        );
        assert!(Exec::new(Path::new("a.js"), &[0xff, 0xfe], None, None).is_err());
    }

    #[test]
    fn put_bodies_carry_only_what_was_given() {
        let exec = Exec::new(Path::new("a.js"), b"src", None, Some("run".into())).unwrap();
        let params = merge_pairs(
            crate::cli::params::parse_object(r#"{"a":1,"b":"x"}"#).unwrap(),
            &["b".into(), "{\"y\":2}".into(), "c".into(), "text".into()],
        );
        let body = action_put(
            Some(&exec),
            &params,
            &Map::new(),
            Limits {
                memory: Some(128),
                timeout: None,
                logs: Some(0),
            },
        );
        assert_eq!(
            body,
            json!({
                "exec": {"kind": "js", "code": "src", "binary": false, "main": "run"},
                "parameters": [
                    {"key": "a", "value": 1},
                    {"key": "b", "value": {"y": 2}},
                    {"key": "c", "value": "text"}
                ],
                "limits": {"memory": 128, "logs": 0}
            })
        );
        assert_eq!(
            action_put(None, &Map::new(), &params, Limits::default())["annotations"][2]["key"],
            "c"
        );
        assert_eq!(
            action_put(None, &Map::new(), &Map::new(), Limits::default()),
            json!({})
        );
    }
}
