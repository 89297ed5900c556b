//! Records and acks checked against the JSON OpenWhisk writes (docs/openwhisk.md
//! §3.4, §6.5), from the protocol's own fixtures.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;
use wasmwhisk_protocol::ByteSize;
use wasmwhisk_sandbox::messages;

use wasmwhisk_protocol::fixtures;

use fixtures::{activation_message_json, invoker_id_json, nodejs_metadata_json, transid_json};

/// The fixtures' transaction start, epoch ms.
const T0: u64 = 1_700_000_000_000;
const ID: &str = "0123456789abcdef0123456789abcdef";
const CAUSE: &str = "fedcba9876543210fedcba9876543210";
const MINUTE: Duration = Duration::from_secs(60);

fn at(ms_after_t0: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0 + ms_after_t0)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn message() -> ActivationMessage {
    serde_json::from_value(activation_message_json()).expect("message")
}

fn non_blocking() -> ActivationMessage {
    ActivationMessage {
        blocking: false,
        ..message()
    }
}

fn action() -> WhiskActionMetaData {
    serde_json::from_value(nodejs_metadata_json()).expect("action")
}

fn invoker() -> InvokerInstanceId {
    InvokerInstanceId::new(0, ByteSize::from_mb(2048))
}

fn greeting() -> sandbox::RunResponse {
    sandbox::RunResponse::success(json!({"greeting": "hi world"}))
}

fn keys(a: &WhiskActivation) -> Vec<&str> {
    a.annotations.0.iter().map(|p| p.key.as_str()).collect()
}

/// A record of a successful cold start (init 30 ms, run 20 ms).
fn cold_record(msg: &ActivationMessage) -> WhiskActivation {
    let times = RunTimes::cold(at(12), ms(30), at(130), ms(20));
    build_activation(
        msg,
        &action(),
        &greeting(),
        vec!["2023-11-14T22:13:20.120Z stdout: hello".into()],
        &times,
        MINUTE,
    )
}

#[test]
fn cold_record_is_openwhisks_json() {
    let record = cold_record(&message());
    let mut expected = fixtures::whisk_activation_json();
    // The length of `{"greeting":"hi world"}`.
    expected["response"]["size"] = json!(23);
    assert_eq!(serde_json::to_value(&record).expect("writes"), expected);
    // start = run start − init time, so the duration includes init.
    assert_eq!((record.start, record.end), (T0 + 100, T0 + 150));
    assert_eq!(record.duration, Some(50));
}

#[test]
fn warm_record_has_no_init_time_and_waits_until_the_run() {
    let times = RunTimes::warm(at(40), ms(25));
    let record = build_activation(&message(), &action(), &greeting(), vec![], &times, MINUTE);
    assert_eq!(
        keys(&record),
        ["path", "waitTime", "kind", "timeout", "limits"]
    );
    assert_eq!(
        (record.start, record.end, record.duration),
        (T0 + 40, T0 + 65, Some(25))
    );
    assert_eq!(record.annotation("waitTime"), Some(&json!(40)));
    assert!(record.logs.is_empty());
}

#[test]
fn wait_time_ends_at_init_start_and_saturates_at_zero() {
    let times = RunTimes::cold(at(7), ms(3), at(10), ms(1));
    let record = build_activation(&message(), &action(), &greeting(), vec![], &times, MINUTE);
    assert_eq!(record.annotation("waitTime"), Some(&json!(7)));
    assert_eq!(record.annotation("initTime"), Some(&json!(3)));

    // A controller clock ahead of ours: 0, not a negative wait.
    let mut msg = message();
    msg.transid.start_ms = T0 + 1_000;
    let record = build_activation(&msg, &action(), &greeting(), vec![], &times, MINUTE);
    assert_eq!(record.annotation("waitTime"), Some(&json!(0)));
}

