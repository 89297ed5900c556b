//! Names as NATS subject tokens, reversibly.
//!
//! A subject token may not contain `.`, `*`, `>` or whitespace, but an
//! action's queue subject carries an invocation namespace, an action name
//! `ns[/pkg]/act` and a revision. OpenWhisk's entity names allow
//! `[A-Za-z0-9_@ .&-]` (so `.`, ` `, `@`, `&` are legal), the action name
//! adds `/`, and the invocation namespace and revision arrive as plain strings
//! in messages. So every one of them is escaped into one token:
//!
//! - `A-Z`, `a-z`, `0-9` and `-` stand for themselves;
//! - every other byte of the UTF-8 text, `_` included, is `_` followed by two
//!   **uppercase** hex digits (`.` → `_2E`, `/` → `_2F`, ` ` → `_20`,
//!   `_` → `_5F`, `é` → `_C3_A9`);
//! - the empty string is the token `_` alone (a token is never empty).
//!
//! Decoding accepts exactly what encoding produces (uppercase hex only, no
//! stray `_`, valid UTF-8), so text and tokens are in one-to-one
//! correspondence: two different names can never share a subject, and a
//! subject read back gives the names it was built from. Escaped tokens use only
//! `[A-Za-z0-9_-]`, which is also safe in stream and consumer names and in
//! file names.

use std::fmt::Write as _;

/// A token that is not the escaping of any text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{token}' is not an escaped name: {reason}")]
pub struct EscapeError {
    /// The token.
    pub token: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Whether `byte` stands for itself in a token.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-'
}

/// `text` as one subject token (see the module doc).
pub fn escape_token(text: &str) -> String {
    if text.is_empty() {
        return "_".to_owned();
    }
    let mut token = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if is_plain(byte) {
            token.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(token, "_{byte:02X}");
        }
    }
    token
}

fn upper_hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The text `token` is the escaping of.
pub fn unescape_token(token: &str) -> Result<String, EscapeError> {
    let error = |reason| EscapeError {
        token: token.to_owned(),
        reason,
    };
    if token == "_" {
        return Ok(String::new());
    }
    if token.is_empty() {
        return Err(error("a token is never empty"));
    }
    let bytes = token.as_bytes();
    let mut text = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if is_plain(byte) {
            text.push(byte);
            i += 1;
        } else if byte == b'_' {
            let high = bytes.get(i + 1).copied().and_then(upper_hex);
            let low = bytes.get(i + 2).copied().and_then(upper_hex);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(error("'_' must be followed by two uppercase hex digits"));
            };
            let decoded = high * 16 + low;
            if is_plain(decoded) {
                return Err(error("a character that stands for itself is escaped"));
            }
            text.push(decoded);
            i += 3;
        } else {
            return Err(error("a character that is neither plain nor escaped"));
        }
    }
    String::from_utf8(text).map_err(|_| error("the escaped bytes are not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names OpenWhisk allows, and worse: every string must survive.
    const HOSTILE: &[&str] = &[
        "",
        "_",
        "__",
        "_2E",
        "guest",
        "my-action.v2",
        "a b",
        "x@y",
        "a&b",
        "ns/pkg/act",
        "ns/my pkg/act.v1@2&3",
        ".",
        "..",
        "*",
        ">",
        "a.*.>",
        "a\tb\nc\rd",
        "  leading and trailing  ",
        "é-ü-日本",
        "emoji 🦀",
        "$JS.API.>",
        "1-8a1e5c3f0d2b4a6c",
        "null",
        "a\0b",
        "%2F",
        "\\back\\slash",
    ];

    #[test]
    fn hostile_names_round_trip_into_single_safe_tokens() {
        for name in HOSTILE {
            let token = escape_token(name);
            assert!(!token.is_empty(), "{name:?}");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{name:?} → {token}"
            );
            assert_eq!(unescape_token(&token).as_deref(), Ok(*name), "{token}");
        }
    }

    #[test]
    fn distinct_names_get_distinct_tokens() {
        let mut seen = std::collections::HashMap::new();
        for name in HOSTILE {
            if let Some(other) = seen.insert(escape_token(name), name) {
                panic!("{name:?} and {other:?} share a token");
            }
        }
    }

    #[test]
    fn the_escaping_is_readable() {
        assert_eq!(escape_token("guest"), "guest");
        assert_eq!(escape_token("my-action.v2"), "my-action_2Ev2");
        assert_eq!(escape_token("ns/pkg/act"), "ns_2Fpkg_2Fact");
        assert_eq!(escape_token("a_b c"), "a_5Fb_20c");
        assert_eq!(escape_token("é"), "_C3_A9");
        assert_eq!(escape_token(""), "_");
    }

    #[test]
    fn only_canonical_tokens_decode() {
        for bad in [
            "",    // never produced
            "a.b", // '.' cannot be in a token
            "a b", "a_", "a_2", "a_2e", // lowercase hex
            "a_zz", "_41", // 'A' escaped although plain
            "_2D", // '-' escaped although plain
            "_FF", // not UTF-8
            "_C3", // truncated UTF-8
            "a*", "a>", "é",
        ] {
            assert!(unescape_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        assert_eq!(unescape_token(&escape_token(&all)), Ok(all));
    }
}
