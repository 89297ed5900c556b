//! The activation record and the acks that report it (docs/openwhisk.md §2.4 steps
//! 5–6, §3.4, §6.5): OpenWhisk's `constructWhiskActivation`,
//! `generateFallbackActivation` and the ack choice of
//! `FunctionPullingContainerProxy.initializeAndRunActivation`.
//!
//! Everything here is pure: the pool measures the times, runs the sandbox
//! and sends the acks; this module only decides what they say.
//!
//! # Times
//! ```text
//!  transid.start      init start        run start                run end
//!       │──waitTime──────│────initTime──────│────── run duration ─────│
//!                        │◀──────────────── duration ────────────────▶│
//!                      start                                        end
//! ```
//! Without init, `start` is the run's start and `waitTime` ends there. The
//! `timeout` annotation is the run's duration reaching the time limit (or,
//! for an init that failed, the init's: OpenWhisk builds that record from the
//! init interval alone).
//!
//! # When logs count as "collected"
//! OpenWhisk splits a blocking ack into a result (sent at once) and a
//! completion (sent once logs are collected) when `logsToBeCollected`: the
//! action's log limit is not 0 and the log store is not out-of-band. Our logs
//! are captured in-band by the sandbox, so the store is never out-of-band:
//! `logs_collected` = ([`logs_to_be_collected`]) = the log limit ≠ 0. Logs are
//! already in hand when the record is built, but the acks carry the record as
//! OpenWhisk's do — built before log collection, so **without logs**; only the
//! stored record has them.
//!
//! # Choices where OpenWhisk is ambiguous
//! - **Annotation order.** OpenWhisk keeps annotations in a Scala immutable
//!   map; past four entries (always, here) it iterates in hash order. We
//!   write that order, computed once from the keys' hashes and matching the
//!   records OpenWhisk produces: `causedBy`, `binding`, `path`, `waitTime`,
//!   `kind`, `timeout`, `limits`, `initTime`. A fallback record has at most
//!   three, kept in insertion order: `path`, `kind`, `causedBy`.
//! - **Fallback `causedBy`.** docs/openwhisk.md §6.5 lists only `path` and `kind` for
//!   fallback records; OpenWhisk's source adds `causedBy` for a sequence
//!   component, and so do we.
//! - **`binding`** comes from the message's action name, as in OpenWhisk,
//!   or else from the action metadata's binding.
//! - **`publish`** is always false: OpenWhisk never copies the action's flag.
//! - **`size`** is the length of the result the action returned. OpenWhisk
//!   measures the raw body (UTF-16 units); the sandbox hands us the parsed
//!   result, so we count the bytes of its compact JSON for successes and
//!   application errors, the original length for a truncated result (from
//!   the truncation message), and leave it out for developer and whisk
//!   errors, most of which (traps, timeouts, memory) have no body at all.
//! - **`waitTime`** saturates at 0 when clocks disagree; OpenWhisk would
//!   write a negative number.
//! - **Invoking namespace.** OpenWhisk's identity carries a validated name;
//!   ours is a plain string. Should it not be a valid entity name, the record
//!   falls back to the action's namespace rather than failing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use wasmwhisk_protocol::fqn::{EntityName, EntityPath};
use wasmwhisk_protocol::{
    AcknowledgementMessage, ActionLimits, ActivationMessage, ActivationResponse,
    CombinedCompletionAndResultMessage, CompletionMessage, InstanceId, InvokerInstanceId,
    Parameter, Parameters, ResultMessage, StatusCode, WhiskActionMetaData, WhiskActivation,
};
use wasmwhisk_sandbox::{self as sandbox, ResponseStatus};

