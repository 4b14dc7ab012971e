//! Recognising stored password hashes: which scheme a string is, and its parsed form.
//!
//! Accepted formats (anything else is [`PasswordError::UnsupportedHash`](super::PasswordError)):
//!
//! - Argon2 PHC strings `$argon2id$…`, `$argon2i$…`, `$argon2d$…` (versions 0x10 and 0x13; a
//!   missing `v=` means 0x10, as in the reference implementation). With a `keyid` parameter the
//!   hash was made by Tessera with the pepper that key id names; without one it is imported.
//! - bcrypt `$2a$`, `$2b$`, `$2y$` (60 characters; as written by Spring Security's
//!   `BCryptPasswordEncoder`, OpenBSD, PHP), optionally behind Spring's `DelegatingPasswordEncoder`
//!   prefix `{bcrypt}`. `$2x$` (PHP's marker for the old sign-extension bug) is refused.
//! - PBKDF2-HMAC-SHA256 as a PHC string `$pbkdf2-sha256$i=<rounds>[,l=<len>]$<salt>$<hash>`
//!   (standard B64 without padding), or in passlib's modular crypt format
//!   `$pbkdf2-sha256$<rounds>$<salt>$<hash>` (passlib's adapted base64, `.` for `+`).
//!
//! Imported hashes carry their own cost parameters, so a hostile or mistaken import could make
//! one login cost minutes or gigabytes; costs above the `MAX_*` bounds below are refused.

use argon2::password_hash::phc::PasswordHash;
use pbkdf2::mcf::PasswordHashRef;

use super::Scheme;

/// Largest Argon2 memory cost accepted from an imported hash: 256 MiB.
pub(crate) const MAX_IMPORTED_ARGON2_M_KIB: u32 = 256 * 1024;
/// Largest Argon2 iteration count accepted from an imported hash.
pub(crate) const MAX_IMPORTED_ARGON2_T: u32 = 32;
/// Largest Argon2 parallelism accepted from an imported hash.
pub(crate) const MAX_IMPORTED_ARGON2_P: u32 = 64;
/// Largest bcrypt cost accepted (2^16 rounds, several seconds per check).
pub(crate) const MAX_BCRYPT_COST: u32 = 16;
/// Largest PBKDF2 iteration count accepted (OWASP 2023 recommends 600 000).
pub(crate) const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

const PBKDF2_SHA256_PREFIX: &str = "$pbkdf2-sha256$";
const SPRING_BCRYPT_PREFIX: &str = "{bcrypt}";

/// A stored hash, parsed far enough to choose the verifier and check its cost.
pub(crate) enum Stored<'a> {
    Argon2 {
        /// Version filled in (0x10 when the string had no `v=`).
        phc: PasswordHash,
        algorithm: argon2::Algorithm,
        params: argon2::Params,
    },
    /// The 60-character bcrypt string, without any `{bcrypt}` prefix.
    Bcrypt(&'a str),
    Pbkdf2Phc(PasswordHash),
    Pbkdf2Mcf(&'a PasswordHashRef),
}

impl Stored<'_> {
    pub(crate) fn scheme(&self) -> Scheme {
        match self {
            Stored::Argon2 {
                algorithm, params, ..
            } => {
                if *algorithm == argon2::Algorithm::Argon2id && !params.keyid().is_empty() {
                    Scheme::Argon2id
                } else {
                    Scheme::Argon2Legacy
                }
            }
            Stored::Bcrypt(_) => Scheme::Bcrypt,
            Stored::Pbkdf2Phc(_) | Stored::Pbkdf2Mcf(_) => Scheme::Pbkdf2Sha256,
        }
    }
}

/// Parses `stored`, or `None` when it is not an accepted format or its cost is out of bounds.
pub(crate) fn parse(stored: &str) -> Option<Stored<'_>> {
    if stored.starts_with("$argon2") {
        parse_argon2(stored)
    } else if stored.starts_with("$2") || stored.starts_with(SPRING_BCRYPT_PREFIX) {
        parse_bcrypt(stored)
    } else if stored.starts_with(PBKDF2_SHA256_PREFIX) {
        parse_pbkdf2(stored)
    } else {
        None
    }
}

fn parse_argon2(stored: &str) -> Option<Stored<'_>> {
    let mut phc = PasswordHash::new(stored).ok()?;
    let algorithm = argon2::Algorithm::new(phc.algorithm.as_str()).ok()?;
    let version = phc.version.unwrap_or(0x10);
    argon2::Version::try_from(version).ok()?;
    phc.version = Some(version);
    phc.salt.as_ref()?;
    phc.hash.as_ref()?;
    let params = argon2::Params::try_from(&phc).ok()?;
    if params.keyid().is_empty()
        && (params.m_cost() > MAX_IMPORTED_ARGON2_M_KIB
            || params.t_cost() > MAX_IMPORTED_ARGON2_T
            || params.p_cost() > MAX_IMPORTED_ARGON2_P)
    {
        return None;
    }
    Some(Stored::Argon2 {
        phc,
        algorithm,
        params,
    })
}

fn parse_bcrypt(stored: &str) -> Option<Stored<'_>> {
    let hash = stored.strip_prefix(SPRING_BCRYPT_PREFIX).unwrap_or(stored);
    let version = hash.get(..4)?;
    if !matches!(version, "$2a$" | "$2b$" | "$2y$") {
        return None;
    }
    // Checks length, separators and the base64 of salt and checksum.
    let parts: bcrypt::HashParts = hash.parse().ok()?;
    if !(4..=MAX_BCRYPT_COST).contains(&parts.get_cost()) {
        return None;
    }
    Some(Stored::Bcrypt(hash))
}

