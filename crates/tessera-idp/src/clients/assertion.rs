//! JWT client assertions (RFC 7523 §2.2 and §3, OpenID Connect Core §9), checked in the
//! order below; any failure is `invalid_client` with a fixed description, the reason going
//! to the log only.
//!
//! Audience: an assertion names this provider by its issuer identifier — what
//! draft-ietf-oauth-rfc7523bis requires, and what openid-client sends — or by the token
//! endpoint URL, which OpenID Connect Core §9 asks for and most libraries (authlib) send,
//! or by the URL of the endpoint that receives it (RFC 9126 §2 allows the PAR endpoint).
//! All three name this provider and nothing else. The audience must be that one value
//! (a string, or an array of one): a list of several audiences is how an assertion meant
//! for another server is replayed here (the audience-injection attack rfc7523bis answers).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tessera_proto::client_auth::{assertion_algs, CLIENT_SECRET_JWT_ALGS};
use tessera_proto::paths;
use tessera_store::durable::{ClientRecord, ClientStore};
use tessera_store::ephemeral::EphemeralStore;

use super::jwks::KeySets;
use super::{invalid_client, SecretSeal};
use crate::clock::Clock;
use crate::error::OAuthFailure;
use crate::tokens::opaque::sha256_b64;

/// Longer assertions are refused before any parsing.
const MAX_ASSERTION_LEN: usize = 16 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// The claims an assertion must carry (`nbf` and `iat` are optional).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: Value,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    jti: String,
}

/// Only the subject, read before the signature is checked to find the client's keys.
#[derive(Deserialize)]
struct Unverified {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

pub(super) struct Assertions {
    pub issuer: String,
    pub max_lifetime: i64,
    pub leeway: i64,
    /// Where used `jti`s are remembered (shared by every node when Redis is configured).
    pub replay: Arc<dyn EphemeralStore>,
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<SecretSeal>,
    pub key_sets: KeySets,
}

fn refuse(cause: impl std::fmt::Display) -> OAuthFailure {
    invalid_client().caused_by(cause)
}

impl Assertions {
    pub(super) async fn authenticate(
        &self,
        clients: &dyn ClientStore,
        form_client_id: Option<&str>,
        assertion: &str,
        endpoint: &str,
    ) -> Result<ClientRecord, OAuthFailure> {
        // 1. A compact JWS of bounded size with a header we accept: a known, asymmetric
        //    or HMAC algorithm (never `none`), no `crit` extensions we would not honour.
        if assertion.len() > MAX_ASSERTION_LEN {
            return Err(refuse("client assertion too long"));
        }
        let alg = header_alg(assertion)?;
        let header = jsonwebtoken::decode_header(assertion).map_err(refuse)?;
        // 2. The client it claims to be: iss = sub = client_id (RFC 7523 §3 items 1, 2).
        let unverified: Unverified =
            jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(refuse)?;
        let client_id = match (unverified.iss, unverified.sub) {
            (Some(iss), Some(sub)) if iss == sub && !sub.is_empty() && sub.len() <= 255 => sub,
            _ => return Err(refuse("client assertion iss and sub must both be the client_id")),
        };
        if form_client_id.is_some_and(|id| id != client_id) {
            return Err(refuse("client_id does not match the assertion's subject"));
        }
        let Some(client) = clients.client(&client_id).await? else {
            return Err(refuse(format!(
                "client assertion for unknown client {client_id:?}"
            )));
        };
        // 3. The method and algorithm it registered: a `private_key_jwt` client signs with
        //    its key pair, a `client_secret_jwt` client with an HMAC of its secret — so a
        //    public key can never be used as an HMAC secret (key confusion).
        let method = client.token_endpoint_auth_method.as_str();
        if !assertion_algs(method).contains(&alg.as_str()) {
            return Err(refuse(format!(
                "client {client_id} registered {method} but sent an assertion signed with {alg}"
            )));
        }
        if client
            .token_endpoint_auth_signing_alg
            .as_deref()
            .is_some_and(|registered| registered != alg)
        {
            return Err(refuse(format!(
                "client {client_id} registered another assertion algorithm than {alg}"
            )));
        }
        // 4. The signature, with the client's registered keys (the algorithm, checked
        //    above, is of the method's family).
        let claims: AssertionClaims = self.verify_signed(&client, assertion, &header).await?;
        // 5. The claims (RFC 7523 §3 items 3 to 7).
        self.check_claims(&client, &claims, endpoint)?;
        // 6. Single use: the first to store its jti wins, on every node sharing the store,
        //    and the mark lives until the assertion expires (RFC 7523 §3 item 7).
        let now = self.clock.now();
        let ttl = Duration::from_secs(u64::try_from(claims.exp - now + self.leeway).unwrap_or(1).max(1));
        let key = format!("client_assertion:{client_id}:{}", sha256_b64(&claims.jti));
        if !self.replay.set_if_absent(&key, b"1", ttl).await? {
            return Err(refuse(format!("client assertion of {client_id} replayed")));
        }
        Ok(client)
    }

