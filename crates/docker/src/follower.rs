//! The log follower of one container: a task reading `docker logs --follow
//! --timestamps` (stdout and stderr) from the container's start into a
//! [`LogBuffer`], and the wait for an activation's sentinels.
//!
//! Started by `Docker::create`, so nothing the container writes is missed,
//! and stopped when its container is destroyed or dropped (it holds only a
//! weak reference to the buffer, and its task is aborted).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::logbuf::{LOG_FAILURE, LogBuffer};
use wasmwhisk_sandbox::logs::{LogStream, format_line};

/// What the buffer keeps before the first activation sets its limit.
const INITIAL_CAP: usize = 1 << 20;

/// The buffer and the signal that it changed.
#[derive(Debug)]
struct Shared {
    buffer: Mutex<LogBuffer>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, LogBuffer> {
        // A poisoned lock only means a panic elsewhere; the buffer is still valid.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A container's log follower.
#[derive(Debug)]
pub(crate) struct LogFollower {
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl LogFollower {
    /// Starts following the logs of container `id`.
    pub(crate) fn start(client: bollard::Docker, id: &str) -> Self {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(LogBuffer::new(INITIAL_CAP)),
            changed: Notify::new(),
        });
        let task = tokio::spawn(follow(client, id.to_string(), Arc::downgrade(&shared)));
        LogFollower {
            shared,
            task: task.abort_handle(),
        }
    }

    /// Sets the log limit of the activation about to run: the buffer keeps
    /// at most that many bytes waiting.
    pub(crate) fn begin(&self, limit: usize) {
        self.shared.lock().set_cap(limit);
    }

    /// Collects one activation's lines, waiting at most `wait` for the
    /// sentinels on both streams. Without both sentinels (or once the
    /// stream ended) it takes what arrived and appends OpenWhisk's warning
    /// that data might be missing. Also says whether the stream was lost
    /// before both sentinels came: the container's logs cannot be read any
    /// more (a sentinel that is only late, as from an image that writes
    /// none, is not a loss).
    pub(crate) async fn collect(&self, limit: usize, wait: Duration) -> (Vec<String>, bool) {
        let deadline = tokio::time::Instant::now() + wait;
        let (complete, lost) = loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a change in between still wakes us.
            changed.as_mut().enable();
            {
                let buffer = self.shared.lock();
                if buffer.sentinels_seen() {
                    break (true, false);
                }
                if buffer.ended() {
                    break (false, true);
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break (false, false);
            }
        };
        let mut lines = self.shared.lock().take(limit);
        if !complete && limit > 0 {
            lines.push(format_line(
                SystemTime::now(),
                LogStream::Stderr,
                LOG_FAILURE,
            ));
        }
        (lines, lost)
    }

    /// Stops following.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for LogFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the container's log stream until it ends or the follower is gone.
async fn follow(client: bollard::Docker, id: String, shared: Weak<Shared>) {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        ..LogsOptions::default()
    };
    let mut stream = client.logs(&id, Some(options));
    while let Some(item) = stream.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (stream_kind, message) = match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                (LogStream::Stdout, message)
            }
            Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(error) => {
                tracing::debug!(container = %id, %error, "the container's log stream failed");
                break;
            }
        };
        shared
            .lock()
            .push_frame(stream_kind, &message, SystemTime::now());
        shared.changed.notify_waiters();
    }
    if let Some(shared) = shared.upgrade() {
        shared.lock().end();
        shared.changed.notify_waiters();
    }
}
