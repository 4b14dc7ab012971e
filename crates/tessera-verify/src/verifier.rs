//! [`Verifier`]: local verification of RFC 9068 access tokens.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::cache::{self, AuthCache};
use crate::claims::{self, Claims};
use crate::denylist::DenyList;
use crate::dpop::{DpopRequest, ProofError};
use crate::error::{BuildError, VerifyError};
use crate::fetch;
use crate::keys::{Jwks, KeySet, Source};

/// The media type of access tokens (RFC 9068 §2.1), in the `typ` header.
const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The algorithms that may be allowed: asymmetric ones Tessera signs with. HMAC never (a
/// published key is no secret), `none` never (it does not even parse).
const SUPPORTED: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Path of the revocation feed under the issuer.
const FEED_PATH: &str = "/oauth2/revocations";

/// Where the revocation feed is.
enum FeedSetting {
    /// `{issuer}/oauth2/revocations` (none for a static key set).
    Default,
    Url(String),
    Disabled,
}

/// Configures a [`Verifier`]. Every option has a default; only the audience is required.
pub struct VerifierBuilder {
    issuer: String,
    audience: Option<String>,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
    jwks_floor: Duration,
    jwks_ceiling: Duration,
    feed: FeedSetting,
    poll_interval: Duration,
    cache_capacity: usize,
    http_timeout: Duration,
    http_client: Option<reqwest::Client>,
    require_keys: bool,
    dpop_max_age: Duration,
    #[cfg(feature = "redis")]
    redis_url: Option<String>,
}

impl VerifierBuilder {
    /// How old a DPoP proof's `iat` may be (default 60 s; RFC 9449 §11.1). Its `jti` is
    /// remembered this long plus the leeway. Clamped to 1–600 s.
    pub fn dpop_proof_max_age(mut self, max_age: Duration) -> Self {
        self.dpop_max_age = max_age.clamp(Duration::from_secs(1), Duration::from_secs(600));
        self
    }

    /// The audience that every token's `aud` must contain (required; RFC 9068 §4). For
    /// Tessera this is `tokens.audience`, which defaults to the issuer.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The algorithms accepted, a subset of ES256, RS256 and EdDSA (default: all three).
    /// Anything else (HS*, ES384, …) makes the build fail.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Shortest interval between two key-set fetches, whatever `Cache-Control` says, and
    /// the rate limit of fetches caused by unknown `kid`s (default 60 s).
    pub fn jwks_refresh_floor(mut self, floor: Duration) -> Self {
        self.jwks_floor = floor;
        self
    }

    /// Longest interval between two key-set fetches (default 1 h).
    pub fn jwks_refresh_ceiling(mut self, ceiling: Duration) -> Self {
        self.jwks_ceiling = ceiling;
        self
    }

    /// The revocation feed to poll (default `{issuer}/oauth2/revocations`; none by default
    /// with a static key set).
    pub fn revocation_feed(mut self, url: impl Into<String>) -> Self {
        self.feed = FeedSetting::Url(url.into());
        self
    }

    /// Polls no revocation feed (for a provider that has none). Revoked tokens are then
    /// accepted until they expire.
    pub fn without_revocation_feed(mut self) -> Self {
        self.feed = FeedSetting::Disabled;
        self
    }

    /// How often the revocation feed is polled (default 5 s): a revoked session or token is
    /// refused within this interval.
    pub fn revocation_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Entries of the authentication cache (default 10 000; 0 turns the cache off).
    pub fn auth_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Timeout of each request to the provider (default 5 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Uses this HTTP client (proxies, custom roots…) instead of the default one; its own
    /// timeouts apply.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Builds even if the key set cannot be fetched at start (the provider is down while
    /// the service starts). Until keys arrive every verification fails with
    /// [`VerifyError::Unavailable`]. Default: the build fails.
    pub fn start_without_keys(mut self) -> Self {
        self.require_keys = false;
        self
    }

    /// Also subscribes to the Redis channel `tessera:revocations` and applies revocations
    /// the moment they are published (feature `redis`).
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Fetches `{issuer}/.well-known/openid-configuration`, checks that its `issuer` is
    /// exactly the configured one, and takes the key set from its `jwks_uri`.
    pub async fn discover(self) -> Result<Verifier, BuildError> {
        #[derive(Deserialize)]
        struct Metadata {
            issuer: String,
            jwks_uri: String,
        }
        let http = self.http()?;
        // OpenID Connect Discovery §4: a trailing slash is removed before appending.
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let url = fetch::parse_url(&url)?;
        let response = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| BuildError::Discovery(fetch::describe(&e)))?;
        if !response.status().is_success() {
            return Err(BuildError::Discovery(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let body = fetch::read_limited(response, 1024 * 1024)
            .await
            .map_err(BuildError::Discovery)?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| BuildError::Discovery(format!("not a provider metadata document: {e}")))?;
        if metadata.issuer != self.issuer {
            return Err(BuildError::IssuerMismatch {
                expected: self.issuer,
                found: metadata.issuer,
            });
        }
        let jwks_uri = fetch::parse_url(&metadata.jwks_uri)?;
        self.start(Source::Remote(jwks_uri), None, http).await
    }

    /// Takes the key set from `url` (no discovery).
    pub async fn with_jwks_uri(self, url: &str) -> Result<Verifier, BuildError> {
        let url = fetch::parse_url(url)?;
        let http = self.http()?;
        self.start(Source::Remote(url), None, http).await
    }

    /// Uses a fixed key set (never refreshed). No revocation feed is polled unless one is
    /// configured with [`VerifierBuilder::revocation_feed`].
    pub async fn with_static_jwks(self, jwks: JwkSet) -> Result<Verifier, BuildError> {
        let body = serde_json::to_vec(&jwks).map_err(|e| BuildError::Keys(e.to_string()))?;
        let http = self.http()?;
        self.start(Source::Static, Some(body), http).await
    }

    fn http(&self) -> Result<reqwest::Client, BuildError> {
        match &self.http_client {
            Some(client) => Ok(client.clone()),
            None => fetch::client(self.http_timeout).map_err(BuildError::Http),
        }
    }

    async fn start(
        self,
        source: Source,
        static_keys: Option<Vec<u8>>,
        http: reqwest::Client,
    ) -> Result<Verifier, BuildError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BuildError::Config(
                "a Verifier must be built inside a tokio runtime".to_owned(),
            ));
        }
        let audience = self
            .audience
            .clone()
            .ok_or_else(|| BuildError::Config("an audience is required (RFC 9068 §4)".to_owned()))?;
        if self.algorithms.is_empty() {
            return Err(BuildError::Config("no algorithm allowed".to_owned()));
        }
        if let Some(alg) = self.algorithms.iter().find(|a| !SUPPORTED.contains(a)) {
            return Err(BuildError::Config(format!(
                "algorithm {alg:?} cannot be allowed: only ES256, RS256 and EdDSA"
            )));
        }
        if self.jwks_floor.is_zero() || self.poll_interval.is_zero() {
            return Err(BuildError::Config(
                "refresh intervals must be positive".to_owned(),
            ));
        }
        let feed = match &self.feed {
            FeedSetting::Disabled => None,
            FeedSetting::Url(url) => Some(fetch::parse_url(url)?),
            FeedSetting::Default if static_keys.is_some() => None,
            FeedSetting::Default => Some(fetch::parse_url(&format!(
                "{}{FEED_PATH}",
                self.issuer.trim_end_matches('/')
            ))?),
        };
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        let remote = matches!(source, Source::Remote(_));
        let jwks = Jwks::new(
            source,
            self.algorithms.clone(),
            self.jwks_floor,
            self.jwks_ceiling,
        );
        let first_refresh = match static_keys {
            Some(body) => {
                let set = KeySet::parse(&body, &self.algorithms).map_err(BuildError::Keys)?;
                jwks.install(set);
                None
            }
            None => Some(match jwks.refresh(&http).await {
                Ok(refreshed) => refreshed.next,
                Err(err) if self.require_keys => return Err(BuildError::Keys(err)),
                Err(_) => jwks.retry_delay(),
            }),
        };
        let deny = Arc::new(DenyList::new(feed, leeway));
        if deny.has_feed() {
            // A failure is logged inside; the poller keeps trying.
            let _ = deny.poll(&http).await;
        }
        let inner = Arc::new(Inner {
            issuer: self.issuer,
            audience,
            leeway,
            jwks,
            deny,
            cache: (self.cache_capacity > 0).then(|| AuthCache::new(self.cache_capacity)),
            http,
            dpop_max_age: i64::try_from(self.dpop_max_age.as_secs()).unwrap_or(60),
            replays: crate::dpop::ReplayCache::new(crate::dpop::DEFAULT_REPLAY_CAPACITY),
        });
        let mut tasks = Vec::new();
        if let (true, Some(delay)) = (remote, first_refresh) {
            tasks.push(tokio::spawn(refresh_keys(Arc::downgrade(&inner), delay)));
        }
        if inner.deny.has_feed() {
            tasks.push(tokio::spawn(poll_feed(
                Arc::downgrade(&inner),
                self.poll_interval,
            )));
        }
        #[cfg(feature = "redis")]
        if let Some(url) = self.redis_url {
            tasks.push(tokio::spawn(crate::denylist::subscribe_redis(
                url,
                Arc::downgrade(&inner.deny),
            )));
        }
        Ok(Verifier { inner, tasks })
    }
}

