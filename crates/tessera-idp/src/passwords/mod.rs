//! Passwords: hashing and verification ([`PasswordHasher`]), the password policy
//! ([`PasswordPolicy`]) and the reuse check against a user's history ([`is_reused`]).
//!
//! New hashes are Argon2id (RFC 9106) over the NFKC-normalised password (NIST SP 800-63B
//! §5.1.1.2), with the server-side pepper as Argon2's secret input and a PHC `keyid` naming that
//! pepper, so a hash records which pepper it needs without revealing it. Imported hashes (Argon2
//! without a key id, bcrypt, PBKDF2-SHA256) are verified over the password exactly as typed, and
//! [`Verification::needs_upgrade`] tells the caller to re-hash at that login. The accepted stored
//! formats are listed in [`stored`].
//!
//! Everything here is pure CPU work, no I/O. Argon2 is slow on purpose, so async code uses the
//! `*_async` methods, which run on the blocking pool behind a semaphore.

mod hasher;
mod memory;
mod policy;
mod stored;

use std::fmt;
use std::sync::Arc;

pub use hasher::PasswordHasher;
pub use policy::{PasswordPolicy, PolicyViolation};

/// Why a password could not be hashed or checked. Messages never contain the password or the
/// stored hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The stored string is not a hash format Tessera accepts, or its cost is out of bounds.
    #[error("the stored password hash has an unsupported format")]
    UnsupportedHash,
    /// The stored Argon2 hash names a pepper (`keyid`) other than this node's.
    #[error("the stored password hash was made with a different pepper")]
    UnknownPepper,
    /// Hashing failed (bad parameters, randomness, memory, or the worker task).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The scheme of a stored password hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Tessera's own: Argon2id with the pepper named by a `keyid`.
    Argon2id,
    /// Argon2i or Argon2d, or any Argon2 without a `keyid` (imported, no pepper).
    Argon2Legacy,
    /// bcrypt `$2a$`/`$2b$`/`$2y$`.
    Bcrypt,
    /// PBKDF2-HMAC-SHA256 (PHC or passlib format).
    Pbkdf2Sha256,
}

impl Scheme {
    /// Stable short name, as shown by `tessera user show`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Argon2id => "argon2id",
            Scheme::Argon2Legacy => "argon2",
            Scheme::Bcrypt => "bcrypt",
            Scheme::Pbkdf2Sha256 => "pbkdf2-sha256",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password is the one the hash was made from.
    pub matches: bool,
    /// The password matched but the hash is not Tessera's Argon2id with the current parameters
    /// and pepper: the caller should store a fresh [`PasswordHasher::hash`] now, while it has
    /// the password. Always false when `matches` is false.
    pub needs_upgrade: bool,
    /// The scheme of the stored hash.
    pub scheme: Scheme,
}

/// The scheme of a stored hash, or `None` when Tessera cannot verify it (unknown format,
/// malformed, or a cost out of bounds). Does not check whose pepper an Argon2id hash needs; see
/// [`PasswordHasher::scheme_for`] for that.
pub fn scheme_of(stored: &str) -> Option<Scheme> {
    stored::parse(stored).map(|parsed| parsed.scheme())
}

/// Whether `password` matches any of the `previous` stored hashes (any scheme), checked in
/// order on the blocking pool under one permit, stopping at the first match.
///
/// A previous hash that cannot be checked (unsupported format, or made with a pepper this node
/// no longer has) is skipped with a warning rather than blocking the password change.
pub async fn is_reused(
    hasher: &Arc<PasswordHasher>,
    password: &str,
    previous: &[String],
) -> Result<bool, PasswordError> {
    if previous.is_empty() {
        return Ok(false);
    }
    let password = password.to_owned();
    let previous = previous.to_vec();
    hasher
        .run_blocking(move |hasher| {
            for (index, stored) in previous.iter().enumerate() {
                match hasher::timed(|| hasher.verify(&password, stored)) {
                    Ok(verification) if verification.matches => return Ok(true),
                    Ok(_) => {}
                    Err(err @ (PasswordError::UnsupportedHash | PasswordError::UnknownPepper)) => {
                        tracing::warn!(index, error = %err, "password history entry skipped");
                    }
                    Err(err) => return Err(err),
                }
            }
            Ok(false)
        })
        .await?
}

