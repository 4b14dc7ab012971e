//! The hosted second step of `/oauth2/authorize` (after the password): the factor page
//! (the app's code, an e-mailed or texted code, a recovery code, or the passkey button), the
//! enrolment page for a client whose policy requires a factor the user does not have yet,
//! and the page with the recovery codes of a factor enrolled there.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_idp::alerts::DEVICE_COOKIE;
use tessera_idp::audit::RequestContext;
use tessera_idp::mfa::{self, Demand, MfaError, Purpose};
use tessera_idp::oidc::authorize::{AuthorizeError, AuthorizeRequest};
use tessera_idp::state::AppState;
use tessera_proto::paths;
use tessera_store::durable::UserRecord;

use super::oidc::{authorize_error, hidden_pairs, locale, login_page, posted_form, signed_in, with_csrf};
use super::request::{cookie, Context};
use crate::pages::{self, EnrolView, ErrorKind, Hidden, LoginError, MfaPageError, MfaView};

/// After the password: the factor the sign-in must pass (the user's own; else, where the
/// client's policy requires one, the enrolment of an app; else, for a risky sign-in, a
/// code to the verified address), or straight on.
pub(super) async fn second_step(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    user: UserRecord,
    context: &RequestContext,
) -> Response {
    let policy = state.mfa.policy_for(&request.client);
    let device = cookie(headers, DEVICE_COOKIE);
    let risk = state.alerts.risk(&user, device.as_deref(), context).await;
    match state
        .mfa
        .challenge(&user, Purpose::Authorize, policy, &risk, context)
        .await
    {
        Ok(Some(challenge)) if challenge.demand == Demand::Enrol => {
            enrol_page(state, headers, request, &challenge.token, context).await
        }
        Ok(Some(challenge)) => {
            // A passkey when the user has one (with the app's code or a recovery code as
            // the alternative); else an authenticator app; else the e-mailed or texted
            // code, sent now.
            let passkey = challenge.methods.contains(&mfa::WEBAUTHN);
            let method = if challenge.methods.contains(&mfa::TOTP) {
                mfa::TOTP
            } else if passkey {
                mfa::RECOVERY_CODE
            } else if let Some(sent) = [mfa::EMAIL_OTP, mfa::SMS_OTP]
                .into_iter()
                .find(|kind| challenge.methods.contains(kind))
            {
                match state
                    .mfa
                    .send_challenge_code(&challenge.token, sent, context)
                    .await
                {
                    Ok(()) => sent,
                    Err(MfaError::Store(err)) => {
                        return authorize_error(state, headers, AuthorizeError::Store(err))
                    }
                    Err(err) => return server_error(headers, request, err),
                }
            } else {
                mfa::RECOVERY_CODE
            };
            let shown = MfaShown { method, passkey };
            mfa_page(state, headers, request, &challenge.token, shown, None)
        }
        Ok(None) => signed_in(state, headers, request, user, &["pwd"], context).await,
        Err(MfaError::Store(err)) => authorize_error(state, headers, AuthorizeError::Store(err)),
        Err(err) => server_error(headers, request, err),
    }
}

/// What the second-factor form asks for: the code of `method`, and the passkey button.
#[derive(Clone, Copy)]
struct MfaShown<'a> {
    method: &'a str,
    passkey: bool,
}

