//! The servers under `wasmwhisk bench cluster`: a nats-server (JetStream
//! on) and an etcd, started by the bench on free loopback ports with their
//! data in the bench's temporary directory, and stopped by it — SIGTERM
//! when it is done, SIGKILL when dropped (an error on the way), and, at
//! Ctrl-C or SIGTERM, every child of the bench at once ([`on_signal_kill_children`]).
//!
//! They are found where Debian installs them (`/usr/sbin/nats-server`,
//! `/usr/bin/etcd`) or on `PATH`; `make setup` installs both.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to be ready.
const READY: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP: Duration = Duration::from_secs(10);

/// A port nothing listens on right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener
        .local_addr()
        .context("reading a bound address")?
        .port())
}

/// The first of `paths` that exists, else `name` found on `PATH`.
fn find(name: &str, paths: &[&str], package: &str) -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    paths
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{name} is not installed (looked in {} and on PATH): `bench cluster` starts \
                 its own {name}; `make setup` installs it (Debian package {package})",
                paths.join(", ")
            )
        })
}

/// The first line `{binary} --version` prints, for the report.
fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// A server process the bench started; SIGKILLed if dropped running.
pub(super) struct Owned {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    /// `--version`'s first line.
    pub(super) version: String,
}

impl Owned {
    /// Its process id (0 once stopped).
    pub(super) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM, then waits for it to exit (SIGKILL after [`STOP`]).
    pub(super) fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP;
        loop {
            if child.try_wait().context("waiting for a server")?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not exit within {STOP:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` until it holds; fails if the process exits first or
    /// [`READY`] passes.
    fn wait_ready(&mut self, ready: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + READY;
        loop {
            let log = self.log();
            if ready(&log) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "{} exited ({status}) before it was ready:\n{log}",
                    self.name
                );
            }
            if Instant::now() > deadline {
                bail!("{} was not ready within {READY:?}:\n{log}", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Spawns `binary args…` with stdout and stderr to `log`.
fn spawn(name: &'static str, binary: &Path, args: &[String], log: &Path) -> Result<Owned> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().context("the server's log")?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Owned {
        name,
        child: Some(child),
        log: log.to_path_buf(),
        version: version(binary),
    })
}

/// `nats-server -js` on a free loopback port, its store under `dir`, its
/// monitoring endpoint on another; returns once JetStream is ready. Its
/// URL and monitoring port too.
pub(super) fn nats(dir: &Path) -> Result<(Owned, String, u16)> {
    let binary = find(
        "nats-server",
        &["/usr/sbin/nats-server", "/usr/bin/nats-server"],
        "nats-server",
    )?;
    let (port, monitor) = (free_port()?, free_port()?);
    let args = [
        "-js".to_string(),
        "-m".into(),
        monitor.to_string(),
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-sd".into(),
        dir.join("store").display().to_string(),
    ];
    let mut server = spawn("nats-server", &binary, &args, &dir.join("nats.log"))?;
    server.wait_ready(|log| {
        log.contains("Server is ready") && TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    Ok((server, format!("nats://127.0.0.1:{port}"), monitor))
}

/// `etcd` on free loopback ports, its data under `dir`; returns once it
/// answers `/health`. Its client endpoint too.
pub(super) fn etcd(dir: &Path) -> Result<(Owned, String)> {
    let binary = find("etcd", &["/usr/bin/etcd"], "etcd-server")?;
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let args = [
        "--name=default".to_string(),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
    ];
    let mut server = spawn("etcd", &binary, &args, &dir.join("etcd.log"))?;
    server.wait_ready(|_| healthy(client_port))?;
    Ok((server, client))
}

/// etcd's `GET /health` answers `"health":"true"`.
fn healthy(port: u16) -> bool {
    get(port, "/health").is_ok_and(|r| r.contains("\"health\":\"true\""))
}

/// `GET path` from `127.0.0.1:{port}` over HTTP/1.0: the whole answer,
/// headers included.
pub(super) fn get(port: u16, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .context("setting a read timeout")?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("GET {path}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .with_context(|| format!("reading GET {path}"))?;
    Ok(response)
}

/// The process ids whose parent is this process: exactly the processes the
/// bench started and has not yet reaped.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent(*pid) == Some(me))
        .collect()
}

/// The parent of `pid`: field 4 of `/proc/{pid}/stat`, after the command
/// name (which may hold spaces, so from its last `)`).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// On Ctrl-C or SIGTERM: SIGKILL every child of the bench (nats-server,
/// etcd, the controller, the invokers, standalone), remove `root` (their
/// data) and exit with status 130. Spawned on `runtime`, so it runs
/// whatever the bench's own thread is waiting for.
pub(super) fn on_signal_kill_children(runtime: &tokio::runtime::Runtime, root: PathBuf) {
    runtime.spawn(async move {
        wasmwhisk_core::signal::shutdown_signal().await;
        eprintln!("\ninterrupted: killing the bench's servers");
        for pid in children() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Their data is in `root`; the kernel has them gone by the time
        // `kill` returned, so nothing writes there any more.
        let _ = std::fs::remove_dir_all(&root);
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_found_by_its_parent() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(children().contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!children().contains(&child.id()));
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let error = find("no-such-server-x", &["/nonexistent/x"], "pkg").unwrap_err();
        assert!(format!("{error}").contains("make setup"), "{error}");
    }
}
