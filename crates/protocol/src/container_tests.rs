//! Tests of the container messages, from JSON written as OpenWhisk writes it.

use super::*;
use crate::fixtures::{fqn_json, invoker_id_json, nodejs_metadata_json, transid_json};
use serde_json::{Value, json};

fn creation_json() -> Value {
    json!({
        "transid": transid_json(),
        "invocationNamespace": "guest",
        "action": fqn_json(),
        "revision": "1-8a1e5c3f0d2b4a6c",
        "whiskActionMetaData": nodejs_metadata_json(),
        "rootSchedulerIndex": {"asString": "0"},
        "schedulerHost": "10.0.0.5",
        "rpcPort": 13001,
        "retryCount": 0,
        "creationId": "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb"
    })
}

fn deletion_json() -> Value {
    json!({
        "transid": transid_json(),
        "invocationNamespace": "guest",
        "action": fqn_json(),
        "revision": "2-ffff",
        "whiskActionMetaData": nodejs_metadata_json()
    })
}

fn ack_json() -> Value {
    json!({
        "transid": transid_json(),
        "creationId": "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb",
        "invocationNamespace": "guest",
        "action": fqn_json(),
        "revision": "1-8a1e5c3f0d2b4a6c",
        "actionMetaData": nodejs_metadata_json(),
        "rootInvokerIndex": invoker_id_json(),
        "schedulerHost": "10.0.0.5",
        "rpcPort": 13001,
        "retryCount": 0
    })
}

fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(v: Value) -> T {
    let parsed: T = serde_json::from_value(v.clone()).expect("deserializes");
    assert_eq!(serde_json::to_value(&parsed).expect("serializes"), v);
    parsed
}

#[test]
fn creation_message_round_trips() {
    let msg: ContainerCreationMessage = round_trip(creation_json());
    assert_eq!(msg.root_scheduler_index.as_str(), "0");
    assert_eq!(msg.rpc_port, 13001);
    assert_eq!(msg.whisk_action_meta_data.memory_mb(), 256);
}

#[test]
fn deletion_message_round_trips() {
    let msg: ContainerDeletionMessage = round_trip(deletion_json());
    assert_eq!(msg.revision.generation(), Some(2));
}

#[test]
fn container_message_is_told_apart_by_creation_id() {
    let msg: ContainerMessage = round_trip(creation_json());
    assert!(matches!(msg, ContainerMessage::Creation(_)));
    let msg: ContainerMessage = round_trip(deletion_json());
    assert!(matches!(msg, ContainerMessage::Deletion(_)));
    assert_eq!(msg.transid().start_ms, 1_700_000_000_000);

    // A creation with a bad creationId is a bad creation, not a deletion.
    let mut bad = creation_json();
    bad["creationId"] = json!("nope");
    assert!(serde_json::from_value::<ContainerMessage>(bad).is_err());
    for bad in [json!([]), json!("x"), json!({})] {
        assert!(serde_json::from_value::<ContainerMessage>(bad).is_err());
    }
}

#[test]
fn retry_count_defaults_to_zero_on_read() {
    let mut v = creation_json();
    v.as_object_mut().map(|o| o.remove("retryCount"));
    let msg: ContainerCreationMessage = serde_json::from_value(v).unwrap();
    assert_eq!(msg.retry_count, 0);
}

#[test]
fn success_ack_omits_error_and_reason() {
    let ack: ContainerCreationAckMessage = round_trip(ack_json());
    assert!(ack.is_success() && !ack.is_reschedulable());
    assert_eq!(ack.root_invoker_index.instance, 0);
}

#[test]
fn error_ack_round_trips() {
    let mut v = ack_json();
    v["retryCount"] = json!(2);
    v["error"] = json!("ResourceNotEnoughError");
    v["reason"] = json!(
        "creationId: aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb, invoker[0] doesn't have enough resource for container: guest/hello"
    );
    let ack: ContainerCreationAckMessage = round_trip(v);
    assert_eq!(
        ack.error,
        Some(ContainerCreationError::ResourceNotEnoughError)
    );
    assert!(ack.is_reschedulable());
}