#[cfg(test)]
mod tests {
    use super::hasher::tests::{test_config, test_hasher};
    use super::*;
    use crate::config::PasswordsConfig;

    #[tokio::test]
    async fn is_reused_finds_a_match_among_five() {
        let hasher = Arc::new(test_hasher(b"pepper-one-0123456789abcdef", &test_config()));
        let candidate = "Candidate password 1";
        let bcrypt = bcrypt::hash("old password a", 4).unwrap();
        let imported_argon2 = {
            use argon2::PasswordHasher as _;
            let params = argon2::Params::new(64, 1, 1, None).unwrap();
            let ctx = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let phc: argon2::PasswordHash = ctx.hash_password(b"old password b").unwrap();
            phc.to_string()
        };
        let previous = vec![
            bcrypt,
            "$pbkdf2-sha256$i=10000,l=32$dGVzc2VyYS1maXh0dXJlIQ$c7PbM2O63vySmxogwHyENhB3yyzaqUU8IlhalWf0EAw"
                .to_owned(),
            imported_argon2,
            hasher.hash(candidate).unwrap(),
            hasher.hash("old password c").unwrap(),
        ];
        assert!(is_reused(&hasher, candidate, &previous).await.unwrap());
        assert!(!is_reused(&hasher, "never used before 9", &previous)
            .await
            .unwrap());
        assert!(is_reused(&hasher, "correct horse battery staple", &previous)
            .await
            .unwrap());
        assert!(!is_reused(&hasher, candidate, &[]).await.unwrap());
    }

    #[tokio::test]
    async fn is_reused_skips_entries_it_cannot_check() {
        let hasher = Arc::new(test_hasher(b"pepper-one-0123456789abcdef", &test_config()));
        let other = test_hasher(b"pepper-two-0123456789abcdef", &test_config());
        let previous = vec![
            "garbage".to_owned(),
            other.hash("pw 1234567").unwrap(),
            hasher.hash("pw 1234567").unwrap(),
        ];
        assert!(is_reused(&hasher, "pw 1234567", &previous).await.unwrap());
        assert!(!is_reused(&hasher, "pw 7654321", &previous).await.unwrap());
    }

    #[tokio::test]
    async fn async_methods_agree_with_sync_ones() {
        let config = PasswordsConfig {
            argon2_memory_kib: 128,
            ..test_config()
        };
        let hasher = Arc::new(test_hasher(b"pepper-one-0123456789abcdef", &config));
        let stored = hasher.hash_async("async password 1".to_owned()).await.unwrap();
        let ok = hasher
            .verify_async("async password 1".to_owned(), stored.clone())
            .await
            .unwrap();
        assert!(ok.matches && !ok.needs_upgrade && ok.scheme == Scheme::Argon2id);
        let bad = hasher
            .verify_async("async password 2".to_owned(), stored)
            .await
            .unwrap();
        assert!(!bad.matches && !bad.needs_upgrade);
        hasher.verify_dummy_async("whatever".to_owned()).await;
        // Many at once: the semaphore queues them rather than failing any.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let hasher = Arc::clone(&hasher);
                tokio::spawn(async move { hasher.hash_async(format!("password {i}")).await })
            })
            .collect();
        for task in tasks {
            assert!(task
                .await
                .unwrap()
                .unwrap()
                .starts_with("$argon2id$v=19$m=128,t=1,p=1,keyid="));
        }
    }

    #[test]
    fn errors_say_nothing_secret() {
        for err in [
            PasswordError::UnsupportedHash,
            PasswordError::UnknownPepper,
            PasswordError::Hashing("invalid parameter: \"m\"".into()),
        ] {
            let text = err.to_string();
            assert!(!text.contains('$') && !text.is_empty(), "{text}");
        }
    }
}
