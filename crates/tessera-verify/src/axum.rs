//! axum integration (feature `axum`): a tower layer that authenticates the Bearer token of
//! every request, an extractor for the verified [`Claims`], and scope and role guards.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use tessera_verify::axum::{Authenticated, RequireRole, RequireScope, VerifyLayer};
//! use tessera_verify::Verifier;
//!
//! async fn list_orders(Authenticated(claims): Authenticated) -> String {
//!     format!("orders of {}", claims.subject)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Arc::new(
//!     Verifier::builder("https://id.example.com")
//!         .audience("https://api.example.com")
//!         .discover()
//!         .await?,
//! );
//! let orders = Router::new()
//!     .route("/orders", get(list_orders))
//!     .route_layer(RequireScope::new("orders:read"));
//! let admin = Router::new()
//!     .route("/admin/refunds", get(|| async { "refunds" }))
//!     .route_layer(RequireRole::new("admin"))
//!     // A critical route: bypass the authentication cache.
//!     .route_layer(VerifyLayer::new(verifier.clone()).realm("shop").uncached());
//! let app = Router::new()
//!     .merge(orders)
//!     .layer(VerifyLayer::new(verifier).realm("shop"))
//!     .merge(admin);
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Answers, per RFC 6750 §3:
//! - no `Authorization: Bearer` credentials → 401, `WWW-Authenticate: Bearer realm="…"`
//!   (no error attribute); a token in the query string or the body is not looked at;
//! - two `Authorization` headers, or a malformed Bearer value → 400, `error="invalid_request"`;
//! - a token that does not verify → 401, `error="invalid_token"` (the reason goes to the
//!   log, not to the client);
//! - a missing scope → 403, `error="insufficient_scope", scope="…"`; a missing role → 403,
//!   `error="insufficient_scope"` with an `error_description` naming the role;
//! - the token could not be judged (no keys yet, introspection down) → 503.
//!
//! With [`VerifyLayer::api_keys`], a request may present a partner API key in `X-API-Key`
//! instead (never beside an `Authorization` header: 400): it is verified by
//! [`ApiKeys`](crate::ApiKeys) and its [`Claims`] (with `api_key_id` set) go through the same
//! guards. A key with an address allow-list needs the client's address in the request's
//! extensions as [`ClientAddr`] (insert it in a middleware that knows your proxies);
//! without it such a key is refused (403).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::{ApiKeys, Authenticate, BoxFuture, Claims, Verifier, VerifyError};

/// The client's address, for API keys with an allow-list: put it in the request's
/// extensions before [`VerifyLayer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The header partner API keys come in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The realm named in `WWW-Authenticate` when none is configured.
pub const DEFAULT_REALM: &str = "api";

/// The realm of the [`VerifyLayer`] that authenticated a request (read by the guards).
#[derive(Debug, Clone)]
struct Realm(Arc<str>);

/// Why a request was refused. Renders as RFC 6750 §3 says.
#[derive(Debug, Clone)]
pub struct AuthRejection {
    kind: RejectionKind,
    realm: Arc<str>,
}

#[derive(Debug, Clone)]
enum RejectionKind {
    /// No bearer credentials at all.
    Missing,
    InvalidRequest(&'static str),
    InvalidToken(VerifyError),
    /// A valid API key used from outside its allow-list.
    KeyAddress,
    Scope(Arc<str>),
    Role(Arc<str>),
    /// A permission the caller's roles do not grant.
    Permission(Arc<str>),
    /// The sign-in is not of a class asked for (space-separated `acr_values`): RFC 9470.
    Acr(Arc<str>),
    Unavailable(VerifyError),
}

impl AuthRejection {
    fn new(kind: RejectionKind, realm: &Arc<str>) -> Self {
        AuthRejection {
            kind,
            realm: realm.clone(),
        }
    }

    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::Missing | RejectionKind::InvalidToken(_) | RejectionKind::Acr(_) => {
                StatusCode::UNAUTHORIZED
            }
            RejectionKind::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            RejectionKind::Scope(_)
            | RejectionKind::Role(_)
            | RejectionKind::Permission(_)
            | RejectionKind::KeyAddress => StatusCode::FORBIDDEN,
            RejectionKind::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The verification error behind a 401 or 503, if that is what this is.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match &self.kind {
            RejectionKind::InvalidToken(err) | RejectionKind::Unavailable(err) => Some(err),
            _ => None,
        }
    }

    fn from_verify_error(err: VerifyError, realm: &Arc<str>) -> Self {
        let kind = match err.rfc6750_error() {
            _ if err == VerifyError::AddressNotAllowed => RejectionKind::KeyAddress,
            Some(_) => RejectionKind::InvalidToken(err),
            None => RejectionKind::Unavailable(err),
        };
        AuthRejection::new(kind, realm)
    }

