//! `console` output: one line per call on the instance's stdout or stderr,
//! which the host captures as the activation's logs.
//!
//! Write errors are ignored rather than panicking like `println!` would: a
//! host that stopped accepting logs must not turn `console.log` into a trap.

use std::io::Write;

/// Where a `console` method writes.
#[derive(Clone, Copy)]
pub enum Stream {
    /// `console.log`, `info`, `debug`, `trace`.
    Stdout,
    /// `console.warn`, `error`.
    Stderr,
}

/// Writes `text` and a newline.
pub fn write_line(stream: Stream, text: &str) {
    let _ = match stream {
        Stream::Stdout => writeln!(std::io::stdout().lock(), "{text}"),
        Stream::Stderr => writeln!(std::io::stderr().lock(), "{text}"),
    };
}

/// Flushes both streams, so an activation's logs are complete when it returns.
pub fn flush() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}
