//! An activation's logs: the sandbox's stdout and stderr, as OpenWhisk shows them.
//!
//! Both WASI streams of a sandbox write into one [`LogCapture`], so lines keep
//! the order in which they were written. Each complete line becomes a record
//! in OpenWhisk's format, `String.format("%-30s %s: %s", isoTime, stream, text)`,
//! time-stamped when its newline arrives. Writes never fail, so a chatty
//! action is never killed by its own logging.
//!
//! Two bounds hold per activation, and past either the rest is dropped and
//! one truncation notice is appended:
//! - `limits.logs` is charged the bytes of each **stored** line, prefix
//!   included ([`stored_line_bytes`]): an empty `console.log` costs the ~40
//!   bytes it takes in the record, not 1, so short lines cannot amplify the
//!   limit (OpenWhisk, too, charges the Docker record around each line);
//! - at most [`MAX_LOG_LINES`] lines are kept, so a record never holds more
//!   small strings than that, whatever the limit.
//!
//! While the activation runs, its lines live in one contiguous buffer with
//! their end offsets, not one heap `String` per line: a large buffer is one
//! allocation the allocator gives back to the OS when it is freed, where
//! millions of small ones would stay behind as fragmented heap. The lines
//! are split into the record's strings once, by [`LogCapture::finish`].

use std::fmt::Write as _;
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
}

/// The most log lines kept per activation (the truncation notice aside).
///
/// 100,000 lines hold every log a 10 MB limit admits at ~105 bytes a line
/// (a typical line with its 39-byte prefix), and bound the record to that
/// many strings — a few MB of heap — when lines are shorter. OpenWhisk has
/// no such cap; it only bites actions that log huge numbers of tiny lines.
pub const MAX_LOG_LINES: usize = 100_000;

/// An activation with this many log lines or more asks for a
/// [`trim`](crate::memory::trim_soon) once its logs are handed over.
const TRIM_AFTER_LINES: usize = 10_000;

/// The bytes a stored line takes besides its text: the time padded to 30
/// columns, a space, the stream name (6 bytes) and `": "`.
pub const LINE_PREFIX_BYTES: usize = 30 + 1 + 6 + 2;

/// The bytes a line of `text_bytes` bytes takes once stored (prefix
/// included), as charged against `limits.logs`.
pub fn stored_line_bytes(text_bytes: usize) -> usize {
    LINE_PREFIX_BYTES.saturating_add(text_bytes)
}

/// Which bound cut an activation's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogCut {
    /// `limits.logs` (bytes of stored lines).
    Bytes,
    /// [`MAX_LOG_LINES`].
    Lines,
}

impl LogCut {
    /// The notice appended to logs cut by this bound: OpenWhisk's words for
    /// the byte limit (`limit_bytes`), ours for the line cap.
    pub fn notice(self, limit_bytes: usize) -> String {
        match self {
            LogCut::Bytes => messages::truncated_logs(limit_bytes),
            LogCut::Lines => messages::truncated_log_lines(MAX_LOG_LINES),
        }
    }
}

/// The largest write permit handed to the guest at once.
const WRITE_PERMIT: usize = 1 << 20;

/// The first capacity of an activation's line buffer; it doubles from there,
/// never past what the limit can use.
const INITIAL_BUFFER: usize = 4 << 10;

/// The log lines of the current activation; shared by a sandbox's two streams.
#[derive(Clone, Debug, Default)]
pub struct LogCapture {
    inner: Arc<Mutex<LogBuffer>>,
}

/// Invariant: `text` holds the stored lines back to back and `ends[k]` is
/// the end offset of line `k` in it; `text.len() ≤ limit` and
/// `ends.len() ≤ MAX_LOG_LINES` except for the one notice appended when
/// `cut` is set, after which nothing is added. `partial[i]` holds the bytes
/// of stream `i` after its last newline, at most what could still fit + 1.
#[derive(Debug, Default)]
struct LogBuffer {
    limit: usize,
    cut: Option<LogCut>,
    text: String,
    ends: Vec<usize>,
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