/// Verifies access tokens locally. Build one per (issuer, audience) at start, share it
/// (`Arc<Verifier>`), and drop it to stop its background tasks.
pub struct Verifier {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

struct Inner {
    issuer: String,
    audience: String,
    leeway: i64,
    jwks: Jwks,
    deny: Arc<DenyList>,
    cache: Option<AuthCache>,
    http: reqwest::Client,
    dpop_max_age: i64,
    /// DPoP proofs accepted recently (their `jti` is good once).
    replays: crate::dpop::ReplayCache,
}

impl Drop for Verifier {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

/// Health of a [`Verifier`], for readiness checks and metrics.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// Whether a key set was ever loaded.
    pub keys_loaded: bool,
    /// Keys in the current set.
    pub key_count: usize,
    /// Time since the key set was last fetched successfully (since the build for a static
    /// set); `None` if never.
    pub keys_age: Option<Duration>,
    /// The error of the latest refresh, if it failed (cleared by the next success).
    pub keys_last_error: Option<String>,
    /// Failed key-set refreshes since the start.
    pub keys_refresh_failures: u64,
    /// Key-set fetches attempted since the start.
    pub keys_fetches: u64,
    /// Whether a revocation feed is polled.
    pub deny_list_enabled: bool,
    /// Time since the feed was last polled successfully; `None` if never.
    pub deny_list_age: Option<Duration>,
    /// Revoked sessions and tokens currently held.
    pub deny_list_entries: usize,
    /// The error of the latest poll, if it failed.
    pub deny_list_last_error: Option<String>,
    /// Failed polls since the start.
    pub deny_list_poll_failures: u64,
    /// Whether the Redis revocation channel is subscribed (feature `redis`).
    pub revocation_channel_connected: bool,
    /// Entries in the authentication cache.
    pub cache_entries: usize,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl Status {
    /// Whether keys are loaded and both the key set and (when enabled) the deny-list were
    /// refreshed within `max_age`. A readiness probe can use this; note that verification
    /// itself goes on with stale data, by design.
    pub fn is_fresh(&self, max_age: Duration) -> bool {
        let keys = self.keys_loaded && self.keys_age.is_some_and(|age| age <= max_age);
        let deny = !self.deny_list_enabled || self.deny_list_age.is_some_and(|age| age <= max_age);
        keys && deny
    }
}

impl Verifier {
    /// Starts configuring a verifier for tokens whose `iss` is exactly `issuer`.
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audience: None,
            leeway: Duration::from_secs(30),
            algorithms: SUPPORTED.to_vec(),
            jwks_floor: Duration::from_secs(60),
            jwks_ceiling: Duration::from_secs(3600),
            feed: FeedSetting::Default,
            poll_interval: Duration::from_secs(5),
            cache_capacity: 10_000,
            http_timeout: Duration::from_secs(5),
            http_client: None,
            require_keys: true,
            dpop_max_age: crate::dpop::DEFAULT_MAX_AGE,
            #[cfg(feature = "redis")]
            redis_url: None,
        }
    }

