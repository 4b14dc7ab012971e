//! Hosted web apps (the account pages, the admin console) signed in through Tessera's own
//! OpenID Connect flow, as any relying party would be: each app is a built-in public client
//! ([`HostedApp`]) that sends the browser to `/oauth2/authorize` (code flow, `state`,
//! `nonce`, PKCE S256) and redeems the code at `{base}/callback` in-process, through the
//! provider the token endpoint uses. The tokens stay on the server, in an app-session record
//! in the shared ephemeral store; the browser holds a random handle to it in an HttpOnly
//! cookie scoped to the app's path.
//!
//! An app session is honoured only while the token session behind it is alive (idle and
//! absolute expiry, not ended, its user enabled); otherwise the browser is sent to sign in
//! again (`prompt=login` when a session had existed) and comes back to the page it was on.
//! Forms of a signed-in page carry the app session's CSRF secret and must come from this
//! origin ([`Signed::form_allowed`]).
//!
//! Generic over the app: an app's handlers call [`signed_in`] and [`callback`] with its
//! [`HostedApp`]; nothing here knows which pages it has.

pub(crate) mod store;

use std::collections::BTreeMap;
use std::time::Duration;

/// The longest a page form's body may be (the router's limit is larger).
const MAX_FORM_BYTES: usize = 16 * 1024;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_idp::accounts::HostedApp;
use tessera_idp::audit::RequestContext;
use tessera_idp::mail::Locale;
use tessera_idp::state::AppState;
use tessera_idp::tokens::opaque::{hashes_equal, random_b64, sha256_b64};
use tessera_proto::paths;
use tessera_store::durable::{SessionRecord, UserRecord};
use tessera_store::StoreError;

use self::store::{AppSession, PendingSignIn};
use super::oidc::{secure_attr, set_cookie};
use super::request::cookie;
use crate::pages::{self, ErrorKind};

/// The cookie that remembers the language chosen with a page's switch (all hosted apps).
pub(crate) const LANGUAGE_COOKIE: &str = "tessera_lang";
/// How long the language choice is remembered: a year.
const LANGUAGE_MAX_AGE: u64 = 31_536_000;
/// The longest `return_to` kept: a page of the app, never a whole document.
const MAX_RETURN_TO: usize = 512;
/// The scope every hosted app asks for.
const SCOPE: &str = "openid profile email";
/// The expiry warning shows this long before the idle expiry — or at half the idle
/// lifetime when that is shorter (a short configured lifetime still gets a warning).
const WARN_BEFORE_SECS: i64 = 300;

/// Seconds before the idle expiry that the expiry warning shows (docs/pages.md).
pub(crate) fn warn_before_secs(state: &AppState) -> i64 {
    WARN_BEFORE_SECS.min(state.tokens.idle_timeout_secs() / 2).max(1)
}

/// The app's short name (`account`), from its base path: the cookies' names use it.
fn short_name(app: &HostedApp) -> &'static str {
    app.base_path.trim_start_matches('/')
}

fn session_cookie(app: &HostedApp) -> String {
    format!("tessera_{}", short_name(app))
}

fn sign_in_cookie(app: &HostedApp) -> String {
    format!("tessera_{}_sign_in", short_name(app))
}

/// A signed-in request of a hosted app.
pub(crate) struct Signed {
    /// The browser's cookie value (the handle of the app session).
    handle: String,
    pub(crate) app_session: AppSession,
    pub(crate) user: UserRecord,
    /// The token session behind the app session, as of this request.
    pub(crate) session: SessionRecord,
    pub(crate) locale: Locale,
}

impl Signed {
    /// Whether a form posted on a signed-in page may act: its `csrf` field is this app
    /// session's secret (compared in constant time), and the browser says the request came
    /// from this origin (`Origin`, `Sec-Fetch-Site`), where it says anything.
    pub(crate) fn form_allowed(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        form: &BTreeMap<String, String>,
    ) -> bool {
        let token_ok = form
            .get("csrf")
            .is_some_and(|field| !field.is_empty() && hashes_equal(field, &self.app_session.csrf));
        token_ok && same_origin(state, headers)
    }

