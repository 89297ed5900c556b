//! One activation: `<action dir>/exec '<params JSON>'` as its own process.
//!
//! The params go in argv[1] (OpenWhisk's dockerskeleton convention); params
//! too large for one argument (the kernel's `MAX_ARG_STRLEN`, 128 KiB) go on
//! stdin instead, with no argument. stdout
//! and stderr are read line by line while the process runs: log lines go to
//! the proxy's own stdout and stderr (so `docker logs` has them, in order),
//! the last non-empty stdout line is held back as the result. Concurrent runs
//! are separate processes; each writes whole lines, so their logs interleave
//! by line, never inside one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use crate::env::EnvVar;
use crate::oom;
use crate::output::{self, LastLine};

/// The signal the kernel's OOM killer sends.
const SIGKILL: i32 = 9;

/// What `/run` answers: an HTTP status and a JSON body.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

impl Reply {
    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            body: serde_json::json!({ "error": message }).to_string(),
        }
    }
}

/// Runs the action once and answers with its result (200) or an error (502).
///
/// `env` is applied over the proxy's own environment, in order (later wins).
pub fn run(exec: &Path, params: &str, env: &[EnvVar]) -> Reply {
    let kills_before = oom::kills();
    let on_stdin = params.len() >= MAX_ARGUMENT;
    let mut command = Command::new(exec);
    if on_stdin {
        command.stdin(Stdio::piped());
    } else {
        command.arg(params).stdin(Stdio::null());
    }
    let spawned = command
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return Reply::error(502, &format!("The action could not be started: {error}"));
        }
    };
    // Written from its own thread while stdout is read, so a process that
    // logs before it reads its stdin cannot deadlock with us.
    let feeder = child.stdin.take().map(|mut stdin| {
        let params = params.to_owned();
        thread::spawn(move || {
            // A process that exits without reading is not our error.
            let _ = stdin.write_all(params.as_bytes());
        })
    });
    let stderr = match child.stderr.take().map(|stderr| {
        thread::Builder::new()
            .name("action-stderr".into())
            .spawn(move || {
                for_each_line(stderr, |line| write_line(&mut io::stderr().lock(), &line));
            })
    }) {
        None => None,
        Some(Ok(thread)) => Some(thread),
        Some(Err(error)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Reply::error(502, &format!("The action could not be started: {error}"));
        }
    };
    let mut last = LastLine::default();
    if let Some(stdout) = child.stdout.take() {
        for_each_line(stdout, |line| {
            last.push(line, |log| write_line(&mut io::stdout().lock(), log));
        });
    }
    if let Some(stderr) = stderr {
        // The thread only writes lines; a panic there loses nothing we need.
        let _ = stderr.join();
    }
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    // The exit status does not matter (OpenWhisk's runtimes ignore it): a
    // JSON last line is the result, anything else is the error below, unless
    // the OOM killer took the process.
    let status = child.wait();
    match output::result(last.finish().as_deref()) {
        Ok(body) => Reply { status: 200, body },
        Err(_) if killed_for_memory(status.ok(), kills_before) => {
            Reply::error(502, oom::MEMORY_EXHAUSTED)
        }
        Err(message) => Reply::error(502, message),
    }
}

/// The longest params passed as argv[1]: below the kernel's limit on one
/// argument (`MAX_ARG_STRLEN`, 32 pages), with room for its NUL.
const MAX_ARGUMENT: usize = 128 * 1024 - 1;

/// Whether the process died of SIGKILL while the container's OOM kill count
/// went up.
fn killed_for_memory(status: Option<std::process::ExitStatus>, kills_before: Option<u64>) -> bool {
    let killed = status.is_some_and(|status| status.signal() == Some(SIGKILL));
    killed && matches!((kills_before, oom::kills()), (Some(before), Some(after)) if after > before)
}

/// Calls `each` with every line of `stream` (without its line end, a last
/// unterminated line included) until end of file or a read error.
fn for_each_line(stream: impl Read, mut each: impl FnMut(Vec<u8>)) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                each(output::trim_line_end(line));
            }
        }
    }
}

/// Writes `line` and a newline in one write (so lines of concurrent runs do
/// not mix) and flushes. A closed stream is ignored: logs are best effort.
fn write_line(out: &mut impl Write, line: &[u8]) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line);
    bytes.push(b'\n');
    let _ = out.write_all(&bytes).and_then(|()| out.flush());
}