/// Annotation keys of activation records (`WhiskActivation.*Annotation`).
pub mod annotation {
    /// The action's limits, `{"timeout","memory","logs","concurrency","instances"?}`.
    pub const LIMITS: &str = "limits";
    /// The action's path without version, `ns[/pkg]/act`.
    pub const PATH: &str = "path";
    /// The action's kind.
    pub const KIND: &str = "kind";
    /// Whether the run reached the time limit.
    pub const TIMEOUT: &str = "timeout";
    /// `"sequence"` for a component of a sequence.
    pub const CAUSED_BY: &str = "causedBy";
    /// Milliseconds spent in init (cold and prewarmed starts only).
    pub const INIT_TIME: &str = "initTime";
    /// Milliseconds from the controller's receipt to init (or run) start.
    pub const WAIT_TIME: &str = "waitTime";
    /// The package binding the action was invoked through, `ns/pkg`.
    pub const BINDING: &str = "binding";
}

/// The value of `causedBy` (OpenWhisk's `Exec.SEQUENCE`).
const SEQUENCE: &str = "sequence";

/// When an activation's init and run happened, as the pool measured them.
///
/// An init that failed has no run: see [`RunTimes::init_failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunTimes {
    /// When init started and how long it took; `None` on a warm start.
    pub init: Option<(SystemTime, Duration)>,
    /// When the run started.
    pub run_start: SystemTime,
    /// How long the run took.
    pub run_duration: Duration,
}

impl RunTimes {
    /// A run on a sandbox that was already initialized.
    pub fn warm(run_start: SystemTime, run_duration: Duration) -> Self {
        RunTimes {
            init: None,
            run_start,
            run_duration,
        }
    }

    /// A run after an init (cold start or specialized stem cell).
    pub fn cold(
        init_start: SystemTime,
        init_duration: Duration,
        run_start: SystemTime,
        run_duration: Duration,
    ) -> Self {
        RunTimes {
            init: Some((init_start, init_duration)),
            run_start,
            run_duration,
        }
    }

    /// An init that failed, so nothing ran: a zero-length run at init's end.
    /// The record then spans the init (to within a millisecond).
    pub fn init_failed(init_start: SystemTime, init_duration: Duration) -> Self {
        RunTimes {
            init: Some((init_start, init_duration)),
            run_start: init_start.checked_add(init_duration).unwrap_or(init_start),
            run_duration: Duration::ZERO,
        }
    }

    /// The record's `start`: the run's start, less the init time (whole
    /// milliseconds, as OpenWhisk's `minusMillis`) when init ran.
    pub fn start(&self) -> SystemTime {
        match self.init {
            Some((_, init)) => {
                let init = Duration::from_millis(millis(init));
                self.run_start.checked_sub(init).unwrap_or(UNIX_EPOCH)
            }
            None => self.run_start,
        }
    }

    /// The record's `end`: the run's end.
    pub fn end(&self) -> SystemTime {
        self.run_start
            .checked_add(self.run_duration)
            .unwrap_or(self.run_start)
    }

    /// Whether the run (or the failed init) reached `limit`. An init that
    /// reaches the limit fails, so checking both equals OpenWhisk's choice of
    /// one interval.
    pub fn timed_out(&self, limit: Duration) -> bool {
        self.run_duration >= limit || self.init.is_some_and(|(_, init)| init >= limit)
    }
}

/// Whole milliseconds of `d` (Java's `Duration.toMillis`).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Epoch milliseconds of `t` (Java's `Instant.toEpochMilli`); 0 before 1970.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

/// Milliseconds from `from` to `to`, 0 if `to` is earlier.
fn millis_between(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from).map(millis).unwrap_or(0)
}

/// The wire status code of a sandbox status.
pub fn status_code(status: ResponseStatus) -> StatusCode {
    match status {
        ResponseStatus::Success => StatusCode::Success,
        ResponseStatus::ApplicationError => StatusCode::ApplicationError,
        ResponseStatus::ActionDeveloperError => StatusCode::DeveloperError,
        ResponseStatus::WhiskInternalError => StatusCode::WhiskError,
    }
}

