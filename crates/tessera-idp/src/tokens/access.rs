//! JWT access tokens (RFC 9068): what they carry, how they are signed, and how this
//! provider verifies one presented to it.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::{KeyRing, ALGORITHMS};

/// The media type of access tokens (RFC 9068 §2.1), in the `typ` header.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token. Nothing personal beyond the subject id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// The token session; absent for client-credentials tokens (no user, no session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's roles with the ones they inherit (R26).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// What those roles grant, flattened (at most `authz::MAX_TOKEN_PERMISSIONS`; past it
    /// none, so a service fails closed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// When the user signed in (RFC 9068 §2.2.1); absent for client-credentials tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authentication context class of that sign-in (`urn:tessera:acr:pwd|mfa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Its methods (RFC 8176: `pwd`, `otp`, `mfa`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The upstream provider of a federated sign-in (its configured id); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.1): only a request with a DPoP proof of
    /// that key may present it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The confirmation claim of a sender-constrained token (RFC 7800, RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the DPoP key, base64url.
    pub jkt: String,
}

impl Confirmation {
    /// The confirmation of a token bound to the key with thumbprint `jkt`, if any.
    pub fn of(jkt: Option<&str>) -> Option<Confirmation> {
        jkt.map(|jkt| Confirmation { jkt: jkt.to_owned() })
    }
}

/// `aud`: one audience, or several (RFC 7519 §4.1.3). This provider issues one; a token
/// naming several is accepted where it names the expected one (RFC 9068 §4), the same rule
/// as `tessera-verify` and the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Self {
        Audience::One(audience.to_owned())
    }
}

impl From<String> for Audience {
    fn from(audience: String) -> Self {
        Audience::One(audience)
    }
}

/// Why a presented access token is not accepted. For logs; the client sees `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("not a JWS with a supported header")]
    Malformed,
    #[error("the header carries `crit`")]
    CriticalHeader,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("`typ` is not at+jwt")]
    Type,
    #[error("no published key has this kid and algorithm")]
    UnknownKey,
    #[error("signature or claims invalid")]
    Signature,
    #[error("issuer mismatch")]
    Issuer,
    #[error("audience mismatch")]
    Audience,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("revoked")]
    Revoked,
    /// DPoP-bound, and presented without a proof of its key (as Bearer, or with another key).
    #[error("bound to a DPoP key the request did not prove")]
    Unproven,
    /// Presented with the DPoP scheme but not bound to a key.
    #[error("not DPoP-bound, yet presented as DPoP")]
    NotBound,
}

/// Signs `claims` with the ring's current key for `alg`.
pub fn sign(keys: &KeyRing, alg: Algorithm, claims: &AccessClaims) -> Result<String, String> {
    keys.with_signing_key(alg, |key| {
        let mut header = Header::new(alg);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(key.kid.clone());
        key.sign_jws(&header, claims)
    })
    .ok_or_else(|| format!("no active signing key for {alg:?}"))?
}

/// What a verification expects.
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// `None` accepts any audience (introspection reports on every token we issued).
    pub audience: Option<&'a str>,
    pub now: i64,
    pub leeway: i64,
    /// `false` only where an expired token is expected and still proves which session it
    /// came from (`/auth/reissue`): signature, issuer and type are checked all the same.
    pub check_lifetime: bool,
}

/// Verifies a presented access token, step by step. Revocation is checked by the caller.
pub fn verify(keys: &KeyRing, token: &str, expect: &Expectations<'_>) -> Result<AccessClaims, Rejected> {
    // 1. A compact JWS whose header parses. `alg: none` and unknown algorithms fail here.
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Malformed)?;
    // 2. No critical extensions: we understand none (RFC 7515 §4.1.11).
    if header.crit.is_some() {
        return Err(Rejected::CriticalHeader);
    }
    // 3. Asymmetric algorithms we sign with only: never HMAC (a public key is no secret).
    if !ALGORITHMS.contains(&header.alg) {
        return Err(Rejected::Algorithm);
    }
    // 4. Explicitly typed as an access token (RFC 9068 §4), so an ID token is not one.
    let typ_ok = header.typ.as_deref().is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(Rejected::Type);
    }
    // 5. The key is one we publish, for exactly this algorithm.
    let kid = header.kid.as_deref().ok_or(Rejected::UnknownKey)?;
    let key = keys
        .verification_key(kid, header.alg)
        .ok_or(Rejected::UnknownKey)?;
    // 6. The signature; time and audience are checked below against our own clock.
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
        .map_err(|_| Rejected::Signature)?
        .claims;
    // 7. Exact issuer.
    if claims.iss != expect.issuer {
        return Err(Rejected::Issuer);
    }
    // 8. Audience, when the caller requires one.
    if expect.audience.is_some_and(|aud| !claims.aud.contains(aud)) {
        return Err(Rejected::Audience);
    }
    // 9. Lifetime, with explicit leeway for clock skew between nodes.
    if !expect.check_lifetime {
        return Ok(claims);
    }
    if claims.exp <= expect.now - expect.leeway {
        return Err(Rejected::Expired);
    }
    if claims.nbf > expect.now + expect.leeway || claims.iat > expect.now + expect.leeway {
        return Err(Rejected::NotYetValid);
    }
    Ok(claims)
}
