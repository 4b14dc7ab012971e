//! [`Introspector`]: RFC 7662 token introspection for opaque tokens, with a timeout,
//! retries with exponential backoff, a circuit breaker and a short positive cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use serde_json::Value;

use crate::claims::{self, Claims};
use crate::error::BuildError;
use crate::fetch;

/// Largest introspection answer accepted.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why introspection gave no answer (the token's own state is never an error: an inactive
/// token is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectError {
    /// The circuit breaker is open after repeated failures: no request was made.
    #[error("circuit open: the introspection endpoint failed repeatedly")]
    CircuitOpen,
    /// Every attempt failed (connection, timeout, 5xx, unreadable answer).
    #[error("introspection failed: {0}")]
    Failed(String),
    /// The endpoint refused our request (wrong client credentials, 4xx): a configuration
    /// problem, not retried and not counted by the breaker.
    #[error("introspection refused with HTTP {0}")]
    Refused(u16),
}

/// Closed → (N consecutive failures) → open for the cool-down → half-open: one trial call;
/// its success closes the breaker, its failure opens it again.
#[derive(Debug)]
enum Breaker {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A trial call is in flight since then (if it was abandoned, another is let through
    /// after a cool-down).
    HalfOpen {
        since: Instant,
    },
}

struct CachedAnswer {
    claims: Claims,
    until: Instant,
}

/// Asks the provider whether an opaque token is active (RFC 7662), as a confidential
/// client with HTTP Basic authentication. Configure with the chained setters, then share
/// it (`Arc<Introspector>`).
pub struct Introspector {
    url: url::Url,
    client_id: String,
    client_secret: String,
    audience: Option<String>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    failure_threshold: u32,
    cool_down: Duration,
    cache_ttl: Duration,
    cache: Option<Cache<[u8; 32], Arc<CachedAnswer>>>,
    http: reqwest::Client,
    breaker: Mutex<Breaker>,
    requests: AtomicU64,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("url", &self.url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// An introspector for `introspection_url`, authenticating as `client_id` with
    /// `client_secret`. Defaults: timeout 2 s, 2 retries starting at 100 ms backoff, the
    /// breaker opens after 5 consecutive failed calls for 30 s, answers are cached 30 s
    /// (never past the token's `exp`) in up to 10 000 entries.
    pub fn new(
        introspection_url: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, BuildError> {
        Ok(Introspector {
            url: fetch::parse_url(introspection_url)?,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            audience: None,
            timeout: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(100),
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(30),
            cache: Some(Cache::new(10_000)),
            http: fetch::client(Duration::from_secs(60)).map_err(BuildError::Http)?,
            breaker: Mutex::new(Breaker::Closed { failures: 0 }),
            requests: AtomicU64::new(0),
        })
    }

    /// Timeout of each attempt (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a failed attempt (default 2), waiting `backoff`, then twice that, …
    /// (default 100 ms), with jitter.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Opens the breaker after `failures` consecutive failed calls (default 5), for
    /// `cool_down` (default 30 s); while open, calls fail at once with
    /// [`IntrospectError::CircuitOpen`].
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.failure_threshold = failures.max(1);
        self.cool_down = cool_down;
        self
    }

    /// How long an active answer is reused (default 30 s; never past the token's `exp`;
    /// zero turns the cache off). A revocation may go unseen for this long.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        if ttl.is_zero() {
            self.cache = None;
        }
        self
    }

