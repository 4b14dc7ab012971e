//! The OAuth 2.0 endpoints of the token engine: token (refresh grant), revocation
//! (RFC 7009), introspection (RFC 7662), and the revocation feed verifiers poll.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tessera_proto::{paths, OAuthErrorCode};

use super::request::{oauth_form, Context};
use crate::error::OAuthReply;
use tessera_idp::error::OAuthFailure;
use tessera_idp::state::AppState;
use tessera_idp::tokens::opaque::sha256_b64;
use tessera_idp::tokens::{Issued, TokenError};

/// Seconds of recent revocations re-sent to every poller (see `RevocationStore`).
const RECENT_REVOCATIONS_SECS: i64 = 30;

/// The token response of RFC 6749 §5.1 (and OIDC Core §3.1.3.3).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

impl From<Issued> for TokenResponse {
    fn from(issued: Issued) -> Self {
        TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: Some(issued.refresh_token.secret().to_owned()),
            id_token: None,
            scope: issued.scope,
        }
    }
}

impl From<tessera_idp::oidc::Granted> for TokenResponse {
    fn from(granted: tessera_idp::oidc::Granted) -> Self {
        TokenResponse {
            access_token: granted.access_token,
            token_type: "Bearer",
            expires_in: granted.expires_in,
            refresh_token: granted.refresh_token,
            id_token: granted.id_token,
            scope: granted.scope,
        }
    }
}

/// A JSON answer that must never be cached (RFC 6749 §5.1).
pub fn no_store(body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn required<'a>(
    form: &'a std::collections::BTreeMap<String, String>,
    name: &str,
) -> Result<&'a str, OAuthReply> {
    form.get(name).map(String::as_str).ok_or_else(|| {
        OAuthFailure::new(OAuthErrorCode::InvalidRequest, "a required parameter is missing")
            .caused_by(name.to_owned())
            .into()
    })
}

