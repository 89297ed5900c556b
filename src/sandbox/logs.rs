//! An activation's logs: the sandbox's stdout and stderr, as OpenWhisk shows them.
//!
//! Both WASI streams of a sandbox write into one [`LogCapture`], so lines keep
//! the order in which they were written. Each complete line becomes a record
//! in OpenWhisk's format, `String.format("%-30s %s: %s", isoTime, stream, text)`,
//! time-stamped when its newline arrives. The bytes kept per activation are
//! capped at `limits.logs`; past it the rest is dropped and OpenWhisk's
//! truncation notice is appended once. Writes never fail, so a chatty action
//! is never killed by its own logging.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{OutputStream, StreamResult};

use super::outcome::messages;

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    /// The action's stdout.
    Stdout,
    /// The action's stderr.
    Stderr,
}

impl LogStream {
    fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            LogStream::Stdout => 0,
            LogStream::Stderr => 1,
        }
    }
}

/// The largest write permit handed to the guest at once.
const WRITE_PERMIT: usize = 1 << 20;

/// The log lines of the current activation; shared by a sandbox's two streams.
#[derive(Clone, Debug, Default)]
pub struct LogCapture {
    inner: Arc<Mutex<LogBuffer>>,
}

/// Invariant: `used ≤ limit`; `partial[i]` holds the bytes of stream `i`
/// after its last newline; `truncated` is set once the notice is appended.
#[derive(Debug, Default)]
struct LogBuffer {
    limit: usize,
    used: usize,
    truncated: bool,
    lines: Vec<String>,
    partial: [Vec<u8>; 2],
}

impl LogCapture {
    /// A capture that keeps nothing until [`LogCapture::start`] sets a limit.
    pub fn new() -> Self {
        LogCapture::default()
    }

    fn lock(&self) -> MutexGuard<'_, LogBuffer> {
        // A poisoned lock only means a panic elsewhere; the buffer is still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new activation's logs, keeping at most `limit` bytes (0 = none).
    pub fn start(&self, limit: usize) {
        let mut buf = self.lock();
        *buf = LogBuffer {
            limit,
            ..LogBuffer::default()
        };
    }

    /// Appends bytes the action wrote to `stream`.
    pub fn write(&self, stream: LogStream, bytes: &[u8]) {
        let mut buf = self.lock();
        if buf.limit == 0 {
            return;
        }
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            rest = &tail[1..];
            let mut text = std::mem::take(&mut buf.partial[stream.index()]);
            text.extend_from_slice(line);
            buf.push_line(stream, &text);
        }
        if !rest.is_empty() && !buf.truncated {
            let room = buf.limit.saturating_sub(buf.used);
            let partial = &mut buf.partial[stream.index()];
            // Bound a line that never ends: keep at most what could still fit.
            let take = rest.len().min(room.saturating_sub(partial.len()) + 1);
            partial.extend_from_slice(&rest[..take]);
        }
    }

    /// Adds a line written by the host (e.g. why a sandbox was stopped).
    pub fn host_line(&self, stream: LogStream, text: &str) {
        let mut buf = self.lock();
        if buf.limit == 0 {
            return;
        }
        buf.push_line(stream, text.as_bytes());
    }

    /// Ends the activation's logs: flushes unterminated lines and returns all.
    pub fn finish(&self) -> Vec<String> {
        let mut buf = self.lock();
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let text = std::mem::take(&mut buf.partial[stream.index()]);
            if !text.is_empty() {
                buf.push_line(stream, &text);
            }
        }
        buf.used = 0;
        buf.truncated = false;
        std::mem::take(&mut buf.lines)
    }

    /// A WASI stream writing into this capture.
    pub fn stream(&self, stream: LogStream) -> LogPipe {
        LogPipe {
            capture: self.clone(),
            stream,
        }
    }
}

impl LogBuffer {
    fn push_line(&mut self, stream: LogStream, text: &[u8]) {
        if self.truncated {
            return;
        }
        let cost = text.len() + 1;
        if self.used + cost > self.limit {
            self.truncated = true;
            let notice = messages::truncated_logs(self.limit);
            self.lines
                .push(format_line(SystemTime::now(), LogStream::Stderr, &notice));
            return;
        }
        self.used += cost;
        let text = String::from_utf8_lossy(text);
        self.lines
            .push(format_line(SystemTime::now(), stream, &text));
    }
}

/// One log record: `%-30s %s: %s` of the ISO-8601 time, the stream and the text.
pub fn format_line(at: SystemTime, stream: LogStream, text: &str) -> String {
    format!("{:<30} {}: {}", iso_instant(at), stream.as_str(), text)
}

/// A time as Java's `Instant.toString()` prints it: UTC, `Z`, and 0, 3, 6 or
/// 9 fractional digits (the fewest that are exact).
pub fn iso_instant(at: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(at);
    let nanos = dt.nanosecond();
    let fraction = if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        fraction
    )
}

/// A sandbox's stdout or stderr: accepts every write, never blocks.
#[derive(Clone, Debug)]
pub struct LogPipe {
    capture: LogCapture,
    stream: LogStream,
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.capture.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn text_of(line: &str) -> &str {
        &line[31..]
    }

    #[test]
    fn lines_keep_order_across_streams_and_openwhisk_format() {
        let capture = LogCapture::new();
        capture.start(1024);
        capture.write(LogStream::Stdout, b"one\ntw");
        capture.write(LogStream::Stderr, b"err\n");
        capture.write(LogStream::Stdout, b"o\nthree");
        let lines = capture.finish();
        let texts: Vec<_> = lines.iter().map(|l| text_of(l)).collect();
        assert_eq!(
            texts,
            ["stdout: one", "stderr: err", "stdout: two", "stdout: three"]
        );
        assert!(lines[0].as_bytes()[30] == b' ' && lines[0].contains("Z "));
        assert!(capture.finish().is_empty(), "finish resets the capture");
    }

    #[test]
    fn logs_are_capped_with_one_notice() {
        let capture = LogCapture::new();
        capture.start(10);
        capture.write(LogStream::Stdout, b"12345\n12345\n12345\n");
        capture.write(LogStream::Stdout, &vec![b'x'; 10_000]);
        let lines = capture.finish();
        assert_eq!(lines.len(), 2);
        assert_eq!(text_of(&lines[0]), "stdout: 12345");
        assert_eq!(
            text_of(&lines[1]),
            "stderr: Logs were truncated because the total bytes size exceeds the limit of 10 bytes."
        );
    }

    #[test]
    fn zero_limit_collects_nothing() {
        let capture = LogCapture::new();
        capture.start(0);
        capture.write(LogStream::Stdout, b"hello\n");
        assert!(capture.finish().is_empty());
    }

    #[test]
    fn iso_instant_matches_java() {
        let t = UNIX_EPOCH + Duration::from_millis(1_763_835_597_123);
        assert_eq!(iso_instant(t), "2025-11-22T18:19:57.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_763_835_597);
        assert_eq!(iso_instant(t), "2025-11-22T18:19:57Z");
        let t = UNIX_EPOCH + Duration::from_nanos(1_763_835_597_000_000_001);
        assert_eq!(iso_instant(t), "2025-11-22T18:19:57.000000001Z");
        let line = format_line(t, LogStream::Stdout, "hi");
        assert_eq!(line, "2025-11-22T18:19:57.000000001Z stdout: hi");
    }
}
