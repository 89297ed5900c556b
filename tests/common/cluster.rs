//! A real cluster for the integration tests: a nats-server (JetStream on)
//! and an etcd on free loopback ports, and `wasmwhisk controller` and
//! `wasmwhisk invoker` child processes against them, each with its own data
//! directory (sharing the tests' compile cache), on `--port 0`. Every
//! process is killed when the cluster is dropped (also when a test panics).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;

pub use super::standalone::send;
use super::standalone::{Reply, listening_on, split};
use wasmwhisk_testkit::etcd::Etcd;
use wasmwhisk_testkit::nats::NatsServer;

/// One `wasmwhisk controller` or `wasmwhisk invoker` process.
pub struct Proc {
    child: Option<Child>,
    /// `http://127.0.0.1:{port}`: its API.
    pub base: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running process").id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for it to exit (at most `within`); its success.
    pub fn stop(&mut self, within: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("process.log")).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// NATS, etcd, controllers and invokers.
pub struct Cluster {
    /// The nats-server.
    pub nats: NatsServer,
    /// The etcd.
    pub etcd: Etcd,
    root: tempfile::TempDir,
    /// Controllers by number.
    pub controllers: BTreeMap<u32, Proc>,
    /// Invokers by number.
    pub invokers: BTreeMap<u32, Proc>,
    /// The guest key, `uuid:key` (from the first controller).
    pub guest: String,
    client: Client,
}

impl Cluster {
    /// NATS, etcd and controller 0; no invoker yet.
    pub fn start() -> Cluster {
        let nats = NatsServer::start();
        let etcd = Etcd::start();
        let root = tempfile::Builder::new()
            .prefix("wasmwhisk-cluster-")
            .tempdir()
            .expect("temporary directory");
        let mut cluster = Cluster {
            nats,
            etcd,
            root,
            controllers: BTreeMap::new(),
            invokers: BTreeMap::new(),
            guest: String::new(),
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        };
        cluster.start_controller(0);
        let props = std::fs::read_to_string(cluster.controllers[&0].data_dir.join("wskprops"))
            .expect("wskprops of the first controller");
        cluster.guest = props
            .lines()
            .find_map(|l| l.strip_prefix("AUTH="))
            .expect("AUTH in wskprops")
            .trim()
            .to_string();
        cluster
    }

    /// The data directory of a process named `name`, made on first use,
    /// with the tests' shared compile cache.
    fn data_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("data dir");
        let cache = crate::common::cache_dir();
        std::fs::create_dir_all(&cache).expect("cache dir");
        let link = dir.join("cache");
        if !link.exists() {
            std::os::unix::fs::symlink(&cache, &link).expect("symlink the cache");
        }
        dir
    }

    fn spawn(&self, role: &str, id: u32, config: Option<&str>) -> Proc {
        let name = format!("{role}{id}");
        let data_dir = self.data_dir(&name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("process.log"))
            .expect("process.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmwhisk"));
        cmd.arg("--data-dir").arg(&data_dir).args([
            role,
            "--port",
            "0",
            "--id",
            &id.to_string(),
            "--nats",
            &self.nats.url(),
            "--etcd",
            &self.etcd.endpoint(),
        ]);
        if let Some(config) = config {
            let file = data_dir.join("config.toml");
            std::fs::write(&file, config).expect("config file");
            cmd.arg("--config").arg(file);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("WASMWHISK_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .env(
                "RUST_LOG",
                std::env::var("CLUSTER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning wasmwhisk {role}: {e}"));
        let base = listening_on(
            &mut child,
            &format!("wasmwhisk {name}: listening on "),
            &data_dir.join("process.log"),
        );
        Proc {
            child: Some(child),
            base,
            data_dir,
        }
    }

    /// Starts controller `k`.
    pub fn start_controller(&mut self, k: u32) {
        self.start_controller_with(k, None);
    }

    /// Starts controller `k` with `config` (TOML).
    pub fn start_controller_with(&mut self, k: u32, config: Option<&str>) {
        let proc = self.spawn("controller", k, config);
        self.controllers.insert(k, proc);
    }

    /// Starts invoker `n` with `config` (TOML), waits until etcd reports it
    /// `up`; how long that took from the spawn.
    pub fn start_invoker(&mut self, n: u32, config: Option<&str>) -> Duration {
        let started = Instant::now();
        let proc = self.spawn("invoker", n, config);
        self.invokers.insert(n, proc);
        self.wait_status(n, "up", Duration::from_secs(60));
        started.elapsed()
    }

    /// The status invoker `n` reports in etcd (`None`: no key).
    pub fn status(&self, n: u32) -> Option<String> {
        let value = self.block_on(self.etcd.value(&format!("whisk/invokers/{n}")))?;
        let json: Value = serde_json::from_str(&value).ok()?;
        json["status"].as_str().map(str::to_string)
    }

    /// Waits until invoker `n`'s status is `status`.
    pub fn wait_status(&self, n: u32, status: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.status(n).as_deref() == Some(status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "invoker{n} is {:?}, not {status}, after {within:?}; its log:\n{}",
                self.status(n),
                self.invokers.get(&n).map(Proc::log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Keys under `prefix` in etcd.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.block_on(self.etcd.entries(prefix))
            .into_iter()
            .map(|e| e.key)
            .collect()
    }

    /// Runs `f` on a small runtime (the tests are synchronous).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// A request to controller `k` as the guest.
    pub fn request(&self, k: u32, method: Method, path: &str) -> RequestBuilder {
        let (user, password) = split(&self.guest);
        self.client
            .request(method, format!("{}{path}", self.controllers[&k].base))
            .basic_auth(user, Some(password))
    }

    /// `method path` on controller `k` as the guest, with a JSON body.
    pub fn json(&self, k: u32, method: Method, path: &str, body: &Value) -> Reply {
        send(self.request(k, method, path).json(body))
    }

    /// `GET path` on controller `k` as the guest.
    pub fn get(&self, k: u32, path: &str) -> Reply {
        send(self.request(k, Method::GET, path))
    }

    /// Deploys the Rust hello example as `name` (kind wasm) through
    /// controller `k`, with `memory` MB.
    pub fn deploy_hello(&self, k: u32, name: &str, memory: u64) {
        use base64::Engine as _;
        let code =
            base64::engine::general_purpose::STANDARD.encode(crate::common::guest("hello_rust"));
        let reply = self.json(
            k,
            Method::PUT,
            &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
            &serde_json::json!({
                "exec": {"kind": "wasm", "code": code, "binary": true},
                "limits": {"memory": memory}
            }),
        );
        assert_eq!(reply.status, 200, "deploying {name}: {}", reply.text);
    }

    /// A blocking invoke of `name` with `params` through controller `k`.
    pub fn invoke(&self, k: u32, name: &str, params: &Value) -> Reply {
        self.json(
            k,
            Method::POST,
            &format!("/api/v1/namespaces/_/actions/{name}?blocking=true"),
            params,
        )
    }

    /// Polls `GET path` on controller `k` until it answers 200.
    pub fn eventually(&self, k: u32, path: &str, within: Duration) -> Reply {
        let deadline = Instant::now() + within;
        loop {
            let reply = self.get(k, path);
            if reply.status == 200 || Instant::now() > deadline {
                return reply;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The root of every process's data directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}
