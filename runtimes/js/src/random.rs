//! `Math.random`, reseeded in every instance.
//!
//! The host pre-initializes the runtime once and instantiates every sandbox
//! from that snapshot, so any generator state that exists at snapshot time
//! (QuickJS seeds its own `Math.random` from the clock when the context is
//! created) would make every instance produce the same sequence. The prelude
//! therefore replaces `Math.random` with [`next_f64`], whose state lives here
//! and is reseeded from `wasi:random/random` by `init` ([`reseed`]), which
//! runs once per instance after the snapshot.
//!
//! The generator is SplitMix64: tiny, fast, and statistically good enough for
//! `Math.random` (which promises no cryptographic quality).

use std::cell::Cell;

thread_local! {
    /// SplitMix64's state. The constant only matters if `init` never ran.
    static STATE: Cell<u64> = const { Cell::new(0x853C_49E6_748F_EA9B) };
}

/// Seeds the generator from the host's random source (`wasi:random/random`),
/// falling back on the wall clock if that is unavailable.
pub fn reseed() {
    let seed = getrandom::u64().unwrap_or_else(|_| clock_seed());
    STATE.set(seed);
}

/// The next number in `[0, 1)`, with 53 random bits like V8's.
pub fn next_f64() -> f64 {
    let bits = next_u64() >> 11;
    // 2^-53: `bits` has 53 significant bits, so the product is exact and < 1.
    bits as f64 * (1.0 / (1u64 << 53) as f64)
}

fn next_u64() -> u64 {
    let state = STATE.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
    STATE.set(state);
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_in_unit_interval_and_vary() {
        super::reseed();
        let draws: Vec<f64> = (0..1000).map(|_| super::next_f64()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(draws.windows(2).all(|w| w[0] != w[1]));
    }
}
