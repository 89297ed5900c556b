//! OpenWhisk's wire types (docs/openwhisk.md §3, §4.3, §6.5): the JSON of every
//! message, field for field, so a tool that reads OpenWhisk's messages reads
//! ours, and ours read theirs.
//!
//! # What mirrors what
//! | module | OpenWhisk source | carries |
//! |---|---|---|
//! | [`ids`] | `common/TransactionId`, `entity/{ActivationId,CreationId,DocInfo,SemVer}` | transaction, activation and creation ids, revisions, versions |
//! | [`fqn`] | `entity/{EntityPath,FullyQualifiedEntityName}` | validated names, `ns[/pkg]/act` |
//! | [`size`] | `entity/Size` | `"256 MB"` sizes |
//! | [`instance`] | `entity/InstanceId` | scheduler, controller and invoker ids |
//! | [`params`] | `entity/Parameter` | parameters and annotations |
//! | [`depth`] | — | the nesting limit of JSON coming in, so stored records stay readable |
//! | [`action`] | `entity/WhiskAction` (`WhiskActionMetaData`), `Exec`, `Limits` | action metadata (§3.2) |
//! | [`activation`] | `connector/Message` (`ActivationMessage`), `entity/Identity` | activation message (§3.1) |
//! | [`container`] | `connector/Message` (container messages) | creation, deletion, ack, 13 errors (§3.2, §3.3) |
//! | [`record`] | `entity/{WhiskActivation,ActivationResult}` | the activation record (§6.5) |
//! | [`completion`] | `connector/Message` (acknowledgements) | acks to the controller (§3.4) |
//! | [`resource`] | `connector/Message` (`InvokerResourceMessage`), `common/Message` (`InvokerState`) | etcd report (§3.5, §3.6) |
//! | [`keys`] | `etcd/EtcdUtils` (`EtcdKV`) | every etcd key and NATS subject (§4.3, docs/cluster-nats.md#subjects) |
//!
//! # Rules shared by every type
//! - **Omitted, not null.** spray-json leaves out a `None` field; so do we
//!   (`skip_serializing_if`). Fields that are not optional in OpenWhisk are
//!   always written, even when empty (`initArgs: []`, `tags: []`).
//! - **Lenient where OpenWhisk has a default, strict elsewhere.** A field
//!   whose Scala constructor has a default (`retryCount`, `initArgs`,
//!   `lockedArgs`, an action's `limits`, a record's `logs`, …) may be absent
//!   on read and gets that default. Everything else is validated when read:
//!   ids are 32 lowercase hex characters, names follow OpenWhisk's entity
//!   name pattern (so no `/` can reach a key), ports fit 16 bits. Malformed
//!   input is a `serde_json::Error` naming the problem, never a panic.
//! - **Field order** is OpenWhisk's where a reader might see it (the invoker
//!   id), otherwise the declaration order; JSON readers do not depend on it.
//!
//! # Choices where OpenWhisk is quirky or silent
//! - **Ack error names (§3.3).** OpenWhisk's reader cannot parse
//!   `ShuttingDownError` and expects the misspelling `NonExecutbleActionError`.
//!   We write all 13 names correctly and read all 13 (case-insensitively, as
//!   OpenWhisk does), accepting the misspelling too. See [`container`].
//! - **Malformed transaction ids** are errors; OpenWhisk silently reads them
//!   as `sid_unknown`.
//! - **Sizes** are stored in bytes and written `"<n> MB"` whenever the value
//!   is whole megabytes (else KB, else B), which is the text OpenWhisk sends.
//! - **Times** (`start`, `end`, `updated`) are epoch milliseconds; OpenWhisk's
//!   reader also takes ISO-8601 strings, which nothing on the wire sends.
//! - **Ack senders.** OpenWhisk's scheduler sends some fallback completions
//!   with a scheduler id as `instance`, which OpenWhisk's own reader rejects;
//!   [`InstanceId`] reads invoker, controller and scheduler ids.
//! - **Empty revisions** appear as `null` inside etcd keys, as OpenWhisk
//!   writes them, and read back as empty.
//! - **Activation and creation ids** are read only from strings (OpenWhisk
//!   also takes a 32-digit JSON number, which no sender produces).

pub mod action;
pub mod activation;
pub mod completion;
pub mod container;
pub mod depth;
pub mod fqn;
pub mod ids;
pub mod instance;
pub mod keys;
pub mod make;
pub mod params;
pub mod record;
pub mod resource;
pub mod size;

/// Sample messages as OpenWhisk writes them, for the tests of this crate
/// and of the crates above it (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

pub use action::{ActionLimits, BLACKBOX_KIND, ExecMetaData, WhiskActionMetaData};
pub use activation::{ActivationMessage, AuthKey, Identity, Namespace, Privilege, UserLimits};
pub use completion::{
    AcknowledgementMessage, ActivationOrId, CombinedCompletionAndResultMessage, CompletionMessage,
    ResultMessage,
};
pub use container::{
    ContainerCreationAckMessage, ContainerCreationError, ContainerCreationMessage,
    ContainerDeletionMessage, ContainerMessage,
};
pub use fqn::{EntityName, EntityPath, FullyQualifiedEntityName, NameError};
pub use ids::{ActivationId, CreationId, DocRevision, IdError, SemVer, TransactionId};
pub use instance::{
    ControllerInstanceId, InstanceId, InstanceIdError, InvokerInstanceId, SchedulerInstanceId,
};
pub use keys::{ContainerKey, ContainerKeyKind, EtcdKeys, KeyError, Subjects};
pub use params::{Parameter, Parameters};
pub use record::{ActivationResponse, StatusCode, WhiskActivation};
pub use resource::{InvokerResourceMessage, InvokerState, SchedulerEndpoints, SchedulerStates};
pub use size::{ByteSize, ByteSizeError};
