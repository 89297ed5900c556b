//! The `wasmwhisk-bench` command: the benchmarks of docs/BENCHMARKS.md.
//! `wasmwhisk bench …` runs it; it runs `wasmwhisk` (`$WASMWHISK_BIN`, else
//! the binary beside it) where a bench needs a server.
//!
//! Its allocator counts heap bytes for `bench pool`'s memory rows: that
//! allocator is this binary's, not `wasmwhisk`'s.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The system allocator, able to count the heap bytes in use for
/// `wasmwhisk bench pool`. Off, counting costs one relaxed load of a flag
/// per call; on, one relaxed atomic add on a shared counter (≈ 10% of the
/// pool's throughput on 2 cores), so the bench counts only around its heap
/// rows.
struct CountingAllocator;

/// Whether allocations are counted.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed while counting (the system allocator's
/// own per-block overhead is not counted). A block allocated before counting
/// started and freed after makes it lower: only differences mean something.
static HEAP_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count(bytes: usize, freed: bool) {
    if COUNTING.load(Ordering::Relaxed) {
        let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
        HEAP_BYTES.fetch_add(if freed { -bytes } else { bytes }, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds `GlobalAlloc`'s contract; counting neither allocates nor touches
// the memory.
#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; every method forwards to System"
)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees on `layout` are passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size(), false);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size(), false);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (that is, `System`)
        // with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(layout.size(), true);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and the caller's guarantees on `new_size`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(layout.size(), true);
            count(new_size, false);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The heap counter `wasmwhisk bench pool` reads.
const HEAP_COUNTER: wasmwhisk_bench::pool::HeapCounter = wasmwhisk_bench::pool::HeapCounter {
    set_counting: |on| COUNTING.store(on, Ordering::Relaxed),
    net_bytes: || HEAP_BYTES.load(Ordering::Relaxed),
};

/// wasmwhisk's benchmarks.
#[derive(Parser, Debug)]
#[command(name = "wasmwhisk bench", version, about)]
struct Cli {
    /// Data directory: the benches' compile caches and servers' data.
    #[arg(long, global = true, env = "WASMWHISK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sandbox costs: compile, cold start, stem cell, specialize, warm run, memory per sandbox.
    Sandbox(wasmwhisk_bench::sandbox::SandboxBenchArgs),
    /// Pool targets: creation → ack, warm activation, throughput, 10,000 warmed sandboxes.
    Pool(wasmwhisk_bench::pool::PoolBenchArgs),
    /// REST API targets: start → serving, idle memory, warm and first invokes, throughput.
    Api(wasmwhisk_bench::api::ApiBenchArgs),
    /// Wasm vs Docker: cold, prewarmed and warm starts of the same action side by side, and density.
    Docker(wasmwhisk_bench::docker::DockerBenchArgs),
    /// Cluster targets: warm invoke through NATS, throughput with 2 invokers, invoker start → up, dead invoker.
    Cluster(wasmwhisk_bench::cluster::ClusterBenchArgs),
}

fn main() -> ExitCode {
    wasmwhisk_core::startup::init_process();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(3)
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let data_dir = wasmwhisk_core::config::layout::data_dir(cli.data_dir);
    match cli.command {
        Command::Sandbox(args) => wasmwhisk_bench::sandbox::run(&data_dir, args),
        Command::Pool(args) => wasmwhisk_bench::pool::run(&data_dir, args, Some(HEAP_COUNTER)),
        Command::Api(args) => wasmwhisk_bench::api::run(&data_dir, args),
        Command::Docker(args) => wasmwhisk_bench::docker::run(&data_dir, args),
        Command::Cluster(args) => wasmwhisk_bench::cluster::run(&data_dir, args),
    }
}
