//! Cluster mode end to end: real nats-server and etcd, and real
//! `wasmwhisk controller` and `wasmwhisk invoker` processes on this machine
//! (issue 5). Deploy and invoke through the REST API of either controller;
//! creation acks; etcd keys that follow the sandboxes; warm-first routing and
//! home-invoker locality; a full invoker refusing and the creation going
//! elsewhere; an invoker killed with SIGKILL under load; nats-server and
//! etcd restarted under load — and every accepted activation ends with a
//! record.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/standalone.rs"]
mod standalone;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster::Cluster;
use reqwest::Method;
use serde_json::{Value, json};
use wasmwhisk::cluster::choose::home_and_step;
use wasmwhisk::cluster::scheduling::queue_leader;

/// An invoker's configuration: `memory` MB for actions, short timers so the
/// tests see pauses, and a lease of `lease` seconds.
fn invoker_config(memory: u64, lease: u64) -> String {
    invoker_config_syncing(memory, lease, 1)
}

/// [`invoker_config`] with the memory report every `sync` seconds.
fn invoker_config_syncing(memory: u64, lease: u64, sync: u64) -> String {
    format!(
        "[container-pool]\nuser-memory = \"{memory} MB\"\nmemory-sync-interval = \"{sync} seconds\"\n\n\
         [container-proxy.timeouts]\npause-grace = \"1 second\"\n\n\
         [etcd]\nlease-timeout = \"{lease} seconds\"\n"
    )
}

/// A JS action that busy-waits `ms` milliseconds, then answers.
fn slow_js(ms: u64) -> Value {
    json!({"exec": {"kind": "nodejs:default", "code": format!(
        "function main(p) {{ const t = Date.now(); while (Date.now() - t < {ms}) {{}} return {{ done: true, n: p.n }}; }}"
    )}, "limits": {"memory": 256}})
}

fn put(c: &Cluster, name: &str, body: &Value) {
    let reply = c.json(
        0,
        Method::PUT,
        &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
        body,
    );
    assert_eq!(reply.status, 200, "deploying {name}: {}", reply.text);
}

/// The invokers holding a live or warmed sandbox of `action` (its etcd keys).
fn holders(c: &Cluster, action: &str) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    for kind in ["namespace", "warmed"] {
        for key in c.keys(&format!("whisk/{kind}/guest/guest/{action}/")) {
            let parts: Vec<&str> = key.split('/').collect();
            let n = parts.len();
            let invoker = if parts[n - 3].starts_with("invoker") && parts[n - 3] != "invoker" {
                parts[n - 3].trim_start_matches("invoker").parse().ok()
            } else {
                parts[n - 3].parse().ok()
            };
            if let Some(i) = invoker {
                found.insert(i);
            }
        }
    }
    found
}

/// An action name led by `controller{leader}` of controllers 0 and 1 and
/// homed at invoker `home` of 2.
fn name_led_by(leader: u32, home: usize, stem: &str) -> String {
    let controllers = vec!["controller0".to_string(), "controller1".to_string()];
    (0..1000)
        .map(|i| format!("{stem}{i}"))
        .find(|name| {
            let fqn = format!("guest/{name}");
            queue_leader("guest", &fqn, &controllers) == Some(&format!("controller{leader}"))
                && home_and_step("guest", &fqn, 2).0 == home
        })
        .expect("some name is led and homed there")
}

/// An action name whose home invoker among `n` invokers is `home`.
fn name_homed_at(home: usize, n: usize, stem: &str) -> String {
    (0..1000)
        .map(|i| format!("{stem}{i}"))
        .find(|name| home_and_step("guest", &format!("guest/{name}"), n).0 == home)
        .expect("some name is homed there")
}

