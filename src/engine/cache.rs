//! The on-disk compile cache.
//!
//! A component is compiled once and serialized (Wasmtime's precompiled form)
//! to `<dir>/<key>.cwasm`, where `key` digests the code **and** the engine's
//! compatibility hash (Wasmtime version, target, tunables), so a restart or a
//! second invoker on the same disk never recompiles, and a changed engine
//! never loads a stale artifact.
//!
//! Wasmtime trusts a precompiled file: a flipped bit in its code would run a
//! wrong program. So each artifact has a sidecar `<key>.sum` holding its length
//! and XXH3-128 checksum, written after the artifact (both through a temporary
//! file and an atomic rename). A load checks both before handing the file to
//! `Component::deserialize_file`, which maps it copy-on-write; any mismatch —
//! truncation, corruption, a missing sidecar — deletes the pair and compiles
//! again. The checksum guards against damage (it runs at ≈ 10 GB/s, where
//! BLAKE3 ran at 1.6 GB/s here); collisions between different *codes* are
//! guarded by the key, which is a BLAKE3 digest.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::component::Component;

/// The digest that names a cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a component came from: the cache or a fresh compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a verified artifact.
    Hit,
    /// Compiled (no artifact, or a bad one that was replaced).
    Compiled,
}

/// A directory of precompiled components for one engine configuration.
#[derive(Debug)]
pub struct CompileCache {
    dir: PathBuf,
    engine_digest: [u8; 32],
}

/// Feeds `Hash` output into BLAKE3 so the engine's compatibility hash gives
/// stable bytes.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let mut out = [0u8; 8];
        out.copy_from_slice(&self.0.finalize().as_bytes()[..8]);
        u64::from_le_bytes(out)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// A cache in `dir` (created if missing) for `engine`.
    pub fn open(dir: impl Into<PathBuf>, engine: &wasmtime::Engine) -> Result<CompileCache> {
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating the compile cache {}", dir.display()))?;
        let mut hasher = Blake3Hasher(blake3::Hasher::new());
        "wasmwhisk-compile-cache-v1".hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompileCache {
            dir,
            engine_digest: *hasher.0.finalize().as_bytes(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `code` tagged by `purpose` (e.g. "wasm", "js-runtime").
    pub fn key(&self, purpose: &str, code: &[u8]) -> CacheKey {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.engine_digest);
        hasher.update(&(purpose.len() as u64).to_le_bytes());
        hasher.update(purpose.as_bytes());
        hasher.update(code);
        CacheKey(*hasher.finalize().as_bytes())
    }

    fn paths(&self, key: &CacheKey) -> (PathBuf, PathBuf) {
        let hex = key.to_hex();
        (
            self.dir.join(format!("{hex}.cwasm")),
            self.dir.join(format!("{hex}.sum")),
        )
    }

    /// True when an artifact and its checksum exist for `key` (not verified).
    pub fn contains(&self, key: &CacheKey) -> bool {
        let (artifact, sum) = self.paths(key);
        artifact.exists() && sum.exists()
    }

    /// Loads the component for `key` if a verified artifact exists.
    pub fn load(&self, engine: &wasmtime::Engine, key: &CacheKey) -> Option<Component> {
        let (artifact, sum) = self.paths(key);
        match self.verify(&artifact, &sum) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => {
                tracing::warn!(path = %artifact.display(), %error, "discarding a bad compile cache entry");
                let _ = fs::remove_file(&artifact);
                let _ = fs::remove_file(&sum);
                return None;
            }
        }
        // SAFETY: the file is one we wrote (checked against its digest just
        // above) with an engine of the same compatibility hash (in the key).
        match unsafe { Component::deserialize_file(engine, &artifact) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %artifact.display(), %error, "discarding an incompatible compile cache entry");
                let _ = fs::remove_file(&artifact);
                let _ = fs::remove_file(&sum);
                None
            }
        }
    }

    /// `Ok(false)` when there is no entry; `Err` when there is a bad one.
    fn verify(&self, artifact: &Path, sum: &Path) -> Result<bool> {
        let expected = match fs::read_to_string(sum) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if artifact.exists() {
                    anyhow::bail!("artifact without a checksum");
                }
                return Ok(false);
            }
            Err(e) => return Err(e).context("reading the checksum"),
        };
        let file = fs::File::open(artifact).context("opening the artifact")?;
        // SAFETY: the mapping is read-only and only hashed; a concurrent
        // writer would only make the digest mismatch.
        let map = unsafe { memmap2::Mmap::map(&file) }.context("mapping the artifact")?;
        let actual = checksum(&map);
        anyhow::ensure!(expected.trim() == actual, "checksum mismatch");
        Ok(true)
    }

    /// Returns the component for `key`, compiling `wasm` (from `produce`,
    /// called only on a miss) and storing it when there is no good artifact.
    pub fn get_or_compile(
        &self,
        engine: &wasmtime::Engine,
        key: &CacheKey,
        produce: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<(Component, CacheOutcome)> {
        if let Some(component) = self.load(engine, key) {
            return Ok((component, CacheOutcome::Hit));
        }
        let wasm = produce()?;
        let artifact_bytes = engine.precompile_component(&wasm)?;
        let (artifact, sum) = self.paths(key);
        let digest = checksum(&artifact_bytes);
        write_atomic(&artifact, &artifact_bytes)
            .with_context(|| format!("writing {}", artifact.display()))?;
        write_atomic(&sum, digest.as_bytes())
            .with_context(|| format!("writing {}", sum.display()))?;
        // SAFETY: written just above by this engine configuration.
        let component = unsafe { Component::deserialize_file(engine, &artifact) }
            .map_err(anyhow::Error::from)
            .context("loading the freshly compiled component")?;
        Ok((component, CacheOutcome::Compiled))
    }
}

/// The sidecar's content for `bytes`: length and XXH3-128, in hex.
fn checksum(bytes: &[u8]) -> String {
    format!(
        "{} xxh3-128:{:032x}",
        bytes.len(),
        xxhash_rust::xxh3::xxh3_128(bytes)
    )
}

/// Writes `bytes` to a unique temporary file beside `path`, then renames it.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
