//! How the client prints: `wsk`'s tables for lists, log lines with or
//! without their time and stream, and the few fields read from activation
//! and action documents.
//!
//! Everything here reads `serde_json::Value`s loosely (a missing field prints
//! as empty), because the client prints what any OpenWhisk-compatible server
//! sends: a full record, or the list's summary with only `statusCode`.

use serde_json::Value;

/// One activation as a row of `activation list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRow {
    /// Start, `YYYY-MM-DD HH:MM:SS` UTC.
    pub datetime: String,
    /// The activation id.
    pub id: String,
    /// The `kind` annotation.
    pub kind: String,
    /// `cold` when the activation carries an `initTime`, else `warm`.
    pub start: String,
    /// `{n}ms`.
    pub duration: String,
    /// `success`, `application error`, `developer error`, `internal error`.
    pub status: String,
    /// `namespace/name:version`.
    pub entity: String,
}

impl ActivationRow {
    /// The row of a record or of a list's summary.
    pub fn of(activation: &Value) -> ActivationRow {
        let text = |key: &str| activation.get(key).and_then(Value::as_str).unwrap_or("");
        let start_ms = activation.get("start").and_then(Value::as_u64).unwrap_or(0);
        let duration = activation
            .get("duration")
            .and_then(Value::as_u64)
            .or_else(|| {
                let end = activation.get("end").and_then(Value::as_u64)?;
                end.checked_sub(start_ms)
            });
        let version = text("version");
        ActivationRow {
            datetime: datetime_utc(start_ms),
            id: text("activationId").to_string(),
            kind: annotation(activation, "kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            start: if annotation(activation, "initTime").is_some() {
                "cold"
            } else {
                "warm"
            }
            .to_string(),
            duration: duration.map(|d| format!("{d}ms")).unwrap_or_default(),
            status: status_of(activation).to_string(),
            entity: if version.is_empty() {
                format!("{}/{}", text("namespace"), text("name"))
            } else {
                format!("{}/{}:{}", text("namespace"), text("name"), version)
            },
        }
    }
}

/// `activation list`'s table: a header and one row per activation, columns
/// as wide as their widest cell.
pub fn activation_table(activations: &[Value]) -> String {
    let header = [
        "Datetime",
        "Activation ID",
        "Kind",
        "Start",
        "Duration",
        "Status",
        "Entity",
    ];
    let rows: Vec<[String; 7]> = activations
        .iter()
        .map(ActivationRow::of)
        .map(|r| {
            [
                r.datetime, r.id, r.kind, r.start, r.duration, r.status, r.entity,
            ]
        })
        .collect();
    table(&header, &rows)
}

/// Left-aligned columns separated by one space; the last is not padded.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$} "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `action list`'s lines, as `wsk` prints them: `actions`, then
/// `/namespace/name`, `private` or `shared`, and the kind.
pub fn action_list(actions: &[Value]) -> String {
    let mut out = String::from("actions\n");
    for action in actions {
        let text = |key: &str| action.get(key).and_then(Value::as_str).unwrap_or("");
        let name = format!("/{}/{}", text("namespace"), text("name"));
        let shared = action
            .get("publish")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let kind = action
            .pointer("/exec/kind")
            .and_then(Value::as_str)
            .or_else(|| annotation(action, "exec").and_then(Value::as_str))
            .unwrap_or("");
        let visibility = if shared { "shared" } else { "private" };
        out.push_str(format!("{name:<66} {visibility:<7} {kind}").trim_end());
        out.push('\n');
    }
    out
}

/// The value of annotation `key` (annotations are `[{key, value}]`).
pub fn annotation<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    doc.get("annotations")?
        .as_array()?
        .iter()
        .rev()
        .find(|a| a.get("key").and_then(Value::as_str) == Some(key))?
        .get("value")
}

/// The short status `wsk` shows: from `response.status`, else from a
/// `statusCode` (the list's summary form).
pub fn status_of(activation: &Value) -> &'static str {
    let response = activation.get("response");
    if let Some(status) = response
        .and_then(|r| r.get("status"))
        .and_then(Value::as_str)
    {
        return match status {
            "success" => "success",
            "application error" => "application error",
            "action developer error" => "developer error",
            "whisk internal error" => "internal error",
            _ => "unknown",
        };
    }
    let code = response
        .and_then(|r| r.get("statusCode"))
        .or_else(|| activation.get("statusCode"))
        .and_then(Value::as_u64);
    match code {
        Some(0) => "success",
        Some(1) => "application error",
        Some(2) => "developer error",
        Some(3) => "internal error",
        _ => "unknown",
    }
}

