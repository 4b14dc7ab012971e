//! Federated sign-in over HTTP: the login page's buttons lead to `/federation/{id}/start`,
//! which sends the browser to the upstream; `/federation/{id}/callback` completes it and
//! continues the authorization request the login page belonged to (SSO cookie, consent,
//! code, as after a password). The link confirmation page, and the signed-in user's list of
//! linked identities (first-party JSON API).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tessera_idp::accounts::AccountError;
use tessera_idp::audit::RequestContext;
use tessera_idp::config::MfaPolicy;
use tessera_idp::federation::{FederationError, Resolution, AMR_FEDERATED};
use tessera_idp::oidc::authorize::{self, AuthorizeRequest};
use tessera_idp::state::AppState;
use tessera_proto::paths;
use tessera_store::durable::UserRecord;

use super::oidc::{
    authorize_error, csrf_ok, forged, form_of, locale, secure_attr, set_cookie, signed_in_via, with_csrf_at,
};
use super::request::{cookie, Context};
use super::sessions::caller;
use crate::error::ApiError;
use crate::pages::{self, ErrorKind, LinkView};

/// The cookie that binds a flow's `state` to the browser that started it.
const STATE_COOKIE: &str = "tessera_federation";
/// Where the state cookie and the link page's CSRF cookie apply.
const COOKIE_PATH: &str = "/federation";