    /// Starts a new activation's logs, keeping at most `limit` bytes of
    /// stored lines (0 = none) and at most [`MAX_LOG_LINES`] lines.
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
            rest = tail.get(1..).unwrap_or_default();
            if buf.cut.is_some() {
                continue;
            }
            let partial = std::mem::take(buf.partial_of(stream));
            if partial.is_empty() {
                buf.push_line(stream, line);
            } else {
                let mut text = partial;
                text.extend_from_slice(line);
                buf.push_line(stream, &text);
            }
        }
        if !rest.is_empty() && buf.cut.is_none() {
            // Bound a line that never ends: keep at most what could still fit.
            let room = buf
                .limit
                .saturating_sub(buf.text.len())
                .saturating_sub(LINE_PREFIX_BYTES);
            let partial = buf.partial_of(stream);
            let take = rest.len().min(room.saturating_sub(partial.len()) + 1);
            partial.extend_from_slice(rest.get(..take).unwrap_or_default());
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

    /// Ends the activation's logs: flushes unterminated lines and returns
    /// all, one string per line. The capture's buffer is freed.
    pub fn finish(&self) -> Vec<String> {
        let (text, ends) = {
            let mut buf = self.lock();
            for stream in [LogStream::Stdout, LogStream::Stderr] {
                let text = std::mem::take(buf.partial_of(stream));
                if !text.is_empty() {
                    buf.push_line(stream, &text);
                }
            }
            buf.cut = None;
            (std::mem::take(&mut buf.text), std::mem::take(&mut buf.ends))
        };
        let mut lines = Vec::with_capacity(ends.len());
        let mut start = 0;
        for end in ends {
            lines.push(text.get(start..end).unwrap_or_default().to_string());
            start = end;
        }
        // Many small lines live in heap arenas until the record is stored;
        // give their pages back once it is.
        if lines.len() >= TRIM_AFTER_LINES {
            crate::memory::trim_soon();
        }
        lines
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
    /// The unterminated line of `stream`.
    fn partial_of(&mut self, stream: LogStream) -> &mut Vec<u8> {
        let [stdout, stderr] = &mut self.partial;
        match stream {
            LogStream::Stdout => stdout,
            LogStream::Stderr => stderr,
        }
    }

    fn push_line(&mut self, stream: LogStream, text: &[u8]) {
        if self.cut.is_some() {
            return;
        }
        let text = String::from_utf8_lossy(text);
        let at = iso_instant(SystemTime::now());
        let cost = record_bytes(&at, stream, &text);
        let cut = if self.ends.len() >= MAX_LOG_LINES {
            Some(LogCut::Lines)
        } else if self.text.len().saturating_add(cost) > self.limit {
            Some(LogCut::Bytes)
        } else {
            None
        };
        match cut {
            None => {
                self.reserve(cost);
                write_line(&mut self.text, &at, stream, &text);
            }
            Some(cut) => {
                self.cut = Some(cut);
                let notice = cut.notice(self.limit);
                // Exactly: past the limit, the buffer grows by the notice only.
                let notice_bytes = record_bytes(&at, LogStream::Stderr, &notice);
                self.text.reserve_exact(notice_bytes);
                write_line(&mut self.text, &at, LogStream::Stderr, &notice);
            }
        }
        self.ends.push(self.text.len());
    }

    /// Makes room for `more` bytes: doubling, but never reserving past the
    /// limit, so the buffer stays one allocation of at most ~`limit` bytes.
    fn reserve(&mut self, more: usize) {
        let needed = self.text.len().saturating_add(more);
        if needed <= self.text.capacity() {
            return;
        }
        let target = (self.text.capacity().saturating_mul(2))
            .max(INITIAL_BUFFER)
            .min(self.limit)
            .max(needed);
        self.text
            .reserve_exact(target.saturating_sub(self.text.len()));
    }
}

/// The bytes [`write_line`] appends for these arguments.
fn record_bytes(at: &str, stream: LogStream, text: &str) -> usize {
    at.len().max(30) + 1 + stream.as_str().len() + 2 + text.len()
}

/// Appends one log record to `out`: `%-30s %s: %s` of `at` (an ISO time),
/// the stream and the text.
fn write_line(out: &mut String, at: &str, stream: LogStream, text: &str) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{at:<30} {}: {text}", stream.as_str());
}

/// One log record: `%-30s %s: %s` of the ISO-8601 time, the stream and the text.
pub fn format_line(at: SystemTime, stream: LogStream, text: &str) -> String {
    let mut line = String::new();
    write_line(&mut line, &iso_instant(at), stream, text);
    line
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
        // Room for two stored lines of 5 bytes, not three.
        capture.start(2 * stored_line_bytes(5) + 10);
        capture.write(LogStream::Stdout, b"12345\n12345\n12345\n");
        capture.write(LogStream::Stdout, &vec![b'x'; 10_000]);
        let lines = capture.finish();
        assert_eq!(lines.len(), 3);
        assert_eq!(text_of(&lines[0]), "stdout: 12345");
        assert_eq!(text_of(&lines[1]), "stdout: 12345");
        assert_eq!(
            text_of(&lines[2]),
            "stderr: Logs were truncated because the total bytes size exceeds the limit of 98 bytes."
        );
    }

    #[test]
    fn the_limit_is_charged_the_stored_line_not_the_text() {
        let limit = 10_000;
        let capture = LogCapture::new();
        capture.start(limit);
        // 10,000 empty lines: 10,000 bytes of text, ~390,000 stored.
        capture.write(LogStream::Stdout, &vec![b'\n'; 10_000]);
        let lines = capture.finish();
        let (notice, kept) = lines.split_last().expect("lines");
        let stored: usize = kept.iter().map(String::len).sum();
        assert!(stored <= limit, "{stored} bytes stored past {limit}");
        assert_eq!(kept.len(), limit / stored_line_bytes(0));
        assert!(kept.iter().all(|l| l.len() == stored_line_bytes(0)));
        assert!(notice.ends_with(&format!("exceeds the limit of {limit} bytes.")));
    }

    #[test]
    fn lines_past_the_line_cap_are_dropped_with_one_notice() {
        let capture = LogCapture::new();
        capture.start(usize::MAX);
        let many = vec![b'\n'; MAX_LOG_LINES + 1_000];
        capture.write(LogStream::Stderr, &many);
        capture.write(LogStream::Stdout, b"late\n");
        let lines = capture.finish();
        assert_eq!(lines.len(), MAX_LOG_LINES + 1);
        assert_eq!(
            lines.last().map(|l| text_of(l)),
            Some(
                "stderr: Logs were truncated because the number of lines exceeds the limit of 100000 lines."
            )
        );
        // The next activation starts with the whole budget again.
        capture.start(1024);
        capture.write(LogStream::Stdout, b"again\n");
        let lines = capture.finish();
        assert_eq!(
            lines.iter().map(|l| text_of(l)).collect::<Vec<_>>(),
            ["stdout: again"]
        );
    }

    #[test]
    fn the_buffer_never_reserves_past_the_limit() {
        let capture = LogCapture::new();
        let limit = 5_000;
        capture.start(limit);
        for _ in 0..1_000 {
            capture.write(LogStream::Stdout, b"some text\n");
        }
        let capacity = capture.lock().text.capacity();
        assert!(capacity <= limit + 200, "capacity {capacity}");
        assert!(capture.finish().len() > 1);
        assert_eq!(capture.lock().text.capacity(), 0, "finish frees the buffer");
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
