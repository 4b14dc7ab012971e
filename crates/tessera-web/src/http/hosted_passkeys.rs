//! The passkey button of the hosted login page (`/oauth2/authorize`): the page's script
//! posts the login form's fields to `POST /oauth2/authorize/passkey/options` for the
//! options of a usernameless sign-in, asks the authenticator, and submits the form to
//! `POST /oauth2/authorize/passkey` with its answer. Both check the form's CSRF token and
//! the carried authorization request like every hosted form; a passkey sign-in then goes on
//! as a password sign-in with its factor would (SSO session, consent, redirect).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_idp::accounts::AccountError;
use tessera_idp::mfa::{MfaError, Purpose};
use tessera_idp::oidc::authorize::AuthorizeError;
use tessera_idp::state::AppState;

use super::mfa::no_store;
use super::oidc::{authorize_error, login_page, posted_form, signed_in};
use super::passkeys::options_body;
use super::request::Context;
use crate::error::ApiError;
use crate::pages::LoginError;

/// `POST /oauth2/authorize/passkey/options` (the passkey form's fields) →
/// `{passkeyToken, publicKey}`.
pub async fn options(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = posted_form(&state, &headers, &body).await {
        return refused;
    }
    match state.mfa.begin_passkey_sign_in(Purpose::Authorize).await {
        Ok(options) => no_store(StatusCode::OK, options_body("passkeyToken", options)),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// `POST /oauth2/authorize/passkey`: the passkey form with the authenticator's answer.
pub async fn sign_in(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, request) = match posted_form(&state, &headers, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let refused = |error| login_page(&state, &headers, &request, Some(error));
    let (Some(token), Some(credential)) = (form.get("passkey_token"), form.get("credential")) else {
        return refused(LoginError::PasskeyRefused);
    };
    let is_authorize = |purpose: &Purpose| *purpose == Purpose::Authorize;
    let passed = match state
        .mfa
        .finish_passkey_sign_in(token, is_authorize, credential, &context)
        .await
    {
        Ok(passed) => passed,
        Err(MfaError::Throttled { retry_after }) => {
            return refused(LoginError::TooManyAttempts {
                retry_after_secs: retry_after,
            })
        }
        Err(MfaError::InvalidChallenge) => return refused(LoginError::SignInExpired),
        Err(MfaError::Store(err)) => return authorize_error(&state, &headers, AuthorizeError::Store(err)),
        Err(_) => return refused(LoginError::PasskeyRefused),
    };
    match state.accounts.admit_passkey_user(&passed.user, &context).await {
        Ok(()) => {}
        Err(AccountError::Disabled) => return refused(LoginError::AccountDisabled),
        Err(AccountError::EmailNotVerified) => return refused(LoginError::EmailNotVerified),
        Err(_) => return refused(LoginError::PasskeyRefused),
    }
    let amr = passed.amr().to_vec();
    signed_in(&state, &headers, &request, passed.user, &amr, &context).await
}
