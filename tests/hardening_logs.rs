//! Issue 20, defects 1 and 9, through the real `wasmwhisk standalone`
//! process and a real HTTP client:
//! - an action logging huge numbers of empty lines is charged what its
//!   lines take stored, so its record, its blocking answer and the server's
//!   memory stay bounded, and other actions keep answering meanwhile;
//! - a JS timer or promise job left by one activation never runs in the
//!   next activation of the same warm sandbox.
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
use standalone::{Reply, Server, rss};

const ACTIONS: &str = "/api/v1/namespaces/_/actions";
const ACTIVATIONS: &str = "/api/v1/namespaces/_/activations";

/// The activation's log limit, `limits.logs` (MB): the smallest non-zero.
const LOG_LIMIT_MB: u64 = 1;

/// Empty lines the chatty action writes: 200 KB of text, but ~8 MB stored
/// — what the record held when each line was charged one byte (before the
/// fix); charging the stored line keeps it within the 1 MB limit.
const CHATTY_LINES: u64 = 200_000;

/// Logs `p.n` empty lines.
const CHATTY_JS: &str =
    "function main(p) { for (let i = 0; i < p.n; i++) console.log(''); return { n: p.n }; }";

const HELLO_JS: &str = "function main(p) { return { hello: p.name || 'world' }; }";

