//! Authentication at the edge: the gateway's one [`Verifier`], built from the provider's
//! discovery document (retried in the background if the provider is down at start), the
//! Bearer credentials of a request, partner API keys (`X-API-Key`, [`ApiKeys`] on the same
//! verifier's revocation feed) on routes that accept them, and RFC 6750 answers.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tessera_verify::{ApiKeys, Claims, DpopRequest, Status, Verifier, VerifyError};

use crate::config::GatewayConfig;
use crate::response::{problem, Body};

/// Holds the verifier once discovery has succeeded.
pub(crate) struct Auth {
    verifier: OnceLock<(Arc<Verifier>, Option<ApiKeys>)>,
    pub realm: String,
    /// `public_url` without a trailing slash: what DPoP proofs' `htu` is checked against.
    public_url: Option<String>,
}

/// Why a request was not let through.
pub(crate) enum Refused {
    /// No Bearer credentials (RFC 6750 §3.1: a challenge without an error code).
    Missing,
    /// Two `Authorization` headers, or a malformed Bearer value.
    InvalidRequest(&'static str),
    /// The token did not verify (the reason is for logs and metrics only).
    InvalidToken(VerifyError),
    /// The API key is unknown, tampered, expired or revoked (the reason is logged).
    InvalidKey(VerifyError),
    /// A valid API key used from an address outside its allow-list.
    KeyAddress,
    /// The token could not be judged: no key set yet.
    Unavailable(String),
    /// A required scope (the list of all required ones).
    Scope(String),
    /// None of the roles (the list).
    Role(String),
    /// A permission the caller's roles do not grant (what is required, as a sentence).
    Permission(String),
    /// The sign-in is of none of these classes (space-separated `acr_values`).
    Acr(String),
}

impl Refused {
    /// The metric label of a token failure (scope and role refusals are counted apart).
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::Missing => "missing",
            Refused::InvalidRequest(_) => "invalid_request",
            Refused::InvalidToken(err) | Refused::InvalidKey(err) => crate::metrics::verify_reason(err),
            Refused::KeyAddress => "address_not_allowed",
            Refused::Unavailable(_) => "unavailable",
            Refused::Scope(_) => "insufficient_scope",
            Refused::Role(_) => "insufficient_role",
            Refused::Permission(_) => "insufficient_permission",
            Refused::Acr(_) => "insufficient_user_authentication",
        }
    }

    /// The answer, as RFC 6750 §3 says, with a problem JSON body.
    pub fn response(&self, realm: &str) -> Response<Body> {
        let (status, error, description, scope) = match self {
            Refused::Missing => (
                StatusCode::UNAUTHORIZED,
                None,
                "a bearer token is required".to_owned(),
                None,
            ),
            Refused::InvalidRequest(why) => (
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                (*why).to_owned(),
                None,
            ),
            Refused::InvalidToken(_) => (
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the access token is invalid, expired or revoked".to_owned(),
                None,
            ),
            Refused::InvalidKey(_) => (
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the API key is invalid, expired or revoked".to_owned(),
                None,
            ),
            Refused::KeyAddress => (
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                "this API key may not be used from this address".to_owned(),
                None,
            ),
            Refused::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "authentication is temporarily unavailable".to_owned(),
                None,
            ),
            Refused::Scope(scopes) => (
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                format!("the scopes {scopes} are required"),
                Some(scopes.as_str()),
            ),
            Refused::Role(roles) => (
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                format!("one of the roles {roles} is required"),
                None,
            ),
            Refused::Permission(required) => (
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                required.clone(),
                None,
            ),
            Refused::Acr(_) => (
                StatusCode::UNAUTHORIZED,
                Some("insufficient_user_authentication"),
                "a stronger sign-in is required: sign in again with the acr_values given".to_owned(),
                None,
            ),
        };
        let extra: Vec<(&str, &str)> = error.map(|e| ("error", e)).into_iter().collect();
        let mut response = problem(status, &description, &extra);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        // A DPoP-bound token, or a DPoP presentation, is answered with the DPoP challenge
        // naming the proof algorithms (RFC 9449 §7.1).
        if let Refused::InvalidToken(
            err @ (VerifyError::DpopBound | VerifyError::NotDpopBound | VerifyError::DpopProof(_)),
        ) = self
        {
            let error = err.rfc6750_error().unwrap_or("invalid_token");
            let mut response = problem(status, &description, &[("error", error)]);
            let challenge = format!(
                "DPoP realm=\"{}\", error=\"{error}\", algs=\"{}\"",
                quotable(realm),
                tessera_verify::dpop::ALGORITHM_NAMES.join(" ")
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
            return response;
        }
        let mut challenge = format!("Bearer realm=\"{}\"", quotable(realm));
        if let Some(error) = error {
            challenge.push_str(&format!(", error=\"{error}\""));
            challenge.push_str(&format!(", error_description=\"{}\"", quotable(&description)));
        }
        if let Some(scope) = scope {
            challenge.push_str(&format!(", scope=\"{}\"", quotable(scope)));
        }
        if let Refused::Acr(acr_values) = self {
            // RFC 9470 §3: what the client should ask the identity provider for.
            challenge.push_str(&format!(", acr_values=\"{}\"", quotable(acr_values)));
        }
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// A quoted-string value (RFC 9110 §5.6.4) that needs no escaping: drop what would.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && (*c == ' ' || c.is_ascii_graphic()))
        .collect()
}