/// The second-factor form for the sign-in `mfa_token`.
fn mfa_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    mfa_token: &str,
    shown: MfaShown<'_>,
    error: Option<MfaPageError>,
) -> Response {
    let hidden = hidden_pairs(&request.params);
    let mut response = with_csrf(state, |csrf| {
        pages::mfa_page(
            locale(Some(request), headers),
            &MfaView {
                action: paths::AUTHORIZE_MFA,
                csrf,
                mfa_token,
                method: shown.method,
                client_name: &request.client.name,
                error,
                hidden: Hidden(&hidden),
                passkey: shown.passkey && state.mfa.passkeys_enabled(),
            },
        )
    });
    if let Some(MfaPageError::TooManyAttempts { retry_after_secs }) = error {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

fn server_error(headers: &HeaderMap, request: &AuthorizeRequest, err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "the second factor could not be checked");
    pages::error_page(
        locale(Some(request), headers),
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::ServerError,
    )
    .into_response()
}

/// `POST /oauth2/authorize/mfa`: the code of the second-factor form (an authenticator's
/// six digits, or a recovery code).
pub async fn mfa(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, request) = match posted_form(&state, &headers, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    // The passkey button answers in `credential` (the field is on the page of a user with a
    // passkey), the code field in `code`; empty fields do not arrive.
    let credential = form.get("credential");
    let (Some(token), Some(code)) = (form.get("mfa_token"), credential.or(form.get("code"))) else {
        return login_page(&state, &headers, &request, Some(LoginError::SignInExpired));
    };
    // Six digits are the code the page asked for (the app's, or the e-mailed one); anything
    // else is taken for a recovery code.
    let asked = match form.get("method").map(String::as_str) {
        Some(mfa::EMAIL_OTP) => mfa::EMAIL_OTP,
        Some(mfa::SMS_OTP) => mfa::SMS_OTP,
        _ => mfa::TOTP,
    };
    let shown = MfaShown {
        method: asked,
        // The page of a user with a passkey marks itself so (a forged mark shows a button).
        passkey: form.contains_key("passkey"),
    };
    let digits = code.trim().len() == 6 && code.trim().bytes().all(|b| b.is_ascii_digit());
    let method = match credential {
        Some(_) => mfa::WEBAUTHN,
        None if digits => asked,
        None => mfa::RECOVERY_CODE,
    };
    let is_authorize = |purpose: &Purpose| *purpose == Purpose::Authorize;
    match state
        .mfa
        .complete(token, is_authorize, method, code, &context)
        .await
    {
        Ok(passed) if !passed.recovery_codes.is_empty() => {
            // A factor enrolled during this sign-in: its recovery codes, once, then on.
            let amr = passed.amr().to_vec();
            let codes = passed.recovery_codes.clone();
            let onward = signed_in(&state, &headers, &request, passed.user, &amr, &context).await;
            recovery_codes_page(&headers, &request, &codes, onward)
        }
        Ok(passed) => {
            let amr = passed.amr().to_vec();
            signed_in(&state, &headers, &request, passed.user, &amr, &context).await
        }
        Err(MfaError::InvalidCode | MfaError::InvalidCredential) => mfa_page(
            &state,
            &headers,
            &request,
            token,
            shown,
            Some(MfaPageError::InvalidCode),
        ),
        Err(MfaError::Throttled { retry_after }) => mfa_page(
            &state,
            &headers,
            &request,
            token,
            shown,
            Some(MfaPageError::TooManyAttempts {
                retry_after_secs: retry_after,
            }),
        ),
        Err(MfaError::InvalidChallenge) => {
            login_page(&state, &headers, &request, Some(LoginError::SignInExpired))
        }
        Err(MfaError::Store(err)) => authorize_error(&state, &headers, AuthorizeError::Store(err)),
        Err(err) => server_error(&headers, &request, err),
    }
}

/// The enrolment page of a sign-in that must enrol an authenticator app: a new (unconfirmed)
/// factor's QR code and key, and the field for its first code, which passes the sign-in.
async fn enrol_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    mfa_token: &str,
    context: &RequestContext,
) -> Response {
    let enrolment = match state.mfa.enrol_totp_for_sign_in(mfa_token, None, context).await {
        Ok(enrolment) => enrolment,
        Err(MfaError::Store(err)) => return authorize_error(state, headers, AuthorizeError::Store(err)),
        Err(err) => return server_error(headers, request, err),
    };
    let hidden = hidden_pairs(&request.params);
    with_csrf(state, |csrf| {
        pages::enrol_page(
            locale(Some(request), headers),
            &EnrolView {
                action: paths::AUTHORIZE_MFA,
                csrf,
                mfa_token,
                client_name: &request.client.name,
                qr_svg: &enrolment.qr_svg,
                secret: &enrolment.secret,
                hidden: Hidden(&hidden),
            },
        )
    })
}

/// The recovery codes of the factor just enrolled, with a link on to where `onward` (the
/// response that signed the user in) leads; `onward`'s cookies (the SSO session) come along.
fn recovery_codes_page(
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    codes: &[String],
    onward: Response,
) -> Response {
    let continue_to = match &request.continue_to {
        Some(to) => to.clone(),
        None => format!(
            "{}?{}",
            paths::AUTHORIZE,
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(request.params.iter())
                .finish()
        ),
    };
    let mut response =
        pages::recovery_codes_page(locale(Some(request), headers), codes, &continue_to).into_response();
    for cookie in onward.headers().get_all(header::SET_COOKIE) {
        response.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
