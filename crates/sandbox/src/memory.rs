//! Giving freed memory back to the operating system.
//!
//! The server's heap is glibc's `malloc`. Two of its defaults keep memory a
//! burst of large requests used long after the requests are gone:
//! - its *dynamic mmap threshold*: an allocation of 128 KiB or more is
//!   mapped on its own (and unmapped when freed), but each such free raises
//!   the threshold to that size (up to 32 MiB), so after the first 1 MB
//!   body every later one is carved out of a heap arena instead — and a
//!   heap arena shrinks only from its top, so thousands of freed bodies stay
//!   resident behind one live allocation;
//! - freed small blocks in the middle of an arena are not returned at all
//!   until `malloc_trim` is called.
//!
//! [`tune_allocator`] fixes the threshold (which turns the dynamic
//! adjustment off): every allocation of [`MMAP_THRESHOLD`] or more — a large
//! invoke body, a log buffer, a big result — is its own mapping, returned to
//! the system the moment it is freed. [`trim_soon`] asks for a
//! `malloc_trim(0)` on a background thread after a large drain (a queue of
//! bodies emptied, a huge activation's logs handed over): it returns the free
//! pages of every arena, small blocks included.
//!
//! Both are no-ops where the C library is not glibc.

use std::sync::atomic::{AtomicBool, Ordering};

/// Allocations at least this large get their own mapping.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`]. Call once, early in
/// a server process (before its threads allocate much).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only changes malloc's parameters; it is safe to
        // call at any time, and with a valid parameter and value it cannot
        // affect memory already allocated.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        if ok != 1 {
            tracing::warn!(
                "could not set malloc's mmap threshold; freed large buffers may stay resident"
            );
        }
    }
}

/// The trimming thread is alive.
static TRIMMING: AtomicBool = AtomicBool::new(false);
/// A trim was asked for while the thread was alive.
static AGAIN: AtomicBool = AtomicBool::new(false);

/// How long a trim waits before it runs: what the caller is about to drop
/// (a record on its way to the store, say) is freed by then.
const TRIM_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// The least time between two trims: `malloc_trim` locks each arena while
/// it walks it, so under a steady stream of large drains it runs at most
/// this often.
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Returns the heap's free pages to the system soon, on a thread of its own
/// (a trim of a large heap takes milliseconds; it must not run on an async
/// worker), [`TRIM_DELAY`] from now, and at most once per
/// [`TRIM_INTERVAL`]: calls in between are merged into one more trim.
pub fn trim_soon() {
    if TRIMMING.swap(true, Ordering::AcqRel) {
        AGAIN.store(true, Ordering::Release);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_DELAY);
                trim_now();
                std::thread::sleep(TRIM_INTERVAL.saturating_sub(TRIM_DELAY));
                if !AGAIN.swap(false, Ordering::AcqRel) {
                    break;
                }
            }
            TRIMMING.store(false, Ordering::Release);
            // A request between the last look and the store above would be
            // lost: look once more.
            if AGAIN.swap(false, Ordering::AcqRel) {
                trim_soon();
            }
        });
    if spawned.is_err() {
        TRIMMING.store(false, Ordering::Release);
    }
}

/// Returns the heap's free pages to the system now (blocking).
pub fn trim_now() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only releases free memory of malloc's own
        // arenas; it is thread-safe and touches no live allocation.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Decides when freed memory is worth a trim: after the bytes a holder
/// keeps (queued bodies, say) peaked at [`TrimPolicy::min_peak`] or more and
/// then fell below a quarter of that peak. Pure: the caller reports levels
/// and carries out the trim.
#[derive(Debug, Clone, Copy)]
pub struct TrimPolicy {
    /// Peaks below this are not worth a trim.
    pub min_peak: usize,
    peak: usize,
}

impl TrimPolicy {
    /// A policy that trims after drains from peaks of at least `min_peak`.
    pub const fn new(min_peak: usize) -> TrimPolicy {
        TrimPolicy { min_peak, peak: 0 }
    }

    /// The level is now `bytes`; true when a trim should run now.
    pub fn observe(&mut self, bytes: usize) -> bool {
        if bytes > self.peak {
            self.peak = bytes;
            return false;
        }
        if self.peak >= self.min_peak && bytes < self.peak / 4 {
            self.peak = bytes;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::TrimPolicy;

    #[test]
    fn trims_once_after_a_large_drain() {
        let mut policy = TrimPolicy::new(1000);
        assert!(!policy.observe(500));
        assert!(!policy.observe(2000));
        assert!(!policy.observe(1500));
        assert!(!policy.observe(600));
        assert!(policy.observe(400), "below a quarter of the peak");
        assert!(!policy.observe(0), "the peak was reset by the trim");
    }

    #[test]
    fn small_peaks_never_trim() {
        let mut policy = TrimPolicy::new(1000);
        assert!(!policy.observe(999));
        assert!(!policy.observe(0));
    }

    #[test]
    fn trimming_is_harmless() {
        super::tune_allocator();
        let big = vec![7u8; 4 << 20];
        drop(big);
        super::trim_now();
        super::trim_soon();
        super::trim_soon();
    }
}