#[test]
fn init_time_is_whole_milliseconds_and_start_follows_it() {
    // 30.9 ms of init: initTime 30, start = run start − 30 ms.
    let times = RunTimes::cold(at(0), Duration::from_micros(30_900), at(31), ms(9));
    let record = build_activation(&message(), &action(), &greeting(), vec![], &times, MINUTE);
    assert_eq!(record.annotation("initTime"), Some(&json!(30)));
    assert_eq!(
        (record.start, record.end, record.duration),
        (T0 + 1, T0 + 40, Some(39))
    );
}

#[test]
fn timeout_annotation_is_the_run_reaching_the_limit() {
    let limit = ms(100);
    for (run, timed_out) in [(99, false), (100, true), (130, true)] {
        let times = RunTimes::cold(at(0), ms(5), at(5), ms(run));
        let response = sandbox::RunResponse::developer_error(messages::timed_out(limit));
        let record = build_activation(&message(), &action(), &response, vec![], &times, limit);
        assert_eq!(
            record.annotation("timeout"),
            Some(&json!(timed_out)),
            "{run} ms"
        );
    }
}

#[test]
fn failed_init_spans_the_init_and_may_time_out() {
    let limit = ms(100);
    let response = sandbox::RunResponse::developer_error(messages::init_timed_out(limit));
    let times = RunTimes::init_failed(at(10), ms(100));
    let record = build_activation(&message(), &action(), &response, vec![], &times, limit);
    assert_eq!(
        (record.start, record.end, record.duration),
        (T0 + 10, T0 + 110, Some(100))
    );
    assert_eq!(record.annotation("timeout"), Some(&json!(true)));
    assert_eq!(record.annotation("initTime"), Some(&json!(100)));
    assert_eq!(record.annotation("waitTime"), Some(&json!(10)));
    assert_eq!(record.response.status_code, StatusCode::DeveloperError);

    // An init that failed early did not time out.
    let times = RunTimes::init_failed(at(10), ms(3));
    let response = sandbox::RunResponse::developer_error(messages::ABNORMAL_INIT);
    let record = build_activation(&message(), &action(), &response, vec![], &times, limit);
    assert_eq!(record.annotation("timeout"), Some(&json!(false)));
}

#[test]
fn sequence_components_are_caused_by_a_sequence() {
    let mut msg = message();
    msg.cause = Some(CAUSE.parse().expect("id"));
    let record = cold_record(&msg);
    assert_eq!(record.cause.as_ref().map(|c| c.as_str()), Some(CAUSE));
    assert_eq!(record.annotation("causedBy"), Some(&json!("sequence")));
    assert_eq!(keys(&record)[0], "causedBy");
    let written = serde_json::to_value(&record).expect("writes");
    assert_eq!(written["cause"], json!(CAUSE));
}

#[test]
fn binding_comes_from_the_message_or_the_action() {
    let binding: EntityPath = "other/bound".parse().expect("path");
    let mut msg = message();
    msg.action = msg.action.clone().with_binding(Some(binding.clone()));
    let record = cold_record(&msg);
    assert_eq!(record.annotation("binding"), Some(&json!("other/bound")));

    let mut meta = action();
    meta.binding = Some(binding);
    let times = RunTimes::warm(at(1), ms(1));
    let record = build_activation(&message(), &meta, &greeting(), vec![], &times, MINUTE);
    assert_eq!(record.annotation("binding"), Some(&json!("other/bound")));
}

#[test]
fn annotations_are_in_openwhisks_order() {
    let mut msg = message();
    msg.cause = Some(CAUSE.parse().expect("id"));
    msg.action = msg
        .action
        .clone()
        .with_binding(Some("other/bound".parse().expect("path")));
    assert_eq!(
        keys(&cold_record(&msg)),
        [
            "causedBy", "binding", "path", "waitTime", "kind", "timeout", "limits", "initTime"
        ]
    );
}

