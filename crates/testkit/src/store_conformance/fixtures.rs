//! What the behaviours put into a store: actions, activation records,
//! queries, and the names they are looked up by.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use wasmwhisk_core::entities::{ActivationQuery, NewAction};
use wasmwhisk_core::pool::ports::ExecutableAction;
use wasmwhisk_core::pool::record::fallback_activation_at;
use wasmwhisk_protocol::{
    ActionLimits, ActivationMessage, ActivationResponse, ControllerInstanceId, DocRevision,
    EntityName, EntityPath, FullyQualifiedEntityName, Identity, WhiskActionMetaData,
    WhiskActivation,
};
use wasmwhisk_sandbox::engine::CacheKey;

/// A put of a `wasm` action `path/name` (`path` is `ns` or `ns/pkg`) with
/// `code`, and its compile cache key (the BLAKE3 digest of `code`).
pub fn action(path: &str, name: &str, code: &[u8]) -> NewAction {
    let meta = WhiskActionMetaData::code_action(
        path.parse().expect("an entity path"),
        EntityName::new(name).expect("an entity name"),
        "wasm",
        true,
        ActionLimits::default(),
    );
    NewAction {
        action: ExecutableAction {
            meta,
            revision: DocRevision::empty(),
            code: Arc::from(code),
            code_key: Some(CacheKey(*blake3::hash(code).as_bytes())),
        },
    }
}

/// The record of an activation of action `path/name` invoked by namespace
/// `ns`, started (and ended) at `start` epoch ms: stored under `ns`, with
/// the `path` annotation `path/name`.
pub fn record(ns: &str, path: &str, name: &str, start: u64) -> WhiskActivation {
    let meta = action(path, name, b"code").action.meta;
    let msg = ActivationMessage::for_action(
        &meta,
        DocRevision::new("1-abc"),
        Identity::basic(ns, "uuid", "key"),
        ControllerInstanceId::first(),
        Some(serde_json::json!({"n": start})),
        true,
    );
    fallback_activation_at(
        &msg,
        Some("wasm"),
        ActivationResponse::success(Some(serde_json::json!({"start": start}))),
        UNIX_EPOCH + Duration::from_millis(start),
    )
}

/// `ns[/pkg]/name`.
pub fn fqn(s: &str) -> FullyQualifiedEntityName {
    FullyQualifiedEntityName::parse(s).expect("a fully qualified name")
}

/// `ns` or `ns/pkg`.
pub fn path(s: &str) -> EntityPath {
    s.parse().expect("an entity path")
}

/// At most `limit` records, nothing else asked.
pub fn query(limit: usize) -> ActivationQuery {
    ActivationQuery {
        limit,
        ..ActivationQuery::default()
    }
}

/// The start of each record, in order.
pub fn starts(records: &[WhiskActivation]) -> Vec<u64> {
    records.iter().map(|r| r.start).collect()
}

/// The generation of an action's revision.
pub(super) fn generation(action: &ExecutableAction) -> u64 {
    action.revision.generation().expect("a revision")
}

/// `ns[/pkg]/name@version`: how a list names an action.
pub(super) fn names(list: &[Arc<ExecutableAction>]) -> Vec<String> {
    list.iter()
        .map(|a| a.meta.fully_qualified_name().to_string())
        .collect()
}

/// Asserts that `revision` is `"{generation}-{32 lowercase hex}"`.
pub(super) fn assert_revision(revision: &DocRevision, generation: u64) {
    let text = revision.as_str().expect("a revision");
    let (head, tail) = text.split_once('-').expect("generation-hex");
    assert_eq!(head, generation.to_string(), "{text}");
    assert_eq!(tail.len(), 32, "{text}");
    assert!(
        tail.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{text}"
    );
}
