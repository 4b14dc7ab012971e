//! The admin console (`/console`): a hosted app ([`CONSOLE_APP`]) signed in through
//! Tessera's own OpenID Connect flow ([`super::portal`]), whose built-in client requires a
//! second factor (`mfa_policy = required`). Who may use it is decided on every request from
//! the user's current roles: `tessera:admin` is an operator (everything), `tessera:auditor`
//! reads only; anyone else gets a 403 page, and so does a session without a second factor.
//!
//! Every change goes through the same service layer as the admin API and the CLI
//! (accounts, tokens, MFA, the client registry, key rotation), audited with the operator
//! (`user:<id>`) as actor. A change is a form post: it must carry the app session's CSRF
//! token and come from this origin, and an auditor's post is refused (403) before anything
//! is read from it. After a change the browser is sent back to the page (303) with the
//! outcome in a single-use flash (never in the URL).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tessera_idp::accounts::{AccountError, UserView, CONSOLE_APP};
use tessera_idp::audit::RequestContext;
use tessera_idp::keys::{list_keys, rotate_keys, ALGORITHMS};
use tessera_idp::oidc::authorize::parse_params;
use tessera_idp::registry::{ClientPatch, ClientRegistry, ClientSpec, ClientView, RegistryError};
use tessera_idp::state::AppState;
use tessera_store::durable::{AuditQuery, AuditStore as _, SessionRecord, SessionStore as _};

use super::portal::{self, see_other, server_error, Signed};
use super::request::Context;
use crate::pages::console::{
    self, Access, AuditFilter, ClientRow, DashboardView, EventRow, FactorRow, Frame, KeyRow, NewClientForm,
    Notice, ProviderRow, RoleRow, SessionRow, UserDetail, UserRow, K,
};
use crate::pages::portal::Expiry;

/// The role of an operator of the console (as for the admin API's scope).
pub const OPERATOR_ROLE: &str = "tessera:admin";
/// The role of a read-only auditor.
pub const AUDITOR_ROLE: &str = "tessera:auditor";

/// Users per page of the list.
const USERS_PER_PAGE: u32 = 50;
/// Audit events per page.
const EVENTS_PER_PAGE: u32 = 100;
/// How long a flash message waits for the page after a change.
const FLASH_TTL: Duration = Duration::from_secs(60);
/// The dashboard's window: 24 hours, hour by hour.
const DASHBOARD_HOURS: i64 = 24;

/// The console's routes, under [`console::BASE`].
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/callback", get(callback))
        .route(console::LANGUAGE, get(language))
        .route(console::SIGN_OUT, post(sign_out))
        .route(console::SESSION_STATUS, get(session_status))
        .route(console::SESSION_EXTEND, post(session_extend))
        .route("/console/users", get(users))
        .route("/console/users/{id}", get(user))
        .route("/console/sessions", get(sessions))
        .route("/console/users/{id}/{action}", post(user_action))
        .route("/console/users/{id}/sessions/{action}", post(session_action))
        .route("/console/users/{id}/mfa/reset", post(reset_mfa))
        .route("/console/clients", get(clients))
        .route("/console/clients/new", get(new_client).post(create_client))
        .route("/console/clients/{id}", get(client))
        .route("/console/clients/{id}/{action}", post(client_action))
        .route("/console/keys", get(keys))
        .route("/console/keys/rotate", post(rotate))
        .route("/console/audit", get(audit))
        .route("/console/roles", get(roles))
        .route("/console/providers", get(providers))
}

/// A signed-in operator or auditor, and the frame of their pages.
struct Operator {
    signed: Signed,
    access: Access,
    here: String,
    now: i64,
    warn_before_secs: i64,
}

impl Operator {
    fn frame(&self) -> Frame<'_> {
        Frame {
            locale: self.signed.locale,
            email: &self.signed.user.email,
            access: self.access,
            csrf: self.signed.csrf(),
            here: &self.here,
            expiry: Expiry {
                idle_expires_at: self.signed.session.idle_expires_at,
                absolute_expires_at: self.signed.session.absolute_expires_at,
                now: self.now,
                warn_before_secs: self.warn_before_secs,
                status_url: console::SESSION_STATUS,
                extend_url: console::SESSION_EXTEND,
            },
        }
    }

    fn actor(&self) -> String {
        self.signed.actor()
    }
}