#[test]
fn limits_annotation_carries_instances_when_capped() {
    let mut meta = action();
    meta.limits = ActionLimits {
        timeout: 1_000,
        memory: 128,
        logs: 0,
        concurrency: 4,
        instances: Some(2),
    };
    let times = RunTimes::warm(at(1), ms(1));
    let record = build_activation(&message(), &meta, &greeting(), vec![], &times, ms(1_000));
    assert_eq!(
        record.annotation("limits"),
        Some(
            &json!({"timeout": 1000, "memory": 128, "logs": 0, "concurrency": 4,
                     "instances": 2})
        )
    );
}

#[test]
fn record_is_in_the_invoking_namespace_with_the_actions_path() {
    // alice invokes guest's shared action.
    let mut msg = message();
    msg.user.namespace.name = "alice".into();
    msg.user.subject = "alice-subject".into();
    let mut meta = action();
    meta.namespace = "guest/pkg".parse().expect("path");
    let times = RunTimes::warm(at(1), ms(1));
    let record = build_activation(&msg, &meta, &greeting(), vec![], &times, MINUTE);
    assert_eq!(record.namespace.to_string(), "alice");
    assert_eq!(record.subject, "alice-subject");
    assert_eq!(record.annotation("path"), Some(&json!("guest/pkg/hello")));
    assert!(!record.publish);

    // A namespace name that is no entity name falls back to the action's.
    msg.user.namespace.name = "no/slashes".into();
    let record = build_activation(&msg, &meta, &greeting(), vec![], &times, MINUTE);
    assert_eq!(record.namespace.to_string(), "guest");
}

#[test]
fn each_status_converts_with_its_code_and_size() {
    let cases: [(sandbox::RunResponse, StatusCode, Option<u64>); 5] = [
        (greeting(), StatusCode::Success, Some(23)),
        (
            sandbox::RunResponse::application_error(json!("nope")),
            StatusCode::ApplicationError,
            Some(16),
        ),
        (
            sandbox::RunResponse::from_run_result(&format!("[\"{}\"]", "x".repeat(98)), 50),
            StatusCode::ApplicationError,
            Some(102),
        ),
        (
            sandbox::RunResponse::developer_error(messages::ABNORMAL_RUN),
            StatusCode::DeveloperError,
            None,
        ),
        (
            sandbox::RunResponse::whisk_error("host failed"),
            StatusCode::WhiskError,
            None,
        ),
    ];
    for (response, code, size) in cases {
        let converted = record_response(&response);
        assert_eq!(converted.status_code, code, "{response:?}");
        assert_eq!(converted.size, size, "{response:?}");
        assert_eq!(converted.result.as_ref(), Some(&response.result));
        assert_eq!(status_code(response.status), code);
    }
    let written = serde_json::to_value(record_response(&sandbox::RunResponse::whisk_error(
        "host failed",
    )))
    .expect("writes");
    assert_eq!(
        written,
        json!({"statusCode": 3, "result": {"error": "host failed"}})
    );
}

#[test]
fn fallback_record_has_path_kind_and_no_time() {
    let response = ActivationResponse::application_error(
        "Action could not be found or may have been deleted.",
    );
    let record = fallback_activation_at(&message(), Some("nodejs:20"), response, at(500));
    assert_eq!(
        serde_json::to_value(&record).expect("writes"),
        json!({
            "namespace": "guest", "name": "hello", "subject": "guest", "activationId": ID,
            "start": T0 + 500, "end": T0 + 500,
            "response": {"statusCode": 1, "result":
                {"error": "Action could not be found or may have been deleted."}},
            "logs": [], "version": "0.0.1", "publish": false,
            "annotations": [{"key": "path", "value": "guest/hello"},
                            {"key": "kind", "value": "nodejs:20"}],
            "duration": 0
        })
    );
}

