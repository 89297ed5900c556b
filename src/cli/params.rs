//! Parameters from the command line, as `wsk` reads them: `-p key value`
//! (the value is JSON if it parses, else a string) and `-P file.json`
//! (a JSON object).

use std::path::Path;

use serde_json::{Map, Value};

/// Bad parameters.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The text is not JSON.
    #[error("parameters are not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The JSON is not an object.
    #[error("parameters must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The file could not be read.
    #[error("cannot read the parameter file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

pub use crate::protocol::params::json_type;

/// Parses `text` as a JSON object of parameters.
pub fn parse_object(text: &str) -> Result<Map<String, Value>, ParamsError> {
    match serde_json::from_str::<Value>(text)? {
        Value::Object(map) => Ok(map),
        other => Err(ParamsError::NotAnObject(json_type(&other))),
    }
}

/// Reads a `-P` file.
pub fn read_file(path: &Path) -> Result<Map<String, Value>, ParamsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ParamsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_object(&text)
}

/// A `-p key value` value: JSON if it parses, else the string itself.
pub fn value_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_only() {
        assert!(parse_object(r#"{"a":1}"#).is_ok());
        assert!(matches!(
            parse_object("[1]"),
            Err(ParamsError::NotAnObject("an array"))
        ));
        assert!(matches!(parse_object("nope"), Err(ParamsError::NotJson(_))));
    }

    #[test]
    fn p_values_are_json_or_strings() {
        assert_eq!(value_of("42"), Value::from(42));
        assert_eq!(value_of("World"), Value::from("World"));
        assert_eq!(value_of(r#"{"x":[1]}"#)["x"][0], 1);
    }
}
