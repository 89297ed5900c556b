//! Constructors for the messages wasmwhisk itself originates: what the
//! controller side (standalone or cluster) sends the invoker, and what the
//! benchmarks and tests feed the pool. Every id is fresh; every other field
//! takes OpenWhisk's default.

use std::collections::BTreeMap;

use serde_json::Value;

use super::action::{ActionLimits, ExecMetaData, WhiskActionMetaData};
use super::activation::{ActivationMessage, AuthKey, Identity, Namespace, Privilege, UserLimits};
use super::container::{ContainerCreationMessage, ContainerDeletionMessage};
use super::fqn::{EntityName, EntityPath};
use super::ids::{ActivationId, CreationId, DocRevision, SemVer, TransactionId};
use super::instance::{ControllerInstanceId, SchedulerInstanceId};
use super::params::Parameters;

impl WhiskActionMetaData {
    /// The metadata of a code action `namespace/name` of `kind` with
    /// `limits`, version 0.0.1, no parameters or annotations.
    pub fn code_action(
        namespace: EntityPath,
        name: EntityName,
        kind: &str,
        binary: bool,
        limits: ActionLimits,
    ) -> Self {
        WhiskActionMetaData {
            namespace,
            name,
            exec: ExecMetaData::Code {
                kind: kind.to_string(),
                binary,
                main: None,
                image: None,
            },
            parameters: Parameters::default(),
            limits,
            version: SemVer::default(),
            publish: false,
            annotations: Parameters::default(),
            updated: 0,
            binding: None,
        }
    }
}

impl Identity {
    /// The identity of namespace `namespace` (also its subject) with key
    /// `uuid:key`, every right and default limits.
    pub fn basic(namespace: &str, uuid: &str, key: &str) -> Self {
        Identity {
            subject: namespace.to_string(),
            namespace: Namespace {
                name: namespace.to_string(),
                uuid: uuid.to_string(),
            },
            authkey: AuthKey::basic(uuid, key),
            rights: vec![
                Privilege::Read,
                Privilege::Put,
                Privilege::Delete,
                Privilege::Activate,
            ],
            limits: UserLimits::default(),
        }
    }
}

impl ContainerCreationMessage {
    /// A creation message for `action` at `revision`, invoked in
    /// `invocation_namespace`, from scheduler `scheduler` (no gRPC endpoint:
    /// wasmwhisk's sandboxes pull through the activation queue).
    pub fn for_action(
        invocation_namespace: &str,
        action: &WhiskActionMetaData,
        revision: DocRevision,
        scheduler: SchedulerInstanceId,
    ) -> Self {
        ContainerCreationMessage {
            transid: TransactionId::generate(),
            invocation_namespace: invocation_namespace.to_string(),
            action: action.fully_qualified_name(),
            revision,
            whisk_action_meta_data: action.clone(),
            root_scheduler_index: scheduler,
            scheduler_host: String::new(),
            rpc_port: 0,
            retry_count: 0,
            creation_id: CreationId::generate(),
        }
    }
}

impl ContainerDeletionMessage {
    /// A deletion message for `action` up to `revision` in
    /// `invocation_namespace`.
    pub fn for_action(
        invocation_namespace: &str,
        action: &WhiskActionMetaData,
        revision: DocRevision,
    ) -> Self {
        ContainerDeletionMessage {
            transid: TransactionId::generate(),
            invocation_namespace: invocation_namespace.to_string(),
            action: action.fully_qualified_name(),
            revision,
            whisk_action_meta_data: action.clone(),
        }
    }
}

impl ActivationMessage {
    /// An activation of `action` at `revision` by `user`, answered to
    /// `controller`, with parameters `content` (a JSON object).
    pub fn for_action(
        action: &WhiskActionMetaData,
        revision: DocRevision,
        user: Identity,
        controller: ControllerInstanceId,
        content: Option<Value>,
        blocking: bool,
    ) -> Self {
        ActivationMessage {
            transid: TransactionId::generate(),
            action: action.fully_qualified_name(),
            revision,
            user,
            activation_id: ActivationId::generate(),
            root_controller_index: controller,
            blocking,
            content,
            init_args: Vec::new(),
            locked_args: BTreeMap::new(),
            cause: None,
            trace_context: None,
        }
    }
}
