//! Loading: defaults ← TOML file ← environment ← flags (see the module docs
//! of [`crate::config`] for the scheme).
//!
//! The file and the environment are merged as TOML before anything is typed,
//! so both go through the same `deny_unknown_fields` deserialization and the
//! same error messages. Which environment variables exist is derived from the
//! types themselves: a sample configuration with every optional key filled in
//! is serialized, and each of its leaf keys gives one variable name. A key
//! added to a `*Config` struct therefore gets its variable without anyone
//! keeping a list.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::{Config, ConfigError, Origin, PrewarmContainerCreationConfig};

/// Prefix of every environment variable wasmwhisk reads.
pub const ENV_PREFIX: &str = "WASMWHISK_";

/// The common flags of docs/architecture.md#modes; `None` when not given. Flags win over the
/// file and the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--config FILE` (else `$WASMWHISK_CONFIG`).
    pub config: Option<PathBuf>,
    /// `--data-dir DIR` → `invoker.data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--port N` → `invoker.port`.
    pub port: Option<u16>,
    /// `--nats URL` → `nats.url`.
    pub nats: Option<String>,
    /// `--etcd URL[,URL…]` → `etcd.endpoints`.
    pub etcd: Option<String>,
    /// `--id N` → `invoker.id`.
    pub id: Option<u32>,
}

/// How an environment variable's text becomes a TOML value, by the type of
/// the key it sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    /// Comma-separated strings.
    List,
    /// A TOML value (inline array or table).
    Inline,
}

/// The variables of the common flags (docs/architecture.md#modes): name after the prefix, key, kind.
const COMMON: &[(&str, &str, Kind)] = &[
    ("DATA_DIR", "invoker.data-dir", Kind::Str),
    ("PORT", "invoker.port", Kind::Int),
    ("NATS", "nats.url", Kind::Str),
    ("ETCD", "etcd.endpoints", Kind::List),
    ("ID", "invoker.id", Kind::Int),
];

/// Which source set which keys, to say where a bad value came from.
#[derive(Default)]
struct Origins {
    file: Option<(PathBuf, BTreeSet<String>)>,
    env: Vec<(String, String)>,
    flags: Vec<(&'static str, &'static str)>,
}

/// `key` is `prefix` or lies inside it.
fn within(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

impl Origins {
    fn of(&self, key: &str) -> Origin {
        if let Some((_, flag)) = self.flags.iter().rev().find(|(k, _)| within(key, k)) {
            return Origin::Flag(flag);
        }
        if let Some((_, var)) = self.env.iter().rev().find(|(k, _)| within(key, k)) {
            return Origin::Env(var.clone());
        }
        match &self.file {
            Some((path, keys)) if keys.iter().any(|k| within(key, k) || within(k, key)) => {
                Origin::File(path.clone())
            }
            _ => Origin::Unknown,
        }
    }

    fn attribute(&self, error: ConfigError) -> ConfigError {
        match error {
            ConfigError::InvalidValue {
                key,
                origin: Origin::Unknown,
                message,
            } => ConfigError::InvalidValue {
                origin: self.of(&key),
                key,
                message,
            },
            ConfigError::UnknownKey {
                key,
                origin: Origin::Unknown,
            } => ConfigError::UnknownKey {
                origin: self.of(&key),
                key,
            },
            other => other,
        }
    }
}

impl Config {
    /// Loads the configuration from the file named by the flags or
    /// `$WASMWHISK_CONFIG`, this process's environment, and the flags; then
    /// validates it.
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        Config::load_with_env(flags, std::env::vars_os())
    }

    /// [`Config::load`] with the environment given (tests, embedding).
    pub fn load_with_env(
        flags: &Flags,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Config, ConfigError> {
        let env = ours(env)?;
        let mut origins = Origins::default();
        let path = flags
            .config
            .clone()
            .or_else(|| env.get("CONFIG").map(PathBuf::from));
        let mut table = match &path {
            Some(path) => {
                let table = read_file(path)?;
                origins.file = Some((path.clone(), leaf_keys(&table)));
                table
            }
            None => Table::new(),
        };
        apply_env(&mut table, &env, &mut origins).map_err(|e| origins.attribute(e))?;
        let mut config = from_table(table).map_err(|e| origins.attribute(e))?;
        apply_flags(&mut config, flags, &mut origins);
        config.validate().map_err(|e| origins.attribute(e))?;
        Ok(config)
    }

    /// Parses and validates a configuration file's text, without the
    /// environment or flags.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let table: Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::from("<text>"),
            source: Box::new(e),
        })?;
        let config = from_table(table)?;
        config.validate()?;
        Ok(config)
    }
}

