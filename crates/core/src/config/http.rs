//! `[http]`: the bounds every HTTP server of wasmwhisk puts on a client —
//! the REST API of `standalone` and `wasmwhisk controller`, and the admin API
//! of `wasmwhisk invoker`.
//!
//! A table of its own rather than keys under `[controller]`, because the
//! invoker's admin API is served by the same code under the same bounds.
//! The names follow akka-http's `akka.http.server`, which OpenWhisk's
//! controller and invoker run on: `idle-timeout` and `max-connections` are
//! akka's keys with akka's defaults. akka has no separate header and body
//! timeouts (its idle timeout covers a stalled request too); hyper, which
//! serves here, reads the head and the body in separate steps, so each gets
//! its own bound.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units;
use super::{ConfigError, invalid};

/// `[http]`: timeouts and the connection cap of the HTTP servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpConfig {
    /// Longest a connection may take to send a request's headers, counted
    /// from when it is opened or, on a kept-alive connection, from the
    /// request's first byte; over it the connection is closed. Default
    /// `"30 seconds"`.
    #[serde(with = "units::duration")]
    pub header_read_timeout: Duration,
    /// Longest a request's whole body may take to arrive, counted from the
    /// end of its head; over it the request is answered 408. Default
    /// `"30 seconds"`.
    #[serde(with = "units::duration")]
    pub body_read_timeout: Duration,
    /// A kept-alive connection with no request in progress and no bytes
    /// moving for this long is closed (akka's `idle-timeout`). Default
    /// `"60 seconds"`.
    #[serde(with = "units::duration")]
    pub idle_timeout: Duration,
    /// Connections served at once (akka's `max-connections`); further
    /// clients wait in the listen backlog until one closes. Lowered at start
    /// to leave file descriptors for the server's own files. Default `1024`.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

impl HttpConfig {
    /// The largest timeout accepted: a day. Far more than any client needs,
    /// and small enough that adding it to the clock cannot overflow.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

    /// Every timeout is positive and at most [`Self::MAX_TIMEOUT`], and at
    /// least one connection is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("http.header-read-timeout", self.header_read_timeout),
            ("http.body-read-timeout", self.body_read_timeout),
            ("http.idle-timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "expected a positive duration".to_string()));
            }
            if value > Self::MAX_TIMEOUT {
                return Err(invalid(key, "expected at most 1 day".to_string()));
            }
        }
        if self.max_connections == 0 {
            return Err(invalid(
                "http.max-connections",
                "expected at least 1".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_refused() {
        assert!(HttpConfig::default().validate().is_ok());
        let zero_idle = HttpConfig {
            idle_timeout: Duration::ZERO,
            ..HttpConfig::default()
        };
        assert!(
            zero_idle
                .validate()
                .is_err_and(|e| e.to_string().contains("http.idle-timeout"))
        );
        let no_connections = HttpConfig {
            max_connections: 0,
            ..HttpConfig::default()
        };
        assert!(
            no_connections
                .validate()
                .is_err_and(|e| e.to_string().contains("http.max-connections"))
        );
    }

    #[test]
    fn a_timeout_over_a_day_is_refused() {
        let a_day = HttpConfig {
            idle_timeout: HttpConfig::MAX_TIMEOUT,
            ..HttpConfig::default()
        };
        assert!(a_day.validate().is_ok());
        let millennium: HttpConfig =
            toml::from_str("idle-timeout = \"365000 days\"").expect("parses");
        assert!(millennium.validate().is_err_and(|e| {
            let e = e.to_string();
            e.contains("http.idle-timeout") && e.contains("at most 1 day")
        }));
        for body in ["header-read-timeout", "body-read-timeout"] {
            let config: HttpConfig =
                toml::from_str(&format!("{body} = \"2 days\"")).expect("parses");
            assert!(config.validate().is_err(), "{body}");
        }
    }
}
