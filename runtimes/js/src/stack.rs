//! Bounds QuickJS's recursion, so that runaway recursion throws
//! `RangeError: Maximum call stack size exceeded` instead of trapping.
//!
//! QuickJS compares the stack pointer with `JSRuntime::stack_limit` on every
//! JavaScript call (and in the parser, `JSON`, regular expressions...). On
//! WASI, however, QuickJS-ng compiles that limit out: `update_stack_limit`
//! always stores 0 ("no limit") when `__wasi__` is defined, so
//! `Runtime::set_max_stack_size` has no effect.
//!
//! Patching QuickJS would need a `[patch]` of `rquickjs-sys`. Instead this
//! module writes `stack_limit` itself, at its offset in `JSRuntime`, a struct
//! private to `quickjs.c`. The offset is verified before use: the guard sets
//! the neighbouring `stack_size` field through the public
//! `JS_SetMaxStackSize` to two probe values and checks that both land at the
//! expected offset and that the limit reads as WASI's 0. If the layout ever
//! differs (another rquickjs version), the guard stays off and deep
//! recursion traps, as it would without it.
//!
//! # Two stacks
//!
//! In WebAssembly, C code runs on two stacks: the *shadow stack* in linear
//! memory (what QuickJS's check measures: its `alloca`s and address-taken
//! locals; size set in `build.rs`) and Wasmtime's *native* stack (the
//! compiled frames, bounded by the host's `max_wasm_stack`, 512 KiB in
//! wasmwhisk), whose exhaustion traps ("call stack exhausted"). The guest
//! cannot see the native stack, so the shadow budget must be small enough
//! that the native stack is never the one to run out. Measured with
//! wasmwhisk's 512 KiB native stack, one JavaScript call costs ~270 bytes of
//! shadow stack and ~600 of native stack (up to ~2.6x through getters,
//! `Array.prototype.map`, `sort` comparators...): without a limit plain
//! recursion traps at a depth of ~850, and a 192 KiB budget leaves only 2%
//! of margin for getter recursion. [`JS_STACK_BUDGET`] = 128 KiB (a quarter
//! of the native stack) gives plain recursion ~480 frames (getter ~400,
//! `map` ~140) and keeps at least 1.5x of margin in every case measured. A
//! host with a larger `max_wasm_stack` can afford a proportionally larger
//! budget (and then a shadow stack of at least budget + [`RESERVE`]).
//!
//! Recursion in C with tiny shadow frames (parsing a 100 000-deep
//! expression, `JSON.stringify` of a 100 000-deep array) still exhausts the
//! native stack first and traps: the host then fails the activation.
//!
//! # Arming
//!
//! The limit is an address: [`JS_STACK_BUDGET`] below the export's frame,
//! but never lower than `__stack_low` (the bottom of the shadow stack, from
//! the linker) plus [`RESERVE`]. QuickJS resets it to 0 whenever
//! `JS_UpdateStackTop` runs, which rquickjs does in
//! `Runtime::execute_pending_job` (this crate uses `Ctx::execute_pending_job`,
//! which does not), so [`StackGuard::arm`] sets it again on entry to every
//! export.

use rquickjs::Ctx;

/// Shadow stack JavaScript may use below the export's frame (see above).
pub const JS_STACK_BUDGET: usize = 128 * 1024;

/// Shadow stack always left free below the limit, for what runs after the
/// check failed or without checks (building the `RangeError`, Rust natives
/// like `console.log`).
#[cfg_attr(not(target_os = "wasi"), allow(dead_code))]
pub const RESERVE: usize = 64 * 1024;

/// Access to `JSRuntime::stack_limit`, when its offset checked out.
#[derive(Clone, Copy)]
pub struct StackGuard {
    #[cfg(target_os = "wasi")]
    limit: Option<std::ptr::NonNull<usize>>,
}

/// An address in the caller's frame: where the stack is now.
#[cfg(target_os = "wasi")]
#[inline(never)]
fn current_stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The limit for JavaScript entered at `sp`.
#[cfg(target_os = "wasi")]
fn limit_below(sp: usize) -> usize {
    sp.saturating_sub(JS_STACK_BUDGET)
        .max(layout::stack_low() + RESERVE)
}

#[cfg(target_os = "wasi")]
mod layout {
    /// `offsetof(JSRuntime, stack_size)` in QuickJS-ng 0.16.2 (rquickjs-sys
    /// 0.14.0) on wasm32, then without `ENABLE_DUMPS` (when built with
    /// `NDEBUG`), which removes one `list_head` before it.
    pub const STACK_SIZE_OFFSETS: [usize; 2] = [636, 628];
    /// `stack_limit` follows `stack_size` and `stack_top`.
    pub const LIMIT_AFTER_SIZE: usize = 2 * size_of::<usize>();
    /// Values written to `stack_size` to find it; unlikely anywhere else.
    pub const PROBES: [usize; 2] = [0x5a17_c0de, 0x0bad_f00d];

    unsafe extern "C" {
        /// The lowest address of the shadow stack (defined by `wasm-ld`).
        static __stack_low: u8;
    }

    pub fn stack_low() -> usize {
        (&raw const __stack_low) as usize
    }
}

impl StackGuard {
    /// Finds `stack_limit` in the runtime of `ctx` (see the module's docs).
    #[cfg(target_os = "wasi")]
    pub fn install(ctx: &Ctx<'_>) -> Self {
        use rquickjs::qjs;
        // SAFETY: `rt` is the live runtime of `ctx`; every offset read or
        // written lies within the `JSRuntime` struct (784 bytes in this
        // version), and a field is written only once it is identified.
        let limit = unsafe {
            let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
            let found = layout::STACK_SIZE_OFFSETS.into_iter().find(|&offset| {
                let size = rt.cast::<u8>().add(offset).cast::<usize>();
                let limit = size
                    .cast::<u8>()
                    .add(layout::LIMIT_AFTER_SIZE)
                    .cast::<usize>();
                layout::PROBES.into_iter().all(|probe| {
                    qjs::JS_SetMaxStackSize(rt, probe as qjs::size_t);
                    size.read_volatile() == probe && limit.read_volatile() == 0
                })
            });
            qjs::JS_SetMaxStackSize(rt, 0);
            found.and_then(|offset| {
                std::ptr::NonNull::new(
                    rt.cast::<u8>()
                        .add(offset + layout::LIMIT_AFTER_SIZE)
                        .cast(),
                )
            })
        };
        StackGuard { limit }
    }

    /// Lets QuickJS enforce its own limit (only `cargo check` on the host
    /// builds this crate for a target other than WASI).
    #[cfg(not(target_os = "wasi"))]
    pub fn install(ctx: &Ctx<'_>) -> Self {
        // SAFETY: the runtime of a live context.
        unsafe {
            let rt = rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
            rquickjs::qjs::JS_SetMaxStackSize(rt, JS_STACK_BUDGET as _);
        }
        StackGuard {}
    }

    /// (Re)sets the limit; called before JavaScript runs.
    pub fn arm(&self) {
        #[cfg(target_os = "wasi")]
        if let Some(limit) = self.limit {
            // SAFETY: `limit` points at `stack_limit` of the engine's
            // runtime, which lives as long as the instance.
            unsafe {
                limit
                    .as_ptr()
                    .write_volatile(limit_below(current_stack_pointer()))
            };
        }
    }
}
