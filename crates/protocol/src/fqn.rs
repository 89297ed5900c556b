//! Entity names and paths, and the fully qualified name of an action.
//!
//! OpenWhisk validates every name segment against one pattern
//! (`EntityName.REGEX`: a word character, then up to 254 of `[\w@ .&-]`, then a
//! character that is not a space), so a name can never contain `/`. We check
//! the same rule when a name is read: etcd keys and NATS subjects are built
//! from these names, and a `/` smuggled into one would shift every segment
//! the scheduler parses out of a key.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::ids::SemVer;

/// The longest entity name OpenWhisk accepts.
pub const ENTITY_NAME_MAX_LENGTH: usize = 256;

/// A name or path that breaks OpenWhisk's naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A segment that does not match OpenWhisk's entity name pattern.
    #[error(
        "name '{0}' is not allowed (1-256 of [A-Za-z0-9_@ .&-], starting with [A-Za-z0-9_], not ending in a space)"
    )]
    BadName(String),
    /// A path with no segments.
    #[error("path undefined")]
    EmptyPath,
    /// A fully qualified name needs at least a namespace and a name.
    #[error("fully qualified name '{0}' malformed: expected 'namespace[/package]/name'")]
    Malformed(String),
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// OpenWhisk's `EntityName.REGEX`, checked by hand.
fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !is_word(first) || s.len() > ENTITY_NAME_MAX_LENGTH {
        return false;
    }
    let Some(last) = s.chars().last() else {
        return false;
    };
    let middle_ok = chars.all(|c| is_word(c) || matches!(c, '@' | ' ' | '.' | '&' | '-'));
    middle_ok && last != ' '
}

/// One validated name segment (a namespace, package or action name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityName(String);

impl EntityName {
    /// Validates `name` against OpenWhisk's entity name pattern.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if is_valid_name(&name) {
            Ok(EntityName(name))
        } else {
            Err(NameError::BadName(name))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EntityName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        EntityName::new(s)
    }
}

impl From<EntityName> for String {
    fn from(n: EntityName) -> String {
        n.0
    }
}

/// A path of one or more names joined by `/`: `ns` or `ns/pkg`.
///
/// Read as OpenWhisk reads it: empty segments are dropped, so `/ns/pkg` and
/// `ns//pkg` are both `ns/pkg`. Written without a leading slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityPath {
    /// The first segment: the namespace.
    root: EntityName,
    /// The segments after the root (the package, for action paths).
    rest: Vec<EntityName>,
}

impl EntityPath {
    /// A one-segment path: a namespace.
    pub fn namespace(root: EntityName) -> Self {
        EntityPath {
            root,
            rest: Vec::new(),
        }
    }

    /// A path from its segments; at least one.
    pub fn from_names(names: Vec<EntityName>) -> Result<Self, NameError> {
        let mut names = names.into_iter();
        let root = names.next().ok_or(NameError::EmptyPath)?;
        Ok(EntityPath {
            root,
            rest: names.collect(),
        })
    }

    /// The segments, root first.
    pub fn segments(&self) -> impl Iterator<Item = &EntityName> {
        std::iter::once(&self.root).chain(&self.rest)
    }

    /// How many segments the path has (at least one).
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Always false: a path has at least one segment.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first segment: the namespace.
    pub fn root(&self) -> &EntityName {
        &self.root
    }

    /// The second segment (the package), if the path has one.
    pub fn package(&self) -> Option<&EntityName> {
        self.rest.first()
    }

    /// This path with `name` appended.
    pub fn join(&self, name: &EntityName) -> EntityPath {
        let mut path = self.clone();
        path.rest.push(name.clone());
        path
    }

    /// The path as `ns[/pkg]`.
    pub fn as_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EntityPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_str())?;
        for name in &self.rest {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

impl FromStr for EntityPath {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let names = s
            .split('/')
            .filter(|part| !part.is_empty())
            .map(EntityName::new)
            .collect::<Result<Vec<_>, _>>()?;
        EntityPath::from_names(names)
    }
}

