//! What a running container costs in memory, read from outside it.
//!
//! A container's memory is more than its cgroup's charge: every container
//! has its own `containerd-shim` process (its parent, holding its stdio),
//! outside the cgroup, and — when a port is published — a `docker-proxy`.
//! Both are found in `/proc` by their command lines (`-id <container id>`,
//! `-container-ip <its address>`), so the bench must run on the Docker
//! host. The daemons' (`dockerd`, `containerd`) growth is read the same way.

use std::collections::HashMap;
use std::path::Path;

/// One process of the machine.
#[derive(Clone, Debug)]
pub(crate) struct Process {
    /// Its pid.
    pub pid: u32,
    /// `/proc/{pid}/comm`.
    pub comm: String,
    /// `/proc/{pid}/cmdline`, split at NULs.
    pub args: Vec<String>,
}

/// Every process `/proc` shows (those that exit while it is read are left out).
pub(crate) fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let dir = Path::new("/proc").join(pid.to_string());
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            Some(Process {
                pid,
                comm: comm.trim().to_string(),
                args: split_cmdline(&cmdline),
            })
        })
        .collect()
}

/// `/proc/{pid}/cmdline`'s arguments.
fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// The value after `flag` in `args` (`-id X`, `--id X` or `-id=X`).
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let dashed = [format!("-{flag}"), format!("--{flag}")];
    args.iter().enumerate().find_map(|(i, arg)| {
        if dashed.iter().any(|d| d == arg) {
            return args.get(i + 1).map(String::as_str);
        }
        dashed
            .iter()
            .find_map(|d| arg.strip_prefix(d.as_str())?.strip_prefix('='))
    })
}

/// The basename of a process's executable (its first argument).
fn program(process: &Process) -> &str {
    process
        .args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or(&process.comm)
}

/// The `containerd-shim*` process of the container `id` (its full id).
pub(crate) fn shim_of<'a>(processes: &'a [Process], id: &str) -> Option<&'a Process> {
    processes.iter().find(|p| {
        program(p).starts_with("containerd-shim") && flag_value(&p.args, "id") == Some(id)
    })
}

/// The `docker-proxy` processes forwarding to `ip` (none unless a port is published).
pub(crate) fn proxies_of<'a>(processes: &'a [Process], ip: &str) -> Vec<&'a Process> {
    processes
        .iter()
        .filter(|p| program(p) == "docker-proxy" && flag_value(&p.args, "container-ip") == Some(ip))
        .collect()
}

/// The Docker daemons: `dockerd` and `containerd`.
pub(crate) fn daemons(processes: &[Process]) -> Vec<&Process> {
    processes
        .iter()
        .filter(|p| p.comm == "dockerd" || p.comm == "containerd")
        .collect()
}

/// Resident, proportional and unique memory of one process, KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcMemory {
    /// `VmRSS` of `/proc/{pid}/status`: every resident page it maps.
    pub rss_kib: u64,
    /// `Pss` of `/proc/{pid}/smaps_rollup`: shared pages divided among their users.
    pub pss_kib: u64,
    /// `Private_Clean + Private_Dirty` of `smaps_rollup` (its USS): the
    /// pages only it maps — what one more such process adds.
    pub uss_kib: u64,
}

impl std::ops::Add for ProcMemory {
    type Output = ProcMemory;
    fn add(self, other: ProcMemory) -> ProcMemory {
        ProcMemory {
            rss_kib: self.rss_kib + other.rss_kib,
            pss_kib: self.pss_kib + other.pss_kib,
            uss_kib: self.uss_kib + other.uss_kib,
        }
    }
}

/// The memory of `pid`; `None` once it is gone or unreadable.
pub(crate) fn memory_of(pid: u32) -> Option<ProcMemory> {
    let dir = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let rollup = std::fs::read_to_string(dir.join("smaps_rollup")).ok()?;
    Some(ProcMemory {
        rss_kib: kib_field(&status, "VmRSS:")?,
        pss_kib: kib_field(&rollup, "Pss:")?,
        uss_kib: kib_field(&rollup, "Private_Clean:")? + kib_field(&rollup, "Private_Dirty:")?,
    })
}

