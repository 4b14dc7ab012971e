//! The account's forms: change password, change e-mail (and the confirmation link's page),
//! delete the account. Each calls the accounts service the JSON API calls; each re-asks the
//! current password (counted by the login throttle).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tessera_idp::accounts::{AccountError, ACCOUNT_APP};
use tessera_idp::passwords::PolicyViolation;
use tessera_idp::state::AppState;

use super::{bad_form, here, page_form, refused_form, shell, signed, signed_form};
use crate::http::oidc::{csrf_ok, with_csrf_at};
use crate::http::portal::{self, Signed};
use crate::http::request::Context;
use crate::pages::portal::account::{
    self as view, path, BrokenRule, EmailView, FormError, Frame, PasswordRules, PasswordView,
};
use crate::pages::{self, ErrorKind};

/// The rules of `[passwords]`, for the pages that take a new password.
pub(crate) fn password_rules(state: &AppState) -> PasswordRules {
    let config = &state.config.passwords;
    PasswordRules {
        min_length: config.min_length,
        max_bytes: config.max_bytes,
        min_strength: config.min_strength,
        history: config.history,
    }
}

/// The form error of a refused account action; `None` for a failure that is not the
/// user's (the caller shows the server-error page).
pub(crate) fn form_error(err: &AccountError) -> Option<FormError> {
    Some(match err {
        AccountError::InvalidCredentials { .. } => FormError::WrongPassword,
        AccountError::Throttled { retry_after } => FormError::TooManyAttempts {
            retry_after_secs: *retry_after,
        },
        AccountError::Policy(violation) => FormError::Password {
            rule: match violation {
                PolicyViolation::TooShort { .. } => BrokenRule::TooShort,
                PolicyViolation::TooLong { .. } => BrokenRule::TooLong,
                PolicyViolation::TooWeak { .. } => BrokenRule::TooWeak,
                PolicyViolation::Reused { .. } => BrokenRule::Reused,
            },
            hint: match violation {
                PolicyViolation::TooWeak { warning, .. } => warning.clone(),
                _ => None,
            },
        },
        AccountError::InvalidEmail => FormError::InvalidEmail,
        AccountError::EmailTaken => FormError::EmailTaken,
        AccountError::Already(_) => FormError::SameEmail,
        _ => return None,
    })
}

fn field<'a>(form: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

// ---------------------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------------------

fn password_view(
    state: &AppState,
    signed: &Signed,
    uri: &Uri,
    error: Option<&FormError>,
    changed: bool,
) -> Response {
    let here = here(uri);
    let frame = Frame {
        here: &here,
        signed_in: Some(shell(state, signed)),
    };
    view::password_page(
        signed.locale,
        &frame,
        &PasswordView {
            rules: password_rules(state),
            error,
            changed,
        },
    )
    .into_response()
}

/// `GET /account/password[?changed=1]`.
pub async fn password_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    match signed(&state, &headers, &method, &uri).await {
        Ok(signed) => password_view(&state, &signed, &uri, None, query.contains_key("changed")),
        Err(sign_in) => sign_in,
    }
}

/// `POST /account/password` (`csrf`, `current_password`, `new_password`,
/// `repeat_password`): every other session of the user ends; this one stays.
pub async fn password(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_form(&state, &headers, &uri, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let page_uri = Uri::from_static(path::PASSWORD);
    let new = field(&form, "new_password");
    if new != field(&form, "repeat_password") {
        return password_view(&state, &signed, &page_uri, Some(&FormError::Mismatch), false);
    }
    match state
        .accounts
        .change_password(
            &signed.user.id,
            &signed.session.id,
            field(&form, "current_password"),
            new,
            &context,
        )
        .await
    {
        Ok(()) => portal::see_other(&format!("{}?changed=1", path::PASSWORD)),
        Err(err) => match form_error(&err) {
            Some(error) => password_view(&state, &signed, &page_uri, Some(&error), false),
            None => portal::server_error(signed.locale, &err),
        },
    }
}

// ---------------------------------------------------------------------------------------
// E-mail
// ---------------------------------------------------------------------------------------

fn email_view(
    state: &AppState,
    signed: &Signed,
    typed: Option<&str>,
    error: Option<&FormError>,
    sent_to: Option<&str>,
) -> Response {
    let frame = Frame {
        here: path::EMAIL,
        signed_in: Some(shell(state, signed)),
    };
    view::email_page(
        signed.locale,
        &frame,
        &EmailView {
            current: &signed.user.email,
            typed,
            error,
            sent_to,
        },
    )
    .into_response()
}

/// `GET /account/email`.
pub async fn email_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    match signed(&state, &headers, &method, &uri).await {
        Ok(signed) => email_view(&state, &signed, None, None, None),
        Err(sign_in) => sign_in,
    }
}