impl TryFrom<String> for EntityPath {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<EntityPath> for String {
    fn from(p: EntityPath) -> String {
        p.to_string()
    }
}

/// The fully qualified name of an action: `path/name`, with an optional
/// version and, for an action reached through a package binding, the binding.
///
/// JSON: `{"path":"ns[/pkg]","name":"act","version":"0.0.1"?,"binding":"ns/pkg"?}`.
/// A bare string `"ns[/pkg]/act"` (how OpenWhisk stores sequence components)
/// is also read; it has no version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FullyQualifiedEntityName {
    path: EntityPath,
    name: EntityName,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<SemVer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binding: Option<EntityPath>,
}

/// The object form of a fully qualified name, as read.
#[derive(Deserialize)]
struct FqnObject {
    path: EntityPath,
    name: EntityName,
    #[serde(default)]
    version: Option<SemVer>,
    #[serde(default)]
    binding: Option<EntityPath>,
}

struct FqnVisitor;

impl<'de> Visitor<'de> for FqnVisitor {
    type Value = FullyQualifiedEntityName;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a fully qualified name: {\"path\",\"name\",…} or \"ns[/pkg]/act\"")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<FullyQualifiedEntityName, E> {
        s.parse().map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FullyQualifiedEntityName, A::Error> {
        let o = FqnObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(FullyQualifiedEntityName {
            path: o.path,
            name: o.name,
            version: o.version,
            binding: o.binding,
        })
    }
}

impl<'de> Deserialize<'de> for FullyQualifiedEntityName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FqnVisitor)
    }
}

impl FullyQualifiedEntityName {
    /// The name `name` under `path`, without version or binding.
    pub fn new(path: EntityPath, name: EntityName) -> Self {
        FullyQualifiedEntityName {
            path,
            name,
            version: None,
            binding: None,
        }
    }

    /// Parses `ns[/pkg]/act` and validates every segment.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        s.parse()
    }

    /// This name with `version` set.
    pub fn with_version(mut self, version: Option<SemVer>) -> Self {
        self.version = version;
        self
    }

    /// This name with `binding` set.
    pub fn with_binding(mut self, binding: Option<EntityPath>) -> Self {
        self.binding = binding;
        self
    }

    /// The path: `ns` or `ns/pkg`.
    pub fn path(&self) -> &EntityPath {
        &self.path
    }

    /// The action's own name.
    pub fn name(&self) -> &EntityName {
        &self.name
    }

    /// The version, if the name carries one.
    pub fn version(&self) -> Option<SemVer> {
        self.version
    }

    /// The package binding the action was reached through, if any.
    pub fn binding(&self) -> Option<&EntityPath> {
        self.binding.as_ref()
    }

    /// The namespace that owns the action (the path's first segment).
    pub fn namespace(&self) -> &EntityName {
        self.path.root()
    }

    /// The package, if the action is in one.
    pub fn package(&self) -> Option<&EntityName> {
        self.path.package()
    }

    /// This name without its version (and binding): what etcd keys and the
    /// action's document id use.
    pub fn without_version(&self) -> Self {
        FullyQualifiedEntityName::new(self.path.clone(), self.name.clone())
    }

    /// `ns[/pkg]/act`: OpenWhisk's `toStringWithoutVersion`, the `{fqn}` of
    /// every etcd key and the document id of the action.
    pub fn as_string_without_version(&self) -> String {
        format!("{}/{}", self.path, self.name)
    }

    /// `/ns[/pkg]/act`: the form of sequence components and of `/run`'s
    /// `action_name`.
    pub fn qualified_name_with_leading_slash(&self) -> String {
        format!("/{}/{}", self.path, self.name)
    }
}

impl fmt::Display for FullyQualifiedEntityName {
    /// OpenWhisk's `asString`: `ns[/pkg]/act`, then `@version` if set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.path, self.name)?;
        if let Some(version) = self.version {
            write!(f, "@{version}")?;
        }
        Ok(())
    }
}

impl FromStr for FullyQualifiedEntityName {
    type Err = NameError;

