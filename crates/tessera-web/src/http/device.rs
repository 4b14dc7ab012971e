//! The hosted device verification page, `GET|POST /device` (RFC 8628 §3.3): the user
//! enters the code their device shows (or arrives with it from `verification_uri_complete`),
//! signs in through the hosted login if needed — with the second factor the device's
//! client asks for — sees who asks for what, and approves or denies.
//!
//! Every lookup of a user code is a guess until it succeeds: it is counted per client IP
//! and for everyone together (the login throttle's counters, `device.max_failures_per_ip`
//! and `device.max_failures`), and a wrong one is audited (`device.user_code_rejected`,
//! hence also `tessera_audit_events_total`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use tessera_idp::audit::{AuditEvent, RequestContext};
use tessera_idp::oidc::authorize::{AuthorizeError, AuthorizeRequest};
use tessera_idp::oidc::device::{normalize_user_code, PendingDevice};
use tessera_idp::state::AppState;
use tessera_proto::paths;
use tessera_store::durable::{SsoSessionRecord, UserRecord};

use super::oidc::{authorize_error, csrf_ok, forged, form_of, login_page, with_csrf_at, SSO_COOKIE};
use super::request::{cookie, Context};
use crate::pages::{self, DeviceConfirmView, DeviceError, DeviceView, Hidden};

/// The guesses' counters' name, per issuer: nodes of one deployment count together, and
/// deployments sharing a Redis do not count each other's guesses.
fn guess_kind(state: &AppState) -> String {
    format!("device-user-code:{}", state.issuer)
}

fn locale(headers: &HeaderMap) -> tessera_idp::mail::Locale {
    super::oidc::locale(None, headers)
}