    /// (error, error_description, scope) of the challenge.
    fn parts(&self) -> (Option<&'static str>, Option<String>, Option<&str>) {
        match &self.kind {
            RejectionKind::Missing | RejectionKind::Unavailable(_) => (None, None, None),
            RejectionKind::InvalidRequest(why) => (Some("invalid_request"), Some((*why).to_owned()), None),
            RejectionKind::InvalidToken(_) => (
                Some("invalid_token"),
                Some("the access token is invalid, expired or revoked".to_owned()),
                None,
            ),
            RejectionKind::KeyAddress => (
                Some("insufficient_scope"),
                Some("this API key may not be used from this address".to_owned()),
                None,
            ),
            RejectionKind::Scope(scope) => (
                Some("insufficient_scope"),
                Some(format!("the scope {scope} is required")),
                Some(scope),
            ),
            RejectionKind::Role(role) => (
                Some("insufficient_scope"),
                Some(format!("the role {role} is required")),
                None,
            ),
            RejectionKind::Permission(permission) => (
                Some("insufficient_scope"),
                Some(format!("the permission {permission} is required")),
                None,
            ),
            RejectionKind::Acr(_) => (
                Some("insufficient_user_authentication"),
                Some("a stronger sign-in is required: sign in again with the acr_values given".to_owned()),
                None,
            ),
        }
    }
}

/// A quoted-string value (RFC 9110 §5.6.4) that needs no escaping: drop what would.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && (*c == ' ' || c.is_ascii_graphic()))
        .collect()
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        let (error, description, scope) = self.parts();
        let mut challenge = format!("Bearer realm=\"{}\"", quotable(&self.realm));
        if let Some(error) = error {
            challenge.push_str(&format!(", error=\"{error}\""));
        }
        if let Some(description) = &description {
            challenge.push_str(&format!(", error_description=\"{}\"", quotable(description)));
        }
        if let Some(scope) = scope {
            challenge.push_str(&format!(", scope=\"{}\"", quotable(scope)));
        }
        if let RejectionKind::Acr(acr_values) = &self.kind {
            // RFC 9470 §3: what the client should ask the authorization server for.
            challenge.push_str(&format!(", acr_values=\"{}\"", quotable(acr_values)));
        }
        let body = match (error, &self.kind) {
            (_, RejectionKind::Unavailable(_)) => serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "authentication is temporarily unavailable",
            }),
            (Some(error), _) => serde_json::json!({ "error": error, "error_description": description }),
            (None, _) => serde_json::json!({ "error_description": "a bearer token is required" }),
        };
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        } else if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The bearer token of a request: exactly one `Authorization` header with the `Bearer`
/// scheme and a `b64token` (RFC 6750 §2.1). Tokens in the query or body are not accepted.
fn bearer_token<B>(request: &Request<B>, realm: &Arc<str>) -> Result<String, AuthRejection> {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthRejection::new(RejectionKind::Missing, realm));
    };
    if values.next().is_some() {
        return Err(AuthRejection::new(
            RejectionKind::InvalidRequest("more than one Authorization header"),
            realm,
        ));
    }
    let malformed = || {
        AuthRejection::new(
            RejectionKind::InvalidRequest("malformed Bearer credentials"),
            realm,
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Other credentials (Basic, …) are no bearer credentials: ask for them.
        return Err(AuthRejection::new(RejectionKind::Missing, realm));
    }
    let token = rest.trim_matches(' ');
    let body = token.trim_end_matches('=');
    let b64token = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    if !b64token {
        return Err(malformed());
    }
    Ok(token.to_owned())
}

/// The `X-API-Key` of a request: at most one, and never beside `Authorization`.
fn api_key<B>(request: &Request<B>, realm: &Arc<str>) -> Result<Option<String>, AuthRejection> {
    let headers = request.headers();
    let mut values = headers.get_all(API_KEY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |why| Err(AuthRejection::new(RejectionKind::InvalidRequest(why), realm));
    if values.next().is_some() {
        return invalid("more than one X-API-Key header");
    }
    if headers.contains_key(AUTHORIZATION) {
        return invalid("send either an Authorization header or an X-API-Key header, not both");
    }
    match value.to_str() {
        Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_owned())),
        _ => invalid("malformed X-API-Key header"),
    }
}

/// A tower layer that authenticates the Bearer token of each request and puts the verified
/// [`Claims`] into the request's extensions (for [`Authenticated`] and the guards).
#[derive(Clone)]
pub struct VerifyLayer {
    authenticator: Arc<dyn Authenticate>,
    api_keys: Option<ApiKeys>,
    realm: Arc<str>,
    fresh: bool,
}

