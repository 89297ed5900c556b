//! Bounds QuickJS's use of the C stack, so that runaway recursion throws
//! `RangeError: Maximum call stack size exceeded` instead of trapping.
//!
//! QuickJS compares the stack pointer with `JSRuntime::stack_limit` on every
//! call (and in the parser, `JSON`, regular expressions...). On WASI,
//! however, QuickJS-ng compiles that limit out: `update_stack_limit` always
//! stores 0 ("no limit") when `__wasi__` is defined, so
//! `Runtime::set_max_stack_size` has no effect, and deep recursion runs off
//! the end of the shadow stack (in linear memory) and traps the instance.
//!
//! Patching QuickJS would need a `[patch]` of `rquickjs-sys`. Instead this
//! module writes `stack_limit` itself, at its offset in `JSRuntime`, which is
//! private to `quickjs.c`. That offset is verified before use: the guard
//! sets the neighbouring `stack_size` field through the public
//! `JS_SetMaxStackSize` to two probe values and checks that both land at the
//! expected offset and that the limit reads as WASI's 0. If the layout ever
//! differs (another rquickjs version), the guard stays off and deep
//! recursion traps again, as without it.
//!
//! The limit is an address, `__stack_low` (the bottom of the shadow stack,
//! from the linker) plus [`RESERVE`], so JavaScript may use the whole stack
//! except the reserve, which stays free for what runs after the check fails
//! or without checks: building the `RangeError`, Rust natives such as
//! `console.log`, the component's glue. The stack's size is set in
//! `build.rs`. QuickJS resets the limit to 0 whenever `JS_UpdateStackTop`
//! runs, which rquickjs does in `Runtime::execute_pending_job` (this crate
//! uses `Ctx::execute_pending_job` instead), so [`StackGuard::arm`] sets it
//! again on entry to every export.

use rquickjs::Ctx;

/// Stack left free below the limit.
#[cfg_attr(not(target_os = "wasi"), allow(dead_code))]
pub const RESERVE: usize = 128 * 1024;

/// The limit QuickJS enforces natively (where its own check works): only
/// `cargo check` on the host builds this crate for a non-WASI target.
#[cfg(not(target_os = "wasi"))]
const NATIVE_MAX_STACK_SIZE: usize = 512 * 1024;

/// Access to `JSRuntime::stack_limit`, when its offset checked out.
#[derive(Clone, Copy)]
pub struct StackGuard {
    #[cfg(target_os = "wasi")]
    limit: Option<std::ptr::NonNull<usize>>,
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

    /// Lets QuickJS enforce its own limit.
    #[cfg(not(target_os = "wasi"))]
    pub fn install(ctx: &Ctx<'_>) -> Self {
        // SAFETY: the runtime of a live context.
        unsafe {
            let rt = rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
            rquickjs::qjs::JS_SetMaxStackSize(rt, NATIVE_MAX_STACK_SIZE as _);
        }
        StackGuard {}
    }

    /// (Re)sets the limit; called before JavaScript runs.
    pub fn arm(&self) {
        #[cfg(target_os = "wasi")]
        if let Some(limit) = self.limit {
            // SAFETY: `limit` points at `stack_limit` of the engine's
            // runtime, which lives as long as the instance.
            unsafe { limit.as_ptr().write_volatile(layout::stack_low() + RESERVE) };
        }
    }
}
