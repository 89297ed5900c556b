//! Tests of the key and subject builders and parsers, against the layouts
//! of docs/openwhisk.md §4.3 and docs/cluster-nats.md#subjects.

use super::*;
use crate::size::ByteSize;

fn fqn(s: &str) -> FullyQualifiedEntityName {
    s.parse().expect("valid fqn")
}

fn rev() -> DocRevision {
    DocRevision::new("3-abc")
}

#[test]
fn invoker_and_lease_keys() {
    let keys = EtcdKeys::default();
    let mut inv = InvokerInstanceId::new(3, ByteSize::from_mb(2048));
    assert_eq!(keys.invoker(&inv), "whisk/invokers/3");
    assert_eq!(keys.invoker_lease(&inv), "whisk/instance/invoker3/lease");
    inv.unique_name = Some("pod-a".into());
    assert_eq!(keys.invoker(&inv), "whisk/invokers/3/pod-a");
    inv.displayed_name = Some("edge".into());
    assert_eq!(keys.invoker(&inv), "whisk/invokers/3/pod-a/edge");
    assert_eq!(
        keys.invoker_lease(&inv),
        "whisk/instance/invoker3/pod-a/edge/lease"
    );
    let sid = SchedulerInstanceId::new("0").unwrap();
    assert_eq!(keys.instance_lease(&sid), "whisk/instance/scheduler0/lease");
}

#[test]
fn invoker_keys_parse_back() {
    let keys = EtcdKeys::default();
    assert_eq!(
        keys.parse_invoker_key("whisk/invokers/3"),
        Ok((3, None, None))
    );
    assert_eq!(
        keys.parse_invoker_key("whisk/invokers/3/pod-a/edge"),
        Ok((3, Some("pod-a".into()), Some("edge".into())))
    );
    for bad in [
        "whisk/invokers",
        "whisk/invokers/",
        "whisk/invokers/x",
        "whisk/invokers/1/a/b/c",
        "other/invokers/1",
        "whisk/invokersX/1",
    ] {
        assert!(keys.parse_invoker_key(bad).is_err(), "{bad}");
    }
}

#[test]
fn container_keys_have_openwhisks_two_forms() {
    let keys = EtcdKeys::default();
    let live = keys
        .container(
            ContainerKeyKind::Existing,
            "guest",
            &fqn("ns/pkg/act"),
            &rev(),
            0,
            "c1",
        )
        .unwrap();
    assert_eq!(
        live,
        "whisk/namespace/guest/ns/pkg/act/3-abc/invoker0/container/c1"
    );
    let warmed = keys
        .container(
            ContainerKeyKind::Warmed,
            "guest",
            &fqn("ns/act"),
            &rev(),
            12,
            "c2",
        )
        .unwrap();
    assert_eq!(
        warmed,
        "whisk/warmed/guest/ns/act/3-abc/invoker/12/container/c2"
    );
    // The version never appears in keys.
    let versioned = fqn("ns/act").with_version(crate::SemVer::new(0, 0, 2));
    let same = keys
        .container(
            ContainerKeyKind::Warmed,
            "guest",
            &versioned,
            &rev(),
            12,
            "c2",
        )
        .unwrap();
    assert_eq!(same, warmed);
}

#[test]
fn container_keys_parse_back() {
    let keys = EtcdKeys::default();
    for kind in [ContainerKeyKind::Existing, ContainerKeyKind::Warmed] {
        for action in ["ns/act", "ns/pkg/act"] {
            for revision in [rev(), DocRevision::empty()] {
                let key = keys
                    .container(
                        kind,
                        "guest",
                        &fqn(action),
                        &revision,
                        7,
                        "wsk0_12_guest_act",
                    )
                    .unwrap();
                let parsed = keys.parse_container_key(&key).unwrap();
                assert_eq!(
                    parsed,
                    ContainerKey {
                        kind,
                        invocation_namespace: "guest".into(),
                        action: fqn(action),
                        revision: revision.clone(),
                        invoker: 7,
                        container_id: "wsk0_12_guest_act".into(),
                    }
                );
            }
        }
    }
}

#[test]
fn malformed_container_keys_are_errors() {
    let keys = EtcdKeys::default();
    for bad in [
        "",
        "whisk",
        "whisk/namespace/guest/ns/act/3-abc/invokerX/container/c1",
        "whisk/namespace/guest/ns/act/3-abc/worker0/container/c1",
        "whisk/namespace/guest/ns/act/3-abc/invoker0/container/",
        "whisk/namespace/guest/act/3-abc/invoker0/container/c1",
        "whisk/namespace/guest/a/b/c/d/3-abc/invoker0/container/c1",
        "whisk/warmed/guest/ns/act/3-abc/invoker0/container/c1",
        "whisk/warmed/guest/ns/act/3-abc/invoker/-1/container/c1",
        "whisk/in-progress/guest/ns/act/3-abc/scheduler/0/creationId/x",
        "other/namespace/guest/ns/act/3-abc/invoker0/container/c1",
        "whisk/namespace/guest/ns/a b /3-abc/invoker0/container/c1",
    ] {
        assert!(keys.parse_container_key(bad).is_err(), "{bad}");
    }
}

