//! `[runtimes]`: the part of OpenWhisk's runtimes manifest (`runtimes.json`,
//! docs/openwhisk.md §8.2) that an invoker acts on — each kind's `stemCells`.
//!
//! The keys inside a stem cell keep the manifest's camelCase (`initialCount`,
//! `minCount`, …) so a block can be copied from a `runtimes.json`; the
//! constraints are `ExecManifest`'s: `initialCount > 0`, `minCount ≥ 0`,
//! `maxCount > 0`, `minCount ≤ maxCount`, `threshold > 0`,
//! `1 ≤ increment ≤ maxCount`. Unlike OpenWhisk's FPC invoker, wasmwhisk
//! honours `reactive` (docs/pool.md#stem-cells).
//!
//! ```toml
//! [runtimes.js]
//! stemCells = [
//!   { initialCount = 2, memory = "256 MB", reactive = { minCount = 1, maxCount = 4, ttl = "2 minutes", threshold = 1, increment = 1 } },
//! ]
//!
//! # A kind with no Wasm runtime, run by the Docker fallback from its image.
//! [runtimes.images."python:3"]
//! image = "my/python-action-runtime:3"
//! stemCells = [{ initialCount = 1, memory = "256 MB" }]
//! ```
//!
//! `[runtimes.images]` maps kinds to Docker images, as OpenWhisk's manifest
//! maps each kind to its runtime image. `native` (OpenWhisk's convention: an
//! executable that gets the params JSON and prints its result as its last
//! line) is always there, mapped to [`PROXY_IMAGE`] unless configured.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{self, ByteSize};
use super::{ConfigError, invalid};
use wasmwhisk_sandbox::action::ActionKind;

/// `[runtimes]`: per action kind, its runtime's settings. A kind left out
/// keeps its default; `[runtimes.js]` without `stemCells` has none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimesConfig {
    /// `[runtimes.js]`. Default: one stem cell, OpenWhisk's nodejs example
    /// `{initialCount = 2, memory = "256 MB", reactive = {minCount = 1,
    /// maxCount = 4, ttl = "2 minutes", threshold = 1, increment = 1}}`.
    pub js: RuntimeConfig,
    /// `[runtimes.wasm]`. Default: no stem cells, and none allowed: a `wasm`
    /// action's cold start instantiates its own precompiled component.
    pub wasm: RuntimeConfig,
    /// `[runtimes.images.<kind>]`: kinds run in Docker containers of an
    /// image. `native` is added when absent (see [`Self::image_runtimes`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, ImageRuntimeConfig>,
}

/// The image of the `native` kind and the base of blackbox images: the
/// action proxy built from `runtimes/docker` (`runtimes/docker/build.sh`).
pub const PROXY_IMAGE: &str = "wasmwhisk/action-proxy:latest";

/// The kind of native executables (OpenWhisk's `native` convention).
pub const NATIVE_KIND: &str = "native";

/// One image kind of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRuntimeConfig {
    /// The Docker image that runs actions of this kind; it must speak
    /// OpenWhisk's action protocol on port 8080. Required.
    pub image: String,
    /// Prewarmed containers of the image. Default none.
    #[serde(default, rename = "stemCells")]
    pub stem_cells: Vec<StemCellConfig>,
}

impl Default for RuntimesConfig {
    fn default() -> Self {
        RuntimesConfig {
            js: RuntimeConfig {
                stem_cells: vec![StemCellConfig {
                    initial_count: 2,
                    memory: ByteSize::from_mb(256),
                    reactive: Some(ReactiveConfig {
                        min_count: 1,
                        max_count: 4,
                        ttl: Duration::from_secs(120),
                        threshold: 1,
                        increment: 1,
                    }),
                }],
            },
            wasm: RuntimeConfig::default(),
            images: BTreeMap::new(),
        }
    }
}

/// One kind's entry of the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Prewarmed instances of this kind's runtime. Default none.
    #[serde(rename = "stemCells")]
    pub stem_cells: Vec<StemCellConfig>,
}

