//! The log lines a container wrote and nobody has collected yet.
//!
//! The follower ([`super::follower`]) pushes every frame of `docker logs
//! --follow --timestamps` here; at the end of `/init` or `/run` the
//! container takes the lines of that activation: on each stream, every line
//! up to that stream's sentinel `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX`
//! (docs/openwhisk.md §6.4). Lines of a stream past its sentinel stay for the next
//! activation. Lines come in the order Docker stored them, which is the
//! order they were written, so both streams stay interleaved as written.
//!
//! Memory is bounded: past `cap` bytes or [`MAX_LOG_LINES`] lines waiting,
//! new lines are dropped (the activation's logs then end with the
//! truncation notice), but sentinels are always kept. Bytes are counted as
//! the Wasm sandboxes count them ([`stored_line_bytes`]): what a line takes
//! once stored, its 39-byte prefix included, so short lines cannot amplify
//! the limit.

use std::collections::VecDeque;
use std::time::SystemTime;

use wasmwhisk_sandbox::logs::{LogCut, LogStream, MAX_LOG_LINES, format_line, stored_line_bytes};

/// The line the action proxy writes on stdout and stderr after each
/// activation (OpenWhisk's `Container.ACTIVATION_LOG_SENTINEL`).
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// OpenWhisk's notice (`Messages.logFailure`) appended when an activation's
/// logs could not be read to their sentinels.
pub const LOG_FAILURE: &str =
    "There was an issue while collecting your logs. Data might be missing.";

/// One complete line of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    stream: LogStream,
    at: SystemTime,
    text: String,
    sentinel: bool,
}

/// Lines waiting to be collected.
///
/// Invariant: `bytes` is the sum of `stored_line_bytes(text.len())` and
/// `lines` the count of the non-sentinel entries; `bytes` stays ≤ `cap`
/// except by the one line that crossed it, `lines` ≤ [`MAX_LOG_LINES`];
/// `partial[i]` holds the start of stream `i`'s current line (Docker cuts
/// lines past 16 KiB into several frames), at most `cap + 1` bytes.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    entries: VecDeque<Entry>,
    partial: PerStream<Option<(SystemTime, Vec<u8>)>>,
    bytes: usize,
    lines: usize,
    cap: usize,
    /// Set when a line was dropped for lack of room, and by which bound.
    dropped: Option<LogCut>,
    ended: bool,
    /// Per stream, sentinels of activations already taken without them
    /// (they came too late): when one arrives, it and the lines before it
    /// on its stream are that earlier activation's, and are dropped rather
    /// than given to the next one.
    owed: PerStream<usize>,
}

/// One value per stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PerStream<T> {
    stdout: T,
    stderr: T,
}

impl<T> PerStream<T> {
    fn get(&self, stream: LogStream) -> &T {
        match stream {
            LogStream::Stdout => &self.stdout,
            LogStream::Stderr => &self.stderr,
        }
    }

    fn get_mut(&mut self, stream: LogStream) -> &mut T {
        match stream {
            LogStream::Stdout => &mut self.stdout,
            LogStream::Stderr => &mut self.stderr,
        }
    }
}

/// Both streams.
const STREAMS: [LogStream; 2] = [LogStream::Stdout, LogStream::Stderr];

impl LogBuffer {
    /// An empty buffer keeping at most `cap` bytes of lines.
    pub(crate) fn new(cap: usize) -> Self {
        LogBuffer {
            entries: VecDeque::new(),
            partial: PerStream::default(),
            bytes: 0,
            lines: 0,
            cap,
            dropped: None,
            ended: false,
            owed: PerStream::default(),
        }
    }

    /// Sets the most bytes kept waiting (the current activation's log limit).
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// Marks the end of the container's log stream: no more lines will come.
    pub(crate) fn end(&mut self) {
        self.ended = true;
    }

    /// True once the log stream ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Adds one frame of `docker logs --timestamps`: `<RFC 3339 time> <text>`,
    /// a whole line when it ends with `\n`, else the start of one.
    pub(crate) fn push_frame(&mut self, stream: LogStream, frame: &[u8], now: SystemTime) {
        let (at, rest) = split_timestamp(frame).unwrap_or((now, frame));
        let (text, complete) = match rest.strip_suffix(b"\n") {
            Some(line) => (line, true),
            None => (rest, false),
        };
        let slot = self.partial.get_mut(stream);
        if !complete {
            let (_, start) = slot.get_or_insert_with(|| (at, Vec::new()));
            let room = (self.cap + 1).saturating_sub(start.len());
            start.extend_from_slice(text.get(..room).unwrap_or(text));
            return;
        }
        let (at, line) = match slot.take() {
            Some((first, mut start)) => {
                start.extend_from_slice(text);
                (first, start)
            }
            None => (at, text.to_vec()),
        };
        self.push_line(stream, at, &line);
    }

