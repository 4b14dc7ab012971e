//! [`PasswordHasher`]: Argon2id with a pepper for new hashes; verification of ours and of
//! imported schemes.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, KeyId, ParamsBuilder, Version};
use aws_lc_rs::constant_time;
use base64::Engine as _;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

use super::memory::MemoryPool;
use super::stored::{self, Stored};
use super::{PasswordError, Scheme, Verification};
use crate::config::PasswordsConfig;

/// Argon2 output length in bytes.
const OUTPUT_LEN: usize = 32;
/// Bytes of SHA-256(pepper) kept as the PHC `keyid`: 6 bytes are 8 B64 characters.
const KEY_ID_LEN: usize = 6;
/// The password behind the dummy hash; never a real account's hash.
const DUMMY_PASSWORD: &str = "tessera dummy password for unknown accounts";

/// Hashes new passwords and verifies stored ones. Build one per node and share it in an `Arc`.
pub struct PasswordHasher {
    pepper: Vec<u8>,
    /// First [`KEY_ID_LEN`] bytes of SHA-256(pepper), the PHC `keyid` of our hashes.
    key_id: [u8; KEY_ID_LEN],
    /// Current Argon2id parameters, with the key id and output length.
    params: argon2::Params,
    /// A hash of [`DUMMY_PASSWORD`] with the current parameters, for [`Self::verify_dummy`].
    dummy: String,
    /// Bounds concurrent hashing on the blocking pool (each run holds `m` KiB of memory).
    permits: Arc<Semaphore>,
    /// Argon2 working memory for the current parameters, one buffer per permit, reused.
    memory: MemoryPool,
}