/// One `stemCells` entry: keep `initialCount` runtime instances of `memory`
/// prewarmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StemCellConfig {
    /// Stem cells created at start (and kept, without `reactive`); > 0.
    /// Required; OpenWhisk's older name `count` is accepted.
    #[serde(alias = "count")]
    pub initial_count: u32,
    /// Memory of each stem cell, whole MB. Required.
    #[serde(with = "units::size")]
    pub memory: ByteSize,
    /// Scale the count with the cold starts seen. Default unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactive: Option<ReactiveConfig>,
}

/// `reactive`: every expiration check, desired =
/// `min(max(minCount, (coldStarts / threshold) × increment), maxCount)`;
/// unused stem cells expire after `ttl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReactiveConfig {
    /// Stem cells kept when there were no cold starts; ≥ 0.
    pub min_count: u32,
    /// Most stem cells kept; > 0 and ≥ `minCount`.
    pub max_count: u32,
    /// Lifetime of an unused stem cell.
    #[serde(with = "units::duration")]
    pub ttl: Duration,
    /// Cold starts per step of `increment`; > 0.
    pub threshold: u32,
    /// Stem cells added per `threshold` cold starts; 1 ≤ increment ≤ maxCount.
    pub increment: u32,
}

impl RuntimesConfig {
    /// The stem cells configured for `kind`.
    pub fn stem_cells(&self, kind: ActionKind) -> &[StemCellConfig] {
        match kind {
            ActionKind::Js => &self.js.stem_cells,
            ActionKind::Wasm => &self.wasm.stem_cells,
        }
    }

    /// The image kinds: `[runtimes.images]`, plus `native` →
    /// [`PROXY_IMAGE`] unless configured.
    pub fn image_runtimes(&self) -> BTreeMap<String, ImageRuntimeConfig> {
        let mut images = self.images.clone();
        images
            .entry(NATIVE_KIND.to_string())
            .or_insert_with(|| ImageRuntimeConfig {
                image: PROXY_IMAGE.to_string(),
                stem_cells: Vec::new(),
            });
        images
    }

    /// Checks the manifest's constraints on every stem cell, and that only
    /// kinds with a runtime component have stem cells.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (kind, runtime) in &self.images {
            let key = format!("runtimes.images.{kind}");
            if kind.parse::<ActionKind>().is_ok() || kind == "blackbox" || kind == "sequence" {
                return Err(invalid(
                    key,
                    format!(
                        "expected a kind without a Wasm runtime: {kind} is built in and cannot be mapped to an image"
                    ),
                ));
            }
            if kind.is_empty()
                || !kind
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'))
            {
                return Err(invalid(
                    key,
                    format!(
                        "expected a kind name of letters, digits, ':', '-', '_' or '.', got {kind:?}"
                    ),
                ));
            }
            if runtime.image.trim().is_empty() {
                return Err(invalid(
                    format!("{key}.image"),
                    "expected an image name, got an empty string".to_string(),
                ));
            }
            for (i, cell) in runtime.stem_cells.iter().enumerate() {
                cell.validate(&format!("{key}.stemCells[{i}]"))?;
            }
        }
        for kind in [ActionKind::Js, ActionKind::Wasm] {
            let cells = self.stem_cells(kind);
            let key = format!("runtimes.{kind}.stemCells");
            if !kind.has_runtime() && !cells.is_empty() {
                return Err(invalid(
                    key,
                    format!(
                        "expected no stem cells: kind {kind} has no runtime component to prewarm (its cold start instantiates the action's own component)"
                    ),
                ));
            }
            for (i, cell) in cells.iter().enumerate() {
                cell.validate(&format!("{key}[{i}]"))?;
            }
        }
        Ok(())
    }
}

