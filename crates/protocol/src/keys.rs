//! The one place where etcd keys (docs/openwhisk.md §4.3, `EtcdKV`) and NATS subjects
//! (docs/cluster-nats.md#subjects) are built and parsed. Nothing else formats a key or subject.
//!
//! The layout is OpenWhisk's, quirks included, because a scheduler that
//! reads OpenWhisk's keys must read ours:
//!
//! ```text
//! {cluster}/invokers/{N}[/{uniqueName}[/{displayedName}]]            InvokerResourceMessage
//! {cluster}/instance/{invoker{N}|scheduler{sid}|…}/lease               lease id
//! {cluster}/namespace/{invNs}/{fqn}/{rev}/invoker{N}/container/{id}    live (pulling) container
//! {cluster}/warmed/{invNs}/{fqn}/{rev}/invoker/{N}/container/{id}      paused container
//! {cluster}/in-progress/{invNs}/{fqn}/{rev}/scheduler/{sid}/creationId/{cid}
//! {cluster}/scheduler/{sid}                                           SchedulerStates
//! {cluster}/queue/{invNs}/{fqn}/leader | /follower/{sid}              SchedulerEndpoints
//! {cluster}/throttling/{ns} | /{invNs}/{fqn}                          "true" / "false"
//! ```
//!
//! `{fqn}` is the action's name without version (`ns[/pkg]/act`, 2 or 3
//! segments) and `{rev}` the raw revision (`null` when empty, as OpenWhisk
//! writes it). Note `invoker{N}` in live keys but `invoker/{N}` in warmed
//! ones. Schedulers split keys on `/`, so every segment we insert is checked
//! to be non-empty and free of `/`; names inside an
//! [`FullyQualifiedEntityName`] are already validated.

use std::fmt;

use super::fqn::FullyQualifiedEntityName;
use super::ids::{CreationId, DocRevision};
use super::instance::{ControllerInstanceId, InvokerInstanceId, SchedulerInstanceId};

/// The default cluster name (`whisk.cluster.name`) and subject prefix.
pub const DEFAULT_CLUSTER: &str = "whisk";

/// A key or subject that cannot be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A segment that is empty or contains `/`.
    #[error("{what} '{value}' cannot be part of a key: it must be non-empty and contain no '/'")]
    BadSegment {
        /// Which segment (`"invocation namespace"`, `"container id"`, …).
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A key that does not have the expected layout.
    #[error("'{key}' is not a {expected} key")]
    Unrecognized {
        /// The key.
        key: String,
        /// What it was parsed as.
        expected: &'static str,
    },
    /// A subject prefix that is empty or has empty tokens or wildcards.
    #[error("subject prefix '{0}' is not a valid NATS subject")]
    BadSubjectPrefix(String),
}

fn segment<'a>(what: &'static str, value: &'a str) -> Result<&'a str, KeyError> {
    if value.is_empty() || value.contains('/') {
        return Err(KeyError::BadSegment {
            what,
            value: value.to_owned(),
        });
    }
    Ok(value)
}

/// Which kind of container key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKeyKind {
    /// `namespace/…/invoker{N}/container/{id}`: a live container pulling work.
    Existing,
    /// `warmed/…/invoker/{N}/container/{id}`: a paused container.
    Warmed,
}

impl ContainerKeyKind {
    fn prefix_segment(self) -> &'static str {
        match self {
            ContainerKeyKind::Existing => "namespace",
            ContainerKeyKind::Warmed => "warmed",
        }
    }
}

/// A container key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerKey {
    /// Live or paused.
    pub kind: ContainerKeyKind,
    /// The namespace the container runs activations for.
    pub invocation_namespace: String,
    /// The action (without version).
    pub action: FullyQualifiedEntityName,
    /// The action's revision (`null` in the key reads as empty).
    pub revision: DocRevision,
    /// The invoker holding the container.
    pub invoker: u32,
    /// The container's id.
    pub container_id: String,
}

/// Builds and parses the etcd keys of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdKeys {
    cluster: String,
}

impl Default for EtcdKeys {
    /// The keys of cluster `whisk`.
    fn default() -> Self {
        EtcdKeys {
            cluster: DEFAULT_CLUSTER.to_owned(),
        }
    }
}

impl EtcdKeys {
    /// The keys of cluster `cluster` (`whisk.cluster.name`).
    pub fn new(cluster: &str) -> Result<Self, KeyError> {
        Ok(EtcdKeys {
            cluster: segment("cluster name", cluster)?.to_owned(),
        })
    }

    /// The cluster name every key starts with.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// `{cluster}/invokers`: the prefix of every invoker report.
    pub fn invokers_prefix(&self) -> String {
        format!("{}/invokers", self.cluster)
    }

    /// `{cluster}/invokers/{N}[/{uniqueName}[/{displayedName}]]`: where
    /// `invoker` reports its health and memory.
    pub fn invoker(&self, invoker: &InvokerInstanceId) -> String {
        let mut key = format!("{}/{}", self.invokers_prefix(), invoker.instance);
        if let Some(unique) = &invoker.unique_name {
            key.push('/');
            key.push_str(unique);
            if let Some(displayed) = &invoker.displayed_name {
                key.push('/');
                key.push_str(displayed);
            }
        }
        key
    }

