//! The REST API over real HTTP (reqwest) against the real `wasmwhisk
//! standalone` process: happy paths, every bad input of issue 4, namespace
//! isolation, the admin routes, and a restart after `kill -9`.
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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use standalone::{Server, assert_error, send};

const ACTIONS: &str = "/api/v1/namespaces/_/actions";
const ACTIVATIONS: &str = "/api/v1/namespaces/_/activations";

const HELLO_JS: &str = "function main(params) {\n  console.log('hello from js');\n  \
                        return { greeting: `Hello, ${params.name || 'stranger'}!` };\n}\n";

fn wasm_exec(guest: &str) -> Value {
    json!({"kind": "wasm", "binary": true, "code": STANDARD.encode(common::guest(guest))})
}

fn js_exec(code: &str) -> Value {
    json!({"kind": "nodejs:default", "code": code})
}

fn put(server: &Server, name: &str, body: Value) -> standalone::Reply {
    server.json(Method::PUT, &format!("{ACTIONS}/{name}"), &body)
}

fn invoke(server: &Server, name: &str, query: &str, params: Value) -> standalone::Reply {
    server.json(Method::POST, &format!("{ACTIONS}/{name}?{query}"), &params)
}

fn annotation<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    doc["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn wasm_and_js_actions_deploy_invoke_and_leave_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None);

    // Create a wasm action: compiled at create, answered without its code.
    let created = put(&server, "hello", json!({"exec": wasm_exec("hello_rust")}));
    assert_eq!(created.status, 200, "{}", created.text);
    let doc = &created.body;
    assert_eq!(
        (doc["name"].clone(), doc["namespace"].clone()),
        (json!("hello"), json!("guest"))
    );
    assert_eq!(doc["exec"], json!({"kind": "wasm", "binary": true}));
    assert_eq!(doc["version"], json!("0.0.1"));
    assert_eq!(annotation(doc, "exec"), Some(&json!("wasm")));
    assert_eq!(doc["limits"]["memory"], json!(256));
    assert!(doc["updated"].as_u64().unwrap_or(0) > 0);

    // Blocking with result=true: the result only, with the id header.
    let reply = invoke(
        &server,
        "hello",
        "blocking=true&result=true",
        json!({"name": "Ada"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"greeting": "Hello, Ada!"}));
    let id = reply.activation_id.clone().expect("activation id header");
    assert_eq!(id.len(), 32);

    // Blocking: the whole activation.
    let reply = invoke(&server, "hello", "blocking=true", json!({}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["response"]["status"], json!("success"));
    assert_eq!(
        reply.body["response"]["result"],
        json!({"greeting": "Hello, stranger!"})
    );
    assert_eq!(
        Some(reply.body["activationId"].as_str().unwrap_or("")),
        reply.activation_id.as_deref()
    );
    assert!(reply.body["logs"].is_array());

    // Non-blocking: 202 with the id; the record appears.
    let reply = invoke(&server, "hello", "", json!({"name": "Grace"}));
    assert_eq!(reply.status, 202, "{}", reply.text);
    let async_id = reply.body["activationId"]
        .as_str()
        .expect("activationId")
        .to_string();
    assert_eq!(reply.activation_id.as_deref(), Some(async_id.as_str()));
    let record = server.eventually(&format!("{ACTIVATIONS}/{async_id}"));
    assert_eq!(record.status, 200, "{}", record.text);
    assert_eq!(
        record.body["response"]["result"],
        json!({"greeting": "Hello, Grace!"})
    );
    assert_eq!(record.body["name"], json!("hello"));
    let result = server.get(&format!("{ACTIVATIONS}/{async_id}/result"));
    assert_eq!(result.body["result"], json!({"greeting": "Hello, Grace!"}));
    assert_eq!(
        (
            result.body["success"].clone(),
            result.body["status"].clone()
        ),
        (json!(true), json!("success"))
    );
    let logs = server.get(&format!("{ACTIVATIONS}/{id}/logs"));
    assert_eq!(logs.status, 200);
    assert!(logs.body["logs"].is_array(), "{}", logs.text);

    // A js action (a nodejs alias) with logs.
    let created = put(&server, "hello-js", json!({"exec": js_exec(HELLO_JS)}));
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.body["exec"], json!({"kind": "js", "binary": false}));
    let reply = invoke(&server, "hello-js", "blocking=true", json!({"name": "Lin"}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["response"]["result"],
        json!({"greeting": "Hello, Lin!"})
    );
    let logs: Vec<String> = serde_json::from_value(reply.body["logs"].clone()).unwrap_or_default();
    assert!(logs.iter().any(|l| l.contains("hello from js")), "{logs:?}");

    // Get with and without code; list without code.
    let got = server.get(&format!("{ACTIONS}/hello?code=true"));
    assert_eq!(got.body["exec"]["code"], wasm_exec("hello_rust")["code"]);
    let got = server.get(&format!("{ACTIONS}/hello-js"));
    assert!(got.body["exec"].get("code").is_none());
    let got = server.get(&format!("{ACTIONS}/hello-js?code=true"));
    assert_eq!(got.body["exec"]["code"], json!(HELLO_JS));
    let list = server.get(ACTIONS);
    let names: Vec<&str> = list
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["hello", "hello-js"]);
    assert!(
        list.body
            .as_array()
            .into_iter()
            .flatten()
            .all(|a| a["exec"].get("code").is_none())
    );
    let one = server.get(&format!("{ACTIONS}?limit=1&skip=1"));
    assert_eq!(one.body.as_array().map(Vec::len), Some(1));

    // Activations: summaries, docs, name filter, limit.
    let list = server.get(&format!("{ACTIVATIONS}?limit=2"));
    let entries = list.body.as_array().expect("a list");
    assert_eq!(entries.len(), 2);
    assert!(entries[0].get("response").is_none() && entries[0].get("logs").is_none());
    assert_eq!(entries[0]["statusCode"], json!(0));
    let docs = server.get(&format!("{ACTIVATIONS}?docs=true&name=hello"));
    let entries = docs.body.as_array().expect("a list");
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e["name"] == "hello" && e["response"]["success"] == true)
    );

    // Update: a new revision and version; the new code runs at once.
    let v2 = "function main() { return { version: 2 }; }";
    let updated = put(
        &server,
        "hello-js?overwrite=true",
        json!({"exec": js_exec(v2)}),
    );
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["version"], json!("0.0.2"));
    let reply = invoke(&server, "hello-js", "blocking=true&result=true", json!({}));
    assert_eq!(reply.body, json!({"version": 2}), "{}", reply.text);
    // An update without exec keeps the code and changes the rest.
    let updated = put(
        &server,
        "hello-js?overwrite=true",
        json!({"limits": {"memory": 128}}),
    );
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(
        (
            updated.body["limits"]["memory"].clone(),
            updated.body["version"].clone()
        ),
        (json!(128), json!("0.0.3"))
    );

    // Create without overwrite over an existing action: 409.
    let again = put(&server, "hello-js", json!({"exec": js_exec(HELLO_JS)}));
    assert_error(&again, 409, "resource already exists");

    // Application and developer errors: 502.
    let fails = "function main() { return { error: 'nope' }; }";
    assert_eq!(
        put(&server, "fails", json!({"exec": js_exec(fails)})).status,
        200
    );
    let reply = invoke(&server, "fails", "blocking=true&result=true", json!({}));
    assert_eq!(
        (reply.status, reply.body.clone()),
        (502, json!({"error": "nope"}))
    );
    let throws = "function main() { throw new Error('boom'); }";
    assert_eq!(
        put(&server, "throws", json!({"exec": js_exec(throws)})).status,
        200
    );
    let reply = invoke(&server, "throws", "blocking=true", json!({}));
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(
        reply.body["response"]["status"],
        json!("action developer error")
    );

    // A blocking invoke past its wait: 202, and the record comes later.
    assert_eq!(
        put(&server, "slow", json!({"exec": wasm_exec("misbehave")})).status,
        200
    );
    let reply = invoke(
        &server,
        "slow",
        "blocking=true&timeout=200",
        json!({"do": "sleep", "ms": 1500}),
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    let slow_id = reply.body["activationId"]
        .as_str()
        .expect("activationId")
        .to_string();
    let record = server.eventually(&format!("{ACTIVATIONS}/{slow_id}"));
    assert_eq!(
        record.body["response"]["result"],
        json!({"slept": 1500}),
        "{}",
        record.text
    );

    // Delete: answers the action; then it is gone.
    let deleted = send(server.request(Method::DELETE, &format!("{ACTIONS}/hello-js")));
    assert_eq!(
        (deleted.status, deleted.body["name"].clone()),
        (200, json!("hello-js"))
    );
    assert_error(
        &server.get(&format!("{ACTIONS}/hello-js")),
        404,
        "The requested resource does not exist.",
    );
    assert_error(
        &invoke(&server, "hello-js", "blocking=true", json!({})),
        404,
        "The requested resource does not exist.",
    );
    let deleted = send(server.request(Method::DELETE, &format!("{ACTIONS}/hello-js")));
    assert_error(&deleted, 404, "The requested resource does not exist.");
}

