//! Tests of the identifiers, from their JSON as OpenWhisk writes it.

use super::*;
use serde_json::{Value, json};

fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(v: Value) -> T {
    let parsed: T = serde_json::from_value(v.clone()).expect("deserializes");
    assert_eq!(serde_json::to_value(&parsed).expect("serializes"), v);
    parsed
}

#[test]
fn transaction_id_reads_all_four_forms_and_writes_them_back() {
    let t: TransactionId = round_trip(json!(["abc", 1700000000000u64]));
    assert_eq!(t, TransactionId::new("abc", 1_700_000_000_000));

    let t: TransactionId = round_trip(json!(["abc", 1, true]));
    assert!(t.extra_logging && t.parent.is_none());

    let t: TransactionId = round_trip(json!(["abc", 1, true, ["p", 0]]));
    assert_eq!(t.parent.as_deref(), Some(&TransactionId::new("p", 0)));

    let t: TransactionId = round_trip(json!(["abc", 1, ["p", 0, ["root", 5]]]));
    assert!(!t.extra_logging);
    assert_eq!(t.root().id, "root");
}

#[test]
fn transaction_id_false_flag_is_read_but_not_written() {
    let t: TransactionId = serde_json::from_value(json!(["a", 1, false])).unwrap();
    assert_eq!(serde_json::to_value(&t).unwrap(), json!(["a", 1]));
}

#[test]
fn malformed_transaction_ids_are_errors() {
    for bad in [
        json!([]),
        json!(["a"]),
        json!([1, 2]),
        json!(["a", "b"]),
        json!(["a", -1]),
        json!(["a", 1, true, ["p", 0], 7]),
        json!(["a", 1, "x"]),
        json!({"id": "a"}),
        json!("a"),
    ] {
        assert!(
            serde_json::from_value::<TransactionId>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn generated_transaction_ids_are_32_alphanumerics() {
    let t = TransactionId::generate();
    assert_eq!(t.id.len(), 32);
    assert!(t.id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(t.start_ms > 0);
    let child = TransactionId::child_of(&t);
    assert_eq!(child.root(), &t);
    assert_eq!(TransactionId::unknown().id, "sid_unknown");
}

#[test]
fn hex_ids_validate_and_generate() {
    let id: ActivationId = round_trip(json!("0123456789abcdef0123456789abcdef"));
    assert_eq!(id.as_str(), "0123456789abcdef0123456789abcdef");
    let generated = CreationId::generate();
    assert!(CreationId::parse(generated.as_str()).is_ok());
    assert_ne!(generated, CreationId::generate());

    let err = ActivationId::parse("abc").unwrap_err();
    assert_eq!(
        err.to_string(),
        "activation id must be 32 lowercase hex characters, got 3"
    );
    let upper = "0123456789ABCDEF0123456789ABCDEF";
    assert!(matches!(
        CreationId::parse(upper),
        Err(IdError::NotHex { .. })
    ));
    let err = serde_json::from_value::<ActivationId>(json!("xyz")).unwrap_err();
    assert!(err.to_string().contains("activation id"), "{err}");
    assert!(serde_json::from_value::<ActivationId>(json!(12)).is_err());
}

#[test]
fn doc_revision_is_a_string_or_null() {
    let rev: DocRevision = round_trip(json!("3-abc"));
    assert_eq!(rev.generation(), Some(3));
    let none: DocRevision = round_trip(json!(null));
    assert!(none.is_empty());
    assert_eq!(none.to_string(), "null");
    assert_eq!(DocRevision::new(" 2-x ").as_str(), Some("2-x"));
    assert!(serde_json::from_value::<DocRevision>(json!(3)).is_err());
}

#[test]
fn doc_revisions_order_by_generation() {
    let (r2, r10) = (DocRevision::new("2-zz"), DocRevision::new("10-aa"));
    assert_eq!(r2.compare(&r10), Ordering::Less);
    assert_eq!(r10.compare(&r2), Ordering::Greater);
    assert_eq!(DocRevision::empty().compare(&r2), Ordering::Less);
    assert_eq!(r2.compare(&DocRevision::new("2-other")), Ordering::Equal);
}

#[test]
fn semver_reads_like_openwhisk() {
    let v: SemVer = round_trip(json!("0.0.1"));
    assert_eq!(v, SemVer::default());
    assert_eq!("1".parse::<SemVer>().unwrap().to_string(), "1.0.0");
    assert_eq!("2.3".parse::<SemVer>().unwrap().to_string(), "2.3.0");
    assert_eq!(v.up_patch().to_string(), "0.0.2");
    for bad in ["0.0.0", "", "a.b.c", "1.2.3.4", "-1.0.0", "1..2"] {
        assert!(bad.parse::<SemVer>().is_err(), "{bad}");
    }
    assert!(serde_json::from_value::<SemVer>(json!(1)).is_err());
}