#[test]
fn prefixes_and_other_keys() {
    let keys = EtcdKeys::default();
    let action = fqn("ns/pkg/act");
    assert_eq!(
        keys.containers_prefix(ContainerKeyKind::Existing, "guest", &action, None)
            .unwrap(),
        "whisk/namespace/guest/ns/pkg/act/"
    );
    assert_eq!(
        keys.containers_prefix(ContainerKeyKind::Warmed, "guest", &action, Some(&rev()))
            .unwrap(),
        "whisk/warmed/guest/ns/pkg/act/3-abc/"
    );
    assert_eq!(
        keys.existing_containers_of_namespace("guest").unwrap(),
        "whisk/namespace/guest/"
    );
    let sid = SchedulerInstanceId::new("1").unwrap();
    let cid = CreationId::parse("aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb").unwrap();
    assert_eq!(
        keys.in_progress_container("guest", &action, &rev(), &sid, &cid)
            .unwrap(),
        "whisk/in-progress/guest/ns/pkg/act/3-abc/scheduler/1/creationId/aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb"
    );
    assert_eq!(keys.scheduler(&sid), "whisk/scheduler/1");
    assert_eq!(
        keys.queue_leader("guest", &action).unwrap(),
        "whisk/queue/guest/ns/pkg/act/leader"
    );
    assert_eq!(
        keys.queue_follower("guest", &action, &sid).unwrap(),
        "whisk/queue/guest/ns/pkg/act/follower/1"
    );
    assert_eq!(
        keys.namespace_throttling("guest").unwrap(),
        "whisk/throttling/guest"
    );
    assert_eq!(
        keys.action_throttling("guest", &action).unwrap(),
        "whisk/throttling/guest/ns/pkg/act"
    );
}

#[test]
fn the_cluster_name_is_a_parameter() {
    let keys = EtcdKeys::new("edge1").unwrap();
    assert_eq!(keys.cluster(), "edge1");
    let key = keys
        .container(
            ContainerKeyKind::Existing,
            "guest",
            &fqn("ns/act"),
            &rev(),
            1,
            "c",
        )
        .unwrap();
    assert_eq!(
        key,
        "edge1/namespace/guest/ns/act/3-abc/invoker1/container/c"
    );
    assert!(keys.parse_container_key(&key).is_ok());
    assert!(EtcdKeys::default().parse_container_key(&key).is_err());
    assert!(EtcdKeys::new("").is_err() && EtcdKeys::new("a/b").is_err());
}

#[test]
fn slashes_and_empty_segments_are_refused() {
    let keys = EtcdKeys::default();
    let action = fqn("ns/act");
    let bad_kind = ContainerKeyKind::Existing;
    assert!(matches!(
        keys.container(bad_kind, "gu/est", &action, &rev(), 0, "c"),
        Err(KeyError::BadSegment {
            what: "invocation namespace",
            ..
        })
    ));
    assert!(
        keys.container(bad_kind, "", &action, &rev(), 0, "c")
            .is_err()
    );
    assert!(
        keys.container(bad_kind, "guest", &action, &rev(), 0, "a/b")
            .is_err()
    );
    assert!(
        keys.container(bad_kind, "guest", &action, &DocRevision::new("1/x"), 0, "c")
            .is_err()
    );
    assert!(keys.queue_leader("a/b", &action).is_err());
    assert!(keys.namespace_throttling("").is_err());
}

#[test]
fn nats_subjects() {
    let subjects = Subjects::default();
    let sid = SchedulerInstanceId::new("0").unwrap();
    let ctrl = ControllerInstanceId::new("0").unwrap();
    assert_eq!(subjects.invoker(3), "whisk.invoker3");
    assert_eq!(subjects.creation_ack(&sid), "whisk.creationAck0");
    assert_eq!(subjects.completed(&ctrl), "whisk.completed0");
    let custom = Subjects::new("prod.whisk").unwrap();
    assert_eq!(custom.invoker(0), "prod.whisk.invoker0");
    for bad in ["", "a..b", ".a", "a.*", "a.>", "a b"] {
        assert!(Subjects::new(bad).is_err(), "{bad}");
    }
}