/// Epoch ms as `YYYY-MM-DD HH:MM:SS` in UTC (the log lines' zone).
pub fn datetime_utc(epoch_ms: u64) -> String {
    let nanos = i128::from(epoch_ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        Err(_) => String::new(),
    }
}

/// A log line without its time and stream: `2024-…Z  stdout: hi` → `hi`.
/// Lines not in that form are returned unchanged.
pub fn strip_log_line(line: &str) -> &str {
    let Some((time, rest)) = line.split_once(' ') else {
        return line;
    };
    if !time.ends_with('Z') {
        return line;
    }
    let rest = rest.trim_start();
    rest.strip_prefix("stdout: ")
        .or_else(|| rest.strip_prefix("stderr: "))
        .unwrap_or(line)
}

/// The `logs` of a record, or of `GET …/logs`'s `{"logs": […]}`.
pub fn log_lines(doc: &Value) -> Vec<&str> {
    doc.get("logs")
        .and_then(Value::as_array)
        .map(|lines| lines.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// JSON, pretty, as the client prints documents.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "namespace": "guest", "name": "hello", "version": "0.0.1",
            "activationId": "0123456789abcdef0123456789abcdef",
            "start": 1_700_000_000_123u64, "end": 1_700_000_000_150u64, "duration": 27,
            "response": {"status": "action developer error", "success": false, "result": {}},
            "annotations": [{"key": "kind", "value": "wasm"}, {"key": "initTime", "value": 3}],
            "logs": ["2023-11-14T22:13:20.123Z       stdout: hi"]
        })
    }

    #[test]
    fn activation_rows_like_wsk() {
        let row = ActivationRow::of(&record());
        assert_eq!(
            row,
            ActivationRow {
                datetime: "2023-11-14 22:13:20".into(),
                id: "0123456789abcdef0123456789abcdef".into(),
                kind: "wasm".into(),
                start: "cold".into(),
                duration: "27ms".into(),
                status: "developer error".into(),
                entity: "guest/hello:0.0.1".into(),
            }
        );
        let summary = json!({"namespace": "guest", "name": "x", "start": 1000, "end": 1005,
                             "statusCode": 1, "annotations": []});
        let row = ActivationRow::of(&summary);
        assert_eq!(
            (
                row.start.as_str(),
                row.duration.as_str(),
                row.status.as_str(),
                row.entity.as_str()
            ),
            ("warm", "5ms", "application error", "guest/x")
        );
    }

    #[test]
    fn tables_align_columns() {
        let text = activation_table(&[record()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Datetime            Activation ID                    Kind Start Duration Status          Entity"
        );
        assert_eq!(
            lines[1],
            "2023-11-14 22:13:20 0123456789abcdef0123456789abcdef wasm cold  27ms     developer error guest/hello:0.0.1"
        );
        assert_eq!(activation_table(&[]).lines().count(), 1);
    }

    #[test]
    fn action_lists_like_wsk() {
        let text = action_list(&[
            json!({"namespace": "guest", "name": "hello", "publish": false, "exec": {"kind": "wasm"}}),
            json!({"namespace": "guest", "name": "js", "annotations": [{"key": "exec", "value": "js"}]}),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "actions");
        assert!(lines[1].starts_with("/guest/hello "));
        assert!(lines[1].ends_with(" private wasm"));
        assert_eq!(lines[1].len(), 66 + 1 + 7 + 1 + 4);
        assert!(lines[2].ends_with(" private js"));
    }

    #[test]
    fn statuses_from_text_or_code() {
        assert_eq!(
            status_of(&json!({"response": {"status": "success"}})),
            "success"
        );
        assert_eq!(
            status_of(&json!({"response": {"statusCode": 3}})),
            "internal error"
        );
        assert_eq!(status_of(&json!({})), "unknown");
    }

    #[test]
    fn log_lines_strip_time_and_stream() {
        assert_eq!(
            strip_log_line("2023-11-14T22:13:20.123Z       stdout: hi there"),
            "hi there"
        );
        assert_eq!(strip_log_line("2023-11-14T22:13:20Z stderr: oops"), "oops");
        assert_eq!(strip_log_line("plain text"), "plain text");
        assert_eq!(log_lines(&record()).len(), 1);
        assert!(log_lines(&json!({})).is_empty());
    }
}
