//! The browser-facing OAuth/OIDC endpoints: authorization (with the hosted login and
//! consent pages), userinfo, and RP-initiated logout.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_proto::{paths, OAuthErrorCode};
use tessera_store::durable::UserRecord;
use tessera_store::StoreError;

use super::request::{cookie, Context};
use crate::error::OAuthReply;
use crate::pages::{self, ConsentView, ErrorKind, Hidden, LoginError, LoginView, LogoutView, ProviderLink};
use tessera_idp::accounts::AccountError;
use tessera_idp::alerts::{SignInSession, DEVICE_COOKIE};
use tessera_idp::audit::RequestContext;
use tessera_idp::error::OAuthFailure;
use tessera_idp::mail::Locale;
use tessera_idp::oidc::authorize::{self, AuthorizeError, AuthorizeRequest};
use tessera_idp::oidc::Next;
use tessera_idp::state::AppState;
use tessera_idp::tokens::opaque::{hashes_equal, random_b64};
use tessera_idp::tokens::{Presented, TokenError};

/// The provider's browser-session cookie.
pub const SSO_COOKIE: &str = "tessera_sso";
/// The CSRF cookie of the hosted forms (double-submit).
const CSRF_COOKIE: &str = "tessera_csrf";

pub(super) fn secure_attr(state: &AppState) -> &'static str {
    if state.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

