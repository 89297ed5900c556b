use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::protocol::action::ActionLimits;
use crate::protocol::{
    ActivationId, ActivationResponse, DocRevision, EntityName, EntityPath, Parameters, SemVer,
    WhiskActionMetaData,
};

fn action(kind: &str, binary: bool, code: &[u8]) -> ExecutableAction {
    let mut meta = WhiskActionMetaData::code_action(
        EntityPath::namespace(EntityName::new("guest").unwrap()),
        EntityName::new("hello").unwrap(),
        kind,
        binary,
        ActionLimits::default(),
    );
    meta.parameters = serde_json::from_value(json!([{"key": "p", "value": 1}])).unwrap();
    meta.annotations.set("exec", kind);
    meta.updated = 42;
    ExecutableAction {
        meta,
        revision: DocRevision::new("1-abc"),
        code: Arc::from(code),
        code_key: None,
    }
}

#[test]
fn actions_render_as_openwhisk_returns_them() {
    let js = action("js", false, b"function main() {}");
    assert_eq!(
        action_json(&js, false).unwrap(),
        json!({
            "namespace": "guest", "name": "hello",
            "exec": {"kind": "js", "binary": false},
            "parameters": [{"key": "p", "value": 1}],
            "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
            "version": "0.0.1", "publish": false,
            "annotations": [{"key": "exec", "value": "js"}],
            "updated": 42
        })
    );
    assert_eq!(
        action_json(&js, true).unwrap()["exec"]["code"],
        json!("function main() {}")
    );
    let wasm = action("wasm", true, b"\0asm");
    assert_eq!(
        action_json(&wasm, true).unwrap()["exec"],
        json!({"kind": "wasm", "binary": true, "code": "AGFzbQ=="})
    );
    let entry = action_list_entry(&wasm).unwrap();
    assert!(entry.get("parameters").is_none());
    assert!(entry["exec"].get("code").is_none());
    assert_eq!(entry["name"], json!("hello"));
}

fn activation(end: u64) -> WhiskActivation {
    WhiskActivation {
        namespace: EntityPath::namespace(EntityName::new("guest").unwrap()),
        name: EntityName::new("hello").unwrap(),
        subject: "guest".into(),
        activation_id: ActivationId::parse("0123456789abcdef0123456789abcdef").unwrap(),
        start: 1000,
        end,
        cause: None,
        response: ActivationResponse::application_error("nope"),
        logs: vec!["a log line".into()],
        version: SemVer::default(),
        publish: false,
        annotations: Parameters::new(),
        duration: None,
    }
}

#[test]
fn activation_summaries_leave_out_response_and_logs() {
    assert_eq!(
        activation_summary(&activation(1250)),
        json!({
            "namespace": "guest", "name": "hello", "version": "0.0.1", "publish": false,
            "annotations": [], "activationId": "0123456789abcdef0123456789abcdef",
            "start": 1000, "end": 1250, "duration": 250, "statusCode": 1
        })
    );
    let running = activation_summary(&activation(0));
    assert!(running.get("end").is_none() && running.get("statusCode").is_none());
}