/// What the signed-in user may do here, from their roles now: `None` is nothing.
fn access_of(roles: &[String]) -> Option<Access> {
    if roles.iter().any(|r| r == OPERATOR_ROLE) {
        Some(Access::Operator)
    } else if roles.iter().any(|r| r == AUDITOR_ROLE) {
        Some(Access::Auditor)
    } else {
        None
    }
}

/// The operator of a request, or the response that sends the browser to sign in (then
/// back here), or a 403 page for a user without a console role or without a second factor.
async fn operator(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
) -> Result<Operator, Response> {
    let signed = portal::signed_in(state, &CONSOLE_APP, headers, method, uri, true).await?;
    let here = uri
        .path_and_query()
        .map_or_else(|| console::BASE.to_owned(), |pq| pq.as_str().to_owned());
    let with_factor = signed.session.amr.split_ascii_whitespace().any(|m| m == "mfa");
    let (now, warn_before_secs) = (state.clock.now(), portal::warn_before_secs(state));
    match access_of(&signed.user.roles) {
        Some(access) if with_factor => Ok(Operator {
            signed,
            access,
            here,
            now,
            warn_before_secs,
        }),
        _ => {
            let refused = Operator {
                signed,
                access: Access::Auditor,
                here,
                now,
                warn_before_secs,
            };
            tracing::info!(user = %refused.signed.user.id, "console refused: no console role or no second factor");
            Err(console::forbidden_page(&refused.frame()).into_response())
        }
    }
}

/// An operator's form post: signed in, an operator (not an auditor), the CSRF token and
/// this origin; else the refusal. Returns the operator and the form's fields.
async fn operator_post(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(Operator, BTreeMap<String, String>), Response> {
    let operator = operator(state, headers, &Method::POST, uri).await?;
    let Some(form) = portal::page_form(headers, body) else {
        return Err(portal::bad_form(operator.signed.locale));
    };
    if !operator.signed.form_allowed(state, headers, &form) {
        return Err(portal::refused_form(operator.signed.locale));
    }
    if operator.access != Access::Operator {
        return Err(console::forbidden_page(&operator.frame()).into_response());
    }
    Ok((operator, form))
}

/// A signed-in operator or auditor as an extractor: a handler that takes one runs only for
/// them; anyone else gets the sign-in redirect or the 403 page ([`operator`]).
impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        operator(state, &parts.headers, &parts.method, &parts.uri).await
    }
}

/// An operator's form post as an extractor ([`operator_post`]): signed in, an operator,
/// the CSRF token and this origin.
struct OperatorForm {
    operator: Operator,
    form: BTreeMap<String, String>,
}

impl FromRequest<AppState> for OperatorForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (headers, uri) = (request.headers().clone(), request.uri().clone());
        // Read as `Bytes` reads it: the router's body limit applies (a page form is far
        // smaller, and `portal::page_form` refuses one over 16 KiB).
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let (operator, form) = operator_post(state, &headers, &uri, &bytes).await?;
        Ok(OperatorForm { operator, form })
    }
}

// ---------------------------------------------------------------------------------------
// Flash messages: the outcome of a change, shown once by the page it redirects to
// ---------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Flash {
    done: bool,
    message: String,
    /// A client secret just created or rotated (shown once, then gone).
    secret: Option<String>,
}

fn flash_key(signed: &Signed) -> String {
    // One per app session: its CSRF secret is as private as the session itself.
    format!(
        "console:flash:{}",
        tessera_idp::tokens::opaque::sha256_b64(signed.csrf())
    )
}

async fn set_flash(state: &AppState, signed: &Signed, flash: &Flash) {
    if let Err(err) = portal::store::put(state.ephemeral.as_ref(), &flash_key(signed), flash, FLASH_TTL).await
    {
        tracing::warn!(error = %err, "console flash not stored");
    }
}

/// The flash, removed: shown once, even to two loads of the page at once (a secret too).
async fn take_flash(state: &AppState, signed: &Signed) -> Option<Flash> {
    match portal::store::take(state.ephemeral.as_ref(), &flash_key(signed)).await {
        Ok(flash) => flash,
        Err(err) => {
            tracing::warn!(error = %err, "console flash not read");
            None
        }
    }
}

/// `template` (text) with its `{name}` placeholders replaced by `args` (text).
fn fill_plain(template: &str, args: &[(&str, &str)]) -> String {
    args.iter().fold(template.to_owned(), |text, (name, value)| {
        text.replace(&format!("{{{name}}}"), value)
    })
}

fn notice_of(flash: &Option<Flash>) -> Option<Notice> {
    flash.as_ref().map(|f| {
        if f.done {
            Notice::Done(f.message.clone())
        } else {
            Notice::Refused(f.message.clone())
        }
    })
}

