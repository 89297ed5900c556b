//! What an action printed: its logs and its result.
//!
//! OpenWhisk's `native` convention: the LAST non-empty line of stdout is the
//! result (a JSON object or array); every other stdout line and every stderr
//! line is a log line. [`LastLine`] splits a stream of stdout lines that way
//! without holding more than one line back, so log lines reach `docker logs`
//! while the action runs; [`result`] judges the line held back.

/// OpenWhisk's message when the last line is not a JSON object or array.
pub const NOT_A_DICTIONARY: &str = "The action did not return a dictionary.";

/// Holds back the last non-empty stdout line, passing every other line on.
///
/// Invariant: `blanks` counts the empty lines seen after `pending`; they are
/// passed on only if another non-empty line follows (trailing blank lines are
/// dropped, like OpenWhisk's runtimes strip the output).
#[derive(Debug, Default)]
pub struct LastLine {
    pending: Option<Vec<u8>>,
    blanks: usize,
}

impl LastLine {
    /// Takes the next line (without its `\n`); calls `forward` with each line
    /// that is now known not to be the last one.
    pub fn push(&mut self, line: Vec<u8>, mut forward: impl FnMut(&[u8])) {
        if line.iter().all(u8::is_ascii_whitespace) {
            if self.pending.is_some() {
                self.blanks += 1;
            } else {
                forward(&line);
            }
            return;
        }
        if let Some(previous) = self.pending.replace(line) {
            forward(&previous);
            for _ in 0..self.blanks {
                forward(b"");
            }
        }
        self.blanks = 0;
    }

    /// The last non-empty line, if any.
    pub fn finish(self) -> Option<Vec<u8>> {
        self.pending
    }
}

/// Strips one trailing `\r` (a line ended with `\r\n`).
pub fn trim_line_end(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

/// The `/run` response body from the last stdout line: `Ok` with the JSON
/// text when it is an object or an array, else `Err` with OpenWhisk's message.
pub fn result(last_line: Option<&[u8]>) -> Result<String, &'static str> {
    let line = last_line.ok_or(NOT_A_DICTIONARY)?;
    let text = std::str::from_utf8(line)
        .map_err(|_| NOT_A_DICTIONARY)?
        .trim();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_)) => Ok(text.to_string()),
        _ => Err(NOT_A_DICTIONARY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `lines` and returns (forwarded lines, last line).
    fn split(lines: &[&str]) -> (Vec<String>, Option<String>) {
        let mut last = LastLine::default();
        let mut forwarded = Vec::new();
        for line in lines {
            last.push(line.as_bytes().to_vec(), |l| {
                forwarded.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        let last = last
            .finish()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        (forwarded, last)
    }

    #[test]
    fn the_last_non_empty_line_is_held_back() {
        let (logs, last) = split(&["one", "two", r#"{"a":1}"#]);
        assert_eq!(logs, ["one", "two"]);
        assert_eq!(last.as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn trailing_blank_lines_are_dropped_and_inner_ones_kept() {
        let (logs, last) = split(&["", "one", "", "two", "", "  ", ""]);
        assert_eq!(logs, ["", "one", ""]);
        assert_eq!(last.as_deref(), Some("two"));
    }

    #[test]
    fn no_output_has_no_last_line() {
        assert_eq!(split(&[]), (vec![], None));
        assert_eq!(split(&["", ""]), (vec!["".into(), "".into()], None));
    }

    #[test]
    fn carriage_returns_are_trimmed() {
        assert_eq!(trim_line_end(b"ab\r".to_vec()), b"ab");
        assert_eq!(trim_line_end(b"ab".to_vec()), b"ab");
    }

    #[test]
    fn objects_and_arrays_are_results() {
        assert_eq!(
            result(Some(br#" {"a": 1} "#)),
            Ok(r#"{"a": 1}"#.to_string())
        );
        assert_eq!(result(Some(b"[1,2]")), Ok("[1,2]".to_string()));
        assert_eq!(
            result(Some(br#"{"error":"bad"}"#)),
            Ok(r#"{"error":"bad"}"#.to_string())
        );
    }

    #[test]
    fn anything_else_is_not_a_dictionary() {
        for line in [
            &b"42"[..],
            b"\"text\"",
            b"null",
            b"not json",
            b"{\"a\":",
            b"\xff{}",
        ] {
            assert_eq!(result(Some(line)), Err(NOT_A_DICTIONARY), "{line:?}");
        }
        assert_eq!(result(None), Err(NOT_A_DICTIONARY));
    }
}
