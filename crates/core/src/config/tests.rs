//! Tests of the whole configuration: defaults, files, environment, flags,
//! errors, printing. Each table's own rules are tested beside it.

use std::ffi::OsString;
use std::time::Duration;

use super::*;

fn env(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    vars.iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

/// A config file in a fresh temporary directory.
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wasmwhisk.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

fn load(text: &str, vars: &[(&str, &str)], flags: Flags) -> Result<Config, ConfigError> {
    let (_dir, path) = file(text);
    let flags = Flags {
        config: Some(path),
        ..flags
    };
    Config::load_with_env(&flags, env(vars))
}

fn unknown_key(result: Result<Config, ConfigError>) -> String {
    match result {
        Err(ConfigError::UnknownKey { key, .. }) => key,
        other => panic!("expected an unknown key, got {other:?}"),
    }
}

fn invalid_key(result: Result<Config, ConfigError>) -> (String, String) {
    match result {
        Err(ConfigError::InvalidValue { key, message, .. }) => (key, message),
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

/// Every `toml` block of docs/configuration.md, which must each be a whole,
/// valid configuration file.
fn doc_examples() -> Vec<String> {
    let doc = include_str!("../../../../docs/configuration.md");
    doc.split("```toml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn defaults_are_openwhisks() {
    let config = Config::default();
    assert!(config.validate().is_ok());
    assert_eq!(config.container_pool.user_memory, ByteSize::from_mb(1024));
    assert_eq!(
        config.container_proxy.timeouts.pause_grace,
        Duration::from_secs(10)
    );
    assert_eq!(config.etcd.lease_timeout, Duration::from_secs(10));
    assert_eq!(config.etcd.cluster_name, "whisk");
    assert_eq!(config.invoker.id, 0);
    assert_eq!(config.invoker.port, 3233);
    assert_eq!(config.to_engine_config(), EngineConfig::default());
    // An empty file, and no file at all, give the defaults.
    assert_eq!(Config::from_toml_str("").ok(), Some(Config::default()));
    assert_eq!(
        Config::load_with_env(&Flags::default(), env(&[])).ok(),
        Some(Config::default())
    );
}

#[test]
fn the_documented_full_example_parses() {
    let examples = doc_examples();
    assert!(
        examples.len() >= 2,
        "docs/configuration.md lost its examples"
    );
    for example in &examples {
        if let Err(error) = Config::from_toml_str(example) {
            panic!("{error}\n---\n{example}");
        }
    }
    // The full example sets every key, some away from their defaults.
    let full = examples
        .iter()
        .max_by_key(|e| e.len())
        .map(|e| Config::from_toml_str(e));
    let Some(Ok(full)) = full else {
        panic!("no full example");
    };
    assert_eq!(full.container_pool.user_memory, ByteSize::from_mb(2048));
    assert_eq!(full.container_pool.user_cpus, Some(2.0));
    assert_eq!(
        full.container_pool.prewarm_container_creation_config,
        Some(PrewarmContainerCreationConfig {
            max_concurrent: 4,
            creation_delay: Duration::from_millis(500),
        })
    );
    assert_eq!(full.invoker.tags, vec!["edge".to_string()]);
    assert_eq!(
        full.invoker.data_dir,
        Some(PathBuf::from("/var/lib/wasmwhisk"))
    );
    assert_eq!(full.runtimes.js.stem_cells.len(), 2);
}

#[test]
fn each_unknown_key_is_rejected_by_name() {
    let cases = [
        (
            "[container-pool]\nuser-memroy = \"1 GB\"",
            "container-pool.user-memroy",
        ),
        ("pekko-client = false", "pekko-client"),
        (
            "[container-pool]\npekko-client = false",
            "container-pool.pekko-client",
        ),
        (
            "[container-pool.prewarm-container-creation-config]\nmax-concurrent = 1\ncreation-delay = \"1 s\"\nmax-concurent = 2",
            "container-pool.prewarm-container-creation-config.max-concurent",
        ),
        ("[container-proxy]\ntimeout = 1", "container-proxy.timeout"),
        (
            "[container-proxy.timeouts]\npause-grce = \"1 s\"",
            "container-proxy.timeouts.pause-grce",
        ),
        ("[invoker]\nports = 1", "invoker.ports"),
        ("[nats]\nurls = []", "nats.urls"),
        ("[etcd]\nlease = \"1 s\"", "etcd.lease"),
        ("[limits]\nmemory-limit = 1", "limits.memory-limit"),
        (
            "[limits.memory]\ndefault = \"256 MB\"",
            "limits.memory.default",
        ),
        (
            "[limits.time-limit]\nstandard = \"1 s\"",
            "limits.time-limit.standard",
        ),
        ("[limits.payload]\nmin = \"1 MB\"", "limits.payload.min"),
        ("[engine]\nmax-sandbox = 1", "engine.max-sandbox"),
        ("[runtimes.python]\nstemCells = []", "runtimes.python"),
        ("[runtimes.js]\nstemcells = []", "runtimes.js.stemcells"),
        (
            "[[runtimes.js.stemCells]]\ninitialCount = 1\nmemory = \"256 MB\"\ncolour = 1",
            "runtimes.js.stemCells[0].colour",
        ),
        (
            "[[runtimes.js.stemCells]]\ninitialCount = 1\nmemory = \"256 MB\"\nreactive = { minCnt = 1, maxCount = 2, ttl = \"1 s\", threshold = 1, increment = 1 }",
            "runtimes.js.stemCells[0].reactive.minCnt",
        ),
        ("[scheduler]\nmax-peek = 128", "scheduler"),
    ];
    for (text, key) in cases {
        assert_eq!(unknown_key(Config::from_toml_str(text)), key, "{text}");
    }
    // The message names the key and the file.
    let (_dir, path) = file("[container-pool]\nuser-memroy = \"1 GB\"\n");
    let flags = Flags {
        config: Some(path.clone()),
        ..Flags::default()
    };
    let message = Config::load_with_env(&flags, env(&[]))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        message,
        Some(format!(
            "unknown configuration key 'container-pool.user-memroy' in {}",
            path.display()
        ))
    );
}

#[test]
fn unknown_environment_keys_are_rejected_by_name() {
    let cases = [
        (
            "WASMWHISK_CONTAINER_POOL__USER_MEMROY",
            "container-pool.user-memroy",
        ),
        (
            "WASMWHISK_CONTAINER_PROXY_TIMEOUTS__GRACE",
            "container-proxy.timeouts.grace",
        ),
        ("WASMWHISK_NOPE__THING", "nope.thing"),
    ];
    for (var, key) in cases {
        let result = Config::load_with_env(&Flags::default(), env(&[(var, "1")]));
        let message = result.as_ref().err().map(|e| e.to_string());
        assert_eq!(unknown_key(result), key);
        assert_eq!(
            message,
            Some(format!("unknown configuration key '{key}' (from {var})"))
        );
    }
    // Variables without `__` are not configuration keys and are left alone.
    let other = env(&[("WASMWHISK_GUESTS", "/tmp"), ("WASMWHISK_LOG", "x")]);
    assert!(Config::load_with_env(&Flags::default(), other).is_ok());
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let text = "[container-pool]\nuser-memory = \"2048 MB\"\nprewarm-promotion = false\n\
                [invoker]\nport = 8000\ntags = [\"a\"]\n[nats]\nurl = \"nats://file:4222\"\n";
    let config = load(text, &[], Flags::default()).expect("file only");
    assert_eq!(config.container_pool.user_memory, ByteSize::from_mb(2048));
    assert_eq!(config.invoker.port, 8000);

    let vars = [
        ("WASMWHISK_CONTAINER_POOL__USER_MEMORY", "4 GB"),
        ("WASMWHISK_CONTAINER_POOL__PREWARM_PROMOTION", "true"),
        ("WASMWHISK_CONTAINER_POOL__USER_CPUS", "1.5"),
        ("WASMWHISK_CONTAINER_PROXY_TIMEOUTS__PAUSE_GRACE", "500 ms"),
        ("WASMWHISK_LIMITS_MEMORY__MAX", "1024 MB"),
        ("WASMWHISK_ENGINE__MAX_MEMORY", "1024 MB"),
        ("WASMWHISK_INVOKER__TAGS", "gpu, edge"),
        ("WASMWHISK_INVOKER__PORT", "9000"),
        ("WASMWHISK_ETCD", "http://e1:2379,http://e2:2379"),
        (
            "WASMWHISK_RUNTIMES_JS__STEMCELLS",
            "[{ count = 1, memory = \"128 MB\" }]",
        ),
    ];
    let config = load(text, &vars, Flags::default()).expect("file + env");
    let pool = &config.container_pool;
    assert_eq!(pool.user_memory, ByteSize::from_mb(4096));
    assert!(pool.prewarm_promotion);
    assert_eq!(pool.user_cpus, Some(1.5));
    assert_eq!(
        config.container_proxy.timeouts.pause_grace,
        Duration::from_millis(500)
    );
    assert_eq!(config.limits.memory.max, ByteSize::from_mb(1024));
    assert_eq!(config.limits.memory.min, ByteSize::from_mb(128)); // the rest of the table keeps its defaults
    assert_eq!(config.invoker.tags, vec!["gpu", "edge"]);
    assert_eq!(config.invoker.port, 9000);
    assert_eq!(
        config.etcd.endpoints,
        vec!["http://e1:2379", "http://e2:2379"]
    );
    assert_eq!(config.nats.url, "nats://file:4222");
    assert_eq!(config.runtimes.js.stem_cells.len(), 1);
    assert_eq!(
        config.runtimes.js.stem_cells[0].memory,
        ByteSize::from_mb(128)
    );

    // The common flag's variable wins over the table's; the flag over both.
    let both = [
        ("WASMWHISK_INVOKER__PORT", "9000"),
        ("WASMWHISK_PORT", "9001"),
    ];
    let config = load(text, &both, Flags::default()).expect("both variables");
    assert_eq!(config.invoker.port, 9001);
    let flags = Flags {
        port: Some(9002),
        nats: Some("nats://flag:4222".to_string()),
        id: Some(7),
        data_dir: Some(PathBuf::from("/data")),
        etcd: Some("http://f:2379".to_string()),
        config: None,
    };
    let config = load(text, &both, flags).expect("flags");
    assert_eq!(config.invoker.port, 9002);
    assert_eq!(config.invoker.id, 7);
    assert_eq!(config.nats.url, "nats://flag:4222");
    assert_eq!(config.invoker.data_dir, Some(PathBuf::from("/data")));
    assert_eq!(config.etcd.endpoints, vec!["http://f:2379"]);
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let (_dir, path) = file("[invoker]\nid = 3\n");
    let path = path.to_string_lossy().into_owned();
    let config = Config::load_with_env(&Flags::default(), env(&[("WASMWHISK_CONFIG", &path)]));
    assert_eq!(config.ok().map(|c| c.invoker.id), Some(3));
    let missing = Flags {
        config: Some(PathBuf::from("/nonexistent/wasmwhisk.toml")),
        ..Flags::default()
    };
    let result = Config::load_with_env(&missing, env(&[("WASMWHISK_CONFIG", &path)]));
    assert!(matches!(result, Err(ConfigError::Read { .. })));
}

#[test]
fn bad_durations_and_sizes_name_the_key_and_what_is_expected() {
    let (key, message) = invalid_key(Config::from_toml_str(
        "[container-proxy.timeouts]\npause-grace = \"10 parsecs\"",
    ));
    assert_eq!(key, "container-proxy.timeouts.pause-grace");
    assert!(message.contains("expected a duration") && message.contains("10 parsecs"));

    let (key, message) = invalid_key(Config::from_toml_str(
        "[container-pool]\nuser-memory = 2048",
    ));
    assert_eq!(key, "container-pool.user-memory");
    assert!(message.contains("a size with a unit"), "{message}");

    let (key, message) = invalid_key(Config::from_toml_str("[limits.memory]\nmax = \"lots\""));
    assert_eq!(key, "limits.memory.max");
    assert!(message.contains("expected a size"), "{message}");

    let (key, _) = invalid_key(Config::from_toml_str("[invoker]\nport = 70000"));
    assert_eq!(key, "invoker.port");

    let result = Config::load_with_env(
        &Flags::default(),
        env(&[("WASMWHISK_CONTAINER_POOL__MEMORY_SYNC_INTERVAL", "soon")]),
    );
    let message = result
        .as_ref()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(invalid_key(result).0, "container-pool.memory-sync-interval");
    assert!(
        message.contains("(from WASMWHISK_CONTAINER_POOL__MEMORY_SYNC_INTERVAL)"),
        "{message}"
    );
    let result = Config::load_with_env(&Flags::default(), env(&[("WASMWHISK_ID", "seven")]));
    assert_eq!(
        result.err().map(|e| e.to_string()),
        Some("invalid value for 'invoker.id' (from WASMWHISK_ID): expected an integer, got \"seven\"".to_string())
    );
}

#[test]
fn stem_cell_violations_in_a_file_name_the_key() {
    let cell = |fields: &str| format!("[[runtimes.js.stemCells]]\n{fields}\n");
    let cases = [
        (
            "initialCount = 0\nmemory = \"256 MB\"",
            "runtimes.js.stemCells[0].initialCount",
        ),
        ("initialCount = 1", "runtimes.js.stemCells[0].memory"),
        (
            "memory = \"256 MB\"",
            "runtimes.js.stemCells[0].initialCount",
        ),
        (
            "initialCount = -1\nmemory = \"256 MB\"",
            "runtimes.js.stemCells[0].initialCount",
        ),
        (
            "initialCount = 1\nmemory = \"256 MB\"\nreactive = { minCount = 3, maxCount = 2, ttl = \"2 minutes\", threshold = 1, increment = 1 }",
            "runtimes.js.stemCells[0].reactive.minCount",
        ),
        (
            "initialCount = 1\nmemory = \"256 MB\"\nreactive = { minCount = 0, maxCount = 2, ttl = \"2 minutes\", threshold = 1, increment = 3 }",
            "runtimes.js.stemCells[0].reactive.increment",
        ),
    ];
    for (fields, key) in cases {
        assert_eq!(
            invalid_key(Config::from_toml_str(&cell(fields))).0,
            key,
            "{fields}"
        );
    }
    // OpenWhisk's alias `count`, and a second cell reported by its index.
    let text = cell("count = 1\nmemory = \"128 MB\"") + &cell("count = 1\nmemory = \"0 MB\"");
    assert_eq!(
        invalid_key(Config::from_toml_str(&text)).0,
        "runtimes.js.stemCells[1].memory"
    );
    let (key, _) = invalid_key(Config::from_toml_str(
        "[runtimes.wasm]\nstemCells = [{ initialCount = 1, memory = \"128 MB\" }]",
    ));
    assert_eq!(key, "runtimes.wasm.stemCells");
    // `[runtimes.js]` without stemCells has none; no `[runtimes]` keeps the default.
    let none = Config::from_toml_str("[runtimes.js]").expect("empty kind");
    assert!(none.runtimes.js.stem_cells.is_empty());
}

#[test]
fn printed_configuration_parses_back_to_the_same() {
    let default = Config::default();
    let printed = default.to_toml_string().expect("print");
    assert!(printed.contains("user-memory = \"1024 MB\""), "{printed}");
    assert!(
        printed.contains("pause-grace = \"10 seconds\""),
        "{printed}"
    );
    assert!(printed.contains("initialCount = 2"), "{printed}");
    assert_eq!(Config::from_toml_str(&printed).ok(), Some(default));

    let mut custom = load::sample();
    custom.runtimes.wasm.stem_cells.clear();
    custom.invoker.tags = vec!["gpu".to_string()];
    custom.invoker.dedicated_namespaces = vec!["guest".to_string()];
    custom.container_proxy.timeouts.idle_container = Duration::from_millis(1500);
    custom.limits.log_limit.min = ByteSize::from_mb(1);
    assert!(custom.validate().is_ok());
    let printed = custom.to_toml_string().expect("print");
    assert_eq!(
        Config::from_toml_str(&printed).ok(),
        Some(custom),
        "{printed}"
    );
}

#[test]
fn a_file_that_is_not_toml_is_a_syntax_error_naming_the_file() {
    let (_dir, path) = file("[container-pool\nuser-memory = 1");
    let flags = Flags {
        config: Some(path.clone()),
        ..Flags::default()
    };
    match Config::load_with_env(&flags, env(&[])) {
        Err(error @ ConfigError::Syntax { .. }) => {
            assert!(error.to_string().contains(&path.display().to_string()));
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}