/// The `WASMWHISK_*` variables, by name after the prefix.
fn ours(
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut vars = BTreeMap::new();
    for (name, value) in env {
        let Some(name) = name.to_str().and_then(|n| n.strip_prefix(ENV_PREFIX)) else {
            continue;
        };
        let Ok(value) = value.into_string() else {
            return Err(ConfigError::InvalidValue {
                key: format!("{ENV_PREFIX}{name}"),
                origin: Origin::Env(format!("{ENV_PREFIX}{name}")),
                message: "expected UTF-8 text".to_string(),
            });
        };
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

/// Types the merged table, naming the key of the first error.
fn from_table(table: Table) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(Value::Table(table)).map_err(|error| {
        let path = key_of(error.path());
        let message = error.inner().message().to_string();
        // serde's derived code reports through `de::Error::unknown_field` and
        // `missing_field`, whose default messages are these; serde_path_to_error
        // has already put the offending key itself at the end of the path.
        if message.starts_with("unknown field `") {
            return ConfigError::UnknownKey {
                key: path,
                origin: Origin::Unknown,
            };
        }
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            return super::invalid(
                join(&path, field),
                "this key is required here and missing".to_string(),
            );
        }
        super::invalid(path, message)
    })
}

/// `a.b[0].c` from serde_path_to_error's path.
fn key_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: k } => key = join(&key, k),
            Segment::Enum { variant } => key = join(&key, variant),
            Segment::Unknown => key = join(&key, "?"),
        }
    }
    key
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Dotted paths of a table's leaves (arrays count as leaves).
fn leaves(table: &Table, prefix: &str, out: &mut Vec<(String, Value)>) {
    for (key, value) in table {
        let path = join(prefix, key);
        match value {
            Value::Table(inner) => leaves(inner, &path, out),
            other => out.push((path, other.clone())),
        }
    }
}

fn leaf_keys(table: &Table) -> BTreeSet<String> {
    let mut out = Vec::new();
    leaves(table, "", &mut out);
    out.into_iter().map(|(key, _)| key).collect()
}

/// A configuration with every optional key set, so that serializing it
/// names every key there is.
pub(super) fn sample() -> Config {
    let mut config = Config::default();
    config.container_pool.user_cpus = Some(1.0);
    config.container_pool.prewarm_container_creation_config =
        Some(PrewarmContainerCreationConfig {
            max_concurrent: 1,
            creation_delay: Duration::from_secs(1),
        });
    config.invoker.data_dir = Some(PathBuf::from("."));
    config.invoker.tags = vec![String::new()];
    config.invoker.dedicated_namespaces = vec![String::new()];
    config.runtimes.wasm.stem_cells = config.runtimes.js.stem_cells.clone();
    config
}

/// `container-proxy.timeouts` → `CONTAINER_PROXY_TIMEOUTS`.
fn env_form(path: &str) -> String {
    path.replace(['-', '.'], "_").to_uppercase()
}

/// Every settable key: variable name after the prefix → (key, kind).
fn schema() -> Result<BTreeMap<String, (String, Kind)>, ConfigError> {
    let table = Table::try_from(sample()).map_err(|e| ConfigError::Print(e.to_string()))?;
    let mut out = Vec::new();
    leaves(&table, "", &mut out);
    let mut schema = BTreeMap::new();
    for (key, value) in out {
        let kind = match &value {
            Value::Integer(_) => Kind::Int,
            Value::Float(_) => Kind::Float,
            Value::Boolean(_) => Kind::Bool,
            Value::Array(items) if items.iter().all(Value::is_str) => Kind::List,
            Value::Array(_) | Value::Table(_) => Kind::Inline,
            Value::String(_) | Value::Datetime(_) => Kind::Str,
        };
        let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key.as_str()));
        let name = format!("{}__{}", env_form(table), env_form(leaf));
        schema.insert(name, (key, kind));
    }
    Ok(schema)
}

