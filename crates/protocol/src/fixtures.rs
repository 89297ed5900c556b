//! JSON literals written from docs/openwhisk.md, as OpenWhisk would produce them:
//! the shared parts of the messages the tests of every module decode.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "fixtures for tests: a fixture that does not parse fails the test"
)]

use serde_json::{Value, json};

/// A transaction id as a controller writes it.
pub fn transid_json() -> Value {
    json!(["Xv9bXGGxBvwmGHnSOKbQTa6NWG3Ly6Hq", 1700000000000u64])
}

/// The metadata of a Node.js action (`whiskActionMetaData`).
pub fn nodejs_metadata_json() -> Value {
    json!({
        "namespace": "guest",
        "name": "hello",
        "exec": {"kind": "nodejs:20", "binary": false},
        "parameters": [{"key": "greeting", "value": "hi"}],
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "version": "0.0.1",
        "publish": false,
        "annotations": [{"key": "exec", "value": "nodejs:20"},
                        {"key": "provide-api-key", "value": false}],
        "updated": 1700000000000u64
    })
}

/// The action's fully qualified name, with version.
pub fn fqn_json() -> Value {
    json!({"path": "guest", "name": "hello", "version": "0.0.1"})
}

/// The identity of the `guest` namespace with standard (unset) limits.
pub fn identity_json() -> Value {
    json!({
        "subject": "guest",
        "namespace": {"name": "guest", "uuid": "uuid-1"},
        "authkey": {"api_key": "uuid-1:key-1"},
        "rights": ["READ", "PUT", "DELETE", "ACTIVATE"],
        "limits": {}
    })
}

/// A blocking activation with no parameters.
pub fn activation_message_json() -> Value {
    json!({
        "transid": transid_json(),
        "action": fqn_json(),
        "revision": "1-8a1e5c3f0d2b4a6c",
        "user": identity_json(),
        "activationId": "0123456789abcdef0123456789abcdef",
        "rootControllerIndex": {"asString": "0", "instanceType": "controller"},
        "blocking": true,
        "initArgs": [],
        "lockedArgs": {}
    })
}

/// Invoker 0 with 2048 MB, as its acks carry it.
pub fn invoker_id_json() -> Value {
    json!({
        "instance": 0,
        "userMemory": "2048 MB",
        "instanceType": "invoker",
        "tags": [],
        "dedicatedNamespaces": []
    })
}

/// The activation record of a successful cold-started run (§6.5).
pub fn whisk_activation_json() -> Value {
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
        "annotations": [
            {"key": "path", "value": "guest/hello"},
            {"key": "waitTime", "value": 12},
            {"key": "kind", "value": "nodejs:20"},
            {"key": "timeout", "value": false},
            {"key": "limits", "value": {"concurrency": 1, "logs": 10, "memory": 256,
                                        "timeout": 60000}},
            {"key": "initTime", "value": 30}
        ],
        "duration": 50
    })
}

/// Reads `v` as a `T`, checks it writes back to the same JSON, returns it.
pub fn round_trip<T>(v: &Value) -> T
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let parsed: T = serde_json::from_value(v.clone()).expect("reads");
    assert_eq!(serde_json::to_value(&parsed).expect("writes"), *v);
    parsed
}