    /// Entries of the answer cache (default 10 000; 0 turns it off).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0 && !self.cache_ttl.is_zero()).then(|| Cache::new(capacity));
        self
    }

    /// Requires this audience among the answer's `aud`, when the answer has one.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Uses this HTTP client instead of the default one ([`Introspector::timeout`] still
    /// applies to each request).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = client;
        self
    }

    /// HTTP requests made so far (attempts, retries included).
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Whether the breaker is open now.
    pub fn circuit_open(&self) -> bool {
        matches!(*self.breaker(), Breaker::Open { until } if until > Instant::now())
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The claims of an active access token, `None` for an inactive one (or one that is not
    /// an access token, or not for our audience). Active answers are cached briefly.
    pub async fn introspect(&self, token: &str) -> Result<Option<Claims>, IntrospectError> {
        let key = crate::token_digest(token);
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(&key) {
                if Instant::now() < hit.until && crate::unix_now() < hit.claims.expires_at {
                    return Ok(Some(hit.claims.clone()));
                }
                cache.remove(&key);
            }
        }
        let answer = self.introspect_uncached(token).await?;
        if let (Some(cache), Some(claims)) = (&self.cache, &answer) {
            let left = claims.expires_at.saturating_sub(crate::unix_now());
            let left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
            let ttl = self.cache_ttl.min(left);
            if !ttl.is_zero() {
                cache.insert(
                    key,
                    Arc::new(CachedAnswer {
                        claims: claims.clone(),
                        until: Instant::now() + ttl,
                    }),
                );
            }
        }
        Ok(answer)
    }

    /// [`Introspector::introspect`] without the cache (critical routes).
    pub async fn introspect_uncached(&self, token: &str) -> Result<Option<Claims>, IntrospectError> {
        self.admit()?;
        let mut delay = self.backoff;
        let mut attempt = 0;
        let result = loop {
            match self.attempt(token).await {
                Ok(answer) => break Ok(answer),
                Err(err @ IntrospectError::Refused(_)) => {
                    // The endpoint is up and answering: not a reason to open the breaker.
                    self.record(true);
                    return Err(err);
                }
                Err(err) if attempt >= self.retries => break Err(err),
                Err(err) => {
                    tracing::debug!(error = %err, attempt, "introspection attempt failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(jitter(delay)).await;
                    delay = delay.saturating_mul(2);
                }
            }
        };
        self.record(result.is_ok());
        let answer = result?;
        Ok(answer.and_then(|raw| self.claims_of(raw)))
    }

    /// Lets a call through, or fails fast while the breaker is open.
    fn admit(&self) -> Result<(), IntrospectError> {
        let mut breaker = self.breaker();
        match *breaker {
            Breaker::Closed { .. } => Ok(()),
            Breaker::Open { until } if Instant::now() >= until => {
                *breaker = Breaker::HalfOpen {
                    since: Instant::now(),
                };
                Ok(())
            }
            Breaker::HalfOpen { since } if since.elapsed() >= self.cool_down => {
                *breaker = Breaker::HalfOpen {
                    since: Instant::now(),
                };
                Ok(())
            }
            // Open, or half-open with the trial call in flight.
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => Err(IntrospectError::CircuitOpen),
        }
    }

    fn record(&self, success: bool) {
        let mut breaker = self.breaker();
        if success {
            if !matches!(*breaker, Breaker::Closed { .. }) {
                tracing::info!("introspection endpoint answering again; circuit closed");
            }
            *breaker = Breaker::Closed { failures: 0 };
            return;
        }
        let failures = match *breaker {
            Breaker::Closed { failures } => failures + 1,
            Breaker::HalfOpen { .. } | Breaker::Open { .. } => self.failure_threshold,
        };
        if failures >= self.failure_threshold {
            tracing::warn!(
                cool_down_secs = self.cool_down.as_secs(),
                "introspection endpoint failing; circuit open"
            );
            *breaker = Breaker::Open {
                until: Instant::now() + self.cool_down,
            };
        } else {
            *breaker = Breaker::Closed { failures };
        }
    }

    /// One request. `Ok(None)` for an inactive token; `Ok(Some(raw))` for an active one.
    async fn attempt(&self, token: &str) -> Result<Option<Value>, IntrospectError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let id: String = url::form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
        let secret: String = url::form_urlencoded::byte_serialize(self.client_secret.as_bytes()).collect();
        let response = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .basic_auth(id, Some(secret))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| IntrospectError::Failed(fetch::describe(&e)))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(IntrospectError::Failed(format!("HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            return Err(IntrospectError::Refused(status.as_u16()));
        }
        let body = fetch::read_limited(response, MAX_ANSWER_BYTES)
            .await
            .map_err(IntrospectError::Failed)?;
        let raw: Value = serde_json::from_slice(&body)
            .map_err(|e| IntrospectError::Failed(format!("not an introspection answer: {e}")))?;
        match raw.get("active") {
            Some(Value::Bool(true)) => Ok(Some(raw)),
            Some(Value::Bool(false)) => Ok(None),
            _ => Err(IntrospectError::Failed(
                "the answer has no boolean `active`".to_owned(),
            )),
        }
    }

    /// The claims of an active answer, or `None` when it is not a usable access token.
    fn claims_of(&self, raw: Value) -> Option<Claims> {
        // A refresh token is active too (for its own client), but it is not a bearer
        // credential for an API.
        if let Some(kind) = raw.get("token_type").and_then(Value::as_str) {
            let access = kind.eq_ignore_ascii_case("bearer") || kind.eq_ignore_ascii_case("access_token");
            if !access {
                tracing::debug!(token_type = kind, "introspected token is not an access token");
                return None;
            }
        }
        let expires_at = claims::numeric_date(raw.get("exp")).unwrap_or(i64::MAX);
        if expires_at <= crate::unix_now() {
            return None;
        }
        if let Some(audience) = &self.audience {
            if raw.get("aud").is_some() {
                let ok = claims::audiences(&raw).is_ok_and(|auds| auds.iter().any(|a| a == audience));
                if !ok {
                    tracing::debug!("introspected token is for another audience");
                    return None;
                }
            }
        }
        let text = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        let client_id = text("client_id").unwrap_or_default();
        let subject = text("sub")
            .or_else(|| text("username"))
            .unwrap_or_else(|| client_id.clone());
        Some(Claims {
            subject,
            client_id,
            scopes: claims::scopes(&raw).unwrap_or_default(),
            roles: claims::string_list(&raw, "roles").unwrap_or_default(),
            permissions: claims::string_list(&raw, "permissions").unwrap_or_default(),
            session_id: text("sid"),
            jti: text("jti").unwrap_or_default(),
            expires_at,
            issued_at: claims::numeric_date(raw.get("iat")).unwrap_or(0),
            acr: text("acr"),
            amr: claims::string_list(&raw, "amr").unwrap_or_default(),
            auth_time: claims::numeric_date(raw.get("auth_time")),
            api_key_id: None,
            dpop_jkt: raw
                .get("cnf")
                .and_then(|cnf| cnf.get("jkt"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            raw,
        })
    }
}

/// Between half and all of `delay`, so that many instances do not retry in step.
fn jitter(delay: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let fraction = match aws_lc_rs::rand::fill(&mut byte) {
        Ok(()) => 0.5 + f64::from(byte[0]) / 510.0,
        Err(_) => 0.75,
    };
    delay.mul_f64(fraction)
}
