//! `/account/security` (R11, R12, R14, R20): the user's second factors and passkeys
//! (rename, remove, add an authenticator app), linked providers (unlink), and the recent
//! audit events about the account — through the MFA, federation and audit services the
//! JSON API uses.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use tessera_idp::federation::FederationError;
use tessera_idp::mfa::MfaError;
use tessera_idp::state::AppState;
use tessera_store::durable::{AuditQuery, AuditStore};

use super::{here, shell, signed, signed_form};
use crate::http::portal::{self, Signed};
use crate::http::request::Context;
use crate::pages::portal::account::{
    self as view, path, EventItem, FactorItem, Frame, IdentityItem, SecurityError, SecurityNotice,
    SecurityView, TotpEnrolView,
};

/// How many audit events the page lists.
const RECENT_EVENTS: u32 = 20;

fn field<'a>(form: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

/// `GET /account/security[?done=removed|renamed|added|unlinked]`.
pub async fn security(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let signed = match signed(&state, &headers, &method, &uri).await {
        Ok(signed) => signed,
        Err(sign_in) => return sign_in,
    };
    let notice = match query.get("done").map(String::as_str) {
        Some("removed") => Some(SecurityNotice::Removed),
        Some("renamed") => Some(SecurityNotice::Renamed),
        Some("added") => Some(SecurityNotice::Added),
        Some("unlinked") => Some(SecurityNotice::Unlinked),
        _ => None,
    };
    render(&state, &signed, &uri, notice, None).await
}