    fn push_line(&mut self, stream: LogStream, at: SystemTime, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let sentinel = text.contains(SENTINEL);
        let owed = self.owed.get_mut(stream);
        if sentinel && *owed > 0 {
            *owed -= 1;
            let (mut freed, mut freed_lines) = (0, 0);
            self.entries.retain(|e| {
                let late = e.stream == stream;
                if late && !e.sentinel {
                    freed += stored_line_bytes(e.text.len());
                    freed_lines += 1;
                }
                !late
            });
            self.bytes = self.bytes.saturating_sub(freed);
            self.lines = self.lines.saturating_sub(freed_lines);
            return;
        }
        if !sentinel {
            if self.lines >= MAX_LOG_LINES {
                self.dropped.get_or_insert(LogCut::Lines);
                return;
            }
            if self.bytes >= self.cap {
                self.dropped.get_or_insert(LogCut::Bytes);
                return;
            }
            self.bytes += stored_line_bytes(text.len());
            self.lines += 1;
        }
        self.entries.push_back(Entry {
            stream,
            at,
            text: text.to_string(),
            sentinel,
        });
    }

    /// True when both streams have written their sentinel.
    pub(crate) fn sentinels_seen(&self) -> bool {
        let mut seen = PerStream::default();
        for entry in self.entries.iter().filter(|e| e.sentinel) {
            *seen.get_mut(entry.stream) = true;
        }
        seen.stdout && seen.stderr
    }

    /// Takes one activation's lines: on each stream, every line up to its
    /// first sentinel (all of it when there is none), formatted as
    /// OpenWhisk's records and capped at `limit` bytes of stored lines and
    /// [`MAX_LOG_LINES`] lines, with the truncation notice. Sentinels are
    /// dropped; a limit of 0 returns nothing.
    pub(crate) fn take(&mut self, limit: usize) -> Vec<String> {
        let mut done = PerStream::default();
        let mut rest = VecDeque::new();
        let mut lines = Vec::new();
        let mut used = 0usize;
        let mut cut = None;
        for entry in std::mem::take(&mut self.entries) {
            if *done.get(entry.stream) {
                rest.push_back(entry);
                continue;
            }
            if entry.sentinel {
                *done.get_mut(entry.stream) = true;
                continue;
            }
            self.bytes = self
                .bytes
                .saturating_sub(stored_line_bytes(entry.text.len()));
            self.lines = self.lines.saturating_sub(1);
            if cut.is_some() || limit == 0 {
                continue;
            }
            if lines.len() >= MAX_LOG_LINES {
                cut = Some(LogCut::Lines);
                continue;
            }
            let line = format_line(entry.at, entry.stream, &entry.text);
            if used + line.len() > limit {
                cut = Some(LogCut::Bytes);
                continue;
            }
            used += line.len();
            lines.push(line);
        }
        self.entries = rest;
        for stream in STREAMS {
            if !*done.get(stream) {
                *self.owed.get_mut(stream) += 1;
            }
        }
        let dropped = self.dropped.take();
        if limit > 0
            && let Some(cut) = cut.or(dropped)
        {
            lines.push(format_line(
                SystemTime::now(),
                LogStream::Stderr,
                &cut.notice(limit),
            ));
        }
        lines
    }
}

/// Splits `2026-11-22T23:31:11.644454419Z rest` into the time and `rest`.
fn split_timestamp(frame: &[u8]) -> Option<(SystemTime, &[u8])> {
    let space = frame.iter().position(|b| *b == b' ')?;
    let stamp = std::str::from_utf8(frame.get(..space)?).ok()?;
    Some((parse_rfc3339_utc(stamp)?, frame.get(space + 1..)?))
}

/// Parses Docker's log timestamps: RFC 3339 in UTC (`Z`), with 0 to 9
/// fractional digits.
pub(crate) fn parse_rfc3339_utc(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i32 = date_parts.next()?.parse().ok()?;
    let month: u8 = date_parts.next()?.parse().ok()?;
    let day: u8 = date_parts.next()?.parse().ok()?;
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, fraction)) => (hms, fraction),
        None => (time, ""),
    };
    let mut time_parts = hms.splitn(3, ':');
    let hour: u8 = time_parts.next()?.parse().ok()?;
    let minute: u8 = time_parts.next()?.parse().ok()?;
    let second: u8 = time_parts.next()?.parse().ok()?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let time = time::Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(time::PrimitiveDateTime::new(date, time).assume_utc().into())
}

#[cfg(test)]
#[path = "logbuf_tests.rs"]
mod tests;
