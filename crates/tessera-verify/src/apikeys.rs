//! [`ApiKeys`]: Tessera's partner API keys (`X-API-Key: tsk_…`, R27), checked **once** at
//! the provider and then answered from memory.
//!
//! - The first use of a key asks the provider's check endpoint (`{issuer}/oauth2/api-keys/check`,
//!   as a confidential client with HTTP Basic). An active answer is cached until the key's
//!   expiry; after `cache_ttl` it is checked again **in the background** while the cached
//!   answer keeps being served — so a provider outage changes nothing for keys already
//!   seen, and a change the feed does not carry (the owner disabled, a role taken away)
//!   arrives within `cache_ttl`.
//! - Revocations arrive through the [`Verifier`]'s revocation feed (kind `api_key`, by key id)
//!   and are checked on every request: a revoked key is refused within the poll interval.
//! - An unknown key while the provider is unreachable cannot be judged:
//!   [`VerifyError::Unavailable`] (HTTP 503). Refused keys are remembered briefly so that
//!   garbage does not turn into traffic to the provider; at most one check per key runs at a
//!   time.
//! - The key's allow-list of addresses is enforced on every request.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use serde::Deserialize;
use serde_json::Value;

use crate::claims::Claims;
use crate::denylist::DenyList;
use crate::error::{BuildError, VerifyError};
use crate::fetch;
use crate::Verifier;

/// `tsk_` + key id (22) + `_` + secret (43).
const PREFIX: &str = "tsk_";
const ID_LEN: usize = 22;
const KEY_LEN: usize = PREFIX.len() + ID_LEN + 1 + 43;
const CHECK_PATH: &str = "/oauth2/api-keys/check";
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Concurrent checks of distinct keys (one per stripe; a key always maps to one stripe).
const STRIPES: usize = 16;

/// Configures [`ApiKeys`]; finish with [`ApiKeysBuilder::build`] on a [`Verifier`].
pub struct ApiKeysBuilder {
    client_id: String,
    client_secret: String,
    check_url: Option<String>,
    cache_ttl: Duration,
    capacity: usize,
    negative_ttl: Duration,
    timeout: Duration,
    cool_down: Duration,
    http: Option<reqwest::Client>,
}

impl ApiKeysBuilder {
    /// The check endpoint (default `{issuer}/oauth2/api-keys/check`).
    pub fn check_url(mut self, url: impl Into<String>) -> Self {
        self.check_url = Some(url.into());
        self
    }

    /// How long an answer is served before it is checked again in the background
    /// (default 300 s). Never past the key's expiry. Revocations do not wait for it.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Keys remembered at most (default 10 000).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How long a refused key is refused without asking again (default 30 s).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Timeout of one check (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// After a failed check, unknown keys fail at once for this long (default 1 s).
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// Your own HTTP client (its timeouts apply too).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds on `verifier`, whose revocation feed carries the revoked keys.
    pub fn build(self, verifier: &Verifier) -> Result<ApiKeys, BuildError> {
        let url = match &self.check_url {
            Some(url) => url.clone(),
            None => format!("{}{CHECK_PATH}", verifier.issuer().trim_end_matches('/')),
        };
        let url = fetch::parse_url(&url)?;
        if self.client_id.is_empty() || self.client_id.contains(':') {
            return Err(BuildError::Config(
                "a client id without `:` is required".to_owned(),
            ));
        }
        if self.capacity == 0 {
            return Err(BuildError::Config(
                "the API-key cache needs a capacity".to_owned(),
            ));
        }
        let http = match self.http {
            Some(client) => client,
            None => fetch::client(self.timeout).map_err(BuildError::Http)?,
        };
        Ok(ApiKeys {
            inner: Arc::new(Inner {
                url,
                client_id: self.client_id,
                client_secret: self.client_secret,
                deny: verifier.deny_list(),
                cache: Cache::new(self.capacity),
                refused: Cache::new(self.capacity),
                stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
                ttl: self.cache_ttl,
                negative_ttl: self.negative_ttl,
                timeout: self.timeout,
                cool_down: self.cool_down,
                last_failure: Mutex::new(None),
                http,
            }),
        })
    }
}

/// Verifies partner API keys. Cheap to clone (shared state).
#[derive(Clone)]
pub struct ApiKeys {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("check_url", &self.inner.url.as_str())
            .finish_non_exhaustive()
    }
}

