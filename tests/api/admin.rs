//! The admin API (its own credentials), `/ping`, `/metrics` and `/api/v1`.

use reqwest::Method;
use serde_json::json;

use super::{HELLO_JS, invoke, js_exec, put};
use crate::standalone::{Server, assert_error, send};

#[test]
fn admin_and_operational_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None);
    let ping = send(server.anonymous(Method::GET, "/ping"));
    assert_eq!((ping.status, ping.text.as_str()), (200, "pong"));
    let info = send(server.anonymous(Method::GET, "/api/v1"));
    assert_eq!(info.body["api_paths"], json!(["/api/v1"]));
    assert_eq!(server.get("/api/v1/namespaces").body, json!(["guest"]));

    for (method, path) in [
        (Method::GET, "/isEnabled"),
        (Method::GET, "/pool"),
        (Method::GET, "/pool/count"),
        (Method::POST, "/disable"),
    ] {
        assert_error(
            &send(server.anonymous(method.clone(), path)),
            401,
            "The supplied authentication is invalid.",
        );
        assert_error(
            &send(server.request(method, path)),
            401,
            "The supplied authentication is invalid.",
        );
    }
    let enabled = send(server.admin(Method::GET, "/isEnabled"));
    assert_eq!(enabled.body, json!({"enabled": true}), "{}", enabled.text);
    let pool = send(server.admin(Method::GET, "/pool"));
    assert!(pool.body["totalContainers"].is_u64(), "{}", pool.text);
    assert!(pool.body["busyPool"].is_object(), "{}", pool.text);
    let count = send(server.admin(Method::GET, "/pool/count"));
    assert!(count.body.is_u64(), "{}", count.text);

    assert_eq!(
        put(&server, "hello", json!({"exec": js_exec(HELLO_JS)})).status,
        200
    );
    assert_eq!(
        invoke(&server, "hello", "blocking=true", json!({})).status,
        200
    );
    let metrics = send(server.anonymous(Method::GET, "/metrics"));
    assert_eq!(metrics.status, 200);
    for needle in [
        "wasmwhisk_http_requests",
        "wasmwhisk_pool_containers",
        "route=\"/api/v1/namespaces/{namespace}/actions/{name}\"",
    ] {
        assert!(
            metrics.text.contains(needle),
            "{needle} in:\n{}",
            metrics.text
        );
    }
    assert!(metrics.text.ends_with("# EOF\n"));

    let disabled = send(server.admin(Method::POST, "/disable"));
    assert_eq!(
        (disabled.status, disabled.text.as_str()),
        (200, "invoker0 is now disabled.")
    );
    assert_eq!(
        send(server.admin(Method::GET, "/isEnabled")).body,
        json!({"enabled": false})
    );
    let enabled = send(server.admin(Method::POST, "/enable"));
    assert_eq!(enabled.status, 200);
    assert_eq!(
        send(server.admin(Method::GET, "/isEnabled")).body,
        json!({"enabled": true})
    );
}
