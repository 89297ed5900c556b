//! `action-proxy`: OpenWhisk's action container protocol for native
//! executables, the entry point of the `wasmwhisk/action-proxy` image.
//!
//! `POST /init` installs the action (`code` → `/action/exec`, see [`code`]);
//! `POST /run` runs `/action/exec '<params JSON>'` once per request, each in
//! its own process, concurrently (see [`run`]). After every `/run` and every
//! failed `/init`, the sentinel `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX` is
//! written as a line on stdout and on stderr, so a log reader knows where one
//! activation's logs end.
//!
//! The proxy prints nothing else: everything on its stdout and stderr is the
//! action's. Bad requests get a JSON error and the proxy keeps serving.
//!
//! ```text
//! action-proxy [--listen 0.0.0.0:8080] [--action-dir /action]
//! ```
//!
//! Modules: [`proxy`] (the init-once state), [`code`] (decoding and
//! installing code), [`run`] (one activation's process), [`output`] (logs vs
//! result), [`env`] (the action's environment), [`oom`] (out-of-memory
//! kills).

mod code;
mod env;
mod oom;
mod output;
mod proxy;
mod run;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::proxy::Proxy;
use crate::run::Reply;

/// OpenWhisk's `Container.ACTIVATION_LOG_SENTINEL`.
const SENTINEL: &[u8] = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n";

/// The largest request body read (a 48 MB action's code is 64 MB of base64).
const MAX_BODY: u64 = 128 << 20;

const USAGE: &str = "usage: action-proxy [--listen ADDR:PORT] [--action-dir DIR]";

/// Command-line settings.
struct Args {
    /// Where to listen; default `0.0.0.0:8080`.
    listen: SocketAddr,
    /// Where the action's files go; default `/action`.
    action_dir: PathBuf,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
        action_dir: PathBuf::from("/action"),
    };
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--listen" => {
                parsed.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
            }
            "--action-dir" => parsed.action_dir = PathBuf::from(value),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("action-proxy: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::http(args.listen) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("action-proxy: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let proxy = Arc::new(Proxy::new(args.action_dir));
    // One thread per request: runs may overlap, and a slow one blocks nobody.
    for request in server.incoming_requests() {
        let proxy = Arc::clone(&proxy);
        let spawned = thread::Builder::new()
            .name("request".into())
            .spawn(move || handle(&proxy, request));
        if let Err(error) = spawned {
            // The request is dropped with the closure; tiny_http answers 500.
            eprintln!("action-proxy: cannot start a request thread: {error}");
        }
    }
    ExitCode::SUCCESS
}

/// Answers one request.
fn handle(proxy: &Proxy, mut request: Request) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let is_post = *request.method() == Method::Post;
    let reply = match (path.as_str(), is_post) {
        ("/init" | "/run", true) => match read_body(&mut request) {
            Err(reply) => reply,
            Ok(body) if path == "/init" => proxy.init(&body),
            Ok(body) => proxy.run(&body),
        },
        ("/init" | "/run", false) => Reply::error(405, "Only POST is allowed here."),
        _ => Reply::error(
            404,
            "Not found: the action proxy serves POST /init and /run.",
        ),
    };
    if is_post && (path == "/run" || (path == "/init" && reply.status != 200)) {
        write_sentinels();
    }
    let mut response = Response::from_data(reply.body.into_bytes()).with_status_code(reply.status);
    if let Ok(header) = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        response = response.with_header(header);
    }
    // The client may be gone (e.g. it timed out); nothing to do then.
    let _ = request.respond(response);
}

/// The request's body, up to [`MAX_BODY`].
fn read_body(request: &mut Request) -> Result<Vec<u8>, Reply> {
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body);
    match read {
        Err(error) => Err(Reply::error(
            400,
            &format!("Cannot read the request body: {error}"),
        )),
        Ok(_) if body.len() as u64 > MAX_BODY => Err(Reply::error(
            413,
            &format!("The request body is larger than {MAX_BODY} bytes."),
        )),
        Ok(_) => Ok(body),
    }
}

/// Ends the activation's logs on both streams (flushed).
fn write_sentinels() {
    for mut out in [
        Box::new(io::stdout().lock()) as Box<dyn Write>,
        Box::new(io::stderr().lock()),
    ] {
        let _ = out.write_all(SENTINEL).and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_are_the_image_contract() {
        let parsed = args(&[]).unwrap();
        assert_eq!(parsed.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(parsed.action_dir, PathBuf::from("/action"));
    }

    #[test]
    fn flags_override_and_bad_ones_are_errors() {
        let parsed = args(&["--listen", "127.0.0.1:9", "--action-dir", "/tmp/a"]).unwrap();
        assert_eq!(parsed.listen.to_string(), "127.0.0.1:9");
        assert_eq!(parsed.action_dir, PathBuf::from("/tmp/a"));
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--listen", "nowhere"]).is_err());
        assert!(args(&["--port", "1"]).is_err());
    }
}
