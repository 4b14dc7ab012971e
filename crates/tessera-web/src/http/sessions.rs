//! The signed-in user's own sessions: list them, end one, end this one or all, extend
//! this one (the "expires in 5 minutes — extend?" prompt). Bearer-authenticated.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tessera_store::durable::SessionRecord;

use super::request::{bearer_token, Context};
use crate::error::ApiError;
use tessera_idp::state::AppState;
use tessera_idp::tokens::access::AccessClaims;
use tessera_idp::tokens::TokenError;

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::InvalidToken(why) => ApiError::unauthorized(Some("invalid_token"))
                .detail("the access token is invalid, expired or revoked")
                .caused_by(why),
            TokenError::Store(err) => err.into(),
            TokenError::SessionLimit => {
                ApiError::new(StatusCode::CONFLICT, "session-limit", "Session limit reached")
                    .detail("the limit of concurrent sessions for this channel is reached")
            }
            TokenError::Roles(why) => ApiError::bad_request(why).extension("code", "invalid_roles".into()),
            TokenError::UnknownChannel(channel) => {
                ApiError::bad_request(format!("unknown channel {channel:?}"))
            }
            TokenError::InvalidGrant(why) => ApiError::unauthorized(Some("invalid_grant"))
                .detail("the refresh token is invalid, expired or revoked")
                .caused_by(why),
            TokenError::InvalidScope => {
                ApiError::bad_request("the requested scope exceeds the granted scope")
            }
            TokenError::Signing(cause) => ApiError::internal().caused_by(cause),
        }
    }
}

/// The verified caller of a `/auth/*` endpoint.
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(AccessClaims, SessionRecord), ApiError> {
    let token = bearer_token(headers)?;
    match state
        .tokens
        .verify_access_token(token, Some(state.tokens.audience()))
        .await?
    {
        (claims, Some(session)) => Ok((claims, session)),
        // A client-credentials token names no user.
        (_, None) => {
            Err(ApiError::unauthorized(Some("invalid_token"))
                .detail("this endpoint needs a user's access token"))
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    id: String,
    client_id: String,
    channel: String,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
    current: bool,
}

fn view(session: SessionRecord, current: &str) -> SessionView {
    SessionView {
        current: session.id == current,
        id: session.id,
        client_id: session.client_id,
        channel: session.channel,
        user_agent: session.user_agent,
        ip: session.ip,
        created_at: session.created_at,
        last_seen_at: session.last_seen_at,
        idle_expires_at: session.idle_expires_at,
        absolute_expires_at: session.absolute_expires_at,
    }
}

/// `GET /auth/sessions`
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (claims, _) = caller(&state, &headers).await?;
    let sessions = state.tokens.sessions_of(&claims.sub).await?;
    let current = claims.sid.as_deref().unwrap_or_default();
    let views: Vec<SessionView> = sessions.into_iter().map(|s| view(s, current)).collect();
    Ok(Json(serde_json::json!({ "sessions": views })).into_response())
}

/// `DELETE /auth/sessions/{id}`: 204, or 404 if it is not an alive session of the caller.
pub async fn end_one(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (claims, _) = caller(&state, &headers).await?;
    let mine = state
        .tokens
        .sessions_of(&claims.sub)
        .await?
        .into_iter()
        .any(|s| s.id == id);
    if !mine {
        return Err(ApiError::not_found().detail("no such session"));
    }
    state
        .tokens
        .end_session(&id, "ended_by_user", &format!("user:{}", claims.sub), &context)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    #[serde(default)]
    all: bool,
}

/// `POST /auth/logout[?all=true]`: ends this session, or every session of the caller.
pub async fn logout(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    Query(query): Query<LogoutQuery>,
) -> Result<Response, ApiError> {
    let (claims, session) = caller(&state, &headers).await?;
    let actor = format!("user:{}", claims.sub);
    if query.all {
        state
            .tokens
            .end_sessions_of(&claims.sub, "logout_all", &actor, &context)
            .await?;
    } else {
        state
            .tokens
            .end_session(&session.id, "logout", &actor, &context)
            .await?;
    }
    // A browser that kept its refresh token in the cookie forgets it.
    let clear = format!(
        "{}=; Path=/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        super::accounts::REFRESH_COOKIE
    );
    Ok((StatusCode::NO_CONTENT, [(axum::http::header::SET_COOKIE, clear)]).into_response())
}

/// The lifetimes of `session` as the session-expiry warning reads them (docs/pages.md).
fn lifetimes(state: &AppState, session: &SessionRecord) -> Response {
    let mut response = Json(serde_json::json!({
        "sessionId": session.id,
        "idleExpiresAt": session.idle_expires_at,
        "absoluteExpiresAt": session.absolute_expires_at,
        "now": state.clock.now(),
        "warnBeforeSecs": super::portal::warn_before_secs(state),
    }))
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /auth/session`: this session's idle and absolute expiry, the server's clock and
/// how long before the idle expiry to warn. Reading them is no activity.
pub async fn status(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_, session) = caller(&state, &headers).await?;
    Ok(lifetimes(&state, &session))
}

/// `POST /auth/session/extend`: pushes this session's idle expiry out again.
pub async fn extend(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_, session) = caller(&state, &headers).await?;
    let extended = state
        .tokens
        .extend_session(&session.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized(Some("invalid_token")).detail("the session has ended"))?;
    Ok(lifetimes(&state, &extended))
}