fn parse_pbkdf2(stored: &str) -> Option<Stored<'_>> {
    let fields: Vec<&str> = stored.split('$').collect();
    // ["", "pbkdf2-sha256", params-or-rounds, salt, hash]
    let [_, _, params, salt, hash] = fields.as_slice() else {
        return None;
    };
    if params.contains('=') {
        let phc = PasswordHash::new(stored).ok()?;
        let parsed = pbkdf2::Params::try_from(&phc).ok()?;
        phc.salt.as_ref()?;
        phc.hash.as_ref()?;
        if parsed.rounds() > MAX_PBKDF2_ROUNDS {
            return None;
        }
        Some(Stored::Pbkdf2Phc(phc))
    } else {
        let rounds: u32 = params.parse().ok()?;
        let b64 = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
        };
        // At least 8 bytes of salt (11 characters) and 16 bytes of checksum (22 characters), at
        // most the crate's 64-byte buffers: a truncated checksum would match too easily.
        if !(pbkdf2::Params::MIN_ROUNDS..=MAX_PBKDF2_ROUNDS).contains(&rounds)
            || !(11..=86).contains(&salt.len())
            || !(22..=86).contains(&hash.len())
            || !b64(salt)
            || !b64(hash)
        {
            return None;
        }
        PasswordHashRef::new(stored).ok().map(Stored::Pbkdf2Mcf)
    }
}

#[cfg(test)]
mod tests {
    use super::super::scheme_of;
    use super::*;

    #[test]
    fn recognises_each_format() {
        let cases = [
            ("$argon2id$v=19$m=64,t=1,p=1,keyid=AAAAAAAA$c2FsdHNhbHRzYWx0c2FsdA$5Dq8Y1tmJ8vbTQLUU+LUczH8iHRCIiPZ06Z5WkNfmLE", Some(Scheme::Argon2id)),
            ("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$5Dq8Y1tmJ8vbTQLUU+LUczH8iHRCIiPZ06Z5WkNfmLE", Some(Scheme::Argon2Legacy)),
            ("$argon2i$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$5Dq8Y1tmJ8vbTQLUU+LUczH8iHRCIiPZ06Z5WkNfmLE", Some(Scheme::Argon2Legacy)),
            ("$2a$10$fVH8e28OQRj9tqiDXs1e1uxpsjN0c7II7YPKXua2NAKYvM6iQk7dq", Some(Scheme::Bcrypt)),
            ("{bcrypt}$2a$10$dXJ3SW6G7P50lGmMkkmwe.20cQQubK3.HZWzG3YB1tlRy.fqvM/BG", Some(Scheme::Bcrypt)),
            ("$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq", Some(Scheme::Bcrypt)),
            ("$pbkdf2-sha256$i=10000,l=32$dGVzc2VyYS1maXh0dXJlIQ$c7PbM2O63vySmxogwHyENhB3yyzaqUU8IlhalWf0EAw", Some(Scheme::Pbkdf2Sha256)),
            ("$pbkdf2-sha256$29000$tXYuBUCIUSplLEWoda611g$b/NLZ09jhGsQ3uzre.xSPQhGulgRI11gzMaOwWX59bA", Some(Scheme::Pbkdf2Sha256)),
            // Refused: PHP's buggy-variant marker, costs out of bounds, other schemes, garbage.
            ("$2x$10$fVH8e28OQRj9tqiDXs1e1uxpsjN0c7II7YPKXua2NAKYvM6iQk7dq", None),
            ("$2a$31$fVH8e28OQRj9tqiDXs1e1uxpsjN0c7II7YPKXua2NAKYvM6iQk7dq", None),
            ("$2a$10$tooshort", None),
            ("$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$5Dq8Y1tmJ8vbTQLUU+LUczH8iHRCIiPZ06Z5WkNfmLE", None),
            ("$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$5Dq8Y1tmJ8vbTQLUU+LUczH8iHRCIiPZ06Z5WkNfmLE", None),
            ("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA", None),
            ("$pbkdf2-sha256$i=100000000,l=32$dGVzc2VyYS1maXh0dXJlIQ$c7PbM2O63vySmxogwHyENhB3yyzaqUU8IlhalWf0EAw", None),
            ("$pbkdf2-sha256$29000$tXYuBUCIUSplLEWoda611g$b/NLZ09j", None),
            ("$pbkdf2-sha512$25000$O4fwPmdMyRmDUIrx/h9jTA$Xlp267ZwEbG4aOpN3Bve", None),
            ("$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E", None),
            ("$6$rounds=5000$salt$hash", None),
            ("plaintext", None),
            ("", None),
        ];
        for (stored, expected) in cases {
            assert_eq!(scheme_of(stored), expected, "{stored}");
        }
    }

    #[test]
    fn missing_argon2_version_means_0x10() {
        let stored =
            "$argon2i$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$5Dq8Y1tmJ8vbTQLUU+LUczH8iHRCIiPZ06Z5WkNfmLE";
        let Some(Stored::Argon2 { phc, .. }) = parse(stored) else {
            panic!("not parsed as Argon2");
        };
        assert_eq!(phc.version, Some(0x10));
    }

    #[test]
    fn scheme_names_are_stable() {
        assert_eq!(Scheme::Argon2id.name(), "argon2id");
        assert_eq!(Scheme::Argon2Legacy.name(), "argon2");
        assert_eq!(Scheme::Bcrypt.name(), "bcrypt");
        assert_eq!(Scheme::Pbkdf2Sha256.name(), "pbkdf2-sha256");
        assert_eq!(Scheme::Bcrypt.to_string(), "bcrypt");
    }
}
