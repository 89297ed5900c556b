//! Compiled `wasm` actions: the examples, and every kind of bad input a
//! component can bring. After each failure the engine keeps serving: the next
//! activation works.
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
use wasmwhisk::engine::PrepareError;
use wasmwhisk::engine::world::WorldError;
use wasmwhisk::sandbox::{Lifecycle, ResponseStatus, messages};

/// The proof that the engine still serves: a fresh hello activation.
fn still_serves() {
    let hello = prepare("hello_rust");
    let report = run_once(&hello, "", json!({"name": "again"}), &limits(5_000));
    assert_eq!(report.response.result, json!({"greeting": "Hello, again!"}));
}

#[test]
fn hello_rust_greets_and_stays_warm() {
    let hello = prepare("hello_rust");
    let lim = limits(5_000);
    let mut sandbox = start(&hello, "", Vec::new(), &lim).expect("init");
    for name in ["World", "wasmwhisk"] {
        let report = sandbox.run(&context(), &object(json!({"name": name})), &lim);
        assert_eq!(report.response.status, ResponseStatus::Success);
        assert_eq!(
            report.response.result,
            json!({"greeting": format!("Hello, {name}!")})
        );
    }
    assert_eq!(sandbox.lifecycle(), Lifecycle::Initialized);
}

#[test]
fn stats_rust_computes_and_application_errors_keep_the_sandbox() {
    let stats = prepare("stats_rust");
    let lim = limits(5_000);
    let mut sandbox = start(&stats, "", Vec::new(), &lim).expect("init");
    let report = sandbox.run(&context(), &object(json!({"values": [4, 1, 3, 2]})), &lim);
    assert_eq!(report.response.status, ResponseStatus::Success);
    assert_eq!(report.response.result["median"], 2.5);
    assert_eq!(report.response.result["max"], 4.0);
    assert!(log_text(&report.logs[0]).starts_with("stderr: computed statistics over 4 values"));

    let report = sandbox.run(&context(), &object(json!({"values": "nope"})), &lim);
    assert_eq!(report.response.status, ResponseStatus::ApplicationError);
    assert_eq!(
        report.response.result,
        json!({"error": "parameter 'values' must be an array of numbers"})
    );
    assert!(
        !sandbox.is_retired(),
        "an application error keeps the sandbox warm"
    );
    let report = sandbox.run(&context(), &object(json!({"values": [1]})), &lim);
    assert!(report.response.is_success());
}

#[test]
fn state_survives_between_warm_runs() {
    let guest = prepare("misbehave");
    let lim = limits(5_000);
    let mut sandbox = start(&guest, "", Vec::new(), &lim).expect("init");
    for expected in 1..=3 {
        let report = sandbox.run(&context(), &object(json!({})), &lim);
        assert_eq!(report.response.result["count"], expected);
    }
}

#[test]
fn invalid_bytes_are_rejected_with_a_clear_error() {
    let engine = engine();
    for (bytes, expect) in [
        (
            b"definitely not wasm".to_vec(),
            "not a WebAssembly component",
        ),
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (
            b"\0asm\x0d\0\x01\0garbage".to_vec(),
            "invalid WebAssembly component",
        ),
        (Vec::new(), "not a WebAssembly component"),
    ] {
        match engine.prepare_wasm(&bytes) {
            Err(e @ PrepareError::InvalidWasm(_)) => {
                assert!(e.to_string().contains(expect), "{e}")
            }
            other => panic!("expected InvalidWasm, got {other:?}"),
        }
    }
    // A truncated real component.
    let hello = guest("hello_rust");
    assert!(matches!(
        engine.prepare_wasm(&hello[..hello.len() / 2]),
        Err(PrepareError::InvalidWasm(_))
    ));
    still_serves();
}

#[test]
fn a_component_that_is_not_an_action_is_rejected() {
    match engine().prepare_wasm(&guest("not-an-action")) {
        Err(PrepareError::World(WorldError::NotAnAction(detail))) => {
            assert!(
                detail.contains("init") || detail.contains("run"),
                "{detail}"
            )
        }
        other => panic!("expected NotAnAction, got {other:?}"),
    }
    still_serves();
}