    /// Parses an invoker report key: the invoker number, unique name and
    /// displayed name (OpenWhisk's `InvokerKeys.getInstanceId`).
    pub fn parse_invoker_key(
        &self,
        key: &str,
    ) -> Result<(u32, Option<String>, Option<String>), KeyError> {
        let unrecognized = || KeyError::Unrecognized {
            key: key.to_owned(),
            expected: "invoker",
        };
        let rest = key
            .strip_prefix(&self.invokers_prefix())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(unrecognized)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [id] => Ok((id.parse().map_err(|_| unrecognized())?, None, None)),
            [id, unique] => Ok((
                id.parse().map_err(|_| unrecognized())?,
                Some((*unique).to_owned()),
                None,
            )),
            [id, unique, displayed] => Ok((
                id.parse().map_err(|_| unrecognized())?,
                Some((*unique).to_owned()),
                Some((*displayed).to_owned()),
            )),
            _ => Err(unrecognized()),
        }
    }

    /// `{cluster}/instance/{instance}/lease`, where `instance` is the
    /// component's `toString` (`invoker0`, `invoker0/pod/name`, `scheduler0`).
    pub fn instance_lease(&self, instance: &dyn fmt::Display) -> String {
        format!("{}/instance/{instance}/lease", self.cluster)
    }

    /// The lease key of an invoker.
    pub fn invoker_lease(&self, invoker: &InvokerInstanceId) -> String {
        self.instance_lease(invoker)
    }

    /// `{cluster}/{namespace|warmed}/{invNs}/{fqn}/[{rev}/]`: the prefix of an
    /// action's container keys, of one revision or of all.
    pub fn containers_prefix(
        &self,
        kind: ContainerKeyKind,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
        revision: Option<&DocRevision>,
    ) -> Result<String, KeyError> {
        let ns = segment("invocation namespace", invocation_namespace)?;
        let mut key = format!(
            "{}/{}/{ns}/{}/",
            self.cluster,
            kind.prefix_segment(),
            action.as_string_without_version()
        );
        if let Some(rev) = revision {
            key.push_str(segment("revision", &rev.to_string())?);
            key.push('/');
        }
        Ok(key)
    }

    /// `{cluster}/namespace/{invNs}/`: all live containers of a namespace.
    pub fn existing_containers_of_namespace(
        &self,
        invocation_namespace: &str,
    ) -> Result<String, KeyError> {
        let ns = segment("invocation namespace", invocation_namespace)?;
        Ok(format!("{}/namespace/{ns}/", self.cluster))
    }

    /// A container's key: `…/{rev}/invoker{N}/container/{id}` when live,
    /// `…/{rev}/invoker/{N}/container/{id}` when paused.
    pub fn container(
        &self,
        kind: ContainerKeyKind,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
        revision: &DocRevision,
        invoker: u32,
        container_id: &str,
    ) -> Result<String, KeyError> {
        let prefix = self.containers_prefix(kind, invocation_namespace, action, Some(revision))?;
        let id = segment("container id", container_id)?;
        Ok(match kind {
            ContainerKeyKind::Existing => format!("{prefix}invoker{invoker}/container/{id}"),
            ContainerKeyKind::Warmed => format!("{prefix}invoker/{invoker}/container/{id}"),
        })
    }

    /// Parses a live or warmed container key.
    pub fn parse_container_key(&self, key: &str) -> Result<ContainerKey, KeyError> {
        let unrecognized = || KeyError::Unrecognized {
            key: key.to_owned(),
            expected: "container",
        };
        let rest = key
            .strip_prefix(self.cluster.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(unrecognized)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (kind, head, invoker, container_id) = match parts.as_slice() {
            ["warmed", head @ .., rev, "invoker", n, "container", id] => {
                (ContainerKeyKind::Warmed, (head, *rev), *n, *id)
            }
            ["namespace", head @ .., rev, inv, "container", id] => {
                let n = inv.strip_prefix("invoker").ok_or_else(unrecognized)?;
                (ContainerKeyKind::Existing, (head, *rev), n, *id)
            }
            _ => return Err(unrecognized()),
        };
        let (head, rev) = head;
        // head = invNs, then the action's 2 or 3 segments.
        let (invocation_namespace, action) = match head {
            [ns, action @ ..] if (2..=3).contains(&action.len()) => (*ns, action.join("/")),
            _ => return Err(unrecognized()),
        };
        if invocation_namespace.is_empty() || container_id.is_empty() || rev.is_empty() {
            return Err(unrecognized());
        }
        Ok(ContainerKey {
            kind,
            invocation_namespace: invocation_namespace.to_owned(),
            action: action.parse().map_err(|_| unrecognized())?,
            revision: match rev {
                "null" => DocRevision::empty(),
                rev => DocRevision::new(rev),
            },
            invoker: invoker.parse().map_err(|_| unrecognized())?,
            container_id: container_id.to_owned(),
        })
    }

    /// `{cluster}/in-progress/{invNs}/{fqn}/{rev}/`: the creations schedulers
    /// are waiting for, of one action and revision.
    pub fn in_progress_prefix(
        &self,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
        revision: &DocRevision,
    ) -> Result<String, KeyError> {
        let ns = segment("invocation namespace", invocation_namespace)?;
        let rev = segment("revision", &revision.to_string())?.to_owned();
        Ok(format!(
            "{}/in-progress/{ns}/{}/{rev}/",
            self.cluster,
            action.as_string_without_version(),
        ))
    }

    /// `{cluster}/in-progress/{invNs}/{fqn}/{rev}/scheduler/{sid}/creationId/{cid}`:
    /// a creation a scheduler is waiting for.
    pub fn in_progress_container(
        &self,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
        revision: &DocRevision,
        scheduler: &SchedulerInstanceId,
        creation_id: &CreationId,
    ) -> Result<String, KeyError> {
        let prefix = self.in_progress_prefix(invocation_namespace, action, revision)?;
        Ok(format!(
            "{prefix}scheduler/{}/creationId/{creation_id}",
            scheduler.as_str()
        ))
    }

    /// `{cluster}/scheduler`: the prefix of every scheduler entry.
    pub fn schedulers_prefix(&self) -> String {
        format!("{}/scheduler", self.cluster)
    }

    /// `{cluster}/scheduler/{sid}`.
    pub fn scheduler(&self, scheduler: &SchedulerInstanceId) -> String {
        format!("{}/{}", self.schedulers_prefix(), scheduler.as_str())
    }

    /// `{cluster}/queue/{invNs}/{fqn}`: the prefix of an action's queue keys.
    pub fn queue_prefix(
        &self,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
    ) -> Result<String, KeyError> {
        let ns = segment("invocation namespace", invocation_namespace)?;
        Ok(format!(
            "{}/queue/{ns}/{}",
            self.cluster,
            action.as_string_without_version()
        ))
    }

    /// `{cluster}/queue/{invNs}/{fqn}/leader`: where the action's queue is served.
    pub fn queue_leader(
        &self,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
    ) -> Result<String, KeyError> {
        Ok(format!(
            "{}/leader",
            self.queue_prefix(invocation_namespace, action)?
        ))
    }

    /// `{cluster}/queue/{invNs}/{fqn}/follower/{sid}`.
    pub fn queue_follower(
        &self,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
        scheduler: &SchedulerInstanceId,
    ) -> Result<String, KeyError> {
        let prefix = self.queue_prefix(invocation_namespace, action)?;
        Ok(format!("{prefix}/follower/{}", scheduler.as_str()))
    }

    /// `{cluster}/throttling/{ns}`: the namespace throttle flag.
    pub fn namespace_throttling(&self, namespace: &str) -> Result<String, KeyError> {
        let ns = segment("namespace", namespace)?;
        Ok(format!("{}/throttling/{ns}", self.cluster))
    }

    /// `{cluster}/throttling/{invNs}/{fqn}`: the action throttle flag.
    pub fn action_throttling(
        &self,
        invocation_namespace: &str,
        action: &FullyQualifiedEntityName,
    ) -> Result<String, KeyError> {
        let ns = segment("invocation namespace", invocation_namespace)?;
        Ok(format!(
            "{}/throttling/{ns}/{}",
            self.cluster,
            action.as_string_without_version()
        ))
    }
}

