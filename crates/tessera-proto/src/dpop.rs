//! DPoP proofs (RFC 9449): the checks of §4.3 that need nothing but the proof, the request
//! and a clock. What needs state — the `jti` replay cache, server nonces, the key a refresh
//! token is bound to — belongs to the caller (the provider, `tessera-verify`).
//!
//! One home for both sides: the provider checks proofs at its token endpoint and at its
//! own protected endpoints, services check them through `tessera-verify`.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// The `typ` of a DPoP proof (§4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// The HTTP header carrying the proof (§4.1).
pub const HEADER: &str = "dpop";
/// The header a server sends its nonce in (§8).
pub const NONCE_HEADER: &str = "dpop-nonce";
/// The `token_type` of a DPoP-bound access token (§5), and the `Authorization` scheme.
pub const TOKEN_TYPE: &str = "DPoP";
/// The error of an invalid proof (§5, §7.1).
pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";
/// The error asking the client to retry with the server's nonce (§8, §9).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// Asymmetric algorithms accepted for proofs (never `none`, never HMAC: §4.2).
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::EdDSA,
];
/// The names of [`ALGORITHMS`], for discovery and `WWW-Authenticate` (§5.1, §7.1).
pub const ALGORITHM_NAMES: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];
/// The longest proof accepted: an RSA-4096 proof is under 3 KiB.
pub const MAX_PROOF_BYTES: usize = 6 * 1024;
/// The longest `jti` accepted (it is a key of the replay cache).
pub const MAX_JTI_CHARS: usize = 256;
/// JWK members that only a private or symmetric key has (RFC 7518 §6).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof is refused. For logs; the client sees `invalid_dpop_proof`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("more than one DPoP header")]
    Repeated,
    #[error("the proof is too large")]
    TooLarge,
    #[error("not a JWS with a readable header")]
    Malformed,
    #[error("`typ` is not dpop+jwt")]
    Type,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("no public `jwk` in the header, or one with private members")]
    Key,
    #[error("the header carries `crit`")]
    CriticalHeader,
    #[error("signature invalid")]
    Signature,
    #[error("a required claim is missing or malformed")]
    Claims,
    #[error("`htm` is not the request's method")]
    Method,
    #[error("`htu` is not the request's URI")]
    Uri,
    #[error("`iat` is too old")]
    Stale,
    #[error("`iat` is in the future")]
    Future,
    #[error("`ath` is missing or is not the hash of the access token")]
    AccessTokenHash,
    #[error("`ath` is present but no access token is presented")]
    UnexpectedAth,
    #[error("the proof was used before")]
    Replayed,
}

/// What a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The request's method (`POST`).
    pub method: &'a str,
    /// The request's URI as the client sees it (the server's external URL and the path).
    pub uri: &'a str,
    pub now: i64,
    /// How old `iat` may be, in seconds.
    pub max_age_secs: i64,
    /// How far `iat` may be in the future (clock skew), in seconds.
    pub leeway_secs: i64,
    /// The access token presented with the proof, if any: `ath` must be its hash (§4.3
    /// step 11); without one, `ath` must be absent.
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key (`cnf.jkt`).
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    /// The server nonce the proof carries, for the caller to check.
    pub nonce: Option<String>,
}

impl Proof {
    /// The key the replay cache stores this proof under: the key's thumbprint and the
    /// `jti`, hashed so that its length is bounded.
    pub fn replay_key(&self) -> String {
        sha256_b64(&format!("{}.{}", self.jkt, self.jti))
    }
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// The one proof of a request's `DPoP` headers: `None` without one, an error for more than
/// one (§4.3 step 1).
pub fn single_proof<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Result<Option<&'a str>, ProofError> {
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(ProofError::Repeated),
        (Some(value), None) => std::str::from_utf8(value)
            .map(|text| Some(text.trim()))
            .map_err(|_| ProofError::Malformed),
    }
}

/// Checks a proof, step by step (RFC 9449 §4.3). Replay (step 12's `jti`) and nonces are
/// the caller's.
pub fn verify(proof: &str, expect: &Expectations<'_>) -> Result<Proof, ProofError> {
    // 0. Bounded before anything is decoded.
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLarge);
    }
    // 2. A well-formed compact JWS (three segments, a JSON header).
    let header = raw_header(proof)?;
    // 4. `typ` is exactly dpop+jwt.
    if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYP) {
        return Err(ProofError::Type);
    }
    if header.get("crit").is_some() {
        return Err(ProofError::CriticalHeader);
    }
    // 5. An asymmetric algorithm of the allow-list (`none` and HS256 stop here).
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|alg| alg.parse::<Algorithm>().ok())
        .filter(|alg| ALGORITHMS.contains(alg))
        .ok_or(ProofError::Algorithm)?;
    // 7. A public key in `jwk`, and nothing private in it.
    let jwk_value = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(ProofError::Key)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_value.contains_key(*m)) {
        return Err(ProofError::Key);
    }
    let jwk: Jwk = serde_json::from_value(Value::Object(jwk_value.clone())).map_err(|_| ProofError::Key)?;
    if matches!(
        jwk.algorithm,
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
    ) {
        return Err(ProofError::Key);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::Key)?;
    // 6. The signature, by that key (claims are checked below, against our clock).
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
        .map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => ProofError::Claims,
            _ => ProofError::Signature,
        })?
        .claims;
    // 3. The required claims, sensibly sized.
    if claims.jti.is_empty() || claims.jti.chars().count() > MAX_JTI_CHARS {
        return Err(ProofError::Claims);
    }
    // 8. The method.
    if claims.htm != expect.method {
        return Err(ProofError::Method);
    }
    // 9. The URI, without query and fragment, normalised (§4.3, RFC 3986 §6).
    if !same_target(&claims.htu, expect.uri) {
        return Err(ProofError::Uri);
    }
    // 11. Created recently, and not in the future beyond clock skew.
    if claims.iat < expect.now.saturating_sub(expect.max_age_secs) {
        return Err(ProofError::Stale);
    }
    if claims.iat > expect.now.saturating_add(expect.leeway_secs) {
        return Err(ProofError::Future);
    }
    // 12. `ath` binds the proof to the access token it accompanies.
    match (expect.access_token, claims.ath.as_deref()) {
        (Some(token), Some(ath)) if ath == access_token_hash(token) => {}
        (Some(_), _) => return Err(ProofError::AccessTokenHash),
        (None, Some(_)) => return Err(ProofError::UnexpectedAth),
        (None, None) => {}
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| ProofError::Key)?;
    Ok(Proof {
        jkt,
        jti: claims.jti,
        iat: claims.iat,
        nonce: claims.nonce,
    })
}

