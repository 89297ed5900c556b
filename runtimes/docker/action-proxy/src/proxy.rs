//! The action's life in the container: uninitialized → initialized (once).
//!
//! ```text
//!  Uninitialized ──/init ok──▶ Initialized(env) ──/run──▶ (a process per run)
//!        │  ▲                        │
//!   /init fails                /init again → 403
//!        └──┘ (may be retried)
//! ```
//!
//! HTTP-free: [`Proxy::init`] and [`Proxy::run`] take a request body and
//! return a [`Reply`]; `main` does the HTTP and the log sentinels.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use serde_json::Value;

use crate::code::{self, EXEC};
use crate::env::{self, EnvVar};
use crate::run::{self, Reply};

/// OpenWhisk's answer to a second `/init`.
pub const REINIT: &str = "Cannot initialize the action more than once.";
/// OpenWhisk's answer to a `/run` before `/init`.
pub const UNINITIALIZED: &str = "Cannot invoke an uninitialized action.";

/// The `/init` body: `{"value": {"name", "main", "binary", "code", "env"}}`.
/// `name` and `main` do not matter to an executable and are ignored.
#[derive(Deserialize)]
struct InitBody {
    value: InitValue,
}

#[derive(Deserialize)]
struct InitValue {
    #[serde(default)]
    binary: Option<bool>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    env: Option<Value>,
}

/// Where the action is in its life.
enum State {
    Uninitialized,
    /// Holds the init env, shared by every run.
    Initialized(Arc<Vec<EnvVar>>),
}

/// One container's action.
pub struct Proxy {
    /// The action dir (`/action` in the image): `exec` lives there.
    dir: PathBuf,
    /// Locked for all of `/init` (so two cannot both install) and only to
    /// read the env in `/run`; never across a run.
    state: Mutex<State>,
}

impl Proxy {
    /// An uninitialized action whose files go to `dir`.
    pub fn new(dir: PathBuf) -> Proxy {
        Proxy {
            dir,
            state: Mutex::new(State::Uninitialized),
        }
    }

    /// `POST /init`.
    pub fn init(&self, body: &[u8]) -> Reply {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Initialized(_) = *state {
            return Reply::error(403, REINIT);
        }
        let value = match serde_json::from_slice::<InitBody>(body) {
            Ok(body) => body.value,
            Err(error) => {
                return Reply::error(
                    400,
                    &format!("The /init body is not {{\"value\": {{...}}}}: {error}"),
                );
            }
        };
        let env = match env::init_env(value.env.as_ref()) {
            Ok(env) => env,
            Err(error) => return Reply::error(502, &error.to_string()),
        };
        let installed = code::decode(value.code.as_deref(), value.binary.unwrap_or(false))
            .and_then(|code| code::install(code, &self.dir));
        if let Err(error) = installed {
            return Reply::error(502, &error.to_string());
        }
        *state = State::Initialized(Arc::new(env));
        Reply {
            status: 200,
            body: r#"{"ok":true}"#.to_string(),
        }
    }

