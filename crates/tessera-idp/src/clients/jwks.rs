//! The public keys of `private_key_jwt` clients: a JWKS registered inline, or fetched from
//! the client's `jwks_uri` — bounded in size and time, only from addresses outside the
//! deployment's networks (see [`tessera_proto::net::AddressPolicy`]), cached for
//! `client_auth.jwks_cache_secs` and fetched again early when an assertion names an unknown
//! key id, at most once per `client_auth.jwks_refetch_interval_secs` (a forged key id must
//! not turn the provider into a load generator against the client's server). A failed
//! fetch keeps the last good document.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tessera_proto::net::AddressPolicy;
use tessera_store::durable::ClientRecord;

use crate::clock::Clock;
use crate::config::ClientAuthConfig;
use crate::outbound::{Get, Outbound};

/// The most keys a client's key set may hold.
pub const MAX_JWKS_KEYS: usize = 20;
/// The most `jwks_uri` documents a node keeps.
const MAX_CACHED_SETS: usize = 10_000;
/// The private members of RSA, EC and OKP keys, and the secret of an `oct` key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a key set is not acceptable, or could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwksError(pub String);

fn fail(reason: impl Into<String>) -> JwksError {
    JwksError(reason.into())
}

/// Checks a key set document: a JSON object with 1 to [`MAX_JWKS_KEYS`] public signature
/// keys (RSA, EC or OKP — never a symmetric key, never a private member), unique key ids.
/// Returns the parsed set.
pub fn check_jwks(document: &Value) -> Result<JwkSet, JwksError> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("a JWK set is an object with a `keys` array"))?;
    if keys.is_empty() || keys.len() > MAX_JWKS_KEYS {
        return Err(fail(format!("a JWK set holds 1 to {MAX_JWKS_KEYS} keys")));
    }
    for key in keys {
        if PRIVATE_MEMBERS.iter().any(|member| key.get(member).is_some()) {
            return Err(fail(
                "a JWK set holds public keys only (no private or symmetric key members)",
            ));
        }
    }
    let set: JwkSet =
        serde_json::from_value(document.clone()).map_err(|e| fail(format!("not a JWK set: {e}")))?;
    let mut kids = Vec::new();
    for key in &set.keys {
        match &key.algorithm {
            AlgorithmParameters::RSA(_)
            | AlgorithmParameters::EllipticCurve(_)
            | AlgorithmParameters::OctetKeyPair(_) => {}
            _ => return Err(fail("keys must be RSA, EC or OKP public keys")),
        }
        if matches!(&key.common.public_key_use, Some(usage) if *usage != PublicKeyUse::Signature) {
            return Err(fail("keys must be for signatures (`use` sig, or none)"));
        }
        DecodingKey::from_jwk(key).map_err(|e| fail(format!("unusable key: {e}")))?;
        check_public_key(key)?;
        if let Some(kid) = &key.common.key_id {
            if kids.contains(&kid) {
                return Err(fail(format!("key id {kid:?} appears twice")));
            }
            kids.push(kid);
        }
    }
    Ok(set)
}

/// The key material itself: an EC or OKP point that is on its curve (parsed by aws-lc), an
/// RSA modulus of at least 2048 bits.
fn check_public_key(key: &Jwk) -> Result<(), JwksError> {
    use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519};
    use base64::Engine as _;
    let decode = |text: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| fail("key members are base64url"))
    };
    let bad_point = |_| fail("the key is not a point on its curve");
    match &key.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => {
            let (algorithm, len): (&'static dyn aws_lc_rs::signature::VerificationAlgorithm, usize) =
                match ec.curve {
                    EllipticCurve::P256 => (&ECDSA_P256_SHA256_FIXED, 32),
                    EllipticCurve::P384 => (&ECDSA_P384_SHA384_FIXED, 48),
                    _ => return Err(fail("EC keys are on P-256 or P-384")),
                };
            let (x, y) = (decode(&ec.x)?, decode(&ec.y)?);
            if x.len() != len || y.len() != len {
                return Err(fail("the key is not a point on its curve"));
            }
            let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
            ParsedPublicKey::new(algorithm, point).map_err(bad_point)?;
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err(fail("OKP keys are Ed25519"));
            }
            ParsedPublicKey::new(&ED25519, decode(&okp.x)?).map_err(bad_point)?;
        }
        AlgorithmParameters::RSA(rsa) => {
            let modulus = decode(&rsa.n)?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < 256 {
                return Err(fail("RSA keys have a modulus of at least 2048 bits"));
            }
        }
        _ => return Err(fail("keys must be RSA, EC or OKP public keys")),
    }
    Ok(())
}

/// Whether `key` may check a signature made with `alg`.
fn fits(key: &Jwk, alg: Algorithm) -> bool {
    let family_fits = match (&key.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => ec.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => ec.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => okp.curve == EllipticCurve::Ed25519,
        _ => false,
    };
    let alg_fits = key
        .common
        .key_algorithm
        .is_none_or(|registered| registered.to_string() == format!("{alg:?}"));
    let use_fits = key
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|usage| *usage == PublicKeyUse::Signature);
    family_fits && alg_fits && use_fits
}

