use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::protocol::{EntityName, EntityPath};

fn put(v: Value) -> Result<ActionPut, ApiError> {
    parse_json(v.to_string().as_bytes())
}

fn exec(kind: &str, code: Option<&str>) -> ExecPut {
    ExecPut {
        kind: kind.into(),
        code: code.map(str::to_string),
        ..ExecPut::default()
    }
}

#[test]
fn action_put_parses_and_names_the_bad_field() {
    let p = put(json!({
        "exec": {"kind": "js", "code": "function main(){}"},
        "parameters": [{"key": "a", "value": 1, "init": true}],
        "limits": {"memory": 128},
        "version": "1.2.3", "publish": true, "delAnnotations": ["x"],
        "name": "ignored", "namespace": "ignored"
    }))
    .unwrap();
    assert_eq!(p.exec.map(|e| e.kind), Some("js".into()));
    assert_eq!(p.limits.and_then(|l| l.memory), Some(128));
    assert_eq!(p.version, SemVer::new(1, 2, 3));
    assert_eq!(p.del_annotations, Some(vec!["x".to_string()]));

    let err = put(json!({"limits": {"memory": "lots"}})).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert!(
        err.message
            .starts_with("The request content was malformed:\nlimits.memory: invalid type"),
        "{}",
        err.message
    );
    let err = put(json!({"parameters": {"a": 1}})).unwrap_err();
    assert!(err.message.contains("parameters"), "{}", err.message);
    let err = put(json!({"version": "x"})).unwrap_err();
    assert!(
        err.message.contains("bad semantic version"),
        "{}",
        err.message
    );
    for body in ["", "  ", "{", "[1]", "\"text\""] {
        let err = parse_json::<ActionPut>(body.as_bytes()).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            err.message
                .starts_with("The request content was malformed:")
        );
    }
}

#[test]
fn exec_kinds_code_and_sizes() {
    let js = decode_exec(
        &exec("nodejs:20", Some("function main() {}")),
        100,
        ["native"],
    )
    .unwrap();
    assert_eq!(js.kind, NewKind::Wasm(ActionKind::Js));
    assert_eq!(js.code, b"function main() {}");
    assert_eq!(js.main, None);

    let wasm = decode_exec(&exec(" WASM ", Some("AGFzbQ==\n")), 100, ["native"]).unwrap();
    assert_eq!(
        (wasm.kind, wasm.code),
        (NewKind::Wasm(ActionKind::Wasm), b"\0asm".to_vec())
    );

    let err = decode_exec(&exec("python:3", Some("x")), 100, ["native"]).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert!(
        err.message
            .contains("known kinds: wasm, js, nodejs:default, blackbox, native"),
        "{}",
        err.message
    );

    let err = decode_exec(&exec("wasm", Some("not base64!")), 100, ["native"]).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert!(err.message.contains("base64"), "{}", err.message);

    let err = decode_exec(&exec("wasm", None), 100, ["native"]).unwrap_err();
    assert_eq!(
        err.message,
        "'code' must be a string defined in 'exec' for 'wasm' actions"
    );

    let err = decode_exec(&exec("js", Some("0123456789")), 9, ["native"]).unwrap_err();
    assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err.message, "Exec code larger than allowed: 10 > 9 bytes.");

    let mut zipped = exec("js", Some("UEsDBA=="));
    zipped.binary = Some(true);
    assert_eq!(
        decode_exec(&zipped, 100, ["native"]).unwrap_err().status,
        StatusCode::BAD_REQUEST
    );
    let mut blackbox = exec("js", Some("x"));
    blackbox.image = Some("me/img".into());
    assert!(decode_exec(&blackbox, 100, ["native"]).is_err());
    let mut named = exec("js", Some("x"));
    named.main = Some("handler".into());
    assert_eq!(
        decode_exec(&named, 100, ["native"]).unwrap().main,
        Some("handler".into())
    );
}

