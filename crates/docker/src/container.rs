//! One running container: `init` and `run` over OpenWhisk's protocol,
//! `pause`/`resume`, and its removal.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::follower::LogFollower;
use super::http::{self, Failure};
use super::protocol::{self, InitVerdict, RunVerdict};
use super::{Docker, DockerError};
use wasmwhisk_sandbox::action::{ActivationContext, InitArgs, SandboxLimits};
use wasmwhisk_sandbox::{InitFailure, RunReport, RunResponse, messages};

/// How long an activation's logs may take to reach their sentinels once
/// the proxy answered (OpenWhisk's `waitForLogs`, 2 s).
const SENTINEL_WAIT: Duration = Duration::from_secs(2);
/// How long to look for the sentinels when the proxy did not answer
/// (timeout, lost connection): OpenWhisk does not wait for them after a
/// developer error; this only lets lines already written arrive.
const NO_ANSWER_WAIT: Duration = Duration::from_millis(200);
/// Largest `/init` answer read (its body only matters as an error message).
const MAX_INIT_ANSWER: usize = 64 * 1024;

/// Give the activation back to the queue: the container answered 503 (it
/// is shutting down) or refused the connection. The container is retired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the container cannot take the activation: {0}")]
pub struct Reschedule(pub String);

/// Why `init` failed.
#[derive(Debug)]
pub enum ContainerInitError {
    /// The action's fault (a bad answer, timeout, memory, crash): the first
    /// activation's developer error, with init's logs.
    Failed(InitFailure),
    /// The container answered 503: give the activation back to the queue.
    Reschedule(Reschedule),
}

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifecycle {
    /// Running, no code yet (a stem cell).
    Fresh,
    /// `/init` succeeded.
    Initialized,
    /// A developer or system error ended it; the pool destroys it.
    Retired,
}

/// Owns one running container; removes it when destroyed or dropped.
#[derive(Debug)]
pub struct DockerContainer {
    docker: Docker,
    id: String,
    name: String,
    /// `http://<ip>:8080`.
    base_url: String,
    logs: LogFollower,
    lifecycle: Lifecycle,
    /// Set by `destroy`, so `Drop` does not remove the container again.
    destroyed: bool,
}