#[test]
fn any_controller_deploys_invokes_and_reads_with_acks_and_keys() {
    let mut c = Cluster::start();
    c.start_controller(1);
    c.start_invoker(0, Some(&invoker_config(1024, 10)));
    c.start_invoker(1, Some(&invoker_config(1024, 10)));
    for n in [0, 1] {
        assert!(
            c.keys(&format!("whisk/instance/invoker{n}/lease")).len() == 1,
            "invoker{n} holds its lease key"
        );
    }
    c.deploy_hello(0, "hello", 256);

    // Controller 1 sees what controller 0 stored.
    let got = c.get(1, "/api/v1/namespaces/_/actions/hello");
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["exec"]["kind"], "wasm");

    for k in [0, 1] {
        let reply = c.invoke(k, "hello", &json!({"name": format!("c{k}")}));
        assert_eq!(
            reply.status, 200,
            "invoke via controller{k}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["response"]["result"]["greeting"],
            format!("Hello, c{k}!")
        );
        // The record is readable through the other controller.
        let id = reply.body["activationId"].as_str().expect("an id");
        let other = c.eventually(
            1 - k,
            &format!("/api/v1/namespaces/_/activations/{id}"),
            Duration::from_secs(10),
        );
        assert_eq!(other.status, 200, "{}", other.text);
        assert_eq!(other.body["response"]["success"], true);
    }
    // Garbage on every subject is skipped and counted; nothing stops.
    let url = c.nats.url();
    c.block_on(async move {
        let client = async_nats::connect(url).await.expect("nats");
        for subject in ["whisk.invoker0", "whisk.creationAck0", "whisk.completed0"] {
            client
                .publish(subject, "{not json".into())
                .await
                .expect("publish");
            client
                .publish(subject, r#"{"unknown":"message"}"#.into())
                .await
                .expect("publish");
        }
        client.flush().await.expect("flush");
    });
    let reply = c.invoke(0, "hello", &json!({"name": "after garbage"}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let metrics = |base: &str| {
        reqwest::blocking::get(format!("{base}/metrics"))
            .expect("metrics")
            .text()
            .expect("text")
    };
    let invoker_metrics = metrics(&c.invokers[&0].base);
    assert!(
        invoker_metrics
            .contains("wasmwhisk_malformed_messages_total{subject=\"whisk.invoker0\"} 2"),
        "{invoker_metrics}"
    );
    let controller_metrics = metrics(&c.controllers[&0].base);
    for subject in ["whisk.creationAck0", "whisk.completed0"] {
        assert!(
            controller_metrics.contains(&format!(
                "wasmwhisk_malformed_messages_total{{subject=\"{subject}\"}} 2"
            )),
            "{controller_metrics}"
        );
    }
    // The invoker's admin API answers; the controller has no pool.
    let admin =
        std::fs::read_to_string(c.invokers[&0].data_dir.join("admin.auth")).expect("admin.auth");
    let (user, password) = standalone::split(admin.trim());
    let pool = reqwest::blocking::Client::new()
        .get(format!("{}/pool/count", c.invokers[&0].base))
        .basic_auth(user, Some(password))
        .send()
        .expect("pool/count");
    assert_eq!(pool.status().as_u16(), 200);

    let list = c.get(1, "/api/v1/namespaces/_/activations?limit=10");
    assert_eq!(list.status, 200);
    assert!(
        list.body.as_array().is_some_and(|a| a.len() >= 2),
        "{}",
        list.text
    );

    // The live sandbox's key exists while it pulls; after pause-grace the
    // sandbox pauses and its warmed key replaces it.
    assert!(!holders(&c, "hello").is_empty(), "a sandbox key exists");
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.keys("whisk/warmed/guest/guest/hello/").is_empty() {
        assert!(Instant::now() < deadline, "no warmed key appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        c.keys("whisk/namespace/guest/guest/hello/").is_empty(),
        "a paused sandbox no longer pulls"
    );

    // Deleting the action removes its sandboxes and their keys.
    let deleted = c.json(
        0,
        Method::DELETE,
        "/api/v1/namespaces/_/actions/hello",
        &json!({}),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !holders(&c, "hello").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the sandboxes' keys stayed after the delete"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Namespaces live in the shared store: `namespace … --nats` manages
    // them, and every controller authenticates the new key at once.
    let wsk = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmwhisk"))
            .args(args)
            .args(["--nats", &c.nats.url()])
            .env_remove("WASMWHISK_CONFIG")
            .output()
            .expect("wasmwhisk namespace");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let created = wsk(&["namespace", "create", "alice"]);
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("the new key")
        .trim()
        .to_string();
    let listed = wsk(&["namespace", "list"]);
    assert!(
        listed.contains("alice") && listed.contains("guest"),
        "{listed}"
    );
    let (user, password) = standalone::split(&key);
    for k in [0, 1] {
        let mine = reqwest::blocking::Client::new()
            .get(format!(
                "{}/api/v1/namespaces/_/actions",
                c.controllers[&k].base
            ))
            .basic_auth(&user, Some(&password))
            .send()
            .expect("list as alice");
        assert_eq!(mine.status().as_u16(), 200);
        let theirs = reqwest::blocking::Client::new()
            .get(format!(
                "{}/api/v1/namespaces/guest/actions",
                c.controllers[&k].base
            ))
            .basic_auth(&user, Some(&password))
            .send()
            .expect("list guest's as alice");
        assert_eq!(theirs.status().as_u16(), 403, "namespaces are isolated");
    }
    assert!(wsk(&["namespace", "delete", "alice"]).contains("ok: deleted namespace alice"));

    // A clean stop writes `down`, then the lease goes with every key.
    assert!(
        c.invokers
            .get_mut(&1)
            .expect("invoker1")
            .stop(Duration::from_secs(30))
    );
    assert!(c.keys("whisk/instance/invoker1/").is_empty());
    assert!(c.keys("whisk/invokers/1").is_empty());
}

#[test]
fn an_action_stays_home_and_a_warm_sandbox_wins_over_home() {
    let mut c = Cluster::start();
    c.start_invoker(0, Some(&invoker_config(1024, 10)));
    // An action homed at invoker 1 of 2 runs on invoker 0 while 0 is alone.
    let name = name_homed_at(1, 2, "wf");
    c.deploy_hello(0, &name, 128);
    assert_eq!(c.invoke(0, &name, &json!({})).status, 200);
    assert_eq!(holders(&c, &name), BTreeSet::from([0]));
    // Let it pause: a warmed key on invoker 0.
    let deadline = Instant::now() + Duration::from_secs(15);
    while c
        .keys(&format!("whisk/warmed/guest/guest/{name}/"))
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no warmed key appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.start_invoker(1, Some(&invoker_config(1024, 10)));
    // Warm first: the next invoke resumes the warm sandbox on invoker 0,
    // not a cold start at home (invoker 1).
    assert_eq!(c.invoke(0, &name, &json!({})).status, 200);
    assert_eq!(holders(&c, &name), BTreeSet::from([0]));

    // Home locality: cold actions land on their home invoker, every time.
    for home in [0usize, 1] {
        let name = name_homed_at(home, 2, &format!("home{home}-"));
        c.deploy_hello(0, &name, 128);
        for _ in 0..3 {
            assert_eq!(c.invoke(0, &name, &json!({})).status, 200);
        }
        assert_eq!(holders(&c, &name), BTreeSet::from([home as u32]), "{name}");
    }
}

#[test]
fn a_full_invoker_refuses_and_the_creation_goes_to_another() {
    let mut c = Cluster::start();
    // Invoker 0 has room for one 256 MB sandbox and reports its memory
    // only every 30 s, so its report says "free" while it is full.
    c.start_invoker(0, Some(&invoker_config_syncing(256, 10, 30)));
    c.start_invoker(1, Some(&invoker_config(1024, 10)));
    let name = name_homed_at(0, 2, "full");
    put(&c, &name, &slow_js(4000));

    let acks = c.nats.url();
    let refused = Arc::new(AtomicBool::new(false));
    let seen = refused.clone();
    let watcher = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            use futures_util::StreamExt;
            let client = async_nats::connect(acks).await.expect("nats");
            let mut sub = client
                .subscribe("whisk.creationAck0")
                .await
                .expect("subscribe");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
            while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
                let ack: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
                if ack["error"] == "ResourceNotEnoughError" {
                    seen.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
    });
    // The first activation fills invoker 0 (its home) ...
    let path = format!("/api/v1/namespaces/_/actions/{name}?blocking=true");
    let first = {
        let c0 = c.request(0, Method::POST, &path).json(&json!({"n": 1}));
        std::thread::spawn(move || cluster::send(c0))
    };
    std::thread::sleep(Duration::from_millis(2500));
    // ... and once the controller's own reservation has lapsed (2 s), the
    // second goes home again, is refused, and is rescheduled on invoker 1.
    let second = cluster::send(c.request(0, Method::POST, &path).json(&json!({"n": 2})));
    let first = first.join().expect("first invoke");
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 200, "{}", second.text);
    watcher.join().expect("watcher");
    assert!(
        refused.load(Ordering::SeqCst),
        "invoker 0 answered ResourceNotEnoughError"
    );
    assert_eq!(holders(&c, &name), BTreeSet::from([0, 1]));
}

/// Submits non-blocking invokes of `name` until `stop`, keeping every
/// accepted activation id; refusals (503 while a server is away) are counted.
fn load(
    c: &Cluster,
    name: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Vec<String>, usize)> {
    let path = format!("/api/v1/namespaces/_/actions/{name}");
    let request = c.request(0, Method::POST, &path);
    let template = request.try_clone().expect("clonable");
    drop(request);
    std::thread::spawn(move || {
        let mut accepted = Vec::new();
        let mut refused = 0;
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let req = template
                .try_clone()
                .expect("clonable")
                .json(&json!({"n": n}));
            match req.send() {
                Ok(r) if r.status().as_u16() == 202 => {
                    let body: Value = r.json().unwrap_or(Value::Null);
                    if let Some(id) = body["activationId"].as_str() {
                        accepted.push(id.to_string());
                    }
                }
                _ => refused += 1,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (accepted, refused)
    })
}

/// Waits until every id in `ids` has a record; the ids without one.
fn missing_records(c: &Cluster, ids: &[String], within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut left: Vec<String> = ids.to_vec();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|id| {
            c.get(0, &format!("/api/v1/namespaces/_/activations/{id}"))
                .status
                != 200
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    left
}

/// Stops the load; asserts it ran and that every activation it got
/// accepted ends with a record.
fn stop_load_and_check_records(
    c: &Cluster,
    stop: &AtomicBool,
    loader: std::thread::JoinHandle<(Vec<String>, usize)>,
) {
    stop.store(true, Ordering::SeqCst);
    let (accepted, refused) = loader.join().expect("loader");
    assert!(
        accepted.len() > 50,
        "the load ran: {} accepted, {refused} refused",
        accepted.len()
    );
    let missing = missing_records(c, &accepted, Duration::from_secs(40));
    assert!(
        missing.is_empty(),
        "{} of {} accepted activations have no record: {missing:?}",
        missing.len(),
        accepted.len()
    );
}

#[test]
fn killing_an_invoker_under_load_loses_no_activation() {
    let mut c = Cluster::start();
    c.start_invoker(0, Some(&invoker_config(1024, 3)));
    c.start_invoker(1, Some(&invoker_config(1024, 3)));
    put(&c, "work", &slow_js(50));
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(&c, "work", stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    // Kill whichever invoker runs the action (its home) while it works.
    let victim = *holders(&c, "work").iter().next().expect("a sandbox runs");
    c.invokers.get_mut(&victim).expect("victim").kill();
    let killed = Instant::now();
    // Its keys go within the lease TTL (3 s) plus etcd's expiry check.
    let prefix = format!("whisk/instance/invoker{victim}/");
    while !c.keys(&prefix).is_empty() || !c.keys(&format!("whisk/invokers/{victim}")).is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(8),
            "invoker{victim}'s keys outlived its lease"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));
    // JetStream gives the dead invoker's activations to the other one after
    // ack_wait (10 s): every accepted activation ends with a record.
    stop_load_and_check_records(&c, &stop, loader);
    let survivor = 1 - victim;
    assert!(
        holders(&c, "work").contains(&survivor),
        "the other invoker serves the action"
    );
}

#[test]
fn restarting_nats_then_etcd_under_load_loses_no_activation() {
    let mut c = Cluster::start();
    c.start_invoker(0, Some(&invoker_config(1024, 10)));
    put(&c, "work", &slow_js(20));
    assert_eq!(c.invoke(0, "work", &json!({})).status, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(&c, "work", stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    c.nats.kill();
    std::thread::sleep(Duration::from_secs(2));
    c.nats.restart();
    std::thread::sleep(Duration::from_secs(4));
    c.etcd.kill();
    std::thread::sleep(Duration::from_secs(3));
    c.etcd.restart();
    std::thread::sleep(Duration::from_secs(4));
    stop_load_and_check_records(&c, &stop, loader);
    // Recovered: the invoker is up again and serves.
    c.wait_status(0, "up", Duration::from_secs(20));
    assert_eq!(c.invoke(0, "work", &json!({})).status, 200);
}

#[test]
fn a_dead_controllers_queue_is_taken_over_by_another() {
    let mut c = Cluster::start();
    c.start_controller_with(1, Some("[etcd]\nlease-timeout = \"2 seconds\"\n"));
    // Controller 1 leads the action's queue, so controller 0 takes it over
    // only once controller 1's lease is gone.
    let name = name_led_by(1, 0, "orphan");
    put(&c, &name, &slow_js(1));
    // No invoker yet: the activations accepted by controller 1 wait.
    let path = &format!("/api/v1/namespaces/_/actions/{name}");
    let mut accepted = Vec::new();
    for n in 0..5 {
        let reply = cluster::send(c.request(1, Method::POST, path).json(&json!({"n": n})));
        assert_eq!(reply.status, 202, "{}", reply.text);
        accepted.push(
            reply.body["activationId"]
                .as_str()
                .expect("an id")
                .to_string(),
        );
    }
    // Controller 1 dies; controller 0 never saw these activations. Once
    // controller 1's lease is gone, controller 0 finds the queue, decides
    // for it, and the invoker that comes up runs them.
    c.controllers.get_mut(&1).expect("controller1").kill();
    c.start_invoker(0, Some(&invoker_config(1024, 10)));
    let missing = missing_records(&c, &accepted, Duration::from_secs(30));
    assert!(missing.is_empty(), "not run: {missing:?}");
    for id in &accepted {
        let record = c.get(0, &format!("/api/v1/namespaces/_/activations/{id}"));
        assert_eq!(record.body["response"]["success"], true, "{}", record.text);
    }
}

#[test]
fn an_invoker_killed_mid_activation_of_a_queue_led_elsewhere_loses_nothing() {
    let mut c = Cluster::start();
    c.start_controller(1);
    c.start_invoker(0, Some(&invoker_config(1024, 3)));
    c.start_invoker(1, Some(&invoker_config(1024, 3)));
    // Led by controller 1, homed at invoker 0, invoked through controller 0.
    let name = name_led_by(1, 0, "held");
    put(&c, &name, &slow_js(4000));
    let path = format!("/api/v1/namespaces/_/actions/{name}");
    let mut accepted = Vec::new();
    for n in 0..2 {
        let reply = cluster::send(c.request(0, Method::POST, &path).json(&json!({"n": n})));
        assert_eq!(reply.status, 202, "{}", reply.text);
        accepted.push(
            reply.body["activationId"]
                .as_str()
                .expect("an id")
                .to_string(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !holders(&c, &name).contains(&0) {
        assert!(Instant::now() < deadline, "nothing ran on invoker 0");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Invoker 0 dies holding the activations; no other invoke comes.
    c.invokers.get_mut(&0).expect("invoker0").kill();
    let missing = missing_records(&c, &accepted, Duration::from_secs(45));
    assert!(missing.is_empty(), "no record for {missing:?}");
    assert!(holders(&c, &name).contains(&1), "invoker 1 ran them");
}
