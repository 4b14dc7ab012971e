//! ID tokens (OIDC Core §2) and back-channel logout tokens (OIDC Back-Channel Logout §2.4),
//! signed with the RS256 key every OpenID provider must offer.

use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::KeyRing;

/// The algorithm of ID tokens and logout tokens.
pub const ID_TOKEN_ALG: Algorithm = Algorithm::RS256;

/// The authentication context class of a password login.
pub const ACR_PASSWORD: &str = tessera_proto::acr::PASSWORD;

/// The back-channel logout event member (OIDC Back-Channel Logout §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
    /// The provider's session (SSO session) id.
    pub sid: String,
    /// The upstream provider of a federated sign-in (its configured id); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_hash: Option<String>,
    /// Standard claims released by scope (`email`, `email_verified`, `locale`, …).
    #[serde(flatten)]
    pub standard: Map<String, Value>,
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6,
/// for RS256).
pub fn at_hash(access_token: &str) -> String {
    let hash = digest(&SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16])
}

pub fn sign_id_token(keys: &KeyRing, claims: &IdTokenClaims) -> Result<String, String> {
    sign(keys, "JWT", claims)
}

#[derive(Debug, Clone, Serialize)]
pub struct LogoutTokenClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    pub sid: String,
    pub events: Value,
}

pub fn sign_logout_token(keys: &KeyRing, claims: &LogoutTokenClaims) -> Result<String, String> {
    sign(keys, "logout+jwt", claims)
}

fn sign(keys: &KeyRing, typ: &str, claims: &impl Serialize) -> Result<String, String> {
    keys.with_signing_key(ID_TOKEN_ALG, |key| {
        let mut header = Header::new(ID_TOKEN_ALG);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        key.sign_jws(&header, claims)
    })
    .ok_or("no active RS256 key")?
}

/// The claims of an ID token we issued, checked for signature and issuer but not expiry
/// (an `id_token_hint` may be expired, OIDC RP-Initiated Logout §2).
pub fn verify_hint(keys: &KeyRing, token: &str, issuer: &str) -> Option<IdTokenClaims> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.alg != ID_TOKEN_ALG || header.crit.is_some() {
        return None;
    }
    let key = keys.verification_key(header.kid.as_deref()?, ID_TOKEN_ALG)?;
    let mut validation = jsonwebtoken::Validation::new(ID_TOKEN_ALG);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<IdTokenClaims>(token, &key.decoding, &validation)
        .ok()?
        .claims;
    (claims.iss == issuer).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3: at_hash of the example access token.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