/// Records `message` for the next page and sends the browser to `to` (303).
async fn done(state: &AppState, operator: &Operator, to: &str, message: String) -> Response {
    set_flash(
        state,
        &operator.signed,
        &Flash {
            done: true,
            message,
            secret: None,
        },
    )
    .await;
    see_other(to)
}

async fn refused(state: &AppState, operator: &Operator, to: &str, detail: &str) -> Response {
    let message = fill_plain(
        console::t(operator.signed.locale, K::Refused),
        &[("detail", detail)],
    );
    set_flash(
        state,
        &operator.signed,
        &Flash {
            done: false,
            message,
            secret: None,
        },
    )
    .await;
    see_other(to)
}

// ---------------------------------------------------------------------------------------
// Sign-in plumbing
// ---------------------------------------------------------------------------------------

async fn callback(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = parse_params(query.unwrap_or_default().as_bytes()).0;
    portal::callback(&state, &CONSOLE_APP, &context, &headers, &query).await
}

async fn language(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = parse_params(query.unwrap_or_default().as_bytes()).0;
    portal::choose_language(&state, &CONSOLE_APP, &query)
}

async fn session_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
) -> Response {
    portal::session_status(&state, &CONSOLE_APP, &headers, &method, &uri).await
}

async fn session_extend(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    portal::session_extend(&state, &CONSOLE_APP, &headers, &uri, &body).await
}

async fn sign_out(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    // Any signed-in user of the console may sign out, role or not.
    let signed = match portal::signed_in(&state, &CONSOLE_APP, &headers, &Method::POST, &uri, false).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Some(form) = portal::page_form(&headers, &body) else {
        return portal::bad_form(signed.locale);
    };
    if !signed.form_allowed(&state, &headers, &form) {
        return portal::refused_form(signed.locale);
    }
    match portal::sign_out(&state, &CONSOLE_APP, &signed, &context).await {
        Ok(response) => response,
        Err(err) => server_error(signed.locale, &err),
    }
}

// ---------------------------------------------------------------------------------------
// Dashboard
// ---------------------------------------------------------------------------------------