#[test]
fn image_kinds_blackbox_and_native() {
    // blackbox: an image, code optional.
    let mut blackbox = exec("blackbox", None);
    blackbox.image = Some(" me/act:1 ".into());
    let new = decode_exec(&blackbox, 100, ["native"]).unwrap();
    assert_eq!(
        new.kind,
        NewKind::Image {
            kind: "blackbox".into(),
            image: Some("me/act:1".into())
        }
    );
    assert!(new.code.is_empty());
    let no_image = decode_exec(&exec("blackbox", None), 100, ["native"]).unwrap_err();
    assert!(no_image.message.contains("'image'"), "{}", no_image.message);
    let mut bad_image = exec("blackbox", None);
    bad_image.image = Some("a b".into());
    assert_eq!(
        decode_exec(&bad_image, 100, ["native"]).unwrap_err().status,
        StatusCode::BAD_REQUEST
    );

    // native: base64 code kept as given, detected as binary; no image.
    let native = decode_exec(&exec("native", Some("f0VMRg==")), 100, ["native"]).unwrap();
    assert_eq!(native.kind.name(), "native");
    assert!(native.binary);
    assert_eq!(native.code, b"\x7fELF");
    assert!(decode_exec(&exec("native", None), 100, ["native"]).is_err());
    let mut with_image = exec("native", Some("f0VMRg=="));
    with_image.image = Some("x".into());
    assert!(decode_exec(&with_image, 100, ["native"]).is_err());
    let mut not_base64 = exec("native", Some("#!/bin/sh"));
    not_base64.binary = Some(true);
    assert!(decode_exec(&not_base64, 100, ["native"]).is_err());
    // Not in the manifest: unknown.
    assert!(decode_exec(&exec("native", Some("f0VMRg==")), 100, std::iter::empty()).is_err());
}

#[test]
fn parameter_sizes_count_keys_and_json_values() {
    let params: Parameters =
        serde_json::from_value(json!([{"key": "ab", "value": "xyz"}, {"key": "n", "value": 10}]))
            .unwrap();
    // "ab" + "\"xyz\"" + "n" + "10"
    assert_eq!(parameters_size(&params), 2 + 5 + 1 + 2);
    assert!(check_parameters_size("Parameters", &params, 10).is_ok());
    let err = check_parameters_size("Parameters", &params, 9).unwrap_err();
    assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err.message, "Parameters larger than allowed: 10 > 9 bytes.");
}

#[test]
fn limits_default_validate_and_merge_on_update() {
    let config = LimitsConfig::default();
    let created = action_limits(&config, None, None).unwrap();
    assert_eq!(created, ActionLimits::default());

    let put = LimitsPut {
        memory: Some(128),
        instances: Some(2),
        ..LimitsPut::default()
    };
    let updated = action_limits(
        &config,
        Some(&put),
        Some(&ActionLimits {
            timeout: 1000,
            ..ActionLimits::default()
        }),
    )
    .unwrap();
    assert_eq!(
        (updated.memory, updated.timeout, updated.instances),
        (128, 1000, Some(2))
    );

    let too_much = LimitsPut {
        memory: Some(1024),
        ..LimitsPut::default()
    };
    let err = action_limits(&config, Some(&too_much), None).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        err.message,
        "memory 1024 MB exceeds allowed threshold of 512 MB"
    );
    let too_short = LimitsPut {
        timeout: Some(50),
        ..LimitsPut::default()
    };
    assert!(action_limits(&config, Some(&too_short), None).is_err());
}

