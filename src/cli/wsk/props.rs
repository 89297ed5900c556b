//! Where the client finds its API host and key.
//!
//! Each value is resolved on its own, first found wins: the flag
//! (`--apihost`, `--auth`), the environment (`WASMWHISK_APIHOST`,
//! `WASMWHISK_AUTH`), a props file (`--props FILE`, else `$WASMWHISK_PROPS`),
//! then `{data-dir}/wskprops`, which `wasmwhisk standalone` rewrites at every
//! start. Props files use `wsk`'s `.wskprops` format (`KEY=VALUE` lines), so
//! a file written for `wsk` works here and the other way round. `~/.wskprops`
//! itself is deliberately not read: a stray one would point this client at
//! some other OpenWhisk.
//!
//! Resolution is a pure function of its inputs ([`resolve`]) so the order is
//! unit-tested without touching the process environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Url;

/// The props file `wasmwhisk standalone` writes into its data directory.
pub const DATA_DIR_PROPS: &str = crate::cli::files::PROPS;

/// The values of a props file that this client reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    /// `APIHOST`.
    pub apihost: Option<String>,
    /// `AUTH` (`uuid:key`).
    pub auth: Option<String>,
}

impl Props {
    /// Parses `KEY=VALUE` lines; blank lines and `#` comments are skipped,
    /// keys other than `APIHOST` and `AUTH` ignored, empty values unset.
    pub fn parse(text: &str) -> Props {
        let mut props = Props::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = (!value.is_empty()).then(|| value.to_string());
            match key.trim() {
                "APIHOST" => props.apihost = value,
                "AUTH" => props.auth = value,
                _ => {}
            }
        }
        props
    }
}

/// Where each value may come from, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--apihost`.
    pub flag_apihost: Option<String>,
    /// `--auth`.
    pub flag_auth: Option<String>,
    /// `$WASMWHISK_APIHOST`.
    pub env_apihost: Option<String>,
    /// `$WASMWHISK_AUTH`.
    pub env_auth: Option<String>,
    /// `--props FILE`, else `$WASMWHISK_PROPS`: must exist when given.
    pub props_file: Option<PathBuf>,
    /// The data directory, whose `wskprops` is read if it exists.
    pub data_dir: PathBuf,
}

impl Sources {
    /// The sources of this process: its flags and its environment.
    pub fn from_process(
        apihost: Option<String>,
        auth: Option<String>,
        props: Option<PathBuf>,
        data_dir: &Path,
    ) -> Sources {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Sources {
            flag_apihost: apihost.filter(|v| !v.is_empty()),
            flag_auth: auth.filter(|v| !v.is_empty()),
            env_apihost: env("WASMWHISK_APIHOST"),
            env_auth: env("WASMWHISK_AUTH"),
            props_file: props.or_else(|| env("WASMWHISK_PROPS").map(PathBuf::from)),
            data_dir: data_dir.to_path_buf(),
        }
    }
}

/// The server to talk to and the key to talk with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The API host, `http://host:port` (a path prefix is kept).
    pub apihost: Url,
    /// The key's uuid (the Basic user).
    pub uuid: String,
    /// The key's secret (the Basic password).
    pub key: String,
}