    /// The CSRF token that [`Signed::form_allowed`] expects.
    pub(crate) fn csrf(&self) -> &str {
        &self.app_session.csrf
    }

    /// The audit actor for what the user does here.
    pub(crate) fn actor(&self) -> String {
        format!("user:{}", self.user.id)
    }
}

/// Whether the browser's own headers place the request on this origin: an `Origin` header,
/// when sent, is the issuer's origin; `Sec-Fetch-Site`, when sent, is `same-origin`.
pub(crate) fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    from_origin_of(&state.issuer, headers)
}

fn from_origin_of(issuer: &str, headers: &HeaderMap) -> bool {
    let issuer_origin = origin_of(issuer);
    let site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or_default());
    let site_ok = site.is_none_or(|v| v == "same-origin");
    let origin_ok = match headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or_default())
    {
        None => true,
        // A page whose referrer policy withholds the origin posts `Origin: null`; the
        // browser's own `Sec-Fetch-Site` (which no page can set) then vouches for it.
        Some("null") => site == Some("same-origin"),
        Some(origin) => Some(origin) == issuer_origin.as_deref(),
    };
    origin_ok && site_ok
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization())
}

/// The page's language: the request's `ui_locales`, else the remembered switch, else
/// `Accept-Language`, else English.
pub(crate) fn locale(headers: &HeaderMap, ui_locales: Option<&str>) -> Locale {
    let chosen = ui_locales
        .map(str::to_owned)
        .or_else(|| cookie(headers, LANGUAGE_COOKIE));
    pages::locale_for(
        chosen.as_deref(),
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    )
}

/// `return_to` if it is a page of `app` (its base path, or a path under it, with an
/// optional query), else `None`: never another site, another app or the callback.
pub(crate) fn page_of_app(app: &HostedApp, return_to: &str) -> Option<String> {
    let base = app.base_path;
    let rest = return_to.strip_prefix(base)?;
    let shape_ok = rest.is_empty() || rest.starts_with('/') || rest.starts_with('?');
    let clean = return_to.len() <= MAX_RETURN_TO
        && !return_to.contains("//")
        && !return_to.contains('\\')
        && !return_to.chars().any(|c| c.is_control() || c.is_whitespace());
    let path = return_to.split('?').next().unwrap_or_default();
    let callback = format!("{base}/callback");
    (shape_ok && clean && path != callback && !path.contains("/../") && !path.ends_with("/.."))
        .then(|| return_to.to_owned())
}

/// The page a request was for, as a `return_to`: the path and query of a GET, the app's
/// home after anything else (a form post is not replayed).
fn return_to_of(app: &HostedApp, method: &Method, uri: &Uri) -> String {
    let here = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or(app.base_path);
    if *method == Method::GET {
        page_of_app(app, here).unwrap_or_else(|| app.base_path.to_owned())
    } else {
        app.base_path.to_owned()
    }
}

/// Why a request of the app is not signed in.
enum NotSignedIn {
    /// No cookie.
    Never,
    /// A cookie whose app session is gone, or whose token session is over (or its user is
    /// disabled): the user signs in again, even if the provider still knows the browser.
    Ended,
}

/// The signed-in state of a request to one of `app`'s pages, or the response that sends
/// the browser to sign in (and back to this page after). `touch`: the request is the
/// user's activity, which pushes the session's idle expiry out (a status poll is not).
pub(crate) async fn signed_in(
    state: &AppState,
    app: &HostedApp,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    touch: bool,
) -> Result<Signed, Response> {
    let locale = locale(headers, None);
    match check(state, app, headers, touch, locale).await {
        Ok(signed) => Ok(signed),
        Err(Err(err)) => Err(server_error(locale, &err)),
        Err(Ok(why)) => {
            let return_to = return_to_of(app, method, uri);
            let mut response = start_sign_in(
                state,
                app,
                headers,
                &return_to,
                matches!(why, NotSignedIn::Ended),
                locale,
            )
            .await;
            if matches!(why, NotSignedIn::Ended) {
                clear_session_cookie(state, app, &mut response);
            }
            Err(response)
        }
    }
}

