//! A native test action (OpenWhisk's `native` convention: the params JSON in
//! argv[1], the result JSON as the last stdout line). `params.do` picks the
//! behaviour:
//!
//! | `do` | behaviour |
//! |---|---|
//! | (absent) | `{"ok": true, "params": …, "env": {every __OW_* variable}}`, plus `"getenv": {name: value or null}` for the names in `params.getenv` |
//! | `error` | the application error `{"error": params.message}` |
//! | `garbage` | a last line that is not JSON |
//! | `exit` | exits with `params.code` (default 3) without output |
//! | `sleep` | sleeps `params.ms` milliseconds, then answers `{"slept_ms": ms}` |
//! | `log` | writes `params.lines` lines to stdout and to stderr, then `{"logged": lines}` |
//! | `count` | counts its runs in `/tmp/native-misbehave.count` (a warm container's runs share it): `{"count": n}` |
//! | `alloc` | allocates `params.mb` MiB and touches every page, then `{"allocated_mb": mb}` |
use serde_json::{Map, Value, json};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Where `count` keeps its count.
const COUNT_FILE: &str = "/tmp/native-misbehave.count";

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "{}".to_string());
    let params: Value = match serde_json::from_str(&arg) {
        Ok(params) => params,
        Err(error) => {
            eprintln!("native-misbehave: params are not JSON: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match params["do"].as_str().unwrap_or("") {
        "error" => json!({ "error": params["message"].as_str().unwrap_or("failed on purpose") }),
        "garbage" => {
            println!("{{\"almost\": \"json\"}}");
            println!("this is not JSON");
            return ExitCode::SUCCESS;
        }
        "exit" => return ExitCode::from(params["code"].as_u64().unwrap_or(3) as u8),
        "sleep" => {
            let ms = params["ms"].as_u64().unwrap_or(1000);
            std::thread::sleep(Duration::from_millis(ms));
            json!({ "slept_ms": ms })
        }
        "log" => {
            let lines = params["lines"].as_u64().unwrap_or(3);
            for i in 1..=lines {
                println!("stdout line {i}");
                eprintln!("stderr line {i}");
            }
            json!({ "logged": lines })
        }
        "count" => {
            let count = std::fs::read_to_string(COUNT_FILE)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            if let Err(error) = std::fs::write(COUNT_FILE, count.to_string()) {
                json!({ "error": format!("cannot write {COUNT_FILE}: {error}") })
            } else {
                json!({ "count": count })
            }
        }
        "alloc" => {
            let mb = params["mb"].as_u64().unwrap_or(64);
            let mut memory = vec![0u8; (mb as usize) << 20];
            for page in memory.chunks_mut(4096) {
                page[0] = 1;
            }
            let touched: usize = memory.iter().step_by(4096).map(|&b| b as usize).sum();
            std::hint::black_box(&memory);
            json!({ "allocated_mb": mb, "pages": touched })
        }
        _ => ok(&params),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{result}").and_then(|()| stdout.flush());
    ExitCode::SUCCESS
}

/// The default answer: the params and the activation's environment.
fn ok(params: &Value) -> Value {
    let env: Map<String, Value> = std::env::vars()
        .filter(|(name, _)| name.starts_with("__OW_"))
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    let mut result = json!({ "ok": true, "params": params, "env": env });
    if let Some(names) = params["getenv"].as_array() {
        let getenv: Map<String, Value> = names
            .iter()
            .filter_map(Value::as_str)
            .map(|name| {
                let value = std::env::var(name).map_or(Value::Null, Value::String);
                (name.to_string(), value)
            })
            .collect();
        result["getenv"] = Value::Object(getenv);
    }
    result
}