    /// `POST /run`.
    pub fn run(&self, body: &[u8]) -> Reply {
        let init_env = match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Uninitialized => return Reply::error(500, UNINITIALIZED),
            State::Initialized(env) => Arc::clone(env),
        };
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(body)) => body,
            Ok(_) => return Reply::error(400, "The /run body must be a JSON object."),
            Err(error) => {
                return Reply::error(400, &format!("The /run body is not valid JSON: {error}"));
            }
        };
        let params = body
            .get("value")
            .map_or_else(|| "{}".to_string(), Value::to_string);
        let mut env = init_env.as_ref().clone();
        env.extend(env::activation_env(&body));
        run::run(&self.dir.join(EXEC), &params, &env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt;

    fn script_init(script: &str) -> Vec<u8> {
        serde_json::json!({"value": {"name": "a", "main": "main", "binary": false, "code": script}})
            .to_string()
            .into_bytes()
    }

    fn error_of(reply: &Reply) -> String {
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        body["error"].as_str().unwrap().to_string()
    }

    #[test]
    fn run_before_init_is_500() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        let reply = proxy.run(br#"{"value":{}}"#);
        assert_eq!(reply.status, 500);
        assert_eq!(error_of(&reply), UNINITIALIZED);
    }

    #[test]
    fn malformed_bodies_are_400_and_the_proxy_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        for body in [&b"{not json"[..], b"[]", b"{}", br#"{"value": 3}"#] {
            let reply = proxy.init(body);
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert!(error_of(&reply).starts_with("The /init body is not"));
        }
        assert_eq!(
            proxy.init(&script_init("#!/bin/sh\necho '{}'\n")).status,
            200
        );
        assert_eq!(proxy.run(b"{oops").status, 400);
        assert_eq!(proxy.run(b"[1]").status, 400);
    }

    #[test]
    fn bad_code_is_502_and_init_may_be_retried() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        let bad = serde_json::json!({"value": {"binary": true, "code": "@@@@"}}).to_string();
        let reply = proxy.init(bad.as_bytes());
        assert_eq!(reply.status, 502);
        assert!(error_of(&reply).contains("base64"));
        let no_code = proxy.init(br#"{"value": {"code": ""}}"#);
        assert_eq!(no_code.status, 502);
        assert!(error_of(&no_code).contains("no code"));
        assert_eq!(
            proxy.init(&script_init("#!/bin/sh\necho '{}'\n")).status,
            200
        );
    }

    #[test]
    fn second_init_is_403() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        assert_eq!(proxy.init(&script_init("#!/bin/sh\n")).status, 200);
        let reply = proxy.init(&script_init("#!/bin/sh\n"));
        assert_eq!(reply.status, 403);
        assert_eq!(error_of(&reply), REINIT);
    }

    #[test]
    fn a_run_gets_params_in_argv1_and_the_env() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        let script = "#!/bin/sh\necho a log line\nprintf '{\"args\":%s,\"ns\":\"%s\",\"init\":\"%s\"}\\n\\n' \"$1\" \"$__OW_NAMESPACE\" \"$GREETING\"\n";
        let init = serde_json::json!({"value": {"code": script, "env": {"GREETING": "hi"}}});
        assert_eq!(proxy.init(init.to_string().as_bytes()).status, 200);
        let reply = proxy.run(br#"{"value":{"name":"W"},"namespace":"guest","deadline":"1"}"#);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let result: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            result,
            serde_json::json!({"args": {"name": "W"}, "ns": "guest", "init": "hi"})
        );
        // No `value`: the params are `{}`.
        let reply = proxy.run(br#"{"namespace":"guest"}"#);
        let result: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(result["args"], serde_json::json!({}));
    }

    #[test]
    fn a_run_without_a_dictionary_is_502() {
        for script in [
            "#!/bin/sh\necho not json\n",
            "#!/bin/sh\necho 42\n",
            "#!/bin/sh\nexit 3\n",
            "#!/bin/sh\necho '{}' >&2\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let proxy = Proxy::new(dir.path().to_path_buf());
            assert_eq!(proxy.init(&script_init(script)).status, 200);
            let reply = proxy.run(br#"{"value":{}}"#);
            assert_eq!(reply.status, 502, "{script}");
            assert_eq!(error_of(&reply), crate::output::NOT_A_DICTIONARY);
        }
    }

    #[test]
    fn a_json_last_line_counts_even_with_a_failing_exit() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        let script = "#!/bin/sh\necho '{\"error\":\"bad input\"}'\nexit 1\n";
        assert_eq!(proxy.init(&script_init(script)).status, 200);
        let reply = proxy.run(br#"{"value":{}}"#);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, r#"{"error":"bad input"}"#)
        );
    }

    #[test]
    fn binary_code_is_written_as_the_executable() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        // Binary code that is no executable format the kernel knows.
        let code = base64::engine::general_purpose::STANDARD.encode(b"\x00\x01\x02garbage");
        let init = serde_json::json!({"value": {"binary": true, "code": code}});
        assert_eq!(proxy.init(init.to_string().as_bytes()).status, 200);
        let exec = dir.path().join(EXEC);
        assert_eq!(std::fs::read(&exec).unwrap(), b"\x00\x01\x02garbage");
        assert_eq!(
            std::fs::metadata(&exec).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(proxy.run(br#"{"value":{}}"#).status, 502);
    }

    #[test]
    fn an_exec_that_cannot_start_is_502() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::new(dir.path().to_path_buf());
        assert_eq!(proxy.init(&script_init("#!/bin/sh\n")).status, 200);
        std::fs::remove_file(dir.path().join(EXEC)).unwrap();
        let reply = proxy.run(br#"{"value":{}}"#);
        assert_eq!(reply.status, 502);
        assert!(error_of(&reply).starts_with("The action could not be started"));
    }
}