impl DockerContainer {
    pub(super) fn new(
        docker: Docker,
        id: String,
        name: String,
        base_url: String,
        logs: LogFollower,
    ) -> Self {
        DockerContainer {
            docker,
            id,
            name,
            base_url,
            logs,
            lifecycle: Lifecycle::Fresh,
            destroyed: false,
        }
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's name, `wasmwhisk_<owner>_<sandbox id>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its action proxy listens, `http://<ip>:8080`.
    pub fn address(&self) -> &str {
        &self.base_url
    }

    /// True after a developer or system error: the pool destroys it.
    pub fn is_retired(&self) -> bool {
        self.lifecycle == Lifecycle::Retired
    }

    /// OpenWhisk's `/init`: gives the container its code, once. Waits for
    /// the proxy to listen (refused connections are retried every 50 ms)
    /// within the action's timeout. On success init's log lines wait for
    /// the first activation; on failure the container is retired and the
    /// failure is the first activation's developer error.
    pub async fn init(
        &mut self,
        args: InitArgs,
        limits: SandboxLimits,
    ) -> Result<Duration, ContainerInitError> {
        if self.lifecycle != Lifecycle::Fresh {
            self.lifecycle = Lifecycle::Retired;
            return Err(ContainerInitError::Failed(InitFailure {
                response: RunResponse::whisk_error("the container was already initialized"),
                logs: Vec::new(),
                duration: Duration::ZERO,
            }));
        }
        let log_limit = limits.log_bytes();
        self.logs.begin(log_limit);
        let body = Bytes::from(protocol::init_body(&args));
        let url = format!("{}/init", self.base_url);
        let start = SystemTime::now();
        let started = Instant::now();
        let answer = http::post_retrying_connect(
            &self.docker.inner.http,
            &url,
            body,
            limits.timeout,
            MAX_INIT_ANSWER,
        )
        .await;
        let duration = started.elapsed();
        let failure = match answer {
            Ok(reply) => match protocol::classify_init(&reply) {
                InitVerdict::Ready => {
                    self.lifecycle = Lifecycle::Initialized;
                    return Ok(duration);
                }
                InitVerdict::Reschedule => {
                    self.lifecycle = Lifecycle::Retired;
                    return Err(ContainerInitError::Reschedule(Reschedule(format!(
                        "container {} answered /init with 503 (shutting down)",
                        self.name
                    ))));
                }
                InitVerdict::Failed(_) if duration >= limits.timeout => {
                    Ending::timed_out(messages::init_timed_out(limits.timeout), true)
                }
                InitVerdict::Failed(response) => Ending::of(response, true),
            },
            Err(Failure::Timeout) => {
                Ending::timed_out(messages::init_timed_out(limits.timeout), false)
            }
            Err(Failure::Connect(cause) | Failure::Lost(cause)) => {
                tracing::debug!(container = %self.name, %cause, "/init got no answer");
                Ending::of(RunResponse::developer_error(messages::ABNORMAL_INIT), false)
            }
        };
        self.lifecycle = Lifecycle::Retired;
        let (response, logs, _) = self.finish(failure, start, log_limit).await;
        Err(ContainerInitError::Failed(InitFailure {
            response,
            logs,
            duration,
        }))
    }

    /// OpenWhisk's `/run`: one activation with `params`. A developer error
    /// (bad answer, timeout, memory, crash) retires the container; a 503 or
    /// a refused connection is a [`Reschedule`] and retires it too.
    pub async fn run(
        &mut self,
        context: ActivationContext,
        params: Map<String, Value>,
        limits: SandboxLimits,
    ) -> Result<RunReport, Reschedule> {
        let start = SystemTime::now();
        if self.lifecycle != Lifecycle::Initialized {
            let why = match self.lifecycle {
                Lifecycle::Fresh => "the container was not initialized",
                _ => "the container was retired",
            };
            return Ok(RunReport {
                response: RunResponse::whisk_error(why),
                logs: Vec::new(),
                start,
                duration: Duration::ZERO,
            });
        }
        let log_limit = limits.log_bytes();
        self.logs.begin(log_limit);
        let deadline = wasmwhisk_sandbox::epoch_millis(start + limits.timeout);
        let body = Bytes::from(protocol::run_body(&context, params, deadline).to_string());
        let url = format!("{}/run", self.base_url);
        let max_bytes = self.docker.inner.settings.max_result_bytes;
        let started = Instant::now();
        let answer = http::post(
            &self.docker.inner.http,
            &url,
            body,
            limits.timeout,
            max_bytes,
        )
        .await;
        let duration = started.elapsed();
        let ending = match answer {
            Ok(_) if duration >= limits.timeout => {
                Ending::timed_out(messages::timed_out(limits.timeout), true)
            }
            Ok(reply) => match protocol::classify_run(&reply, max_bytes) {
                RunVerdict::Response(response) => Ending::of(response, true),
                RunVerdict::Reschedule => {
                    self.lifecycle = Lifecycle::Retired;
                    return Err(Reschedule(format!(
                        "container {} answered /run with 503 (shutting down)",
                        self.name
                    )));
                }
            },
            Err(Failure::Timeout) => Ending::timed_out(messages::timed_out(limits.timeout), false),
            Err(Failure::Connect(cause)) => {
                self.lifecycle = Lifecycle::Retired;
                return Err(Reschedule(format!(
                    "container {} refused the connection to /run: {cause}",
                    self.name
                )));
            }
            Err(Failure::Lost(cause)) => {
                tracing::debug!(container = %self.name, %cause, "/run got no answer");
                Ending::of(RunResponse::developer_error(messages::ABNORMAL_RUN), false)
            }
        };
        if ending.response.status.retires_sandbox() {
            self.lifecycle = Lifecycle::Retired;
        }
        let answered = ending.answered;
        let (response, logs, logs_lost) = self.finish(ending, start, log_limit).await;
        // OpenWhisk's `LogCollectingException`: the activation keeps its
        // response and the lines that came, and the container, whose logs
        // can no longer be read, is destroyed. Sentinels that are only late
        // keep it: an image may write none (OpenWhisk does not wait for
        // them from blackbox images).
        if answered && logs_lost && log_limit > 0 {
            self.lifecycle = Lifecycle::Retired;
        }
        Ok(RunReport {
            response,
            logs,
            start,
            duration,
        })
    }

    /// `docker pause`: freezes the container while it is warm and idle.
    pub async fn pause(&self) -> Result<(), DockerError> {
        self.docker
            .inner
            .client
            .pause_container(&self.id)
            .await
            .map_err(|e| {
                self.docker.error(e, |m| {
                    DockerError::Daemon(format!("pausing {}: {m}", self.name))
                })
            })
    }

    /// `docker unpause`: thaws a paused container.
    pub async fn resume(&self) -> Result<(), DockerError> {
        self.docker
            .inner
            .client
            .unpause_container(&self.id)
            .await
            .map_err(|e| {
                self.docker.error(e, |m| {
                    DockerError::Daemon(format!("resuming {}: {m}", self.name))
                })
            })
    }

    /// `docker rm -f`, awaited. A failure is logged: the owner's
    /// [`Docker::remove_owned`] at shutdown or next start removes it.
    pub async fn destroy(mut self) {
        self.destroyed = true;
        self.logs.stop();
        if let Err(error) = self.docker.remove(&self.id).await {
            tracing::warn!(container = %self.name, %error, "removing the container failed");
        }
    }

    /// The final response and the logs of an init or run: a developer
    /// error other than a timeout becomes the memory message if the kernel
    /// killed a process of the container for memory since `since` (looked
    /// up while the logs are collected). Also says whether the log stream
    /// was lost.
    async fn finish(
        &self,
        ending: Ending,
        since: SystemTime,
        log_limit: usize,
    ) -> (RunResponse, Vec<String>, bool) {
        let check_memory = !ending.timed_out && ending.response.status.retires_sandbox();
        let memory = async { check_memory && self.docker.oom_killed(&self.id, since).await };
        let (killed, (logs, lost)) =
            tokio::join!(memory, self.collect_logs(log_limit, ending.answered));
        let response = if killed {
            RunResponse::developer_error(messages::MEMORY_EXHAUSTED)
        } else {
            ending.response
        };
        (response, logs, lost)
    }

    /// The activation's log lines: up to the sentinels when the proxy
    /// answered (it writes them after every answer), else only what has
    /// arrived, with OpenWhisk's warning. Also says whether the log stream
    /// was lost before the sentinels.
    async fn collect_logs(&self, limit: usize, answered: bool) -> (Vec<String>, bool) {
        let wait = if answered {
            SENTINEL_WAIT
        } else {
            NO_ANSWER_WAIT
        };
        self.logs.collect(limit, wait).await
    }
}

/// How an init or run ended, before the memory check and the logs.
struct Ending {
    response: RunResponse,
    /// The proxy answered over HTTP (so it wrote the log sentinels).
    answered: bool,
    /// The time limit ended it (never reported as memory).
    timed_out: bool,
}

impl Ending {
    fn of(response: RunResponse, answered: bool) -> Ending {
        Ending {
            response,
            answered,
            timed_out: false,
        }
    }

    fn timed_out(message: String, answered: bool) -> Ending {
        Ending {
            response: RunResponse::developer_error(message),
            answered,
            timed_out: true,
        }
    }
}

impl Drop for DockerContainer {
    /// A container dropped without `destroy` is removed in the background
    /// on the current Tokio runtime (if there is none, `remove_owned`
    /// removes it later).
    fn drop(&mut self) {
        if self.destroyed {
            return;
        }
        self.logs.stop();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        runtime.spawn(async move {
            if let Err(error) = docker.remove(&id).await {
                tracing::warn!(container = %id, %error, "removing a dropped container failed");
            }
        });
    }
}