pub(super) fn set_cookie(response: &mut Response, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub(super) fn locale(request: Option<&AuthorizeRequest>, headers: &HeaderMap) -> Locale {
    pages::locale_for(
        request.and_then(|r| r.ui_locales.as_deref()),
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    )
}

/// A redirect to a client or a page; 303 after a form post, 302 otherwise.
fn redirect(to: &str, after_post: bool) -> Response {
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn hidden_pairs(params: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Renders a hosted form page with a fresh CSRF token in a cookie beside it.
pub(super) fn with_csrf(state: &AppState, render: impl FnOnce(&str) -> pages::Page) -> Response {
    with_csrf_at(state, "/oauth2", render)
}

/// [`with_csrf`] for a form under `path` (the cookie's `Path`).
pub(super) fn with_csrf_at(
    state: &AppState,
    path: &str,
    render: impl FnOnce(&str) -> pages::Page,
) -> Response {
    let csrf = random_b64(24);
    let mut response = render(&csrf).into_response();
    set_cookie(
        &mut response,
        format!(
            "{CSRF_COOKIE}={csrf}; Path={path}; Max-Age=3600; HttpOnly; SameSite=Strict{}",
            secure_attr(state)
        ),
    );
    response
}

/// Whether a form's CSRF token matches its cookie.
pub(super) fn csrf_ok(headers: &HeaderMap, form: &BTreeMap<String, String>) -> bool {
    match (cookie(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(cookie), Some(field)) => !cookie.is_empty() && hashes_equal(&cookie, field),
        _ => false,
    }
}

pub(super) fn authorize_error(state: &AppState, headers: &HeaderMap, err: AuthorizeError) -> Response {
    authorize_error_in(state, headers, err, None)
}

/// Like [`authorize_error`], in the language the (unvalidated) request asked for.
fn authorize_error_in(
    state: &AppState,
    headers: &HeaderMap,
    err: AuthorizeError,
    ui_locales: Option<&str>,
) -> Response {
    let page_locale = pages::locale_for(
        ui_locales,
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    );
    match err {
        AuthorizeError::Unredirectable { description, .. } => pages::error_page(
            page_locale,
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest(description.to_owned()),
        )
        .into_response(),
        AuthorizeError::Page(kind) => {
            let status = match kind {
                ErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            pages::error_page(page_locale, status, kind).into_response()
        }
        AuthorizeError::Redirect {
            redirect_uri,
            state: client_state,
            error,
            description,
        } => {
            let mut params = vec![
                ("error", error.as_str()),
                ("error_description", description),
                ("iss", &*state.issuer),
            ];
            if let Some(s) = client_state.as_deref() {
                params.push(("state", s));
            }
            redirect(&authorize::redirect_with(&redirect_uri, &params), false)
        }
        AuthorizeError::Store(StoreError::InvalidInput(cause)) => {
            tracing::info!(cause, "authorization request with a value that cannot be stored");
            pages::error_page(
                page_locale,
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidRequest("a parameter contains a character that is not allowed".to_owned()),
            )
            .into_response()
        }
        AuthorizeError::Store(err) => {
            tracing::error!(error = %err, "authorization request failed");
            pages::error_page(
                locale(None, headers),
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::ServerError,
            )
            .into_response()
        }
    }
}

pub(super) fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    error: Option<LoginError>,
) -> Response {
    login_page_with(state, headers, request, error, None)
}

/// The login page again after a failed attempt, keeping the address the user typed.
fn login_page_with(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    error: Option<LoginError>,
    typed_username: Option<&str>,
) -> Response {
    let hidden = hidden_pairs(&request.params);
    let retry_after = match &error {
        Some(LoginError::TooManyAttempts { retry_after_secs }) => Some(*retry_after_secs),
        _ => None,
    };
    let buttons = super::federation::buttons(state, request);
    let providers: Vec<ProviderLink<'_>> = buttons
        .iter()
        .map(|(href, name)| ProviderLink {
            href,
            display_name: name,
        })
        .collect();
    let mut response = with_csrf(state, |csrf| {
        pages::login_page(
            locale(Some(request), headers),
            &LoginView {
                action: paths::AUTHORIZE_LOGIN,
                csrf,
                client_name: &request.client.name,
                login_hint: typed_username.or(request.login_hint.as_deref()),
                error,
                hidden: Hidden(&hidden),
                passkey_action: state.mfa.passkeys_enabled().then_some(paths::AUTHORIZE_PASSKEY),
                providers: &providers,
            },
        )
    });
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn consent_page(state: &AppState, headers: &HeaderMap, request: &AuthorizeRequest) -> Response {
    let hidden = hidden_pairs(&request.params);
    let scopes: Vec<&str> = request.scope.iter().map(String::as_str).collect();
    with_csrf(state, |csrf| {
        pages::consent_page(
            locale(Some(request), headers),
            &ConsentView {
                action: paths::AUTHORIZE_CONSENT,
                csrf,
                client_name: &request.client.name,
                scopes: &scopes,
                hidden: Hidden(&hidden),
            },
        )
    })
}

async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    sso: Option<&(
        tessera_store::durable::SsoSessionRecord,
        tessera_store::durable::UserRecord,
    )>,
    fresh: bool,
    after_post: bool,
    context: &RequestContext,
) -> Response {
    match state.provider.decide(request, sso, fresh, context).await {
        Ok(Next::Login) => login_page(state, headers, request, None),
        Ok(Next::Consent) => consent_page(state, headers, request),
        Ok(Next::Redirect(to)) => redirect(&to, after_post),
        Err(err) => authorize_error(state, headers, AuthorizeError::Store(err)),
    }
}

/// `GET|POST /oauth2/authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    // OIDC Core §3.1.2.1: GET with a query, or POST with a form.
    let raw: Vec<u8> = if body.is_empty() {
        query.unwrap_or_default().into_bytes()
    } else {
        body.to_vec()
    };
    let (mut params, mut repeated) = authorize::parse_params(&raw);
    // A pushed request (RFC 9126 §4): its parameters, validated again, stand for the query.
    let pushed = match params
        .get("request_uri")
        .filter(|uri| uri.starts_with(tessera_idp::oidc::par::REQUEST_URI_PREFIX))
        .cloned()
    {
        Some(uri) => match super::par::pushed_params(&state, &headers, &params, repeated, &uri).await {
            Ok(pushed) => {
                params = pushed;
                repeated = false;
                true
            }
            Err(refused) => return refused,
        },
        None => false,
    };
    // A request object by value (pushed ones were resolved when pushed).
    let params =
        match authorize::with_request_object(params, state.provider.clients().as_ref(), &state.client_auth)
            .await
        {
            Ok(params) => params,
            Err(err) => return authorize_error_in(&state, &headers, err, None),
        };
    let ui_locales = params.get("ui_locales").cloned();
    let request = match authorize::validate(params, repeated, state.provider.clients().as_ref()).await {
        Ok(request) => request,
        Err(err) => return authorize_error_in(&state, &headers, err, ui_locales.as_deref()),
    };
    // Enforced here, at the front door: the hosted forms that continue a request re-validate
    // the parameters they carry, which only this page put there (CSRF-bound, SameSite=Strict).
    if request.client.require_pushed_authorization_requests && !pushed {
        let refused = AuthorizeError::Redirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            error: OAuthErrorCode::InvalidRequest,
            description: "this client must push its authorization requests to the PAR endpoint",
        };
        return authorize_error_in(&state, &headers, refused, ui_locales.as_deref());
    }
    let sso = match state
        .provider
        .sso_session(cookie(&headers, SSO_COOKIE).as_deref())
        .await
    {
        Ok(sso) => sso,
        Err(err) => return authorize_error(&state, &headers, AuthorizeError::Store(err)),
    };
    proceed(&state, &headers, &request, sso.as_ref(), false, false, &context).await
}

/// The carried authorization parameters of a hosted form (everything but the form's own
/// fields).
fn carried(form: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    form.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "csrf"
                    | "username"
                    | "password"
                    | "decision"
                    | "mfa_token"
                    | "code"
                    | "method"
                    | "credential"
                    | "passkey"
                    | "passkey_token"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A form posted by one of the hosted authorize pages (login, factor, consent): its fields
/// and the authorization request they carry, validated again — or the page that refuses
/// it (a forged form, a request that no longer validates).
pub(super) async fn posted_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(BTreeMap<String, String>, AuthorizeRequest), Response> {
    let form = form_of(body);
    if !csrf_ok(headers, &form) {
        return Err(forged(headers));
    }
    if let Some(user_code) = form.get(authorize::DEVICE_SIGN_IN) {
        // The device page's sign-in: the client whose policy the sign-in follows, and the
        // code to go back to. The code is not looked up here (that would be an unthrottled
        // oracle); the device page checks it, throttled, when the user answers.
        let client = match form.get("client_id") {
            Some(id) if id.len() <= 255 => state.provider.clients().client(id).await,
            _ => Ok(None),
        };
        return match client {
            Ok(Some(client)) => Ok((
                form.clone(),
                AuthorizeRequest::device_sign_in(client, user_code, form.get("ui_locales").cloned()),
            )),
            Ok(None) => Err(authorize_error(
                state,
                headers,
                AuthorizeError::Page(ErrorKind::InvalidClient),
            )),
            Err(err) => Err(authorize_error(state, headers, AuthorizeError::Store(err))),
        };
    }
    match authorize::validate(carried(&form), false, state.provider.clients().as_ref()).await {
        Ok(request) => Ok((form, request)),
        Err(err) => Err(authorize_error(state, headers, err)),
    }
}

pub(super) fn form_of(body: &[u8]) -> BTreeMap<String, String> {
    authorize::parse_params(body).0
}

pub(super) fn forged(headers: &HeaderMap) -> Response {
    pages::error_page(
        locale(None, headers),
        StatusCode::FORBIDDEN,
        ErrorKind::InvalidRequest("the form expired or was not sent from this site; start again".to_owned()),
    )
    .into_response()
}

/// `POST /oauth2/authorize/login`: the hosted login form.
pub async fn login(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, request) = match posted_form(&state, &headers, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
        return login_page(&state, &headers, &request, Some(LoginError::InvalidCredentials));
    };
    let user = match state.accounts.authenticate(username, password, &context).await {
        Ok(user) => user,
        Err(err) => {
            let error = match err {
                AccountError::Throttled { retry_after } => LoginError::TooManyAttempts {
                    retry_after_secs: retry_after,
                },
                AccountError::EmailNotVerified => LoginError::EmailNotVerified,
                AccountError::Disabled => LoginError::AccountDisabled,
                AccountError::Store(err) => {
                    return authorize_error(&state, &headers, AuthorizeError::Store(err))
                }
                _ => LoginError::InvalidCredentials,
            };
            return login_page_with(&state, &headers, &request, Some(error), Some(username.as_str()));
        }
    };
    super::hosted_mfa::second_step(&state, &headers, &request, user, &context).await
}

/// After the password (and the second factor, when the user has one): the SSO session,
/// the new-sign-in check, then on to consent or the client.
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    user: UserRecord,
    amr: &[&str],
    context: &RequestContext,
) -> Response {
    signed_in_via(state, headers, request, user, amr, None, context).await
}