#[test]
fn answer_copies_the_creation_message() {
    let msg: ContainerCreationMessage = serde_json::from_value(creation_json()).unwrap();
    let invoker = serde_json::from_value(invoker_id_json()).unwrap();
    let ack = ContainerCreationAckMessage::answer(&msg, invoker, None);
    assert_eq!(serde_json::to_value(&ack).unwrap(), ack_json());
    let err = (
        ContainerCreationError::ShuttingDownError,
        "shutting down".to_owned(),
    );
    let invoker = serde_json::from_value(invoker_id_json()).unwrap();
    let ack = ContainerCreationAckMessage::answer(&msg, invoker, Some(err));
    let v = serde_json::to_value(&ack).unwrap();
    assert_eq!(v["error"], json!("ShuttingDownError"));
    assert_eq!(v["reason"], json!("shutting down"));
}

#[test]
fn all_thirteen_error_names_round_trip() {
    assert_eq!(ContainerCreationError::ALL.len(), 13);
    for e in ContainerCreationError::ALL {
        let v = serde_json::to_value(e).unwrap();
        assert_eq!(v, json!(e.name()));
        assert_eq!(
            serde_json::from_value::<ContainerCreationError>(v).unwrap(),
            e
        );
        assert!(!e.description().is_empty());
        // Also inside a whole ack.
        let mut ack = ack_json();
        ack["error"] = json!(e.name());
        let parsed: ContainerCreationAckMessage = round_trip(ack);
        assert_eq!(parsed.error, Some(e));
    }
}

#[test]
fn reschedulable_errors_are_openwhisks_whisk_errors() {
    let reschedulable: Vec<&str> = ContainerCreationError::ALL
        .into_iter()
        .filter(|e| e.is_reschedulable())
        .map(ContainerCreationError::name)
        .collect();
    assert_eq!(
        reschedulable,
        [
            "NoAvailableInvokersError",
            "NoAvailableResourceInvokersError",
            "ResourceNotEnoughError",
            "WhiskError",
            "UnknownError",
            "TimeoutError",
            "ShuttingDownError",
            "ZeroNamespaceLimit"
        ]
    );
}

#[test]
fn error_names_are_read_like_openwhisk_reads_them() {
    use ContainerCreationError as E;
    assert_eq!(E::parse(" shuttingdownerror "), Some(E::ShuttingDownError));
    assert_eq!(
        E::parse("NONEXECUTBLEACTIONERROR"),
        Some(E::NonExecutableActionError)
    );
    assert_eq!(E::parse("dbfetcherror"), Some(E::DBFetchError));
    assert_eq!(E::parse("NoSuchError"), None);
    assert!(serde_json::from_value::<E>(json!("NoSuchError")).is_err());
    assert!(serde_json::from_value::<E>(json!(3)).is_err());
    assert_eq!(E::WhiskError.to_string(), "WhiskError");
    assert_eq!(
        E::WhiskError.description(),
        "whisk error(recoverable) happens"
    );
}

#[test]
fn malformed_container_messages_are_errors() {
    for (field, bad) in [
        ("rpcPort", json!(70000)),
        ("rpcPort", json!("13001")),
        ("rootSchedulerIndex", json!("0")),
        ("whiskActionMetaData", json!({})),
        ("revision", json!(1)),
        ("retryCount", json!(-1)),
    ] {
        let mut v = creation_json();
        v[field] = bad.clone();
        assert!(
            serde_json::from_value::<ContainerCreationMessage>(v).is_err(),
            "{field}: {bad}"
        );
    }
    let mut v = ack_json();
    v["rootInvokerIndex"] = json!({"asString": "0", "instanceType": "controller"});
    assert!(serde_json::from_value::<ContainerCreationAckMessage>(v).is_err());
}
