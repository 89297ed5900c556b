//! Query parameters, read as OpenWhisk's unmarshallers read them, with their
//! messages: booleans as akka reads them (`true`/`yes`/`on`/`1`, …), list
//! `limit` and `skip` (`RestAPIs.scala`), epoch-millisecond bounds and the
//! blocking `timeout` (`Actions.scala`).
//!
//! The raw query is taken as a map of strings so that a wrong value is
//! answered with a message naming the parameter, not a generic rejection.

use std::collections::HashMap;
use std::time::Duration;

use super::error::{ApiError, messages};

/// The query of a request, each name once (the last value wins).
pub type Query = HashMap<String, String>;

/// Lists return at most this many entries (OpenWhisk's `MAX_LIST_LIMIT`).
pub const MAX_LIST_LIMIT: usize = 200;
/// Lists return this many entries when no `limit` is given.
pub const DEFAULT_LIST_LIMIT: usize = 30;

/// Boolean parameter `name` (absent: `default`).
pub fn flag(query: &Query, name: &str, default: bool) -> Result<bool, ApiError> {
    let Some(value) = query.get(name) else {
        return Ok(default);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "The query parameter '{name}' was malformed:\n'{value}' is not a valid Boolean value"
        ))),
    }
}

/// `limit` of a list of `collection`: default 30, `0` means the maximum, at
/// most 200.
pub fn list_limit(query: &Query, collection: &str) -> Result<usize, ApiError> {
    let Some(value) = query.get("limit") else {
        return Ok(DEFAULT_LIST_LIMIT);
    };
    match value.trim().parse::<i64>() {
        Ok(0) => Ok(MAX_LIST_LIMIT),
        Ok(n) if n > 0 && n <= MAX_LIST_LIMIT as i64 => Ok(n as usize),
        Ok(n) => Err(ApiError::bad_request(format!(
            "The value '{n}' is not in the range of 0 to {MAX_LIST_LIMIT} for {collection}."
        ))),
        Err(_) => Err(not_integer(value, collection)),
    }
}

/// `skip` of a list of `collection`: default 0, never negative.
pub fn list_skip(query: &Query, collection: &str) -> Result<usize, ApiError> {
    let Some(value) = query.get("skip") else {
        return Ok(0);
    };
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 0 => usize::try_from(n).map_err(|_| not_integer(value, collection)),
        Ok(n) => Err(ApiError::bad_request(format!(
            "The value '{n}' is not greater than or equal to 0 for {collection}."
        ))),
        Err(_) => Err(not_integer(value, collection)),
    }
}

fn not_integer(value: &str, collection: &str) -> ApiError {
    ApiError::bad_request(format!(
        "The value '{value}' is not an integer for {collection}."
    ))
}

/// An epoch-milliseconds bound (`since`, `upto`), if given.
pub fn epoch_ms(query: &Query, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(value) = query.get(name) else {
        return Ok(None);
    };
    value.trim().parse::<u64>().map(Some).map_err(|_| {
        // OpenWhisk's message says seconds; the value is milliseconds.
        ApiError::bad_request(format!(
            "Parameter is not a valid value for epoch seconds: {value}"
        ))
    })
}

/// How long a blocking invoke waits: `timeout` (milliseconds, `1..=max`)
/// or `max`.
pub fn blocking_wait(query: &Query, max: Duration) -> Result<Duration, ApiError> {
    let Some(value) = query.get("timeout") else {
        return Ok(max);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 && u128::from(ms) <= max.as_millis() => Ok(Duration::from_millis(ms)),
        _ => Err(ApiError::bad_request(messages::invalid_timeout(
            max.as_millis(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flags_read_like_akka_booleans() {
        assert_eq!(flag(&query(&[]), "blocking", false), Ok(false));
        assert_eq!(flag(&query(&[]), "blocking", true), Ok(true));
        for yes in ["true", "TRUE", "yes", "on", "1"] {
            assert_eq!(flag(&query(&[("b", yes)]), "b", false), Ok(true), "{yes}");
        }
        for no in ["false", "No", "off", "0"] {
            assert_eq!(flag(&query(&[("b", no)]), "b", true), Ok(false), "{no}");
        }
        let err = flag(&query(&[("blocking", "maybe")]), "blocking", false);
        assert_eq!(
            err.map_err(|e| e.message),
            Err(
                "The query parameter 'blocking' was malformed:\n'maybe' is not a valid Boolean value"
                    .into()
            )
        );
    }

    #[test]
    fn list_limits_and_skips_follow_openwhisk() {
        assert_eq!(list_limit(&query(&[]), "activations"), Ok(30));
        assert_eq!(
            list_limit(&query(&[("limit", "0")]), "activations"),
            Ok(200)
        );
        assert_eq!(
            list_limit(&query(&[("limit", "200")]), "activations"),
            Ok(200)
        );
        assert_eq!(
            list_limit(&query(&[("limit", "201")]), "activations").map_err(|e| e.message),
            Err("The value '201' is not in the range of 0 to 200 for activations.".into())
        );
        assert_eq!(
            list_limit(&query(&[("limit", "x")]), "actions").map_err(|e| e.message),
            Err("The value 'x' is not an integer for actions.".into())
        );
        assert_eq!(list_skip(&query(&[]), "actions"), Ok(0));
        assert_eq!(list_skip(&query(&[("skip", "7")]), "actions"), Ok(7));
        assert_eq!(
            list_skip(&query(&[("skip", "-1")]), "actions").map_err(|e| e.message),
            Err("The value '-1' is not greater than or equal to 0 for actions.".into())
        );
    }

    #[test]
    fn epoch_bounds_and_timeouts() {
        assert_eq!(epoch_ms(&query(&[]), "since"), Ok(None));
        assert_eq!(
            epoch_ms(&query(&[("since", "123")]), "since"),
            Ok(Some(123))
        );
        assert!(epoch_ms(&query(&[("upto", "yesterday")]), "upto").is_err());
        let max = Duration::from_secs(60);
        assert_eq!(blocking_wait(&query(&[]), max), Ok(max));
        assert_eq!(
            blocking_wait(&query(&[("timeout", "100")]), max),
            Ok(Duration::from_millis(100))
        );
        for bad in ["0", "60001", "-5", "soon"] {
            assert_eq!(
                blocking_wait(&query(&[("timeout", bad)]), max).map_err(|e| e.message),
                Err("Timeout must be number of milliseconds up to 60000.".into()),
                "{bad}"
            );
        }
    }
}
