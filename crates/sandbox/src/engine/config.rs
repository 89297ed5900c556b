//! Knobs of the Wasmtime engine, each with its default and why.
//!
//! Capacity: the pooling allocator reserves, at engine start, virtual address
//! space for `max_sandboxes` linear memories of `memory_reservation +
//! memory_guard` bytes each (4 GiB + 32 MiB by default, so 16,384 slots ≈ 66 TiB
//! of the 128 TiB user address space of x86-64). Reserved is not resident:
//! only touched pages cost RAM. Each live sandbox also uses a few memory
//! mappings; Linux's default `vm.max_map_count` (65,530) caps a process near
//! 15,000–20,000 live sandboxes; raise it for more (docs/architecture.md).

use std::time::Duration;

/// Engine configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Sandboxes (component instances) alive at once. Default 16,384.
    pub max_sandboxes: u32,
    /// Core instances per component counted into the pool (a Rust component
    /// has 3, the JS runtime 3–4). Default 4.
    pub core_instances_per_sandbox: u32,
    /// Largest linear memory a sandbox may grow to, in MiB; the action's
    /// `limits.memory` is enforced below it per sandbox. Default 512 (OpenWhisk's max).
    pub max_memory_mb: u64,
    /// Virtual address space reserved per linear memory, bytes. Default 4 GiB,
    /// which lets Cranelift elide bounds checks (a small reservation costs ≈ 23%
    /// on warm calls here).
    pub memory_reservation: u64,
    /// Granularity of deadlines: the epoch ticker's period. Default 1 ms.
    pub epoch_tick: Duration,
    /// Warm memory slots kept for reuse by the same component. Default 100.
    pub max_unused_warm_slots: u32,
    /// Bytes of a freed linear memory kept resident (zeroed with `memset`
    /// instead of `madvise`) for the next sandbox in that slot: fewer page
    /// faults on the next specialize, at most
    /// `max_unused_warm_slots × this` idle resident memory. Default 0 (1 MiB
    /// measured no faster here: the memset costs what the faults saved).
    pub linear_memory_keep_resident: usize,
    /// Maximum Wasm stack of one call, bytes. Default 512 KiB (Wasmtime's).
    pub max_wasm_stack: usize,
    /// Largest result an action may return, bytes (OpenWhisk's payload
    /// limit). Default 1 MiB; larger results are truncated application errors.
    pub max_result_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_sandboxes: 16_384,
            core_instances_per_sandbox: 4,
            max_memory_mb: 512,
            memory_reservation: 4 << 30,
            epoch_tick: Duration::from_millis(1),
            max_unused_warm_slots: 100,
            linear_memory_keep_resident: 0,
            max_wasm_stack: 512 << 10,
            max_result_bytes: 1 << 20,
        }
    }
}

impl EngineConfig {
    /// A small engine for tests and one-shot runs: 256 sandboxes.
    pub fn small() -> Self {
        EngineConfig {
            max_sandboxes: 256,
            ..EngineConfig::default()
        }
    }

    /// `max_memory_mb` in bytes.
    pub fn max_memory_bytes(&self) -> usize {
        usize::try_from(self.max_memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}
