//! The account pages (`/account`, R15, R9, R33): a hosted app signed in through the portal
//! machinery ([`super::portal`]) whose handlers call the same services as the JSON API.
//! Every form is an HTML form that works without JavaScript; every form of a signed-in
//! page is checked with [`Signed::form_allowed`].

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tessera_idp::accounts::ACCOUNT_APP;
use tessera_idp::mail::Locale;
use tessera_idp::state::AppState;
use tower_http::set_header::SetResponseHeaderLayer;

use super::portal::{self, Signed};
use super::request::Context;
use crate::pages::portal::account::{self as view, path, Frame};
use crate::pages::portal::{Expiry, SignedInShell};
use crate::pages::{self, ErrorKind};

mod forms;
mod security;
mod sessions;
mod signed_out;

pub use forms::{
    confirm_email, delete, delete_form, email, email_form, password, password_form, show_email_confirm,
};
pub use security::{confirm_totp, enrol_totp, remove, rename, security, unlink};
pub use sessions::{end_others, end_session, sessions};
pub use signed_out::{
    forgot, forgot_form, reset, reset_form, sign_up, sign_up_form, verify_email, verify_email_form,
};

/// The longest a page form's body may be (the router's limit is larger).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The account pages' routes. Their pages send the referrer to this origin only
/// (`same-origin`, not the hosted pages' `no-referrer`): with `no-referrer` a browser sends
/// `Origin: null` on a form post, and the origin check of every form wants the real one.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(path::HOME, get(home))
        .route(path::CALLBACK, get(callback))
        .route(path::SIGN_OUT, post(sign_out))
        .route(path::LANGUAGE, get(language))
        .route(path::SESSION_STATUS, get(session_status))
        .route(path::SESSION_EXTEND, post(session_extend))
        .route(path::SESSIONS, get(sessions))
        .route(path::SESSIONS_END, post(end_session))
        .route(path::SESSIONS_END_OTHERS, post(end_others))
        .route(path::PASSWORD, get(password_form).post(password))
        .route(path::EMAIL, get(email_form).post(email))
        .route(path::EMAIL_CONFIRM, get(show_email_confirm).post(confirm_email))
        .route(path::DELETE, get(delete_form).post(delete))
        .route(path::SIGN_UP, get(sign_up_form).post(sign_up))
        .route(path::VERIFY_EMAIL, get(verify_email_form).post(verify_email))
        .route(path::FORGOT, get(forgot_form).post(forgot))
        .route(path::RESET, get(reset_form).post(reset))
        .route(path::SECURITY, get(security))
        .route(path::SECURITY_RENAME, post(rename))
        .route(path::SECURITY_REMOVE, post(remove))
        .route(path::SECURITY_TOTP, post(enrol_totp))
        .route(path::SECURITY_TOTP_CONFIRM, post(confirm_totp))
        .route(path::SECURITY_UNLINK, post(unlink))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// The signed-in request for `uri`, or the redirect to sign in.
pub(super) async fn signed(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
) -> Result<Signed, Response> {
    portal::signed_in(state, &ACCOUNT_APP, headers, method, uri, true).await
}

/// The frame of a signed-in page at `here`.
pub(super) fn shell<'a>(state: &AppState, signed: &'a Signed) -> SignedInShell<'a> {
    SignedInShell {
        csrf: signed.csrf(),
        who: &signed.user.email,
        sign_out_url: path::SIGN_OUT,
        expiry: Expiry {
            idle_expires_at: signed.session.idle_expires_at,
            absolute_expires_at: signed.session.absolute_expires_at,
            now: state.clock.now(),
            warn_before_secs: portal::warn_before_secs(state),
            status_url: path::SESSION_STATUS,
            extend_url: path::SESSION_EXTEND,
        },
    }
}

pub(super) fn here(uri: &Uri) -> String {
    let here = uri.path_and_query().map_or(path::HOME, |pq| pq.as_str());
    portal::page_of_app(&ACCOUNT_APP, here).unwrap_or_else(|| path::HOME.to_owned())
}

/// A page form: `application/x-www-form-urlencoded`, each field at most once. `None` for
/// anything else (the caller answers 400).
pub(crate) fn page_form(headers: &HeaderMap, body: &[u8]) -> Option<BTreeMap<String, String>> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form || body.len() > MAX_FORM_BYTES {
        return None;
    }
    let mut form = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if form.insert(key.into_owned(), value.into_owned()).is_some() {
            return None;
        }
    }
    Some(form)
}