impl StemCellConfig {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.initial_count == 0 {
            return Err(invalid(
                format!("{key}.initialCount"),
                "expected a count > 0, got 0".to_string(),
            ));
        }
        if self.memory.as_mb() == 0 || !self.memory.is_whole_mb() {
            return Err(invalid(
                format!("{key}.memory"),
                format!(
                    "expected a whole number of MB, at least 1 MB, got {}",
                    self.memory
                ),
            ));
        }
        let Some(r) = &self.reactive else {
            return Ok(());
        };
        let key = format!("{key}.reactive");
        if r.max_count == 0 {
            return Err(invalid(
                format!("{key}.maxCount"),
                "expected a count > 0, got 0".to_string(),
            ));
        }
        if r.min_count > r.max_count {
            return Err(invalid(
                format!("{key}.minCount"),
                format!(
                    "expected at most maxCount ({}), got {}",
                    r.max_count, r.min_count
                ),
            ));
        }
        if r.threshold == 0 {
            return Err(invalid(
                format!("{key}.threshold"),
                "expected a count > 0, got 0".to_string(),
            ));
        }
        if r.increment == 0 || r.increment > r.max_count {
            return Err(invalid(
                format!("{key}.increment"),
                format!(
                    "expected 1 to maxCount ({}), got {}",
                    r.max_count, r.increment
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_reactive(f: impl FnOnce(&mut ReactiveConfig)) -> RuntimesConfig {
        let mut runtimes = RuntimesConfig::default();
        if let Some(reactive) = runtimes.js.stem_cells[0].reactive.as_mut() {
            f(reactive);
        }
        runtimes
    }

    fn invalid_key(runtimes: &RuntimesConfig) -> String {
        match runtimes.validate() {
            Err(ConfigError::InvalidValue { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn default_is_openwhisks_nodejs_example_and_no_wasm_cells() {
        let runtimes = RuntimesConfig::default();
        assert!(runtimes.validate().is_ok());
        let cells = runtimes.stem_cells(ActionKind::Js);
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].initial_count, 2);
        assert_eq!(cells[0].memory, ByteSize::from_mb(256));
        assert_eq!(
            cells[0].reactive,
            Some(ReactiveConfig {
                min_count: 1,
                max_count: 4,
                ttl: Duration::from_secs(120),
                threshold: 1,
                increment: 1,
            })
        );
        assert!(runtimes.stem_cells(ActionKind::Wasm).is_empty());
    }

    #[test]
    fn stem_cell_constraints_are_openwhisks() {
        let mut zero = RuntimesConfig::default();
        zero.js.stem_cells[0].initial_count = 0;
        assert_eq!(invalid_key(&zero), "runtimes.js.stemCells[0].initialCount");

        let mut tiny = RuntimesConfig::default();
        tiny.js.stem_cells[0].memory = ByteSize::from_kb(512);
        assert_eq!(invalid_key(&tiny), "runtimes.js.stemCells[0].memory");

        let r = "runtimes.js.stemCells[0].reactive";
        type Change = fn(&mut ReactiveConfig);
        let cases: [(Change, &str); 5] = [
            (|r| r.max_count = 0, "maxCount"),
            (|r| r.min_count = 5, "minCount"),
            (|r| r.threshold = 0, "threshold"),
            (|r| r.increment = 0, "increment"),
            (|r| r.increment = 5, "increment"),
        ];
        for (change, field) in cases {
            assert_eq!(invalid_key(&with_reactive(change)), format!("{r}.{field}"));
        }
        // The edges that are allowed.
        assert!(
            with_reactive(|r| {
                r.min_count = 0;
                r.increment = 4;
            })
            .validate()
            .is_ok()
        );
        assert!(with_reactive(|r| r.min_count = 4).validate().is_ok());
    }

    #[test]
    fn image_kinds_add_native_and_refuse_built_in_kinds() {
        let mut runtimes = RuntimesConfig::default();
        let images = runtimes.image_runtimes();
        assert_eq!(images[NATIVE_KIND].image, PROXY_IMAGE);
        runtimes.images.insert(
            "python:3".into(),
            ImageRuntimeConfig {
                image: "my/python:3".into(),
                stem_cells: runtimes.js.stem_cells.clone(),
            },
        );
        assert!(runtimes.validate().is_ok());
        assert_eq!(runtimes.image_runtimes().len(), 2);
        runtimes.images.insert(
            "nodejs:20".into(),
            ImageRuntimeConfig {
                image: "node".into(),
                stem_cells: Vec::new(),
            },
        );
        assert_eq!(invalid_key(&runtimes), "runtimes.images.nodejs:20");
    }

    #[test]
    fn wasm_takes_no_stem_cells() {
        let mut runtimes = RuntimesConfig::default();
        runtimes.wasm.stem_cells = runtimes.js.stem_cells.clone();
        assert_eq!(invalid_key(&runtimes), "runtimes.wasm.stemCells");
    }
}
