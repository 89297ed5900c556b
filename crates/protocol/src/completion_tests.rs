//! Tests of the completion acks, from JSON written as OpenWhisk writes it.

use super::*;
use crate::fixtures::{invoker_id_json, transid_json, whisk_activation_json};
use serde_json::{Value, json};

const ID: &str = "0123456789abcdef0123456789abcdef";

fn combined_json() -> Value {
    json!({
        "transid": transid_json(),
        "response": whisk_activation_json(),
        "isSystemError": false,
        "instance": invoker_id_json()
    })
}

fn completion_json() -> Value {
    json!({
        "transid": transid_json(),
        "activationId": ID,
        "isSystemError": false,
        "instance": invoker_id_json()
    })
}

fn result_json() -> Value {
    json!({"transid": transid_json(), "response": whisk_activation_json()})
}

fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(v: Value) -> T {
    let parsed: T = serde_json::from_value(v.clone()).expect("deserializes");
    assert_eq!(serde_json::to_value(&parsed).expect("serializes"), v);
    parsed
}

#[test]
fn each_message_round_trips_on_its_own() {
    let m: CombinedCompletionAndResultMessage = round_trip(combined_json());
    assert_eq!(m.response.activation_id().as_str(), ID);
    let m: CompletionMessage = round_trip(completion_json());
    assert_eq!(m.instance.as_invoker().map(|i| i.instance), Some(0));
    let m: ResultMessage = round_trip(result_json());
    assert!(m.response.activation().is_some());
}

#[test]
fn acknowledgement_is_told_apart_by_field_presence() {
    let ack: AcknowledgementMessage = round_trip(combined_json());
    assert!(matches!(ack, AcknowledgementMessage::Combined(_)));
    assert!(ack.slot_freed_by().is_some() && ack.result().is_some());

    let ack: AcknowledgementMessage = round_trip(completion_json());
    assert!(matches!(ack, AcknowledgementMessage::Completion(_)));
    assert!(ack.result().is_none());

    let ack: AcknowledgementMessage = round_trip(result_json());
    assert!(matches!(ack, AcknowledgementMessage::Result(_)));
    assert!(ack.slot_freed_by().is_none());
    assert_eq!(ack.is_system_error(), Some(false));

    for ack in [combined_json(), completion_json(), result_json()] {
        let ack: AcknowledgementMessage = serde_json::from_value(ack).unwrap();
        assert_eq!(ack.activation_id().as_str(), ID);
        assert_eq!(ack.transid().id, "Xv9bXGGxBvwmGHnSOKbQTa6NWG3Ly6Hq");
    }
}

#[test]
fn shrunk_acks_carry_only_the_id() {
    let ack: AcknowledgementMessage = serde_json::from_value(combined_json()).unwrap();
    let mut expected = combined_json();
    expected["response"] = json!(ID);
    assert_eq!(serde_json::to_value(ack.shrink()).unwrap(), expected);
    // And the shrunk form reads back as a combined ack.
    let back: AcknowledgementMessage = round_trip(expected);
    assert!(matches!(back, AcknowledgementMessage::Combined(_)));

    let ack: AcknowledgementMessage = serde_json::from_value(result_json()).unwrap();
    let shrunk: AcknowledgementMessage =
        round_trip(json!({"transid": transid_json(), "response": ID}));
    assert_eq!(ack.shrink(), shrunk);
    assert_eq!(shrunk.is_system_error(), None);
}

#[test]
fn is_system_error_is_omitted_when_unknown() {
    let mut v = completion_json();
    v.as_object_mut().map(|o| o.remove("isSystemError"));
    let ack: AcknowledgementMessage = round_trip(v);
    assert_eq!(ack.is_system_error(), None);
}

#[test]
fn constructors_set_is_system_error_from_the_response() {
    let mut activation: WhiskActivation = serde_json::from_value(whisk_activation_json()).unwrap();
    activation.response = crate::ActivationResponse::whisk_error("boom");
    let invoker: InstanceId = serde_json::from_value(invoker_id_json()).unwrap();
    let tid: TransactionId = serde_json::from_value(transid_json()).unwrap();
    let combined =
        CombinedCompletionAndResultMessage::new(tid.clone(), activation.clone(), invoker.clone());
    assert_eq!(combined.is_system_error, Some(true));
    let completion = CompletionMessage::new(tid.clone(), &activation, invoker);
    assert_eq!(completion.is_system_error, Some(true));
    let result: AcknowledgementMessage = ResultMessage::new(tid, activation).into();
    assert_eq!(result.is_system_error(), Some(true));
}

#[test]
fn scheduler_and_controller_senders_are_read() {
    let mut v = completion_json();
    v["instance"] = json!({"asString": "0"});
    let ack: AcknowledgementMessage = round_trip(v);
    assert!(matches!(
        ack.slot_freed_by(),
        Some(InstanceId::Scheduler(_))
    ));
    let mut v = completion_json();
    v["instance"] = json!({"asString": "0", "instanceType": "controller"});
    let ack: AcknowledgementMessage = round_trip(v);
    assert!(matches!(
        ack.slot_freed_by(),
        Some(InstanceId::Controller(_))
    ));
}

#[test]
fn malformed_acks_are_errors() {
    let mut no_id = completion_json();
    no_id.as_object_mut().map(|o| o.remove("activationId"));
    let mut bad_response = result_json();
    bad_response["response"] = json!(42);
    let mut bad_id = result_json();
    bad_id["response"] = json!("nope");
    let mut bad_instance = combined_json();
    bad_instance["instance"] = json!({"instance": 0});
    for bad in [
        no_id,
        bad_response,
        bad_id,
        bad_instance,
        json!({"transid": transid_json()}),
        json!({"response": ID}),
        json!([]),
        json!(null),
    ] {
        assert!(
            serde_json::from_value::<AcknowledgementMessage>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert!(
        serde_json::from_str::<AcknowledgementMessage>(r#"{"transid":["a",1],"response":"#)
            .is_err()
    );
}