/// [`signed_in`] for a sign-in at the upstream provider `idp` (federation).
pub(super) async fn signed_in_via(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    user: UserRecord,
    amr: &[&str],
    idp: Option<&str>,
    context: &RequestContext,
) -> Response {
    let (sso, secret) = match state.provider.start_sso(&user, amr, idp, context).await {
        Ok(started) => started,
        Err(err) => return authorize_error(state, headers, AuthorizeError::Store(err)),
    };
    let device = state
        .alerts
        .signed_in(
            &user,
            &SignInSession::Sso {
                id: sso.id.clone(),
                expires_at: sso.expires_at,
            },
            cookie(headers, DEVICE_COOKIE).as_deref(),
            context,
        )
        .await;
    let mut response = proceed(state, headers, request, Some(&(sso, user)), true, true, context).await;
    set_cookie(
        &mut response,
        format!(
            "{SSO_COOKIE}={secret}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            state.provider.sso_ttl(),
            secure_attr(state)
        ),
    );
    if let Some(device) = device {
        super::alerts::set_device_cookie(state, &mut response, &device);
    }
    response
}

/// `POST /oauth2/authorize/consent`: the user's decision.
pub async fn consent(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, request) = match posted_form(&state, &headers, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let sso = match state
        .provider
        .sso_session(cookie(&headers, SSO_COOKIE).as_deref())
        .await
    {
        Ok(Some(sso)) => sso,
        Ok(None) => return login_page(&state, &headers, &request, None),
        Err(err) => return authorize_error(&state, &headers, AuthorizeError::Store(err)),
    };
    let allow = form.get("decision").is_some_and(|d| d == "allow");
    match state
        .provider
        .consent_decision(&request, &sso, allow, &context)
        .await
    {
        Ok(to) => redirect(&to, true),
        Err(err) => authorize_error(&state, &headers, AuthorizeError::Store(err)),
    }
}

