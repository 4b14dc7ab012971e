//! Client authentication methods and the JWT client assertions of RFC 7523 §2.2 / OpenID
//! Connect Core §9: the names on the wire and which signature algorithms each method takes.

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A confidential client that signs an assertion with its own private key.
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";
/// A confidential client that signs an assertion with its secret (HMAC).
pub const CLIENT_SECRET_JWT: &str = "client_secret_jwt";

/// Every method a client can register, in the order discovery lists them.
pub const AUTH_METHODS: [&str; 5] = [
    "client_secret_basic",
    "client_secret_post",
    CLIENT_SECRET_JWT,
    PRIVATE_KEY_JWT,
    "none",
];

/// The methods of confidential clients; the first is the default.
pub const CONFIDENTIAL_AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    CLIENT_SECRET_JWT,
    PRIVATE_KEY_JWT,
];

/// Asymmetric algorithms for `private_key_jwt`: never `none`, never an HMAC (a public key
/// used as an HMAC secret is the classic key-confusion forgery).
pub const PRIVATE_KEY_JWT_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
/// HMAC algorithms for `client_secret_jwt` (the secret is 256 bits of randomness).
pub const CLIENT_SECRET_JWT_ALGS: [&str; 3] = ["HS256", "HS384", "HS512"];

/// The algorithms a client registered for `method` may sign its assertions with; empty
/// for a method that sends no assertion.
pub fn assertion_algs(method: &str) -> &'static [&'static str] {
    match method {
        PRIVATE_KEY_JWT => &PRIVATE_KEY_JWT_ALGS,
        CLIENT_SECRET_JWT => &CLIENT_SECRET_JWT_ALGS,
        _ => &[],
    }
}

/// What a request object (OpenID Connect Core §6.1) may be signed with: `none` (only for a
/// client that registered exactly that), a key pair, or the client's secret.
pub fn request_object_algs() -> Vec<&'static str> {
    std::iter::once("none").chain(all_assertion_algs()).collect()
}

/// Every assertion algorithm, for discovery's `*_auth_signing_alg_values_supported`.
pub fn all_assertion_algs() -> Vec<&'static str> {
    PRIVATE_KEY_JWT_ALGS
        .iter()
        .chain(CLIENT_SECRET_JWT_ALGS.iter())
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_method_takes_none_and_private_keys_take_no_hmac() {
        assert!(!all_assertion_algs().contains(&"none"));
        assert!(assertion_algs(PRIVATE_KEY_JWT)
            .iter()
            .all(|a| !a.starts_with("HS")));
        assert!(assertion_algs(CLIENT_SECRET_JWT)
            .iter()
            .all(|a| a.starts_with("HS")));
        assert!(assertion_algs("client_secret_basic").is_empty());
    }
}
