//! A test action written against the raw WIT bindings (not the SDK), so it can
//! return anything the world allows. `params.do` picks the behaviour:
//!
//! | `do` | behaviour |
//! |---|---|
//! | (absent) | `{"count": n, "params": …}` — n counts runs in this instance |
//! | `raw` | returns `params.text` verbatim as the result text |
//! | `fail` | returns the developer error `params.message` |
//! | `trap` | panics (a Wasm trap) |
//! | `loop` | spins forever |
//! | `sleep` | sleeps `params.ms` milliseconds (a WASI clock poll) |
//! | `grow` | allocates 1 MiB chunks until memory runs out |
//! | `recurse` | recurses without bound |
//! | `log` | writes `params.lines` lines of `params.width` bytes to stdout and stderr |
//! | `env` | returns the environment |
//! | `read-file` | tries to read `params.path` |
//! | `random` | returns 16 random bytes from WASI |
//!
//! `init` fails when the init env has `FAIL_INIT`, and traps with `TRAP_INIT`.
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({ world: "action", path: "../../../wit" });

static RUNS: AtomicU64 = AtomicU64::new(0);

struct Misbehave;

impl Guest for Misbehave {
    fn init(request: InitRequest) -> Result<(), String> {
        for (key, value) in &request.env {
            if key == "FAIL_INIT" {
                return Err(format!("init failed on purpose: {value}"));
            }
            if key == "TRAP_INIT" {
                panic!("init trapped on purpose");
            }
            unsafe { std::env::set_var(key, value) };
        }
        Ok(())
    }

    fn run(params: String, activation: Activation) -> Result<String, String> {
        let count = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
        let params: Value = serde_json::from_str(&params).map_err(|e| e.to_string())?;
        let result = match params["do"].as_str().unwrap_or("") {
            "raw" => return Ok(params["text"].as_str().unwrap_or("").to_string()),
            "fail" => return Err(params["message"].as_str().unwrap_or("failed").to_string()),
            "trap" => panic!("trapped on purpose"),
            "loop" => loop {
                std::hint::black_box(());
            },
            "sleep" => {
                let ms = params["ms"].as_u64().unwrap_or(1000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                json!({ "slept": ms })
            }
            "grow" => {
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[4096] = 1;
                    chunks.push(std::hint::black_box(chunk));
                }
            }
            "recurse" => json!({ "depth": recurse(std::hint::black_box(0)) }),
            "log" => {
                let lines = params["lines"].as_u64().unwrap_or(1);
                let width = params["width"].as_u64().unwrap_or(10) as usize;
                let text = "x".repeat(width);
                for i in 0..lines {
                    println!("{i} {text}");
                    eprintln!("{i} err");
                }
                json!({ "logged": lines })
            }
            "env" => json!({
                "env": std::env::vars().collect::<std::collections::BTreeMap<_, _>>(),
                "activation": activation.activation_id,
            }),
            "read-file" => {
                let path = params["path"].as_str().unwrap_or("/etc/passwd");
                match std::fs::read(path) {
                    Ok(bytes) => json!({ "read": bytes.len() }),
                    Err(e) => json!({ "denied": e.to_string() }),
                }
            }
            "random" => {
                let mut bytes = [0u8; 16];
                let ok = getrandom(&mut bytes);
                json!({ "random": bytes.to_vec(), "ok": ok })
            }
            _ => json!({ "count": count, "params": params }),
        };
        serde_json::to_string(&result).map_err(|e| e.to_string())
    }
}

/// Random bytes from WASI through std's randomly seeded hasher state.
fn getrandom(out: &mut [u8]) -> bool {
    use std::hash::{BuildHasher, Hasher};
    for chunk in out.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(0);
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    true
}

/// Recurses until the Wasm stack is exhausted (the bound is never reached).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 16]);
    if std::hint::black_box(depth) == u64::MAX {
        return pad[3];
    }
    recurse(depth + 1) + pad[3]
}

export!(Misbehave);