#[test]
fn fallback_record_without_kind_and_as_a_sequence_component() {
    let mut msg = message();
    msg.cause = Some(CAUSE.parse().expect("id"));
    let record = fallback_activation(
        &msg,
        None,
        ActivationResponse::whisk_error("Action could not be fetched."),
    );
    assert_eq!(keys(&record), ["path", "causedBy"]);
    assert_eq!(record.start, record.end);
    assert_eq!(record.duration, Some(0));
    assert!(record.start > T0);

    let record = fallback_activation(&msg, Some("wasm"), ActivationResponse::success(None));
    assert_eq!(keys(&record), ["path", "kind", "causedBy"]);
}

#[test]
fn logs_are_collected_unless_the_limit_is_zero() {
    let mut meta = action();
    assert!(logs_to_be_collected(&meta));
    meta.limits.logs = 0;
    assert!(!logs_to_be_collected(&meta));
}

fn transid() -> Value {
    transid_json()
}

/// The record as acks carry it: without logs.
fn record_json_without_logs(record: &WhiskActivation) -> Value {
    let mut v = serde_json::to_value(record).expect("writes");
    v["logs"] = json!([]);
    v
}

fn completion_json(system_error: bool) -> Value {
    json!({"transid": transid(), "activationId": ID, "isSystemError": system_error,
           "instance": invoker_id_json()})
}

#[test]
fn blocking_with_logs_sends_result_then_completion() {
    let record = cold_record(&message());
    let acks = completion_acks(&record, &message(), &invoker(), true);
    let written: Vec<Value> = acks
        .iter()
        .map(|a| serde_json::to_value(a).expect("writes"))
        .collect();
    assert_eq!(
        written,
        [
            json!({"transid": transid(), "response": record_json_without_logs(&record)}),
            completion_json(false),
        ]
    );
    assert!(matches!(acks[0], AcknowledgementMessage::Result(_)));
    assert!(matches!(acks[1], AcknowledgementMessage::Completion(_)));
}

#[test]
fn blocking_without_logs_sends_one_combined_ack() {
    let record = cold_record(&message());
    let acks = completion_acks(&record, &message(), &invoker(), false);
    assert_eq!(acks.len(), 1);
    assert_eq!(
        serde_json::to_value(&acks[0]).expect("writes"),
        json!({"transid": transid(), "response": record_json_without_logs(&record),
               "isSystemError": false, "instance": invoker_id_json()})
    );
}

#[test]
fn non_blocking_sends_only_a_completion_either_way() {
    let record = cold_record(&non_blocking());
    for logs in [true, false] {
        let acks = completion_acks(&record, &non_blocking(), &invoker(), logs);
        assert_eq!(acks.len(), 1);
        assert_eq!(
            serde_json::to_value(&acks[0]).expect("writes"),
            completion_json(false)
        );
        // Nothing left to shrink: no activation crosses the bus.
        assert!(acks[0].result().is_none());
    }
}

#[test]
fn whisk_errors_are_system_errors_in_every_ack() {
    let times = RunTimes::warm(at(1), ms(1));
    let response = sandbox::RunResponse::whisk_error("host failed");
    let record = build_activation(&message(), &action(), &response, vec![], &times, MINUTE);
    for (msg, logs) in [
        (message(), true),
        (message(), false),
        (non_blocking(), true),
    ] {
        for ack in completion_acks(&record, &msg, &invoker(), logs) {
            assert_eq!(ack.is_system_error(), Some(true), "{ack:?}");
        }
    }
    // Application and developer errors are not.
    let response = sandbox::RunResponse::developer_error(messages::ABNORMAL_RUN);
    let record = build_activation(&message(), &action(), &response, vec![], &times, MINUTE);
    let acks = completion_acks(&record, &message(), &invoker(), false);
    assert_eq!(acks[0].is_system_error(), Some(false));
}

#[test]
fn acks_read_back_as_the_same_shapes() {
    let record = cold_record(&message());
    for logs in [true, false] {
        for ack in completion_acks(&record, &message(), &invoker(), logs) {
            let text = serde_json::to_string(&ack).expect("writes");
            let read: AcknowledgementMessage = serde_json::from_str(&text).expect("reads");
            assert_eq!(read, ack);
        }
    }
}
