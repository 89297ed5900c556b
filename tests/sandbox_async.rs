//! Sandboxes driven from async code: each `init`/`run` goes to Tokio's
//! blocking pool, so a spinning action never stalls the executor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::*;
use serde_json::json;
use wasmwhisk::sandbox::AsyncSandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_action_does_not_stall_other_tasks() {
    let guest = prepare("misbehave");
    let engine = engine();
    let lim = limits(5_000);
    let mut spinner = AsyncSandbox::new(engine.instantiate(&guest, 256).expect("instantiate"));
    spinner.init(Default::default(), lim).await.expect("init");
    let spin = tokio::spawn(async move {
        spinner
            .run(context(), object(json!({"do": "loop"})), lim)
            .await
    });
    // Meanwhile, warm activations (with logs: WASI's sync bindings run on the
    // blocking thread) keep flowing on the same executor.
    let mut warm = AsyncSandbox::new(engine.instantiate(&guest, 256).expect("instantiate"));
    warm.init(Default::default(), lim).await.expect("init");
    for i in 1..=20 {
        let report = warm
            .run(context(), object(json!({"do": "log", "lines": 2})), lim)
            .await;
        assert!(report.response.is_success(), "{:?}", report.response);
        assert_eq!(report.logs.len(), 4, "run {i}");
    }
    assert!(
        !spin.is_finished(),
        "the warm activations ran while the spinner was still spinning"
    );
    let report = spin.await.expect("join");
    assert_eq!(
        report.response.error_message(),
        Some("The action exceeded its time limits of 5000 milliseconds.")
    );
    assert!(!warm.is_retired());
}
