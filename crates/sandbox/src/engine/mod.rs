//! One Wasmtime engine for many short-lived sandboxes.
//!
//! ```text
//!   code ──compile──▶ CompileCache (disk, mmap) ──▶ Prepared (InstancePre, per code)
//!                                                     │ instantiate (pooling slot, CoW memory)
//!   runtime component ──wizer──▶ pre-booted ─────────▶│
//!                                                     ▼
//!                                                  Sandbox ── init ──▶ run, run, …
//! ```
//!
//! - **Pooling allocator** with copy-on-write memory images: instantiation
//!   takes a pre-reserved slot and maps the component's initial memory, so a
//!   cold start costs tens of microseconds.
//! - **Epoch interruption** with one ticker thread ([`ticker`]) enforces
//!   deadlines; the ticker sleeps while nothing runs.
//! - **Component model**, synchronous calls: Wasm runs on the calling
//!   thread's stack. (Async calls would make every store cache a fiber stack,
//!   and the pooling allocator maps a guard page per stack slot up front: two
//!   memory mappings per sandbox, which `vm.max_map_count` cannot afford at
//!   10,000 sandboxes.) Async callers run activations on blocking threads.
//! - **Compile cache** ([`cache`]): code is compiled once per engine
//!   configuration and loaded from disk with mmap afterwards.

pub mod cache;
pub mod config;
pub mod preinit;
pub mod ticker;
pub mod world;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

pub use cache::{CacheKey, CacheOutcome, CompileCache};
pub use config::EngineConfig;
use ticker::EpochTicker;
use world::{ActionPre, WorldError};

use crate::action::ActionKind;
use crate::runtimes;
use crate::state::SandboxState;

/// Why code could not be prepared for sandboxes.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Not a valid Wasm component (or an invalid module, or garbage).
    #[error("invalid WebAssembly component: {0}")]
    InvalidWasm(String),
    /// A valid component that is not an action or asks for too much.
    #[error(transparent)]
    World(#[from] WorldError),
    /// It needs more than any sandbox may have (memory, memories, tables).
    #[error("the component exceeds the sandbox limits: {0}")]
    Limits(String),
    /// The host failed (disk, pre-initialization of a runtime).
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// Code ready to be instantiated: a checked, linked, precompiled component.
#[derive(Clone)]
pub struct Prepared {
    pub(crate) pre: ActionPre<SandboxState>,
    /// The kind of sandbox this makes (`wasm` action or a runtime's stem cell).
    pub kind: ActionKind,
    /// The cache key of the compiled code.
    pub key: CacheKey,
    /// Bytes of linear memory the component needs before it runs (its
    /// largest memory's initial size).
    pub initial_memory_bytes: u64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("kind", &self.kind)
            .field("key", &self.key.to_hex())
            .finish()
    }
}

/// The engine: Wasmtime, its linker, the compile cache and the epoch ticker.
/// Cheap to share behind an `Arc`; every sandbox of a process uses one.
pub struct Engine {
    wasmtime: wasmtime::Engine,
    linker: Linker<SandboxState>,
    cache: CompileCache,
    ticker: EpochTicker,
    config: EngineConfig,
    /// Prepared code by cache key: compiled once per process.
    prepared: Mutex<HashMap<CacheKey, Prepared>>,
    /// Serializes the (slow, one-time) preparation of runtime components.
    runtime_prep: Mutex<()>,
}

