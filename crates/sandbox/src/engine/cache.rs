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
//!
//! Only a *damaged* entry is deleted ([`EntryError::Damaged`]). A read that
//! fails for another reason — the process out of file descriptors or
//! memory, a permission — says nothing about the artifact, which is likely
//! good and may be in use by another process: the entry is left alone and
//! the component compiled as if it were missing ([`EntryError::Unreadable`]).

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

    /// Loads the component for `key` if a verified artifact exists. A
    /// damaged entry is deleted; one that cannot be read is left alone.
    #[allow(
        unsafe_code,
        reason = "deserializing a precompiled component is unsafe in Wasmtime; the SAFETY comment says why this one holds"
    )]
    pub fn load(&self, engine: &wasmtime::Engine, key: &CacheKey) -> Option<Component> {
        let (artifact, sum) = self.paths(key);
        let loaded = self.verify(&artifact, &sum).and_then(|found| {
            if !found {
                return Ok(None);
            }
            // SAFETY: the file is one we wrote (checked against its digest
            // just above) with an engine of the same compatibility hash (in
            // the key).
            unsafe { Component::deserialize_file(engine, &artifact) }
                .map(Some)
                .map_err(EntryError::from_deserialize)
        });
        match loaded {
            Ok(component) => component,
            Err(EntryError::Damaged(why)) => {
                tracing::warn!(path = %artifact.display(), why, "discarding a damaged compile cache entry");
                let _ = fs::remove_file(&artifact);
                let _ = fs::remove_file(&sum);
                None
            }
            Err(EntryError::Unreadable(error)) => {
                tracing::warn!(path = %artifact.display(), error = format!("{error:#}"), "a compile cache entry cannot be read; compiling without it");
                None
            }
        }
    }

    /// `Ok(false)` when there is no whole entry, `Ok(true)` when it is
    /// whole. Half a pair is no entry, not a damaged one: a compiler writes
    /// the artifact, then its checksum, so a concurrent reader (another
    /// thread or process compiling the same code) sees half a pair in
    /// between — deleting it would pull the artifact from under that
    /// writer. A pair a crash left half-written is replaced by the next
    /// compile.
    #[allow(
        unsafe_code,
        reason = "mapping a file is unsafe; the SAFETY comment says why this one holds"
    )]
    fn verify(&self, artifact: &Path, sum: &Path) -> Result<bool, EntryError> {
        let expected = match fs::read_to_string(sum) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(EntryError::Damaged("checksum not text"));
            }
            Err(e) => return Err(EntryError::unreadable(e, "reading the checksum")),
        };
        let file = match fs::File::open(artifact) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(EntryError::unreadable(e, "opening the artifact")),
        };
        // SAFETY: the mapping is read-only and only hashed; a concurrent
        // writer would only make the digest mismatch.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| EntryError::unreadable(e, "mapping the artifact"))?;
        if expected.trim() != checksum(&map) {
            return Err(EntryError::Damaged("checksum mismatch"));
        }
        Ok(true)
    }

    /// Returns the component for `key`, compiling `wasm` (from `produce`,
    /// called only on a miss) and storing it when there is no good artifact.
    #[allow(
        unsafe_code,
        reason = "deserializing a precompiled component is unsafe in Wasmtime; the SAFETY comment says why this one holds"
    )]
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

/// Why a cache entry was not used.
#[derive(Debug, thiserror::Error)]
enum EntryError {
    /// The entry is damaged — truncated, corrupted, or not
    /// a component this engine can load: it is deleted and rebuilt.
    #[error("damaged: {0}")]
    Damaged(&'static str),
    /// The entry could not be read (out of file descriptors or memory, a
    /// permission): nothing is known against it, so it is kept.
    #[error("unreadable: {0:#}")]
    Unreadable(anyhow::Error),
}

impl EntryError {
    fn unreadable(error: std::io::Error, doing: &'static str) -> EntryError {
        EntryError::Unreadable(anyhow::Error::new(error).context(doing))
    }

    /// Classifies a failed `Component::deserialize_file` of an artifact
    /// whose checksum matched: an operating-system error (opening or
    /// mapping the file) leaves it unreadable; anything else means Wasmtime
    /// refused its content.
    fn from_deserialize(error: wasmtime::Error) -> EntryError {
        let os_error = error
            .chain()
            .any(|cause| cause.is::<std::io::Error>() || cause.to_string().contains("(os error "));
        if os_error {
            EntryError::Unreadable(anyhow::Error::from(error))
        } else {
            tracing::debug!(
                error = format!("{error:#}"),
                "wasmtime refused a compile cache entry"
            );
            EntryError::Damaged("not loadable by this engine")
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, CompileCache, wasmtime::Engine, CacheKey) {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = wasmtime::Engine::default();
        let cache = CompileCache::open(dir.path(), &engine).expect("cache");
        let key = cache.key("test", b"code");
        (dir, cache, engine, key)
    }

    #[test]
    fn an_entry_that_cannot_be_read_is_kept() {
        let (_dir, cache, engine, key) = cache();
        let (artifact, sum) = cache.paths(&key);
        std::fs::write(&artifact, b"an artifact").expect("artifact");
        // Reading the checksum fails with an I/O error (EISDIR) that says
        // nothing about the artifact, as EMFILE would.
        std::fs::create_dir(&sum).expect("sum");
        assert!(cache.load(&engine, &key).is_none());
        assert!(artifact.is_file(), "the artifact is kept");
        assert!(sum.is_dir());
    }

    #[test]
    fn an_artifact_that_cannot_be_mapped_is_kept() {
        let (_dir, cache, engine, key) = cache();
        let (artifact, sum) = cache.paths(&key);
        // Opening works, mapping fails (ENODEV): an I/O error, not damage.
        std::fs::create_dir(&artifact).expect("artifact");
        std::fs::write(&sum, checksum(b"an artifact")).expect("sum");
        assert!(cache.load(&engine, &key).is_none());
        assert!(artifact.exists() && sum.is_file(), "both are kept");
    }

    #[test]
    fn a_damaged_entry_is_deleted() {
        let (_dir, cache, engine, key) = cache();
        let (artifact, sum) = cache.paths(&key);
        std::fs::write(&artifact, b"an artifact").expect("artifact");
        std::fs::write(&sum, checksum(b"another artifact")).expect("sum");
        assert!(cache.load(&engine, &key).is_none());
        assert!(!artifact.exists() && !sum.exists(), "checksum mismatch");

        // Half a pair (a compiler between its two writes) is a miss, and
        // left for that compiler to complete.
        std::fs::write(&artifact, b"an artifact").expect("artifact");
        assert!(cache.load(&engine, &key).is_none());
        assert!(
            artifact.exists(),
            "an artifact without its checksum is kept"
        );

        // Whole, but not a component: Wasmtime refuses it.
        std::fs::write(&artifact, b"an artifact").expect("artifact");
        std::fs::write(&sum, checksum(b"an artifact")).expect("sum");
        assert!(cache.load(&engine, &key).is_none());
        assert!(!artifact.exists() && !sum.exists(), "not loadable");
    }
}
