//! Second factors in the first-party JSON API (docs/api.md): the second step of a login
//! that answered `mfa_required`, and a signed-in user's own factors — enrol and confirm a
//! TOTP authenticator, list, rename and remove factors, new recovery codes.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tessera_idp::accounts::AccountError;
use tessera_idp::audit::RequestContext;
use tessera_idp::mfa::{self, MfaError};
use tessera_idp::state::AppState;
use tessera_store::durable::UserRecord;

use super::accounts::{delivery, signed_in};
use super::request::{json_body, optional_json_body, Context};
use super::sessions::caller;
use crate::error::ApiError;

impl From<MfaError> for ApiError {
    fn from(err: MfaError) -> Self {
        let code = |e: ApiError, code: &str| e.extension("code", Value::from(code));
        match err {
            MfaError::InvalidChallenge => code(
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid-mfa-token", "Sign-in expired")
                    .detail("the mfaToken is unknown, used or expired: log in again"),
                "invalid_mfa_token",
            ),
            MfaError::InvalidCode => code(
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid-code", "Invalid code")
                    .detail("the code is wrong, expired or was used before"),
                "invalid_code",
            ),
            MfaError::InvalidCredential => code(
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid-credential", "Passkey refused")
                    .detail("the passkey's answer does not verify: ask for new options and try again"),
                "invalid_credential",
            ),
            MfaError::Throttled { retry_after } => code(
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-attempts",
                    "Too many attempts",
                )
                .detail("too many failed attempts; try again later"),
                "too_many_attempts",
            )
            .retry_after(retry_after),
            MfaError::NoSuchFactor => ApiError::not_found().detail("no such factor"),
            MfaError::Invalid(reason) => code(ApiError::bad_request(reason), "invalid_request"),
            MfaError::FreshSignInRequired => code(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "reauthentication-required",
                    "Password required",
                )
                .detail("removing the last factor needs your password: send {\"password\": …}"),
                "reauthentication_required",
            ),
            MfaError::Crypto(cause) => ApiError::internal().caused_by(cause),
            MfaError::Store(err) => err.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    mfa_token: String,
    /// `totp`, `email_otp`, `sms_otp`, `recovery_code` or `webauthn`.
    method: String,
    /// The code of a code method.
    code: Option<String>,
    /// `webauthn`: the `PublicKeyCredential` from `navigator.credentials.get`, as JSON.
    credential: Option<Box<RawValue>>,
    refresh_token_delivery: Option<String>,
    device_id: Option<String>,
}

/// What answers a challenge: the code, or for `webauthn` the credential's JSON text.
pub(super) fn answer<'a>(
    method: &str,
    code: Option<&'a str>,
    credential: Option<&'a RawValue>,
) -> Result<&'a str, ApiError> {
    let answer = if method == mfa::WEBAUTHN {
        credential.map(RawValue::get)
    } else {
        code
    };
    answer.ok_or_else(|| {
        ApiError::bad_request(if method == mfa::WEBAUTHN {
            "the webauthn method answers with `credential`"
        } else {
            "missing `code`"
        })
    })
}

/// `POST /auth/mfa/verify {mfaToken, method, code | credential}` → the token pair of
/// `POST /auth/login`.
pub async fn verify(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: VerifyRequest = json_body(&headers, &body)?;
    let delivery = delivery(request.refresh_token_delivery.as_deref())?;
    let presented = super::alerts::presented_device(&headers, request.device_id.as_deref())?;
    let (issued, recovery_codes) = state
        .accounts
        .login_with_factor(
            &request.mfa_token,
            &request.method,
            answer(
                &request.method,
                request.code.as_deref(),
                request.credential.as_deref(),
            )?,
            &context,
        )
        .await?;
    Ok(signed_in(
        &state,
        issued,
        delivery,
        presented.as_deref(),
        &context,
        recovery_codes,
    )
    .await)
}

/// The signed-in user of a Bearer token.
pub(super) async fn signed_in_user(state: &AppState, headers: &HeaderMap) -> Result<UserRecord, ApiError> {
    let (claims, _) = caller(state, headers).await?;
    state
        .accounts
        .user(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized(Some("invalid_token")))
}

fn factor_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let unknown = || ApiError::not_found().detail("no such factor");
    let Ok(Path(id)) = path else {
        return Err(unknown());
    };
    let plausible = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    plausible.then_some(id).ok_or_else(unknown)
}

pub(super) fn no_store(status: StatusCode, body: Value) -> Response {
    super::admin::no_store(status, body)
}

