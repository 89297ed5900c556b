//! The one epoch ticker of an engine.
//!
//! Deadlines use Wasmtime's epoch interruption: generated code checks a
//! counter at loop heads and function entries, and this thread bumps it every
//! `tick`. The ticker only runs while some activation is in flight
//! ([`RunGuard`]); an idle invoker's warm sandboxes wake nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Shared state: the number of runs in flight, and a condvar the ticker
/// sleeps on while it is zero.
#[derive(Debug)]
struct Shared {
    active: AtomicUsize,
    stop: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Owns the ticker thread; stops it on drop.
#[derive(Debug)]
pub struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Keeps the ticker running while alive (one per activation in flight).
#[derive(Debug)]
pub struct RunGuard {
    shared: Arc<Shared>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: wasmtime::Engine, tick: Duration) -> std::io::Result<EpochTicker> {
        let shared = Arc::new(Shared {
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wasmwhisk-epoch".into())
            .spawn(move || tick_loop(&thread_shared, &engine, tick))?;
        Ok(EpochTicker {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks one activation in flight until the guard drops.
    pub fn run_guard(&self) -> RunGuard {
        if self.shared.active.fetch_add(1, Ordering::SeqCst) == 0 {
            let _held = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_one();
        }
        RunGuard {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _held = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn tick_loop(shared: &Shared, engine: &wasmtime::Engine, tick: Duration) {
    loop {
        {
            let mut held = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            while shared.active.load(Ordering::SeqCst) == 0 && !shared.stop.load(Ordering::SeqCst) {
                held = shared.wake.wait(held).unwrap_or_else(|e| e.into_inner());
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(tick);
        engine.increment_epoch();
    }
}
