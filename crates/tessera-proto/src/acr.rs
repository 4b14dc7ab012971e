//! Authentication context classes (`acr`, OIDC Core §2) that Tessera asserts, from the
//! authentication methods (`amr`, RFC 8176) of a sign-in.

/// A sign-in with the password alone.
pub const PASSWORD: &str = "urn:tessera:acr:pwd";
/// A sign-in with the password and a second factor.
pub const MFA: &str = "urn:tessera:acr:mfa";
/// Every class, weakest first (discovery's `acr_values_supported`).
pub const SUPPORTED: &[&str] = &[PASSWORD, MFA];

/// The class of a sign-in with methods `amr`.
pub fn of<S: AsRef<str>>(amr: &[S]) -> &'static str {
    if amr.iter().any(|m| m.as_ref() == "mfa") {
        MFA
    } else {
        PASSWORD
    }
}

/// Whether a sign-in of class `acr` satisfies a request for any of `wanted`: the MFA class
/// satisfies a request for the password class too (it is stronger).
pub fn satisfies<S: AsRef<str>>(acr: &str, wanted: &[S]) -> bool {
    wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w.as_ref() == acr || (acr == MFA && w.as_ref() == PASSWORD))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_methods_and_the_stronger_satisfies_the_weaker() {
        assert_eq!(of(&["pwd"]), PASSWORD);
        assert_eq!(of(&["pwd", "otp", "mfa"]), MFA);
        assert_eq!(of::<&str>(&[]), PASSWORD);
        assert!(satisfies(MFA, &[PASSWORD]));
        assert!(satisfies(MFA, &[MFA]));
        assert!(!satisfies(PASSWORD, &[MFA]));
        assert!(satisfies(PASSWORD, &[PASSWORD, MFA]));
        assert!(satisfies::<&str>(PASSWORD, &[]));
        assert!(!satisfies(PASSWORD, &["urn:other"]));
    }
}