/// Builds the NATS subjects that stand in for OpenWhisk's Kafka topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Default for Subjects {
    /// Subjects under `whisk.`.
    fn default() -> Self {
        Subjects {
            prefix: DEFAULT_CLUSTER.to_owned(),
        }
    }
}

impl Subjects {
    /// Subjects under `{prefix}.`; the prefix is one or more non-empty tokens
    /// without wildcards or whitespace.
    pub fn new(prefix: &str) -> Result<Self, KeyError> {
        let valid = !prefix.is_empty()
            && prefix.split('.').all(|token| {
                !token.is_empty()
                    && !token
                        .chars()
                        .any(|c| c.is_whitespace() || c == '*' || c == '>')
            });
        if !valid {
            return Err(KeyError::BadSubjectPrefix(prefix.to_owned()));
        }
        Ok(Subjects {
            prefix: prefix.to_owned(),
        })
    }

    /// `{prefix}.invoker{N}`: container creation and deletion messages.
    pub fn invoker(&self, invoker: u32) -> String {
        format!("{}.invoker{invoker}", self.prefix)
    }

    /// `{prefix}.creationAck{sid}`: creation acks for a scheduler.
    pub fn creation_ack(&self, scheduler: &SchedulerInstanceId) -> String {
        format!("{}.creationAck{}", self.prefix, scheduler.as_str())
    }

    /// `{prefix}.completed{ctrl}`: activation acks for a controller.
    pub fn completed(&self, controller: &ControllerInstanceId) -> String {
        format!("{}.completed{}", self.prefix, controller.as_str())
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