async fn dashboard(State(state): State<AppState>, operator: Operator) -> Response {
    let now = state.clock.now();
    // The 24 whole hours up to the end of the current one.
    let until = (now / 3_600 + 1) * 3_600;
    let since = until - DASHBOARD_HOURS * 3_600;
    let counts = |event: &'static str| state.db.count_audit_events(event, since, until, 3_600);
    let (succeeded, failed, channels) = match tokio::try_join!(
        counts("login.succeeded"),
        counts("login.failed"),
        state.db.count_alive_sessions_by_channel(now)
    ) {
        Ok(all) => all,
        Err(err) => return server_error(operator.signed.locale, &err),
    };
    let view = DashboardView {
        first_hour: since,
        succeeded,
        failed,
        channels,
    };
    console::dashboard_page(&operator.frame(), &view).into_response()
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

fn user_row(user: &UserView) -> UserRow {
    UserRow {
        id: user.id.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        roles: user.roles.clone(),
        disabled: user.disabled,
        created_at: user.created_at,
    }
}

async fn users(State(state): State<AppState>, operator: Operator, RawQuery(query): RawQuery) -> Response {
    let query = parse_params(query.unwrap_or_default().as_bytes()).0;
    let search = query.get("q").map(|q| q.trim().to_owned()).unwrap_or_default();
    let after = query
        .get("cursor")
        .and_then(|c| URL_SAFE_NO_PAD.decode(c.as_bytes()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|id| !id.is_empty() && !id.contains('\0'));
    // The list's e-mail filter takes a whole address; anything else lists everyone.
    let email = (!search.is_empty() && search.len() <= 320).then_some(search.as_str());
    let mut found = match state
        .accounts
        .list_users(email, after.as_deref(), USERS_PER_PAGE + 1)
        .await
    {
        Ok(users) => users,
        Err(AccountError::InvalidEmail) => Vec::new(),
        Err(err) => return server_error(operator.signed.locale, &err),
    };
    let next = if found.len() > USERS_PER_PAGE as usize {
        found.truncate(USERS_PER_PAGE as usize);
        found.last().map(|u| URL_SAFE_NO_PAD.encode(u.id.as_bytes()))
    } else {
        None
    };
    let rows: Vec<UserRow> = found.iter().map(|u| user_row(&UserView::from(u))).collect();
    console::users_page(&operator.frame(), &search, &rows, next.as_deref()).into_response()
}

async fn user(State(state): State<AppState>, operator: Operator, Path(id): Path<String>) -> Response {
    let flash = take_flash(&state, &operator.signed).await;
    user_view(&state, &operator, &id, notice_of(&flash).as_ref()).await
}

async fn user_view(state: &AppState, operator: &Operator, id: &str, notice: Option<&Notice>) -> Response {
    let locale = operator.signed.locale;
    let user = match state.accounts.user(id).await {
        Ok(Some(user)) => user,
        Ok(None) => return console::not_found_page(&operator.frame()).into_response(),
        Err(err) => return server_error(locale, &err),
    };
    let (sessions, factors) = match tokio::try_join!(
        async {
            state
                .tokens
                .sessions_of(&user.id)
                .await
                .map_err(|e| e.to_string())
        },
        async { state.mfa.factors(&user.id).await.map_err(|e| e.to_string()) },
    ) {
        Ok(both) => both,
        Err(err) => return server_error(locale, &err),
    };
    let view = UserView::from(&user);
    let detail = UserDetail {
        password_algorithm: view.password_algorithm.clone(),
        user: user_row(&view),
        sessions: sessions.iter().map(session_row).collect(),
        factors: factors
            .iter()
            .map(|f| FactorRow {
                kind: f.kind.clone(),
                label: Some(f.name.clone()).filter(|n| !n.is_empty()),
                created_at: f.created_at,
            })
            .collect(),
    };
    console::user_page(&operator.frame(), &detail, notice).into_response()
}

fn user_path(id: &str) -> String {
    format!("{}/users/{}", console::BASE, console::percent(id))
}

/// `POST /console/users/{id}/disable|enable|delete`
async fn user_action(
    State(state): State<AppState>,
    Context(context): Context,
    Path((id, action)): Path<(String, String)>,
    OperatorForm { operator, form }: OperatorForm,
) -> Response {
    let locale = operator.signed.locale;
    let actor = operator.actor();
    let back = user_path(&id);
    let outcome = match action.as_str() {
        "disable" => {
            if id == operator.signed.user.id {
                return refused(&state, &operator, &back, "you cannot disable yourself").await;
            }
            state
                .accounts
                .disable_user(&id, &actor, &context)
                .await
                .map(|_| console::t(locale, K::UserDisabled).to_owned())
        }
        "enable" => state
            .accounts
            .enable_user(&id, &actor, &context)
            .await
            .map(|()| console::t(locale, K::UserEnabled).to_owned()),
        "delete" => {
            if id == operator.signed.user.id {
                return refused(&state, &operator, &back, "you cannot delete yourself").await;
            }
            let user = match state.accounts.user(&id).await {
                Ok(Some(user)) => user,
                Ok(None) => return console::not_found_page(&operator.frame()).into_response(),
                Err(err) => return server_error(locale, &err),
            };
            // The operator types the address: a slip of the mouse deletes nothing.
            let typed = form.get("confirm").map(|c| c.trim()).unwrap_or_default();
            if !typed.eq_ignore_ascii_case(&user.email) {
                return refused(&state, &operator, &back, "the address typed is not the user's").await;
            }
            return match state.accounts.delete_user(&id, &actor, &context).await {
                Ok(()) => {
                    done(
                        &state,
                        &operator,
                        &format!("{}/users", console::BASE),
                        console::t(locale, K::UserDeleted).to_owned(),
                    )
                    .await
                }
                Err(err) => account_refused(&state, &operator, &back, err).await,
            };
        }
        _ => return console::not_found_page(&operator.frame()).into_response(),
    };
    match outcome {
        Ok(message) => done(&state, &operator, &back, message).await,
        Err(err) => account_refused(&state, &operator, &back, err).await,
    }
}

async fn account_refused(state: &AppState, operator: &Operator, back: &str, err: AccountError) -> Response {
    match err {
        AccountError::NoSuchUser => console::not_found_page(&operator.frame()).into_response(),
        AccountError::Store(err) => server_error(operator.signed.locale, &err),
        other => refused(state, operator, back, &other.to_string()).await,
    }
}

/// Sessions per page of the all-sessions list.
const SESSIONS_PER_PAGE: u32 = 100;

fn session_row(s: &SessionRecord) -> SessionRow {
    SessionRow {
        id: s.id.clone(),
        subject: s.subject.clone(),
        user_agent: s.user_agent.clone(),
        channel: s.channel.clone(),
        ip: s.ip.clone(),
        client_id: s.client_id.clone(),
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
    }
}

/// A page cursor of the all-sessions list: the last session's idle expiry and id.
fn session_cursor(session: &SessionRecord) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", session.idle_expires_at, session.id))
}

fn parse_session_cursor(text: &str) -> Option<(i64, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (idle, id) = text.split_once(':')?;
    let valid_id = !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control);
    Some((idle.parse().ok()?, id.to_owned())).filter(|_| valid_id)
}

