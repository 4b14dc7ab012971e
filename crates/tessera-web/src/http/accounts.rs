//! The first-party JSON API the existing clients speak (R29): signup, e-mail verification,
//! login, reissue, me, and the password endpoints. camelCase JSON; errors are problem JSON.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::idempotency;
use super::request::{cookie, json_body, Context};
use super::sessions::caller;
use crate::error::ApiError;
use tessera_idp::accounts::AccountError;
use tessera_idp::alerts::SignInSession;
use tessera_idp::mail::Locale;
use tessera_idp::mfa::Demand;
use tessera_idp::state::AppState;
use tessera_idp::tokens::Issued;

/// The cookie that carries the refresh token for browser clients that ask for it.
pub const REFRESH_COOKIE: &str = "tessera_refresh";

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let code = |e: ApiError, code: &str| e.extension("code", Value::from(code));
        match err {
            AccountError::InvalidEmail => code(
                ApiError::bad_request("not a valid e-mail address"),
                "invalid_email",
            ),
            AccountError::Policy(violation) => {
                let mut e = ApiError::new(StatusCode::BAD_REQUEST, "password-policy", "Password rejected")
                    .detail(violation.to_string())
                    .extension("code", Value::from(violation.code()));
                if let tessera_idp::passwords::PolicyViolation::TooWeak { suggestions, .. } = &violation {
                    e = e.extension("suggestions", json!(suggestions));
                }
                e
            }
            AccountError::InvalidCredentials { captcha_required } => code(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid-credentials",
                    "Invalid credentials",
                )
                .detail("the e-mail address or the password is wrong"),
                "invalid_credentials",
            )
            .extension("captchaRequired", Value::from(captcha_required)),
            AccountError::Throttled { retry_after } => code(
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-attempts",
                    "Too many attempts",
                )
                .detail("too many failed attempts; try again later"),
                "too_many_attempts",
            )
            .retry_after(retry_after),
            AccountError::EmailNotVerified => code(
                ApiError::new(StatusCode::FORBIDDEN, "email-not-verified", "E-mail not verified")
                    .detail("verify your e-mail address with the link we sent, then log in"),
                "email_not_verified",
            ),
            AccountError::Disabled => code(
                ApiError::new(StatusCode::FORBIDDEN, "account-disabled", "Account disabled")
                    .detail("this account is disabled"),
                "account_disabled",
            ),
            AccountError::InvalidLink => code(
                ApiError::new(StatusCode::BAD_REQUEST, "invalid-link", "Invalid or expired link")
                    .detail("the link is invalid, already used, or expired"),
                "invalid_link",
            ),
            AccountError::NoSuchUser => ApiError::not_found().detail("no such user"),
            AccountError::InvalidRole(role) => code(
                ApiError::bad_request(format!("invalid role name {role:?}")),
                "invalid_role",
            ),
            AccountError::EmailTaken => ApiError::new(StatusCode::CONFLICT, "email-taken", "E-mail taken")
                .detail("a user with this e-mail address exists"),
            AccountError::Already(state) => {
                ApiError::new(StatusCode::CONFLICT, "unchanged", "Nothing to change")
                    .detail(format!("the user is already {state}"))
            }
            AccountError::MfaRequired(challenge) if challenge.demand == Demand::Enrol => code(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "mfa-enrolment-required",
                    "Second factor enrolment required",
                )
                .detail(
                    "this application requires a second factor: enrol an authenticator app with \
                     POST /auth/mfa/enrol/totp, then pass its code with POST /auth/mfa/verify",
                ),
                "mfa_enrolment_required",
            )
            .extension("error", Value::from("mfa_enrolment_required"))
            .extension("mfaToken", Value::from(challenge.token))
            .extension("methods", json!([]))
            .extension("enrol", json!(challenge.methods)),
            AccountError::MfaRequired(challenge) => code(
                ApiError::new(StatusCode::UNAUTHORIZED, "mfa-required", "Second factor required")
                    .detail("pass a second factor with POST /auth/mfa/verify"),
                "mfa_required",
            )
            .extension("error", Value::from("mfa_required"))
            .extension("mfaToken", Value::from(challenge.token))
            .extension("methods", json!(challenge.methods)),
            AccountError::MfaRequiredElsewhere => code(
                ApiError::new(StatusCode::FORBIDDEN, "mfa-required", "Second factor required").detail(
                    "this account signs in with a second factor, which this way of signing in cannot ask for",
                ),
                "mfa_required",
            ),
            AccountError::Mfa(err) => err.into(),
            AccountError::Authz(err) => err.into(),
            AccountError::InvalidProfile(invalid) => code(
                ApiError::new(StatusCode::BAD_REQUEST, "invalid-profile", "Profile rejected")
                    .detail(invalid.to_string())
                    .extension("field", Value::from(invalid.field.as_str())),
                "invalid_profile",
            ),
            AccountError::Token(err) => err.into(),
            AccountError::Store(err) => err.into(),
            AccountError::Password(err) => ApiError::internal().caused_by(err),
        }
    }
}