/// The key an unknown variable would set, named as well as we can: a known
/// table's real name, then the key in lower case with `_` read as `-`.
fn guess_key(name: &str, schema: &BTreeMap<String, (String, Kind)>) -> String {
    let (table, key) = name.split_once("__").unwrap_or((name, ""));
    let key = key.to_lowercase().replace('_', "-");
    let known_table = schema.values().find_map(|(k, _)| {
        let t = k.rsplit_once('.').map_or("", |(t, _)| t);
        (env_form(t) == table).then(|| t.to_string())
    });
    let table = known_table.unwrap_or_else(|| table.to_lowercase().replace('_', "-"));
    join(&table, &key)
}

fn typed(text: &str, kind: Kind, key: &str, var: &str) -> Result<Value, ConfigError> {
    let bad = |expected: &str| ConfigError::InvalidValue {
        key: key.to_string(),
        origin: Origin::Env(var.to_string()),
        message: format!("expected {expected}, got {text:?}"),
    };
    let text_trimmed = text.trim();
    Ok(match kind {
        Kind::Str => Value::String(text.to_string()),
        Kind::Int => Value::Integer(text_trimmed.parse().map_err(|_| bad("an integer"))?),
        Kind::Float => Value::Float(
            text_trimmed
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad("a number"))?,
        ),
        Kind::Bool => match text_trimmed.to_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(bad("true or false")),
        },
        Kind::List => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        Kind::Inline => format!("v = {text}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .ok_or_else(|| {
                bad("a TOML value such as [{ initialCount = 1, memory = \"256 MB\" }]")
            })?,
    })
}

/// Sets `key` (dotted, no array indices) in `table`, making tables on the way.
fn insert(table: &mut Table, key: &str, value: Value) -> Result<(), ConfigError> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(leaf) = parts.pop() else {
        return Ok(());
    };
    let mut current = table;
    let mut walked = String::new();
    for part in parts {
        walked = join(&walked, part);
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(inner) => inner,
            _ => {
                return Err(super::invalid(
                    walked,
                    "expected a table of keys".to_string(),
                ));
            }
        };
    }
    current.insert(leaf.to_string(), value);
    Ok(())
}

fn apply_env(
    table: &mut Table,
    env: &BTreeMap<String, String>,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    let schema = schema()?;
    for (name, text) in env {
        if !name.contains("__") {
            continue;
        }
        let var = format!("{ENV_PREFIX}{name}");
        let Some((key, kind)) = schema.get(&name.to_uppercase()) else {
            return Err(ConfigError::UnknownKey {
                key: guess_key(&name.to_uppercase(), &schema),
                origin: Origin::Env(var),
            });
        };
        insert(table, key, typed(text, *kind, key, &var)?)?;
        origins.env.push((key.clone(), var));
    }
    for (name, key, kind) in COMMON {
        if let Some(text) = env.get(*name) {
            let var = format!("{ENV_PREFIX}{name}");
            insert(table, key, typed(text, *kind, key, &var)?)?;
            origins.env.push((key.to_string(), var));
        }
    }
    Ok(())
}

fn apply_flags(config: &mut Config, flags: &Flags, origins: &mut Origins) {
    if let Some(dir) = &flags.data_dir {
        config.invoker.data_dir = Some(dir.clone());
        origins.flags.push(("invoker.data-dir", "data-dir"));
    }
    if let Some(port) = flags.port {
        config.invoker.port = port;
        origins.flags.push(("invoker.port", "port"));
    }
    if let Some(url) = &flags.nats {
        config.nats.url = url.clone();
        origins.flags.push(("nats.url", "nats"));
    }
    if let Some(endpoints) = &flags.etcd {
        config.etcd.endpoints = endpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        origins.flags.push(("etcd.endpoints", "etcd"));
    }
    if let Some(id) = flags.id {
        config.invoker.id = id;
        origins.flags.push(("invoker.id", "id"));
    }
}