#[test]
fn imports_beyond_the_grants_are_refused_by_name() {
    match engine().prepare_wasm(&guest("sockets")) {
        Err(PrepareError::World(WorldError::ImportNotGranted { import })) => {
            assert!(import.starts_with("wasi:sockets/"), "{import}")
        }
        other => panic!("expected ImportNotGranted, got {other:?}"),
    }
    still_serves();
}

#[test]
fn the_filesystem_has_no_directories() {
    let guest = prepare("misbehave");
    let report = run_once(
        &guest,
        "",
        json!({"do": "read-file", "path": "/etc/passwd"}),
        &limits(5_000),
    );
    assert!(
        report.response.result.get("denied").is_some(),
        "{:?}",
        report.response
    );
}

#[test]
fn init_failures_are_developer_errors_and_retire() {
    let guest = prepare("misbehave");
    let lim = limits(5_000);
    let failure = start(&guest, "", vec![("FAIL_INIT".into(), "yes".into())], &lim)
        .expect_err("init must fail");
    assert_eq!(
        failure.response.status,
        ResponseStatus::ActionDeveloperError
    );
    assert_eq!(
        failure.response.error_message(),
        Some("init failed on purpose: yes")
    );
    let failure = start(&guest, "", vec![("TRAP_INIT".into(), "1".into())], &lim)
        .expect_err("init must trap");
    assert_eq!(
        failure.response.error_message(),
        Some(messages::ABNORMAL_INIT)
    );
    assert!(
        failure
            .logs
            .iter()
            .any(|l| l.contains("init trapped on purpose"))
    );
    still_serves();
}

#[test]
fn a_trap_is_an_abnormal_run_with_the_panic_in_the_logs() {
    let guest = prepare("misbehave");
    let lim = limits(5_000);
    let mut sandbox = start(&guest, "", Vec::new(), &lim).expect("init");
    let report = sandbox.run(&context(), &object(json!({"do": "trap"})), &lim);
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(
        report.response.error_message(),
        Some(messages::ABNORMAL_RUN)
    );
    assert!(report.logs.iter().any(|l| l.contains("trapped on purpose")));
    assert!(
        report
            .logs
            .iter()
            .any(|l| log_text(l).starts_with("stderr: wasm trap:"))
    );
    assert!(sandbox.is_retired());
    let report = sandbox.run(&context(), &object(json!({})), &lim);
    assert_eq!(report.response.status, ResponseStatus::WhiskInternalError);
    still_serves();
}

#[test]
fn an_infinite_loop_stops_at_the_deadline() {
    let guest = prepare("misbehave");
    let lim = limits(200);
    let mut sandbox = start(&guest, "", Vec::new(), &lim).expect("init");
    let started = Instant::now();
    let report = sandbox.run(&context(), &object(json!({"do": "loop"})), &lim);
    let took = started.elapsed();
    assert_eq!(
        report.response.error_message(),
        Some("The action exceeded its time limits of 200 milliseconds.")
    );
    assert!(took >= Duration::from_millis(200), "{took:?}");
    // Generous bound: this machine is shared; the benchmark shows the real overshoot.
    assert!(
        took < Duration::from_millis(1_000),
        "stopped late: {took:?}"
    );
    assert!(sandbox.is_retired());
    still_serves();
}

#[test]
fn growing_memory_beyond_the_limit_is_memory_exhausted() {
    let guest = prepare("misbehave");
    let lim = wasmwhisk::SandboxLimits {
        memory_mb: 128,
        ..limits(10_000)
    };
    let report = run_once(&guest, "", json!({"do": "grow"}), &lim);
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(
        report.response.error_message(),
        Some(messages::MEMORY_EXHAUSTED)
    );
    still_serves();
}

#[test]
fn deep_recursion_traps_cleanly() {
    let guest = prepare("misbehave");
    let report = run_once(&guest, "", json!({"do": "recurse"}), &limits(10_000));
    assert_eq!(report.response.status, ResponseStatus::ActionDeveloperError);
    assert!(
        report.logs.iter().any(|l| l.contains("wasm trap")),
        "{:?}",
        report.logs
    );
    still_serves();
}

