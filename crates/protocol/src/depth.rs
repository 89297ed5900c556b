//! How deep JSON may nest, checked where JSON comes in (a request body, an
//! action's result), so that everything stored can be read back.
//!
//! `serde_json` refuses to parse a document nested deeper than 128 arrays or
//! objects. A stored document wraps what came in: a result sits two levels
//! down in its activation record (`{"response":{"result":…}}`), parameters
//! sit in an action document or an activation message. A result nested 127
//! deep would parse when the sandbox returned it and then never again — the
//! record could not be read, and neither could any list that held it. So one
//! limit, [`MAX_DEPTH`], well under 128, is enforced at the edges, and every
//! wrapping the store adds stays parseable.
//!
//! The check runs on the text, before parsing: one pass over the bytes that
//! counts `[`/`{` outside strings, and stops as soon as the limit is passed.

/// The deepest nesting of arrays and objects accepted in a request body or
/// an action's result (the outermost object counts as 1).
pub const MAX_DEPTH: usize = 100;

/// True when the JSON text `json` nests arrays and objects deeper than
/// `max`. Text that is not JSON is measured as well as it can be (its
/// parser reports the real error); brackets inside strings do not count.
pub fn nests_deeper_than(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The message of a request body nested too deep.
pub fn too_deep_message(max: usize) -> String {
    format!("the JSON nests arrays and objects more than {max} levels deep")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
    }

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert!(!nests_deeper_than(b"1", 0));
        assert!(!nests_deeper_than(b"{}", 1));
        assert!(nests_deeper_than(b"{}", 0));
        assert!(!nests_deeper_than(b"[[1],{\"a\":[2]}]", 3));
        assert!(nests_deeper_than(b"[[1],{\"a\":[[2]]}]", 3));
        assert!(!nests_deeper_than(nested(MAX_DEPTH).as_bytes(), MAX_DEPTH));
        assert!(nests_deeper_than(
            nested(MAX_DEPTH + 1).as_bytes(),
            MAX_DEPTH
        ));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let text = r#"{"a":"[[[[{{{{\"[[[["}"#;
        assert!(!nests_deeper_than(text.as_bytes(), 1));
        let escaped_backslash = r#"{"a":"\\","b":{}}"#;
        assert!(!nests_deeper_than(escaped_backslash.as_bytes(), 2));
        assert!(nests_deeper_than(escaped_backslash.as_bytes(), 1));
    }

    #[test]
    fn whatever_stays_under_the_limit_parses_inside_a_record() {
        // The record wraps a result two levels deeper; serde_json's limit is
        // 128, so a result at the limit must still parse twice wrapped.
        let wrapped = format!(r#"{{"response":{{"result":{}}}}}"#, nested(MAX_DEPTH));
        assert!(serde_json::from_str::<serde_json::Value>(&wrapped).is_ok());
    }
}