struct Inner {
    url: url::Url,
    client_id: String,
    client_secret: String,
    deny: Arc<DenyList>,
    cache: Cache<[u8; 32], Arc<Cached>>,
    refused: Cache<[u8; 32], Instant>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    ttl: Duration,
    negative_ttl: Duration,
    timeout: Duration,
    cool_down: Duration,
    last_failure: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

/// An active answer.
struct Cached {
    claims: Claims,
    networks: Vec<Network>,
    /// When to check again (in the background).
    refresh_at: Instant,
    refreshing: AtomicBool,
}

/// An address or a CIDR range of a key's allow-list.
#[derive(Debug, Clone, Copy)]
struct Network {
    addr: IpAddr,
    bits: u8,
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Network {
    fn parse(text: &str) -> Option<Network> {
        let (addr, bits) = match text.trim().split_once('/') {
            Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let addr = unmapped(addr.parse().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Network { addr, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let shift = |max: u32| max - u32::from(self.bits);
        match (self.addr, unmapped(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(shift(32)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(shift(128)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
    key_id: Option<String>,
    sub: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    allowed_ips: Vec<String>,
    exp: Option<i64>,
    iat: Option<i64>,
}

/// Whether `key` has the shape of a Tessera API key (nothing else is ever sent anywhere).
pub fn looks_like_api_key(key: &str) -> bool {
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    key.len() == KEY_LEN
        && key.starts_with(PREFIX)
        && key.as_bytes().get(PREFIX.len() + ID_LEN) == Some(&b'_')
        && key.bytes().skip(PREFIX.len()).all(base64url)
}

impl ApiKeys {
    /// Starts configuring API-key verification as the confidential client `client_id`.
    pub fn builder(client_id: impl Into<String>, client_secret: impl Into<String>) -> ApiKeysBuilder {
        ApiKeysBuilder {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            check_url: None,
            cache_ttl: Duration::from_secs(300),
            capacity: 10_000,
            negative_ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
            cool_down: Duration::from_secs(1),
            http: None,
        }
    }

    /// Verifies `key` presented from `client_ip` (needed when the key has an allow-list).
    /// The claims are the key owner's: `subject` (the user or client id), `client_id` (the
    /// client, for a client's key; empty for a user's), `scopes`, `permissions`, no roles,
    /// no session, `jti` and `api_key_id` = the key id, `expires_at` = the key's expiry.
    pub async fn verify(&self, key: &str, client_ip: Option<IpAddr>) -> Result<Claims, VerifyError> {
        let inner = &self.inner;
        if !looks_like_api_key(key) {
            return Err(VerifyError::Malformed);
        }
        // The key id is in the key: a revoked key is refused before anything else, cached
        // or not, provider up or down.
        let key_id = &key[PREFIX.len()..PREFIX.len() + ID_LEN];
        if inner.deny.is_key_revoked(key_id) {
            return Err(VerifyError::Revoked);
        }
        let digest = crate::token_digest(key);
        let cached = match inner.cache.get(&digest) {
            Some(cached) => cached,
            None => inner.first_check(key, digest).await?,
        };
        // An expired key's entry stays (until evicted), so that it keeps being refused as
        // expired through an outage rather than as unknown.
        if crate::unix_now() >= cached.claims.expires_at {
            return Err(VerifyError::Expired);
        }
        if cached.claims.jti != key_id {
            return Err(VerifyError::Inactive);
        }
        if !cached.networks.is_empty()
            && !client_ip.is_some_and(|ip| cached.networks.iter().any(|n| n.contains(ip)))
        {
            return Err(VerifyError::AddressNotAllowed);
        }
        if Instant::now() >= cached.refresh_at && !cached.refreshing.swap(true, Ordering::AcqRel) {
            let inner = self.inner.clone();
            let key = key.to_owned();
            tokio::spawn(async move { inner.refresh(&key, digest).await });
        }
        Ok(cached.claims.clone())
    }

    /// Keys currently cached.
    pub fn cached(&self) -> usize {
        self.inner.cache.len()
    }
}

impl Inner {
    /// The first use of a key (or one evicted): one check at a time per key.
    async fn first_check(&self, key: &str, digest: [u8; 32]) -> Result<Arc<Cached>, VerifyError> {
        let stripe = &self.stripes[usize::from(digest[0]) % STRIPES];
        let _turn = stripe.lock().await;
        // Another request may have checked it meanwhile.
        if let Some(cached) = self.cache.get(&digest) {
            return Ok(cached);
        }
        if self
            .refused
            .get(&digest)
            .is_some_and(|until| Instant::now() < until)
        {
            return Err(VerifyError::Inactive);
        }
        let recently_failed = self
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < self.cool_down);
        if recently_failed {
            return Err(VerifyError::Unavailable(
                "the API-key check endpoint failed just now".to_owned(),
            ));
        }
        match self.ask(key).await {
            Ok(Some(cached)) => {
                let cached = Arc::new(cached);
                self.cache.insert(digest, cached.clone());
                Ok(cached)
            }
            Ok(None) => {
                self.refused.insert(digest, Instant::now() + self.negative_ttl);
                Err(VerifyError::Inactive)
            }
            Err(err) => {
                *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                Err(VerifyError::Unavailable(err))
            }
        }
    }

    /// A background re-check: a definite answer replaces (or drops) the entry; a failure
    /// keeps serving it and tries again after a short while.
    async fn refresh(&self, key: &str, digest: [u8; 32]) {
        match self.ask(key).await {
            Ok(Some(fresh)) => self.cache.insert(digest, Arc::new(fresh)),
            Ok(None) => {
                self.cache.remove(&digest);
                self.refused.insert(digest, Instant::now() + self.negative_ttl);
            }
            Err(err) => {
                tracing::debug!(error = %err, "API-key re-check failed; serving the cached answer");
                if let Some(cached) = self.cache.get(&digest) {
                    let retry = Cached {
                        claims: cached.claims.clone(),
                        networks: cached.networks.clone(),
                        refresh_at: Instant::now() + self.ttl.min(Duration::from_secs(30)),
                        refreshing: AtomicBool::new(false),
                    };
                    self.cache.insert(digest, Arc::new(retry));
                }
            }
        }
    }

    /// One call to the check endpoint: `Ok(None)` for an inactive key.
    async fn ask(&self, key: &str) -> Result<Option<Cached>, String> {
        let response = self
            .http
            .post(self.url.clone())
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(&self.client_secret)),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("key", key)])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| fetch::describe(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the API-key check endpoint answered HTTP {}",
                status.as_u16()
            ));
        }
        let body = fetch::read_limited(response, MAX_ANSWER_BYTES).await?;
        let raw: Value = serde_json::from_slice(&body).map_err(|e| format!("not an API-key answer: {e}"))?;
        let answer: Answer =
            serde_json::from_value(raw.clone()).map_err(|e| format!("not an API-key answer: {e}"))?;
        if !answer.active {
            return Ok(None);
        }
        let (Some(key_id), Some(subject), Some(exp)) = (answer.key_id, answer.sub, answer.exp) else {
            return Err("an active API-key answer without key_id, sub or exp".to_owned());
        };
        let networks = answer
            .allowed_ips
            .iter()
            .map(|text| Network::parse(text).ok_or_else(|| format!("allowed_ips entry {text:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let ttl_end = crate::unix_now().saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        let refresh_in = if ttl_end > exp {
            // Never needed: the key expires first.
            Duration::from_secs(u64::try_from(exp.saturating_sub(crate::unix_now())).unwrap_or(0))
        } else {
            self.ttl
        };
        Ok(Some(Cached {
            claims: Claims {
                subject,
                client_id: answer.client_id.unwrap_or_default(),
                scopes: answer.scope.split_ascii_whitespace().map(str::to_owned).collect(),
                roles: Vec::new(),
                permissions: answer.permissions,
                session_id: None,
                jti: key_id.clone(),
                expires_at: exp,
                issued_at: answer.iat.unwrap_or(0),
                acr: None,
                amr: Vec::new(),
                auth_time: None,
                api_key_id: Some(key_id),
                dpop_jkt: None,
                raw,
            },
            networks,
            refresh_at: Instant::now() + refresh_in,
            refreshing: AtomicBool::new(false),
        }))
    }
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_addresses_and_ranges() {
        let office = Network::parse("10.0.0.0/8").unwrap();
        assert!(office.contains("10.9.8.7".parse().unwrap()));
        assert!(office.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!office.contains("11.0.0.1".parse().unwrap()));
        assert!(!office.contains("2001:db8::1".parse().unwrap()));
        let one = Network::parse("203.0.113.9").unwrap();
        assert!(one.contains("203.0.113.9".parse().unwrap()));
        assert!(!one.contains("203.0.113.10".parse().unwrap()));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(Network::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_the_shape_of_a_key_is_ever_checked() {
        let key = format!("tsk_{}_{}", "a".repeat(22), "b".repeat(43));
        assert!(looks_like_api_key(&key));
        assert!(!looks_like_api_key(&key.replacen("tsk_", "tsr_", 1)));
        assert!(!looks_like_api_key(&key[1..]));
        assert!(!looks_like_api_key(&format!("{key}b")));
        assert!(!looks_like_api_key(&key.replacen("a_b", "aab", 1)));
        assert!(!looks_like_api_key(&key.replacen('b', ".", 1)));
    }
}
