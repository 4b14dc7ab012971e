//! Errors as HTTP responses, rendered in exactly one place.
//!
//! - [`OAuthReply`]: the domain's [`OAuthFailure`] as the OAuth JSON error of RFC 6749 §5.2
//!   (401 with `WWW-Authenticate` for `invalid_client` and `invalid_token`);
//! - [`ApiError`]: RFC 7807 problem JSON for Tessera's own JSON and admin APIs.
//!
//! The client sees a short, fixed description. The cause (a database error, a failed
//! signature check) is logged here, with the request id of the span, and nowhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_idp::error::OAuthFailure;
use tessera_idp::tokens::TokenError;
use tessera_proto::{OAuthErrorCode, Problem};
use tessera_store::StoreError;

/// Seconds a client is told to wait when a backing store is unavailable.
const RETRY_AFTER_SECS: &str = "5";

/// An OAuth error response: the domain's [`OAuthFailure`], rendered by [`IntoResponse`].
#[derive(Debug)]
pub struct OAuthReply(pub OAuthFailure);

impl From<OAuthFailure> for OAuthReply {
    fn from(failure: OAuthFailure) -> Self {
        OAuthReply(failure)
    }
}

impl From<StoreError> for OAuthReply {
    fn from(err: StoreError) -> Self {
        OAuthReply(err.into())
    }
}

impl From<TokenError> for OAuthReply {
    fn from(err: TokenError) -> Self {
        OAuthReply(err.into())
    }
}

impl IntoResponse for OAuthReply {
    fn into_response(self) -> Response {
        let failure = self.0;
        let resource_error = matches!(
            failure.error.error,
            OAuthErrorCode::InvalidToken | OAuthErrorCode::InvalidDpopProof | OAuthErrorCode::UseDpopNonce
        );
        let status = if failure.dpop_challenge && resource_error {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::from_u16(failure.error.error.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
        };
        log_cause(status, failure.error.error.as_str(), failure.cause());
        let mut response = (status, Json(&failure.error)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(value) = failure
            .dpop_nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert(tessera_proto::dpop::NONCE_HEADER, value);
        }
        if failure.dpop_challenge {
            // RFC 9449 §7.1: the challenge names the error and the algorithms proofs may use.
            let error = resource_error.then(|| failure.error.error.as_str());
            if let Ok(value) = HeaderValue::from_str(&tessera_proto::dpop::challenge(error)) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
        match failure.error.error {
            OAuthErrorCode::InvalidClient => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tessera\""),
                );
            }
            OAuthErrorCode::InvalidToken | OAuthErrorCode::InsufficientScope => {
                let value = format!("Bearer error=\"{}\"", failure.error.error.as_str());
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            OAuthErrorCode::TemporarilyUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response
    }
}

/// An error of Tessera's JSON APIs, rendered as problem JSON. Boxed: handlers return it
/// in every `Result`, and the happy path should not pay for its size.
#[derive(Debug)]
pub struct ApiError(Box<ApiErrorInner>);

#[derive(Debug)]
struct ApiErrorInner {
    problem: Problem,
    cause: Option<String>,
    retry_after: Option<u64>,
    www_authenticate: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, tag: &str, title: &str) -> Self {
        ApiError(Box::new(ApiErrorInner {
            problem: Problem::new(status.as_u16(), tag, title),
            cause: None,
            retry_after: None,
            www_authenticate: None,
        }))
    }

    /// The problem document this error renders as.
    pub fn problem(&self) -> &Problem {
        &self.0.problem
    }

    /// 401 for a missing or unusable Bearer token (RFC 6750 §3): no error code when the
    /// request carried no credentials, `invalid_token` otherwise.
    pub fn unauthorized(error: Option<&str>) -> Self {
        let mut err = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized");
        err.0.www_authenticate = Some(match error {
            Some(code) => format!("Bearer realm=\"tessera\", error=\"{code}\""),
            None => "Bearer realm=\"tessera\"".to_owned(),
        });
        err
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", "Bad Request").detail(detail)
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not Found")
    }

    pub fn unavailable() -> Self {
        let err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service temporarily unavailable",
        );
        err.retry_after(5)
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
        )
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.problem.detail = Some(detail.into());
        self
    }

    /// Adds an RFC 9457 extension member (`code`, `captchaRequired`, …).
    pub fn extension(mut self, name: &str, value: serde_json::Value) -> Self {
        let problem = std::mem::replace(&mut self.0.problem, Problem::new(0, "", ""));
        self.0.problem = problem.with_extension(name, value);
        self
    }

    /// Adds a `Retry-After` header (seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.0.retry_after = Some(secs);
        self
    }

    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.0.cause = Some(cause.to_string());
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidInput(_) => {
                ApiError::bad_request("the request contains a character that is not allowed").caused_by(err)
            }
            err => ApiError::unavailable().caused_by(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let inner = *self.0;
        let status = StatusCode::from_u16(inner.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        log_cause(status, &inner.problem.kind, inner.cause.as_deref());
        let mut response = (status, Json(&inner.problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = inner.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(value) = inner
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

fn log_cause(status: StatusCode, kind: &str, cause: Option<&str>) {
    match (status.is_server_error(), cause) {
        (true, cause) => {
            tracing::error!(%status, error = kind, cause = cause.unwrap_or("-"), "request failed")
        }
        (false, Some(cause)) => tracing::info!(%status, error = kind, cause, "request rejected"),
        (false, None) => tracing::debug!(%status, error = kind, "request rejected"),
    }
}