#[test]
fn results_must_be_json_objects_or_arrays() {
    let guest = prepare("misbehave");
    let lim = limits(5_000);
    for (text, status) in [
        ("not json at all", ResponseStatus::ActionDeveloperError),
        ("42", ResponseStatus::ActionDeveloperError),
        ("[1,2,3]", ResponseStatus::Success),
        (r#"{"error":"app","x":1}"#, ResponseStatus::ApplicationError),
    ] {
        let report = run_once(&guest, "", json!({"do": "raw", "text": text}), &lim);
        assert_eq!(report.response.status, status, "{text}");
    }
    let report = run_once(&guest, "", json!({"do": "raw", "text": "nope"}), &lim);
    assert_eq!(
        report.response.error_message(),
        Some("The action did not produce a valid JSON or JSON Array response: nope")
    );
    let report = run_once(&guest, "", json!({"do": "fail", "message": "bad"}), &lim);
    assert_eq!(report.response.error_message(), Some("bad"));
}

#[test]
fn logs_beyond_the_limit_are_truncated_with_openwhisks_notice() {
    let guest = prepare("misbehave");
    let lim = wasmwhisk::SandboxLimits {
        logs_mb: 1,
        ..limits(10_000)
    };
    let report = run_once(
        &guest,
        "",
        json!({"do": "log", "lines": 20_000, "width": 100}),
        &lim,
    );
    assert!(report.response.is_success(), "{:?}", report.response);
    let last = report.logs.last().map(|l| log_text(l)).unwrap_or_default();
    assert_eq!(
        last,
        "stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."
    );
    let bytes: usize = report.logs.iter().map(|l| log_text(l).len()).sum();
    assert!(bytes < 1_200_000, "{bytes}");
}

#[test]
fn huge_params_and_oversized_results() {
    let guest = prepare("misbehave");
    let lim = limits(10_000);
    let big = "x".repeat(3 << 20);
    // The default action echoes its params: a 3 MB result exceeds the 1 MB payload limit.
    let report = run_once(&guest, "", json!({"big": big}), &lim);
    assert_eq!(report.response.status, ResponseStatus::ApplicationError);
    assert!(
        report
            .response
            .error_message()
            .unwrap_or_default()
            .starts_with("The action produced a response that exceeded the allowed length:")
    );
    still_serves();
}

#[test]
fn init_env_is_visible_to_the_action() {
    let guest = prepare("misbehave");
    let lim = limits(5_000);
    let mut sandbox = start(
        &guest,
        "",
        vec![("__OW_NAMESPACE".into(), "guest".into())],
        &lim,
    )
    .expect("init");
    let ctx = context();
    let report = sandbox.run(&ctx, &object(json!({"do": "env"})), &lim);
    assert_eq!(report.response.result["env"]["__OW_NAMESPACE"], "guest");
    assert_eq!(
        report.response.result["activation"],
        ctx.activation_id.as_str()
    );
}

#[test]
fn a_memory_bomb_at_instantiation_is_the_actions_fault() {
    use wasmwhisk::sandbox::SandboxError;
    let big = prepare("bigmem");
    assert!(big.initial_memory_bytes >= 300 << 20);
    let engine = engine();
    // Under its 256 MB limit it cannot even start: a developer error.
    match engine.instantiate(&big, 256) {
        Err(e @ SandboxError::MemoryLimit { .. }) => {
            assert_eq!(
                e.response().error_message(),
                Some(messages::MEMORY_EXHAUSTED)
            );
            assert_eq!(e.response().status, ResponseStatus::ActionDeveloperError);
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    // With 512 MB it runs.
    let lim = wasmwhisk::SandboxLimits {
        memory_mb: 512,
        ..limits(5_000)
    };
    let report = run_once(&big, "", json!({"i": 7}), &lim);
    assert_eq!(report.response.result, json!({"byte": 0}));
    still_serves();
}

#[test]
fn a_component_larger_than_any_sandbox_is_refused_at_deploy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = wasmwhisk::Engine::new(
        wasmwhisk::EngineConfig {
            max_memory_mb: 256,
            ..wasmwhisk::EngineConfig::small()
        },
        dir.path(),
    )
    .expect("engine");
    match small.prepare_wasm(&guest("bigmem")) {
        Err(e @ PrepareError::Limits(_)) => {
            assert!(e.to_string().contains("at most 256 MiB"), "{e}")
        }
        other => panic!("expected Limits, got {other:?}"),
    }
}

#[test]
fn concurrent_activations_on_many_threads_share_one_engine() {
    // Eight threads at once, each mixing warm runs, a timeout and a trap: the
    // epoch ticker (counting runs in flight) and the pool serve them all.
    let guest = prepare("misbehave");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let guest = guest.clone();
            std::thread::spawn(move || {
                let lim = limits(300);
                let mut sandbox = start(&guest, "", Vec::new(), &lim).expect("init");
                for i in 0..50 {
                    let report = sandbox.run(&context(), &object(json!({"t": t, "i": i})), &lim);
                    assert_eq!(report.response.result["count"], i + 1);
                }
                let spin = run_once(&guest, "", json!({"do": "loop"}), &lim);
                assert_eq!(
                    spin.response.error_message(),
                    Some("The action exceeded its time limits of 300 milliseconds.")
                );
                let trap = run_once(&guest, "", json!({"do": "trap"}), &lim);
                assert_eq!(trap.response.error_message(), Some(messages::ABNORMAL_RUN));
                let report = sandbox.run(&context(), &object(json!({})), &lim);
                assert_eq!(
                    report.response.result["count"], 51,
                    "the warm sandbox kept its state"
                );
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    still_serves();
}

#[test]
fn a_sleep_past_the_deadline_is_stopped_at_the_deadline() {
    let guest = prepare("misbehave");
    let lim = limits(200);
    let mut sandbox = start(&guest, "", Vec::new(), &lim).expect("init");
    let started = Instant::now();
    let report = sandbox.run(
        &context(),
        &object(json!({"do": "sleep", "ms": 5_000})),
        &lim,
    );
    let took = started.elapsed();
    assert_eq!(
        report.response.error_message(),
        Some("The action exceeded its time limits of 200 milliseconds.")
    );
    assert!(
        took < Duration::from_millis(2_000),
        "slept past its deadline: {took:?}"
    );
    // A short sleep inside the limit still works.
    let mut sandbox = start(&guest, "", Vec::new(), &lim).expect("init");
    let report = sandbox.run(&context(), &object(json!({"do": "sleep", "ms": 20})), &lim);
    assert_eq!(report.response.result, json!({"slept": 20}));
    still_serves();
}

/// A component whose one core module has `section`'s content.
fn component_with_module(module: wasm_encoder::Module) -> Vec<u8> {
    let mut component = wasm_encoder::Component::new();
    component.section(&wasm_encoder::ModuleSection(&module));
    component.finish()
}

#[test]
fn components_using_disabled_proposals_are_refused_and_the_engine_serves_on() {
    use wasm_encoder::{
        FieldType, MemorySection, MemoryType, Module, StorageType, TypeSection, ValType,
    };
    // GC types (a struct), which a host built without Wasmtime's `gc`
    // feature once aborted on (GHSA-rc4p-x33f-vpr2, fixed in 48.0.9).
    let mut gc = Module::new();
    let mut types = TypeSection::new();
    types.ty().struct_(vec![FieldType {
        element_type: StorageType::Val(ValType::I32),
        mutable: true,
    }]);
    gc.section(&types);
    // A shared memory (threads).
    let mut threads = Module::new();
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: Some(1),
        memory64: false,
        shared: true,
        page_size_log2: None,
    });
    threads.section(&memories);
    let engine = engine();
    for (name, module) in [("gc", gc), ("threads", threads)] {
        match engine.prepare_wasm(&component_with_module(module)) {
            Err(e @ PrepareError::InvalidWasm(_)) => {
                let message = e.to_string();
                assert!(
                    message.contains("invalid WebAssembly component"),
                    "{name}: {message}"
                );
                eprintln!("{name}: {message}");
            }
            other => panic!("{name}: expected InvalidWasm, got {other:?}"),
        }
        still_serves();
    }
}