async fn check(
    state: &AppState,
    app: &HostedApp,
    headers: &HeaderMap,
    touch: bool,
    locale: Locale,
) -> Result<Signed, Result<NotSignedIn, StoreError>> {
    let Some(handle) = cookie(headers, &session_cookie(app)).filter(|h| !h.is_empty() && h.len() <= 128)
    else {
        return Err(Ok(NotSignedIn::Never));
    };
    let store = state.ephemeral.as_ref();
    let Some(app_session) = store::load_session(store, app, &handle).await.map_err(Err)? else {
        return Err(Ok(NotSignedIn::Ended));
    };
    let alive = if touch {
        state.tokens.extend_session(&app_session.session_id).await
    } else {
        state.tokens.alive_session(&app_session.session_id).await
    };
    let session = alive
        .map_err(|e| Err(StoreError::Unavailable(e.to_string())))?
        .filter(|s| s.subject == app_session.user_id);
    let user = match &session {
        Some(_) => state
            .accounts
            .user(&app_session.user_id)
            .await
            .map_err(|e| Err(StoreError::Unavailable(e.to_string())))?
            .filter(|u| u.disabled_at.is_none()),
        None => None,
    };
    match (session, user) {
        (Some(session), Some(user)) => Ok(Signed {
            handle,
            app_session,
            user,
            session,
            locale,
        }),
        _ => {
            store::forget_session(store, app, &handle).await.map_err(Err)?;
            Err(Ok(NotSignedIn::Ended))
        }
    }
}

/// Sends the browser to `/oauth2/authorize` for `app`, remembering (bound to this browser
/// by the sign-in cookie) the PKCE verifier, the nonce and the page to come back to.
/// `return_to` must already be a page of the app. `prompt_login`: the user must sign in
/// again even if the provider still knows the browser (the app session ended).
pub(crate) async fn start_sign_in(
    state: &AppState,
    app: &HostedApp,
    headers: &HeaderMap,
    return_to: &str,
    prompt_login: bool,
    locale: Locale,
) -> Response {
    let browser = cookie(headers, &sign_in_cookie(app))
        .filter(|h| h.len() >= 32 && h.len() <= 128)
        .unwrap_or_else(|| random_b64(32));
    let oauth_state = random_b64(24);
    let nonce = random_b64(24);
    let verifier = random_b64(48);
    let pending = PendingSignIn {
        browser: sha256_b64(&browser),
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        return_to: page_of_app(app, return_to).unwrap_or_else(|| app.base_path.to_owned()),
    };
    if let Err(err) = store::save_pending(state.ephemeral.as_ref(), app, &oauth_state, &pending).await {
        return server_error(locale, &err);
    }
    let challenge = sha256_b64(&verifier);
    let redirect_uri = app.redirect_uri(&state.issuer);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", app.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", SCOPE)
        .append_pair("state", &oauth_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("ui_locales", locale.tag());
    if prompt_login {
        query.append_pair("prompt", "login");
    }
    let mut response = redirect(&format!("{}?{}", paths::AUTHORIZE, query.finish()));
    set_cookie(
        &mut response,
        format!(
            "{}={browser}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{}",
            sign_in_cookie(app),
            app.base_path,
            store::SIGN_IN_TTL.as_secs(),
            secure_attr(state)
        ),
    );
    response
}