/// `GET /console/sessions?cursor=`: every alive session, most recently active first.
async fn sessions(State(state): State<AppState>, operator: Operator, RawQuery(query): RawQuery) -> Response {
    let locale = operator.signed.locale;
    let query = parse_params(query.unwrap_or_default().as_bytes()).0;
    let after = match query.get("cursor") {
        None => None,
        Some(text) => match parse_session_cursor(text) {
            Some(cursor) => Some(cursor),
            None => {
                let notice = Notice::Refused(fill_plain(
                    console::t(locale, K::Refused),
                    &[("detail", "the page link is broken")],
                ));
                let mut page = console::sessions_page(&operator.frame(), &[], None, Some(&notice));
                page.status = axum::http::StatusCode::BAD_REQUEST;
                return page.into_response();
            }
        },
    };
    let flash = take_flash(&state, &operator.signed).await;
    let mut found = match state
        .db
        .alive_sessions_page(
            state.clock.now(),
            after.as_ref().map(|(idle, id)| (*idle, id.as_str())),
            SESSIONS_PER_PAGE + 1,
        )
        .await
    {
        Ok(found) => found,
        Err(err) => return server_error(locale, &err),
    };
    let next = if found.len() > SESSIONS_PER_PAGE as usize {
        found.truncate(SESSIONS_PER_PAGE as usize);
        found.last().map(session_cursor)
    } else {
        None
    };
    let rows: Vec<SessionRow> = found.iter().map(session_row).collect();
    console::sessions_page(
        &operator.frame(),
        &rows,
        next.as_deref(),
        notice_of(&flash).as_ref(),
    )
    .into_response()
}

/// `POST /console/users/{id}/sessions/end` (field `session`) and `…/sessions/end-all`.
async fn session_action(
    State(state): State<AppState>,
    Context(context): Context,
    Path((id, action)): Path<(String, String)>,
    OperatorForm { operator, form }: OperatorForm,
) -> Response {
    let locale = operator.signed.locale;
    let actor = operator.actor();
    // The all-sessions page sends its ends back to itself.
    let back = if form.get("return_to").map(String::as_str) == Some("sessions") {
        format!("{}/sessions", console::BASE)
    } else {
        user_path(&id)
    };
    let ended = match action.as_str() {
        "end" => {
            let Some(sid) = form.get("session").filter(|s| !s.is_empty() && s.len() <= 128) else {
                return refused(&state, &operator, &back, "no session named").await;
            };
            // Only a session of this user: another user's id changes nothing.
            let theirs = match state.tokens.sessions_of(&id).await {
                Ok(sessions) => sessions.iter().any(|s| &s.id == sid),
                Err(err) => return server_error(locale, &err),
            };
            if !theirs {
                return refused(&state, &operator, &back, "no such session of this user").await;
            }
            state
                .tokens
                .end_session(sid, "revoked_by_operator", &actor, &context)
                .await
                .map(usize::from)
        }
        "end-all" => {
            state
                .tokens
                .end_sessions_of(&id, "revoked_by_operator", &actor, &context)
                .await
        }
        _ => return console::not_found_page(&operator.frame()).into_response(),
    };
    match ended {
        Ok(n) => {
            let message = fill_plain(console::t(locale, K::SessionsEnded), &[("n", &n.to_string())]);
            done(&state, &operator, &back, message).await
        }
        Err(err) => server_error(locale, &err),
    }
}

