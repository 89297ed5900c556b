//! API keys and namespace names, as both stores check them.
//!
//! A key is OpenWhisk's guest-key format: a v4 UUID and 64 random
//! alphanumerics, `uuid:key`. Only the BLAKE3 hash of the key part is stored
//! (no salt needed: 64 characters of 62 symbols is ~381 bits of entropy, so
//! the hash cannot be reversed by guessing), and hashes are compared in
//! constant time (`blake3::Hash`'s `==`).

use super::DbError;
use wasmwhisk_protocol::EntityName;

/// Characters of a key.
const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of a key.
pub const KEY_LENGTH: usize = 64;

/// A fresh 64-character alphanumeric key from the OS's random source
/// (rejection sampling, so every character is equally likely).
pub fn generate_key() -> Result<String, DbError> {
    // 248 = 4 × 62: bytes at or above it would bias the first characters.
    const LIMIT: u8 = 248;
    let mut key = String::with_capacity(KEY_LENGTH);
    let mut buf = [0u8; 96];
    while key.len() < KEY_LENGTH {
        getrandom::fill(&mut buf)
            .map_err(|e| DbError::Internal(format!("no random source for a key: {e}")))?;
        for b in buf.iter().filter(|b| **b < LIMIT) {
            if key.len() == KEY_LENGTH {
                break;
            }
            if let Some(c) = KEY_ALPHABET.get(usize::from(*b) % KEY_ALPHABET.len()) {
                key.push(char::from(*c));
            }
        }
    }
    Ok(key)
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> blake3::Hash {
    blake3::hash(key.as_bytes())
}

/// True when `presented` (the hash of the key a caller sent) is the stored
/// hash `stored`. With no stored hash (an unknown uuid) it still compares
/// one hash, against a fixed one no key hashes to, so an unknown uuid and a
/// known uuid with a wrong key take the same work to reject.
pub fn key_matches(stored: Option<&blake3::Hash>, presented: &blake3::Hash) -> bool {
    const UNKNOWN: blake3::Hash = blake3::Hash::from_bytes([0; 32]);
    let found = stored.is_some();
    // `blake3::Hash` compares in constant time; `&` does not short-circuit.
    (stored.unwrap_or(&UNKNOWN) == presented) & found
}

/// Validates a namespace name.
pub fn valid_name(name: &str) -> Result<EntityName, DbError> {
    EntityName::new(name).map_err(|e| DbError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_alphanumerics_and_differ() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_eq!(a.len(), KEY_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_stored_hash_matches_and_an_unknown_uuid_matches_nothing() {
        let key = generate_key().unwrap();
        let stored = hash_key(&key);
        assert!(key_matches(Some(&stored), &hash_key(&key)));
        assert!(!key_matches(Some(&stored), &hash_key("wrong")));
        assert!(!key_matches(None, &hash_key(&key)));
        // not even the fixed hash an unknown uuid is compared against
        let zero = blake3::Hash::from_bytes([0; 32]);
        assert!(!key_matches(None, &zero));
    }
}