/// Resolves the target from `sources`; `read` reads a props file (`None`
/// when it does not exist).
pub fn resolve(
    sources: &Sources,
    read: impl Fn(&Path) -> std::io::Result<Option<String>>,
) -> Result<Target> {
    let explicit = match &sources.props_file {
        Some(path) => match read(path) {
            Ok(Some(text)) => Props::parse(&text),
            Ok(None) => bail!("the props file {} does not exist", path.display()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        },
        None => Props::default(),
    };
    let data_dir_file = sources.data_dir.join(DATA_DIR_PROPS);
    let from_data_dir = match read(&data_dir_file) {
        Ok(Some(text)) => Props::parse(&text),
        Ok(None) => Props::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", data_dir_file.display())),
    };
    let how_to_fix = format!(
        "start `wasmwhisk standalone` (it writes {}), or pass --apihost/--auth, \
         set WASMWHISK_APIHOST/WASMWHISK_AUTH, or give a props file with --props",
        data_dir_file.display()
    );
    let apihost = sources
        .flag_apihost
        .clone()
        .or_else(|| sources.env_apihost.clone())
        .or(explicit.apihost)
        .or(from_data_dir.apihost)
        .ok_or_else(|| anyhow!("no API host: {how_to_fix}"))?;
    let auth = sources
        .flag_auth
        .clone()
        .or_else(|| sources.env_auth.clone())
        .or(explicit.auth)
        .or(from_data_dir.auth)
        .ok_or_else(|| anyhow!("no API key: {how_to_fix}"))?;
    let (uuid, key) = split_auth(&auth)?;
    Ok(Target {
        apihost: parse_apihost(&apihost)?,
        uuid,
        key,
    })
}

/// Reads a props file from disk; `Ok(None)` if it does not exist.
pub fn read_props_file(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `uuid:key` split at its first colon.
fn split_auth(auth: &str) -> Result<(String, String)> {
    match auth.split_once(':') {
        Some((uuid, key)) if !uuid.is_empty() && !key.is_empty() => {
            Ok((uuid.to_string(), key.to_string()))
        }
        _ => bail!("the API key must look like UUID:KEY"),
    }
}

/// `http://host:port`, or `host:port` (taken as http). This client speaks
/// plain HTTP only: standalone serves loopback HTTP.
fn parse_apihost(text: &str) -> Result<Url> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url =
        Url::parse(&with_scheme).with_context(|| format!("the API host '{text}' is not a URL"))?;
    match url.scheme() {
        "http" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" => bail!("the API host '{text}' has no host"),
        other => bail!(
            "the API host '{text}' uses {other}: this client speaks plain http only \
             (put a TLS-terminating proxy's http address, or use `wsk`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn files(entries: &[(&str, &str)]) -> impl Fn(&Path) -> std::io::Result<Option<String>> {
        let map: HashMap<PathBuf, String> = entries
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        move |path| Ok(map.get(path).cloned())
    }

    #[test]
    fn props_are_wsk_key_value_lines() {
        let props = Props::parse(
            "# comment\n\nAPIHOST = http://127.0.0.1:3233 \nNAMESPACE=_\nAUTH=u:k=v\nnot a line\n",
        );
        assert_eq!(props.apihost.as_deref(), Some("http://127.0.0.1:3233"));
        assert_eq!(props.auth.as_deref(), Some("u:k=v"));
        assert_eq!(Props::parse("AUTH=\n"), Props::default());
    }

    #[test]
    fn flags_then_env_then_props_file_then_data_dir() {
        let read = files(&[
            ("/p", "APIHOST=http://props:1\nAUTH=p:p\n"),
            ("/d/wskprops", "APIHOST=http://data:2\nAUTH=d:d\n"),
        ]);
        let mut sources = Sources {
            flag_apihost: Some("http://flag:3".into()),
            flag_auth: None,
            env_apihost: Some("http://env:4".into()),
            env_auth: Some("e:e".into()),
            props_file: Some("/p".into()),
            data_dir: "/d".into(),
        };
        let target = resolve(&sources, &read).unwrap();
        assert_eq!(target.apihost.as_str(), "http://flag:3/");
        assert_eq!((target.uuid.as_str(), target.key.as_str()), ("e", "e"));

        sources.flag_apihost = None;
        sources.env_auth = None;
        let target = resolve(&sources, &read).unwrap();
        assert_eq!(target.apihost.host_str(), Some("env"));
        assert_eq!(target.uuid, "p");

        sources.env_apihost = None;
        sources.props_file = None;
        let target = resolve(&sources, &read).unwrap();
        assert_eq!(target.apihost.host_str(), Some("data"));
        assert_eq!(target.uuid, "d");
    }

    #[test]
    fn each_value_resolves_on_its_own() {
        let read = files(&[("/d/wskprops", "APIHOST=http://data:2\nAUTH=d:d\n")]);
        let sources = Sources {
            flag_auth: Some("f:f".into()),
            data_dir: "/d".into(),
            ..Sources::default()
        };
        let target = resolve(&sources, &read).unwrap();
        assert_eq!(target.apihost.host_str(), Some("data"));
        assert_eq!(target.uuid, "f");
    }

    #[test]
    fn missing_values_say_how_to_fix() {
        let read = files(&[]);
        let sources = Sources {
            data_dir: "/d".into(),
            ..Sources::default()
        };
        let msg = resolve(&sources, &read).unwrap_err().to_string();
        assert!(msg.contains("no API host"), "{msg}");
        assert!(msg.contains("wasmwhisk standalone"), "{msg}");
        assert!(msg.contains("/d/wskprops"), "{msg}");

        let sources = Sources {
            flag_apihost: Some("127.0.0.1:3233".into()),
            data_dir: "/d".into(),
            ..Sources::default()
        };
        let msg = resolve(&sources, &read).unwrap_err().to_string();
        assert!(msg.contains("no API key"), "{msg}");
    }

    #[test]
    fn an_explicit_props_file_must_exist() {
        let sources = Sources {
            props_file: Some("/nope".into()),
            ..Sources::default()
        };
        let msg = resolve(&sources, files(&[])).unwrap_err().to_string();
        assert!(msg.contains("/nope does not exist"), "{msg}");
    }

    #[test]
    fn apihost_and_auth_are_checked() {
        assert_eq!(
            parse_apihost("127.0.0.1:3233/").unwrap().as_str(),
            "http://127.0.0.1:3233/"
        );
        assert!(parse_apihost("https://example.com").is_err());
        assert!(parse_apihost("http://").is_err());
        assert_eq!(split_auth("a:b:c").unwrap(), ("a".into(), "b:c".into()));
        assert!(split_auth("nokey").is_err());
        assert!(split_auth(":k").is_err());
    }
}
