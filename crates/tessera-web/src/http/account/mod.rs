//! The account pages (`/account`, R15, R9, R33): a hosted app signed in through the portal
//! machinery ([`super::portal`]) whose handlers call the same services as the JSON API.
//! Every form is an HTML form that works without JavaScript; every form of a signed-in
//! page is checked with [`Signed::form_allowed`].

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tessera_idp::accounts::ACCOUNT_APP;
use tessera_idp::state::AppState;
use tower_http::set_header::SetResponseHeaderLayer;

use super::portal::{self, Signed};
pub(crate) use super::portal::{bad_form, page_form, refused_form};
use super::request::Context;
use crate::pages::portal::account::{self as view, path, Frame};
use crate::pages::portal::{Expiry, SignedInShell};

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

/// `GET /account/session`: the signed-in session's lifetimes as JSON
/// ([`portal::session_status`]).
async fn session_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    portal::session_status(&state, &ACCOUNT_APP, &headers, &method, &uri).await
}

/// `POST /account/session/extend` ([`portal::session_extend`]).
async fn session_extend(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    portal::session_extend(&state, &ACCOUNT_APP, &headers, &uri, &body).await
}