/// The prefix of the truncation message, before the original length.
const TRUNCATED_PREFIX: &str = "The action produced a response that exceeded the allowed length: ";

/// The `size` of a response (see the module doc).
fn response_size(response: &sandbox::RunResponse) -> Option<u64> {
    match response.status {
        ResponseStatus::Success => compact_len(&response.result),
        ResponseStatus::ApplicationError => response
            .error_message()
            .and_then(|m| m.strip_prefix(TRUNCATED_PREFIX))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .or_else(|| compact_len(&response.result)),
        ResponseStatus::ActionDeveloperError | ResponseStatus::WhiskInternalError => None,
    }
}

/// Bytes of `v` as compact JSON.
fn compact_len(v: &Value) -> Option<u64> {
    serde_json::to_string(v)
        .ok()
        .and_then(|s| u64::try_from(s.len()).ok())
}

/// The record's `response` of a sandbox's response: status code, the
/// result, and its `size`.
pub fn record_response(response: &sandbox::RunResponse) -> ActivationResponse {
    ActivationResponse {
        status_code: status_code(response.status),
        result: Some(response.result.clone()),
        size: response_size(response),
    }
}

/// The invoking namespace as a path (`msg.user.namespace.name.toPath`).
fn invoking_namespace(msg: &ActivationMessage) -> EntityPath {
    match EntityName::new(msg.user.namespace.name.clone()) {
        Ok(name) => EntityPath::namespace(name),
        Err(error) => {
            tracing::warn!(
                namespace = %msg.user.namespace.name,
                %error,
                "invoking namespace is not an entity name; recording the action's namespace"
            );
            EntityPath::namespace(msg.action.namespace().clone())
        }
    }
}

/// The `limits` annotation: the action's limits as OpenWhisk writes them.
fn limits_json(limits: &ActionLimits) -> Value {
    let mut obj = Map::new();
    obj.insert("timeout".into(), limits.timeout.into());
    obj.insert("memory".into(), limits.memory.into());
    obj.insert("logs".into(), limits.logs.into());
    obj.insert("concurrency".into(), limits.concurrency.into());
    if let Some(instances) = limits.instances {
        obj.insert("instances".into(), instances.into());
    }
    Value::Object(obj)
}

/// The record of an activation that ran (OpenWhisk's
/// `constructWhiskActivation`, docs/openwhisk.md §6.5).
///
/// `response` is the sandbox's (of the run, or of the failed init), `logs`
/// the captured lines (init's first on a cold start), `timeout_limit` the
/// time limit the run was held to.
pub fn build_activation(
    msg: &ActivationMessage,
    action: &WhiskActionMetaData,
    response: &sandbox::RunResponse,
    logs: Vec<String>,
    times: &RunTimes,
    timeout_limit: Duration,
) -> WhiskActivation {
    let start = times.start();
    let end = times.end();
    let wait_end = times
        .init
        .map_or(times.run_start, |(init_start, _)| init_start);
    let wait_ms = epoch_ms(wait_end).saturating_sub(msg.transid.start_ms);
    let binding = msg.action.binding().or(action.binding.as_ref());

    // OpenWhisk's (hash) order; see the module doc.
    let mut annotations = Vec::with_capacity(8);
    if msg.cause.is_some() {
        annotations.push(Parameter::new(annotation::CAUSED_BY, SEQUENCE));
    }
    if let Some(binding) = binding {
        annotations.push(Parameter::new(annotation::BINDING, binding.to_string()));
    }
    annotations.push(Parameter::new(
        annotation::PATH,
        action.fully_qualified_name().as_string_without_version(),
    ));
    annotations.push(Parameter::new(annotation::WAIT_TIME, wait_ms));
    annotations.push(Parameter::new(annotation::KIND, action.exec.kind()));
    annotations.push(Parameter::new(
        annotation::TIMEOUT,
        times.timed_out(timeout_limit),
    ));
    annotations.push(Parameter::new(
        annotation::LIMITS,
        limits_json(&action.limits),
    ));
    if let Some((_, init)) = times.init {
        annotations.push(Parameter::new(annotation::INIT_TIME, millis(init)));
    }

    WhiskActivation {
        namespace: invoking_namespace(msg),
        name: action.name.clone(),
        subject: msg.user.subject.clone(),
        activation_id: msg.activation_id.clone(),
        start: epoch_ms(start),
        end: epoch_ms(end),
        cause: msg.cause.clone(),
        response: record_response(response),
        logs,
        version: action.version,
        publish: false,
        annotations: Parameters(annotations),
        duration: Some(millis_between(start, end)),
    }
}