/// The `ath` of an access token: base64url of its SHA-256 (§4.2).
pub fn access_token_hash(token: &str) -> String {
    sha256_b64(token)
}

/// Whether a proof's `htu` names the request's target: same scheme, host, port and path,
/// ignoring query and fragment (compared after URL normalisation: case of scheme and host,
/// default port, dot segments, percent-encoding).
pub fn same_target(htu: &str, uri: &str) -> bool {
    let normalise = |text: &str| {
        url::Url::parse(text).ok().filter(|u| u.has_host()).map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    match (normalise(htu), normalise(uri)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The `WWW-Authenticate` challenge of a resource that wants a DPoP-bound token (§7.1).
pub fn challenge(error: Option<&str>) -> String {
    let algs = ALGORITHM_NAMES.join(" ");
    match error {
        Some(error) => format!("DPoP error=\"{error}\", algs=\"{algs}\""),
        None => format!("DPoP algs=\"{algs}\""),
    }
}

fn raw_header(proof: &str) -> Result<serde_json::Map<String, Value>, ProofError> {
    let mut parts = proof.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| ProofError::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ProofError::Malformed),
    }
}

fn sha256_b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, text.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_compare_without_query_and_after_normalisation() {
        let uri = "https://id.example.com/oauth2/token";
        assert!(same_target("https://id.example.com/oauth2/token", uri));
        assert!(same_target("HTTPS://ID.example.com:443/oauth2/token?x=1#f", uri));
        assert!(same_target("https://id.example.com/oauth2/./token", uri));
        assert!(!same_target("https://id.example.com/oauth2/token/", uri));
        assert!(!same_target("http://id.example.com/oauth2/token", uri));
        assert!(!same_target("https://id.example.com:8443/oauth2/token", uri));
        assert!(!same_target("https://evil.example.com/oauth2/token", uri));
        assert!(!same_target("/oauth2/token", uri));
        assert!(!same_target("", uri));
    }

    #[test]
    fn thumbprint_is_rfc_7638s_example() {
        // RFC 7638 §3.1.
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn refuses_what_is_not_a_proof_before_looking_at_the_signature() {
        let expect = Expectations {
            method: "POST",
            uri: "https://id.example.com/oauth2/token",
            now: 1_000,
            max_age_secs: 60,
            leeway_secs: 5,
            access_token: None,
        };
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = b64(serde_json::json!({"jti": "a", "htm": "POST", "htu": expect.uri, "iat": 1_000}));
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let cases = [
            ("not a jws".to_owned(), ProofError::Malformed),
            (
                format!(
                    "{}.{claims}.sig",
                    b64(serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}))
                ),
                ProofError::Algorithm,
            ),
            (
                format!(
                    "{}.{claims}.sig",
                    b64(serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}))
                ),
                ProofError::Algorithm,
            ),
            (
                format!(
                    "{}.{claims}.sig",
                    b64(serde_json::json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}))
                ),
                ProofError::Type,
            ),
            (
                format!(
                    "{}.{claims}.sig",
                    b64(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256"}))
                ),
                ProofError::Key,
            ),
            (
                format!(
                    "{}.{claims}.sig",
                    b64(
                        serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}})
                    )
                ),
                ProofError::Key,
            ),
            (
                format!(
                    "{}.{claims}.sig",
                    b64(
                        serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}})
                    )
                ),
                ProofError::Key,
            ),
            (
                format!(
                    "{}.{claims}.sig",
                    b64(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk, "crit": ["x"]}))
                ),
                ProofError::CriticalHeader,
            ),
            (
                format!(
                    "{}.{claims}.c2ln",
                    b64(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}))
                ),
                ProofError::Signature,
            ),
            ("a".repeat(MAX_PROOF_BYTES + 1), ProofError::TooLarge),
        ];
        for (proof, why) in cases {
            assert_eq!(verify(&proof, &expect), Err(why), "{proof}");
        }
    }

    #[test]
    fn one_header_at_most() {
        assert_eq!(single_proof(std::iter::empty()), Ok(None));
        assert_eq!(single_proof([b"a.b.c".as_slice()].into_iter()), Ok(Some("a.b.c")));
        assert_eq!(
            single_proof([b"a".as_slice(), b"b".as_slice()].into_iter()),
            Err(ProofError::Repeated)
        );
    }
}