impl PasswordHasher {
    /// A hasher for `pepper` (the decoded bytes, at least 16) and the configured Argon2id
    /// parameters. Computes one hash (the dummy used for unknown accounts), so it takes as long
    /// as one login.
    pub fn new(pepper: &[u8], config: &PasswordsConfig) -> Result<Self, PasswordError> {
        if pepper.len() < 16 {
            return Err(PasswordError::Hashing(
                "the pepper must be at least 16 bytes".into(),
            ));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pepper);
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&digest.as_ref()[..KEY_ID_LEN]);
        let params = ParamsBuilder::new()
            .m_cost(config.argon2_memory_kib)
            .t_cost(config.argon2_iterations)
            .p_cost(config.argon2_parallelism)
            .keyid(KeyId::new(&key_id).map_err(argon2_error)?)
            .output_len(OUTPUT_LEN)
            .build()
            .map_err(argon2_error)?;
        let permits = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let mut hasher = PasswordHasher {
            pepper: pepper.to_vec(),
            key_id,
            dummy: String::new(),
            permits: Arc::new(Semaphore::new(permits)),
            memory: MemoryPool::new(params.block_count(), permits),
            params,
        };
        hasher.dummy = hasher.hash(DUMMY_PASSWORD)?;
        Ok(hasher)
    }

    /// The `keyid` this node writes into its hashes (B64, 8 characters); it names the pepper.
    pub fn key_id(&self) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.key_id)
    }

    /// Hashes a new password: Argon2id v0x13 with the configured m/t/p, a 16-byte random salt,
    /// a 32-byte output and the pepper as secret, over the NFKC form of `password`. Returns the
    /// PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1,keyid=…$<salt>$<hash>`.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let ctx = self.peppered(Algorithm::Argon2id, Version::V0x13, self.params.clone())?;
        let salt = argon2::password_hash::try_generate_salt()
            .map_err(|err| PasswordError::Hashing(format!("no random salt: {err}")))?;
        let mut output = [0u8; OUTPUT_LEN];
        self.argon2(&ctx, nfkc(password).as_bytes(), &salt, &mut output)
            .map_err(argon2_error)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(phc_error)?,
            salt: Some(Salt::new(&salt).map_err(phc_error)?),
            hash: Some(Output::new(&output).map_err(phc_error)?),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against a stored hash of any accepted scheme. The comparison of hash
    /// outputs is constant-time (ours for Argon2, the algorithm crates' for the others).
    ///
    /// - Our Argon2 (a `keyid` equal to ours): verified with the pepper over the NFKC password.
    /// - Argon2 without `keyid`, bcrypt, PBKDF2-SHA256: verified over the password as typed.
    ///
    /// Errors: [`PasswordError::UnknownPepper`] for an Argon2 hash whose `keyid` is not ours,
    /// [`PasswordError::UnsupportedHash`] for anything [`super::scheme_of`] rejects.
    pub fn verify(&self, password: &str, stored: &str) -> Result<Verification, PasswordError> {
        let parsed = stored::parse(stored).ok_or(PasswordError::UnsupportedHash)?;
        let scheme = parsed.scheme();
        let (matches, current) = match parsed {
            Stored::Argon2 {
                phc,
                algorithm,
                params,
            } => {
                let version = phc.version.unwrap_or(0x10);
                let argon2_version = Version::try_from(version).map_err(argon2_error)?;
                if params.keyid().is_empty() {
                    let ctx = Argon2::new(algorithm, argon2_version, params);
                    (self.check_argon2(&ctx, password.as_bytes(), &phc)?, false)
                } else if params.keyid() == self.key_id {
                    let ctx = self.peppered(algorithm, argon2_version, params.clone())?;
                    let matches = self.check_argon2(&ctx, nfkc(password).as_bytes(), &phc)?;
                    let current = algorithm == Algorithm::Argon2id
                        && version == u32::from(Version::V0x13)
                        && params.m_cost() == self.params.m_cost()
                        && params.t_cost() == self.params.t_cost()
                        && params.p_cost() == self.params.p_cost()
                        && params.data().is_empty()
                        && phc.hash.as_ref().map(|output| output.len()) == Some(OUTPUT_LEN);
                    (matches, current)
                } else {
                    return Err(PasswordError::UnknownPepper);
                }
            }
            Stored::Bcrypt(hash) => {
                let matches =
                    bcrypt::verify(password.as_bytes(), hash).map_err(|_| PasswordError::UnsupportedHash)?;
                (matches, false)
            }
            Stored::Pbkdf2Phc(phc) => {
                use pbkdf2::PasswordVerifier as _;
                (
                    password_hash_result(pbkdf2::Pbkdf2::SHA256.verify_password(password.as_bytes(), &phc))?,
                    false,
                )
            }
            Stored::Pbkdf2Mcf(mcf) => {
                use pbkdf2::PasswordVerifier as _;
                (
                    password_hash_result(pbkdf2::Pbkdf2::SHA256.verify_password(password.as_bytes(), mcf))?,
                    false,
                )
            }
        };
        Ok(Verification {
            matches,
            needs_upgrade: matches && !current,
            scheme,
        })
    }

    /// The same Argon2id work as verifying a real account's password, against a hash made at
    /// construction, so a login for an unknown account takes as long as one for a known one.
    pub fn verify_dummy(&self, password: &str) {
        std::hint::black_box(self.verify(password, &self.dummy).ok());
    }

    /// Like [`super::scheme_of`], and also refuses an Argon2 hash made with another pepper:
    /// for imports, to reject before storing what this node could never verify.
    pub fn scheme_for(&self, stored: &str) -> Result<Scheme, PasswordError> {
        match stored::parse(stored) {
            None => Err(PasswordError::UnsupportedHash),
            Some(Stored::Argon2 { params, .. })
                if !params.keyid().is_empty() && params.keyid() != self.key_id =>
            {
                Err(PasswordError::UnknownPepper)
            }
            Some(parsed) => Ok(parsed.scheme()),
        }
    }

    /// [`Self::hash`] on the blocking pool, at most `available_parallelism` at a time.
    pub async fn hash_async(self: &Arc<Self>, password: String) -> Result<String, PasswordError> {
        self.run_blocking(move |hasher| timed(|| hasher.hash(&password)))
            .await?
    }

    /// [`Self::verify`] on the blocking pool, at most `available_parallelism` at a time.
    pub async fn verify_async(
        self: &Arc<Self>,
        password: String,
        stored: String,
    ) -> Result<Verification, PasswordError> {
        self.run_blocking(move |hasher| timed(|| hasher.verify(&password, &stored)))
            .await?
    }

    /// [`Self::verify_dummy`] on the blocking pool, at most `available_parallelism` at a time.
    pub async fn verify_dummy_async(self: &Arc<Self>, password: String) {
        // A failure here has no caller to tell; the account is unknown either way.
        let _ = self
            .run_blocking(move |hasher| timed(|| hasher.verify_dummy(&password)))
            .await;
    }

    /// Runs `work` on the blocking pool once a permit is free; the permit is held until the
    /// work ends, even if the caller stops waiting.
    pub(crate) async fn run_blocking<T, F>(self: &Arc<Self>, work: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&PasswordHasher) -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Hashing("the password hashing pool is closed".into()))?;
        let hasher = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&hasher)
        })
        .await
        .map_err(|_| PasswordError::Hashing("the password hashing task failed".into()))
    }

    fn peppered(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: argon2::Params,
    ) -> Result<Argon2<'_>, PasswordError> {
        Argon2::new_with_secret(&self.pepper, algorithm, version, params).map_err(argon2_error)
    }

    /// Argon2 of `password` and `salt` into `out` with `ctx`'s algorithm, version, parameters
    /// and secret, in working memory from [`Self::memory`]: a reused buffer, or one of its own
    /// for parameters larger than the current ones.
    fn argon2(
        &self,
        ctx: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        self.memory.with(ctx.params().block_count(), |memory| {
            ctx.hash_password_into_with_memory(password, salt, out, memory)
        })
    }

    /// Recomputes the output recorded in `phc` from `password` and its salt with `ctx` (built
    /// from `phc`'s algorithm, version and parameters, with the pepper or none) and compares
    /// the two in constant time. The same result as the argon2 crate's `PasswordVerifier`,
    /// without allocating the working memory afresh.
    fn check_argon2(
        &self,
        ctx: &Argon2<'_>,
        password: &[u8],
        phc: &PasswordHash,
    ) -> Result<bool, PasswordError> {
        let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
            return Ok(false);
        };
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let computed = buffer
            .get_mut(..expected.len())
            .ok_or(PasswordError::UnsupportedHash)?;
        match self.argon2(ctx, password, salt, computed) {
            Ok(()) => Ok(constant_time::verify_slices_are_equal(computed, expected.as_bytes()).is_ok()),
            // As the argon2 crate's verifier maps them (a too long password is a mismatch).
            Err(err) => password_hash_result(Err(err.into())),
        }
    }
}