/// The record stored when the activation could not run at all (action not
/// found, limits refused, …): OpenWhisk's `generateFallbackActivation`, with
/// `start` = `end` = now and duration 0. `kind` is the action's kind when
/// known (the annotation is left out otherwise).
pub fn fallback_activation(
    msg: &ActivationMessage,
    kind: Option<&str>,
    response: ActivationResponse,
) -> WhiskActivation {
    fallback_activation_at(msg, kind, response, SystemTime::now())
}

/// [`fallback_activation`] at time `now`.
pub fn fallback_activation_at(
    msg: &ActivationMessage,
    kind: Option<&str>,
    response: ActivationResponse,
    now: SystemTime,
) -> WhiskActivation {
    let now = epoch_ms(now);
    let mut annotations = vec![Parameter::new(
        annotation::PATH,
        msg.action.as_string_without_version(),
    )];
    if let Some(kind) = kind {
        annotations.push(Parameter::new(annotation::KIND, kind));
    }
    if msg.cause.is_some() {
        annotations.push(Parameter::new(annotation::CAUSED_BY, SEQUENCE));
    }
    WhiskActivation {
        namespace: invoking_namespace(msg),
        name: msg.action.name().clone(),
        subject: msg.user.subject.clone(),
        activation_id: msg.activation_id.clone(),
        start: now,
        end: now,
        cause: msg.cause.clone(),
        response,
        logs: Vec::new(),
        version: msg.action.version().unwrap_or_default(),
        publish: false,
        annotations: Parameters(annotations),
        duration: Some(0),
    }
}

/// OpenWhisk's `logsToBeCollected` for in-band logs: the log limit is not 0.
pub fn logs_to_be_collected(action: &WhiskActionMetaData) -> bool {
    action.limits.logs != 0
}

/// The acks for `activation` in the order they are sent (docs/openwhisk.md §2.4
/// step 6), to `whisk.completed{msg.rootControllerIndex}`:
///
/// | blocking | `logs_collected` | acks |
/// |---|---|---|
/// | yes | yes | `ResultMessage`, then `CompletionMessage` |
/// | yes | no | `CombinedCompletionAndResultMessage` |
/// | no | either | `CompletionMessage` |
///
/// Non-blocking acks are shrunk (a completion has nothing to shrink). The
/// activation in a result-carrying ack has no logs, as OpenWhisk's (see the
/// module doc). `isSystemError` is `activation.response.is_whisk_error()`.
pub fn completion_acks(
    activation: &WhiskActivation,
    msg: &ActivationMessage,
    invoker: &InvokerInstanceId,
    logs_collected: bool,
) -> Vec<AcknowledgementMessage> {
    let instance = InstanceId::from(invoker.clone());
    let transid = msg.transid.clone();
    let completion = CompletionMessage::new(transid.clone(), activation, instance.clone());
    if !msg.blocking {
        return vec![AcknowledgementMessage::from(completion).shrink()];
    }
    let without_logs = WhiskActivation {
        logs: Vec::new(),
        ..activation.clone()
    };
    if logs_collected {
        vec![
            ResultMessage::new(transid, without_logs).into(),
            completion.into(),
        ]
    } else {
        vec![CombinedCompletionAndResultMessage::new(transid, without_logs, instance).into()]
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