/// `POST /oauth2/token`: `authorization_code`, `refresh_token`, `client_credentials`, and
/// `password` for clients that enable it.
pub async fn token(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthReply> {
    let form = oauth_form(&headers, &body)?;
    let grant_type = required(&form, "grant_type")?;
    if ![
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
        tessera_proto::DEVICE_CODE_GRANT,
    ]
    .contains(&grant_type)
    {
        return Err(OAuthFailure::new(
            OAuthErrorCode::UnsupportedGrantType,
            "this grant type is not supported",
        )
        .into());
    }
    // Client credentials need a client that can keep a secret.
    let client = state
        .client_auth
        .authenticate(&headers, &form, grant_type != "client_credentials", paths::TOKEN)
        .await?;
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthFailure::new(
            OAuthErrorCode::UnauthorizedClient,
            "the client may not use this grant type",
        )
        .into());
    }
    // RFC 9449 §5: a proof binds what this request issues to the proof's key.
    let proof = super::dpop::token_request_proof(&state, &headers).await?;
    let dpop_jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let mut response = match grant_type {
        "authorization_code" => {
            let granted = state
                .provider
                .exchange_code(
                    &client,
                    required(&form, "code")?,
                    form.get("redirect_uri").map(String::as_str),
                    form.get("code_verifier").map(String::as_str),
                    dpop_jkt,
                    &context,
                )
                .await?;
            TokenResponse::from(granted)
        }
        "refresh_token" => {
            // `roles`: the roles the session activates from now on (dynamic separation of
            // duty), space-separated.
            let roles: Option<Vec<String>> = form
                .get("roles")
                .map(|r| r.split_ascii_whitespace().map(str::to_owned).collect());
            let issued = state
                .tokens
                .refresh_bound(
                    required(&form, "refresh_token")?,
                    &client,
                    form.get("scope").map(String::as_str),
                    roles.as_deref(),
                    dpop_jkt,
                    &context,
                )
                .await?;
            TokenResponse::from(issued)
        }
        tessera_proto::DEVICE_CODE_GRANT => {
            let granted = state
                .provider
                .poll_device(&client, required(&form, "device_code")?, dpop_jkt, &context)
                .await?;
            TokenResponse::from(granted)
        }
        "client_credentials" => {
            let scope = tessera_idp::oidc::allowed_scope(&client, form.get("scope").map(String::as_str))?;
            let (access_token, expires_in) = state
                .tokens
                .issue_client_token(&client, &scope, dpop_jkt, &context)
                .await?;
            TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in,
                refresh_token: None,
                id_token: None,
                scope,
            }
        }
        _ => {
            let user = state
                .accounts
                .authenticate_without_factor(
                    required(&form, "username")?,
                    required(&form, "password")?,
                    &client,
                    &context,
                )
                .await
                .map_err(|err| match err {
                    tessera_idp::accounts::AccountError::Throttled { retry_after } => OAuthFailure::new(
                        OAuthErrorCode::InvalidGrant,
                        "too many failed attempts; try again later",
                    )
                    .caused_by(format!("throttled for {retry_after} s")),
                    tessera_idp::accounts::AccountError::Store(err) => err.into(),
                    tessera_idp::accounts::AccountError::MfaRequiredElsewhere => OAuthFailure::new(
                        OAuthErrorCode::InvalidGrant,
                        "this account signs in with a second factor: use the authorization code flow",
                    ),
                    other => OAuthFailure::new(OAuthErrorCode::InvalidGrant, "the credentials are invalid")
                        .caused_by(other),
                })?;
            let granted = state
                .provider
                .password_grant(
                    &client,
                    &user,
                    form.get("scope").map(String::as_str),
                    dpop_jkt,
                    &context,
                )
                .await?;
            TokenResponse::from(granted)
        }
    };
    tessera_idp::telemetry::token_issued(match grant_type {
        "authorization_code" => "authorization_code",
        "refresh_token" => "refresh_token",
        "client_credentials" => "client_credentials",
        tessera_proto::DEVICE_CODE_GRANT => "device_code",
        _ => "password",
    });
    if dpop_jkt.is_some() {
        response.token_type = tessera_proto::dpop::TOKEN_TYPE;
    }
    Ok(super::dpop::offer_nonce(&state, no_store(response)))
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Serialize)]
struct DeviceAuthorizationResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1): client authentication as at the
/// token endpoint (a public client sends its `client_id`), for clients registered for the
/// device code grant.
pub async fn device_authorization(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthReply> {
    let form = oauth_form(&headers, &body)?;
    let client = state
        .client_auth
        .authenticate(&headers, &form, true, paths::DEVICE_AUTHORIZATION)
        .await?;
    if !client
        .grant_types
        .iter()
        .any(|g| g == tessera_proto::DEVICE_CODE_GRANT)
    {
        return Err(OAuthFailure::new(
            OAuthErrorCode::UnauthorizedClient,
            "the client may not use the device authorization grant",
        )
        .into());
    }
    let started = state
        .provider
        .start_device_authorization(&client, form.get("scope").map(String::as_str), &context)
        .await?;
    let verification_uri = format!("{}{}", state.issuer, tessera_proto::paths::DEVICE);
    let mut complete = url::Url::parse(&verification_uri).map_err(|e| {
        OAuthFailure::new(OAuthErrorCode::ServerError, "the verification URI is invalid").caused_by(e)
    })?;
    complete
        .query_pairs_mut()
        .append_pair("user_code", &started.user_code);
    Ok(no_store(DeviceAuthorizationResponse {
        device_code: started.device_code,
        user_code: started.user_code,
        verification_uri_complete: complete.to_string(),
        verification_uri,
        expires_in: started.expires_in,
        interval: started.interval,
    }))
}

/// `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was valid.
pub async fn revoke(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthReply> {
    let form = oauth_form(&headers, &body)?;
    let client = state
        .client_auth
        .authenticate(&headers, &form, true, paths::REVOKE)
        .await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthFailure::new(OAuthErrorCode::InvalidRequest, "token is required"))?;
    let hint = form.get("token_type_hint").map(String::as_str);
    if let Some(hint) = hint {
        if hint != "access_token" && hint != "refresh_token" {
            return Err(OAuthFailure::new(
                OAuthErrorCode::UnsupportedTokenType,
                "token_type_hint must be access_token or refresh_token",
            )
            .into());
        }
    }
    match state.tokens.revoke(token, hint, &client, &context).await {
        Ok(()) => Ok(no_store(serde_json::json!({}))),
        Err(TokenError::InvalidGrant(why)) => Err(OAuthFailure::new(
            OAuthErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        )
        .caused_by(why)
        .into()),
        Err(other) => Err(other.into()),
    }
}

/// `POST /oauth2/introspect` (RFC 7662), for confidential clients.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthReply> {
    let form = oauth_form(&headers, &body)?;
    let client = state
        .client_auth
        .authenticate(&headers, &form, false, paths::INTROSPECT)
        .await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthFailure::new(OAuthErrorCode::InvalidRequest, "token is required"))?;
    let answer = state
        .tokens
        .introspect(token, form.get("token_type_hint").map(String::as_str), &client)
        .await?;
    Ok(no_store(answer))
}

#[derive(Deserialize)]
pub struct FeedQuery {
    /// The `cursor` of the previous answer: only entries added since (plus recent ones).
    after: Option<i64>,
}

#[derive(Serialize)]
struct FeedEntry {
    kind: &'static str,
    value: String,
    /// When the last token this entry covers expires; drop the entry after.
    exp: i64,
}

#[derive(Serialize)]
struct Feed {
    cursor: String,
    entries: Vec<FeedEntry>,
}

/// `GET /oauth2/revocations[?after=CURSOR]`: revoked session ids and token ids whose
/// access tokens may still be presented. Public (the values are opaque ids); conditional
/// with `If-None-Match`.
pub async fn revocations(
    State(state): State<AppState>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, OAuthReply> {
    let now = state.clock.now();
    let cursor = state.revocations.latest_revocation_seq().await?;
    let after = query.after.unwrap_or(0).max(0);
    let entries = state
        .revocations
        .revocations(after, now - RECENT_REVOCATIONS_SECS, now)
        .await?
        .into_iter()
        .map(|r| FeedEntry {
            kind: r.kind.as_str(),
            value: r.value,
            exp: r.expires_at,
        })
        .collect();
    let feed = Feed {
        cursor: cursor.to_string(),
        entries,
    };
    let body = serde_json::to_string(&feed).map_err(|e| {
        OAuthFailure::new(OAuthErrorCode::ServerError, "the feed could not be rendered").caused_by(e)
    })?;
    let etag = format!("\"{}\"", sha256_b64(&body));
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
