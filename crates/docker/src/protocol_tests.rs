use super::*;

const MB: usize = 1 << 20;

fn init_json(args: &InitArgs) -> Value {
    serde_json::from_slice(&init_body(args)).expect("the init body is JSON")
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.to_string(),
        truncated: None,
    }
}

fn response(verdict: RunVerdict) -> RunResponse {
    match verdict {
        RunVerdict::Response(r) => r,
        RunVerdict::Reschedule => panic!("unexpected reschedule"),
    }
}

#[test]
fn init_body_has_openwhisk_fields_and_base64_for_binary_code() {
    let args = InitArgs {
        name: "act".into(),
        main: String::new(),
        code: vec![0x7f, b'E', b'L', b'F'],
        binary: true,
        env: vec![("__OW_NAMESPACE".into(), "guest".into())],
    };
    let body = init_json(&args);
    assert_eq!(
        body,
        json!({"value": {"name": "act", "main": "main", "binary": true, "code": "f0VMRg==",
                         "env": {"__OW_NAMESPACE": "guest"}}})
    );
    let text = InitArgs {
        name: "a".into(),
        main: "run".into(),
        code: b"#!/bin/sh\necho {}".to_vec(),
        binary: false,
        env: Vec::new(),
    };
    assert_eq!(init_json(&text)["value"]["code"], "#!/bin/sh\necho {}");
    assert_eq!(init_json(&text)["value"]["main"], "run");
}

#[test]
fn init_body_leaves_out_empty_code() {
    let body = init_json(&InitArgs {
        name: "blackbox".into(),
        ..InitArgs::default()
    });
    assert!(body["value"].get("code").is_none());
    assert_eq!(body["value"]["binary"], false);
}

#[test]
fn run_body_sends_the_deadline_as_a_string() {
    let context = ActivationContext {
        activation_id: "a".repeat(32),
        namespace: "guest".into(),
        action_name: "/guest/act".into(),
        action_version: "0.0.1".into(),
        transaction_id: "tid".into(),
        api_key: None,
    };
    let mut params = Map::new();
    params.insert("x".into(), json!(1));
    let body = run_body(&context, params.clone(), 1_700_000_000_123);
    assert_eq!(body["deadline"], "1700000000123");
    assert_eq!(body["value"], json!({"x": 1}));
    assert_eq!(body["action_name"], "/guest/act");
    assert!(body.get("api_key").is_none());
    let with_key = ActivationContext {
        api_key: Some("u:k".into()),
        ..context
    };
    assert_eq!(run_body(&with_key, params.clone(), 0)["api_key"], "u:k");
}

#[test]
fn init_answers() {
    assert_eq!(classify_init(&reply(200, "whatever")), InitVerdict::Ready);
    assert_eq!(classify_init(&reply(503, "")), InitVerdict::Reschedule);
    let InitVerdict::Failed(r) = classify_init(&reply(502, r#"{"error":"bad zip"}"#)) else {
        panic!("expected a failure");
    };
    assert_eq!(r.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(r.result, json!({"error": "bad zip"}));
    let InitVerdict::Failed(r) = classify_init(&reply(500, "oops")) else {
        panic!("expected a failure");
    };
    assert_eq!(
        r.error_message(),
        Some("The action failed during initialization: oops")
    );
    let InitVerdict::Failed(r) = classify_init(&reply(403, r#"{"other":1}"#)) else {
        panic!("expected a failure");
    };
    assert_eq!(
        r.error_message(),
        Some(r#"The action failed during initialization: {"other":1}"#)
    );
}

#[test]
fn run_200_follows_the_result_rules() {
    let r = response(classify_run(&reply(200, r#"{"a":1}"#), MB));
    assert_eq!(r, RunResponse::success(json!({"a": 1})));
    let r = response(classify_run(&reply(200, "[1]"), MB));
    assert_eq!(r.status, ResponseStatus::Success);
    let r = response(classify_run(&reply(200, r#"{"error":"no","x":2}"#), MB));
    assert_eq!(r.status, ResponseStatus::ApplicationError);
    assert_eq!(r.result, json!({"error": "no"}));
    let r = response(classify_run(&reply(200, "42"), MB));
    assert_eq!(r.status, ResponseStatus::ActionDeveloperError);
}

#[test]
fn run_non_200_is_a_developer_error_with_its_error_field() {
    let body = r#"{"error":"The action did not return a dictionary."}"#;
    let r = response(classify_run(&reply(502, body), MB));
    assert_eq!(r.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(
        r.error_message(),
        Some("The action did not return a dictionary.")
    );
    let r = response(classify_run(&reply(500, r#"{"error":{"code":3}}"#), MB));
    assert_eq!(r.result, json!({"error": {"code": 3}}));
    let r = response(classify_run(&reply(502, "garbage"), MB));
    assert_eq!(
        r.error_message(),
        Some("The action did not produce a valid JSON or JSON Array response: garbage")
    );
    let r = response(classify_run(&reply(502, "[1]"), MB));
    assert_eq!(r.status, ResponseStatus::ActionDeveloperError);
    assert_eq!(classify_run(&reply(503, "{}"), MB), RunVerdict::Reschedule);
}

#[test]
fn truncated_bodies_are_application_errors_whatever_the_status() {
    for status in [200, 502, 503] {
        let r = response(classify_run(
            &Reply {
                status,
                body: "x".repeat(10),
                truncated: Some(5000),
            },
            10,
        ));
        assert_eq!(r.status, ResponseStatus::ApplicationError);
        assert_eq!(
            r.error_message(),
            Some(
                "The action produced a response that exceeded the allowed length: 5000 > 10 bytes. \
                 The truncated response was: xxxxxxxxxx"
            )
        );
    }
}

#[test]
fn cpu_shares_follow_memory_with_a_floor() {
    assert_eq!(cpu_shares(256, 1024), 256);
    assert_eq!(cpu_shares(1024, 1024), 1024);
    assert_eq!(cpu_shares(128, 2048), 64);
    assert_eq!(cpu_shares(1, 1 << 20), 2);
    assert_eq!(cpu_shares(256, 0), 262_144);
}

#[test]
fn nano_cpus_share_the_cpu_budget_by_memory() {
    assert_eq!(nano_cpus(None, 256, 1024), None);
    assert_eq!(nano_cpus(Some(2.0), 256, 1024), Some(500_000_000));
    assert_eq!(nano_cpus(Some(1.0), 1, 1 << 20), Some(1_000_000));
    assert_eq!(nano_cpus(Some(2.0), 4096, 1024), Some(2_000_000_000));
    assert_eq!(nano_cpus(Some(f64::NAN), 256, 1024), None);
    assert_eq!(nano_cpus(Some(0.0), 256, 1024), None);
}

#[test]
fn container_names_are_docker_safe() {
    assert_eq!(container_name("invoker0", 7), "wasmwhisk_invoker0_7");
    assert_eq!(
        container_name("standalone-0123456789ab", 1),
        "wasmwhisk_standalone-0123456789ab_1"
    );
    assert_eq!(container_name("a b/c", 2), "wasmwhisk_a-b-c_2");
}
