//! Issue 20, defect 4: what a client — with or without a key — can do to
//! the HTTP server. A stalled head, a stalled body and an idle keep-alive
//! connection are closed within their timeouts; clients beyond the
//! connection cap wait and are served once a connection closes, the server
//! keeping file descriptors for its own files; a body whose `Content-Length`
//! is over its limit is refused before it is read; a body trickled in
//! piece by piece must still arrive whole within its timeout; a connection
//! that never finishes does not hold up shutdown past its grace. Through the
//! real `wasmwhisk standalone` process and raw TCP clients, with the
//! timeouts scaled down by its configuration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;
#[path = "common/standalone.rs"]
mod standalone;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::json;
use standalone::{Server, rss, send};

const ACTIONS: &str = "/api/v1/namespaces/_/actions";

/// How long a test waits for something the server must do within a bound
/// of 1–2 s: long enough for a loaded CI machine, far shorter than the
/// defaults (30–60 s) the server would otherwise apply.
const PATIENCE: Duration = Duration::from_secs(10);

fn start(dir: &Path, config: &str) -> Server {
    start_with(dir, config, |_| {})
}

fn start_with(dir: &Path, config: &str, customize: impl FnOnce(&mut Command)) -> Server {
    let path = dir.join("wasmwhisk.toml");
    std::fs::write(&path, format!("[runtimes.js]\nstemCells = []\n\n{config}")).expect("config");
    Server::start_with(dir, Some(&path), customize)
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.base.trim_start_matches("http://")).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", STANDARD.encode(credentials))
}

/// What the server did with `stream` within `within`.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// It closed the connection, after sending these bytes.
    Closed(String),
    /// The connection is still open; these bytes came.
    Open(String),
}

fn watch(stream: &mut TcpStream, within: Duration) -> Seen {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Seen::Open(String::from_utf8_lossy(&got).into_owned());
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Seen::Closed(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Seen::Open(String::from_utf8_lossy(&got).into_owned());
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Seen::Closed(String::from_utf8_lossy(&got).into_owned());
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

/// Reads until `stream` has sent a whole response head, or `within` passed.
fn response_head(stream: &mut TcpStream, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The connections the server process `pid` has accepted on `port` and
/// holds open: its sockets that `/proc/net/tcp` lists as established on
/// the port (connections still in the listen backlog have no owner yet).
fn accepted(pid: u32, port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_string())
        })
        .collect();
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() > 9 && f[1].ends_with(&local) && f[3] == "01" && inodes.contains(&f[9]))
        .count()
}

#[test]
fn a_stalled_head_is_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        dir.path(),
        "[http]\nheader-read-timeout = \"1 s\"\nidle-timeout = \"60 s\"\n",
    );
    // Half a head, then nothing.
    let mut stalled = connect(&server);
    stalled
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("write");
    // A connection that sends nothing at all.
    let mut silent = connect(&server);
    assert!(matches!(watch(&mut stalled, PATIENCE), Seen::Closed(_)));
    assert!(matches!(watch(&mut silent, PATIENCE), Seen::Closed(_)));
    // The server still answers.
    assert_eq!(send(server.anonymous(Method::GET, "/ping")).status, 200);
}

#[test]
fn a_stalled_body_is_answered_408_within_the_body_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        dir.path(),
        "[http]\nbody-read-timeout = \"1 s\"\nidle-timeout = \"60 s\"\n",
    );
    let mut stream = connect(&server);
    let head = format!(
        "PUT {ACTIONS}/stalled HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"exec\":",
        basic(&server.guest)
    );
    stream.write_all(head.as_bytes()).expect("write");
    let Seen::Closed(reply) = watch(&mut stream, PATIENCE) else {
        panic!("a stalled body is neither answered nor closed");
    };
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(
        reply.contains("The request body was not received in time."),
        "{reply:?}"
    );
    // Nothing was stored.
    assert_eq!(server.get(&format!("{ACTIONS}/stalled")).status, 404);
}

#[test]
fn a_trickled_body_is_answered_408_within_the_body_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        dir.path(),
        "[http]\nbody-read-timeout = \"1 s\"\nidle-timeout = \"60 s\"\n",
    );
    let mut stream = connect(&server);
    let head = format!(
        "PUT {ACTIONS}/trickled HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        basic(&server.guest)
    );
    stream.write_all(head.as_bytes()).expect("write");
    // One byte every 300 ms — each well within the timeout, the whole body
    // never — until the server answers or closes.
    let mut reader = stream.try_clone().expect("clone");
    let answered = std::thread::spawn(move || watch(&mut reader, PATIENCE));
    let began = Instant::now();
    while !answered.is_finished() && began.elapsed() < PATIENCE {
        if stream.write_all(b" ").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let seen = answered.join().expect("reader");
    let Seen::Closed(reply) = seen else {
        panic!("a trickled body is neither answered nor closed: {seen:?}");
    };
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(
        reply.contains("The request body was not received in time."),
        "{reply:?}"
    );
    eprintln!("trickled body answered after {:?}", began.elapsed());
    assert_eq!(server.get(&format!("{ACTIONS}/trickled")).status, 404);
}

/// Whether process `pid` (a child of this test) has exited: gone, or a
/// zombie waiting to be reaped.
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

