//! The signed-in user's profile (`/auth/profile`): the OpenID Connect standard claims the
//! user keeps about themselves (names, picture, birthdate, zoneinfo, locale, address,
//! phone number). Members are the OIDC claim names, so a profile reads the same here, in
//! the admin API and in userinfo. `PATCH` takes a JSON merge patch (RFC 7396).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::request::{json_body, Context};
use super::sessions::caller;
use crate::error::ApiError;
use tessera_idp::accounts::profile::{self, Editor, ProfilePatch};
use tessera_idp::accounts::AccountError;
use tessera_idp::state::AppState;

fn answer(view: Map<String, Value>) -> Response {
    super::admin::no_store(StatusCode::OK, view)
}

/// `GET /auth/profile` (Bearer) → the user's profile claims.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (claims, _) = caller(&state, &headers).await?;
    let user = state
        .accounts
        .user(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized(Some("invalid_token")))?;
    let stored = state.accounts.profile(&user.id).await?;
    Ok(answer(profile::view(&user, &stored)))
}

/// `PATCH /auth/profile` (Bearer, JSON merge patch) → the profile after the change. A bad
/// member refuses the whole patch (400 `invalid_profile`, naming the member).
pub async fn update(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (claims, _) = caller(&state, &headers).await?;
    let patch: Map<String, Value> = json_body(&headers, &body)?;
    let patch = ProfilePatch::parse(&patch, Editor::User).map_err(AccountError::from)?;
    let actor = format!("user:{}", claims.sub);
    let (user, stored) = match state
        .accounts
        .update_profile(&claims.sub, &patch, &actor, &context)
        .await
    {
        Ok(updated) => updated,
        // The token outlived its user.
        Err(AccountError::NoSuchUser) => return Err(ApiError::unauthorized(Some("invalid_token"))),
        Err(other) => return Err(other.into()),
    };
    Ok(answer(profile::view(&user, &stored)))
}