#[test]
fn annotations_on_create_and_update() {
    let given: Parameters =
        serde_json::from_value(json!([{"key": "a", "value": 1}, {"key": "exec", "value": "x"}]))
            .unwrap();
    let created = action_annotations(Some(&given), None, None, "wasm");
    assert_eq!(
        serde_json::to_value(&created).unwrap(),
        json!([{"key": "a", "value": 1}, {"key": "provide-api-key", "value": false},
               {"key": "exec", "value": "wasm"}])
    );
    let update: Parameters =
        serde_json::from_value(json!([{"key": "b", "value": 2}, {"key": "a", "value": 3}]))
            .unwrap();
    let updated = action_annotations(
        Some(&update),
        Some(&["provide-api-key".to_string()]),
        Some(&created),
        "js",
    );
    assert_eq!(
        serde_json::to_value(&updated).unwrap(),
        json!([{"key": "b", "value": 2}, {"key": "a", "value": 3},
               {"key": "exec", "value": "js"}])
    );
}

#[test]
fn versions_start_at_0_0_1_and_updates_bump_the_patch() {
    assert_eq!(action_version(None, None), SemVer::default());
    let v = SemVer::new(0, 0, 3);
    assert_eq!(action_version(None, v), SemVer::new(0, 0, 4).unwrap());
    assert_eq!(
        action_version(SemVer::new(2, 0, 0), v),
        SemVer::new(2, 0, 0).unwrap()
    );
}

#[test]
fn payloads_are_objects_or_nothing() {
    assert_eq!(parse_payload(b""), Ok(None));
    assert_eq!(parse_payload(b" \n"), Ok(None));
    assert_eq!(parse_payload(b"null"), Ok(None));
    assert_eq!(
        parse_payload(br#"{"a": 1}"#).map(|p| p.map(Value::Object)),
        Ok(Some(json!({"a": 1})))
    );
    for bad in [&b"[1]"[..], b"3", b"\"x\"", b"{\"a\":", b"{a: 1}"] {
        let err = parse_payload(bad).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.message
                .starts_with("The request content was malformed:\n"),
            "{}",
            err.message
        );
    }
}

fn action(params: Value, annotations: Value) -> WhiskActionMetaData {
    let mut meta = WhiskActionMetaData::code_action(
        EntityPath::namespace(EntityName::new("guest").unwrap()),
        EntityName::new("a").unwrap(),
        "js",
        false,
        ActionLimits::default(),
    );
    meta.parameters = serde_json::from_value(params).unwrap();
    meta.annotations = serde_json::from_value(annotations).unwrap();
    meta
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn invoke_parameters_merge_payload_over_defaults() {
    let meta = action(
        json!([{"key": "a", "value": 1}, {"key": "secret", "value": "s", "init": true}]),
        json!([]),
    );
    let (merged, init) = invoke_parameters(&meta, Some(object(json!({"a": 2, "b": 3})))).unwrap();
    assert_eq!(
        Value::Object(merged),
        json!({"a": 2, "b": 3, "secret": "s"})
    );
    assert_eq!(init, vec!["secret".to_string()]);
    let (merged, init) = invoke_parameters(&action(json!([]), json!([])), None).unwrap();
    assert!(merged.is_empty() && init.is_empty());
}

#[test]
fn final_actions_refuse_overriding_bound_parameters() {
    let meta = action(
        json!([{"key": "bound", "value": 1}, {"key": "open", "value": null}]),
        json!([{"key": "final", "value": true}]),
    );
    let err = invoke_parameters(&meta, Some(object(json!({"bound": 2})))).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.message, messages::PARAMETERS_NOT_ALLOWED);
    let (merged, _) = invoke_parameters(&meta, Some(object(json!({"open": 2, "new": 3})))).unwrap();
    assert_eq!(
        Value::Object(merged),
        json!({"bound": 1, "open": 2, "new": 3})
    );
    // Only a boolean `true` makes an action final (OpenWhisk's getAs[Boolean]).
    let not_final = action(
        json!([{"key": "bound", "value": 1}]),
        json!([{"key": "final", "value": "yes"}]),
    );
    assert!(invoke_parameters(&not_final, Some(object(json!({"bound": 2})))).is_ok());
}