impl VerifyLayer {
    /// Authenticates with a [`Verifier`] (local JWT verification).
    pub fn new(verifier: Arc<Verifier>) -> Self {
        VerifyLayer::with_authenticator(verifier)
    }

    /// Authenticates with anything that implements [`Authenticate`] (an
    /// [`Introspector`](crate::Introspector) for opaque tokens).
    pub fn with_authenticator(authenticator: Arc<dyn Authenticate>) -> Self {
        VerifyLayer {
            authenticator,
            api_keys: None,
            realm: Arc::from(DEFAULT_REALM),
            fresh: false,
        }
    }

    /// Also accepts partner API keys in `X-API-Key`, verified by `api_keys` (built on the
    /// same verifier, so revocations arrive through its feed).
    pub fn api_keys(mut self, api_keys: ApiKeys) -> Self {
        self.api_keys = Some(api_keys);
        self
    }

    /// The realm named in `WWW-Authenticate` (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Arc::from(realm);
        self
    }

    /// Bypasses the authentication cache (for critical routes).
    pub fn uncached(mut self) -> Self {
        self.fresh = true;
        self
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`VerifyLayer`].
#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    layer: VerifyLayer,
}

impl<S, B> Service<Request<B>> for VerifyService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone is not ready; the instance that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            // Without `api_keys`, `X-API-Key` is not looked at.
            let key = match &layer.api_keys {
                Some(api_keys) => match api_key(&request, &layer.realm) {
                    Ok(key) => key.map(|key| (api_keys, key)),
                    Err(rejection) => return Ok(rejection.into_response()),
                },
                None => None,
            };
            let authenticated = match key {
                Some((api_keys, key)) => {
                    let ip = request.extensions().get::<ClientAddr>().map(|a| a.0);
                    api_keys.verify(&key, ip).await
                }
                None => {
                    let token = match bearer_token(&request, &layer.realm) {
                        Ok(token) => token,
                        Err(rejection) => return Ok(rejection.into_response()),
                    };
                    layer.authenticator.authenticate(&token, layer.fresh).await
                }
            };
            match authenticated {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    request.extensions_mut().insert(Realm(layer.realm.clone()));
                    inner.call(request).await
                }
                Err(err) => {
                    match &err {
                        VerifyError::Unavailable(why) => {
                            tracing::warn!(reason = %why, "bearer token could not be verified")
                        }
                        reason => tracing::info!(%reason, "bearer token rejected"),
                    }
                    Ok(AuthRejection::from_verify_error(err, &layer.realm).into_response())
                }
            }
        })
    }
}

/// What a guard requires.
#[derive(Clone, Debug)]
enum Requirement {
    Scope(Arc<str>),
    Role(Arc<str>),
    Permission(Arc<str>),
    /// Space-separated `acr` values, any of which will do.
    Acr(Arc<str>),
}

impl Requirement {
    /// Checks the claims of a request authenticated by [`VerifyLayer`].
    fn check<B>(&self, request: &Request<B>) -> Result<(), AuthRejection> {
        let realm = request
            .extensions()
            .get::<Realm>()
            .map_or_else(|| Arc::from(DEFAULT_REALM), |r| r.0.clone());
        let Some(claims) = request.extensions().get::<Claims>() else {
            // The guard sits outside VerifyLayer (or without one): refuse, loudly.
            tracing::error!(
                "a scope or role guard found no verified claims: is VerifyLayer applied outside it?"
            );
            return Err(AuthRejection::new(RejectionKind::Missing, &realm));
        };
        match self {
            Requirement::Scope(scope) if !claims.has_scope(scope) => {
                Err(AuthRejection::new(RejectionKind::Scope(scope.clone()), &realm))
            }
            Requirement::Role(role) if !claims.has_role(role) => {
                Err(AuthRejection::new(RejectionKind::Role(role.clone()), &realm))
            }
            Requirement::Permission(permission) if !claims.has_permission(permission) => Err(
                AuthRejection::new(RejectionKind::Permission(permission.clone()), &realm),
            ),
            Requirement::Acr(values) => {
                let wanted: Vec<&str> = values.split_ascii_whitespace().collect();
                if claims.meets_acr(&wanted) {
                    Ok(())
                } else {
                    Err(AuthRejection::new(RejectionKind::Acr(values.clone()), &realm))
                }
            }
            _ => Ok(()),
        }
    }
}

/// A guard (a tower layer, for `route_layer`) that lets through only requests whose token
/// grants `scope`; 403 `insufficient_scope` otherwise. Apply [`VerifyLayer`] outside it.
#[derive(Clone, Debug)]
pub struct RequireScope(Requirement);

impl RequireScope {
    pub fn new(scope: &str) -> Self {
        RequireScope(Requirement::Scope(Arc::from(scope)))
    }
}

