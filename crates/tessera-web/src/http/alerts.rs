//! The device cookie, and the "end that session" link of the new sign-in e-mail:
//! `GET /auth/sign-in/end?token=…` shows a confirmation (mail scanners fetch links, so a GET
//! never ends anything); its form posts back with a CSRF token, and only that `POST` uses
//! the single-use link and ends the session — as `DELETE /auth/sessions/{id}` would.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_proto::paths;

use super::oidc::{csrf_ok, forged, form_of, secure_attr, set_cookie, with_csrf_at};
use super::request::{cookie, Context};
use crate::error::ApiError;
use crate::pages::{self, EndSignInView, ErrorKind, Hidden};
use tessera_idp::alerts::{
    is_valid_device_id, utc_text, EndLink, LinkTarget, DEVICE_COOKIE, DEVICE_ID_HEADER,
};
use tessera_idp::audit::RequestContext;
use tessera_idp::mail::Locale;
use tessera_idp::oidc::authorize;
use tessera_idp::state::AppState;

/// Sets the device cookie: long-lived, sent on every path (the hosted login and the JSON
/// API both read it), never to scripts.
pub(super) fn set_device_cookie(state: &AppState, response: &mut Response, device: &str) {
    set_cookie(
        response,
        format!(
            "{DEVICE_COOKIE}={device}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            state.alerts.device_cookie_max_age(),
            secure_attr(state)
        ),
    );
}

/// The device id of a JSON API login: `deviceId` of the body, else the `X-Device-Id`
/// header, else the device cookie. A malformed id the client sent explicitly is an error;
/// a malformed cookie is ignored (a fresh id replaces it).
pub(super) fn presented_device(
    headers: &HeaderMap,
    body_field: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let invalid = |what: &str| {
        ApiError::bad_request(format!("{what} must be 16-128 characters of A-Z a-z 0-9 - _ ."))
            .extension("code", serde_json::Value::from("invalid_request"))
    };
    if let Some(id) = body_field {
        return if is_valid_device_id(id) {
            Ok(Some(id.to_owned()))
        } else {
            Err(invalid("deviceId"))
        };
    }
    let mut values = headers.get_all(DEVICE_ID_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => return Err(invalid("X-Device-Id (sent once)")),
        (Some(value), None) => {
            return match value.to_str().ok().filter(|id| is_valid_device_id(id)) {
                Some(id) => Ok(Some(id.to_owned())),
                None => Err(invalid("X-Device-Id")),
            }
        }
        (None, _) => {}
    }
    Ok(cookie(headers, DEVICE_COOKIE).filter(|id| is_valid_device_id(id)))
}

fn locale(headers: &HeaderMap) -> Locale {
    pages::locale_for(
        None,
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    )
}

fn invalid_link(headers: &HeaderMap) -> Response {
    pages::error_page(locale(headers), StatusCode::BAD_REQUEST, ErrorKind::LinkInvalid).into_response()
}

fn server_error(headers: &HeaderMap, err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "ending a sign-in from its link failed");
    pages::error_page(
        locale(headers),
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::ServerError,
    )
    .into_response()
}

/// The `token` parameter, if given exactly once.
fn token_of(raw: &[u8]) -> Option<String> {
    let (params, repeated) = authorize::parse_params(raw);
    if repeated {
        return None;
    }
    params.get("token").cloned()
}

/// `GET /auth/sign-in/end?token=…`: the confirmation page, or a 400 page for a link that
/// cannot be used. Changes nothing.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(token) = token_of(query.unwrap_or_default().as_bytes()) else {
        return invalid_link(&headers);
    };
    let link = match state.alerts.peek_end_link(&token).await {
        Ok(Some(link)) => link,
        Ok(None) => return invalid_link(&headers),
        Err(err) => return server_error(&headers, &err),
    };
    let when = utc_text(link.created_at);
    let hidden = [("token", token.as_str())];
    with_csrf_at(&state, paths::END_SIGN_IN, |csrf| {
        pages::end_sign_in_page(
            locale(&headers),
            &EndSignInView {
                action: paths::END_SIGN_IN,
                csrf,
                when: &when,
                hidden: Hidden(&hidden),
            },
        )
    })
}

/// `POST /auth/sign-in/end` (`csrf`, `token`, `decision=end|keep`): with `end`, uses the
/// link up and ends its session; with anything else, changes nothing.
pub async fn end(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_of(&body);
    if !csrf_ok(&headers, &form) {
        return forged(&headers);
    }
    let Some(token) = token_of(&body) else {
        return invalid_link(&headers);
    };
    if form.get("decision").map(String::as_str) != Some("end") {
        return match state.alerts.peek_end_link(&token).await {
            Ok(Some(_)) => pages::sign_in_kept_page(locale(&headers)).into_response(),
            Ok(None) => invalid_link(&headers),
            Err(err) => server_error(&headers, &err),
        };
    }
    let link = match state.alerts.consume_end_link(&token).await {
        Ok(Some(link)) => link,
        Ok(None) => return invalid_link(&headers),
        Err(err) => return server_error(&headers, &err),
    };
    if let Err(response) = end_target(&state, &link, &context, &headers).await {
        return response;
    }
    pages::sign_in_ended_page(locale(&headers)).into_response()
}

/// Ends what the link names, as its user (the session may have ended already: fine).
async fn end_target(
    state: &AppState,
    link: &EndLink,
    context: &RequestContext,
    headers: &HeaderMap,
) -> Result<(), Response> {
    const REASON: &str = "ended_from_new_sign_in_email";
    let actor = format!("user:{}", link.user_id);
    match &link.target {
        LinkTarget::Token(id) => {
            // Bound at creation to a session of this user; checked again all the same.
            let owned = state
                .tokens
                .sessions_of(&link.user_id)
                .await
                .map_err(|err| server_error(headers, &err))?
                .iter()
                .any(|s| &s.id == id);
            if owned {
                state
                    .tokens
                    .end_session(id, REASON, &actor, context)
                    .await
                    .map_err(|err| server_error(headers, &err))?;
            }
        }
        LinkTarget::Sso(id) => {
            state
                .provider
                .end_sso(id, REASON, &actor, context)
                .await
                .map_err(|err| server_error(headers, &err))?;
        }
    }
    Ok(())
}