    /// The issuer this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audience this verifier requires.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// Verifies `token`, presented as a Bearer token, answering from the authentication
    /// cache when it can. A DPoP-bound token is refused ([`VerifyError::DpopBound`]): it
    /// needs [`Verifier::verify_dpop`].
    ///
    /// A cached result is served only while the token has not expired (`exp`, without
    /// leeway), only under the key set it was verified with, and only after the deny-list
    /// has been checked again, so a revocation is never hidden by the cache.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        bearer_only(self.verify_cached(token).await?)
    }

    /// Verifies `token` presented with the `DPoP` scheme (RFC 9449 §7): the token as
    /// [`Verifier::verify`] does (through the cache unless `fresh`), then — on every call —
    /// that it is bound (`cnf.jkt`), that the request's proof is one of §4.3 for this
    /// `request` (method, URI, `ath` of this token, `iat` within the window, an allowed
    /// asymmetric algorithm, a public `jwk`), that its key is the bound one, and that its
    /// `jti` was not used before in this process.
    pub async fn verify_dpop(
        &self,
        token: &str,
        request: &DpopRequest<'_>,
        fresh: bool,
    ) -> Result<Claims, VerifyError> {
        let claims = if fresh {
            self.verify_uncached_any(token).await?
        } else {
            self.verify_cached(token).await?
        };
        let bound = claims.dpop_jkt.as_deref().ok_or(VerifyError::NotDpopBound)?;
        let proof = request
            .proof
            .ok_or(VerifyError::DpopProof(ProofError::Malformed))?;
        let now = crate::unix_now();
        let inner = &self.inner;
        let proof = tessera_proto::dpop::verify(
            proof,
            &tessera_proto::dpop::Expectations {
                method: request.method,
                uri: request.uri,
                now,
                max_age_secs: inner.dpop_max_age,
                leeway_secs: inner.leeway,
                access_token: Some(token),
            },
        )
        .map_err(VerifyError::DpopProof)?;
        if proof.jkt != bound {
            return Err(VerifyError::DpopBound);
        }
        let until = proof
            .iat
            .saturating_add(inner.dpop_max_age)
            .saturating_add(inner.leeway)
            .max(now)
            .saturating_add(1);
        if !inner.replays.first_use(proof.replay_key(), until, now) {
            return Err(VerifyError::DpopProof(ProofError::Replayed));
        }
        Ok(claims)
    }

    async fn verify_cached(&self, token: &str) -> Result<Claims, VerifyError> {
        let inner = &self.inner;
        let Some(cache) = &inner.cache else {
            return inner.verify_token(token).await.map(|(claims, _)| claims);
        };
        // The key is the SHA-256 of the whole token. Everything else that decided the
        // result is fixed for this Verifier, whose cache this is alone: the issuer, the
        // audience, the allowed algorithms and the leeway. What can change is checked on
        // every hit: the key set (its generation is stored with the entry), the time (the
        // token's own `exp`) and the deny-list.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        let key = crate::token_digest(token);
        if let Some(entry) = cache.get(&key) {
            let now = crate::unix_now();
            if now < entry.claims.expires_at && entry.generation == inner.jwks.current().generation {
                if let Err(err) = inner.check_revocation(&entry.claims) {
                    cache.remove(&key);
                    return Err(err);
                }
                cache.hit();
                return Ok(entry.claims.clone());
            }
            cache.remove(&key);
        }
        cache.miss();
        let (claims, generation) = inner.verify_token(token).await?;
        if crate::unix_now() < claims.expires_at {
            cache.insert(
                key,
                cache::Entry {
                    claims: claims.clone(),
                    generation,
                },
            );
        }
        Ok(claims)
    }

    /// Verifies `token` completely, bypassing the authentication cache (for critical
    /// routes). The deny-list is the verifier's local copy either way. A DPoP-bound token
    /// is refused, as by [`Verifier::verify`].
    pub async fn verify_uncached(&self, token: &str) -> Result<Claims, VerifyError> {
        bearer_only(self.verify_uncached_any(token).await?)
    }

    async fn verify_uncached_any(&self, token: &str) -> Result<Claims, VerifyError> {
        self.inner.verify_token(token).await.map(|(claims, _)| claims)
    }

    /// Key-set age, last refresh error, deny-list age and cache counters.
    pub fn status(&self) -> Status {
        let inner = &self.inner;
        let keys = inner.jwks.current();
        let (keys_age, keys_last_error, keys_refresh_failures, keys_fetches) = inner.jwks.report();
        let (deny_list_age, deny_list_last_error, deny_list_poll_failures) = inner.deny.report();
        let (cache_entries, cache_hits, cache_misses) =
            inner.cache.as_ref().map_or((0, 0, 0), AuthCache::report);
        Status {
            keys_loaded: keys.loaded,
            key_count: keys.len(),
            keys_age,
            keys_last_error,
            keys_refresh_failures,
            keys_fetches,
            deny_list_enabled: inner.deny.has_feed(),
            deny_list_age,
            deny_list_entries: inner.deny.len(),
            deny_list_last_error,
            deny_list_poll_failures,
            revocation_channel_connected: inner.deny.channel_connected(),
            cache_entries,
            cache_hits,
            cache_misses,
        }
    }

    /// The deny-list, shared with [`ApiKeys`](crate::ApiKeys) built on this verifier.
    pub(crate) fn deny_list(&self) -> Arc<DenyList> {
        self.inner.deny.clone()
    }

    /// Refreshes the key set now (normally the background task does this).
    pub async fn refresh_keys(&self) -> Result<(), String> {
        self.inner.jwks.refresh(&self.inner.http).await.map(|_| ())
    }

    /// Polls the revocation feed now (normally the background task does this).
    pub async fn poll_revocations(&self) -> Result<(), String> {
        self.inner.deny.poll(&self.inner.http).await
    }
}