    /// The claims of `jwt` once its signature verifies with what `client` registered for
    /// the header's algorithm: its secret for an HMAC, its public keys otherwise. The caller
    /// has checked that the client may use that algorithm.
    pub(super) async fn verify_signed<T: DeserializeOwned>(
        &self,
        client: &ClientRecord,
        jwt: &str,
        header: &jsonwebtoken::Header,
    ) -> Result<T, OAuthFailure> {
        if CLIENT_SECRET_JWT_ALGS.contains(&format!("{:?}", header.alg).as_str()) {
            let sealed = client
                .secret_sealed
                .as_deref()
                .ok_or_else(|| refuse(format!("client {} has no usable secret", client.client_id)))?;
            let secret = self.secrets.open(&client.client_id, sealed).map_err(refuse)?;
            return verify(jwt, header.alg, &DecodingKey::from_secret(&secret));
        }
        self.verify_with_client_keys(client, jwt, header).await
    }

    async fn verify_with_client_keys<T: DeserializeOwned>(
        &self,
        client: &ClientRecord,
        assertion: &str,
        header: &jsonwebtoken::Header,
    ) -> Result<T, OAuthFailure> {
        let mut refreshed = false;
        loop {
            let candidates = self
                .key_sets
                .candidates(client, header.alg, header.kid.as_deref(), refreshed)
                .await
                .map_err(refuse)?;
            if candidates.is_empty() && header.kid.is_some() && !refreshed {
                // An unknown key id: the client may have rotated; look again (rate-limited).
                refreshed = true;
                continue;
            }
            let mut last = refuse(format!(
                "no registered key of client {} fits the assertion",
                client.client_id
            ));
            for key in &candidates {
                match verify(assertion, header.alg, key) {
                    Ok(claims) => return Ok(claims),
                    Err(err) => last = err,
                }
            }
            return Err(last);
        }
    }

    fn check_claims(
        &self,
        client: &ClientRecord,
        claims: &AssertionClaims,
        endpoint: &str,
    ) -> Result<(), OAuthFailure> {
        let now = self.clock.now();
        if claims.iss != client.client_id || claims.sub != client.client_id {
            return Err(refuse("client assertion iss and sub must both be the client_id"));
        }
        let audiences = [
            self.issuer.clone(),
            format!("{}{}", self.issuer, paths::TOKEN),
            format!("{}{endpoint}", self.issuer),
        ];
        let aud = match &claims.aud {
            Value::String(one) => Some(one.as_str()),
            Value::Array(list) if list.len() == 1 => list[0].as_str(),
            _ => None,
        };
        if !aud.is_some_and(|aud| audiences.iter().any(|accepted| accepted == aud)) {
            return Err(refuse(
                "client assertion audience is not this provider (one value)",
            ));
        }
        if claims.exp + self.leeway <= now {
            return Err(refuse("client assertion expired"));
        }
        if claims.exp - now > self.max_lifetime + self.leeway {
            return Err(refuse("client assertion lives longer than allowed"));
        }
        if let Some(iat) = claims.iat {
            if iat > now + self.leeway {
                return Err(refuse("client assertion issued in the future"));
            }
            if claims.exp - iat > self.max_lifetime + self.leeway {
                return Err(refuse("client assertion lives longer than allowed"));
            }
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + self.leeway) {
            return Err(refuse("client assertion not yet valid"));
        }
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(refuse("client assertion jti missing or too long"));
        }
        Ok(())
    }
}

/// The `alg` of the protected header, refusing `none`, unknown algorithms and any `crit`
/// member (RFC 7515 §4.1.11: extensions we do not understand must fail the JWS).
pub(super) fn header_alg(assertion: &str) -> Result<String, OAuthFailure> {
    match header_alg_or_none(assertion)?.as_str() {
        "none" => Err(refuse("unsigned client assertion (alg none)")),
        alg => Ok(alg.to_owned()),
    }
}

/// [`header_alg`], with `none` (for request objects, where a client may register it).
pub(super) fn header_alg_or_none(assertion: &str) -> Result<String, OAuthFailure> {
    let encoded = assertion.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| refuse("client assertion header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&bytes).map_err(|_| refuse("client assertion header is not JSON"))?;
    if header.get("crit").is_some() {
        return Err(refuse("client assertion header has crit"));
    }
    match header.get("alg").and_then(Value::as_str) {
        Some(alg) if alg.eq_ignore_ascii_case("none") => Ok("none".to_owned()),
        Some(alg) => Ok(alg.to_owned()),
        None => Err(refuse("client assertion header has no alg")),
    }
}

/// Checks the signature only: the claims are checked by [`Assertions::check_claims`]
/// against the node's clock.
fn verify<T: DeserializeOwned>(
    assertion: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<T, OAuthFailure> {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<T>(assertion, key, &validation)
        .map(|data| data.claims)
        .map_err(refuse)
}