#[test]
fn a_connection_that_never_finishes_does_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(
        dir.path(),
        "[controller]\nshutdown-grace = \"1 s\"\n\n\
         [http]\nbody-read-timeout = \"10 minutes\"\n",
    );
    // Half a body: its handler waits for the rest for ten minutes.
    let mut stalled = connect(&server);
    let head = format!(
        "PUT {ACTIONS}/stalled HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"exec\":",
        basic(&server.guest)
    );
    stalled.write_all(head.as_bytes()).expect("write");
    assert_eq!(send(server.anonymous(Method::GET, "/ping")).status, 200);
    let pid = server.pid();
    // SAFETY: kill only sends a signal to the process named.
    #[allow(unsafe_code, reason = "kill is a C call")]
    let signalled = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(signalled, 0, "kill -TERM");
    let deadline = Instant::now() + PATIENCE;
    while !exited(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(exited(pid), "a stalled connection holds up shutdown");
    let status = server.wait();
    assert!(status.success(), "exit status {status}");
    assert!(matches!(watch(&mut stalled, PATIENCE), Seen::Closed(_)));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        dir.path(),
        "[http]\nidle-timeout = \"1 s\"\nheader-read-timeout = \"60 s\"\n",
    );
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let head = response_head(&mut stream, PATIENCE);
    assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
    // Kept alive (HTTP/1.1), then closed once idle for a second.
    assert!(
        matches!(watch(&mut stream, PATIENCE), Seen::Closed(_)),
        "an idle connection stays open"
    );
}

#[test]
fn an_oversized_content_length_is_refused_before_the_body_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), "");
    let declared: u64 = 100 * 1024 * 1024;
    let request = |method: &str, path: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n",
            basic(&server.guest)
        )
    };
    // Headers only: the 413 comes without a byte of the body.
    for (method, path) in [
        ("PUT", format!("{ACTIONS}/big")),
        ("POST", format!("{ACTIONS}/big?blocking=true")),
    ] {
        let mut stream = connect(&server);
        stream
            .write_all(request(method, &path).as_bytes())
            .expect("write");
        let Seen::Closed(reply) = watch(&mut stream, PATIENCE) else {
            panic!("{method}: no answer without the body");
        };
        assert!(reply.starts_with("HTTP/1.1 413"), "{method}: {reply:?}");
        assert!(
            reply.contains(&format!("Request larger than allowed: {declared} >")),
            "{method}: {reply:?}"
        );
    }

    // Eight clients that send their 100 MB bodies anyway: the server reads
    // none of them, so its memory does not grow by their size.
    let pid = server.pid();
    let before = rss(pid);
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let mut stream = connect(&server);
            let head = request("PUT", &format!("{ACTIONS}/big"));
            std::thread::spawn(move || {
                let chunk = vec![b' '; 1024 * 1024];
                let _ = stream.write_all(head.as_bytes());
                let mut sent = 0u64;
                while sent < declared && stream.write_all(&chunk).is_ok() {
                    sent += chunk.len() as u64;
                }
                sent
            })
        })
        .collect();
    for sender in senders {
        let sent = sender.join().expect("sender");
        assert!(sent < declared, "the server read a whole refused body");
    }
    let after = rss(pid);
    assert!(
        after < before + 64 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes"
    );
    eprintln!("RSS before {before} B, after 8 refused 100 MB PUTs {after} B");
}

/// Lowers the file descriptor limit (soft and hard) of the server `cmd`
/// starts — of that child only, not of this test process, whose other tests
/// run alongside.
#[allow(
    unsafe_code,
    reason = "pre_exec and setrlimit are unsafe; the SAFETY comment says why this holds"
)]
fn limit_files(cmd: &mut Command, n: u64) {
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: the closure runs in the forked child before exec and calls
    // only setrlimit, which is async-signal-safe, reads the struct it is
    // given (copied into the closure) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[test]
fn clients_beyond_the_cap_wait_and_are_served_once_connections_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The server gets 640 descriptors: it serves at most 320 connections
    // and keeps the rest for its own files.
    const NOFILE: u64 = 640;
    let server = start_with(
        dir.path(),
        "[http]\nheader-read-timeout = \"2 minutes\"\n",
        |cmd| limit_files(cmd, NOFILE),
    );
    let cap = wasmwhisk::api::server::connection_cap(1024, Some(NOFILE));
    assert_eq!(cap, 320);
    let pid = server.pid();
    let port: u16 = server
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");

    // A client without a key opens more connections than the cap and sends
    // nothing.
    let hogs: Vec<TcpStream> = (0..cap + 80).map(|_| connect(&server)).collect();
    let deadline = Instant::now() + PATIENCE;
    while accepted(pid, port) < cap && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        accepted(pid, port),
        cap,
        "the server holds the cap, no more"
    );

    // Another client waits in the backlog, unanswered…
    let mut waiting = connect(&server);
    waiting
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    assert_eq!(
        watch(&mut waiting, Duration::from_secs(2)),
        Seen::Open(String::new())
    );
    assert_eq!(accepted(pid, port), cap, "no connection over the cap");

    // …and is served once the hog's connections close.
    drop(hogs);
    match watch(&mut waiting, PATIENCE) {
        Seen::Closed(reply) | Seen::Open(reply) => {
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
        }
    }
    let reply = send(
        server
            .request(Method::PUT, &format!("{ACTIONS}/after"))
            .json(&json!({"exec": {"kind": "nodejs:default", "code": "function main() { return {}; }"}})),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(!log.contains("Too many open files"), "{log}");
}