fn locale(headers: &HeaderMap) -> Locale {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Locale::En, Locale::from_accept_language)
}

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

/// `POST /auth/signup {email, password}` → `201 {email}`.
pub async fn signup(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotency::once(&state, &headers, "signup", &body, || async {
        let request: Credentials = json_body(&headers, &body)?;
        let email = state
            .accounts
            .signup(&request.email, &request.password, locale(&headers), &context)
            .await?;
        Ok((StatusCode::CREATED, json!({ "email": email })))
    })
    .await
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// Whether the request is a browser opening a link (it asks for HTML first).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/html"))
}

/// A browser that opened a mailed link goes to its account page (`page`), which asks
/// before it acts; the token goes along (it is already in the link).
fn to_link_page(page: &str, token: &str) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("token", token);
    super::portal::redirect(&format!("{page}?{}", query.finish()))
}

/// `GET /auth/verify-email?token=…` → `200 {email, verified: true}`; a browser goes to the
/// account pages' verification page instead.
pub async fn verify_email(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    let token = query
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("token is required"))?;
    if wants_html(&headers) {
        return Ok(to_link_page(
            crate::pages::portal::account::path::VERIFY_EMAIL,
            &token,
        ));
    }
    let email = state.accounts.verify_email(&token, &context).await?;
    Ok(Json(json!({ "email": email, "verified": true })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    email: String,
    password: String,
    channel: Option<String>,
    /// The roles the session activates (dynamic separation of duty); all the user's roles
    /// but those of a broken dynamic rule when absent.
    roles: Option<Vec<String>>,
    /// `body` (default) or `cookie`: where the refresh token is delivered.
    refresh_token_delivery: Option<String>,
    /// A native client's stable device id (new sign-in alerts); browsers use the cookie.
    device_id: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    Body,
    Cookie,
}

pub(super) fn delivery(requested: Option<&str>) -> Result<Delivery, ApiError> {
    match requested {
        None | Some("body") => Ok(Delivery::Body),
        Some("cookie") => Ok(Delivery::Cookie),
        Some(_) => Err(ApiError::bad_request(
            "refreshTokenDelivery must be \"body\" or \"cookie\"",
        )),
    }
}

/// The token pair as the current clients expect it: `accessTokenExpiresIn` is the access
/// token's expiry in epoch milliseconds.
fn token_pair(state: &AppState, issued: Issued, delivery: Delivery, recovery_codes: Vec<String>) -> Response {
    let mut body = json!({
        "grantType": "Bearer",
        "accessToken": issued.access_token,
        "accessTokenExpiresIn": issued.access_expires_at.saturating_mul(1000),
    });
    if !recovery_codes.is_empty() {
        body["recoveryCodes"] = json!(recovery_codes);
    }
    let mut response_headers = Vec::new();
    match delivery {
        Delivery::Body => body["refreshToken"] = Value::from(issued.refresh_token.secret()),
        Delivery::Cookie => {
            let max_age = (issued.session.absolute_expires_at - state.clock.now()).max(0);
            let cookie = format!(
                "{REFRESH_COOKIE}={}; Path=/auth; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
                issued.refresh_token.secret()
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response_headers.push((header::SET_COOKIE, value));
            }
        }
    }
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in response_headers {
        headers.append(name, value);
    }
    response
}

/// `POST /auth/login {email, password, channel?, roles?, refreshTokenDelivery?, deviceId?}`.
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
        .login(
            &request.email,
            &request.password,
            request.channel.as_deref(),
            request.roles.as_deref(),
            presented.as_deref(),
            &context,
        )
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

/// The answer to a login that started a session (with or without a second factor): the
/// token pair, after the new-sign-in check of the device.
pub(super) async fn signed_in(
    state: &AppState,
    issued: Issued,
    delivery: Delivery,
    presented_device: Option<&str>,
    context: &tessera_idp::audit::RequestContext,
    recovery_codes: Vec<String>,
) -> Response {
    tessera_idp::telemetry::token_issued("login");
    let device = match state.accounts.user(&issued.session.subject).await {
        Ok(Some(user)) => {
            let session = SignInSession::Token {
                id: issued.session.id.clone(),
                expires_at: issued.session.absolute_expires_at,
            };
            state
                .alerts
                .signed_in(&user, &session, presented_device, context)
                .await
        }
        Ok(None) => None,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the signed-in user for new sign-in alerts");
            None
        }
    };
    let mut response = token_pair(state, issued, delivery, recovery_codes);
    if let Some(device) = device {
        super::alerts::set_device_cookie(state, &mut response, &device);
    }
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReissueRequest {
    access_token: String,
    refresh_token: Option<String>,
    /// The roles the session activates from now on.
    roles: Option<Vec<String>>,
}

/// `POST /auth/reissue {accessToken, refreshToken, roles?}` → a new pair. A browser client that
/// logged in with `refreshTokenDelivery: "cookie"` omits `refreshToken`; the cookie is used
/// and renewed.
pub async fn reissue(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ReissueRequest = json_body(&headers, &body)?;
    let (refresh_token, delivery) = match request.refresh_token {
        Some(token) => (token, Delivery::Body),
        None => (
            cookie(&headers, REFRESH_COOKIE).ok_or_else(|| {
                ApiError::bad_request("missing field `refreshToken`")
                    .extension("code", Value::from("invalid_request"))
            })?,
            Delivery::Cookie,
        ),
    };
    let issued = state
        .accounts
        .reissue(
            &request.access_token,
            &refresh_token,
            request.roles.as_deref(),
            &context,
        )
        .await?;
    tessera_idp::telemetry::token_issued("refresh_token");
    Ok(token_pair(&state, issued, delivery, Vec::new()))
}

/// `GET /api/member/me` → `{email}` (the current clients' shape).
pub async fn member_me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (claims, _) = caller(&state, &headers).await?;
    let user = state
        .accounts
        .user(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized(Some("invalid_token")))?;
    Ok(Json(json!({ "email": user.email })).into_response())
}