impl Engine {
    /// Builds the engine; compiled code is cached under `cache_dir`.
    pub fn new(config: EngineConfig, cache_dir: &Path) -> Result<Engine> {
        let wasmtime = wasmtime::Engine::new(&wasmtime_config(&config)?)
            .map_err(anyhow::Error::from)
            .context("creating the Wasmtime engine (is enough virtual address space available?)")?;
        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        world::bound_sleeps(&mut linker)?;
        // The world's types interface has no functions; define it empty.
        linker.instance(world::TYPES_INTERFACE)?;
        let cache = CompileCache::open(cache_dir, &wasmtime)?;
        let ticker = EpochTicker::start(wasmtime.clone(), config.epoch_tick)
            .context("starting the epoch ticker")?;
        Ok(Engine {
            wasmtime,
            linker,
            cache,
            ticker,
            config,
            prepared: Mutex::new(HashMap::new()),
            runtime_prep: Mutex::new(()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The compile cache.
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// The Wasmtime engine underneath (the sandbox bench compares against
    /// plain Wasmtime on it).
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.wasmtime
    }

    pub(crate) fn ticker(&self) -> &EpochTicker {
        &self.ticker
    }

    fn remembered(&self, key: &CacheKey) -> Option<Prepared> {
        let map = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).cloned()
    }

    fn remember(&self, prepared: Prepared) {
        let mut map = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(prepared.key, prepared);
    }

    /// Forgets prepared code kept in memory (the disk cache stays).
    pub fn forget_prepared(&self) {
        let mut map = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        map.clear();
    }

    /// Prepares a compiled `wasm` action: validates, compiles (or loads from
    /// the cache), checks its imports and exports. CPU-heavy on a miss: call
    /// it off the async executor (`spawn_blocking`).
    pub fn prepare_wasm(&self, code: &[u8]) -> Result<(Prepared, CacheOutcome), PrepareError> {
        self.prepare_wasm_keyed(&self.wasm_key(code), code)
    }

    /// The cache key of a `wasm` action's code (a BLAKE3 digest; an action
    /// store keeps it so a cold start does not hash the code again).
    pub fn wasm_key(&self, code: &[u8]) -> CacheKey {
        self.cache.key("wasm-action", code)
    }

    /// [`Engine::prepare_wasm`] with the key already known: `key` must be
    /// [`Engine::wasm_key`] of `code`.
    pub fn prepare_wasm_keyed(
        &self,
        key: &CacheKey,
        code: &[u8],
    ) -> Result<(Prepared, CacheOutcome), PrepareError> {
        let key = *key;
        if let Some(prepared) = self.remembered(&key) {
            return Ok((prepared, CacheOutcome::Hit));
        }
        if !wasmparser_is_component(code) {
            return Err(PrepareError::InvalidWasm(describe_non_component(code)));
        }
        if !self.cache.contains(&key) {
            // Before spending a compile on it; a cached artifact passed this.
            self.check_initial_memory(code)?;
        }
        let (component, outcome) = self
            .cache
            .get_or_compile(&self.wasmtime, &key, || Ok(code.to_vec()))
            .map_err(|e| match e.downcast::<std::io::Error>() {
                Ok(io) => PrepareError::Internal(io.into()),
                Err(other) => PrepareError::InvalidWasm(format!("{other:#}")),
            })?;
        let prepared = self.link(component, ActionKind::Wasm, key)?;
        self.remember(prepared.clone());
        Ok((prepared, outcome))
    }

    /// Prepares the runtime component of `kind` (its stem cells): on first
    /// use per data dir, pre-initializes and compiles it (seconds); afterwards
    /// loads it from the compile cache. Blocking.
    pub fn prepare_runtime(&self, kind: ActionKind) -> Result<Prepared, PrepareError> {
        let wasm = runtimes::component(kind).ok_or_else(|| {
            PrepareError::Internal(anyhow::anyhow!("kind {kind} has no runtime component"))
        })?;
        let key = self.cache.key(&format!("runtime-{kind}-preinit"), wasm);
        if let Some(prepared) = self.remembered(&key) {
            return Ok(prepared);
        }
        let _one_at_a_time = self.runtime_prep.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(prepared) = self.remembered(&key) {
            return Ok(prepared);
        }
        let (component, _) = self
            .cache
            .get_or_compile(&self.wasmtime, &key, || {
                preinit::preinitialize(&self.wasmtime, wasm)
            })
            .map_err(PrepareError::Internal)?;
        let prepared = self.link(component, kind, key)?;
        self.remember(prepared.clone());
        Ok(prepared)
    }

    /// True when the runtime of `kind` is prepared in memory or on disk, so
    /// [`Engine::prepare_runtime`] will not take seconds.
    pub fn runtime_is_cached(&self, kind: ActionKind) -> bool {
        let Some(wasm) = runtimes::component(kind) else {
            return false;
        };
        let key = self.cache.key(&format!("runtime-{kind}-preinit"), wasm);
        self.remembered(&key).is_some() || self.cache.contains(&key)
    }

    /// Checks imports against the grants and the exports against the world.
    pub fn link(
        &self,
        component: Component,
        kind: ActionKind,
        key: CacheKey,
    ) -> Result<Prepared, PrepareError> {
        world::check_imports(&self.wasmtime, &component)?;
        let initial_memory_bytes = self.check_resources(&component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| WorldError::NotAnAction(format!("{e:#}")))?;
        let pre =
            ActionPre::new(instance_pre).map_err(|e| WorldError::NotAnAction(format!("{e:#}")))?;
        Ok(Prepared {
            pre,
            kind,
            key,
            initial_memory_bytes,
        })
    }

    /// Before compiling: refuses a component whose memory starts above what
    /// any sandbox may have (the largest initial size over its core modules).
    fn check_initial_memory(&self, code: &[u8]) -> Result<(), PrepareError> {
        let mut pages: u64 = 0;
        for payload in wasmparser::Parser::new(0).parse_all(code) {
            let payload = payload.map_err(|e| PrepareError::InvalidWasm(e.to_string()))?;
            if let wasmparser::Payload::MemorySection(memories) = payload {
                for memory in memories {
                    let memory = memory.map_err(|e| PrepareError::InvalidWasm(e.to_string()))?;
                    pages = pages.max(memory.initial);
                }
            }
        }
        self.check_initial_bytes(pages.saturating_mul(WASM_PAGE))
    }

    /// Refuses an initial memory above what any sandbox may have.
    fn check_initial_bytes(&self, initial: u64) -> Result<(), PrepareError> {
        let max = self.config.max_memory_mb.saturating_mul(1 << 20);
        if initial > max {
            return Err(PrepareError::Limits(format!(
                "its linear memory starts at {} MiB; a sandbox may have at most {} MiB",
                initial >> 20,
                max >> 20
            )));
        }
        Ok(())
    }

    /// Rejects a component that could never be instantiated here, with the
    /// reason; returns its initial memory in bytes.
    fn check_resources(&self, component: &Component) -> Result<u64, PrepareError> {
        let Some(needs) = component.resources_required() else {
            return Ok(0);
        };
        let initial = needs
            .max_initial_memory_size
            .unwrap_or(0)
            .saturating_mul(WASM_PAGE);
        self.check_initial_bytes(initial)?;
        if needs.num_memories > MAX_MEMORIES {
            return Err(PrepareError::Limits(format!(
                "it has {} linear memories; at most {MAX_MEMORIES} are allowed",
                needs.num_memories
            )));
        }
        if let Some(table) = needs.max_initial_table_size
            && table > MAX_TABLE_ELEMENTS
        {
            return Err(PrepareError::Limits(format!(
                "a table starts with {table} elements; at most {MAX_TABLE_ELEMENTS} are allowed"
            )));
        }
        Ok(initial)
    }
}

/// Bytes in a Wasm page.
const WASM_PAGE: u64 = 64 << 10;
/// Linear memories one component may define.
const MAX_MEMORIES: u32 = 2;
/// Elements a table may start with (the pooling allocator's slot size).
const MAX_TABLE_ELEMENTS: u64 = 20_000;

/// Fiber stacks in the pool: only pre-initialization calls Wasm
/// asynchronously (wizer's API is async); activations are synchronous.
const PREINIT_STACKS: u32 = 4;

/// True if `bytes` start with the component-model preamble.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(b"\0asm") && bytes.get(4..8) == Some(&[0x0d, 0x00, 0x01, 0x00])
}

/// Says what `bytes` are when they are not a component.
fn describe_non_component(bytes: &[u8]) -> String {
    if bytes.get(..4) == Some(b"\0asm") && bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        "this is a core WebAssembly module; wasmwhisk runs components that implement \
         wit/action.wit (build for wasm32-wasip2, or wrap the module with `wasm-tools component new`)"
            .to_string()
    } else {
        format!(
            "not a WebAssembly component (it starts with {:02x?})",
            bytes.get(..8).unwrap_or(bytes)
        )
    }
}

