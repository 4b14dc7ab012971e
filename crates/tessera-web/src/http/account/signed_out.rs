//! The account pages shown signed out (R15): sign up, the verification link's page, forgot
//! password, the reset link's page. Their forms carry the hosted pages' double-submit CSRF
//! token (a cookie scoped to `/account` and a hidden field) and must come from this origin.
//! Each calls the accounts service the JSON API calls, so every rule (policy, throttles,
//! the same answer for known and unknown addresses) is the one rule.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_idp::accounts::{AccountError, ACCOUNT_APP};
use tessera_idp::state::AppState;

use super::forms::{form_error, password_rules};
use super::{bad_form, page_form, refused_form};
use crate::http::oidc::{csrf_ok, with_csrf_at};
use crate::http::portal;
use crate::http::request::Context;
use crate::pages::portal::account::{self as view, path, FormError, Frame, ResetView, SignUpView};
use crate::pages::{self, ErrorKind};
use tessera_idp::mail::Locale;

fn frame(here: &str) -> Frame<'_> {
    Frame {
        here,
        signed_in: None,
    }
}

fn field<'a>(form: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

/// A signed-out form post: the form, or the refusal page (malformed, CSRF, another
/// origin).
fn posted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    locale: Locale,
) -> Result<BTreeMap<String, String>, Box<Response>> {
    let form = page_form(headers, body).ok_or_else(|| Box::new(bad_form(locale)))?;
    if !csrf_ok(headers, &form) || !portal::same_origin(state, headers) {
        return Err(Box::new(refused_form(locale)));
    }
    Ok(form)
}

/// A page with a fresh CSRF cookie for `/account`.
fn with_csrf(state: &AppState, render: impl FnOnce(&str) -> pages::Page) -> Response {
    with_csrf_at(state, ACCOUNT_APP.base_path, render)
}

fn link_token(query: &BTreeMap<String, String>) -> Option<&str> {
    query
        .get("token")
        .map(String::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

fn invalid_link(locale: Locale) -> Response {
    pages::error_page(locale, StatusCode::BAD_REQUEST, ErrorKind::LinkInvalid).into_response()
}

// ---------------------------------------------------------------------------------------
// Sign up and verification
// ---------------------------------------------------------------------------------------

fn sign_up_view(
    state: &AppState,
    locale: Locale,
    typed: Option<&str>,
    error: Option<&FormError>,
) -> Response {
    with_csrf(state, |csrf| {
        view::sign_up_page(
            locale,
            &frame(path::SIGN_UP),
            &SignUpView {
                csrf,
                typed_email: typed,
                rules: password_rules(state),
                error,
            },
        )
    })
}

/// `GET /account/signup`.
pub async fn sign_up_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    sign_up_view(&state, portal::locale(&headers, None), None, None)
}

/// `POST /account/signup` (`csrf`, `email`, `password`, `repeat_password`): as
/// `POST /auth/signup`; an address that has an account gets a notice by mail and the page
/// the same answer.
pub async fn sign_up(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = portal::locale(&headers, None);
    let form = match posted(&state, &headers, &body, locale) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let email = field(&form, "email");
    let password = field(&form, "password");
    if password != field(&form, "repeat_password") {
        return sign_up_view(&state, locale, Some(email), Some(&FormError::Mismatch));
    }
    match state.accounts.signup(email, password, locale, &context).await {
        Ok(address) => view::sign_up_done_page(locale, &frame(path::SIGN_UP), &address).into_response(),
        Err(err) => match form_error(&err) {
            Some(error) => sign_up_view(&state, locale, Some(email), Some(&error)),
            None => portal::server_error(locale, &err),
        },
    }
}

/// `GET /account/verify-email?token=…`: a button; opening the link verifies nothing.
pub async fn verify_email_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let locale = portal::locale(&headers, None);
    let Some(token) = link_token(&query) else {
        return invalid_link(locale);
    };
    with_csrf(&state, |csrf| {
        view::verify_email_page(locale, &frame(path::VERIFY_EMAIL), csrf, token)
    })
}

/// `POST /account/verify-email` (`csrf`, `token`).
pub async fn verify_email(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = portal::locale(&headers, None);
    let form = match posted(&state, &headers, &body, locale) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    match state.accounts.verify_email(field(&form, "token"), &context).await {
        Ok(address) => view::verified_page(locale, &frame(path::VERIFY_EMAIL), &address).into_response(),
        Err(AccountError::InvalidLink) => invalid_link(locale),
        Err(err) => portal::server_error(locale, &err),
    }
}

// ---------------------------------------------------------------------------------------
// Forgot and reset
// ---------------------------------------------------------------------------------------

/// `GET /account/password/forgot`.
pub async fn forgot_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let locale = portal::locale(&headers, None);
    with_csrf(&state, |csrf| {
        view::forgot_page(locale, &frame(path::FORGOT), csrf, None)
    })
}

/// `POST /account/password/forgot` (`csrf`, `email`): the same page whether or not the
/// address has an account (the work is done after the answer, as for the JSON API).
pub async fn forgot(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = portal::locale(&headers, None);
    let form = match posted(&state, &headers, &body, locale) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    state
        .accounts
        .forgot_password(field(&form, "email"), locale, &context);
    view::forgot_done_page(locale, &frame(path::FORGOT)).into_response()
}

fn reset_view(state: &AppState, locale: Locale, token: &str, error: Option<&FormError>) -> Response {
    with_csrf(state, |csrf| {
        view::reset_page(
            locale,
            &frame(path::RESET),
            &ResetView {
                csrf,
                token,
                rules: password_rules(state),
                error,
            },
        )
    })
}

/// `GET /account/password/reset?token=…`.
pub async fn reset_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let locale = portal::locale(&headers, None);
    match link_token(&query) {
        Some(token) => reset_view(&state, locale, token, None),
        None => invalid_link(locale),
    }
}

/// `POST /account/password/reset` (`csrf`, `token`, `password`, `repeat_password`): as
/// `POST /auth/password/reset`; every session of the user ends.
pub async fn reset(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = portal::locale(&headers, None);
    let form = match posted(&state, &headers, &body, locale) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let token = field(&form, "token");
    let password = field(&form, "password");
    if password != field(&form, "repeat_password") {
        return reset_view(&state, locale, token, Some(&FormError::Mismatch));
    }
    match state.accounts.reset_password(token, password, &context).await {
        Ok(_) => view::reset_done_page(locale, &frame(path::RESET)).into_response(),
        Err(AccountError::InvalidLink) => invalid_link(locale),
        Err(err) => match form_error(&err) {
            Some(error) => reset_view(&state, locale, token, Some(&error)),
            None => portal::server_error(locale, &err),
        },
    }
}
