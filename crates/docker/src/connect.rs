//! Reaching the Docker daemon: a client for `unix://` or `tcp://` hosts,
//! the API version agreed with the daemon, and which failures mean that
//! no daemon answers.
//!
//! bollard speaks API 1.53 by default and its `negotiate_version` only
//! lowers that after asking `/v1.53/version`, which an older daemon (20.10
//! speaks 1.41) rejects outright with a 400. Then the daemon's own version
//! is asked for with API 1.24, which every daemon that rejected 1.53 still
//! answers.

use std::time::{SystemTime, UNIX_EPOCH};

use bollard::errors::Error as BollardError;
use bollard::{API_DEFAULT_VERSION, ClientVersion};

use super::DockerError;

/// Timeout of one request to the Docker daemon, seconds (bollard's default).
const DAEMON_TIMEOUT_SECS: u64 = 120;
/// The API version used only to ask an older daemon for its version.
const PROBE_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 24,
};

/// Builds a client for `host` and agrees on the API version: bollard's
/// default on daemons that accept it (negotiating down if needed); on an
/// older daemon, which rejects the default outright, the daemon's own
/// version, asked for with API 1.24.
pub(super) async fn negotiate(host: &str) -> Result<bollard::Docker, DockerError> {
    let client = client_for(host, API_DEFAULT_VERSION)?;
    match client.negotiate_version().await {
        Ok(client) => Ok(client),
        Err(BollardError::DockerResponseServerError {
            status_code: 400, ..
        }) => {
            let probe = client_for(host, &PROBE_VERSION)?;
            let version = probe
                .version()
                .await
                .map_err(|e| unavailable_or(host, e, DockerError::Daemon))?;
            let api = version.api_version.unwrap_or_default();
            let parsed = parse_api_version(&api).ok_or_else(|| {
                DockerError::Daemon(format!(
                    "the Docker daemon at {host} reports an unreadable API version '{api}'"
                ))
            })?;
            client_for(host, &parsed)
        }
        Err(e) => Err(unavailable_or(host, e, DockerError::Daemon)),
    }
}

/// A bollard client for `unix://…` or `tcp://…`/`http://…` at `version`.
fn client_for(host: &str, version: &ClientVersion) -> Result<bollard::Docker, DockerError> {
    let client = if host.starts_with("unix://") {
        bollard::Docker::connect_with_unix(host, DAEMON_TIMEOUT_SECS, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        bollard::Docker::connect_with_http(host, DAEMON_TIMEOUT_SECS, version)
    } else {
        return Err(DockerError::Unavailable(format!(
            "Docker cannot be reached at '{host}': the host is neither unix:///path \
             nor tcp://host:port"
        )));
    };
    client.map_err(|e| unavailable_or(host, e, DockerError::Daemon))
}

/// `t` as the API's timestamps: `seconds.nanoseconds` since the epoch.
pub(super) fn unix_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// `"1.41"` → 1.41.
fn parse_api_version(text: &str) -> Option<ClientVersion> {
    let (major, minor) = text.trim().split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// `Unavailable` for errors that mean no daemon answers at `host`; else `other`.
pub(super) fn unavailable_or(
    host: &str,
    e: BollardError,
    other: impl FnOnce(String) -> DockerError,
) -> DockerError {
    let unreachable = match &e {
        BollardError::SocketNotFoundError(_) | BollardError::IOError { .. } => true,
        BollardError::HyperLegacyError { err } => err.is_connect(),
        _ => false,
    };
    if unreachable {
        DockerError::Unavailable(format!(
            "Docker is not running at {host} (no daemon answers there: {e}); \
             start Docker, or point DOCKER_HOST at a running daemon"
        ))
    } else {
        other(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_parse() {
        let v = parse_api_version("1.41");
        assert_eq!(v.map(|v| (v.major_version, v.minor_version)), Some((1, 41)));
        assert!(parse_api_version("141").is_none());
        assert!(parse_api_version("1.x").is_none());
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = DockerError::ImageMissing("me/act:1".into()).to_string();
        assert!(e.contains("'me/act:1'") && e.contains("no registry") && e.contains("build.sh"));
        let e = unavailable_or(
            "unix:///nowhere.sock",
            BollardError::SocketNotFoundError("/nowhere.sock".into()),
            DockerError::Daemon,
        )
        .to_string();
        assert!(
            e.contains("unix:///nowhere.sock") && e.contains("Docker is not running"),
            "{e}"
        );
    }

    #[test]
    fn unsupported_hosts_are_refused_clearly() {
        let e = client_for("ssh://box", API_DEFAULT_VERSION)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("ssh://box")));
    }
}