/// The access token: exactly one `Authorization` header with the `Bearer` scheme (RFC 6750
/// §2.1) or the `DPoP` scheme (RFC 9449 §7.1) and a b64token, and whether it is the latter.
/// Tokens in the query or the body are never looked at.
pub(crate) fn access_token(headers: &HeaderMap) -> Result<(bool, &str), Refused> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refused::Missing);
    };
    if values.next().is_some() {
        return Err(Refused::InvalidRequest("more than one Authorization header"));
    }
    let malformed = Refused::InvalidRequest("malformed Bearer credentials");
    let Ok(value) = value.to_str() else {
        return Err(malformed);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = scheme.eq_ignore_ascii_case(tessera_verify::dpop::TOKEN_TYPE);
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refused::Missing);
    }
    let token = rest.trim_matches(' ');
    let body = token.trim_end_matches('=');
    let b64token = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    if !b64token {
        return Err(malformed);
    }
    Ok((dpop, token))
}

/// The API key: at most one `X-API-Key` header, and never beside an `Authorization` one
/// (`None` when there is none).
pub(crate) fn api_key(headers: &HeaderMap) -> Result<Option<&str>, Refused> {
    let mut values = headers.get_all(crate::headers::X_API_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refused::InvalidRequest("more than one X-API-Key header"));
    }
    if headers.contains_key(AUTHORIZATION) {
        return Err(Refused::InvalidRequest(
            "send either an Authorization header or an X-API-Key header, not both",
        ));
    }
    let key = value
        .to_str()
        .map_err(|_| Refused::InvalidRequest("malformed X-API-Key header"))?
        .trim();
    if key.is_empty() {
        return Err(Refused::InvalidRequest("malformed X-API-Key header"));
    }
    Ok(Some(key))
}