/// `GET|POST /oauth2/userinfo`: the access token in the `Authorization` header — `Bearer`
/// (RFC 6750 §2.1), or `DPoP` with a proof for a DPoP-bound token (RFC 9449 §7.1) — or, on
/// a form-encoded `POST`, as the body's `access_token` (RFC 6750 §2.2, which OIDC Core
/// §5.3.1 allows; a Bearer token then). One of the two, never both (§2); never from the
/// query string (§2.3): URLs end up in logs and browser history.
pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthReply> {
    let from_body = userinfo_body_token(&method, query.as_deref(), &headers, &body)?;
    let from_header;
    let (token, presented, is_dpop) = match &from_body {
        Some(token) => (token.as_str(), Presented::Bearer, false),
        None => {
            from_header = super::dpop::presented_token(
                &state,
                &headers,
                method.as_str(),
                tessera_proto::paths::USERINFO,
            )
            .await?;
            (from_header.token, from_header.presented(), from_header.is_dpop())
        }
    };
    match state.provider.userinfo(token, presented).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(TokenError::InvalidScope) => Err(OAuthFailure::new(
            OAuthErrorCode::InsufficientScope,
            "the access token lacks the openid scope",
        )
        .into()),
        // A DPoP presentation, or a bound token as Bearer, is answered with the DPoP
        // challenge (RFC 9449 §7.1); other failures with the Bearer one.
        Err(TokenError::InvalidToken(why))
            if is_dpop || why == tessera_idp::tokens::access::Rejected::Unproven =>
        {
            Err(
                OAuthFailure::new(OAuthErrorCode::InvalidToken, "the access token is invalid")
                    .caused_by(why)
                    .at_dpop_resource()
                    .into(),
            )
        }
        Err(other) => Err(other.into()),
    }
}

/// The access token of a userinfo request's form body (RFC 6750 §2.2), `None` when it
/// comes in the `Authorization` header; refuses the query string and two ways at once.
fn userinfo_body_token(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<String>, OAuthReply> {
    let refuse = |description: &'static str| {
        OAuthReply::from(OAuthFailure::new(OAuthErrorCode::InvalidRequest, description))
    };
    let in_query = query
        .is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name == "access_token"));
    if in_query {
        return Err(refuse("the access token must not be sent in the query string"));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    let in_body = if method == Method::POST && is_form {
        super::request::oauth_form(headers, body)?.remove("access_token")
    } else {
        None
    };
    match (headers.contains_key(header::AUTHORIZATION), in_body) {
        (true, Some(_)) => Err(refuse("the access token must be sent in one way only")),
        (_, in_body) => Ok(in_body),
    }
}

/// What a logout request asks, once checked.
struct LogoutRequest {
    params: BTreeMap<String, String>,
    redirect_to: Option<String>,
    client_name: Option<String>,
    hinted_sid: Option<String>,
}

