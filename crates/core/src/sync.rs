//! The one lock helper: `std::sync::Mutex` for short sections that never
//! `await`, taken even when poisoned. Every such section in the crate leaves
//! its data consistent at each step, so a panic elsewhere while it was held
//! is no reason to spread the panic to every later caller.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
