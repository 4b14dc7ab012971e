//! What handlers take from a request besides its body: the caller's context (address,
//! user agent, request id), an OAuth form, a Bearer token.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use tessera_proto::net::Cidr;
use tessera_proto::OAuthErrorCode;

use super::REQUEST_ID;
use crate::error::{ApiError, OAuthReply};
use tessera_idp::audit::RequestContext;
use tessera_idp::error::OAuthFailure;

/// Longest user agent kept (it is stored per session and in audit records).
const MAX_USER_AGENT: usize = 512;

/// The client's address, decided once per request by [`resolve_client_ip`].
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Middleware: the client's address is the TCP peer, unless the peer is one of
/// `http.trusted_proxies` — then it is the right-most address of `X-Forwarded-For` that is
/// not a trusted proxy (a client can prepend anything; only what our proxies appended counts).
pub async fn resolve_client_ip(
    State(trusted): State<Arc<[Cidr]>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let forwarded_for = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let ip = tessera_proto::net::client_ip(peer.ip(), forwarded_for, &trusted);
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

/// The request's [`RequestContext`] (client IP, user agent, request id) as an extractor.
pub struct Context(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header_text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Context(RequestContext {
            // Set by `resolve_client_ip` whenever the connection's address is known.
            ip: parts
                .extensions
                .get::<ClientIp>()
                .map(|ClientIp(ip)| ip.to_string()),
            user_agent: header_text(header::USER_AGENT).map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
            request_id: header_text(REQUEST_ID),
        }))
    }
}

/// Parses an `application/x-www-form-urlencoded` body as OAuth wants it: a parameter may
/// appear once (RFC 6749 §3.1), and one sent without a value counts as absent.
pub fn oauth_form(headers: &HeaderMap, body: &[u8]) -> Result<BTreeMap<String, String>, OAuthReply> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(OAuthFailure::new(
            OAuthErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let mut form = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if value.is_empty() {
            continue;
        }
        if form.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(OAuthFailure::new(OAuthErrorCode::InvalidRequest, "a parameter is repeated").into());
        }
    }
    Ok(form)
}

/// The Bearer token of a request (RFC 6750 §2.1): exactly one `Authorization` header with
/// the `Bearer` scheme. Tokens in the query string or body are not accepted.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(ApiError::unauthorized(None).detail("a Bearer token is required")),
        (Some(_), Some(_)) => return Err(ApiError::bad_request("more than one Authorization header")),
        (Some(value), None) => value,
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized(Some("invalid_token")))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(None).detail("a Bearer token is required")),
    }
}

/// [`json_body`] for an endpoint whose body is optional: no body at all is `T::default()`.
pub fn optional_json_body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    json_body(headers, body)
}

/// Parses a JSON request body into `T`, answering problem JSON (415 for another media type,
/// 400 naming the field for malformed or incomplete JSON) instead of plain text.
pub fn json_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported Media Type",
        )
        .detail("the body must be application/json"));
    }
    serde_json::from_slice(body).map_err(|e| {
        // Position and field, never the offending value (it may be a password).
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                let text = e.to_string();
                if let Some(field) = text
                    .split('`')
                    .nth(1)
                    .filter(|_| text.starts_with("missing field"))
                {
                    format!("missing field `{field}`")
                } else {
                    "a field has the wrong type or value".to_owned()
                }
            }
            _ => "malformed JSON".to_owned(),
        };
        ApiError::bad_request(what).extension("code", serde_json::Value::from("invalid_request"))
    })
}

/// The value of cookie `name` in the request's `Cookie` headers, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}