#[test]
fn concurrent_updates_of_one_action_are_successive_revisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None);
    let code = |n: usize| format!("function main() {{ return {{ writer: {n} }}; }}");
    assert_eq!(
        put(&server, "raced", json!({"exec": js_exec(&code(0))})).status,
        200
    );
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=4)
            .map(|n| {
                let server = &server;
                let body = json!({"exec": js_exec(&code(n))});
                s.spawn(move || put(server, "raced?overwrite=true", body).status)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    });
    assert_eq!(statuses, [200, 200, 200, 200], "every update succeeds");
    let latest = server.get(&format!("{ACTIONS}/raced?code=true"));
    assert_eq!(
        latest.body["version"],
        json!("0.0.5"),
        "one revision per update"
    );
    let reply = invoke(&server, "raced", "blocking=true&result=true", json!({}));
    let writer = reply.body["writer"].as_u64().expect("a writer") as usize;
    assert_eq!(
        latest.body["exec"]["code"],
        json!(code(writer)),
        "the last writer's code runs"
    );
}

#[test]
fn namespaces_are_isolated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmwhisk"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["namespace", "create", "other"])
        .output()
        .expect("wasmwhisk namespace create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let other = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("the new key")
        .trim()
        .to_string();

    assert_eq!(
        put(&server, "mine", json!({"exec": js_exec(HELLO_JS)})).status,
        200
    );
    let id = invoke(&server, "mine", "blocking=true", json!({}))
        .activation_id
        .expect("id");

    let as_other = |method: Method, path: &str| send(server.as_user(&other, method, path));
    assert_error(
        &as_other(Method::GET, "/api/v1/namespaces/guest/actions/mine"),
        403,
        "The supplied authentication is not authorized to access 'guest'.",
    );
    assert_error(
        &as_other(Method::POST, "/api/v1/namespaces/guest/actions/mine"),
        403,
        "The supplied",
    );
    assert_error(
        &as_other(Method::GET, &format!("{ACTIONS}/mine")),
        404,
        "The requested resource",
    );
    assert_error(
        &as_other(Method::GET, &format!("{ACTIVATIONS}/{id}")),
        404,
        "The requested resource",
    );
    assert_eq!(as_other(Method::GET, ACTIONS).body, json!([]));
    assert_eq!(as_other(Method::GET, ACTIVATIONS).body, json!([]));
    assert_eq!(
        as_other(Method::GET, "/api/v1/namespaces").body,
        json!(["other"])
    );
    // The same name in the other namespace is another action.
    let theirs = send(
        server
            .as_user(&other, Method::PUT, &format!("{ACTIONS}/mine"))
            .json(&json!({"exec": js_exec("function main() { return { theirs: true }; }")})),
    );
    assert_eq!(
        (theirs.status, theirs.body["namespace"].clone()),
        (200, json!("other"))
    );
    let mine = invoke(&server, "mine", "blocking=true&result=true", json!({}));
    assert_eq!(mine.body, json!({"greeting": "Hello, stranger!"}));
}

