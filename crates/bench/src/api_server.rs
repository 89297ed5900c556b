//! The server of `wasmwhisk bench api`: the real `wasmwhisk standalone`
//! started as a child process — the same binary as the bench — and what the
//! bench reads about it from outside, as an operator would: the listening
//! line on its stdout, the keys in its data directory, and its memory and CPU
//! time from `/proc/{pid}`. `wasmwhisk bench cluster` starts its controllers
//! and invokers the same way ([`Role`]).
//!
//! A child process, not a server in the bench's own process, so that its
//! RSS is its own, its start is a real process start (exec, dynamic
//! linking, opening the database, loading the runtime from the compile
//! cache) and the HTTP requests cross a real loopback socket.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The longest a start or a stop may take before the bench gives up.
const WAIT: Duration = Duration::from_secs(120);

/// How to start the server: the binary, its data directory and extra
/// environment variables (configuration overrides).
#[derive(Clone, Debug)]
pub(super) struct Launch {
    /// The `wasmwhisk` binary.
    pub(super) exe: PathBuf,
    /// Its `--data-dir`.
    pub(super) data_dir: PathBuf,
    /// `WASMWHISK_*` overrides set in its environment.
    pub(super) env: Vec<(String, String)>,
}

/// What a `wasmwhisk` child process runs as.
#[derive(Clone, Debug)]
pub(super) struct Role {
    /// Its subcommand and flags (after `--data-dir`), e.g.
    /// `standalone --port 0` or `invoker --id 1 --port 0 --nats … --etcd …`.
    pub(super) args: Vec<String>,
    /// `standalone`, `controller0`, `invoker1`: it serves once it prints
    /// `wasmwhisk {name}: listening on {url}`.
    pub(super) name: String,
    /// Whether it writes the guest key to `{data-dir}/wskprops` (standalone
    /// and a controller that created the `guest` namespace do).
    pub(super) wskprops: bool,
    /// Where its stderr goes: this file (appended), else the bench's own
    /// stderr.
    pub(super) log: Option<PathBuf>,
}

impl Role {
    /// `wasmwhisk standalone --port 0`, logging to the bench's stderr.
    pub(super) fn standalone() -> Role {
        Role {
            args: ["standalone", "--port", "0"].map(String::from).to_vec(),
            name: "standalone".into(),
            wskprops: true,
            log: None,
        }
    }
}

/// A running `wasmwhisk` child process (standalone, or a cluster's
/// controller or invoker); killed (SIGKILL) if dropped while running, so a
/// failed bench leaves no server behind.
pub(super) struct Server {
    child: Child,
    /// `http://127.0.0.1:{port}`, from the listening line.
    pub(super) base: String,
    /// The guest key `uuid:key`, from `{data-dir}/wskprops` (empty if its
    /// [`Role`] writes none).
    pub(super) auth: String,
    /// The admin API's `user:password`, from `{data-dir}/admin.auth`.
    pub(super) admin: String,
    /// From spawning the process until its listening line was read.
    pub(super) to_listening: Duration,
    /// When the process was spawned.
    pub(super) spawned: Instant,
}

impl Server {
    /// Spawns `wasmwhisk standalone` and waits for its listening line.
    pub(super) fn start(launch: &Launch) -> Result<Server> {
        Server::start_as(launch, &Role::standalone())
    }

