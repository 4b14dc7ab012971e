//! Opaque secrets — refresh tokens, client secrets — and public random ids (`sid`, `jti`).
//!
//! Secrets are 256 random bits, shown once, stored as SHA-256 (right for high-entropy
//! secrets; passwords alone get a slow KDF). A refresh token's successor is derived from it
//! with an HMAC keyed from the master key, so that presenting the same token again within
//! the grace window yields the *same* successor: no second live child can ever exist.

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::{constant_time, hkdf, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Prefix of refresh tokens: makes them recognisable to secret scanners and in support.
pub const REFRESH_PREFIX: &str = "tsr_";
/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";

/// `n` random bytes, base64url without padding.
pub fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // aws-lc's DRBG does not fail once initialised; a zero buffer would be caught by the
    // uniqueness constraints, but never reached in practice.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        tracing::error!("system randomness unavailable");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A public random identifier (128 bits): user ids, `sid`, `jti`. Never starts with `-` or
/// `_`, so it can be passed to command-line tools as an argument value (an id like
/// `-RZt…` reads as a flag).
pub fn random_id() -> String {
    loop {
        let id = random_b64(16);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return id;
        }
    }
}

/// SHA-256 of `text`, base64url: how secrets are stored and looked up.
pub fn sha256_b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, text.as_bytes()).as_ref())
}

/// Compares two stored hashes without leaking where they differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// A refresh token. Not `Clone`: it is handed out once.
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn generate() -> Self {
        RefreshToken(format!("{REFRESH_PREFIX}{}", random_b64(32)))
    }

    /// Accepts a presented token if it has the shape of one of ours (cheap rejection of
    /// garbage before any lookup).
    pub fn parse(text: &str) -> Option<Self> {
        let body = text.strip_prefix(REFRESH_PREFIX)?;
        let well_formed = body.len() == 43
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| RefreshToken(text.to_owned()))
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        sha256_b64(&self.0)
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// Derives each refresh token's one possible successor.
pub struct SuccessorKey(hmac::Key);

impl SuccessorKey {
    /// HKDF-SHA256 of the master key with a purpose label, so this key is independent of
    /// the key that seals signing keys.
    pub fn from_master(master: &[u8; 32]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tessera").extract(master);
        let key = match prk.expand(&[b"refresh-token-successor-v1"], hmac::HMAC_SHA256) {
            Ok(okm) => hmac::Key::from(okm),
            // Unreachable: the requested length (32) is far below HKDF's limit.
            Err(_) => hmac::Key::new(hmac::HMAC_SHA256, master),
        };
        SuccessorKey(key)
    }

    pub fn successor_of(&self, token: &RefreshToken) -> RefreshToken {
        let tag = hmac::sign(&self.0, token.0.as_bytes());
        RefreshToken(format!(
            "{REFRESH_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_long_random_and_parse_back() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a.secret(), b.secret());
        assert_eq!(a.secret().len(), REFRESH_PREFIX.len() + 43);
        assert!(RefreshToken::parse(a.secret()).is_some());
        for bad in [
            "",
            "tsr_",
            "tsr_short",
            "xyz_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tsr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad}");
        }
        assert!(!format!("{a:?}").contains(&a.secret()[4..]));
    }

    #[test]
    fn successors_are_deterministic_per_master_key_and_well_formed() {
        let parent = RefreshToken::generate();
        let key = SuccessorKey::from_master(&[1; 32]);
        let child = key.successor_of(&parent);
        assert_eq!(child.secret(), key.successor_of(&parent).secret());
        assert_ne!(child.secret(), parent.secret());
        assert!(RefreshToken::parse(child.secret()).is_some());
        let other = SuccessorKey::from_master(&[2; 32]);
        assert_ne!(other.successor_of(&parent).secret(), child.secret());
    }

    #[test]
    fn ids_never_start_like_a_command_line_flag() {
        for _ in 0..2000 {
            let id = random_id();
            assert_eq!(id.len(), 22);
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn hashes_are_stable_and_compared_in_constant_time() {
        assert_eq!(sha256_b64("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert!(hashes_equal(&sha256_b64("x"), &sha256_b64("x")));
        assert!(!hashes_equal(&sha256_b64("x"), &sha256_b64("y")));
    }
}
