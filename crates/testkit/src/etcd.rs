//! A real etcd for the integration tests: the Debian `etcd` binary on free
//! loopback ports with its data in a temporary directory, killed (by its own
//! pid) when the [`Etcd`] is dropped, also when a test panics. It can be
//! killed and started again on the same data and ports, to test outages.
//!
//! An independent observer ([`Etcd::entries`]) reads the keys with the
//! `etcd-client` crate directly, not through the code under test.

use crate::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};

/// How long etcd may take to answer `/health` after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A key as etcd has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// The lease the key is attached to (0: none).
    pub lease: i64,
}

/// One etcd server process.
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    /// Starts etcd on free ports with an empty data directory and waits
    /// until it is healthy.
    pub fn start() -> Etcd {
        let mut etcd = Etcd {
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory"),
            client_port: free_port(),
            peer_port: free_port(),
        };
        etcd.spawn();
        etcd
    }

    /// The settings of a process of the cluster against this etcd, with a
    /// lease of `ttl` and quick reconnects (the tests restart etcd).
    pub fn settings(&self, ttl: std::time::Duration) -> wasmwhisk_cluster::etcd::EtcdSettings {
        let mut settings = wasmwhisk_cluster::etcd::EtcdSettings::from_config(
            &wasmwhisk_core::config::EtcdConfig {
                endpoints: vec![self.endpoint()],
                lease_timeout: ttl,
                ..wasmwhisk_core::config::EtcdConfig::default()
            },
        );
        settings.reconnect_min = std::time::Duration::from_millis(50);
        settings.reconnect_max = std::time::Duration::from_millis(500);
        settings
    }
    /// `http://127.0.0.1:{client port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills the server (SIGKILL, by its pid) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): it keeps its sockets but answers
    /// nothing, like a host cut off by a partition.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a [`pause`](Self::pause)d server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("etcd is running");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} {}", child.id());
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A client of the observer's own.
    pub async fn client(&self) -> Client {
        Client::connect([self.endpoint()], None)
            .await
            .expect("an etcd client")
    }

    /// Every key under `prefix`, with its value and lease.
    pub async fn entries(&self, prefix: &str) -> Vec<Entry> {
        let mut client = self.client().await;
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            client.get(prefix, Some(GetOptions::new().with_prefix())),
        )
        .await
        .expect("etcd answers within 5 s")
        .expect("etcd get");
        response
            .kvs()
            .iter()
            .map(|kv| Entry {
                key: kv.key_str().expect("a UTF-8 key").to_owned(),
                value: kv.value_str().expect("a UTF-8 value").to_owned(),
                lease: kv.lease(),
            })
            .collect()
    }

    /// The value of `key`, if set.
    pub async fn value(&self, key: &str) -> Option<String> {
        self.entries(key)
            .await
            .into_iter()
            .find(|e| e.key == key)
            .map(|e| e.value)
    }

    /// Writes `key` = `value` (no lease), as another process would.
    pub async fn put(&self, key: &str, value: &[u8]) {
        let mut client = self.client().await;
        client.put(key, value, None).await.expect("etcd put");
    }

    /// Deletes `key`, as another process would.
    pub async fn delete(&self, key: &str) {
        let mut client = self.client().await;
        client.delete(key, None).await.expect("etcd delete");
    }

    /// The remaining TTL of `lease` in seconds (-1: it no longer exists).
    pub async fn lease_ttl(&self, lease: i64) -> i64 {
        let mut client = self.client().await;
        client
            .lease_time_to_live(lease, None)
            .await
            .expect("etcd lease time-to-live")
            .ttl()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn(&mut self) {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the etcd log file");
        let child = Command::new("etcd")
            .arg("--name=default")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the etcd log file"))
            .stderr(log)
            .spawn()
            .expect("starting etcd (Debian package etcd-server; see .ci/setup.sh)");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("etcd exited with {status}:\n{}", self.log());
            }
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "etcd was not healthy within {READY_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// `GET /health` answers `"health":"true"`.
    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = format!(
            "GET /health HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.client_port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.contains("\"health\":\"true\"")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