/// `GET {base}/callback`: the end of the app's authorization request. The `state` must be
/// one this browser started (single use); the code is redeemed in-process with the
/// verifier; the ID token's nonce must be the one sent. Then a new app session starts (any
/// older one of this browser is forgotten) and the browser goes to the page it came from.
pub(crate) async fn callback(
    state: &AppState,
    app: &HostedApp,
    context: &RequestContext,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
) -> Response {
    let locale = locale(headers, None);
    let refused = |why: &str| {
        tracing::info!(app = app.client_id, reason = why, "hosted app sign-in refused");
        pages::error_page(locale, StatusCode::BAD_REQUEST, ErrorKind::SessionExpired).into_response()
    };
    let Some(oauth_state) = query.get("state").filter(|s| !s.is_empty() && s.len() <= 128) else {
        return refused("no state");
    };
    let pending = match store::take_pending(state.ephemeral.as_ref(), app, oauth_state).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return refused("unknown, used or expired state"),
        Err(err) => return server_error(locale, &err),
    };
    let browser_ok = cookie(headers, &sign_in_cookie(app))
        .is_some_and(|browser| hashes_equal(&sha256_b64(&browser), &pending.browser));
    if !browser_ok {
        return refused("the state was started by another browser");
    }
    // RFC 9207: the answer names its issuer.
    if query.get("iss").is_some_and(|iss| iss.as_str() != &*state.issuer) {
        return refused("iss is another issuer");
    }
    if let Some(error) = query.get("error") {
        tracing::info!(app = app.client_id, error = %error, "hosted app sign-in answered with an error");
        return refused("the authorization request failed");
    }
    let Some(code) = query.get("code").filter(|c| !c.is_empty() && c.len() <= 256) else {
        return refused("no code");
    };
    let client = match state.clients.client(app.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return server_error(
                locale,
                &StoreError::Corrupt("the hosted app's client is missing".into()),
            )
        }
        Err(err) => return server_error(locale, &err),
    };
    let redirect_uri = app.redirect_uri(&state.issuer);
    let granted = match state
        .provider
        .exchange_code(
            &client,
            code,
            Some(&redirect_uri),
            Some(&pending.verifier),
            None,
            context,
        )
        .await
    {
        Ok(granted) => granted,
        Err(failure) => {
            tracing::info!(app = app.client_id, error = ?failure, "hosted app code exchange refused");
            return refused("the code exchange failed");
        }
    };
    // OIDC Core §3.1.3.7: ours, for this client, with the nonce this browser was sent.
    let Some(claims) = granted
        .id_token
        .as_deref()
        .and_then(|token| state.provider.id_token_hint(token))
    else {
        return refused("no valid ID token");
    };
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|nonce| hashes_equal(nonce, &pending.nonce));
    if claims.aud != app.client_id || !nonce_ok || claims.exp <= state.clock.now() {
        return refused("the ID token is not for this sign-in");
    }
    let session = match state.tokens.session_of_access_token(&granted.access_token) {
        Ok(sid) => match state.tokens.alive_session(&sid).await {
            Ok(Some(session)) => session,
            Ok(None) => return refused("the new session is already over"),
            Err(err) => return server_error(locale, &StoreError::Unavailable(err.to_string())),
        },
        Err(_) => return refused("the access token names no session"),
    };
    let app_session = AppSession {
        user_id: claims.sub.clone(),
        session_id: session.id.clone(),
        sso_session_id: claims.sid.clone(),
        refresh_token: granted.refresh_token,
        csrf: random_b64(32),
    };
    let lifetime = session
        .absolute_expires_at
        .saturating_sub(state.clock.now())
        .max(1);
    let ttl = Duration::from_secs(u64::try_from(lifetime).unwrap_or(1));
    let handle = random_b64(32);
    let store = state.ephemeral.as_ref();
    if let Some(old) = cookie(headers, &session_cookie(app)).filter(|h| !h.is_empty() && h.len() <= 128) {
        if let Err(err) = store::forget_session(store, app, &old).await {
            return server_error(locale, &err);
        }
    }
    if let Err(err) = store::save_session(store, app, &handle, &app_session, ttl).await {
        return server_error(locale, &err);
    }
    let mut response = redirect(&pending.return_to);
    set_cookie(
        &mut response,
        format!(
            "{}={handle}; Path={}; HttpOnly; SameSite=Lax{}",
            session_cookie(app),
            app.base_path,
            secure_attr(state)
        ),
    );
    response
}

