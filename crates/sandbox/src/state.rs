//! The data a sandbox's `Store` carries: its WASI context (deny-by-default),
//! its log capture, its memory limiter and the current deadline.

use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::logs::{LogCapture, LogStream};

/// Per-sandbox store data.
pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// stdout/stderr of the current activation.
    pub(crate) logs: LogCapture,
    /// Enforces the action's memory limit and remembers hitting it.
    pub(crate) limiter: MemoryLimiter,
    /// When the current `init`/`run` must stop; `None` when idle.
    pub(crate) deadline: Option<Instant>,
}

impl SandboxState {
    /// Fresh state: no environment, no arguments, no directories, no network;
    /// stdout and stderr captured; memory capped at `memory_limit` bytes.
    pub fn new(memory_limit: usize) -> SandboxState {
        let logs = LogCapture::new();
        let wasi = WasiCtxBuilder::new()
            .stdout(logs.stream(LogStream::Stdout))
            .stderr(logs.stream(LogStream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        SandboxState {
            wasi,
            table: ResourceTable::new(),
            logs,
            limiter: MemoryLimiter::new(memory_limit),
            deadline: None,
        }
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the sum of a sandbox's linear memories and tables.
///
/// Growth beyond the limit is refused (`memory.grow` returns -1, as a real
/// machine's allocator would fail) and remembered in `exceeded`, so an
/// activation that then traps or fails is reported as OpenWhisk's
/// "exhausted its memory".
#[derive(Debug)]
pub struct MemoryLimiter {
    /// Bytes the sandbox may hold in linear memory.
    pub limit: usize,
    /// Bytes currently held (sum over memories).
    used: usize,
    /// Set when a growth was refused; cleared per activation.
    pub exceeded: bool,
}

/// Table elements one sandbox may hold.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    fn new(limit: usize) -> MemoryLimiter {
        MemoryLimiter {
            limit,
            used: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow_by = desired.saturating_sub(current);
        let within_max = maximum.is_none_or(|max| desired <= max);
        if !within_max || self.used.saturating_add(grow_by) > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.used += grow_by;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_sums_memories_and_remembers_refusals() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap_or(false));
        assert!(!limiter.memory_growing(0, 60, None).unwrap_or(true));
        assert!(limiter.exceeded);
        assert!(limiter.memory_growing(60, 100, None).unwrap_or(false));
        assert!(!limiter.memory_growing(0, 10, Some(5)).unwrap_or(true));
    }
}