/// The number of a `Name:   1234 kB` line.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// The memory `docker stats` shows for a container, bytes: the cgroup's
/// usage less its inactive page cache (`total_inactive_file` on cgroup v1,
/// `inactive_file` on v2) — the Docker CLI's own formula.
pub(crate) fn usage_without_cache(usage: u64, stats: &HashMap<String, u64>) -> u64 {
    let inactive = stats
        .get("total_inactive_file")
        .or_else(|| stats.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    if inactive < usage {
        usage - inactive
    } else {
        usage
    }
}

/// The sum of the memory of the daemons (`dockerd`, `containerd`) now.
pub(crate) fn daemons_memory() -> ProcMemory {
    let all = processes();
    daemons(&all)
        .into_iter()
        .filter_map(|p| memory_of(p.pid))
        .fold(ProcMemory::default(), |a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, comm: &str, args: &[&str]) -> Process {
        Process {
            pid,
            comm: comm.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn finds_a_containers_shim_and_proxy_by_their_arguments() {
        let id = "4f2a".repeat(16);
        let other = "9b1c".repeat(16);
        let all = vec![
            process(
                10,
                "containerd-shim",
                &[
                    "/usr/bin/containerd-shim-runc-v2",
                    "-namespace",
                    "moby",
                    "-id",
                    &other,
                ],
            ),
            process(
                11,
                "containerd-shim",
                &[
                    "/usr/bin/containerd-shim-runc-v2",
                    "-namespace",
                    "moby",
                    "-id",
                    &id,
                    "-address",
                    "/run/containerd.sock",
                ],
            ),
            process(
                12,
                "docker-proxy",
                &[
                    "/usr/bin/docker-proxy",
                    "-proto",
                    "tcp",
                    "-container-ip",
                    "172.17.0.3",
                    "-container-port",
                    "8080",
                ],
            ),
            process(1, "dockerd", &["/usr/sbin/dockerd"]),
            process(2, "containerd", &["containerd", "--config", "x.toml"]),
            process(3, "bash", &["bash", "-id", &id]),
        ];
        assert_eq!(shim_of(&all, &id).map(|p| p.pid), Some(11));
        assert!(shim_of(&all, "abc").is_none());
        let proxies: Vec<u32> = proxies_of(&all, "172.17.0.3")
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(proxies, [12]);
        assert!(proxies_of(&all, "172.17.0.30").is_empty());
        let pids: Vec<u32> = daemons(&all).iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, 2]);
    }

    #[test]
    fn flags_take_either_form() {
        let args: Vec<String> = ["x", "--id=abc", "-container-ip", "1.2.3.4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flag_value(&args, "id"), Some("abc"));
        assert_eq!(flag_value(&args, "container-ip"), Some("1.2.3.4"));
        assert_eq!(flag_value(&args, "address"), None);
        assert_eq!(split_cmdline(b"a\0-id\0b\0"), ["a", "-id", "b"]);
    }

    #[test]
    fn memory_is_read_from_proc_files() {
        let status = "Name:\tx\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(kib_field(status, "VmRSS:"), Some(10240));
        assert_eq!(kib_field(status, "Pss:"), None);
        let me = memory_of(std::process::id()).expect("this process's memory");
        assert!(me.rss_kib > 0 && me.pss_kib > 0 && me.uss_kib > 0);
        assert!(me.uss_kib <= me.pss_kib && me.pss_kib <= me.rss_kib);
    }

    #[test]
    fn usage_leaves_out_inactive_page_cache_like_the_docker_cli() {
        let v1: HashMap<String, u64> = [("total_inactive_file".to_string(), 300)].into();
        let v2: HashMap<String, u64> = [("inactive_file".to_string(), 200)].into();
        assert_eq!(usage_without_cache(1000, &v1), 700);
        assert_eq!(usage_without_cache(1000, &v2), 800);
        assert_eq!(usage_without_cache(1000, &HashMap::new()), 1000);
        assert_eq!(usage_without_cache(100, &v1), 100);
    }
}
