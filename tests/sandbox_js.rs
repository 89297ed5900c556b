//! The `js` kind: stem cells of the QuickJS runtime component, specialized
//! with an action's source. OpenWhisk's nodejs conventions, and bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use wasmwhisk::SandboxLimits;
use wasmwhisk::sandbox::{ResponseStatus, messages};

fn still_serves() {
    let js = js_runtime();
    let report = run_once(
        &js,
        &example("hello.js"),
        json!({"name": "again"}),
        &limits(5_000),
    );
    assert_eq!(report.response.result, json!({"greeting": "Hello, again!"}));
}

#[test]
fn hello_js_greets_and_stays_warm() {
    let js = js_runtime();
    let lim = limits(5_000);
    let mut sandbox = start(&js, &example("hello.js"), Vec::new(), &lim).expect("init");
    for name in ["World", "QuickJS"] {
        let report = sandbox.run(&context(), &object(json!({"name": name})), &lim);
        assert_eq!(
            report.response.result,
            json!({"greeting": format!("Hello, {name}!")})
        );
    }
    let report = sandbox.run(&context(), &object(json!({})), &lim);
    assert_eq!(
        report.response.result,
        json!({"greeting": "Hello, stranger!"})
    );
}

#[test]
fn invoice_js_builds_a_receipt_and_logs() {
    let js = js_runtime();
    let params = json!({
        "customer": "Ada",
        "coupon": "tenoff",
        "items": [{"sku": "A1", "qty": 2, "price": 9.5}, {"sku": "B2", "qty": 1, "price": 1}]
    });
    let report = run_once(&js, &example("invoice.js"), params, &limits(5_000));
    assert!(report.response.is_success(), "{:?}", report.response);
    assert_eq!(report.response.result["total"], "21.60");
    assert!(
        report.response.result["receipt"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Receipt for Ada")
    );
    assert_eq!(report.logs.len(), 1);
    assert_eq!(
        log_text(&report.logs[0]),
        "stdout: invoice for 2 line(s), total 21.60"
    );
    // No items: the action returns {error}, an application error.
    let report = run_once(&js, &example("invoice.js"), json!({}), &limits(5_000));
    assert_eq!(report.response.status, ResponseStatus::ApplicationError);
}

#[test]
fn async_main_and_console_streams() {
    let js = js_runtime();
    let code = r#"
        async function main(params) {
            console.log('out', 1, {a: 2});
            console.error('err');
            const v = await Promise.resolve(params.x * 2);
            return { v };
        }"#;
    let report = run_once(&js, code, json!({"x": 21}), &limits(5_000));
    assert_eq!(report.response.result, json!({"v": 42}));
    let texts: Vec<_> = report.logs.iter().map(|l| log_text(l)).collect();
    assert_eq!(texts, [r#"stdout: out 1 {"a":2}"#, "stderr: err"]);
}

#[test]
fn syntax_errors_and_missing_main_fail_init() {
    let js = js_runtime();
    let lim = limits(5_000);
    let failure = start(&js, "function main(params) { return {; }", Vec::new(), &lim)
        .expect_err("syntax error");
    assert_eq!(
        failure.response.status,
        ResponseStatus::ActionDeveloperError
    );
    assert!(
        failure
            .response
            .error_message()
            .unwrap_or_default()
            .contains("SyntaxError"),
        "{:?}",
        failure.response
    );
    let failure =
        start(&js, "function notmain() { return {}; }", Vec::new(), &lim).expect_err("no main");
    assert!(
        failure
            .response
            .error_message()
            .unwrap_or_default()
            .contains("main"),
        "{:?}",
        failure.response
    );
    still_serves();
}

#[test]
fn throws_and_non_objects_are_developer_errors() {
    let js = js_runtime();
    let lim = limits(5_000);
    let report = run_once(
        &js,
        "function main() { throw new Error('boom'); }",
        json!({}),
        &lim,
    );
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert!(
        report
            .response
            .error_message()
            .unwrap_or_default()
            .contains("boom")
    );
    let report = run_once(&js, "function main() { return 42; }", json!({}), &lim);
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    let report = run_once(&js, "function main() { return [1, 2]; }", json!({}), &lim);
    assert_eq!(report.response.status, ResponseStatus::Success);
    // Like OpenWhisk's nodejs runtime, returning nothing is an empty result.
    let report = run_once(&js, "function main() { }", json!({}), &lim);
    assert_eq!(report.response.result, json!({}));
    let report = run_once(
        &js,
        "async function main() { throw new Error('async boom'); }",
        json!({}),
        &lim,
    );
    assert!(
        report
            .response
            .error_message()
            .unwrap_or_default()
            .contains("async boom")
    );
    still_serves();
}

#[test]
fn an_infinite_js_loop_stops_at_the_deadline() {
    let js = js_runtime();
    let lim = limits(300);
    let mut sandbox =
        start(&js, "function main() { while (true) {} }", Vec::new(), &lim).expect("init");
    let started = Instant::now();
    let report = sandbox.run(&context(), &object(json!({})), &lim);
    let took = started.elapsed();
    assert_eq!(
        report.response.error_message(),
        Some("The action exceeded its time limits of 300 milliseconds.")
    );
    assert!(took < Duration::from_millis(1_100), "{took:?}");
    assert!(sandbox.is_retired());
    still_serves();
}

#[test]
fn a_js_memory_bomb_is_memory_exhausted() {
    let js = js_runtime();
    let lim = SandboxLimits {
        memory_mb: 128,
        ..limits(20_000)
    };
    let code = "function main() { const a = []; while (true) { a.push('x'.repeat(1 << 20) + a.length); } }";
    let report = run_once(&js, code, json!({}), &lim);
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(
        report.response.error_message(),
        Some(messages::MEMORY_EXHAUSTED)
    );
    still_serves();
}

#[test]
fn deep_js_recursion_is_a_developer_error() {
    let js = js_runtime();
    let code = "function f(n) { return f(n + 1) + 1; } function main() { return { v: f(0) }; }";
    let report = run_once(&js, code, json!({}), &limits(10_000));
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    still_serves();
}

#[test]
fn stem_cells_do_not_share_random_state_or_globals() {
    let js = js_runtime();
    let lim = limits(5_000);
    let code = "var seen = 0; function main() { seen += 1; return { r: Math.random(), seen }; }";
    let a = run_once(&js, code, json!({}), &lim);
    let b = run_once(&js, code, json!({}), &lim);
    assert_ne!(
        a.response.result["r"], b.response.result["r"],
        "Math.random is reseeded per stem cell"
    );
    assert_eq!(a.response.result["seen"], 1);
    assert_eq!(b.response.result["seen"], 1);
}

#[test]
fn ow_environment_is_visible() {
    let js = js_runtime();
    let lim = limits(5_000);
    let code = "function main() { return { id: process.env.__OW_ACTIVATION_ID, ns: process.env.__OW_NAMESPACE, init: process.env.FROM_INIT }; }";
    let mut sandbox =
        start(&js, code, vec![("FROM_INIT".into(), "yes".into())], &lim).expect("init");
    let ctx = context();
    let report = sandbox.run(&ctx, &object(json!({})), &lim);
    assert_eq!(report.response.result["id"], ctx.activation_id.as_str());
    assert_eq!(report.response.result["ns"], "guest");
    assert_eq!(report.response.result["init"], "yes");
}

#[test]
fn a_long_set_timeout_is_stopped_at_the_deadline() {
    let js = js_runtime();
    let lim = limits(300);
    let code =
        "async function main() { await new Promise(r => setTimeout(r, 3600 * 1000)); return {}; }";
    let mut sandbox = start(&js, code, Vec::new(), &lim).expect("init");
    let started = Instant::now();
    let report = sandbox.run(&context(), &object(json!({})), &lim);
    let took = started.elapsed();
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert!(
        took < Duration::from_millis(2_000),
        "slept past its deadline: {took:?}"
    );
    // A short timer inside the limit resolves.
    let code =
        "async function main() { await new Promise(r => setTimeout(r, 20)); return { ok: true }; }";
    let report = run_once(&js, code, json!({}), &lim);
    assert_eq!(report.response.result, json!({"ok": true}));
    still_serves();
}