/// `POST /console/users/{id}/mfa/reset`
async fn reset_mfa(
    State(state): State<AppState>,
    Context(context): Context,
    Path(id): Path<String>,
    OperatorForm { operator, .. }: OperatorForm,
) -> Response {
    let locale = operator.signed.locale;
    let back = user_path(&id);
    match state.accounts.user(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return console::not_found_page(&operator.frame()).into_response(),
        Err(err) => return server_error(locale, &err),
    }
    match state.mfa.reset(&id, &operator.actor(), &context).await {
        Ok(_) => {
            done(
                &state,
                &operator,
                &back,
                console::t(locale, K::FactorsReset).to_owned(),
            )
            .await
        }
        Err(err) => server_error(locale, &err),
    }
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

fn client_row(view: &ClientView) -> ClientRow {
    ClientRow {
        client_id: view.client_id.clone(),
        name: view.client_name.clone(),
        public: view.public,
        channel: view.channel.clone(),
        grant_types: view.grant_types.clone(),
        scope: view.scope.clone(),
        redirect_uris: view.redirect_uris.clone(),
        first_party: view.first_party,
        created_at: view.created_at,
    }
}

fn registry(state: &AppState, operator: &Operator, context: RequestContext) -> ClientRegistry {
    ClientRegistry::new(state).acting_as(operator.actor(), context)
}

fn client_path(id: &str) -> String {
    format!("{}/clients/{}", console::BASE, console::percent(id))
}

async fn clients(State(state): State<AppState>, operator: Operator) -> Response {
    let flash = take_flash(&state, &operator.signed).await;
    match ClientRegistry::new(&state).list().await {
        Ok(records) => {
            let rows: Vec<ClientRow> = records.iter().map(|r| client_row(&ClientView::from(r))).collect();
            console::clients_page(&operator.frame(), &rows, notice_of(&flash).as_ref()).into_response()
        }
        Err(err) => server_error(operator.signed.locale, &err),
    }
}

async fn new_client(operator: Operator) -> Response {
    if operator.access != Access::Operator {
        return console::forbidden_page(&operator.frame()).into_response();
    }
    console::new_client_page(&operator.frame(), &NewClientForm::default(), None).into_response()
}

/// The redirect URIs of a textarea: one per line, blank lines dropped.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn create_client(
    State(state): State<AppState>,
    Context(context): Context,
    OperatorForm { operator, form }: OperatorForm,
) -> Response {
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let typed = NewClientForm {
        client_id: field("client_id"),
        name: field("name"),
        public: field("type") == "public",
        redirect_uris: form.get("redirect_uris").cloned().unwrap_or_default(),
        scope: field("scope"),
    };
    let spec = ClientSpec {
        client_id: Some(typed.client_id.clone()).filter(|id| !id.is_empty()),
        client_name: Some(typed.name.clone()).filter(|n| !n.is_empty()),
        redirect_uris: lines(&typed.redirect_uris),
        scope: Some(typed.scope.clone()).filter(|s| !s.is_empty()),
        public: typed.public,
        ..ClientSpec::default()
    };
    match registry(&state, &operator, context).create(spec).await {
        Ok((record, secret)) => {
            set_flash(
                &state,
                &operator.signed,
                &Flash {
                    done: true,
                    message: console::t(operator.signed.locale, K::ClientSaved).to_owned(),
                    secret,
                },
            )
            .await;
            see_other(&client_path(&record.client_id))
        }
        Err(RegistryError::Store(err)) => server_error(operator.signed.locale, &err),
        Err(err) => {
            let notice = Notice::Refused(fill_plain(
                console::t(operator.signed.locale, K::Refused),
                &[("detail", &err.to_string())],
            ));
            console::new_client_page(&operator.frame(), &typed, Some(&notice)).into_response()
        }
    }
}

async fn client(State(state): State<AppState>, operator: Operator, Path(id): Path<String>) -> Response {
    let flash = take_flash(&state, &operator.signed).await;
    match ClientRegistry::new(&state).get(&id).await {
        Ok(record) => {
            let secret = flash.as_ref().and_then(|f| f.secret.as_deref());
            console::client_page(
                &operator.frame(),
                &client_row(&ClientView::from(&record)),
                secret,
                notice_of(&flash).as_ref(),
            )
            .into_response()
        }
        Err(RegistryError::NotFound) => console::not_found_page(&operator.frame()).into_response(),
        Err(err) => server_error(operator.signed.locale, &err),
    }
}