/// `GET /auth/me` → the signed-in user.
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (claims, session) = caller(&state, &headers).await?;
    let user = state
        .accounts
        .user(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized(Some("invalid_token")))?;
    Ok(Json(json!({
        "id": user.id,
        "email": user.email,
        "emailVerified": user.email_verified_at.is_some(),
        "roles": user.roles,
        "createdAt": user.created_at,
        "sessionId": session.id,
        "channel": session.channel,
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct ForgotRequest {
    email: String,
}

/// `POST /auth/password/forgot {email}` → always `202`.
pub async fn forgot_password(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotency::once(&state, &headers, "forgot", &body, || async {
        let request: ForgotRequest = json_body(&headers, &body)?;
        state
            .accounts
            .forgot_password(&request.email, locale(&headers), &context);
        Ok((StatusCode::ACCEPTED, json!({})))
    })
    .await
}

#[derive(Deserialize)]
pub struct ResetRequest {
    token: String,
    password: String,
}

/// `GET /auth/password/forgot`, linked from the "you already have an account" mail: the
/// account pages' forgot-password page.
pub async fn forgot_link() -> Response {
    super::portal::redirect(crate::pages::portal::account::path::FORGOT)
}

/// `GET /auth/password/reset?token=…`, the mailed link: the account pages' reset page.
pub async fn reset_link(Query(query): Query<TokenQuery>) -> Result<Response, ApiError> {
    let token = query
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("token is required"))?;
    Ok(to_link_page(crate::pages::portal::account::path::RESET, &token))
}

/// `POST /auth/password/reset {token, password}` → `200 {email}`; every session ends.
pub async fn reset_password(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    idempotency::once(&state, &headers, "reset", &body, || async {
        let request: ResetRequest = json_body(&headers, &body)?;
        let email = state
            .accounts
            .reset_password(&request.token, &request.password, &context)
            .await?;
        Ok((StatusCode::OK, json!({ "email": email })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRequest {
    current_password: String,
    new_password: String,
}

/// `POST /auth/password/change {currentPassword, newPassword}` (Bearer) → `204`; every
/// other session of the user ends.
pub async fn change_password(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (claims, session) = match caller(&state, &headers).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    let scope = format!("change:{}", claims.sub);
    idempotency::once(&state, &headers, &scope, &body, || async {
        let request: ChangeRequest = json_body(&headers, &body)?;
        state
            .accounts
            .change_password(
                &claims.sub,
                &session.id,
                &request.current_password,
                &request.new_password,
                &context,
            )
            .await?;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailChangeRequest {
    email: String,
    current_password: String,
}

/// `POST /auth/email {email, currentPassword}` (Bearer) → `202 {email}`: a confirmation
/// link goes to the new address and a notice to the old one; the address changes only when
/// the link is used (`POST /auth/email/confirm`).
pub async fn change_email(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (claims, _) = match caller(&state, &headers).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    let locale = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Locale::En, Locale::from_accept_language);
    let scope = format!("email:{}", claims.sub);
    idempotency::once(&state, &headers, &scope, &body, || async {
        let request: EmailChangeRequest = json_body(&headers, &body)?;
        let email = state
            .accounts
            .request_email_change(
                &claims.sub,
                &request.current_password,
                &request.email,
                locale,
                &context,
            )
            .await?;
        Ok((StatusCode::ACCEPTED, json!({ "email": email })))
    })
    .await
}

#[derive(Deserialize)]
pub struct EmailConfirmRequest {
    token: String,
}

/// `POST /auth/email/confirm {token}` → `{email}`: the token of the confirmation link
/// (single use); the account's address becomes the new one, verified.
pub async fn confirm_email_change(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: EmailConfirmRequest = json_body(&headers, &body)?;
    let email = state
        .accounts
        .confirm_email_change(&request.token, &context)
        .await?;
    Ok(Json(json!({ "email": email })).into_response())
}