#[test]
fn a_restart_after_kill_9_keeps_actions_keys_and_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), None);
    assert_eq!(
        put(&server, "hello", json!({"exec": wasm_exec("hello_rust")})).status,
        200
    );
    let reply = invoke(
        &server,
        "hello",
        "blocking=true&result=true",
        json!({"name": "Ada"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.activation_id.expect("id");
    assert_eq!(
        put(&server, "slow", json!({"exec": wasm_exec("misbehave")})).status,
        200
    );
    let in_flight = invoke(&server, "slow", "", json!({"do": "sleep", "ms": 60000}));
    assert_eq!(in_flight.status, 202, "{}", in_flight.text);
    let in_flight = in_flight.activation_id.expect("id");
    std::thread::sleep(Duration::from_millis(300));
    let key = server.guest.clone();
    server.kill();

    let server = Server::start(dir.path(), None);
    assert_eq!(server.guest, key, "the guest key survives");
    let action = server.get(&format!("{ACTIONS}/hello"));
    assert_eq!(action.status, 200, "{}", action.text);
    let record = server.get(&format!("{ACTIVATIONS}/{id}"));
    assert_eq!(record.status, 200, "{}", record.text);
    assert_eq!(
        record.body["response"]["result"],
        json!({"greeting": "Hello, Ada!"})
    );
    let reply = invoke(
        &server,
        "hello",
        "blocking=true&result=true",
        json!({"name": "again"}),
    );
    assert_eq!(
        (reply.status, reply.body),
        (200, json!({"greeting": "Hello, again!"}))
    );
    // The activation in flight at the crash is recorded as failed.
    let failed = server.get(&format!("{ACTIVATIONS}/{in_flight}"));
    assert_eq!(failed.status, 200, "{}", failed.text);
    assert_eq!(
        failed.body["response"]["success"],
        json!(false),
        "{}",
        failed.text
    );
}

#[path = "api/admin.rs"]
mod admin;
#[path = "api/bad_input.rs"]
mod bad_input;
