//! The key set: parsed once per fetch into verification keys indexed by `kid`, refreshed in
//! the background, and kept through an outage of the identity provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::fetch;

/// Largest key-set document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// First retry after a failed refresh; doubles up to the floor interval.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// One public key, ready to verify signatures of exactly one algorithm.
pub(crate) struct VerificationKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// A parsed key set. `generation` changes whenever the keys change, so that results
/// cached under an older set are not served after a key was withdrawn.
pub(crate) struct KeySet {
    keys: HashMap<String, Vec<VerificationKey>>,
    fingerprint: [u8; 32],
    pub generation: u64,
    /// Whether this set came from the provider (or was given), rather than the empty set
    /// a verifier starts with when it may start without keys.
    pub loaded: bool,
}

impl KeySet {
    pub fn empty() -> Self {
        KeySet {
            keys: HashMap::new(),
            fingerprint: [0; 32],
            generation: 0,
            loaded: false,
        }
    }

    /// The key named `kid` for exactly `alg` (RFC 7515 §4.1.4; RFC 8725 §3.1: the key's type
    /// must match the algorithm, so an RSA key is never used for an HMAC check).
    pub fn find(&self, kid: &str, alg: Algorithm) -> Option<&DecodingKey> {
        self.keys.get(kid)?.iter().find(|k| k.alg == alg).map(|k| &k.key)
    }

    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    /// Parses a JWKS document, keeping only signature keys of `allowed` algorithms. Keys
    /// that do not parse, have no `kid`, or are symmetric are skipped (and logged), so one
    /// odd key does not take the whole set down.
    pub fn parse(body: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
        let mut keys: HashMap<String, Vec<VerificationKey>> = HashMap::new();
        let mut accepted: Vec<&serde_json::Value> = Vec::new();
        for value in &document.keys {
            let jwk: Jwk = match serde_json::from_value(value.clone()) {
                Ok(jwk) => jwk,
                Err(err) => {
                    tracing::debug!(error = %err, "skipping a JWK that does not parse");
                    continue;
                }
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                tracing::debug!("skipping a JWK without kid");
                continue;
            };
            let Some(alg) = usable_algorithm(&jwk) else {
                tracing::debug!(
                    kid,
                    "skipping a JWK that is not a signature key of a supported type"
                );
                continue;
            };
            if !allowed.contains(&alg) {
                continue;
            }
            let key = match DecodingKey::from_jwk(&jwk) {
                Ok(key) => key,
                Err(err) => {
                    tracing::warn!(kid, error = %err, "skipping an unusable JWK");
                    continue;
                }
            };
            keys.entry(kid).or_default().push(VerificationKey { alg, key });
            accepted.push(value);
        }
        if keys.is_empty() {
            return Err("the key set holds no usable signature key".to_owned());
        }
        // serde_json's map is ordered, so the same keys always serialise the same way.
        let canonical = serde_json::to_vec(&accepted).map_err(|e| e.to_string())?;
        Ok(KeySet {
            keys,
            fingerprint: crate::sha256(&canonical),
            generation: 0,
            loaded: true,
        })
    }
}

/// The one algorithm a JWK may verify: from its key type and curve, and its `alg` when it
/// names one (which must agree). `use` must be `sig` and `key_ops` must allow `verify` when
/// present. Symmetric (`oct`) keys are never usable.
fn usable_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Some(by_type),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Some(by_type),
        Some(KeyAlgorithm::EdDSA) if by_type == Algorithm::EdDSA => Some(by_type),
        Some(_) => None,
    }
}

/// Where keys come from.
pub(crate) enum Source {
    Remote(url::Url),
    Static,
}

/// Refresh bookkeeping, for scheduling and for [`crate::Status`].
#[derive(Default)]
struct Health {
    last_success: Option<Instant>,
    last_error: Option<String>,
    failures: u64,
    fetches: u64,
    retry: Option<Duration>,
}

/// The cached key set and how it is refreshed.
pub(crate) struct Jwks {
    source: Source,
    allowed: Vec<Algorithm>,
    floor: Duration,
    ceiling: Duration,
    current: RwLock<Arc<KeySet>>,
    health: Mutex<Health>,
    /// When a key id was last looked up at the provider because a token named one we did
    /// not know. Also serialises such look-ups (one fetch serves every waiting request).
    on_demand: tokio::sync::Mutex<Option<Instant>>,
    created: Instant,
}

/// What a refresh tells the scheduler.
pub(crate) struct Refreshed {
    pub next: Duration,
}

impl Jwks {
    pub fn new(source: Source, allowed: Vec<Algorithm>, floor: Duration, ceiling: Duration) -> Self {
        Jwks {
            source,
            allowed,
            floor,
            ceiling: ceiling.max(floor),
            current: RwLock::new(Arc::new(KeySet::empty())),
            health: Mutex::new(Health::default()),
            on_demand: tokio::sync::Mutex::new(None),
            created: Instant::now(),
        }
    }

