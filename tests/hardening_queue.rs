//! Issue 20, defect 2: queued invoke bodies are bounded per namespace and
//! in total, and the memory they held is returned once the queue drains —
//! through the real `wasmwhisk standalone` process and a real HTTP client.
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

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use standalone::{Reply, Server, assert_error, create_namespace, rss, send, write_config};

const ACTIONS: &str = "/api/v1/namespaces/_/actions";

/// Busy for `ms` milliseconds, then answers the length of `pad`.
const SLOW_JS: &str = "function main(p) {\n  const end = Date.now() + (p.ms || 0);\n  \
                       while (Date.now() < end) {}\n  return { n: (p.pad || '').length };\n}\n";

fn put_slow(server: &Server, credentials: &str) {
    let reply = send(
        server
            .as_user(credentials, Method::PUT, &format!("{ACTIONS}/slow"))
            .json(&json!({"exec": {"kind": "nodejs:default", "code": SLOW_JS}})),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
}

fn invoke(server: &Server, credentials: &str, query: &str, body: &Value) -> Reply {
    send(
        server
            .as_user(
                credentials,
                Method::POST,
                &format!("{ACTIONS}/slow?{query}"),
            )
            .json(body),
    )
}

/// Polls until `pid`'s RSS is at most `bound`; the last reading.
fn rss_settles(pid: u32, bound: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = rss(pid);
        if now <= bound || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn queued_bodies_are_bounded_per_namespace_and_their_memory_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One sandbox per namespace, so invokes queue behind a busy one.
    let config = write_config(
        dir.path(),
        "[controller]\nconcurrent-invocations = 1\nqueue-max-bytes = \"48 MB\"\n\
         queue-max-bytes-per-namespace = \"24 MB\"\n",
    );
    let server = Server::start(dir.path(), Some(&config));
    let other = create_namespace(server.data_dir(), "other");
    put_slow(&server, &server.guest);
    put_slow(&server, &other);

    let pad = "x".repeat(1000 * 1000);
    let big = json!({"ms": 60, "pad": pad});
    // Warm up: the sandbox, the allocator, the database.
    for _ in 0..3 {
        let reply = invoke(&server, &server.guest, "blocking=true&result=true", &big);
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.body["n"], json!(1000 * 1000));
    }
    let before = rss(server.pid());

    // 120 one-megabyte non-blocking invokes, from 4 clients: unbounded, they
    // would all be queued (over 120 MB of bodies held at once).
    let accepted = std::sync::Mutex::new(Vec::<String>::new());
    let refused = std::sync::Mutex::new(Vec::<Reply>::new());
    let peak = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..30 {
                    let reply = invoke(&server, &server.guest, "", &big);
                    match reply.status {
                        202 => accepted
                            .lock()
                            .expect("lock")
                            .push(reply.activation_id.clone().expect("an id")),
                        _ => refused.lock().expect("lock").push(reply),
                    }
                    peak.fetch_max(rss(server.pid()), std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let accepted = accepted.into_inner().expect("lock");
    let refused = refused.into_inner().expect("lock");
    assert!(!refused.is_empty(), "some invokes were refused");
    for reply in &refused {
        assert_error(
            reply,
            429,
            "Too many concurrent requests in flight (count: ",
        );
        assert!(
            reply.text.contains("allowed: 25165824 bytes"),
            "the namespace's bound: {}",
            reply.text
        );
    }
    assert!(accepted.len() >= 10, "{} accepted", accepted.len());

    // The other namespace is not charged for the guest's queue.
    let small = json!({"ms": 0});
    let reply = invoke(&server, &other, "", &small);
    assert_eq!(
        reply.status, 202,
        "another namespace still invokes: {}",
        reply.text
    );

    // Every accepted activation ends with its record.
    for id in &accepted {
        let record = server.eventually(&format!("/api/v1/namespaces/_/activations/{id}"));
        assert_eq!(record.status, 200, "{id}: {}", record.text);
        assert_eq!(record.body["response"]["result"]["n"], json!(1000 * 1000));
    }

    // The memory held while queued is bounded, and returned once drained.
    let peak = peak.into_inner();
    let after = rss_settles(server.pid(), before + before / 10);
    eprintln!(
        "RSS before {} MB, peak {} MB, after {} MB; {} accepted, {} refused",
        before >> 20,
        peak >> 20,
        after >> 20,
        accepted.len(),
        refused.len()
    );
    assert!(
        peak < before + (110 << 20),
        "the queue held at most ~24 MB of bodies (peak {} MB over {} MB)",
        peak >> 20,
        before >> 20
    );
    assert!(
        after <= before + before / 10,
        "RSS returned within 10% ({} MB → {} MB)",
        before >> 20,
        after >> 20
    );
}