/// Signs the user out of the app and of Tessera: the provider's browser sign-in ends, and
/// with it every token session that came through it (this app's included), as the
/// RP-initiated logout ends it. Then the app session is forgotten.
pub(crate) async fn sign_out(
    state: &AppState,
    app: &HostedApp,
    signed: &Signed,
    context: &RequestContext,
) -> Result<Response, StoreError> {
    let actor = signed.actor();
    state
        .provider
        .end_sso(&signed.app_session.sso_session_id, "logout", &actor, context)
        .await?;
    // A session that did not come through that sign-in (none should) ends as well.
    state
        .tokens
        .end_session(&signed.app_session.session_id, "logout", &actor, context)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    store::forget_session(state.ephemeral.as_ref(), app, &signed.handle).await?;
    let mut response = pages::logged_out_page(signed.locale).into_response();
    clear_session_cookie(state, app, &mut response);
    Ok(response)
}

/// Forgets the app session of a user who is gone (their account deleted): the cookie is
/// cleared on `response`.
pub(crate) async fn forget(
    state: &AppState,
    app: &HostedApp,
    signed: &Signed,
    response: &mut Response,
) -> Result<(), StoreError> {
    store::forget_session(state.ephemeral.as_ref(), app, &signed.handle).await?;
    clear_session_cookie(state, app, response);
    Ok(())
}

/// `GET {base}/language?set=ko&return_to=…`: remembers the language in a cookie and goes
/// back to the page (a page of the app, else its home).
pub(crate) fn choose_language(
    state: &AppState,
    app: &HostedApp,
    query: &BTreeMap<String, String>,
) -> Response {
    let tag = match query.get("set").map(String::as_str) {
        Some("ko") => "ko",
        _ => "en",
    };
    let back = query
        .get("return_to")
        .and_then(|r| page_of_app(app, r))
        .unwrap_or_else(|| app.base_path.to_owned());
    let mut response = redirect(&back);
    set_cookie(
        &mut response,
        format!(
            "{LANGUAGE_COOKIE}={tag}; Path=/; Max-Age={LANGUAGE_MAX_AGE}; SameSite=Lax{}",
            secure_attr(state)
        ),
    );
    response
}

fn clear_session_cookie(state: &AppState, app: &HostedApp, response: &mut Response) {
    set_cookie(
        response,
        format!(
            "{}=; Path={}; Max-Age=0; HttpOnly; SameSite=Lax{}",
            session_cookie(app),
            app.base_path,
            secure_attr(state)
        ),
    );
}

/// A 302 to a page of this origin, never cached.
pub(crate) fn redirect(to: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A 303 after a form post, to a page of the app.
pub(crate) fn see_other(to: &str) -> Response {
    let mut response = redirect(to);
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// The error page of a store failure; the cause goes to the log only.
pub(crate) fn server_error(locale: Locale, err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "hosted app request failed");
    pages::error_page(locale, StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::ServerError).into_response()
}

/// A page form: `application/x-www-form-urlencoded`, each field at most once. `None` for
/// anything else (the caller answers 400).
pub(crate) fn page_form(headers: &HeaderMap, body: &[u8]) -> Option<BTreeMap<String, String>> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form || body.len() > MAX_FORM_BYTES {
        return None;
    }
    let mut form = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if form.insert(key.into_owned(), value.into_owned()).is_some() {
            return None;
        }
    }
    Some(form)
}

/// The answer to a form that failed its CSRF or origin check, or was malformed.
pub(crate) fn refused_form(locale: Locale) -> Response {
    pages::error_page(
        locale,
        StatusCode::FORBIDDEN,
        ErrorKind::InvalidRequest("the form expired or did not come from this site; reload the page".into()),
    )
    .into_response()
}

pub(crate) fn bad_form(locale: Locale) -> Response {
    pages::error_page(
        locale,
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidRequest("the form is malformed".into()),
    )
    .into_response()
}

/// The lifetimes the expiry warning reads (docs/pages.md).
fn lifetimes(state: &AppState, idle: i64, absolute: i64) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "idleExpiresAt": idle,
        "absoluteExpiresAt": absolute,
        "now": state.clock.now(),
        "warnBeforeSecs": warn_before_secs(state),
    }))
}

