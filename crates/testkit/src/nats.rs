//! A real nats-server for the integration tests: JetStream on, a free
//! loopback port, a temporary store directory. Killed when dropped (also when
//! the test panics); [`NatsServer::restart`] starts it again on the same port
//! and store, as an operator's restart would.

use crate::free_port;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// One nats-server process (and its store, which outlives restarts).
pub struct NatsServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Starts so far: each start logs to its own file.
    starts: u32,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free loopback port; returns once it
    /// accepts connections with JetStream ready.
    pub fn start() -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            dir: tempfile::Builder::new()
                .prefix("wasmwhisk-nats-")
                .tempdir()
                .expect("temporary directory"),
            child: None,
            starts: 0,
        };
        server.spawn();
        server
    }

    /// `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: no goodbye to the clients) and waits for
    /// it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("nats-{}.log", self.starts))
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = self.log_path();
        // Debian installs it in /usr/sbin, which a non-root PATH may lack.
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.dir.path().join("store"))
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting nats-server (install it: .ci/setup.sh): {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if log.contains("Server is ready")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("nats-server exited ({status}) before it was ready:\n{log}");
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("nats-server was not ready within {READY_TIMEOUT:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