/// The Wasmtime configuration for `config`.
fn wasmtime_config(config: &EngineConfig) -> Result<wasmtime::Config> {
    let mut pool = PoolingAllocationConfig::new();
    let sandboxes = config.max_sandboxes;
    let core = sandboxes.saturating_mul(config.core_instances_per_sandbox);
    pool.total_component_instances(sandboxes)
        .total_core_instances(core)
        .total_memories(sandboxes.saturating_add(sandboxes / 8))
        .total_tables(core)
        .total_stacks(PREINIT_STACKS)
        .max_memory_size(config.max_memory_bytes())
        .max_unused_warm_slots(config.max_unused_warm_slots)
        .linear_memory_keep_resident(config.linear_memory_keep_resident)
        .max_core_instances_per_component(16)
        .max_memories_per_component(MAX_MEMORIES)
        .max_tables_per_component(16)
        .table_elements(MAX_TABLE_ELEMENTS as usize);
    let mut wasm = wasmtime::Config::new();
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .memory_reservation(config.memory_reservation)
        .epoch_interruption(true)
        .wasm_component_model(true)
        .max_wasm_stack(config.max_wasm_stack)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    Ok(wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_components_are_described() {
        assert!(describe_non_component(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
        assert!(describe_non_component(b"hello").contains("not a WebAssembly component"));
        assert!(wasmparser_is_component(b"\0asm\x0d\0\x01\0rest"));
    }
}