/// The answer to a form that failed its CSRF or origin check, or was malformed.
pub(super) fn refused_form(locale: Locale) -> Response {
    pages::error_page(
        locale,
        StatusCode::FORBIDDEN,
        ErrorKind::InvalidRequest("the form expired or did not come from this site; reload the page".into()),
    )
    .into_response()
}

pub(super) fn bad_form(locale: Locale) -> Response {
    pages::error_page(
        locale,
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidRequest("the form is malformed".into()),
    )
    .into_response()
}

/// A signed-in form post: the signed-in state and the form, or the refusal.
pub(super) async fn signed_form(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(Signed, BTreeMap<String, String>), Response> {
    let signed = signed(state, headers, &Method::POST, uri).await?;
    let Some(form) = page_form(headers, body) else {
        return Err(bad_form(signed.locale));
    };
    if !signed.form_allowed(state, headers, &form) {
        return Err(refused_form(signed.locale));
    }
    Ok((signed, form))
}

/// `GET /account`.
async fn home(State(state): State<AppState>, headers: HeaderMap, method: Method, uri: Uri) -> Response {
    let signed = match signed(&state, &headers, &method, &uri).await {
        Ok(signed) => signed,
        Err(sign_in) => return sign_in,
    };
    let here = here(&uri);
    let frame = Frame {
        here: &here,
        signed_in: Some(shell(&state, &signed)),
    };
    view::home_page(
        signed.locale,
        &frame,
        &view::HomeView {
            email: &signed.user.email,
            email_verified: signed.user.email_verified_at.is_some(),
            member_since: signed.user.created_at,
        },
    )
    .into_response()
}

/// `GET /account/callback`.
async fn callback(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    portal::callback(&state, &ACCOUNT_APP, &context, &headers, &query).await
}

/// `POST /account/signout`.
async fn sign_out(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (signed, _) = match signed_form(&state, &headers, &uri, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    portal::sign_out(&state, &ACCOUNT_APP, &signed, &context)
        .await
        .unwrap_or_else(|err| portal::server_error(signed.locale, &err))
}

/// `GET /account/language?set=ko|en&return_to=…`.
async fn language(State(state): State<AppState>, Query(query): Query<BTreeMap<String, String>>) -> Response {
    portal::choose_language(&state, &ACCOUNT_APP, &query)
}

/// The lifetimes the expiry warning reads (docs/pages.md).
fn lifetimes(state: &AppState, idle: i64, absolute: i64) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "idleExpiresAt": idle,
        "absoluteExpiresAt": absolute,
        "now": state.clock.now(),
        "warnBeforeSecs": portal::warn_before_secs(state),
    }))
}

/// `GET /account/session`: the signed-in session's lifetimes as JSON (no activity: reading
/// them does not extend the session); 401 when it has ended.
async fn session_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    match portal::signed_in(&state, &ACCOUNT_APP, &headers, &method, &uri, false).await {
        Ok(signed) => {
            let mut response = lifetimes(
                &state,
                signed.session.idle_expires_at,
                signed.session.absolute_expires_at,
            )
            .into_response();
            no_store(&mut response);
            response
        }
        Err(_) => session_ended(),
    }
}

fn session_ended() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": "session_ended" })),
    )
        .into_response();
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
}

/// `POST /account/session/extend` (`csrf`, `return_to`): pushes the idle expiry out
/// through the token service's extend, as `POST /auth/session/extend` does. JSON for the
/// script (`Accept: application/json`), else back to the page.
async fn session_extend(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let signed = match portal::signed_in(&state, &ACCOUNT_APP, &headers, &Method::POST, &uri, false).await {
        Ok(signed) => signed,
        Err(sign_in) if wants_json => {
            drop(sign_in);
            return session_ended();
        }
        Err(sign_in) => return sign_in,
    };
    let Some(form) = page_form(&headers, &body) else {
        return bad_form(signed.locale);
    };
    if !signed.form_allowed(&state, &headers, &form) {
        return refused_form(signed.locale);
    }
    let extended = match state.tokens.extend_session(&signed.session.id).await {
        Ok(Some(session)) => session,
        Ok(None) => return session_ended(),
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    if wants_json {
        let mut response =
            lifetimes(&state, extended.idle_expires_at, extended.absolute_expires_at).into_response();
        no_store(&mut response);
        return response;
    }
    let back = form
        .get("return_to")
        .and_then(|r| portal::page_of_app(&ACCOUNT_APP, r))
        .unwrap_or_else(|| path::HOME.to_owned());
    portal::see_other(&back)
}