async fn render(
    state: &AppState,
    signed: &Signed,
    uri: &Uri,
    notice: Option<SecurityNotice>,
    error: Option<SecurityError>,
) -> Response {
    let user_id = &signed.user.id;
    let factors = match state.mfa.factors(user_id).await {
        Ok(factors) => factors,
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    let identities = match state.federation.identities(user_id).await {
        Ok(identities) => identities,
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    let events = match state
        .db
        .audit_records(&AuditQuery {
            subject: Some(user_id.clone()),
            limit: RECENT_EVENTS,
            ..Default::default()
        })
        .await
    {
        Ok(events) => events,
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    let factor_items: Vec<FactorItem<'_>> = factors
        .iter()
        .map(|f| FactorItem {
            id: &f.id,
            kind: &f.kind,
            name: &f.name,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
            confirmed: f.confirmed,
        })
        .collect();
    let identity_items: Vec<IdentityItem<'_>> = identities
        .iter()
        .map(|i| IdentityItem {
            provider: &i.provider,
            subject: &i.subject,
            email: i.email.as_deref(),
            created_at: i.created_at,
            last_used_at: i.last_used_at,
        })
        .collect();
    let event_items: Vec<EventItem<'_>> = events
        .iter()
        .map(|e| EventItem {
            at: e.at,
            event: &e.event,
            outcome: &e.outcome,
            ip: e.ip.as_deref(),
        })
        .collect();
    let here = here(uri);
    let frame = Frame {
        here: &here,
        signed_in: Some(shell(state, signed)),
    };
    view::security_page(
        signed.locale,
        &frame,
        &SecurityView {
            factors: &factor_items,
            identities: &identity_items,
            events: &event_items,
            notice,
            error,
        },
    )
    .into_response()
}

fn done(what: &str) -> Response {
    portal::see_other(&format!("{}?done={what}", path::SECURITY))
}

fn page_uri() -> Uri {
    Uri::from_static(path::SECURITY)
}

/// `POST /account/security/rename` (`csrf`, `factor`, `name`).
pub async fn rename(State(state): State<AppState>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let (signed, form) = match signed_form(&state, &headers, &uri, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    match state
        .mfa
        .rename(&signed.user.id, field(&form, "factor"), field(&form, "name"))
        .await
    {
        Ok(()) => done("renamed"),
        Err(MfaError::NoSuchFactor) => {
            render(&state, &signed, &page_uri(), None, Some(SecurityError::NotFound)).await
        }
        Err(MfaError::Invalid(_)) => {
            render(
                &state,
                &signed,
                &page_uri(),
                None,
                Some(SecurityError::InvalidName),
            )
            .await
        }
        Err(err) => portal::server_error(signed.locale, &err),
    }
}

/// `POST /account/security/remove` (`csrf`, `factor`, `current_password`): the last
/// confirmed factor goes only with the right password (checked under the login throttle).
pub async fn remove(
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
    let password = field(&form, "current_password");
    let fresh = !password.is_empty()
        && state
            .accounts
            .check_current_password(&signed.user, password, &context)
            .await
            .is_ok();
    match state
        .mfa
        .remove(
            &signed.user.id,
            field(&form, "factor"),
            fresh,
            &signed.actor(),
            &context,
        )
        .await
    {
        Ok(()) => done("removed"),
        Err(MfaError::NoSuchFactor) => {
            render(&state, &signed, &page_uri(), None, Some(SecurityError::NotFound)).await
        }
        Err(MfaError::FreshSignInRequired) => {
            render(
                &state,
                &signed,
                &page_uri(),
                None,
                Some(SecurityError::LastFactor),
            )
            .await
        }
        Err(err) => portal::server_error(signed.locale, &err),
    }
}

/// `POST /account/security/totp` (`csrf`): starts a new authenticator (stored unconfirmed)
/// and shows its QR code and key.
pub async fn enrol_totp(
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
    let enrolment = match state.mfa.enrol_totp(&signed.user, None, &context).await {
        Ok(enrolment) => enrolment,
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    let frame = Frame {
        here: path::SECURITY,
        signed_in: Some(shell(&state, &signed)),
    };
    view::totp_enrol_page(
        signed.locale,
        &frame,
        &TotpEnrolView {
            factor_id: &enrolment.factor_id,
            qr_svg: &enrolment.qr_svg,
            secret: &enrolment.secret,
            wrong_code: false,
        },
    )
    .into_response()
}

/// `POST /account/security/totp/confirm` (`csrf`, `factor`, `code`): the first code
/// activates the authenticator; the account's first factor brings recovery codes, shown
/// once.
pub async fn confirm_totp(
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
    let factor = field(&form, "factor");
    let frame = Frame {
        here: path::SECURITY,
        signed_in: Some(shell(&state, &signed)),
    };
    match state
        .mfa
        .confirm_totp(&signed.user, Some(factor), field(&form, "code"), &context)
        .await
    {
        Ok(codes) if codes.is_empty() => done("added"),
        Ok(codes) => view::recovery_codes_page(signed.locale, &frame, &codes).into_response(),
        Err(MfaError::InvalidCode | MfaError::Throttled { .. }) => {
            // The QR code again: the factor stays unconfirmed until a right code.
            view::totp_enrol_page(
                signed.locale,
                &frame,
                &TotpEnrolView {
                    factor_id: factor,
                    qr_svg: "",
                    secret: "",
                    wrong_code: true,
                },
            )
            .into_response()
        }
        Err(MfaError::NoSuchFactor) => {
            render(&state, &signed, &page_uri(), None, Some(SecurityError::NotFound)).await
        }
        Err(err) => portal::server_error(signed.locale, &err),
    }
}

/// `POST /account/security/unlink` (`csrf`, `provider`, `subject`).
pub async fn unlink(
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
    match state
        .federation
        .unlink(
            &signed.user,
            field(&form, "provider"),
            field(&form, "subject"),
            &context,
        )
        .await
    {
        Ok(true) => done("unlinked"),
        Ok(false) => render(&state, &signed, &page_uri(), None, Some(SecurityError::NotFound)).await,
        Err(FederationError::LastSignInMethod) => {
            render(
                &state,
                &signed,
                &page_uri(),
                None,
                Some(SecurityError::LastSignInMethod),
            )
            .await
        }
        Err(err) => portal::server_error(signed.locale, &err),
    }
}