/// `GET /auth/mfa` → `{factors: [...], recoveryCodesLeft}`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let factors = state.mfa.factors(&user.id).await?;
    let methods = state.mfa.methods(&user.id).await?;
    Ok(no_store(
        StatusCode::OK,
        json!({ "factors": factors, "methods": methods }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    name: Option<String>,
}

/// `POST /auth/mfa/totp {name?}` → `{factorId, secret, otpauthUri, qrSvg}`: shown once; the
/// factor works after `POST /auth/mfa/totp/confirm`.
pub async fn enrol_totp(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let request: EnrolRequest = optional_json_body(&headers, &body)?;
    let enrolment = state
        .mfa
        .enrol_totp(&user, request.name.as_deref(), &context)
        .await?;
    Ok(no_store(StatusCode::CREATED, enrolment_body(&enrolment)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfirmRequest {
    code: String,
    factor_id: Option<String>,
}

/// `POST /auth/mfa/totp/confirm {code, factorId?}` → `{recoveryCodes: [...]}` (the first
/// factor's; empty for later ones).
pub async fn confirm_totp(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let request: ConfirmRequest = json_body(&headers, &body)?;
    let codes = state
        .mfa
        .confirm_totp(&user, request.factor_id.as_deref(), &request.code, &context)
        .await?;
    Ok(no_store(StatusCode::OK, json!({ "recoveryCodes": codes })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    /// Needed for the last factor: the account's password, checked under the login throttle.
    password: Option<String>,
}

/// `DELETE /auth/mfa/{id}` (with `{password}` for the last factor) → 204.
pub async fn remove(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let id = factor_id(path)?;
    let request: RemoveRequest = optional_json_body(&headers, &body)?;
    let fresh = match &request.password {
        Some(password) => match state.accounts.authenticate(&user.email, password, &context).await {
            Ok(same) if same.id == user.id => true,
            Ok(_) | Err(AccountError::InvalidCredentials { .. }) => {
                return Err(ApiError::from(AccountError::InvalidCredentials {
                    captcha_required: false,
                }))
            }
            Err(err) => return Err(err.into()),
        },
        None => false,
    };
    state
        .mfa
        .remove(&user.id, &id, fresh, &format!("user:{}", user.id), &context)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    name: String,
}

/// `PATCH /auth/mfa/{id} {name}` → 204.
pub async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let id = factor_id(path)?;
    let request: RenameRequest = json_body(&headers, &body)?;
    state.mfa.rename(&user.id, &id, &request.name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInEnrolRequest {
    mfa_token: String,
    name: Option<String>,
}

/// `POST /auth/mfa/enrol/totp {mfaToken, name?}` → `201 {factorId, secret, otpauthUri,
/// qrSvg}` for a sign-in that answered `mfa_enrolment_required`; the app's first code on
/// `POST /auth/mfa/verify` (method `totp`) confirms the factor and completes the sign-in.
pub async fn enrol_totp_for_sign_in(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: SignInEnrolRequest = json_body(&headers, &body)?;
    let enrolment = state
        .mfa
        .enrol_totp_for_sign_in(&request.mfa_token, request.name.as_deref(), &context)
        .await?;
    Ok(no_store(StatusCode::CREATED, enrolment_body(&enrolment)))
}

fn enrolment_body(enrolment: &mfa::TotpEnrolment) -> Value {
    json!({
        "factorId": enrolment.factor_id,
        "secret": enrolment.secret,
        "otpauthUri": enrolment.otpauth_uri,
        "qrSvg": enrolment.qr_svg,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChallengeRequest {
    mfa_token: String,
    method: String,
}

/// `POST /auth/mfa/challenge {mfaToken, method}`: for `email_otp` and `sms_otp` → 202, the
/// code is on its way; for `webauthn` → 200 `{publicKey}`, the options of
/// `navigator.credentials.get`.
pub async fn challenge(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ChallengeRequest = json_body(&headers, &body)?;
    if request.method == mfa::WEBAUTHN {
        let options = state.mfa.passkey_challenge(&request.mfa_token).await?;
        return Ok(no_store(StatusCode::OK, options));
    }
    state
        .mfa
        .send_challenge_code(&request.mfa_token, &request.method, &context)
        .await?;
    Ok(no_store(StatusCode::ACCEPTED, json!({ "sent": true })))
}

/// `POST /auth/mfa/email` → `201 {factorId}`: a code went to the account's verified address;
/// `POST /auth/mfa/email/confirm {code}` activates the factor.
pub async fn enrol_email(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let factor_id = state.mfa.enrol_email(&user, &context).await?;
    Ok(no_store(StatusCode::CREATED, json!({ "factorId": factor_id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeConfirmRequest {
    code: String,
}

/// `POST /auth/mfa/email/confirm {code}` → `{recoveryCodes: [...]}` (the first factor's).
pub async fn confirm_email(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    confirm_sent_code(&state, &context, &headers, &body, mfa::EMAIL_OTP).await
}

/// Confirms the enrolling factor of `kind` (e-mail or SMS) with the code it was sent.
async fn confirm_sent_code(
    state: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
    kind: &'static str,
) -> Result<Response, ApiError> {
    let user = signed_in_user(state, headers).await?;
    let request: CodeConfirmRequest = json_body(headers, body)?;
    let codes = state
        .mfa
        .confirm_code_factor(&user, kind, &request.code, context)
        .await?;
    Ok(no_store(StatusCode::OK, json!({ "recoveryCodes": codes })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmsEnrolRequest {
    phone_number: String,
}

/// `POST /auth/mfa/sms {phoneNumber}` (E.164) → `201 {factorId}`: a code went to the number;
/// `POST /auth/mfa/sms/confirm {code}` activates the factor.
pub async fn enrol_sms(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let request: SmsEnrolRequest = json_body(&headers, &body)?;
    let factor_id = state
        .mfa
        .enrol_sms(&user, &request.phone_number, &context)
        .await?;
    Ok(no_store(StatusCode::CREATED, json!({ "factorId": factor_id })))
}

/// `POST /auth/mfa/sms/confirm {code}` → `{recoveryCodes: [...]}` (the first factor's).
pub async fn confirm_sms(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    confirm_sent_code(&state, &context, &headers, &body, mfa::SMS_OTP).await
}

/// `POST /auth/mfa/recovery-codes` → `{recoveryCodes: [...]}`; the old set stops working.
pub async fn regenerate(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = signed_in_user(&state, &headers).await?;
    let codes = state.mfa.regenerate_recovery_codes(&user, &context).await?;
    Ok(no_store(StatusCode::OK, json!({ "recoveryCodes": codes })))
}