/// The login page's buttons for `request`: (start URL, provider name) each. None for a
/// sign-in that is not an authorization request (the device page's).
pub(super) fn buttons(state: &AppState, request: &AuthorizeRequest) -> Vec<(String, String)> {
    if request.continue_to.is_some() {
        return Vec::new();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(request.params.iter())
        .finish();
    let return_to = format!("{}?{query}", paths::AUTHORIZE);
    state
        .federation
        .buttons()
        .into_iter()
        .map(|button| {
            let start = paths::FEDERATION_START.replace("{id}", &button.id);
            let href = format!(
                "{start}?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &return_to)
                    .finish()
            );
            (href, button.display_name)
        })
        .collect()
}

/// The authorization request `return_to` names, as its parameters: only
/// `/oauth2/authorize` at this issuer (relative, or absolute with the issuer's origin) is
/// accepted, so `return_to` can never send the browser elsewhere.
fn return_to_params(issuer: &str, return_to: &str) -> Option<(String, BTreeMap<String, String>)> {
    let base = url::Url::parse(issuer).ok()?;
    let url = if return_to.starts_with('/') {
        if return_to.starts_with("//") || return_to.contains('\\') {
            return None;
        }
        base.join(return_to).ok()?
    } else {
        url::Url::parse(return_to).ok()?
    };
    let expected_path = format!("{}{}", base.path().trim_end_matches('/'), paths::AUTHORIZE);
    if url.origin() != base.origin() || url.path() != expected_path || url.fragment().is_some() {
        return None;
    }
    let query = url.query().unwrap_or_default();
    let (params, repeated) = authorize::parse_params(query.as_bytes());
    if repeated || !params.contains_key("client_id") {
        return None;
    }
    Some((format!("{}?{query}", paths::AUTHORIZE), params))
}

fn invalid_return_to(headers: &HeaderMap) -> Response {
    pages::error_page(
        locale(None, headers),
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidRequest("return_to must be an authorization request at this provider".to_owned()),
    )
    .into_response()
}

fn failed(headers: &HeaderMap, request: Option<&AuthorizeRequest>, err: &FederationError) -> Response {
    pages::failed_page(locale(request, headers), err).into_response()
}

/// `GET /federation/{id}/start?return_to=…`.
pub async fn start(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (params, repeated) = authorize::parse_params(query.unwrap_or_default().as_bytes());
    let Some((return_to, authorize_params)) = params
        .get("return_to")
        .filter(|_| !repeated)
        .and_then(|r| return_to_params(&state.issuer, r))
    else {
        return invalid_return_to(&headers);
    };
    // The request must be one this provider would serve (a known client and redirect URI).
    let request = match authorize::validate(authorize_params, false, state.provider.clients().as_ref()).await
    {
        Ok(request) => request,
        Err(err) => return authorize_error(&state, &headers, err),
    };
    match state.federation.start(&id, &return_to, &context).await {
        Ok(started) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(location) = HeaderValue::from_str(&started.url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            set_cookie(
                &mut response,
                format!(
                    "{STATE_COOKIE}={}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Lax{}",
                    started.state,
                    state.config.federation.flow_ttl_secs,
                    secure_attr(&state)
                ),
            );
            response
        }
        Err(FederationError::UnknownProvider) => pages::error_page(
            locale(Some(&request), &headers),
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
        )
        .into_response(),
        Err(err) => failed(&headers, Some(&request), &err),
    }
}

/// `GET /federation/{id}/callback?code=…&state=…` (or `?error=…`).
pub async fn callback(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (params, repeated) = authorize::parse_params(query.unwrap_or_default().as_bytes());
    let bound = cookie(&headers, STATE_COOKIE);
    let outcome = if repeated {
        Err(FederationError::InvalidState)
    } else {
        state
            .federation
            .finish(&id, &params, bound.as_deref(), &context)
            .await
    };
    let mut response = match outcome {
        Err(err) => failed(&headers, None, &err),
        Ok(finished) => match state
            .federation
            .resolve(&finished.identity, &finished.return_to, &context)
            .await
        {
            Err(err) => failed(&headers, None, &err),
            Ok(Resolution::SignIn(user)) => {
                continue_sign_in(&state, &headers, &id, &finished.return_to, user, &context).await
            }
            Ok(Resolution::ConfirmLink { token, user }) => {
                let provider = state
                    .federation
                    .buttons()
                    .into_iter()
                    .find(|b| b.id == id)
                    .map_or(id.clone(), |b| b.display_name);
                link_page(&state, &headers, &token, &provider, &user.email, false)
            }
        },
    };
    // The flow is over either way.
    set_cookie(
        &mut response,
        format!(
            "{STATE_COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Lax{}",
            secure_attr(&state)
        ),
    );
    response
}

fn link_page(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    provider: &str,
    email: &str,
    wrong: bool,
) -> Response {
    with_csrf_at(state, COOKIE_PATH, |csrf| {
        pages::link_page(
            locale(None, headers),
            &LinkView {
                action: paths::FEDERATION_LINK,
                csrf,
                token,
                provider,
                email,
                wrong_password: wrong,
            },
        )
    })
}

/// After the upstream vouched for `user`: on with the authorization request `return_to`.
async fn continue_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    provider: &str,
    return_to: &str,
    user: UserRecord,
    context: &RequestContext,
) -> Response {
    let Some((_, params)) = return_to_params(&state.issuer, return_to) else {
        return invalid_return_to(headers);
    };
    let request = match authorize::validate(params, false, state.provider.clients().as_ref()).await {
        Ok(request) => request,
        Err(err) => return authorize_error(state, headers, err),
    };
    // A second factor is not asked after an upstream sign-in: an account that has one, or a
    // client that requires one, signs in with the password and the factor instead.
    let has_factor = match state.mfa.methods(&user.id).await {
        Ok(methods) => !methods.is_empty(),
        Err(err) => {
            tracing::error!(error = %err, "the second factors could not be read");
            return pages::error_page(
                locale(Some(&request), headers),
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::ServerError,
            )
            .into_response();
        }
    };
    if has_factor || state.mfa.policy_for(&request.client) == MfaPolicy::Required {
        return pages::second_factor_page(locale(Some(&request), headers)).into_response();
    }
    signed_in_via(
        state,
        headers,
        &request,
        user,
        &[AMR_FEDERATED],
        Some(provider),
        context,
    )
    .await
}

