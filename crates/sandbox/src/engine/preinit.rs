//! Pre-initialization of runtime components (Wasmtime's wizer).
//!
//! A language runtime exports `wizer-initialize`, which boots its engine (for
//! QuickJS: runtime, context, intrinsics, `console`). We run it once in a
//! scratch instance and snapshot the instance's memory and globals into a new
//! component, so every stem cell starts already booted: instantiation maps
//! the snapshot copy-on-write instead of re-running the boot.
//!
//! Wizer's API is async, while sandboxes run synchronously; so this runs on
//! a thread of its own with a current-thread Tokio runtime and an async WASI
//! linker, whatever the caller's context.

use anyhow::{Context, Result, anyhow};
use wasmtime::Store;
use wasmtime::component::{Component, Instance, Linker, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::state::SandboxState;

/// Runs `wizer-initialize` of `wasm` and returns the snapshotted component.
/// Blocking (seconds: it compiles the instrumented component).
pub fn preinitialize(engine: &wasmtime::Engine, wasm: &[u8]) -> Result<Vec<u8>> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("wasmwhisk-preinit".into())
            .spawn_scoped(scope, || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting a runtime for pre-initialization")?;
                runtime.block_on(preinitialize_async(engine, wasm))
            })
            .context("starting the pre-initialization thread")?
            .join()
            .map_err(|_| anyhow!("pre-initialization panicked"))?
    })
}

async fn preinitialize_async(engine: &wasmtime::Engine, wasm: &[u8]) -> Result<Vec<u8>> {
    let mut linker: Linker<SandboxState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| anyhow!("linking WASI for pre-initialization: {e}"))?;
    linker
        .instance(super::world::TYPES_INTERFACE)
        .map_err(|e| anyhow!("linking the world's types: {e}"))?;
    let mut wizer = Wizer::new();
    // Wasmtime 48's component rewrite is invalid without keeping the init export.
    wizer.keep_init_func(true);
    let (context, instrumented) = wizer
        .instrument_component(wasm)
        .map_err(|e| anyhow!("instrumenting the runtime for pre-initialization: {e}"))?;
    let component = Component::new(engine, &instrumented)
        .map_err(|e| anyhow!("compiling the instrumented runtime: {e}"))?;
    let mut store = Store::new(engine, SandboxState::new(64 << 20));
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = linker
        .instantiate_async(&mut store, &component)
        .await
        .map_err(|e| anyhow!("instantiating the runtime for pre-initialization: {e}"))?;
    let init = instance
        .get_typed_func::<(), ()>(&mut store, "wizer-initialize")
        .map_err(|e| anyhow!("the runtime has no `wizer-initialize` export: {e}"))?;
    init.call_async(&mut store, ())
        .await
        .map_err(|e| anyhow!("the runtime's `wizer-initialize` failed: {e}"))?;
    let mut state = SnapshotSource {
        store: &mut store,
        instance,
        error: None,
    };
    let snapshot = wizer
        .snapshot_component(&context, &mut state)
        .await
        .map_err(|e| anyhow!("snapshotting the runtime: {e}"))?;
    if let Some(error) = state.error {
        return Err(error).context("reading the runtime's state for the snapshot");
    }
    Ok(snapshot)
}

/// Lets wizer read the instrumented instance's state. The trait has no error
/// channel, so a failure is recorded in `error` and checked afterwards.
struct SnapshotSource<'a> {
    store: &'a mut Store<SandboxState>,
    instance: Instance,
    error: Option<anyhow::Error>,
}

impl SnapshotSource<'_> {
    async fn call<R>(&mut self, instance: &str, func: &str) -> Option<R>
    where
        R: wasmtime::component::ComponentType + wasmtime::component::Lift + Send + Sync + 'static,
    {
        let result = async {
            let outer = self
                .instance
                .get_export_index(&mut *self.store, None, instance)
                .ok_or_else(|| anyhow!("no export `{instance}`"))?;
            let inner = self
                .instance
                .get_export_index(&mut *self.store, Some(&outer), func)
                .ok_or_else(|| anyhow!("no export `{instance}#{func}`"))?;
            let typed = self
                .instance
                .get_typed_func::<(), (R,)>(&mut *self.store, inner)
                .map_err(|e| anyhow!("{instance}#{func}: {e}"))?;
            let (value,) = typed
                .call_async(&mut *self.store, ())
                .await
                .map_err(|e| anyhow!("{instance}#{func}: {e}"))?;
            anyhow::Ok(value)
        }
        .await;
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.error.get_or_insert(error);
                None
            }
        }
    }
}

impl ComponentInstanceState for SnapshotSource<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.call::<WasmList<u8>>(instance, func).await {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func)
            .await
            .map(f32::to_bits)
            .unwrap_or_default()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func)
            .await
            .map(f64::to_bits)
            .unwrap_or_default()
    }
}