fn put_js(server: &Server, name: &str, code: &str, limits: Value) {
    let reply = server.json(
        Method::PUT,
        &format!("{ACTIONS}/{name}"),
        &json!({"exec": {"kind": "nodejs:default", "code": code}, "limits": limits}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
}

fn invoke(server: &Server, name: &str, params: Value) -> Reply {
    server.json(
        Method::POST,
        &format!("{ACTIONS}/{name}?blocking=true"),
        &params,
    )
}

/// The log lines of a record or a blocking answer.
fn logs_of(body: &Value) -> Vec<String> {
    body["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l.as_str().expect("a log line").to_string())
        .collect()
}

#[test]
fn empty_log_lines_are_charged_what_they_store_and_memory_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None);
    put_js(
        &server,
        "chatty",
        CHATTY_JS,
        json!({"logs": LOG_LIMIT_MB, "timeout": 120_000}),
    );
    put_js(&server, "hello", HELLO_JS, json!({}));

    // Warm both actions, so the baseline holds their sandboxes, and run one
    // chatty activation first, so the database's page cache and the
    // allocator's arenas are at their working size: what is measured is
    // that each such activation's memory comes back instead of piling up.
    for _ in 0..3 {
        assert_eq!(invoke(&server, "chatty", json!({"n": 3})).status, 200);
        assert_eq!(invoke(&server, "hello", json!({})).status, 200);
    }
    let first = invoke(&server, "chatty", json!({"n": CHATTY_LINES}));
    assert_eq!(first.status, 200);
    let id = first.body["activationId"].as_str().expect("activationId");
    assert_eq!(server.get(&format!("{ACTIVATIONS}/{id}")).status, 200);
    let before = rss(server.pid());

    let (chatty, peak, hello_answers) = std::thread::scope(|scope| {
        let chatty = scope.spawn(|| invoke(&server, "chatty", json!({"n": CHATTY_LINES})));
        let mut peak = 0;
        let mut hello_answers = 0;
        let mut slowest = Duration::ZERO;
        while !chatty.is_finished() {
            peak = peak.max(rss(server.pid()));
            let asked = Instant::now();
            let reply = invoke(&server, "hello", json!({"name": "meanwhile"}));
            slowest = slowest.max(asked.elapsed());
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(
                reply.body["response"]["result"],
                json!({"hello": "meanwhile"})
            );
            if !chatty.is_finished() {
                hello_answers += 1;
            }
            // Pacing only: the other action is asked a few times a second.
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("slowest answer of another action meanwhile: {slowest:?}");
        (
            chatty.join().expect("the chatty invoke"),
            peak,
            hello_answers,
        )
    });
    assert_eq!(
        chatty.status,
        200,
        "{}",
        &chatty.text[..chatty.text.len().min(500)]
    );
    assert_eq!(
        chatty.body["response"]["result"],
        json!({"n": CHATTY_LINES})
    );
    let limit = usize::try_from(LOG_LIMIT_MB << 20).expect("limit");
    // The blocking answer is bounded: the logs and JSON quoting around them.
    assert!(
        chatty.text.len() < limit + limit / 4,
        "a blocking answer of {} bytes",
        chatty.text.len()
    );

    // The stored record: its lines, prefix included, fit in the limit; then
    // the one notice.
    let id = chatty.body["activationId"].as_str().expect("activationId");
    let record = server.eventually(&format!("{ACTIVATIONS}/{id}"));
    assert_eq!(record.status, 200);
    let lines = logs_of(&record.body);
    let (notice, kept) = lines.split_last().expect("some lines");
    let stored: usize = kept.iter().map(String::len).sum();
    assert!(
        stored <= limit,
        "{stored} bytes of logs stored past {limit}"
    );
    assert!(
        stored > limit - 100,
        "the limit is used up: {stored} of {limit}"
    );
    assert!(
        notice.ends_with(&format!(
            "stderr: Logs were truncated because the total bytes size exceeds the limit of {limit} bytes."
        )),
        "{notice}"
    );

    // The memory the activation took comes back (polled: the record's
    // write may still be finishing).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = rss(server.pid());
    while after > before + before / 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = rss(server.pid());
    }
    eprintln!(
        "RSS before {} KiB, peak {} KiB, after {} KiB; {} answers of another action meanwhile; \
         blocking answer {} bytes; record {} lines, {stored} bytes",
        before >> 10,
        peak >> 10,
        after >> 10,
        hello_answers,
        chatty.text.len(),
        lines.len()
    );
    assert!(
        after <= before + before / 10,
        "RSS {} KiB after the activation, {} KiB before",
        after >> 10,
        before >> 10
    );
    assert!(
        hello_answers > 0,
        "another action answered while the chatty one ran"
    );
}

/// Activation 1 (`arm`) leaves a timer that would throw, a promise chained
/// on a timer, an interval and a queued promise job; activation 2 (`wait`)
/// returns a promise settled by its own, later timer.
const TIMERS_JS: &str = r#"
let activations = 0;
let fired = 0;
function main(p) {
  activations++;
  const n = activations;
  if (p.arm) {
    setTimeout(() => { fired++; throw new Error('a timer of activation ' + n); }, p.arm);
    setTimeout(() => { fired++; }, 5000);
    setInterval(() => { fired++; }, p.arm);
    new Promise(r => setTimeout(r, p.arm)).then(() => { fired++; throw new Error('late'); });
    Promise.resolve().then(() => console.log('a job of activation ' + n));
    return { activations: n };
  }
  return new Promise(r => setTimeout(() => r({ activations: n, fired }), p.wait));
}
"#;

#[test]
fn timers_and_jobs_of_one_activation_never_run_in_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None);
    put_js(&server, "timers", TIMERS_JS, json!({"timeout": 10_000}));

    let first = invoke(&server, "timers", json!({"arm": 100}));
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["response"]["result"], json!({"activations": 1}));
    // The job it queued ran in it, not later.
    assert!(
        logs_of(&first.body)
            .iter()
            .any(|l| l.ends_with("stdout: a job of activation 1")),
        "{}",
        first.text
    );

    // Activation 2 waits longer than activation 1's timers: before the fix,
    // the first of them fired in it and threw.
    let second = invoke(&server, "timers", json!({"wait": 600}));
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(
        second.body["response"]["status"],
        json!("success"),
        "{}",
        second.text
    );
    assert_eq!(
        second.body["response"]["result"],
        json!({"activations": 2, "fired": 0}),
        "the same warm sandbox, and no timer of activation 1 fired"
    );
    assert!(
        logs_of(&second.body).is_empty(),
        "nothing of activation 1 in activation 2's logs: {}",
        second.text
    );

    // A third activation still finds nothing left over.
    let third = invoke(&server, "timers", json!({"wait": 1}));
    assert_eq!(
        third.body["response"]["result"],
        json!({"activations": 3, "fired": 0}),
        "{}",
        third.text
    );
}