/// `POST /account/email` (`csrf`, `new_email`, `current_password`): sends the confirmation
/// link to the new address and a notice to the old one; nothing changes yet.
pub async fn email(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_form(&state, &headers, &uri, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let typed = field(&form, "new_email");
    match state
        .accounts
        .request_email_change(
            &signed.user.id,
            field(&form, "current_password"),
            typed,
            signed.locale,
            &context,
        )
        .await
    {
        Ok(new) => email_view(&state, &signed, None, None, Some(&new)),
        Err(err) => match form_error(&err) {
            Some(error) => email_view(&state, &signed, Some(typed), Some(&error), None),
            None => portal::server_error(signed.locale, &err),
        },
    }
}

/// The frame of a page shown to whoever opens a link (signed in or not).
fn link_frame(here: &str) -> Frame<'_> {
    Frame {
        here,
        signed_in: None,
    }
}

/// `GET /account/email/confirm?token=…`: a confirmation button, with a CSRF cookie beside
/// it; opening the link changes nothing (mail scanners open links).
pub async fn show_email_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let locale = portal::locale(&headers, None);
    let Some(token) = query.get("token").filter(|t| !t.is_empty() && t.len() <= 128) else {
        return pages::error_page(locale, StatusCode::BAD_REQUEST, ErrorKind::LinkInvalid).into_response();
    };
    with_csrf_at(&state, ACCOUNT_APP.base_path, |csrf| {
        view::email_confirm_page(locale, &link_frame(path::EMAIL_CONFIRM), csrf, token)
    })
}

/// `POST /account/email/confirm` (`csrf`, `token`): the change takes effect.
pub async fn confirm_email(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = portal::locale(&headers, None);
    let Some(form) = page_form(&headers, &body) else {
        return bad_form(locale);
    };
    if !csrf_ok(&headers, &form) || !portal::same_origin(&state, &headers) {
        return refused_form(locale);
    }
    let token = field(&form, "token");
    match state.accounts.confirm_email_change(token, &context).await {
        Ok(address) => {
            view::email_changed_page(locale, &link_frame(path::EMAIL_CONFIRM), &address).into_response()
        }
        Err(AccountError::InvalidLink) => {
            pages::error_page(locale, StatusCode::BAD_REQUEST, ErrorKind::LinkInvalid).into_response()
        }
        Err(AccountError::EmailTaken) => pages::error_page(
            locale,
            StatusCode::CONFLICT,
            ErrorKind::InvalidRequest("the new address is no longer available".into()),
        )
        .into_response(),
        Err(err) => portal::server_error(locale, &err),
    }
}

// ---------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------

/// `GET /account/delete`.
pub async fn delete_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    match signed(&state, &headers, &method, &uri).await {
        Ok(signed) => delete_view(&state, &signed, None),
        Err(sign_in) => sign_in,
    }
}

fn delete_view(state: &AppState, signed: &Signed, error: Option<&FormError>) -> Response {
    let frame = Frame {
        here: path::DELETE,
        signed_in: Some(shell(state, signed)),
    };
    view::delete_page(signed.locale, &frame, error).into_response()
}

/// `POST /account/delete` (`csrf`, `current_password`, `confirm=yes`): the account is
/// deleted (every session ends), audited with the user as actor; the browser is signed out.
pub async fn delete(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_form(&state, &headers, &uri, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    if field(&form, "confirm") != "yes" {
        return delete_view(&state, &signed, Some(&FormError::NotConfirmed));
    }
    match state
        .accounts
        .delete_own_account(&signed.user.id, field(&form, "current_password"), &context)
        .await
    {
        Ok(()) => {
            let mut response = view::deleted_page(signed.locale, &link_frame(path::HOME)).into_response();
            match portal::forget(&state, &ACCOUNT_APP, &signed, &mut response).await {
                Ok(()) => response,
                Err(err) => portal::server_error(signed.locale, &err),
            }
        }
        Err(err) => match form_error(&err) {
            Some(error) => delete_view(&state, &signed, Some(&error)),
            None => portal::server_error(signed.locale, &err),
        },
    }
}
