//! The environment an action process gets.
//!
//! Two layers on top of the proxy's own environment (which carries what the
//! container was created with, e.g. `__OW_API_HOST`):
//! - the init `env` (`/init`'s `value.env`), the same for every run;
//! - the activation's context: every key of the `/run` body except `value`
//!   becomes `__OW_<KEY IN UPPERCASE>` (OpenWhisk's runtimes do the same).
//!
//! Values are strings the way OpenWhisk writes them: a string as it is,
//! `null` as `""`, anything else as compact JSON.

use serde_json::{Map, Value};

/// One environment variable: name and value.
pub type EnvVar = (String, String);

/// Why the init `env` cannot become environment variables.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// `env` is present but not a JSON object.
    #[error("The init env must be a JSON object of strings.")]
    NotAnObject,
    /// A name that an environment variable cannot have.
    #[error(
        "The init env variable name {0:?} is not valid: it must be non-empty, without '=' or NUL."
    )]
    BadName(String),
    /// A value with a NUL byte.
    #[error("The value of the init env variable {0:?} contains a NUL byte.")]
    BadValue(String),
}

/// `value` as an environment variable value.
pub fn env_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether `name` can be the name of an environment variable.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

/// The init env (`/init`'s `value.env`, absent or `null` = none).
pub fn init_env(env: Option<&Value>) -> Result<Vec<EnvVar>, EnvError> {
    let entries = match env {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(entries)) => entries,
        Some(_) => return Err(EnvError::NotAnObject),
    };
    let mut vars = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if !valid_name(name) {
            return Err(EnvError::BadName(name.clone()));
        }
        let value = env_value(value);
        if value.contains('\0') {
            return Err(EnvError::BadValue(name.clone()));
        }
        vars.push((name.clone(), value));
    }
    Ok(vars)
}

/// `__OW_<KEY>` for every key of a `/run` body except `value`.
///
/// The keys come from the invoker (`namespace`, `action_name`,
/// `activation_id`, `deadline`, …); one that cannot be a variable (or a
/// value with a NUL byte) is left out rather than failing the activation.
pub fn activation_env(body: &Map<String, Value>) -> Vec<EnvVar> {
    body.iter()
        .filter(|(key, _)| key.as_str() != "value")
        .map(|(key, value)| (format!("__OW_{}", key.to_uppercase()), env_value(value)))
        .filter(|(name, value)| valid_name(name) && !value.contains('\0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_written_the_openwhisk_way() {
        assert_eq!(env_value(&json!("text")), "text");
        assert_eq!(env_value(&json!(null)), "");
        assert_eq!(env_value(&json!(true)), "true");
        assert_eq!(env_value(&json!(42)), "42");
        assert_eq!(env_value(&json!(1.5)), "1.5");
        assert_eq!(env_value(&json!({"a": [1, "b"]})), r#"{"a":[1,"b"]}"#);
    }

    #[test]
    fn run_keys_become_ow_variables() {
        let body = json!({
            "value": {"name": "World"},
            "namespace": "guest",
            "action_name": "/guest/hello",
            "action_version": "0.0.1",
            "activation_id": "0123456789abcdef0123456789abcdef",
            "transaction_id": "tid",
            "deadline": "1700000000000",
            "api_key": "uuid:key",
        });
        let Value::Object(body) = body else {
            unreachable!()
        };
        let mut env = activation_env(&body);
        env.sort();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "__OW_ACTION_NAME",
                "__OW_ACTION_VERSION",
                "__OW_ACTIVATION_ID",
                "__OW_API_KEY",
                "__OW_DEADLINE",
                "__OW_NAMESPACE",
                "__OW_TRANSACTION_ID",
            ]
        );
        assert!(env.contains(&("__OW_DEADLINE".into(), "1700000000000".into())));
        assert!(env.contains(&("__OW_ACTION_NAME".into(), "/guest/hello".into())));
    }

    #[test]
    fn run_keys_that_cannot_be_variables_are_left_out() {
        let Value::Object(body) = json!({"a=b": "x", "nul": "a\u{0}b", "deadline": 5}) else {
            unreachable!()
        };
        assert_eq!(
            activation_env(&body),
            [("__OW_DEADLINE".to_string(), "5".to_string())]
        );
    }

    #[test]
    fn init_env_maps_entries_and_rejects_bad_ones() {
        assert_eq!(init_env(None), Ok(vec![]));
        assert_eq!(init_env(Some(&json!(null))), Ok(vec![]));
        assert_eq!(
            init_env(Some(&json!({"A": "1", "B": 2, "C": null}))),
            Ok(vec![
                ("A".into(), "1".into()),
                ("B".into(), "2".into()),
                ("C".into(), "".into())
            ])
        );
        assert_eq!(init_env(Some(&json!(["A"]))), Err(EnvError::NotAnObject));
        assert_eq!(
            init_env(Some(&json!({"A=B": "1"}))),
            Err(EnvError::BadName("A=B".into()))
        );
        assert_eq!(
            init_env(Some(&json!({"": "1"}))),
            Err(EnvError::BadName("".into()))
        );
        assert_eq!(
            init_env(Some(&json!({"A": "x\u{0}"}))),
            Err(EnvError::BadValue("A".into()))
        );
    }
}