/// A fetched document: the last good one, when it was had, and when a fetch was last tried.
struct Cached {
    set: Option<Arc<JwkSet>>,
    fetched_at: i64,
    attempted_at: i64,
}

pub(super) struct KeySets {
    outbound: Arc<dyn Outbound>,
    clock: Arc<dyn Clock>,
    cache_secs: i64,
    refetch_interval_secs: i64,
    max_bytes: usize,
    timeout: Duration,
    addresses: AddressPolicy,
    cache: Mutex<HashMap<String, Cached>>,
}

impl KeySets {
    pub(super) fn new(
        config: &ClientAuthConfig,
        outbound: Arc<dyn Outbound>,
        clock: Arc<dyn Clock>,
    ) -> KeySets {
        KeySets {
            outbound,
            clock,
            cache_secs: i64::try_from(config.jwks_cache_secs).unwrap_or(i64::MAX),
            refetch_interval_secs: i64::try_from(config.jwks_refetch_interval_secs).unwrap_or(i64::MAX),
            max_bytes: usize::try_from(config.jwks_max_bytes).unwrap_or(usize::MAX),
            timeout: Duration::from_millis(config.jwks_fetch_timeout_ms),
            addresses: AddressPolicy {
                allow_loopback: config.jwks_uri_allow_loopback,
            },
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The keys of `client` that may check a signature made with `alg` (by `kid` when the
    /// assertion names one). `refresh`: the caller found no key with that id last time.
    pub(super) async fn candidates(
        &self,
        client: &ClientRecord,
        alg: Algorithm,
        kid: Option<&str>,
        refresh: bool,
    ) -> Result<Vec<DecodingKey>, JwksError> {
        let set = match (&client.jwks, &client.jwks_uri) {
            (Some(inline), _) => {
                let document: Value =
                    serde_json::from_str(inline).map_err(|e| fail(format!("stored jwks: {e}")))?;
                Arc::new(check_jwks(&document)?)
            }
            (None, Some(uri)) => self.fetched(uri, refresh).await?,
            (None, None) => return Err(fail(format!("client {} registered no keys", client.client_id))),
        };
        Ok(set
            .keys
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.common.key_id.as_deref() == Some(kid)))
            .filter(|key| fits(key, alg))
            .filter_map(|key| DecodingKey::from_jwk(key).ok())
            .collect())
    }

    /// The document at `uri`: cached while fresh unless `refresh` (an unknown key id), and
    /// never fetched again within the refetch interval of the last try (success or not).
    async fn fetched(&self, uri: &str, refresh: bool) -> Result<Arc<JwkSet>, JwksError> {
        let now = self.clock.now();
        let stale = {
            let cache = self.cache.lock().map_err(|_| fail("key set cache poisoned"))?;
            match cache.get(uri) {
                Some(entry) => {
                    let fresh = now - entry.fetched_at < self.cache_secs;
                    match &entry.set {
                        Some(set) if fresh && !refresh => return Ok(set.clone()),
                        _ if now - entry.attempted_at < self.refetch_interval_secs => {
                            return entry
                                .set
                                .clone()
                                .ok_or_else(|| fail("the jwks_uri fetch failed moments ago"))
                        }
                        other => other.clone(),
                    }
                }
                None => None,
            }
        };
        let fetched = self.fetch(uri).await;
        let mut cache = self.cache.lock().map_err(|_| fail("key set cache poisoned"))?;
        if cache.len() >= MAX_CACHED_SETS && !cache.contains_key(uri) {
            cache.clear();
        }
        match fetched {
            Ok(set) => {
                let set = Arc::new(set);
                cache.insert(
                    uri.to_owned(),
                    Cached {
                        set: Some(set.clone()),
                        fetched_at: now,
                        attempted_at: now,
                    },
                );
                Ok(set)
            }
            Err(err) => {
                tracing::warn!(error = %err, "fetching a client's jwks_uri failed");
                let fetched_at = cache.get(uri).map_or(0, |entry| entry.fetched_at);
                cache.insert(
                    uri.to_owned(),
                    Cached {
                        set: stale.clone(),
                        fetched_at,
                        attempted_at: now,
                    },
                );
                stale.ok_or(err)
            }
        }
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, JwksError> {
        let fetched = self
            .outbound
            .get(Get {
                url: uri.to_owned(),
                timeout: self.timeout,
                max_bytes: self.max_bytes,
                addresses: self.addresses,
            })
            .await
            .map_err(|e| fail(format!("jwks_uri: {e}")))?;
        if fetched.status != 200 {
            return Err(fail(format!("jwks_uri answered {}", fetched.status)));
        }
        let document: Value =
            serde_json::from_slice(&fetched.body).map_err(|_| fail("jwks_uri: not JSON"))?;
        check_jwks(&document)
    }
}
