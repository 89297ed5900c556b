//! SIGTERM on a running `wasmwhisk standalone`: intake stops (503), the
//! activation in flight finishes and is answered, the process exits 0, and
//! its record is there after a restart.
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

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use standalone::{Server, send};

const ACTIONS: &str = "/api/v1/namespaces/_/actions";

#[test]
fn sigterm_finishes_in_flight_activations_then_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), None);
    let slow = "function main() { const end = Date.now() + 1500; while (Date.now() < end) {} return {done: true}; }";
    let put = server.json(
        Method::PUT,
        &format!("{ACTIONS}/slow"),
        &json!({"exec": {"kind": "js", "code": slow}}),
    );
    assert_eq!(put.status, 200, "{}", put.text);

    let in_flight = {
        let request = server
            .request(Method::POST, &format!("{ACTIONS}/slow?blocking=true"))
            .json(&json!({}));
        std::thread::spawn(move || send(request))
    };
    // Let the activation start, then ask the server to stop.
    std::thread::sleep(Duration::from_millis(500));
    let terminate = {
        let pid = server.pid();
        std::thread::spawn(move || {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .expect("kill -TERM")
        })
    };
    assert!(terminate.join().expect("kill").success());
    std::thread::sleep(Duration::from_millis(200));
    let refused = send(
        server
            .request(Method::POST, &format!("{ACTIONS}/slow?blocking=true"))
            .json(&json!({})),
    );
    assert_eq!(refused.status, 503, "{}", refused.text);

    let answered = in_flight.join().expect("the in-flight request");
    assert_eq!(answered.status, 200, "{}", answered.text);
    assert_eq!(answered.body["response"]["result"], json!({"done": true}));
    let id = answered.activation_id.expect("an activation id");

    let status = server.wait();
    assert!(status.success(), "exit status {status}");

    let server = Server::start(dir.path(), None);
    let record = server.get(&format!("/api/v1/namespaces/_/activations/{id}"));
    assert_eq!(record.status, 200, "{}", record.text);
    assert_eq!(record.body["response"]["status"], "success");
}
