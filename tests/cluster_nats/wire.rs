//! JSON as OpenWhisk writes it (docs/openwhisk.md §3): the bytes the tests put on
//! the wire and expect back.

use serde_json::{Value, json};

pub fn transid() -> Value {
    json!(["Xv9bXGGxBvwmGHnSOKbQTa6NWG3Ly6Hq", 1700000000000u64])
}

pub fn metadata() -> Value {
    json!({
        "namespace": "guest",
        "name": "hello",
        "exec": {"kind": "nodejs:20", "binary": false},
        "parameters": [{"key": "greeting", "value": "hi"}],
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "version": "0.0.1",
        "publish": false,
        "annotations": [{"key": "exec", "value": "nodejs:20"}],
        "updated": 1700000000000u64
    })
}

pub fn fqn() -> Value {
    json!({"path": "guest", "name": "hello", "version": "0.0.1"})
}

pub fn invoker() -> Value {
    json!({
        "instance": 3,
        "userMemory": "2048 MB",
        "instanceType": "invoker",
        "tags": [],
        "dedicatedNamespaces": []
    })
}

pub fn creation() -> Value {
    json!({
        "transid": transid(),
        "invocationNamespace": "guest",
        "action": fqn(),
        "revision": "1-8a1e5c3f0d2b4a6c",
        "whiskActionMetaData": metadata(),
        "rootSchedulerIndex": {"asString": "0"},
        "schedulerHost": "10.0.0.5",
        "rpcPort": 13001,
        "retryCount": 0,
        "creationId": "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb"
    })
}

pub fn deletion() -> Value {
    json!({
        "transid": transid(),
        "invocationNamespace": "guest",
        "action": fqn(),
        "revision": "2-ffff",
        "whiskActionMetaData": metadata()
    })
}

pub fn ack(error: Option<&str>) -> Value {
    let mut ack = json!({
        "transid": transid(),
        "creationId": "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb",
        "invocationNamespace": "guest",
        "action": fqn(),
        "revision": "1-8a1e5c3f0d2b4a6c",
        "actionMetaData": metadata(),
        "rootInvokerIndex": invoker(),
        "schedulerHost": "10.0.0.5",
        "rpcPort": 13001,
        "retryCount": 1
    });
    if let Some(error) = error {
        ack["error"] = json!(error);
        ack["reason"] = json!("invoker(s) have not enough resources");
    }
    ack
}

pub fn activation() -> Value {
    json!({
        "namespace": "guest",
        "name": "hello",
        "subject": "guest",
        "activationId": "0123456789abcdef0123456789abcdef",
        "start": 1700000000100u64,
        "end": 1700000000150u64,
        "response": {"statusCode": 0, "result": {"greeting": "hi world"}},
        "logs": ["2023-11-14T22:13:20.120Z stdout: hello"],
        "version": "0.0.1",
        "publish": false,
        "annotations": [{"key": "path", "value": "guest/hello"},
                        {"key": "kind", "value": "nodejs:20"}],
        "duration": 50
    })
}

pub fn combined() -> Value {
    json!({"transid": transid(), "response": activation(), "isSystemError": false,
           "instance": invoker()})
}

pub fn completion() -> Value {
    json!({"transid": transid(), "activationId": "0123456789abcdef0123456789abcdef",
           "isSystemError": true, "instance": invoker()})
}

pub fn result() -> Value {
    json!({"transid": transid(), "response": activation()})
}
