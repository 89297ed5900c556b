//! `wasmwhisk action|activation|namespace`: the real binary against a real
//! `wasmwhisk standalone` child process on a free loopback port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;
// The lead's shared helper (a real `wasmwhisk standalone` child process);
// `common/mod.rs` does not declare it.
#[path = "common/standalone.rs"]
mod standalone;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `wasmwhisk standalone` on a fresh data directory, and the
/// client commands run against it.
struct Wsk {
    server: standalone::Server,
    _dir: tempfile::TempDir,
}

impl Wsk {
    fn start() -> Wsk {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = standalone::Server::start(dir.path(), None);
        Wsk { server, _dir: dir }
    }

    fn data_dir(&self) -> &Path {
        self.server.data_dir()
    }

    /// `wasmwhisk --data-dir {data} ARGS`, with no client settings from the
    /// environment: the API host and key come from `{data}/wskprops`.
    fn wsk(&self, args: &[&str]) -> Output {
        wsk(self.data_dir(), args)
    }

    /// Like [`Wsk::wsk`], asserting success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.wsk(args);
        assert!(
            out.status.success(),
            "wasmwhisk {args:?}: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Like [`Wsk::ok`], the stdout parsed as JSON.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Retries `args` until it succeeds (a record is stored once its
    /// activation has ended): its stdout.
    fn eventually(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.wsk(args);
            if out.status.success() {
                return text(&out.stdout);
            }
            assert!(
                Instant::now() < deadline,
                "wasmwhisk {args:?} kept failing: {}",
                text(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn wsk(data_dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmwhisk"));
    for name in [
        "WASMWHISK_APIHOST",
        "WASMWHISK_AUTH",
        "WASMWHISK_PROPS",
        "WASMWHISK_DATA_DIR",
    ] {
        cmd.env_remove(name);
    }
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running wasmwhisk")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Rust hello component, written to `dir/hello.wasm`.
fn hello_wasm(dir: &Path) -> PathBuf {
    let path = dir.join("hello.wasm");
    std::fs::write(&path, common::guest("hello_rust")).expect("writing hello.wasm");
    path
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

/// The id in `ok: invoked /_/NAME with id ID`.
fn invoked_id(stdout: &str) -> String {
    stdout
        .trim()
        .rsplit_once(" with id ")
        .map(|(_, id)| id.to_string())
        .unwrap_or_else(|| panic!("no id in {stdout:?}"))
}

#[test]
fn rust_action_lifecycle() {
    let server = Wsk::start();
    let files = tempfile::tempdir().expect("tempdir");
    let wasm = hello_wasm(files.path());
    let wasm = wasm.to_str().expect("utf-8 path");

    assert_eq!(
        server.ok(&["action", "create", "hello", wasm]).trim(),
        "ok: created action /_/hello"
    );
    let again = server.wsk(&["action", "create", "hello", wasm]);
    assert_eq!(again.status.code(), Some(2), "create of an existing action");
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        server
            .ok(&[
                "action", "update", "hello", wasm, "-m", "128", "-p", "name", "Default"
            ])
            .trim(),
        "ok: updated action /_/hello"
    );

    // Blocking with --result: only the result.
    let result = server.json(&["action", "invoke", "hello", "-r", "-p", "name", "World"]);
    assert_eq!(result, serde_json::json!({"greeting": "Hello, World!"}));
    // The default parameter from the update.
    let result = server.json(&["action", "invoke", "hello", "-r"]);
    assert_eq!(result["greeting"], "Hello, Default!");
    // Blocking: the record.
    let record = server.json(&[
        "action",
        "invoke",
        "hello",
        "--blocking",
        "-p",
        "name",
        "Ada",
    ]);
    assert_eq!(record["response"]["result"]["greeting"], "Hello, Ada!");
    assert_eq!(record["response"]["status"], "success");
    let blocking_id = record["activationId"]
        .as_str()
        .expect("activationId")
        .to_string();

    // Non-blocking: the id, then the record once the activation ended.
    let out = server.ok(&["action", "invoke", "hello", "-p", "name", "Later"]);
    assert!(out.starts_with("ok: invoked /_/hello with id "), "{out}");
    let id = invoked_id(&out);
    let result: Value =
        serde_json::from_str(&server.eventually(&["activation", "result", &id])).expect("json");
    assert_eq!(result["greeting"], "Hello, Later!");
    let record = server.json(&["activation", "get", &id]);
    assert_eq!(record["activationId"], id.as_str());
    assert_eq!(record["name"], "hello");
    let logs = server.ok(&["activation", "logs", &id]);
    assert!(logs.trim().is_empty(), "hello logs nothing: {logs}");

    let table = server.ok(&["activation", "list", "hello", "--limit", "10"]);
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("Datetime            Activation ID"),
        "{table}"
    );
    for wanted in [&id, &blocking_id] {
        let row = table
            .lines()
            .find(|l| l.contains(wanted.as_str()))
            .unwrap_or_else(|| panic!("{wanted} not in\n{table}"));
        assert!(row.contains(" success "), "{row}");
        assert!(row.ends_with("guest/hello:0.0.2"), "{row}");
    }
    let limited = server.ok(&["activation", "list", "--limit", "1"]);
    assert_eq!(limited.lines().count(), 2, "{limited}");

    let doc = server.json(&["action", "get", "hello"]);
    assert_eq!(doc["name"], "hello");
    assert_eq!(doc["limits"]["memory"], 128);
    let saved = files.path().join("saved.wasm");
    server.ok(&[
        "action",
        "get",
        "hello",
        "--save",
        saved.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        std::fs::read(&saved).expect("saved"),
        common::guest("hello_rust"),
        "the code round-trips"
    );
    let list = server.ok(&["action", "list"]);
    assert!(list.starts_with("actions\n"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("/guest/hello ") && l.ends_with(" wasm")),
        "{list}"
    );

    assert_eq!(
        server.ok(&["action", "delete", "hello"]).trim(),
        "ok: deleted action /_/hello"
    );
    let gone = server.wsk(&["action", "invoke", "hello", "-r"]);
    assert_eq!(gone.status.code(), Some(2), "unknown action");
    let stderr = text(&gone.stderr);
    assert!(
        stderr.starts_with(
            "error: unable to invoke action /_/hello: The requested resource does not exist."
        ),
        "{stderr}"
    );
    assert!(stderr.contains("(code "), "{stderr}");
}

#[test]
fn js_action_logs_errors_and_poll() {
    let server = Wsk::start();
    let invoice = example("invoice.js");
    let params = example("invoice.params.json");
    server.ok(&["action", "create", "invoice", &invoice]);
    let doc = server.json(&["action", "get", "invoice"]);
    assert_eq!(doc["exec"]["kind"], "js");
    let source = server.ok(&["action", "get", "invoice", "--code"]);
    assert!(source.contains("function main(params)"), "{source}");

    let result = server.json(&["action", "invoke", "invoice", "-r", "-P", &params]);
    assert_eq!(result["customer"], "Ada");

    // Logs, with and without time and stream.
    let record = server.json(&["action", "invoke", "invoice", "-b", "-P", &params]);
    let id = record["activationId"].as_str().expect("activationId");
    let logs = server.eventually(&["activation", "logs", id]);
    assert!(
        logs.lines().any(|l| l.contains("stdout: invoice for")),
        "{logs}"
    );
    let stripped = server.ok(&["activation", "logs", id, "--strip"]);
    assert!(
        stripped.lines().any(|l| l.starts_with("invoice for")),
        "{stripped}"
    );
    let last = server.ok(&["activation", "logs", "--last", "-r"]);
    assert_eq!(last, stripped, "--last is the newest activation");

    // An application error: exit 1, the record still printed.
    let failed = server.wsk(&["action", "invoke", "invoice", "--blocking"]);
    assert_eq!(failed.status.code(), Some(1));
    let record: Value = serde_json::from_slice(&failed.stdout).expect("json record");
    assert_eq!(record["response"]["status"], "application error");
    assert_eq!(
        record["response"]["result"]["error"],
        "an order needs at least one item"
    );
    let failed = server.wsk(&["action", "invoke", "invoice", "-r"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(text(&failed.stdout).contains("an order needs at least one item"));

    // Poll sees an activation made while it runs.
    let poll = Command::new(env!("CARGO_BIN_EXE_wasmwhisk"))
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(["activation", "poll", "invoice", "--exit", "5"])
        .env_remove("WASMWHISK_APIHOST")
        .env_remove("WASMWHISK_AUTH")
        .env_remove("WASMWHISK_PROPS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("poll");
    std::thread::sleep(Duration::from_millis(1500));
    let out = server.ok(&["action", "invoke", "invoice", "-P", &params]);
    let id = invoked_id(&out);
    let polled = poll.wait_with_output().expect("poll output");
    assert!(polled.status.success(), "{}", text(&polled.stderr));
    let stdout = text(&polled.stdout);
    assert!(
        stdout.contains(&format!("Activation: 'invoice' ({id}) success")),
        "{stdout}"
    );
    assert!(stdout.contains("stdout: invoice for"), "{stdout}");
    assert!(stdout.contains("\"customer\":\"Ada\""), "{stdout}");
}

#[test]
fn namespaces_and_their_keys() {
    let server = Wsk::start();
    let files = tempfile::tempdir().expect("tempdir");
    let wasm = hello_wasm(files.path());
    let wasm = wasm.to_str().expect("utf-8 path");

    let out = server.ok(&["namespace", "create", "alice"]);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap_or_else(|| panic!("no key in {out}"))
        .to_string();
    let again = server.wsk(&["namespace", "create", "alice"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    let list = server.ok(&["namespace", "list"]);
    assert!(list.lines().any(|l| l.starts_with("alice ")), "{list}");
    assert!(list.lines().any(|l| l.starts_with("guest ")), "{list}");

    // Alice's key, given with --auth, in the server's own data dir.
    server.ok(&["action", "create", "hi", wasm, "--auth", &key]);
    let result = server.json(&[
        "action", "invoke", "hi", "-r", "-u", &key, "-p", "name", "Alice",
    ]);
    assert_eq!(result["greeting"], "Hello, Alice!");
    let alices = server.ok(&["action", "list", "--auth", &key]);
    assert!(
        alices.lines().any(|l| l.starts_with("/alice/hi ")),
        "{alices}"
    );
    let guests = server.ok(&["action", "list"]);
    assert!(
        !guests.contains("/alice/hi"),
        "namespaces are isolated: {guests}"
    );
    let theirs = server.wsk(&["action", "invoke", "hi", "-r"]);
    assert_eq!(
        theirs.status.code(),
        Some(2),
        "guest cannot see alice's action"
    );

    // A props file beats the data dir's.
    let props = files.path().join("alice.props");
    std::fs::write(
        &props,
        format!("APIHOST={}\nAUTH={key}\n", server.server.base),
    )
    .expect("props");
    let via_props = server.ok(&["action", "list", "--props", props.to_str().expect("utf-8")]);
    assert!(via_props.contains("/alice/hi"), "{via_props}");

    let (uuid, _) = key.split_once(':').expect("uuid:key");
    let bad = server.wsk(&["action", "list", "--auth", &format!("{uuid}:wrong")]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.starts_with("error: unable to list actions: "),
        "{stderr}"
    );
    assert!(stderr.contains("hint: check the key"), "{stderr}");

    assert_eq!(
        server.ok(&["namespace", "delete", "alice"]).trim(),
        "ok: deleted namespace alice"
    );
    let gone = server.wsk(&["namespace", "delete", "alice"]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        text(&gone.stderr).contains("does not exist"),
        "{}",
        text(&gone.stderr)
    );
}

#[test]
fn without_a_server() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = wsk(empty.path(), &["action", "list"]);
    assert_eq!(out.status.code(), Some(3), "nothing to talk to");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no API host"), "{stderr}");
    assert!(stderr.contains("wasmwhisk standalone"), "{stderr}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let apihost = format!("http://127.0.0.1:{port}");
    let out = wsk(
        empty.path(),
        &["activation", "list", "--apihost", &apihost, "--auth", "a:b"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("the server at {apihost} is not reachable")),
        "{stderr}"
    );
    assert!(
        stderr.contains("is `wasmwhisk standalone` running?"),
        "{stderr}"
    );

    let out = wsk(empty.path(), &["namespace", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("there is no database"),
        "{}",
        text(&out.stderr)
    );
}
