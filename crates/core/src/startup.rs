//! What every wasmwhisk process does first.

/// Logs to stderr at `RUST_LOG`'s level (default `warn`) and tunes the
/// allocator to give freed memory back (`wasmwhisk_sandbox::memory`).
pub fn init_process() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    wasmwhisk_sandbox::memory::tune_allocator();
}