/// `POST /federation/link`: the password of the existing account, to link the upstream
/// identity waiting behind `link_token` to it.
pub async fn confirm_link(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_of(&body);
    if !csrf_ok(&headers, &form) {
        return forged(&headers);
    }
    let token = form.get("link_token").map(String::as_str).unwrap_or_default();
    let pending = match state.federation.pending_link(token).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return failed(&headers, None, &FederationError::InvalidState),
        Err(err) => return failed(&headers, None, &err),
    };
    let user = match state.accounts.user(&pending.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return failed(&headers, None, &FederationError::InvalidState),
        Err(err) => {
            tracing::error!(error = %err, "the account to link could not be read");
            return failed(
                &headers,
                None,
                &FederationError::Misconfigured("store".to_owned()),
            );
        }
    };
    let provider = state
        .federation
        .buttons()
        .into_iter()
        .find(|b| b.id == pending.identity.provider)
        .map_or(pending.identity.provider.clone(), |b| b.display_name);
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    match state.accounts.authenticate(&user.email, password, &context).await {
        Ok(proved) if proved.id == user.id => {}
        Err(AccountError::Disabled) => return failed(&headers, None, &FederationError::AccountDisabled),
        // A wrong password, a throttled account (the login throttle counts these attempts),
        // or a proof of some other account: asked again, nothing linked.
        Ok(_) | Err(_) => {
            return link_page(&state, &headers, token, &provider, &user.email, true);
        }
    }
    // The second factor proves the account too, but is not asked here yet: such an account
    // links nothing this way.
    match state.mfa.methods(&user.id).await {
        Ok(methods) if methods.is_empty() => {}
        _ => return pages::second_factor_page(locale(None, &headers)).into_response(),
    }
    match state.federation.confirm_link(token, &user.id, &context).await {
        Ok(Some(linked)) => {
            continue_sign_in(
                &state,
                &headers,
                &linked.identity.provider,
                &linked.return_to,
                user,
                &context,
            )
            .await
        }
        Ok(None) => failed(&headers, None, &FederationError::InvalidState),
        Err(err) => failed(&headers, None, &err),
    }
}

/// One linked identity as the JSON API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    provider: String,
    subject: String,
    email: Option<String>,
    created_at: i64,
    last_used_at: i64,
}

impl From<FederationError> for ApiError {
    fn from(err: FederationError) -> Self {
        match err {
            FederationError::Store(err) => err.into(),
            FederationError::LastSignInMethod => ApiError::new(
                StatusCode::CONFLICT,
                "last-sign-in-method",
                "Conflict",
            )
            .detail(
                "this is the account's last way to sign in; set a password or link another identity first",
            ),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

/// `GET /auth/identities`: the caller's linked upstream identities.
pub async fn identities(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<IdentityView>>, ApiError> {
    let (claims, _) = caller(&state, &headers).await?;
    let identities = state.federation.identities(&claims.sub).await?;
    Ok(Json(
        identities
            .into_iter()
            .map(|i| IdentityView {
                provider: i.provider,
                subject: i.subject,
                email: i.email,
                created_at: i.created_at,
                last_used_at: i.last_used_at,
            })
            .collect(),
    ))
}

/// `DELETE /auth/identities/{provider}/{subject}`: unlinks one (never the last way in).
pub async fn unlink(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    Path((provider, subject)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (claims, _) = caller(&state, &headers).await?;
    let user = state
        .accounts
        .user(&claims.sub)
        .await
        .map_err(|_| ApiError::unavailable())?
        .ok_or_else(ApiError::not_found)?;
    if state
        .federation
        .unlink(&user, &provider, &subject, &context)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found().detail("no such linked identity"))
    }
}

#[cfg(test)]
mod tests {
    use super::return_to_params;

    #[test]
    fn return_to_is_an_authorization_request_here_or_nothing() {
        let issuer = "https://id.example.com";
        for good in [
            "/oauth2/authorize?client_id=shop&response_type=code",
            "https://id.example.com/oauth2/authorize?client_id=shop",
        ] {
            let (relative, params) = return_to_params(issuer, good).unwrap_or_else(|| panic!("{good}"));
            assert!(relative.starts_with("/oauth2/authorize?"), "{relative}");
            assert_eq!(params.get("client_id").map(String::as_str), Some("shop"));
        }
        for bad in [
            "https://evil.example/oauth2/authorize?client_id=shop",
            "//evil.example/oauth2/authorize?client_id=shop",
            "/\\evil.example/oauth2/authorize?client_id=shop",
            "http://id.example.com/oauth2/authorize?client_id=shop",
            "https://id.example.com:8443/oauth2/authorize?client_id=shop",
            "/account?client_id=shop",
            "/oauth2/authorize/../../elsewhere?client_id=shop",
            "/oauth2/authorize?response_type=code",
            "/oauth2/authorize?client_id=a&client_id=b",
            "javascript:alert(1)",
            "",
        ] {
            assert!(return_to_params(issuer, bad).is_none(), "{bad}");
        }
    }
}
