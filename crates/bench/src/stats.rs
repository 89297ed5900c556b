//! Percentiles of measured durations, and machine facts for the report.

use std::time::Duration;

/// Sorted samples of one measurement.
#[derive(Clone, Debug)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    /// No samples.
    pub const EMPTY: Samples = Samples { sorted: Vec::new() };

    /// Sorts `samples`.
    pub fn new(mut samples: Vec<Duration>) -> Samples {
        samples.sort_unstable();
        Samples { sorted: samples }
    }

    /// The samples of every part together.
    pub fn merge(parts: impl IntoIterator<Item = Samples>) -> Samples {
        Samples::new(parts.into_iter().flat_map(|p| p.sorted).collect())
    }

    /// The `q` quantile (0.0..=1.0), nearest rank; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.sorted.len() as f64) * q).ceil() as usize;
        let index = rank.clamp(1, self.sorted.len()) - 1;
        self.sorted.get(index).copied().unwrap_or_default()
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    /// The 90th percentile.
    pub fn p90(&self) -> Duration {
        self.quantile(0.90)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// A duration for a table: µs below 10 ms, else ms.
pub fn human(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 10_000.0 {
        format!("{micros:.1} µs")
    } else {
        format!("{:.1} ms", micros / 1000.0)
    }
}

/// One line about the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory_gib:.0} GiB, Linux {kernel}")
}

/// Proportional set size of this process, KiB (`/proc/self/smaps_rollup`).
pub fn pss_kib() -> Option<u64> {
    rollup_kib("Pss:")
}

/// Resident set size of this process, KiB (`/proc/self/smaps_rollup`).
pub fn rss_kib() -> Option<u64> {
    rollup_kib("Rss:")
}

fn rollup_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let s = Samples::new((1..=100).rev().map(Duration::from_micros).collect());
        assert_eq!(s.p50(), Duration::from_micros(50));
        assert_eq!(s.p90(), Duration::from_micros(90));
        assert_eq!(s.p99(), Duration::from_micros(99));
        assert_eq!(Samples::new(vec![]).p50(), Duration::ZERO);
    }

    #[test]
    fn merged_samples_are_sorted_together() {
        let part = |r: std::ops::Range<u64>| Samples::new(r.map(Duration::from_micros).collect());
        let s = Samples::merge([part(51..101), part(1..51)]);
        assert_eq!(s.len(), 100);
        assert_eq!(s.p50(), Duration::from_micros(50));
        assert_eq!(s.p99(), Duration::from_micros(99));
    }
}