/// The code form, with `error` if the last entry was refused.
fn entry_page(
    state: &AppState,
    headers: &HeaderMap,
    typed: Option<&str>,
    error: Option<DeviceError>,
) -> Response {
    let mut response = with_csrf_at(state, paths::DEVICE, |csrf| {
        pages::device_page(
            locale(headers),
            &DeviceView {
                action: paths::DEVICE,
                csrf,
                user_code: typed,
                error,
            },
        )
    });
    if let Some(DeviceError::TooManyAttempts { retry_after_secs }) = error {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

fn confirm_page(state: &AppState, headers: &HeaderMap, pending: &PendingDevice) -> Response {
    let shown = pending.display_code();
    let hidden = [("user_code", shown.as_str())];
    let scopes: Vec<&str> = pending.scope.iter().map(String::as_str).collect();
    with_csrf_at(state, paths::DEVICE, |csrf| {
        pages::device_confirm_page(
            locale(headers),
            &DeviceConfirmView {
                action: paths::DEVICE,
                csrf,
                client_name: &pending.client.name,
                scopes: &scopes,
                user_code: &shown,
                hidden: Hidden(&hidden),
            },
        )
    })
}

/// Looks up a typed user code as one counted guess: the pending grant, or the page that
/// refuses the entry.
async fn lookup(
    state: &AppState,
    headers: &HeaderMap,
    typed: &str,
    context: &RequestContext,
) -> Result<PendingDevice, Response> {
    let store_failed = |err| authorize_error(state, headers, AuthorizeError::Store(err));
    let limits = &state.config.device;
    let guess = match state
        .provider
        .throttle()
        .admit_guess(
            &guess_kind(state),
            context.ip.as_deref(),
            limits.max_failures_per_ip,
            limits.max_failures,
        )
        .await
    {
        Ok(Ok(guess)) => guess,
        Ok(Err(refusal)) => {
            state
                .audit
                .record(context, AuditEvent::new("device.user_code_throttled", "failure"))
                .await;
            let error = DeviceError::TooManyAttempts {
                retry_after_secs: refusal.retry_after(),
            };
            return Err(entry_page(state, headers, Some(typed), Some(error)));
        }
        Err(err) => return Err(store_failed(err)),
    };
    match state.provider.pending_device(typed).await {
        Ok(Some(pending)) => {
            if let Err(err) = state.provider.throttle().guess_succeeded(guess).await {
                return Err(store_failed(err));
            }
            Ok(pending)
        }
        Ok(None) => {
            state
                .audit
                .record(context, AuditEvent::new("device.user_code_rejected", "failure"))
                .await;
            Err(entry_page(
                state,
                headers,
                Some(typed),
                Some(DeviceError::InvalidCode),
            ))
        }
        Err(err) => Err(store_failed(err)),
    }
}

/// The browser's SSO session, if it may answer for `pending`'s client: a client whose
/// policy requires a second factor needs a sign-in that passed one.
async fn signed_in_for(
    state: &AppState,
    headers: &HeaderMap,
    pending: &PendingDevice,
) -> Result<Option<(SsoSessionRecord, UserRecord)>, Response> {
    let sso = state
        .provider
        .sso_session(cookie(headers, SSO_COOKIE).as_deref())
        .await
        .map_err(|err| authorize_error(state, headers, AuthorizeError::Store(err)))?;
    Ok(sso.filter(|(session, _)| state.provider.policy_met_by(&pending.client, &session.amr)))
}

/// The hosted login for `pending`'s client, continuing to this page with its code.
fn sign_in_page(state: &AppState, headers: &HeaderMap, pending: &PendingDevice) -> Response {
    let request = AuthorizeRequest::device_sign_in(pending.client.clone(), &pending.display_code(), None);
    login_page(state, headers, &request, None)
}

/// `GET /device[?user_code=…]`: the code form; with a code and a signed-in user, the
/// confirmation straight away.
pub async fn show(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query: BTreeMap<String, String> = form_of(query.unwrap_or_default().as_bytes());
    let typed = query.get("user_code").filter(|c| c.len() <= 32);
    let signed_in = match state
        .provider
        .sso_session(cookie(&headers, SSO_COOKIE).as_deref())
        .await
    {
        Ok(sso) => sso.is_some(),
        Err(err) => return authorize_error(&state, &headers, AuthorizeError::Store(err)),
    };
    match typed {
        Some(code) if signed_in && normalize_user_code(code).is_some() => {
            let pending = match lookup(&state, &headers, code, &context).await {
                Ok(pending) => pending,
                Err(refused) => return refused,
            };
            match signed_in_for(&state, &headers, &pending).await {
                Ok(Some(_)) => confirm_page(&state, &headers, &pending),
                Ok(None) => sign_in_page(&state, &headers, &pending),
                Err(failed) => failed,
            }
        }
        _ => entry_page(&state, &headers, typed.map(String::as_str), None),
    }
}

/// `POST /device`: an entered code (then the sign-in or the confirmation), or the answer
/// (`decision=allow|deny`) on the confirmation.
pub async fn answer(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_of(&body);
    if !csrf_ok(&headers, &form) {
        return forged(&headers);
    }
    let Some(typed) = form.get("user_code").filter(|c| c.len() <= 32) else {
        return entry_page(&state, &headers, None, Some(DeviceError::InvalidCode));
    };
    let pending = match lookup(&state, &headers, typed, &context).await {
        Ok(pending) => pending,
        Err(refused) => return refused,
    };
    let sso = match signed_in_for(&state, &headers, &pending).await {
        Ok(Some(sso)) => sso,
        Ok(None) => return sign_in_page(&state, &headers, &pending),
        Err(failed) => return failed,
    };
    let approved = match form.get("decision").map(String::as_str) {
        Some("allow") => true,
        Some("deny") => false,
        _ => return confirm_page(&state, &headers, &pending),
    };
    match state
        .provider
        .decide_device(&pending, &sso, approved, &context)
        .await
    {
        Ok(true) => pages::device_done_page(locale(&headers), approved).into_response(),
        // Answered meanwhile (another tab): the first answer stands.
        Ok(false) => entry_page(&state, &headers, None, Some(DeviceError::InvalidCode)),
        Err(err) => authorize_error(&state, &headers, AuthorizeError::Store(err)),
    }
}