    /// Parses `ns[/pkg]/act` (a leading slash is allowed); needs at least two
    /// segments. No version: `@` is a legal name character, not a separator.
    fn from_str(s: &str) -> Result<Self, NameError> {
        let path: EntityPath = s.parse()?;
        let mut names: Vec<EntityName> = path.segments().cloned().collect();
        let name = names
            .pop()
            .ok_or_else(|| NameError::Malformed(s.to_owned()))?;
        let path = EntityPath::from_names(names).map_err(|_| NameError::Malformed(s.to_owned()))?;
        Ok(FullyQualifiedEntityName::new(path, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entity_names_follow_openwhisk_pattern() {
        for ok in [
            "a",
            "_",
            "guest",
            "my-action.v2",
            "a b",
            "x@y",
            "a&b",
            "A1-",
        ] {
            assert!(EntityName::new(ok).is_ok(), "{ok}");
        }
        let too_long = "a".repeat(ENTITY_NAME_MAX_LENGTH + 1);
        for bad in ["", " a", "a ", "a/b", "-a", "é", "a\nb", too_long.as_str()] {
            assert!(EntityName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_drop_empty_segments() {
        let p: EntityPath = "/ns//pkg/".parse().unwrap();
        assert_eq!(p.to_string(), "ns/pkg");
        assert_eq!(p.root().as_str(), "ns");
        assert_eq!(p.package().map(EntityName::as_str), Some("pkg"));
        assert_eq!("".parse::<EntityPath>(), Err(NameError::EmptyPath));
        assert_eq!("/".parse::<EntityPath>(), Err(NameError::EmptyPath));
    }

    #[test]
    fn fqn_object_round_trips_with_optional_fields_omitted() {
        let v = json!({"path": "ns", "name": "act"});
        let fqn: FullyQualifiedEntityName = crate::fixtures::round_trip(&v);
        assert_eq!(fqn.version(), None);

        let v = json!({"path": "ns/pkg", "name": "act", "version": "0.0.3", "binding": "other/b"});
        let fqn: FullyQualifiedEntityName = crate::fixtures::round_trip(&v);
        assert_eq!(fqn.namespace().as_str(), "ns");
        assert_eq!(fqn.package().map(EntityName::as_str), Some("pkg"));
        assert_eq!(fqn.as_string_without_version(), "ns/pkg/act");
        assert_eq!(fqn.to_string(), "ns/pkg/act@0.0.3");
        assert_eq!(fqn.qualified_name_with_leading_slash(), "/ns/pkg/act");
        assert_eq!(
            fqn.binding().map(EntityPath::as_string),
            Some("other/b".into())
        );
        assert_eq!(fqn.without_version().to_string(), "ns/pkg/act");
    }

    #[test]
    fn fqn_reads_a_bare_string() {
        let fqn: FullyQualifiedEntityName = serde_json::from_value(json!("ns/pkg/act")).unwrap();
        assert_eq!(fqn.path().to_string(), "ns/pkg");
        assert_eq!(fqn.name().as_str(), "act");
        let fqn: FullyQualifiedEntityName = serde_json::from_value(json!("/ns/act")).unwrap();
        assert_eq!(fqn.as_string_without_version(), "ns/act");
        // Written back in the object form, as OpenWhisk does.
        assert_eq!(
            serde_json::to_value(&fqn).unwrap(),
            json!({"path": "ns", "name": "act"})
        );
    }

    #[test]
    fn malformed_fqns_are_errors() {
        for bad in [
            json!("act"),
            json!(""),
            json!("ns/a b /x"),
            json!(7),
            json!({"path": "ns"}),
            json!({"path": "", "name": "a"}),
            json!({"path": "ns", "name": "a/b"}),
            json!({"path": "ns", "name": "a", "version": "0.0.0"}),
        ] {
            assert!(
                serde_json::from_value::<FullyQualifiedEntityName>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            FullyQualifiedEntityName::parse("act"),
            Err(NameError::Malformed("act".into()))
        );
    }
}
