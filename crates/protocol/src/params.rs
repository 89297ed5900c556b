//! Parameters and annotations: OpenWhisk's `[{"key","value"}]` lists
//! (`COM/core/entity/Parameter.scala`).
//!
//! OpenWhisk holds them in a map and writes `init` only when it is true and
//! `encryption` only when set. We keep the list's order (so a message
//! re-serializes to the same JSON) and look keys up with map semantics: with
//! a duplicated key the last entry wins, as it would in OpenWhisk's map.

use serde::{Deserialize, Serialize};
use serde_json::Value;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One parameter or annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// The name.
    pub key: String,
    /// Any JSON value (`null` when the parameter is declared but unbound).
    pub value: Value,
    /// True for a parameter offered only to `/init` (as environment).
    #[serde(default, skip_serializing_if = "is_false")]
    pub init: bool,
    /// The encryption scheme of a locked value; none for plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

impl Parameter {
    /// A plain parameter `key = value`.
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Parameter {
            key: key.into(),
            value: value.into(),
            init: false,
            encryption: None,
        }
    }
}

/// A list of parameters or annotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Parameters(pub Vec<Parameter>);

impl Parameters {
    /// No parameters.
    pub fn new() -> Self {
        Parameters(Vec::new())
    }

    /// The entry named `key` (the last one, if repeated).
    pub fn entry(&self, key: &str) -> Option<&Parameter> {
        self.0.iter().rev().find(|p| p.key == key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(|p| &p.value)
    }

    /// The value of `key` as a string, if it is one.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// OpenWhisk's `isTruthy`: a boolean is itself, a number is true unless 0,
    /// a string is true unless empty, `null` is false, arrays and objects are
    /// true; a missing key gives `if_missing`.
    pub fn is_truthy(&self, key: &str, if_missing: bool) -> bool {
        match self.get(key) {
            None => if_missing,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Null) => false,
            Some(Value::Array(_) | Value::Object(_)) => true,
        }
    }

    /// Sets `key` to `value`, replacing every existing entry of that name.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let param = Parameter::new(key, value);
        self.0.retain(|p| p.key != param.key);
        self.0.push(param);
    }

    /// The names of the parameters marked `init`.
    pub fn init_keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter(|p| p.init).map(|p| p.key.as_str())
    }

    /// The parameters as one JSON object (`{"key": value, …}`).
    pub fn to_object(&self) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The JSON type of `v` with its article, for messages ("expected an
/// object, got a string").
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_round_trip_with_init_and_encryption_only_when_set() {
        let v = json!([
            {"key": "a", "value": 1},
            {"key": "b", "value": {"x": true}, "init": true},
            {"key": "c", "value": "s3cr3t", "encryption": "aes-256"}
        ]);
        let p: Parameters = crate::fixtures::round_trip(&v);
        assert_eq!(p.init_keys().collect::<Vec<_>>(), ["b"]);
        // `"init": false` is read and not written back.
        let p: Parameters =
            serde_json::from_value(json!([{"key": "a", "value": 1, "init": false}])).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"key": "a", "value": 1}])
        );
    }

    #[test]
    fn lookups_and_truthiness() {
        let mut p: Parameters = serde_json::from_value(json!([
            {"key": "t", "value": true}, {"key": "z", "value": 0}, {"key": "s", "value": ""},
            {"key": "n", "value": null}, {"key": "o", "value": {}}, {"key": "t", "value": false}
        ]))
        .unwrap();
        assert!(!p.is_truthy("t", true), "last entry wins");
        assert!(!p.is_truthy("z", true) && !p.is_truthy("s", true) && !p.is_truthy("n", true));
        assert!(p.is_truthy("o", false));
        assert!(p.is_truthy("missing", true) && !p.is_truthy("missing", false));
        p.set("t", "yes");
        assert_eq!(p.get_str("t"), Some("yes"));
        assert_eq!(p.0.iter().filter(|e| e.key == "t").count(), 1);
        assert_eq!(p.to_object().get("z"), Some(&json!(0)));
    }

    #[test]
    fn malformed_parameters_are_errors() {
        for bad in [
            json!({"key": "a"}),
            json!([{"key": "a"}]),
            json!([{"value": 1}]),
            json!([{"key": 1, "value": 1}]),
            json!([{"key": "a", "value": 1, "init": "yes"}]),
        ] {
            assert!(
                serde_json::from_value::<Parameters>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