impl Inner {
    fn check_revocation(&self, claims: &Claims) -> Result<(), VerifyError> {
        if self.deny.is_revoked(claims.session_id.as_deref(), &claims.jti) {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }

    /// The checklist. Returns the claims and the generation of the key set that verified
    /// them.
    async fn verify_token(&self, token: &str) -> Result<(Claims, u64), VerifyError> {
        // 1. A JWS in compact serialization (RFC 7515 §7.1; RFC 7519 §7.2 step 1): exactly
        //    three non-empty base64url parts, and not absurdly long. An unsecured JWT
        //    (`alg: none`, empty signature) fails here.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        let mut parts = 0;
        for part in token.split('.') {
            parts += 1;
            let base64url = part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if part.is_empty() || !base64url {
                return Err(VerifyError::Malformed);
            }
        }
        if parts != 3 {
            return Err(VerifyError::Malformed);
        }
        // 2. The JOSE header decodes and parses (RFC 7519 §7.2 steps 2–5). `none` and
        //    unknown algorithms are not in jsonwebtoken's enum and fail here too.
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // 3. No critical extensions: we understand none (RFC 7515 §4.1.11).
        if header.crit.is_some() {
            return Err(VerifyError::CriticalHeader);
        }
        // 4. An allowed asymmetric algorithm (RFC 8725 §3.1, RFC 9068 §4): never HMAC, so
        //    a public key can never be used as an HMAC secret.
        if !self.jwks.allowed().contains(&header.alg) {
            return Err(VerifyError::Algorithm(format!("{:?}", header.alg)));
        }
        // 5. Explicitly typed as an access token (RFC 9068 §4, RFC 8725 §3.11), so an ID
        //    token or another JWT signed by the same keys is not taken for one.
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(VerifyError::Type);
        }
        // 6. The key (RFC 7515 §4.1.4): `kid` present and published for exactly this
        //    algorithm. An unknown kid may mean a rotation: at most one refresh per floor
        //    interval is made for it.
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let mut keys = self.jwks.current();
        if keys.find(kid, header.alg).is_none() {
            match self.jwks.refresh_for_unknown_kid(&self.http).await {
                Some(fresh) => keys = fresh,
                None if !keys.loaded => {
                    return Err(VerifyError::Unavailable("no key set loaded yet".to_owned()))
                }
                None => return Err(VerifyError::UnknownKey),
            }
        }
        let Some(key) = keys.find(kid, header.alg) else {
            if !keys.loaded {
                return Err(VerifyError::Unavailable("no key set loaded yet".to_owned()));
            }
            return Err(VerifyError::UnknownKey);
        };
        // 7. The signature (RFC 7515 §5.2). Time and audience are checked below, against
        //    our own clock and with our own leeway, so jsonwebtoken checks nothing else.
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => VerifyError::Claims("payload"),
            ErrorKind::Base64(_) => VerifyError::Malformed,
            _ => VerifyError::Signature,
        })?;
        // 8. The claims RFC 9068 §2.2 requires, with their types.
        let read = claims::read(data.claims)?;
        // 9. Exactly our issuer (RFC 9068 §4, RFC 7519 §4.1.1): no normalisation.
        if read.iss != self.issuer {
            return Err(VerifyError::Issuer);
        }
        // 10. Our audience among `aud` (RFC 9068 §4, RFC 7519 §4.1.3).
        if !read.aud.contains(&self.audience) {
            return Err(VerifyError::Audience);
        }
        // 11. Lifetime with explicit leeway (RFC 7519 §4.1.4, §4.1.5): accepted while
        //     now < exp + leeway; refused while nbf or iat > now + leeway.
        let now = crate::unix_now();
        if read.exp.saturating_add(self.leeway) <= now {
            return Err(VerifyError::Expired);
        }
        let latest_start = now.saturating_add(self.leeway);
        if read.nbf.is_some_and(|nbf| nbf > latest_start) || read.iat > latest_start {
            return Err(VerifyError::NotYetValid);
        }
        // 12. Neither the session nor the token is revoked (the deny-list).
        self.check_revocation(&read.claims)?;
        Ok((read.claims, keys.generation))
    }
}

/// Refreshes the key set on the provider's schedule (Cache-Control, clamped), and retries
/// with backoff after a failure. Stops when the verifier is dropped.
async fn refresh_keys(inner: std::sync::Weak<Inner>, first: Duration) {
    let mut delay = first;
    loop {
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else { return };
        delay = match inner.jwks.refresh(&inner.http).await {
            Ok(refreshed) => refreshed.next,
            Err(_) => inner.jwks.retry_delay(),
        };
    }
}

/// Polls the revocation feed every `interval`. Stops when the verifier is dropped.
async fn poll_feed(inner: std::sync::Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        let _ = inner.deny.poll(&inner.http).await;
    }
}

/// A token presented as Bearer must not be DPoP-bound (RFC 9449 §7.1).
fn bearer_only(claims: Claims) -> Result<Claims, VerifyError> {
    if claims.dpop_jkt.is_some() {
        return Err(VerifyError::DpopBound);
    }
    Ok(claims)
}
