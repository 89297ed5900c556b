//! Every bad input of issue 4 against one server whose code and parameter
//! limits are lowered to 100 KB and 64 KB (so a real component is over it,
//! and an oversized request stays small): each is refused with
//! OpenWhisk's status and error body, nothing is stored, and the server
//! keeps serving.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::json;

use super::{ACTIONS, ACTIVATIONS, HELLO_JS, invoke, js_exec, put, wasm_exec};
use crate::standalone::{Server, assert_error, send};

const NOT_FOUND: &str = "The requested resource does not exist.";
const MALFORMED: &str = "The request content was malformed:";

fn start(dir: &std::path::Path) -> Server {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[limits]\nexec-size-limit = \"100 KB\"\nparameter-size-limit = \"64 KB\"\n",
    )
    .expect("config");
    Server::start(dir, Some(&config))
}

#[test]
fn bad_input_gets_openwhisks_errors_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path());
    let path = |name: &str| format!("{ACTIONS}/{name}");

    // Authentication and authorization.
    let invalid = "The supplied authentication is invalid.";
    assert_error(&send(server.anonymous(Method::GET, ACTIONS)), 401, invalid);
    let (uuid, _) = crate::standalone::split(&server.guest);
    assert_error(
        &send(server.as_user(&format!("{uuid}:wrong"), Method::GET, ACTIONS)),
        401,
        invalid,
    );
    assert_error(
        &send(server.as_user("nobody:nothing", Method::GET, ACTIONS)),
        401,
        invalid,
    );
    let garbage = server
        .anonymous(Method::GET, ACTIONS)
        .header("Authorization", "Basic !!!");
    assert_error(&send(garbage), 401, invalid);
    let bearer = server
        .anonymous(Method::GET, ACTIONS)
        .header("Authorization", "Bearer x");
    assert_error(&send(bearer), 401, invalid);
    assert_error(
        &server.get("/api/v1/namespaces/someone/actions"),
        403,
        "The supplied authentication is not authorized to access 'someone'.",
    );

    // Malformed JSON and wrong types.
    let raw = |method: Method, p: &str, body: &'static str| {
        send(
            server
                .request(method, p)
                .header("Content-Type", "application/json")
                .body(body),
        )
    };
    assert_error(&raw(Method::PUT, &path("a"), "{"), 400, MALFORMED);
    assert_error(&raw(Method::PUT, &path("a"), ""), 400, MALFORMED);
    let wrong = put(
        &server,
        "a",
        json!({"exec": js_exec(HELLO_JS), "limits": {"memory": "lots"}}),
    );
    assert_error(&wrong, 400, MALFORMED);
    assert!(wrong.text.contains("limits.memory"), "{}", wrong.text);
    assert_error(
        &put(&server, "a", json!({"exec": {"kind": 7}})),
        400,
        MALFORMED,
    );
    assert_error(
        &put(
            &server,
            "a",
            json!({"exec": js_exec(HELLO_JS), "parameters": {"k": 1}}),
        ),
        400,
        MALFORMED,
    );
    assert_error(
        &put(&server, "a", json!({"parameters": []})),
        400,
        "exec undefined",
    );

    // Unknown kinds, bad code, limits out of range: 400, nothing stored.
    assert_error(
        &put(
            &server,
            "a",
            json!({"exec": {"kind": "python:3", "code": "def main(): pass"}}),
        ),
        400,
        "unknown action kind 'python:3'",
    );
    let bad_base64 = put(
        &server,
        "a",
        json!({"exec": {"kind": "wasm", "binary": true, "code": "%%% not base64"}}),
    );
    assert_error(
        &bad_base64,
        400,
        "'code' of a 'wasm' action must be a base64-encoded",
    );
    let not_wasm = STANDARD.encode(b"this is not WebAssembly");
    assert_error(
        &put(
            &server,
            "a",
            json!({"exec": {"kind": "wasm", "binary": true, "code": not_wasm}}),
        ),
        400,
        "invalid WebAssembly component",
    );
    let not_action = put(&server, "a", json!({"exec": wasm_exec("not-an-action")}));
    assert_eq!(not_action.status, 400, "{}", not_action.text);
    let syntax = put(&server, "a", json!({"exec": js_exec("function main( {")}));
    assert_eq!(syntax.status, 400, "{}", syntax.text);
    assert!(!syntax.body["error"].as_str().unwrap_or_default().is_empty());
    let no_main = put(&server, "a", json!({"exec": js_exec("const x = 1;")}));
    assert_eq!(no_main.status, 400, "{}", no_main.text);
    assert!(no_main.text.contains("main"), "{}", no_main.text);
    for (limits, message) in [
        (
            json!({"memory": 1024}),
            "memory 1024 MB exceeds allowed threshold of 512 MB",
        ),
        (
            json!({"memory": 64}),
            "memory 64 MB below allowed threshold of 128 MB",
        ),
        (
            json!({"timeout": 50}),
            "duration 50 milliseconds below allowed threshold of 100 milliseconds",
        ),
        (
            json!({"timeout": 300001}),
            "duration 300001 milliseconds exceeds",
        ),
        (
            json!({"logs": 11}),
            "log size 11 MB exceeds allowed threshold of 10 MB",
        ),
        (
            json!({"concurrency": 2}),
            "concurrency 2 exceeds allowed threshold of 1",
        ),
    ] {
        assert_error(
            &put(
                &server,
                "a",
                json!({"exec": js_exec(HELLO_JS), "limits": limits}),
            ),
            400,
            message,
        );
    }
    assert_error(
        &put(&server, "bad*name", json!({"exec": js_exec(HELLO_JS)})),
        400,
        "name 'bad*name'",
    );

    // Sizes: code over the (lowered) limit, a body over the request limit,
    // parameters over 1 MB: 413.
    let code_size = crate::common::guest("hello_rust").len();
    assert_error(
        &put(&server, "a", json!({"exec": wasm_exec("hello_rust")})),
        413,
        &format!("Exec code larger than allowed: {code_size} > 102400 bytes."),
    );
    let huge = "x".repeat(400 << 10);
    assert_error(
        &put(&server, "a", json!({"exec": js_exec(&huge)})),
        413,
        "Request larger than allowed",
    );
    let params = json!([{"key": "big", "value": "x".repeat(64 << 10)}]);
    assert_error(
        &put(
            &server,
            "a",
            json!({"exec": js_exec(HELLO_JS), "parameters": params}),
        ),
        413,
        "Parameters larger than allowed",
    );
    assert_error(&server.get(&path("a")), 404, NOT_FOUND);
    assert_eq!(server.get(ACTIONS).body, json!([]), "nothing was stored");

    // Invokes: unknown action, bad payloads, bad query, final parameters.
    assert_error(
        &invoke(&server, "nothing", "blocking=true", json!({})),
        404,
        NOT_FOUND,
    );
    assert_error(
        &send(server.request(Method::DELETE, &path("nothing"))),
        404,
        NOT_FOUND,
    );
    let bound = json!({
        "exec": js_exec(HELLO_JS),
        "parameters": [{"key": "name", "value": "fixed"}],
        "annotations": [{"key": "final", "value": true}]
    });
    assert_eq!(put(&server, "sealed", bound).status, 200);
    assert_error(&raw(Method::POST, &path("sealed"), "{"), 400, MALFORMED);
    assert_error(
        &raw(Method::POST, &path("sealed"), "[1, 2]"),
        400,
        MALFORMED,
    );
    assert_error(
        &raw(Method::POST, &path("sealed"), "\"text\""),
        400,
        MALFORMED,
    );
    assert_error(
        &invoke(
            &server,
            "sealed",
            "blocking=true",
            json!({"payload": "x".repeat(1 << 20)}),
        ),
        413,
        "Request larger than allowed:",
    );
    assert_error(
        &invoke(&server, "sealed", "blocking=true", json!({"name": "other"})),
        400,
        "Request defines parameters that are not allowed",
    );
    assert_error(
        &invoke(&server, "sealed", "blocking=true&timeout=0", json!({})),
        400,
        "Timeout must be number of milliseconds up to 60000.",
    );
    assert_error(
        &invoke(&server, "sealed", "blocking=maybe", json!({})),
        400,
        "The query parameter 'blocking'",
    );
    let ok = invoke(&server, "sealed", "blocking=true&result=true", json!({}));
    assert_eq!(
        (ok.status, ok.body.clone()),
        (200, json!({"greeting": "Hello, fixed!"})),
        "{}",
        ok.text
    );

    // Activations: bad id, unknown id, bad list parameters.
    assert_error(
        &server.get(&format!("{ACTIVATIONS}/not-an-id")),
        400,
        "activation id must be 32",
    );
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_error(
        &server.get(&format!("{ACTIVATIONS}/{unknown}")),
        404,
        NOT_FOUND,
    );
    assert_error(
        &server.get(&format!("{ACTIVATIONS}/{unknown}/logs")),
        404,
        NOT_FOUND,
    );
    assert_error(
        &server.get(&format!("{ACTIVATIONS}?limit=500")),
        400,
        "The value '500' is not in the range of 0 to 200 for activations.",
    );
    assert_error(
        &server.get(&format!("{ACTIVATIONS}?since=yesterday")),
        400,
        "Parameter is not a valid value",
    );

    // Routes and methods that do not exist.
    assert_error(&server.get("/api/v1/namespaces/_/triggers"), 404, NOT_FOUND);
    assert_error(
        &send(server.request(Method::PATCH, &path("sealed"))),
        405,
        "The request method",
    );

    // The server still serves.
    let ok = invoke(&server, "sealed", "blocking=true&result=true", json!({}));
    assert_eq!(ok.status, 200, "{}", ok.text);
}
