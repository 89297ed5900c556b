//! A real `wasmwhisk standalone` child process for the HTTP tests: started
//! on a free loopback port (`--port 0`) and a given data directory, its
//! address read from the line it prints, its keys from the data directory,
//! killed (SIGKILL) when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;

/// The answer to one request.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
    /// `x-openwhisk-activation-id`, if present.
    pub activation_id: Option<String>,
}

/// Reads the child's stdout until a line starts with `marker` and returns
/// the rest of it (the address); kills the child and fails the test with
/// its log (`log`) if none comes within 3 minutes. The child's stdout must
/// be piped; it is read to the end, so the child never blocks on it.
pub fn listening_on(child: &mut Child, marker: &str, log: &Path) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix(marker) {
                    return url.trim().to_string();
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(log);
                panic!("no line {marker:?} ({e}); the log:\n{log:?}");
            }
        }
    }
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    data_dir: PathBuf,
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    /// The guest key, `uuid:key`.
    pub guest: String,
    /// The admin credentials, `user:password`.
    pub admin: String,
    client: Client,
}

/// `(user, password)` of `user:password`.
pub fn split(credentials: &str) -> (String, String) {
    let (user, password) = credentials.split_once(':').expect("user:password");
    (user.to_string(), password.to_string())
}

impl Server {
    /// Starts a server on `data_dir` (with `config`, if given). The compile
    /// cache is the tests' shared one, so the JS runtime is prepared once.
    pub fn start(data_dir: &Path, config: Option<&Path>) -> Server {
        Server::start_with(data_dir, config, |_| {})
    }

    /// [`Server::start`], letting `customize` change the command (limits,
    /// environment) just before it is spawned.
    pub fn start_with(
        data_dir: &Path,
        config: Option<&Path>,
        customize: impl FnOnce(&mut Command),
    ) -> Server {
        let cache = crate::common::cache_dir();
        std::fs::create_dir_all(&cache).expect("cache dir");
        let link = data_dir.join("cache");
        if !link.exists() {
            std::os::unix::fs::symlink(&cache, &link).expect("symlink the cache");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .expect("server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmwhisk"));
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["standalone", "--port", "0"]);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.env_remove("WASMWHISK_CONFIG")
            .env_remove("WASMWHISK_PORT")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log);
        customize(&mut cmd);
        let mut child = cmd.spawn().expect("spawning wasmwhisk standalone");
        let base = listening_on(
            &mut child,
            "wasmwhisk standalone: listening on ",
            &data_dir.join("server.log"),
        );
        let props = std::fs::read_to_string(data_dir.join("wskprops")).expect("wskprops");
        let guest = props
            .lines()
            .find_map(|l| l.strip_prefix("AUTH="))
            .expect("AUTH in wskprops")
            .trim()
            .to_string();
        assert!(
            props.contains(&format!("APIHOST={base}")),
            "wskprops names the API host: {props}"
        );
        let admin = std::fs::read_to_string(data_dir.join("admin.auth"))
            .expect("admin.auth")
            .trim()
            .to_string();
        Server {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            base,
            guest,
            admin,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// Waits for the server to exit (after a signal); its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running server");
        child.wait().expect("waiting for the server")
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A request to `path` without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// A request to `path` with the credentials `user:password`.
    pub fn as_user(&self, credentials: &str, method: Method, path: &str) -> RequestBuilder {
        let (user, password) = split(credentials);
        self.anonymous(method, path)
            .basic_auth(user, Some(password))
    }

    /// A request to `path` as the guest namespace.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_user(&self.guest, method, path)
    }

    /// A request to `path` with the admin credentials.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_user(&self.admin, method, path)
    }

    /// `method path` as the guest with a JSON body.
    pub fn json(&self, method: Method, path: &str, body: &Value) -> Reply {
        send(self.request(method, path).json(body))
    }

    /// `GET path` as the guest.
    pub fn get(&self, path: &str) -> Reply {
        send(self.request(Method::GET, path))
    }

    /// Polls `GET path` until it answers 200 (a record appears once its
    /// activation ended).
    pub fn eventually(&self, path: &str) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.get(path);
            if reply.status == 200 || Instant::now() > deadline {
                return reply;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.data_dir.join("server.log"));
            eprintln!("wasmwhisk standalone's log:\n{}", log.unwrap_or_default());
        }
    }
}

/// Sends `request` and reads the reply.
pub fn send(request: RequestBuilder) -> Reply {
    let response = request.send().expect("sending the request");
    let status = response.status().as_u16();
    let activation_id = response
        .headers()
        .get("x-openwhisk-activation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.text().expect("reading the body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        text,
        activation_id,
    }
}

/// Asserts `reply` is OpenWhisk's error body with `status` and an `error`
/// starting with `message`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let error = reply.body["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(message),
        "expected an error starting with {message:?}, got {}",
        reply.text
    );
    let code = reply.body["code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty(),
        "the error has a transaction id: {}",
        reply.text
    );
}

/// The resident memory of process `pid`, in bytes (`VmRSS`).
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

/// Writes `text` as `wasmwhisk.toml` in `dir`; its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("wasmwhisk.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// Creates namespace `name` in the data directory `dir` with the CLI
/// (`wasmwhisk namespace create`); its key, `uuid:key`.
pub fn create_namespace(dir: &Path, name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmwhisk"))
        .arg("--data-dir")
        .arg(dir)
        .args(["namespace", "create", name])
        .output()
        .expect("wasmwhisk namespace create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("the new key")
        .trim()
        .to_string()
}