    pub fn allowed(&self) -> &[Algorithm] {
        &self.allowed
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Installs a parsed set; the generation moves on only if the keys changed.
    pub fn install(&self, mut set: KeySet) {
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.loaded && guard.fingerprint == set.fingerprint {
            set.generation = guard.generation;
        } else {
            set.generation = guard.generation.wrapping_add(1);
            tracing::info!(keys = set.len(), generation = set.generation, "key set installed");
        }
        *guard = Arc::new(set);
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fetches the key set once. On failure the current keys stay in place.
    pub async fn refresh(&self, http: &reqwest::Client) -> Result<Refreshed, String> {
        let Source::Remote(url) = &self.source else {
            return Ok(Refreshed { next: self.ceiling });
        };
        self.health().fetches += 1;
        match self.fetch(http, url).await {
            Ok((set, max_age)) => {
                self.install(set);
                let mut health = self.health();
                if health.last_error.is_some() {
                    tracing::info!("key set refreshed again after failures");
                }
                health.last_success = Some(Instant::now());
                health.last_error = None;
                health.retry = None;
                // Honour the provider's Cache-Control, within [floor, ceiling].
                let next = max_age.unwrap_or(self.floor).clamp(self.floor, self.ceiling);
                Ok(Refreshed { next })
            }
            Err(err) => {
                let mut health = self.health();
                let first = health.last_error.is_none();
                health.failures += 1;
                health.last_error = Some(err.clone());
                let retry = health
                    .retry
                    .map_or(FIRST_RETRY, |r| r.saturating_mul(2))
                    .min(self.floor);
                health.retry = Some(retry);
                if first {
                    tracing::warn!(error = %err, "key set refresh failed; keeping the last good keys");
                } else {
                    tracing::debug!(error = %err, "key set refresh failed again");
                }
                Err(err)
            }
        }
    }

    /// The delay before the next background attempt after a failure.
    pub fn retry_delay(&self) -> Duration {
        self.health().retry.unwrap_or(FIRST_RETRY)
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        url: &url::Url,
    ) -> Result<(KeySet, Option<Duration>), String> {
        let response = http
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| fetch::describe(&e))?;
        if !response.status().is_success() {
            return Err(format!("key set answered HTTP {}", response.status().as_u16()));
        }
        let max_age = fetch::max_age(response.headers());
        let body = fetch::read_limited(response, MAX_JWKS_BYTES).await?;
        let set = KeySet::parse(&body, &self.allowed)?;
        Ok((set, max_age))
    }

    /// A token names a `kid` we do not know: perhaps the provider rotated. Refresh at most
    /// once per floor interval, whatever the number of such tokens (forged tokens with
    /// random kids must not turn into traffic to the provider). Concurrent callers wait for
    /// the one fetch. Returns the key set to retry with, or `None` if no fetch was allowed.
    pub async fn refresh_for_unknown_kid(&self, http: &reqwest::Client) -> Option<Arc<KeySet>> {
        if !matches!(self.source, Source::Remote(_)) {
            return None;
        }
        let generation_before = self.current().generation;
        let mut last = self.on_demand.lock().await;
        if let Some(at) = *last {
            if at.elapsed() < self.floor {
                // Another request may just have fetched while we waited: use its result.
                let now = self.current();
                return (now.generation != generation_before).then_some(now);
            }
        }
        *last = Some(Instant::now());
        tracing::debug!("unknown kid: refreshing the key set");
        let _ = self.refresh(http).await;
        Some(self.current())
    }

    /// Age of the key set, the last error, failures and fetches (for [`crate::Status`]).
    pub fn report(&self) -> (Option<Duration>, Option<String>, u64, u64) {
        let health = self.health();
        let age = match self.source {
            Source::Static => Some(self.created.elapsed()),
            Source::Remote(_) => health.last_success.map(|at| at.elapsed()),
        };
        (age, health.last_error.clone(), health.failures, health.fetches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

    fn ec(kid: &str) -> serde_json::Value {
        json!({"kty":"EC","crv":"P-256","kid":kid,"use":"sig","alg":"ES256",
               "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    #[test]
    fn keeps_signature_keys_of_allowed_algorithms_only() {
        let body = json!({"keys": [
            ec("good"),
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"mislabelled","alg":"RS256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"XYZ","kid":"odd"},
            {"kty":"EC","crv":"P-256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]});
        let set = KeySet::parse(body.to_string().as_bytes(), &ALL).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.find("good", Algorithm::ES256).is_some());
        assert!(set.find("good", Algorithm::RS256).is_none());
        assert!(set.find("good", Algorithm::HS256).is_none());
        assert!(set.find("hmac", Algorithm::HS256).is_none());
        assert!(KeySet::parse(body.to_string().as_bytes(), &[Algorithm::RS256]).is_err());
        assert!(KeySet::parse(b"{\"keys\":[]}", &ALL).is_err());
        assert!(KeySet::parse(b"nope", &ALL).is_err());
    }

    #[test]
    fn generation_moves_only_when_keys_change() {
        let jwks = Jwks::new(
            Source::Static,
            ALL.to_vec(),
            Duration::from_secs(60),
            Duration::from_secs(3600),
        );
        let one = json!({"keys": [ec("a")]}).to_string();
        let two = json!({"keys": [ec("b")]}).to_string();
        jwks.install(KeySet::parse(one.as_bytes(), &ALL).unwrap());
        let first = jwks.current().generation;
        jwks.install(KeySet::parse(one.as_bytes(), &ALL).unwrap());
        assert_eq!(jwks.current().generation, first);
        jwks.install(KeySet::parse(two.as_bytes(), &ALL).unwrap());
        assert_ne!(jwks.current().generation, first);
    }
}
