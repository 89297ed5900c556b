//! Telling "the kernel's OOM killer killed the action" from other deaths.
//!
//! When a run's process exceeds the container's memory limit, the kernel
//! kills *that process*, not the proxy: the container keeps running and
//! Docker's `State.OOMKilled` stays false (it only reports the main
//! process). The container's memory cgroup counts the kills, so a process
//! that died of SIGKILL while the count went up was out of memory; `/run`
//! then answers with OpenWhisk's message for it.

use std::fs;

/// OpenWhisk's message for an action killed for its memory.
pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";

/// Where the container's memory cgroup counts OOM kills (`oom_kill N`):
/// cgroup v2's `memory.events`, then cgroup v1's `memory.oom_control`.
const COUNTERS: &[&str] = &[
    "/sys/fs/cgroup/memory.events",
    "/sys/fs/cgroup/memory/memory.oom_control",
];

/// The container's OOM kill count so far, if the cgroup shows it.
pub fn kills() -> Option<u64> {
    COUNTERS
        .iter()
        .find_map(|path| fs::read_to_string(path).ok())
        .and_then(|text| parse_kills(&text))
}

/// The `oom_kill N` line of a cgroup memory file.
pub fn parse_kills(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oom_kill_line_is_found_in_both_cgroup_versions() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_kills(v2), Some(2));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n";
        assert_eq!(parse_kills(v1), Some(7));
        assert_eq!(parse_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
        assert_eq!(parse_kills(""), None);
    }
}