/// `GET {base}/session`: the signed-in session's lifetimes as JSON, for the expiry
/// warning (no activity: reading them does not extend the session); 401 when it has ended.
pub(crate) async fn session_status(
    state: &AppState,
    app: &HostedApp,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
) -> Response {
    match signed_in(state, app, headers, method, uri, false).await {
        Ok(signed) => {
            let mut response = lifetimes(
                state,
                signed.session.idle_expires_at,
                signed.session.absolute_expires_at,
            )
            .into_response();
            no_store(&mut response);
            response
        }
        Err(_) => session_ended(),
    }
}

fn session_ended() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": "session_ended" })),
    )
        .into_response();
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
}

/// `POST {base}/session/extend` (`csrf`, `return_to`): pushes the idle expiry out through
/// the token service's extend, as `POST /auth/session/extend` does. JSON for the script
/// (`Accept: application/json`), else back to the page.
pub(crate) async fn session_extend(
    state: &AppState,
    app: &HostedApp,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let signed = match signed_in(state, app, headers, &Method::POST, uri, false).await {
        Ok(signed) => signed,
        Err(sign_in) if wants_json => {
            drop(sign_in);
            return session_ended();
        }
        Err(sign_in) => return sign_in,
    };
    let Some(form) = page_form(headers, body) else {
        return bad_form(signed.locale);
    };
    if !signed.form_allowed(state, headers, &form) {
        return refused_form(signed.locale);
    }
    let extended = match state.tokens.extend_session(&signed.session.id).await {
        Ok(Some(session)) => session,
        Ok(None) => return session_ended(),
        Err(err) => return server_error(signed.locale, &err),
    };
    if wants_json {
        let mut response =
            lifetimes(state, extended.idle_expires_at, extended.absolute_expires_at).into_response();
        no_store(&mut response);
        return response;
    }
    let back = form
        .get("return_to")
        .and_then(|r| page_of_app(app, r))
        .unwrap_or_else(|| app.base_path.to_owned());
    see_other(&back)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_idp::accounts::ACCOUNT_APP;

    #[test]
    fn return_to_is_only_a_page_of_the_app() {
        for good in [
            "/account",
            "/account/",
            "/account/sessions",
            "/account?x=1",
            "/account/security?tab=mfa",
        ] {
            assert_eq!(page_of_app(&ACCOUNT_APP, good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "https://evil.example/account",
            "//evil.example/account",
            "/account//evil.example",
            "/accountx",
            "/console",
            "/account/callback",
            "/account/callback?code=x",
            "/account/\\evil",
            "/account/../oauth2/authorize",
            "/account/..",
            "/account/a b",
            "/account/\nSet-Cookie:x",
            "",
            "account",
        ] {
            assert_eq!(page_of_app(&ACCOUNT_APP, bad), None, "{bad:?}");
        }
        let long = format!("/account/{}", "a".repeat(600));
        assert_eq!(page_of_app(&ACCOUNT_APP, &long), None);
    }

    #[test]
    fn only_a_post_from_this_origin_passes() {
        let issuer = "https://id.example:8443";
        let check = |origin: Option<&str>, site: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(o) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            if let Some(s) = site {
                headers.insert("sec-fetch-site", HeaderValue::from_str(s).unwrap());
            }
            from_origin_of(issuer, &headers)
        };
        assert!(check(None, None));
        assert!(check(Some("https://id.example:8443"), Some("same-origin")));
        assert!(!check(Some("https://evil.example"), None));
        assert!(!check(Some("null"), None));
        // What Chromium sends for a form post of a page with `Referrer-Policy: no-referrer`.
        assert!(check(Some("null"), Some("same-origin")));
        assert!(!check(Some("null"), Some("cross-site")));
        assert!(!check(Some("https://evil.example"), Some("same-origin")));
        assert!(!check(None, Some("cross-site")));
        assert!(!check(None, Some("same-site")));
    }
}