impl Auth {
    /// Builds the verifier now if the provider answers; otherwise keeps trying in the
    /// background (1 s doubling to 30 s) while requests to protected routes get 503.
    pub async fn start(config: &GatewayConfig) -> Arc<Auth> {
        let auth = Arc::new(Auth {
            verifier: OnceLock::new(),
            realm: config.realm.clone(),
            public_url: config
                .public_url
                .as_ref()
                .map(|url| url.trim_end_matches('/').to_owned()),
        });
        match build(config).await {
            Ok(built) => {
                let _ = auth.verifier.set(built);
            }
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    issuer = %config.issuer(),
                    "cannot reach the identity provider's discovery document; retrying in the background \
                     (protected routes answer 503 and /readyz is not ready until it succeeds)"
                );
                tokio::spawn(retry(Arc::downgrade(&auth), config.clone()));
            }
        }
        auth
    }

    pub fn status(&self) -> Option<Status> {
        self.verifier.get().map(|(v, _)| v.status())
    }

    /// API keys held in memory (`None` before the provider was reached or without keys).
    pub fn api_keys_cached(&self) -> Option<usize> {
        self.verifier
            .get()
            .and_then(|(_, keys)| keys.as_ref().map(ApiKeys::cached))
    }

    /// Verifies a partner API key presented from `client_ip`.
    pub async fn authenticate_key(&self, key: &str, client_ip: IpAddr) -> Result<Claims, Refused> {
        let Some((_, api_keys)) = self.verifier.get() else {
            return Err(Refused::Unavailable(
                "the identity provider was never reached".to_owned(),
            ));
        };
        let Some(api_keys) = api_keys else {
            return Err(Refused::InvalidKey(VerifyError::Inactive));
        };
        api_keys
            .verify(key, Some(client_ip))
            .await
            .map_err(|err| match err {
                VerifyError::Unavailable(why) => Refused::Unavailable(why),
                VerifyError::AddressNotAllowed => Refused::KeyAddress,
                other => Refused::InvalidKey(other),
            })
    }

    /// Verifies the request's token (`method path` is the request, for a DPoP proof):
    /// through the auth cache, or in full when `fresh`. A DPoP-bound token needs the `DPoP`
    /// scheme and a proof for this request, every time; as Bearer it is refused.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        fresh: bool,
    ) -> Result<Claims, Refused> {
        let (dpop, token) = access_token(headers)?;
        let Some((verifier, _)) = self.verifier.get() else {
            return Err(Refused::Unavailable(
                "the identity provider was never reached".to_owned(),
            ));
        };
        let result = match (dpop, &self.public_url) {
            (false, _) if fresh => verifier.verify_uncached(token).await,
            (false, _) => verifier.verify(token).await,
            // Without the URL clients address us by, no proof can be checked.
            (true, None) => Err(VerifyError::DpopBound),
            (true, Some(base)) => {
                let proof = tessera_proto::dpop::single_proof(
                    headers
                        .get_all(tessera_verify::dpop::HEADER)
                        .iter()
                        .map(HeaderValue::as_bytes),
                )
                .map_err(|why| Refused::InvalidToken(VerifyError::DpopProof(why)))?;
                let uri = format!("{base}{path}");
                let request = DpopRequest {
                    method,
                    uri: &uri,
                    proof,
                };
                verifier.verify_dpop(token, &request, fresh).await
            }
        };
        result.map_err(|err| match err {
            VerifyError::Unavailable(why) => Refused::Unavailable(why),
            other => Refused::InvalidToken(other),
        })
    }
}

/// The verifier, and API-key verification on its feed when configured.
async fn build(
    config: &GatewayConfig,
) -> Result<(Arc<Verifier>, Option<ApiKeys>), tessera_verify::BuildError> {
    let verifier = build_verifier(config).await?;
    let keys = &config.api_keys;
    let api_keys = match (&keys.client_id, &keys.client_secret) {
        (Some(id), Some(secret)) => {
            let mut builder = ApiKeys::builder(id.clone(), secret.expose())
                .cache_ttl(Duration::from_secs(keys.cache_ttl_secs))
                .cache_capacity(keys.capacity);
            if let Some(url) = &keys.check_url {
                builder = builder.check_url(url.clone());
            }
            Some(builder.build(&verifier)?)
        }
        _ => None,
    };
    Ok((Arc::new(verifier), api_keys))
}

async fn build_verifier(config: &GatewayConfig) -> Result<Verifier, tessera_verify::BuildError> {
    let capacity = if config.auth_cache.enabled {
        config.auth_cache.capacity
    } else {
        0
    };
    Verifier::builder(config.issuer())
        .audience(config.audience())
        .leeway(Duration::from_secs(config.leeway_secs))
        .revocation_poll_interval(Duration::from_secs(config.revocation_poll_secs))
        .auth_cache_capacity(capacity)
        .start_without_keys()
        .discover()
        .await
}

async fn retry(auth: Weak<Auth>, config: GatewayConfig) {
    let mut delay = Duration::from_secs(1);
    loop {
        tokio::time::sleep(delay).await;
        let Some(holder) = auth.upgrade() else { return };
        match build(&config).await {
            Ok(built) => {
                let _ = holder.verifier.set(built);
                tracing::info!("identity provider reached: token verification is available");
                return;
            }
            Err(err) => {
                tracing::debug!(error = %err, "identity provider still unreachable");
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}