/// Runs one hash or verification, observing its duration in
/// `tessera_password_hash_duration_seconds` (the work only, not the wait for a permit).
pub(crate) fn timed<T>(work: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let result = work();
    crate::telemetry::password_hash(started.elapsed());
    result
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("key_id", &self.key_id())
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish_non_exhaustive()
    }
}

/// NIST SP 800-63B §5.1.1.2: normalise with NFKC before hashing.
pub(crate) fn nfkc(password: &str) -> String {
    password.nfkc().collect()
}

fn password_hash_result(result: argon2::password_hash::Result<()>) -> Result<bool, PasswordError> {
    match result {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(err) => Err(phc_error(err)),
    }
}

fn argon2_error(err: argon2::Error) -> PasswordError {
    PasswordError::Hashing(format!("Argon2: {err}"))
}

/// A password-hash or PHC-format error (either crate's).
fn phc_error(err: impl fmt::Display) -> PasswordError {
    PasswordError::Hashing(err.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use argon2::PasswordHasher as _;

    use super::*;
    use crate::passwords::scheme_of;

    pub(crate) const PEPPER: &[u8] = b"test pepper: 32 bytes of secret!";

    /// Small Argon2 parameters so tests stay fast in debug builds.
    pub(crate) fn test_config() -> PasswordsConfig {
        PasswordsConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            ..PasswordsConfig::default()
        }
    }

    pub(crate) fn test_hasher(pepper: &[u8], config: &PasswordsConfig) -> PasswordHasher {
        PasswordHasher::new(pepper, config).unwrap()
    }

    fn verify(hasher: &PasswordHasher, password: &str, stored: &str) -> Verification {
        hasher.verify(password, stored).unwrap()
    }

    #[test]
    fn hash_then_verify_round_trips() {
        let hasher = test_hasher(PEPPER, &test_config());
        let stored = hasher.hash("Tr0ub4dor&3 horse").unwrap();
        let prefix = format!("$argon2id$v=19$m=64,t=1,p=1,keyid={}$", hasher.key_id());
        assert!(stored.starts_with(&prefix), "{stored}");
        assert_eq!(hasher.key_id().len(), 8);
        assert_eq!(scheme_of(&stored), Some(Scheme::Argon2id));
        let ok = verify(&hasher, "Tr0ub4dor&3 horse", &stored);
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_upgrade: false,
                scheme: Scheme::Argon2id
            }
        );
        // A fresh random salt each time.
        assert_ne!(stored, hasher.hash("Tr0ub4dor&3 horse").unwrap());
    }

    #[test]
    fn wrong_password_fails() {
        let hasher = test_hasher(PEPPER, &test_config());
        let stored = hasher.hash("right password").unwrap();
        let bad = verify(&hasher, "wrong password", &stored);
        assert_eq!(
            bad,
            Verification {
                matches: false,
                needs_upgrade: false,
                scheme: Scheme::Argon2id
            }
        );
        assert!(!verify(&hasher, "", &stored).matches);
        assert!(!verify(&hasher, "right password ", &stored).matches);
    }

    #[test]
    fn the_pepper_is_part_of_the_hash() {
        let hasher = test_hasher(PEPPER, &test_config());
        let stored = hasher.hash("peppered").unwrap();
        // The same hash without the pepper (keyid removed) must not verify.
        let keyid = format!(",keyid={}", hasher.key_id());
        let unpeppered = stored.replace(&keyid, "");
        assert_eq!(scheme_of(&unpeppered), Some(Scheme::Argon2Legacy));
        assert!(!verify(&hasher, "peppered", &unpeppered).matches);
    }

    #[test]
    fn nfkc_composed_and_decomposed_are_the_same_password() {
        let hasher = test_hasher(PEPPER, &test_config());
        let composed = "caf\u{e9} cr\u{e8}me";
        let decomposed = "cafe\u{301} cre\u{300}me";
        assert_ne!(composed, decomposed);
        let from_composed = hasher.hash(composed).unwrap();
        let from_decomposed = hasher.hash(decomposed).unwrap();
        assert!(verify(&hasher, decomposed, &from_composed).matches);
        assert!(verify(&hasher, composed, &from_decomposed).matches);
        // Compatibility forms too: a full-width "Ａ" is "A".
        let fullwidth = hasher.hash("\u{ff21}bc password").unwrap();
        assert!(verify(&hasher, "Abc password", &fullwidth).matches);
    }

    #[test]
    fn another_pepper_is_unknown_not_a_mismatch() {
        let ours = test_hasher(PEPPER, &test_config());
        let theirs = test_hasher(b"another pepper, also 32 bytes!!!", &test_config());
        assert_ne!(ours.key_id(), theirs.key_id());
        let stored = theirs.hash("shared password").unwrap();
        assert_eq!(
            ours.verify("shared password", &stored),
            Err(PasswordError::UnknownPepper)
        );
        assert_eq!(
            ours.verify("other password", &stored),
            Err(PasswordError::UnknownPepper)
        );
        assert_eq!(ours.scheme_for(&stored), Err(PasswordError::UnknownPepper));
        assert_eq!(theirs.scheme_for(&stored), Ok(Scheme::Argon2id));
        assert_eq!(scheme_of(&stored), Some(Scheme::Argon2id));
    }

    #[test]
    fn raised_parameters_ask_for_an_upgrade() {
        let old = test_hasher(PEPPER, &test_config());
        let stored = old.hash("long-lived password").unwrap();
        for config in [
            PasswordsConfig {
                argon2_memory_kib: 128,
                ..test_config()
            },
            PasswordsConfig {
                argon2_iterations: 2,
                ..test_config()
            },
            PasswordsConfig {
                argon2_memory_kib: 128,
                argon2_parallelism: 2,
                ..test_config()
            },
        ] {
            let new = test_hasher(PEPPER, &config);
            let ok = verify(&new, "long-lived password", &stored);
            assert_eq!(
                ok,
                Verification {
                    matches: true,
                    needs_upgrade: true,
                    scheme: Scheme::Argon2id
                }
            );
            let rehashed = new.hash("long-lived password").unwrap();
            assert!(!verify(&new, "long-lived password", &rehashed).needs_upgrade);
            assert!(!verify(&new, "wrong password", &stored).needs_upgrade);
        }
    }

    #[test]
    fn unsupported_strings_are_errors_not_mismatches() {
        let hasher = test_hasher(PEPPER, &test_config());
        for stored in [
            "",
            "password",
            "$1$abc$def",
            "$argon2id$v=19$m=64,t=1,p=1",
            "{noop}password",
        ] {
            assert_eq!(
                hasher.verify("password", stored),
                Err(PasswordError::UnsupportedHash),
                "{stored}"
            );
            assert_eq!(hasher.scheme_for(stored), Err(PasswordError::UnsupportedHash));
        }
    }

    #[test]
    fn verify_dummy_runs() {
        let hasher = test_hasher(PEPPER, &test_config());
        assert!(hasher.dummy.starts_with("$argon2id$v=19$m=64,t=1,p=1,keyid="));
        assert!(!verify(&hasher, "anything", &hasher.dummy).matches);
        hasher.verify_dummy("anything");
    }

    #[test]
    fn construction_rejects_bad_input() {
        assert!(matches!(
            PasswordHasher::new(b"short", &test_config()),
            Err(PasswordError::Hashing(_))
        ));
        let config = PasswordsConfig {
            argon2_memory_kib: 4,
            ..test_config()
        };
        assert!(matches!(
            PasswordHasher::new(PEPPER, &config),
            Err(PasswordError::Hashing(_))
        ));
        let config = PasswordsConfig {
            argon2_iterations: 0,
            ..test_config()
        };
        assert!(matches!(
            PasswordHasher::new(PEPPER, &config),
            Err(PasswordError::Hashing(_))
        ));
    }

    #[test]
    fn debug_output_hides_the_pepper() {
        let hasher = test_hasher(PEPPER, &test_config());
        let debug = format!("{hasher:?}");
        assert!(
            debug.contains(&hasher.key_id()) && !debug.contains("pepper:"),
            "{debug}"
        );
    }

    #[test]
    fn imported_argon2_without_keyid_verifies_and_needs_upgrade() {
        let hasher = test_hasher(PEPPER, &test_config());
        let params = argon2::Params::new(64, 2, 1, None).unwrap();
        for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            let ctx = Argon2::new(algorithm, Version::V0x13, params.clone());
            let phc: PasswordHash = ctx.hash_password(b"imported password").unwrap();
            let stored = phc.to_string();
            let ok = verify(&hasher, "imported password", &stored);
            assert_eq!(
                ok,
                Verification {
                    matches: true,
                    needs_upgrade: true,
                    scheme: Scheme::Argon2Legacy
                }
            );
            assert!(!verify(&hasher, "imported passworD", &stored).matches);
        }
        // Imported hashes are checked over the password as typed, not its NFKC form.
        let ctx = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let phc: PasswordHash = ctx.hash_password("cafe\u{301}".as_bytes()).unwrap();
        assert!(verify(&hasher, "cafe\u{301}", &phc.to_string()).matches);
        assert!(!verify(&hasher, "caf\u{e9}", &phc.to_string()).matches);
        // Version 0x10 hashes (e.g. from old libsodium) verify too.
        let ctx = Argon2::new(Algorithm::Argon2i, Version::V0x10, params);
        let phc: PasswordHash = ctx.hash_password(b"old version").unwrap();
        assert!(verify(&hasher, "old version", &phc.to_string()).matches);
    }

    #[test]
    fn our_keyid_on_argon2i_is_legacy_and_upgraded() {
        let hasher = test_hasher(PEPPER, &test_config());
        let params = ParamsBuilder::new()
            .m_cost(64)
            .t_cost(1)
            .p_cost(1)
            .keyid(KeyId::new(&hasher.key_id).unwrap())
            .build()
            .unwrap();
        let ctx = Argon2::new_with_secret(PEPPER, Algorithm::Argon2i, Version::V0x13, params).unwrap();
        let phc: PasswordHash = ctx.hash_password(b"argon2i peppered").unwrap();
        let ok = verify(&hasher, "argon2i peppered", &phc.to_string());
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_upgrade: true,
                scheme: Scheme::Argon2Legacy
            }
        );
    }

    /// The argon2 crate's own verifier (allocating its memory) on `stored`, with `secret`.
    fn crate_verifies(secret: Option<&[u8]>, password: &[u8], stored: &str) -> bool {
        use argon2::PasswordVerifier as _;
        let ctx = match secret {
            Some(secret) => Argon2::new_with_secret(
                secret,
                Algorithm::default(),
                Version::default(),
                argon2::Params::default(),
            )
            .unwrap(),
            None => Argon2::default(),
        };
        let phc = PasswordHash::new(stored).unwrap();
        match ctx.verify_password(password, &phc) {
            Ok(()) => true,
            Err(argon2::password_hash::Error::PasswordInvalid) => false,
            Err(err) => panic!("{stored}: {err}"),
        }
    }

    #[test]
    fn pooled_hash_and_verify_agree_with_the_argon2_crate() {
        let hasher = test_hasher(PEPPER, &test_config());
        // Our hashes (peppered, over the NFKC form), checked by the crate and by us.
        for password in ["Tr0ub4dor&3 horse", "cafe\u{301} cr\u{e8}me", "\u{ff21}", ""] {
            let stored = hasher.hash(password).unwrap();
            let normalised = nfkc(password);
            assert!(
                crate_verifies(Some(PEPPER), normalised.as_bytes(), &stored),
                "{stored}"
            );
            assert!(verify(&hasher, password, &stored).matches, "{stored}");
            let wrong = format!("{password}x");
            assert!(!crate_verifies(Some(PEPPER), nfkc(&wrong).as_bytes(), &stored));
            assert!(!verify(&hasher, &wrong, &stored).matches);
            // Without the pepper the crate does not accept it either: the pepper was used.
            assert!(!crate_verifies(None, normalised.as_bytes(), &stored));
        }

        // Hashes made by the crate with other parameters: smaller than the pooled buffer (a
        // part of it), equal, larger (a buffer of their own), several lanes, other output
        // lengths, each algorithm and version; peppered with our key id, and imported.
        let key_id = KeyId::new(&hasher.key_id).unwrap();
        let shapes: [(u32, u32, u32, usize); 6] = [
            (64, 1, 1, 32),
            (32, 2, 1, 32),
            (256, 1, 1, 32),
            (128, 3, 4, 32),
            (64, 1, 1, 16),
            (64, 1, 2, 64),
        ];
        for (m, t, p, len) in shapes {
            for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
                for version in [Version::V0x13, Version::V0x10] {
                    for peppered in [true, false] {
                        let mut builder = ParamsBuilder::new();
                        builder.m_cost(m).t_cost(t).p_cost(p).output_len(len);
                        if peppered {
                            builder.keyid(key_id);
                        }
                        let params = builder.build().unwrap();
                        let secret = peppered.then_some(PEPPER);
                        let ctx = match secret {
                            Some(secret) => {
                                Argon2::new_with_secret(secret, algorithm, version, params).unwrap()
                            }
                            None => Argon2::new(algorithm, version, params),
                        };
                        let password = "crate password \u{e9}";
                        let phc: PasswordHash = ctx.hash_password(password.as_bytes()).unwrap();
                        let stored = phc.to_string();
                        assert!(crate_verifies(secret, password.as_bytes(), &stored), "{stored}");
                        assert!(verify(&hasher, password, &stored).matches, "{stored}");
                        for wrong in ["crate password \u{c9}", "crate password", ""] {
                            assert!(!crate_verifies(secret, wrong.as_bytes(), &stored), "{stored}");
                            assert!(!verify(&hasher, wrong, &stored).matches, "{stored} {wrong}");
                        }
                        // The decomposed "é": the same password for our peppered hashes (NFKC),
                        // another for imported ones (checked as typed).
                        let decomposed = "crate password e\u{301}";
                        assert_eq!(verify(&hasher, decomposed, &stored).matches, peppered, "{stored}");
                    }
                }
            }
        }
        // Still one buffer of the configured size: the larger hashes did not grow the pool.
        assert_eq!(hasher.memory.kept().len(), 1);
    }

    #[test]
    fn published_argon2_vectors_through_reused_memory() {
        let hasher = test_hasher(PEPPER, &test_config());
        // The pooled buffer already holds the dummy hash's state: it must not leak into these.
        assert_eq!(hasher.memory.kept().len(), 1);
        // RFC 9106 section 5: m = 32 KiB, t = 3, p = 4, a 32-byte password of 0x01, 16-byte
        // salt of 0x02, 8-byte secret of 0x03, 12 bytes of associated data 0x04.
        let vectors = [
            (
                Algorithm::Argon2d,
                "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb",
            ),
            (
                Algorithm::Argon2i,
                "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8",
            ),
            (
                Algorithm::Argon2id,
                "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
            ),
        ];
        for round in 0..2 {
            for (algorithm, expected) in vectors {
                let params = ParamsBuilder::new()
                    .m_cost(32)
                    .t_cost(3)
                    .p_cost(4)
                    .data(argon2::AssociatedData::new(&[0x04; 12]).unwrap())
                    .output_len(32)
                    .build()
                    .unwrap();
                let ctx = Argon2::new_with_secret(&[0x03; 8], algorithm, Version::V0x13, params).unwrap();
                let mut out = [0u8; 32];
                hasher.argon2(&ctx, &[0x01; 32], &[0x02; 16], &mut out).unwrap();
                let hex: String = out.iter().map(|byte| format!("{byte:02x}")).collect();
                assert_eq!(hex, expected, "{algorithm:?}, round {round}");
            }
        }
        // argon2-cffi 23.1 (Python, the reference C implementation):
        // argon2.low_level.hash_secret(b"imported argon2 passphrase 9", b"tessera-argon-salt",
        // time_cost=2, memory_cost=4096, parallelism=1, hash_len=32, type=Type.ID), also in
        // the `user import` integration test. m = 4096 is larger than this hasher's buffer
        // (its own memory) and equal to the second one's (the pooled buffer).
        let stored = "$argon2id$v=19$m=4096,t=2,p=1$dGVzc2VyYS1hcmdvbi1zYWx0$o8a3hxBPnozQrE9twWQtwwJrjKSNQ5HVYlt7RMxp2kQ";
        let pooled = test_hasher(
            PEPPER,
            &PasswordsConfig {
                argon2_memory_kib: 4096,
                ..test_config()
            },
        );
        for hasher in [&hasher, &pooled] {
            assert!(verify(hasher, "imported argon2 passphrase 9", stored).matches);
            assert!(!verify(hasher, "imported argon2 passphrase 8", stored).matches);
            assert!(crate_verifies(None, b"imported argon2 passphrase 9", stored));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_one_reused_buffer_per_permit() {
        let hasher = Arc::new(test_hasher(PEPPER, &test_config()));
        let permits = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        // The dummy hash at construction allocated the first buffer.
        let first = hasher.memory.kept();
        assert_eq!(first.len(), 1);
        for i in 0..5 {
            let stored = hasher.hash_async(format!("sequential {i}")).await.unwrap();
            assert!(
                hasher
                    .verify_async(format!("sequential {i}"), stored)
                    .await
                    .unwrap()
                    .matches
            );
            assert_eq!(hasher.memory.kept(), first, "the same buffer, not a new one");
        }
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let hasher = Arc::clone(&hasher);
                tokio::spawn(async move {
                    let stored = hasher.hash_async(format!("concurrent {i}")).await.unwrap();
                    hasher
                        .verify_async(format!("concurrent {i}"), stored)
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().matches);
        }
        let kept = hasher.memory.kept();
        assert!(
            (1..=permits).contains(&kept.len()),
            "{} buffers for {permits} permits",
            kept.len()
        );
        assert!(kept.contains(&first[0]), "the first buffer is still in use");
    }

    #[test]
    fn bcrypt_generated_at_cost_4() {
        let hasher = test_hasher(PEPPER, &test_config());
        let stored = bcrypt::hash("bcrypt password", 4).unwrap();
        assert!(stored.starts_with("$2b$04$"), "{stored}");
        let ok = verify(&hasher, "bcrypt password", &stored);
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_upgrade: true,
                scheme: Scheme::Bcrypt
            }
        );
        let bad = verify(&hasher, "bcrypt passworD", &stored);
        assert_eq!(
            bad,
            Verification {
                matches: false,
                needs_upgrade: false,
                scheme: Scheme::Bcrypt
            }
        );
    }

    #[test]
    fn bcrypt_published_vectors() {
        let hasher = test_hasher(PEPPER, &test_config());
        let vectors = [
            // Spring Security reference, "Password Storage" / DelegatingPasswordEncoder: the
            // BCryptPasswordEncoder output for "password", stored with Spring's `{bcrypt}` prefix.
            (
                "password",
                "{bcrypt}$2a$10$dXJ3SW6G7P50lGmMkkmwe.20cQQubK3.HZWzG3YB1tlRy.fqvM/BG",
            ),
            // The same hash as BCryptPasswordEncoder returns it (no prefix).
            (
                "password",
                "$2a$10$dXJ3SW6G7P50lGmMkkmwe.20cQQubK3.HZWzG3YB1tlRy.fqvM/BG",
            ),
            // jBCrypt's TestBCrypt vectors (Damien Miller; Spring's BCrypt class is derived from
            // jBCrypt and its BCryptTests carry the same table).
            (
                "abcdefghijklmnopqrstuvwxyz",
                "$2a$10$fVH8e28OQRj9tqiDXs1e1uxpsjN0c7II7YPKXua2NAKYvM6iQk7dq",
            ),
            (
                "abc",
                "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i",
            ),
            // PHP manual, password_verify() example 1 and password_hash() example ($2y$).
            (
                "rasmuslerdorf",
                "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq",
            ),
            (
                "rasmuslerdorf",
                "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a",
            ),
        ];
        for (password, stored) in vectors {
            let ok = verify(&hasher, password, stored);
            assert_eq!(
                ok,
                Verification {
                    matches: true,
                    needs_upgrade: true,
                    scheme: Scheme::Bcrypt
                },
                "{stored}"
            );
            assert!(!verify(&hasher, "not the password", stored).matches, "{stored}");
        }
    }

    #[test]
    fn pbkdf2_sha256_vectors() {
        let hasher = test_hasher(PEPPER, &test_config());
        // Generated with the pbkdf2 crate.
        let generated = {
            use pbkdf2::password_hash::CustomizedPasswordHasher as _;
            let params = pbkdf2::Params::new(1000).unwrap();
            let phc: pbkdf2::phc::PasswordHash = pbkdf2::Pbkdf2::SHA256
                .hash_password_with_params(b"pbkdf2 password", b"sixteen byte slt", params)
                .unwrap();
            phc.to_string()
        };
        assert!(
            generated.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
            "{generated}"
        );
        // Python: hashlib.pbkdf2_hmac("sha256", b"correct horse battery staple",
        // b"tessera-fixture!", 10000, 32), formatted as PHC (standard base64, no padding).
        let python_phc =
            "$pbkdf2-sha256$i=10000,l=32$dGVzc2VyYS1maXh0dXJlIQ$c7PbM2O63vySmxogwHyENhB3yyzaqUU8IlhalWf0EAw";
        // Python passlib 1.7.4: pbkdf2_sha256.hash("correct horse battery staple") (its own
        // format: bare rounds, adapted base64 with "." for "+").
        let passlib =
            "$pbkdf2-sha256$29000$tXYuBUCIUSplLEWoda611g$b/NLZ09jhGsQ3uzre.xSPQhGulgRI11gzMaOwWX59bA";
        for (password, stored) in [
            ("pbkdf2 password", generated.as_str()),
            ("correct horse battery staple", python_phc),
            ("correct horse battery staple", passlib),
        ] {
            let ok = verify(&hasher, password, stored);
            assert_eq!(
                ok,
                Verification {
                    matches: true,
                    needs_upgrade: true,
                    scheme: Scheme::Pbkdf2Sha256
                },
                "{stored}"
            );
            assert!(
                !verify(&hasher, "correct horse battery stapler", stored).matches,
                "{stored}"
            );
        }
    }
}