/// `POST /console/clients/{id}/edit|rotate-secret`
async fn client_action(
    State(state): State<AppState>,
    Context(context): Context,
    Path((id, action)): Path<(String, String)>,
    OperatorForm { operator, form }: OperatorForm,
) -> Response {
    let locale = operator.signed.locale;
    let back = client_path(&id);
    let registry = registry(&state, &operator, context);
    // The built-in clients (the first-party API, the hosted apps) are not edited here.
    match registry.get(&id).await {
        Ok(record) if record.first_party => {
            return refused(
                &state,
                &operator,
                &back,
                "a first-party client is managed by Tessera",
            )
            .await
        }
        Ok(_) => {}
        Err(RegistryError::NotFound) => return console::not_found_page(&operator.frame()).into_response(),
        Err(err) => return server_error(locale, &err),
    }
    let outcome = match action.as_str() {
        "edit" => {
            let patch = ClientPatch {
                client_name: form.get("name").map(|n| n.trim().to_owned()),
                redirect_uris: form.get("redirect_uris").map(|text| lines(text)),
                ..ClientPatch::default()
            };
            registry.update(&id, patch).await.map(|_| None)
        }
        "rotate-secret" => registry.rotate_secret(&id).await.map(Some),
        _ => return console::not_found_page(&operator.frame()).into_response(),
    };
    match outcome {
        Ok(secret) => {
            set_flash(
                &state,
                &operator.signed,
                &Flash {
                    done: true,
                    message: console::t(locale, K::ClientSaved).to_owned(),
                    secret,
                },
            )
            .await;
            see_other(&back)
        }
        Err(RegistryError::Store(err)) => server_error(locale, &err),
        Err(err) => refused(&state, &operator, &back, &err.to_string()).await,
    }
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

async fn keys(State(state): State<AppState>, operator: Operator) -> Response {
    let flash = take_flash(&state, &operator.signed).await;
    match list_keys(&state.db, state.clock.now()).await {
        Ok(keys) => {
            let rows: Vec<KeyRow> = keys
                .into_iter()
                .map(|k| KeyRow {
                    kid: k.kid,
                    alg: k.alg,
                    status: k.status,
                    created_at: k.created_at,
                    activates_at: k.activates_at,
                    retires_at: k.retires_at,
                    expires_at: k.expires_at,
                })
                .collect();
            console::keys_page(&operator.frame(), &rows, notice_of(&flash).as_ref()).into_response()
        }
        Err(err) => server_error(operator.signed.locale, &err),
    }
}

async fn rotate(
    State(state): State<AppState>,
    Context(context): Context,
    OperatorForm { operator, .. }: OperatorForm,
) -> Response {
    let locale = operator.signed.locale;
    match rotate_keys(
        &state.keys,
        state.ephemeral.as_ref(),
        &state.audit,
        &ALGORITHMS,
        &operator.actor(),
        &context,
    )
    .await
    {
        Ok(_) => {
            done(
                &state,
                &operator,
                &format!("{}/keys", console::BASE),
                console::t(locale, K::KeysRotated).to_owned(),
            )
            .await
        }
        Err(err) => server_error(locale, &err),
    }
}

// ---------------------------------------------------------------------------------------
// Audit, roles, providers
// ---------------------------------------------------------------------------------------

/// A `datetime-local` value (`2026-12-06T09:00`, seconds optional) read as UTC.
fn utc_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let mut time_parts = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (time_parts.next()??, time_parts.next()??);
    let second = match time_parts.next() {
        Some(s) => s?,
        None => 0,
    };
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second);
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The audit page's query as a store query, or what is wrong with it (text).
fn audit_query(query: &BTreeMap<String, String>) -> Result<(AuditFilter, AuditQuery), String> {
    let get = |name: &str| query.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let filter = AuditFilter {
        user: get("user"),
        event: get("type"),
        since: get("since"),
        until: get("until"),
    };
    let mut store_query = AuditQuery {
        limit: EVENTS_PER_PAGE + 1,
        ..AuditQuery::default()
    };
    if !filter.user.is_empty() {
        if filter.user.len() > 255 || filter.user.chars().any(char::is_control) {
            return Err("the subject is not a user id".to_owned());
        }
        store_query.subject = Some(filter.user.clone());
    }
    if !filter.event.is_empty() {
        let valid = filter.event.len() <= 64
            && filter
                .event
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if !valid {
            return Err("the event must be a name such as login.failed".to_owned());
        }
        store_query.event = Some(filter.event.clone());
    }
    for (text, slot) in [
        (&filter.since, &mut store_query.since),
        (&filter.until, &mut store_query.until),
    ] {
        if !text.is_empty() {
            *slot = Some(utc_seconds(text).ok_or("a time must be a date and time such as 2026-12-06T09:00")?);
        }
    }
    if let (Some(since), Some(until)) = (store_query.since, store_query.until) {
        if since >= until {
            return Err("the end must be after the start".to_owned());
        }
    }
    if let Some(cursor) = query.get("cursor") {
        let id = cursor
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or("the page link is broken")?;
        store_query.before_id = Some(id);
    }
    Ok((filter, store_query))
}

