//! Passkeys in the first-party JSON API (docs/api.md): a signed-in user registers one
//! (`POST /auth/mfa/webauthn`, then `…/confirm` with what `navigator.credentials.create`
//! returned), and anyone signs in with one without a name or password
//! (`POST /auth/passkey/options`, then `POST /auth/passkey/login` with what
//! `navigator.credentials.get` returned). As a second factor a passkey answers
//! `POST /auth/mfa/challenge` and `POST /auth/mfa/verify` (method `webauthn`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tessera_idp::mfa::{PasskeyOptions, Purpose};
use tessera_idp::state::AppState;

use super::accounts::{delivery, signed_in};
use super::mfa::{no_store, signed_in_user};
use super::request::{json_body, optional_json_body, Context};
use crate::error::ApiError;

/// `{<token name>: token, publicKey: {...}}`.
pub(super) fn options_body(token_name: &str, options: PasskeyOptions) -> Value {
    let mut body = options.options;
    body[token_name] = Value::from(options.token);
    body
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    name: Option<String>,
}

/// `POST /auth/mfa/webauthn {name?}` → `{registrationToken, publicKey}`: the options of
/// `navigator.credentials.create`; the token is for `POST /auth/mfa/webauthn/confirm`.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let request: RegisterRequest = optional_json_body(&headers, &body)?;
    let options = state
        .mfa
        .begin_passkey_registration(&user, request.name.as_deref())
        .await?;
    Ok(no_store(
        StatusCode::OK,
        options_body("registrationToken", options),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfirmRequest {
    registration_token: String,
    credential: Box<RawValue>,
}

/// `POST /auth/mfa/webauthn/confirm {registrationToken, credential}` → `201 {factorId,
/// recoveryCodes}` (codes for the account's first factor only).
pub async fn confirm(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let request: ConfirmRequest = json_body(&headers, &body)?;
    let (factor_id, codes) = state
        .mfa
        .finish_passkey_registration(
            &user,
            &request.registration_token,
            request.credential.get(),
            &context,
        )
        .await?;
    Ok(no_store(
        StatusCode::CREATED,
        json!({ "factorId": factor_id, "recoveryCodes": codes }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OptionsRequest {
    /// The channel of the session to start, as in `POST /auth/login`.
    channel: Option<String>,
    /// The roles it activates, as in `POST /auth/login`.
    roles: Option<Vec<String>>,
}

/// `POST /auth/passkey/options {channel?}` → `{passkeyToken, publicKey}`: the options of
/// `navigator.credentials.get` for a discoverable credential.
pub async fn options(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: OptionsRequest = optional_json_body(&headers, &body)?;
    let options = state
        .mfa
        .begin_passkey_sign_in(Purpose::Login {
            channel: request.channel,
            roles: request.roles,
        })
        .await?;
    Ok(no_store(StatusCode::OK, options_body("passkeyToken", options)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    passkey_token: String,
    credential: Box<RawValue>,
    refresh_token_delivery: Option<String>,
    device_id: Option<String>,
}

/// `POST /auth/passkey/login {passkeyToken, credential}` → the token pair of
/// `POST /auth/login` (amr `hwk`|`swk`, `user`, `mfa`).
pub async fn login(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: LoginRequest = json_body(&headers, &body)?;
    let delivery = delivery(request.refresh_token_delivery.as_deref())?;
    let presented = super::alerts::presented_device(&headers, request.device_id.as_deref())?;
    let issued = state
        .accounts
        .login_with_passkey(&request.passkey_token, request.credential.get(), &context)
        .await?;
    Ok(signed_in(
        &state,
        issued,
        delivery,
        presented.as_deref(),
        &context,
        Vec::new(),
    )
    .await)
}