async fn logout_request(
    state: &AppState,
    params: BTreeMap<String, String>,
) -> Result<LogoutRequest, ErrorKind> {
    let invalid = |detail: &str| ErrorKind::InvalidRequest(detail.to_owned());
    let hint = match params.get("id_token_hint") {
        Some(token) => Some(
            state
                .provider
                .id_token_hint(token)
                .ok_or_else(|| invalid("id_token_hint is not a valid ID token of this provider"))?,
        ),
        None => None,
    };
    let client_id = match (hint.as_ref().map(|h| h.aud.clone()), params.get("client_id")) {
        (Some(aud), Some(given)) if &aud != given => {
            return Err(invalid("client_id does not match id_token_hint"))
        }
        (Some(aud), _) => Some(aud),
        (None, given) => given.cloned(),
    };
    let client = match &client_id {
        Some(id) => Some(
            state
                .provider
                .clients()
                .client(id)
                .await
                .map_err(|_| ErrorKind::ServerError)?
                .ok_or(ErrorKind::InvalidClient)?,
        ),
        None => None,
    };
    let redirect_to = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            // Only to a URI the client registered; without a known client, nowhere.
            let client = client
                .as_ref()
                .ok_or_else(|| invalid("post_logout_redirect_uri needs id_token_hint or client_id"))?;
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(ErrorKind::InvalidRedirectUri);
            }
            let mut query = Vec::new();
            if let Some(s) = params.get("state") {
                query.push(("state", s.as_str()));
            }
            Some(authorize::redirect_with(uri, &query))
        }
    };
    Ok(LogoutRequest {
        hinted_sid: hint.map(|h| h.sid),
        client_name: client.map(|c| c.name),
        redirect_to,
        params,
    })
}

fn logged_out(state: &AppState, headers: &HeaderMap, request: &LogoutRequest, after_post: bool) -> Response {
    let mut response = match &request.redirect_to {
        Some(to) => redirect(to, after_post),
        None => pages::logged_out_page(locale(None, headers)).into_response(),
    };
    set_cookie(
        &mut response,
        format!(
            "{SSO_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
            secure_attr(state)
        ),
    );
    response
}

/// `GET|POST /oauth2/logout`: RP-initiated logout (OIDC RP-Initiated Logout 1.0). With a
/// valid `id_token_hint` for the browser's own session it logs out at once; otherwise it
/// asks the user first (a third party must not be able to log users out).
pub async fn end_session(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let raw: Vec<u8> = if body.is_empty() {
        query.unwrap_or_default().into_bytes()
    } else {
        body.to_vec()
    };
    let (params, repeated) = authorize::parse_params(&raw);
    if repeated {
        return pages::error_page(
            locale(None, &headers),
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest("a parameter is repeated".into()),
        )
        .into_response();
    }
    let request = match logout_request(&state, params).await {
        Ok(request) => request,
        Err(kind) => {
            return pages::error_page(locale(None, &headers), StatusCode::BAD_REQUEST, kind).into_response()
        }
    };
    let sso = match state
        .provider
        .sso_session(cookie(&headers, SSO_COOKIE).as_deref())
        .await
    {
        Ok(sso) => sso,
        Err(_) => {
            return pages::error_page(
                locale(None, &headers),
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::ServerError,
            )
            .into_response()
        }
    };
    match sso {
        None => logged_out(&state, &headers, &request, false),
        Some((session, _)) if request.hinted_sid.as_deref() == Some(session.id.as_str()) => {
            if let Err(err) = state
                .provider
                .end_sso(&session.id, "rp_logout", "user", &context)
                .await
            {
                tracing::error!(error = %err, "logout failed");
            }
            logged_out(&state, &headers, &request, false)
        }
        Some(_) => {
            let hidden = hidden_pairs(&request.params);
            with_csrf(&state, |csrf| {
                pages::logout_confirm_page(
                    locale(None, &headers),
                    &LogoutView {
                        action: paths::LOGOUT_CONFIRM,
                        csrf,
                        client_name: request.client_name.as_deref(),
                        hidden: Hidden(&hidden),
                    },
                )
            })
        }
    }
}

/// `POST /oauth2/logout/confirm`: the user's answer to "sign out?".
pub async fn confirm_logout(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_of(&body);
    if !csrf_ok(&headers, &form) {
        return forged(&headers);
    }
    let request = match logout_request(&state, carried(&form)).await {
        Ok(request) => request,
        Err(kind) => {
            return pages::error_page(locale(None, &headers), StatusCode::BAD_REQUEST, kind).into_response()
        }
    };
    if form.get("decision").map(String::as_str) != Some("logout") {
        // Declined: nothing ended, and the page says so (not the client's logged-out URI).
        return pages::still_signed_in_page(locale(None, &headers)).into_response();
    }
    if let Ok(Some((session, _))) = state
        .provider
        .sso_session(cookie(&headers, SSO_COOKIE).as_deref())
        .await
    {
        if let Err(err) = state
            .provider
            .end_sso(&session.id, "user_logout", "user", &context)
            .await
        {
            tracing::error!(error = %err, "logout failed");
        }
    }
    logged_out(&state, &headers, &request, true)
}
