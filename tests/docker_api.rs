//! The Docker fallback through the REST API, against the real `wasmwhisk
//! standalone` process and the real Docker engine: blackbox and native
//! actions created, invoked, updated and deleted; init failure, timeout,
//! application and developer errors; pause/unpause reuse; a prewarmed
//! container; clean-up at shutdown and after a crash; Docker unavailable.
//!
//! Images are built from source by the project's scripts
//! (`runtimes/docker/build.sh`, `build-action.sh`); every container a test
//! starts carries its own owner label and is removed, and the test images
//! too. `wasmwhisk/action-proxy:latest` stays.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;
#[path = "common/docker.rs"]
mod docker;
#[path = "common/standalone.rs"]
mod standalone;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use standalone::{Reply, Server};

const ACTIONS: &str = "/api/v1/namespaces/_/actions";

fn put(server: &Server, name: &str, body: Value) -> Reply {
    server.json(
        Method::PUT,
        &format!("{ACTIONS}/{name}?overwrite=true"),
        &body,
    )
}

fn invoke(server: &Server, name: &str, params: Value) -> Reply {
    server.json(
        Method::POST,
        &format!("{ACTIONS}/{name}?blocking=true"),
        &params,
    )
}

/// `wasmwhisk --data-dir DIR ARGS` (the CLI finds the server and the key in
/// the data directory); panics unless it succeeds.
fn wsk(data_dir: &Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasmwhisk"));
    for var in [
        "WASMWHISK_APIHOST",
        "WASMWHISK_AUTH",
        "WASMWHISK_PROPS",
        "WASMWHISK_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("running the CLI");
    assert!(
        out.status.success(),
        "wasmwhisk {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A unique owner label for this test.
fn owner(test: &str) -> String {
    format!("wwtest-{test}-{}", std::process::id())
}

/// A config file for a server whose containers carry `owner`.
fn config(dir: &Path, owner: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("wasmwhisk.toml");
    let text = format!(
        "[docker]\nowner = \"{owner}\"\n\n[container-proxy.timeouts]\npause-grace = \"400 ms\"\n\n{extra}\n"
    );
    std::fs::write(&path, text).expect("writing the config");
    path
}

/// The activation's status as the API writes it, and its result.
fn outcome(reply: &Reply) -> (String, Value) {
    (
        reply.body["response"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        reply.body["response"]["result"].clone(),
    )
}

/// The value of a metric line starting with `prefix`, 0 if absent.
fn metric(server: &Server, prefix: &str) -> f64 {
    let text = server.get("/metrics").text;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn blackbox_and_native_actions_run_in_docker_through_the_api() {
    let owner = owner("api");
    let hello_image = format!("wasmwhisk-test/hello:{}", std::process::id());
    let misbehave_image = format!("wasmwhisk-test/misbehave:{}", std::process::id());
    let _cleanup = docker::Cleanup {
        owner: owner.clone(),
        images: vec![hello_image.clone(), misbehave_image.clone()],
    };
    docker::action_image("hello-rust", &hello_image);
    let misbehave_exe = docker::action_image("native-misbehave", &misbehave_image);

    let dir = tempfile::tempdir().expect("tempdir");
    // One prewarmed container of the `native` kind.
    let config = config(
        dir.path(),
        &owner,
        "[runtimes.images.native]\nimage = \"wasmwhisk/action-proxy:latest\"\nstemCells = [{ initialCount = 1, memory = \"256 MB\" }]\n",
    );
    let server = Server::start(dir.path(), Some(&config));

    // The stem cell: a running container of the proxy image, before any action.
    let started = docker::wait_containers(&owner, 30, |c| c.len() == 1);
    assert_eq!(started.len(), 1, "one prewarmed container: {started:?}");

    // --- blackbox: create, get, invoke --------------------------------------
    let created = put(
        &server,
        "hello",
        json!({"exec": {"kind": "blackbox", "image": hello_image, "binary": false}}),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.body["exec"]["kind"], "blackbox");
    assert_eq!(created.body["exec"]["image"], hello_image.as_str());
    let reply = invoke(&server, "hello", json!({"name": "Docker"}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        outcome(&reply),
        ("success".into(), json!({"greeting": "Hello, Docker!"}))
    );

    // Params larger than one command-line argument (128 KiB) reach the
    // action on stdin.
    let long_name = "x".repeat(200_000);
    let reply = invoke(&server, "hello", json!({"name": long_name}));
    assert_eq!(
        reply.status,
        200,
        "{}",
        &reply.text[..reply.text.len().min(500)]
    );
    assert_eq!(
        reply.body["response"]["result"]["greeting"],
        format!("Hello, {long_name}!")
    );

    // --- update to another image (with the CLI's --docker): the new revision runs it
    wsk(
        dir.path(),
        &["action", "update", "hello", "--docker", &misbehave_image],
    );
    let reply = invoke(&server, "hello", json!({"x": 1}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["response"]["result"]["ok"], true,
        "{}",
        reply.text
    );

    // --- native: the executable as base64 code, run by the proxy image ------
    let code = STANDARD.encode(std::fs::read(&misbehave_exe).expect("native executable"));
    let created = put(
        &server,
        "native",
        json!({"exec": {"kind": "native", "code": code, "binary": true},
               "limits": {"timeout": 2000}}),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    let prewarm_before = metric(
        &server,
        "wasmwhisk_activations_by_start_total{start=\"prewarm\"",
    );
    let reply = invoke(&server, "native", json!({"greeting": "hi"}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let result = &reply.body["response"]["result"];
    assert_eq!(
        result["params"],
        json!({"greeting": "hi"}),
        "{}",
        reply.text
    );
    assert!(
        metric(
            &server,
            "wasmwhisk_activations_by_start_total{start=\"prewarm\""
        ) > prewarm_before,
        "the first native activation specialized the prewarmed container"
    );
    let id = reply.body["activationId"].as_str().unwrap_or_default();
    assert_eq!(result["env"]["__OW_ACTIVATION_ID"], id, "{}", reply.text);
    assert_eq!(
        result["env"]["__OW_ACTION_NAME"], "/guest/native",
        "{}",
        reply.text
    );
    let reply = invoke(&server, "native", json!({"do": "count"}));
    assert_eq!(
        reply.body["response"]["result"]["count"], 1,
        "{}",
        reply.text
    );

    // The same container again (warm), and logs collected without sentinels.
    let reply = invoke(&server, "native", json!({"do": "log", "lines": 3}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let logs: Vec<String> = reply.body["logs"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        logs.iter().any(|l| l.contains("stdout:")) && logs.iter().any(|l| l.contains("stderr:")),
        "{logs:?}"
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX")),
        "{logs:?}"
    );

    // --- application error keeps the container -------------------------------
    let reply = invoke(
        &server,
        "native",
        json!({"do": "error", "message": "bad input"}),
    );
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(
        outcome(&reply),
        ("application error".into(), json!({"error": "bad input"}))
    );
    let reply = invoke(&server, "native", json!({"do": "count"}));
    assert_eq!(
        reply.body["response"]["result"]["count"], 2,
        "the container survived the application error: {}",
        reply.text
    );

    // --- pause / unpause reuse ------------------------------------------------
    let paused = docker::wait_containers(&owner, 15, |c| c.iter().any(|(_, s)| s == "paused"));
    assert!(
        paused.iter().any(|(_, s)| s == "paused"),
        "an idle container is paused after pause-grace: {paused:?}"
    );
    let reply = invoke(&server, "native", json!({"do": "count"}));
    assert_eq!(
        reply.body["response"]["result"]["count"], 3,
        "the paused container was resumed and reused: {}",
        reply.text
    );

    // --- developer errors retire the container --------------------------------
    let reply = invoke(&server, "native", json!({"do": "garbage"}));
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(
        outcome(&reply).0,
        "action developer error",
        "{}",
        reply.text
    );
    let reply = invoke(&server, "native", json!({"do": "count"}));
    assert_eq!(
        reply.body["response"]["result"]["count"], 1,
        "a new container after the developer error: {}",
        reply.text
    );
    let reply = invoke(&server, "native", json!({"do": "exit"}));
    assert_eq!(
        outcome(&reply).0,
        "action developer error",
        "{}",
        reply.text
    );

    // --- timeout -------------------------------------------------------------------
    let reply = invoke(&server, "native", json!({"do": "sleep", "ms": 5000}));
    assert_eq!(
        outcome(&reply).0,
        "action developer error",
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body["response"]["result"]["error"],
        "The action exceeded its time limits of 2000 milliseconds.",
        "{}",
        reply.text
    );
    assert!(
        reply.body["annotations"]
            .as_array()
            .is_some_and(|a| a.contains(&json!({"key": "timeout", "value": true}))),
        "{}",
        reply.text
    );

    // --- memory: past the container's limit (256 MB) ---------------------------
    let reply = invoke(&server, "native", json!({"do": "alloc", "mb": 600}));
    assert_eq!(
        outcome(&reply).0,
        "action developer error",
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body["response"]["result"]["error"],
        "The action exhausted its memory and was aborted.",
        "{}",
        reply.text
    );

    // --- init failure: code that is not an executable --------------------------
    let created = put(
        &server,
        "broken",
        json!({"exec": {"kind": "native", "code": STANDARD.encode(b"not an executable at all"), "binary": true}}),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    let reply = invoke(&server, "broken", json!({}));
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert_eq!(
        outcome(&reply).0,
        "action developer error",
        "{}",
        reply.text
    );
    assert!(
        reply.body["response"]["result"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{}",
        reply.text
    );

    // --- bad input at create ----------------------------------------------------
    let no_image = put(&server, "x", json!({"exec": {"kind": "blackbox"}}));
    assert_eq!(no_image.status, 400, "{}", no_image.text);
    let not_base64 = put(
        &server,
        "x",
        json!({"exec": {"kind": "native", "code": "#!/bin/sh", "binary": true}}),
    );
    assert_eq!(not_base64.status, 400, "{}", not_base64.text);
    let missing = put(
        &server,
        "missing",
        json!({"exec": {"kind": "blackbox", "image": "wasmwhisk-test/no-such-image:0"}}),
    );
    assert_eq!(missing.status, 200, "{}", missing.text);
    let reply = invoke(&server, "missing", json!({}));
    assert!(reply.status >= 500, "{}", reply.text);
    let error = reply.body["response"]["result"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("wasmwhisk-test/no-such-image:0"),
        "the error names the missing image: {}",
        reply.text
    );

    // --- delete ----------------------------------------------------------------------
    let deleted = server.json(Method::DELETE, &format!("{ACTIONS}/hello"), &json!({}));
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(invoke(&server, "hello", json!({})).status, 404);

    // --- shutdown removes every container -------------------------------------
    let mut server = server;
    let pid = server.pid().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(server.wait().success(), "a clean exit");
    assert_eq!(
        docker::containers(&owner),
        Vec::<(String, String)>::new(),
        "no container left after shutdown"
    );
}

#[test]
fn a_restart_after_a_crash_removes_the_leftover_containers() {
    let owner = owner("crash");
    let _cleanup = docker::Cleanup {
        owner: owner.clone(),
        images: Vec::new(),
    };
    // Only the native executable is needed; its image goes at once.
    let tag = format!("wasmwhisk-test/crash:{}", std::process::id());
    let exe = docker::action_image("native-misbehave", &tag);
    docker::remove_image(&tag);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), &owner, "");
    let mut server = Server::start(dir.path(), Some(&config));
    // Deployed with the CLI, as `wsk action create n exec --native`.
    let exe_path = exe.to_string_lossy().into_owned();
    wsk(
        dir.path(),
        &["action", "create", "n", &exe_path, "--native"],
    );
    assert_eq!(invoke(&server, "n", json!({})).status, 200);
    server.kill();
    let left = docker::containers(&owner);
    assert!(!left.is_empty(), "a crash leaves its container behind");

    let server = Server::start(dir.path(), Some(&config));
    let gone = docker::wait_containers(&owner, 30, |c| c.is_empty());
    assert!(
        gone.is_empty(),
        "the restart removed the leftovers: {gone:?}"
    );
    // And it serves the action again, in a new container.
    let reply = invoke(&server, "n", json!({}));
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn without_docker_only_image_kinds_fail_and_clearly() {
    let owner = owner("nodocker");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), &owner, "");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "[docker]\n",
            "[docker]\nhost = \"unix:///nonexistent/docker.sock\"\n",
        ),
    )
    .expect("config");
    let server = Server::start(dir.path(), Some(&config));

    let wasm = STANDARD.encode(common::guest("hello_rust"));
    let created = put(
        &server,
        "wasm",
        json!({"exec": {"kind": "wasm", "code": wasm, "binary": true}}),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    let reply = invoke(&server, "wasm", json!({"name": "Wasm"}));
    assert_eq!(reply.status, 200, "{}", reply.text);

    let created = put(
        &server,
        "box",
        json!({"exec": {"kind": "blackbox", "image": "wasmwhisk/action-proxy:latest"}}),
    );
    assert_eq!(created.status, 200, "{}", created.text);
    let started = Instant::now();
    let reply = invoke(&server, "box", json!({}));
    assert!(reply.status >= 500, "{}", reply.text);
    let error = reply.body["response"]["result"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("Docker") && error.contains("/nonexistent/docker.sock"),
        "the error says Docker is not there: {}",
        reply.text
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the failure is prompt"
    );
    // Wasm keeps working.
    let reply = invoke(&server, "wasm", json!({"name": "again"}));
    assert_eq!(reply.status, 200, "{}", reply.text);
}