/// A guard (a tower layer, for `route_layer`) that lets through only callers holding
/// `role`; 403 `insufficient_scope` otherwise. Apply [`VerifyLayer`] outside it.
#[derive(Clone, Debug)]
pub struct RequireRole(Requirement);

impl RequireRole {
    pub fn new(role: &str) -> Self {
        RequireRole(Requirement::Role(Arc::from(role)))
    }
}

/// A guard (a tower layer, for `route_layer`) that lets through only callers whose roles
/// grant `permission` (the token's `permissions`); 403 `insufficient_scope` otherwise. Apply
/// [`VerifyLayer`] outside it.
#[derive(Clone, Debug)]
pub struct RequirePermission(Requirement);

impl RequirePermission {
    pub fn new(permission: &str) -> Self {
        RequirePermission(Requirement::Permission(Arc::from(permission)))
    }
}

/// A guard (a tower layer, for `route_layer`) that lets through only callers whose sign-in
/// is of one of the classes `acr_values` (or stronger); otherwise 401 with RFC 9470's
/// `insufficient_user_authentication` and the `acr_values` to ask the identity provider for
/// (`urn:tessera:acr:mfa`: a sign-in with a second factor). Apply [`VerifyLayer`] outside it.
#[derive(Clone, Debug)]
pub struct RequireAcr(Requirement);

impl RequireAcr {
    pub fn new(acr_values: &[&str]) -> Self {
        RequireAcr(Requirement::Acr(Arc::from(acr_values.join(" "))))
    }
}

/// Each guard is a [`Requirement`] applied by the same [`GuardService`].
macro_rules! guard_layer {
    ($($guard:ident),+) => {$(
        impl<S> Layer<S> for $guard {
            type Service = GuardService<S>;

            fn layer(&self, inner: S) -> Self::Service {
                GuardService {
                    inner,
                    requirement: self.0.clone(),
                }
            }
        }
    )+};
}

guard_layer!(RequireScope, RequireRole, RequirePermission, RequireAcr);

/// The service of [`RequireScope`], [`RequireRole`], [`RequirePermission`] and [`RequireAcr`].
#[derive(Clone, Debug)]
pub struct GuardService<S> {
    inner: S,
    requirement: Requirement,
}

impl<S, B> Service<Request<B>> for GuardService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.requirement.check(&request) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(rejection) => Box::pin(std::future::ready(Ok(rejection.into_response()))),
        }
    }
}

/// Extracts the verified [`Claims`] that [`VerifyLayer`] put into the request; 401 if there
/// are none. `Option<Authenticated>` never fails.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl Authenticated {
    /// Checks a scope inside a handler: `Err` renders as 403 `insufficient_scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthRejection> {
        if self.0.has_scope(scope) {
            return Ok(());
        }
        Err(AuthRejection::new(
            RejectionKind::Scope(Arc::from(scope)),
            &Arc::from(DEFAULT_REALM),
        ))
    }

    /// Checks a role inside a handler: `Err` renders as 403 `insufficient_scope`.
    pub fn require_role(&self, role: &str) -> Result<(), AuthRejection> {
        if self.0.has_role(role) {
            return Ok(());
        }
        Err(AuthRejection::new(
            RejectionKind::Role(Arc::from(role)),
            &Arc::from(DEFAULT_REALM),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Claims>() {
            Some(claims) => Ok(Authenticated(claims.clone())),
            None => {
                let realm = parts
                    .extensions
                    .get::<Realm>()
                    .map_or_else(|| Arc::from(DEFAULT_REALM), |r| r.0.clone());
                Err(AuthRejection::new(RejectionKind::Missing, &realm))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims>().cloned().map(Authenticated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(values: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        for value in values {
            request
                .headers_mut()
                .append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        request
    }

    fn status(values: &[&str]) -> Result<String, StatusCode> {
        bearer_token(&request(values), &Arc::from("r")).map_err(|r| r.status())
    }

    #[test]
    fn parses_bearer_credentials() {
        assert_eq!(
            status(&["Bearer abc.def-_~+/=="]),
            Ok("abc.def-_~+/==".to_owned())
        );
        assert_eq!(status(&["bearer  abc "]), Ok("abc".to_owned()));
        assert_eq!(status(&[]), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(status(&["Basic dXNlcjpwYXNz"]), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(status(&["Bearer"]), Err(StatusCode::BAD_REQUEST));
        assert_eq!(status(&["Bearer a b"]), Err(StatusCode::BAD_REQUEST));
        assert_eq!(status(&["Bearer =abc"]), Err(StatusCode::BAD_REQUEST));
        assert_eq!(status(&["Bearer a", "Bearer b"]), Err(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn challenge_values_are_quoted_safely() {
        assert_eq!(quotable("a \"b\" \\c\n"), "a b c");
    }
}
