//! Who is calling: HTTP Basic credentials, checked against the database
//! (`uuid:key`) or the admin secret, and the namespace a path may name.
//!
//! OpenWhisk authenticates every `/api/v1` request with `uuid:key` and then
//! resolves `_` in a path to the caller's namespace; a namespace that is
//! neither `_` nor the caller's is refused (403) before anything is looked
//! up, so a caller cannot even learn whether another namespace's action
//! exists. The admin routes take the invoker's own user and password.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::AppState;
use super::error::ApiError;
use crate::protocol::{EntityName, EntityPath, Identity};

/// The `user:password` of an `Authorization: Basic …` header, if it is one.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The authenticated caller of an `/api/v1` route.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let (uuid, key) = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(basic_credentials)
            .ok_or_else(ApiError::unauthorized)?;
        match state.store.authenticate(&uuid, &key).await? {
            Some(identity) => Ok(Caller(identity)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

impl Caller {
    /// The namespace `requested` in a path, resolved: `_` and the caller's
    /// own name are the caller's namespace; anything else is 403.
    pub fn namespace(&self, requested: &str) -> Result<EntityPath, ApiError> {
        let own = &self.0.namespace.name;
        if requested != "_" && requested != own {
            return Err(ApiError::forbidden(requested));
        }
        EntityName::new(own.clone())
            .map(EntityPath::namespace)
            .map_err(|e| ApiError::internal(format!("the caller's namespace is invalid: {e}")))
    }

    /// The caller's namespace name.
    pub fn namespace_name(&self) -> &str {
        &self.0.namespace.name
    }
}

/// Compares in time independent of where the inputs differ, so the admin
/// secret cannot be guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b.iter().cycle()) {
        diff |= usize::from(x ^ y);
    }
    diff == 0 && !b.is_empty()
}

/// True when `header` carries exactly the admin credentials `expected`
/// (`user:password`).
pub fn is_admin(header: Option<&str>, expected: &str) -> bool {
    let Some((user, password)) = header.and_then(basic_credentials) else {
        return false;
    };
    same_secret(format!("{user}:{password}").as_bytes(), expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    #[test]
    fn basic_credentials_are_split_at_the_first_colon() {
        assert_eq!(
            basic_credentials(&header("u-u-i-d:se:cret")),
            Some(("u-u-i-d".into(), "se:cret".into()))
        );
        assert_eq!(
            basic_credentials(&format!("basic  {}", STANDARD.encode("a:b"))),
            Some(("a".into(), "b".into()))
        );
        for bad in [
            "Bearer abc".to_string(),
            "Basic !!!".to_string(),
            header("no-colon"),
            "Basic".to_string(),
            String::new(),
        ] {
            assert_eq!(basic_credentials(&bad), None, "{bad}");
        }
    }

    #[test]
    fn admin_needs_the_exact_secret() {
        let expected = "admin:s3cret";
        assert!(is_admin(Some(&header("admin:s3cret")), expected));
        assert!(!is_admin(Some(&header("admin:s3cre")), expected));
        assert!(!is_admin(Some(&header("admin:s3cretx")), expected));
        assert!(!is_admin(Some(&header("root:s3cret")), expected));
        assert!(!is_admin(None, expected));
        assert!(!is_admin(Some(&header("a:")), ""));
    }

    #[test]
    fn namespaces_resolve_to_the_callers_or_are_forbidden() {
        let caller = Caller(Identity::basic("guest", "uuid", "key"));
        assert_eq!(
            caller.namespace("_").map(|p| p.to_string()),
            Ok("guest".into())
        );
        assert_eq!(
            caller.namespace("guest").map(|p| p.to_string()),
            Ok("guest".into())
        );
        let err = caller
            .namespace("other")
            .err()
            .map(|e| (e.status, e.message));
        assert_eq!(
            err,
            Some((
                axum::http::StatusCode::FORBIDDEN,
                "The supplied authentication is not authorized to access 'other'.".into()
            ))
        );
    }
}