async fn audit(State(state): State<AppState>, operator: Operator, RawQuery(query): RawQuery) -> Response {
    let locale = operator.signed.locale;
    let query = parse_params(query.unwrap_or_default().as_bytes()).0;
    let (filter, store_query) = match audit_query(&query) {
        Ok(both) => both,
        Err(why) => {
            let typed = AuditFilter {
                user: query.get("user").cloned().unwrap_or_default(),
                event: query.get("type").cloned().unwrap_or_default(),
                since: query.get("since").cloned().unwrap_or_default(),
                until: query.get("until").cloned().unwrap_or_default(),
            };
            let notice = Notice::Refused(fill_plain(console::t(locale, K::Refused), &[("detail", &why)]));
            return console::audit_page(&operator.frame(), &typed, &[], None, Some(&notice)).into_response();
        }
    };
    let mut records = match state.db.audit_records(&store_query).await {
        Ok(records) => records,
        Err(err) => return server_error(locale, &err),
    };
    let next = if records.len() > EVENTS_PER_PAGE as usize {
        records.truncate(EVENTS_PER_PAGE as usize);
        records.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let rows: Vec<EventRow> = records
        .into_iter()
        .map(|r| EventRow {
            at: r.at,
            event: r.event,
            outcome: r.outcome,
            actor: r.actor,
            subject: r.subject,
            client_id: r.client_id,
            ip: r.ip,
            detail: r.detail,
        })
        .collect();
    console::audit_page(&operator.frame(), &filter, &rows, next.as_deref(), None).into_response()
}

async fn roles(State(state): State<AppState>, operator: Operator) -> Response {
    match state.authz.roles().await {
        Ok(roles) => {
            let rows: Vec<RoleRow> = roles
                .into_iter()
                .map(|r| RoleRow {
                    name: r.name,
                    parents: r.parents,
                    permissions: r.effective_permissions,
                })
                .collect();
            console::roles_page(&operator.frame(), &rows).into_response()
        }
        Err(err) => server_error(operator.signed.locale, &err),
    }
}

async fn providers(State(state): State<AppState>, operator: Operator) -> Response {
    let rows: Vec<ProviderRow> = state
        .federation
        .providers()
        .iter()
        .map(|p| ProviderRow {
            id: p.id.clone(),
            name: p.display_name.clone(),
            issuer: p
                .issuer
                .clone()
                .or_else(|| p.authorization_endpoint.clone())
                .unwrap_or_default(),
        })
        .collect();
    console::providers_page(&operator.frame(), &rows).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_console_roles_get_in() {
        let roles = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(access_of(&roles(&["tessera:admin"])), Some(Access::Operator));
        assert_eq!(
            access_of(&roles(&["tessera:auditor", "tessera:admin"])),
            Some(Access::Operator)
        );
        assert_eq!(access_of(&roles(&["tessera:auditor"])), Some(Access::Auditor));
        assert_eq!(
            access_of(&roles(&["admin", "tessera:admins", "TESSERA:ADMIN"])),
            None
        );
        assert_eq!(access_of(&[]), None);
    }

    #[test]
    fn times_are_read_as_utc_and_nonsense_is_refused() {
        assert_eq!(utc_seconds("1970-01-01T00:00"), Some(0));
        assert_eq!(utc_seconds("2026-12-06T09:30"), Some(1_796_549_400));
        assert_eq!(utc_seconds("2024-02-29T23:59:59"), Some(1_709_251_199));
        for bad in [
            "",
            "2026-12-06",
            "2026-13-01T00:00",
            "2025-02-29T00:00",
            "2026-12-06T24:00",
            "x-1-1T1:1",
            "2026-12-06T09:30:60",
        ] {
            assert_eq!(utc_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_audit_filter_is_checked_before_the_store_sees_it() {
        let query = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        let (_, q) = audit_query(&query(&[("type", "login.failed"), ("since", "2026-12-06T09:00")])).unwrap();
        assert_eq!(q.event.as_deref(), Some("login.failed"));
        assert_eq!(q.since, Some(1_796_547_600));
        assert_eq!(q.limit, EVENTS_PER_PAGE + 1);
        for bad in [
            query(&[("type", "LOGIN'; DROP")]),
            query(&[("user", "a\0b")]),
            query(&[("since", "yesterday")]),
            query(&[("since", "2026-12-06T10:00"), ("until", "2026-12-06T09:00")]),
            query(&[("cursor", "-5")]),
        ] {
            assert!(audit_query(&bad).is_err(), "{bad:?}");
        }
    }
}