    /// Spawns `wasmwhisk` as `role` and waits for its listening line.
    pub(super) fn start_as(launch: &Launch, role: &Role) -> Result<Server> {
        let mut command = Command::new(&launch.exe);
        command
            .arg("--data-dir")
            .arg(&launch.data_dir)
            .args(&role.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match &role.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                command.stderr(file)
            }
            None => command.stderr(Stdio::inherit()),
        };
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.exe.display()))?;
        let stdout = child.stdout.take().context("no stdout of the server")?;
        let (tx, rx) = mpsc::channel();
        let listening = format!("wasmwhisk {}: listening on ", role.name);
        // Reads stdout to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix(&listening) {
                    let _ = tx.send((Instant::now(), url.trim().to_string()));
                }
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            auth: String::new(),
            admin: String::new(),
            to_listening: Duration::ZERO,
            spawned,
        };
        let (at, base) = match rx.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                let log = role.log.as_deref().map(log_tail).unwrap_or_default();
                bail!(
                    "wasmwhisk {} printed no listening line (exit status: {status:?}){log}",
                    role.name
                );
            }
        };
        server.to_listening = at.saturating_duration_since(spawned);
        server.base = base;
        if role.wskprops {
            server.auth = wskprops_auth(&launch.data_dir)?;
        }
        let admin = launch.data_dir.join("admin.auth");
        server.admin = std::fs::read_to_string(&admin)
            .with_context(|| format!("reading {}", admin.display()))?
            .trim()
            .to_string();
        Ok(server)
    }

    /// The server's process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit; fails unless it
    /// exits with status 0.
    pub(super) fn stop(mut self) -> Result<()> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {pid} failed: {sent}");
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the server")? {
                if !status.success() {
                    bail!("the server exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not exit within {WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last lines of the log at `path`, as the end of an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines
        .get(lines.len().saturating_sub(20)..)
        .unwrap_or_default()
        .join("\n");
    format!("; the end of its log {}:\n{tail}", path.display())
}

/// `AUTH` of `{data_dir}/wskprops`.
fn wskprops_auth(data_dir: &Path) -> Result<String> {
    let file = data_dir.join("wskprops");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("AUTH="))
        .map(|a| a.trim().to_string())
        .with_context(|| format!("no AUTH= in {}", file.display()))
}

/// Memory and CPU time of a process, from `/proc/{pid}`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ProcStats {
    /// `VmRSS` of `status`, KiB.
    pub(super) rss_kib: u64,
    /// `Pss` of `smaps_rollup`, KiB.
    pub(super) pss_kib: u64,
    /// `Threads` of `status`.
    pub(super) threads: u64,
    /// `utime + stime` of `stat`, clock ticks.
    pub(super) cpu_ticks: u64,
    /// `write_bytes` of `io`: bytes the process caused to be written to
    /// storage (0 where the kernel does not account I/O).
    pub(super) write_bytes: u64,
}

/// Clock ticks per second of `/proc/{pid}/stat` (`USER_HZ`: 100 on every
/// Linux architecture the bench runs on).
pub(super) const TICKS_PER_SECOND: f64 = 100.0;

impl ProcStats {
    /// Reads the stats of process `pid` (`"self"` for the bench's own).
    pub(super) fn read(pid: &str) -> Result<ProcStats> {
        let proc = PathBuf::from("/proc").join(pid);
        let status = read(&proc.join("status"))?;
        let rollup = read(&proc.join("smaps_rollup"))?;
        let stat = read(&proc.join("stat"))?;
        Ok(ProcStats {
            rss_kib: field(&status, "VmRSS:")?,
            pss_kib: field(&rollup, "Pss:")?,
            threads: field(&status, "Threads:")?,
            cpu_ticks: cpu_ticks(&stat)?,
            write_bytes: std::fs::read_to_string(proc.join("io"))
                .ok()
                .and_then(|io| field(&io, "write_bytes:").ok())
                .unwrap_or(0),
        })
    }

    /// CPU time, seconds.
    pub(super) fn cpu_seconds(&self) -> f64 {
        self.cpu_ticks as f64 / TICKS_PER_SECOND
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The number after `name` on its line (`VmRSS:   1234 kB`).
fn field(text: &str, name: &str) -> Result<u64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {name} in /proc"))
}

/// `utime + stime` of a `/proc/{pid}/stat` line: fields 14 and 15, counted
/// after the command name (which may hold spaces, so from its last `)`).
fn cpu_ticks(stat: &str) -> Result<u64> {
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' in /proc/{pid}/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is at index n - 3.
    let ticks = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no field {n} in /proc/{{pid}}/stat"))
    };
    Ok(ticks(14)? + ticks(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 9 0 1 2 3";
        assert_eq!(cpu_ticks(stat).unwrap(), 12);
        assert!(cpu_ticks("42 (x) S 1").is_err());
    }

    #[test]
    fn fields_are_read_by_name() {
        let status = "Name:\tx\nVmRSS:\t  2048 kB\nThreads:\t7\n";
        assert_eq!(field(status, "VmRSS:").unwrap(), 2048);
        assert_eq!(field(status, "Threads:").unwrap(), 7);
        assert!(field(status, "VmHWM:").is_err());
    }

    #[test]
    fn own_stats_are_readable() {
        let own = ProcStats::read("self").unwrap();
        assert!(own.rss_kib > 0 && own.pss_kib > 0 && own.threads > 0);
    }
}
