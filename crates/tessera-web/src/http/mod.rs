//! The HTTP surface: routes, and the middleware every request passes through (request id,
//! trace span, panic guard, security headers, timeout, body limit, and — with
//! `metrics.enabled` — request metrics by route template).

mod account;
mod accounts;
mod admin;
mod admin_keys;
mod admin_roles;
mod admin_users;
mod alerts;
mod api_keys;
mod audit;
mod console;
mod cors;
mod device;
mod dpop;
mod federation;
pub(crate) mod health;
mod hosted_mfa;
mod hosted_passkeys;
mod idempotency;
mod mfa;
mod oauth;
mod oidc;
pub mod openapi;
mod paging;
mod par;
mod passkeys;
mod portal;
mod profile;
mod request;
mod sessions;
mod wellknown;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Router;
use tessera_proto::paths;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use tessera_idp::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The node's whole HTTP application.
pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings can carry secrets (tokens, codes).
                    tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().caused_by("handler panicked").into_response()))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        ;
    // Inside: limits whose bare answers `problem_for_bare_errors` turns into problem JSON.
    let limits = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(http.request_timeout_secs),
        ))
        .layer(RequestBodyLimitLayer::new(http.max_body_bytes))
        .layer(DefaultBodyLimit::max(http.max_body_bytes));

    // Read by anyone, from anywhere.
    let public = Router::new()
        .route(paths::DISCOVERY, get(wellknown::discovery).options(preflight))
        .route(paths::JWKS, get(wellknown::jwks).options(preflight))
        .layer(cors::public());
    // Called by browser apps from their registered origins.
    let client_facing = Router::new()
        // OPTIONS routes exist so preflights reach the CORS layer, which answers them (the
        // router's own 405 would come first otherwise).
        .route(paths::TOKEN, post(oauth::token).options(preflight))
        .route(
            paths::USERINFO,
            get(oidc::userinfo).post(oidc::userinfo).options(preflight),
        )
        .route(paths::REVOKE, post(oauth::revoke).options(preflight))
        .route(paths::INTROSPECT, post(oauth::introspect).options(preflight))
        .route(paths::PAR, post(par::push).options(preflight))
        .route(
            paths::DEVICE_AUTHORIZATION,
            post(oauth::device_authorization).options(preflight),
        )
        // The embeddable session-expiry warning reads and extends from a client's pages.
        .route(paths::SESSION_STATUS, get(sessions::status).options(preflight))
        .route(paths::SESSION_EXTEND, post(sessions::extend).options(preflight))
        .layer(cors::registered(state.clients.clone()));
    let router = Router::new()
        .merge(public)
        .merge(client_facing)
        .route(paths::HEALTHZ, get(health::healthz))
        .route(paths::READYZ, get(health::readyz))
        .route(paths::AUTHORIZE, get(oidc::authorize).post(oidc::authorize))
        .route(paths::AUTHORIZE_LOGIN, post(oidc::login))
        .route(paths::AUTHORIZE_CONSENT, post(oidc::consent))
        .route(paths::DEVICE, get(device::show).post(device::answer))
        .route(paths::AUTHORIZE_MFA, post(hosted_mfa::mfa))
        .route(paths::AUTHORIZE_PASSKEY_OPTIONS, post(hosted_passkeys::options))
        .route(paths::AUTHORIZE_PASSKEY, post(hosted_passkeys::sign_in))
        .route(paths::FEDERATION_START, get(federation::start))
        .route(paths::FEDERATION_CALLBACK, get(federation::callback))
        .route(paths::FEDERATION_LINK, post(federation::confirm_link))
        .route(paths::ACCOUNT_IDENTITIES, get(federation::identities))
        .route(paths::ACCOUNT_IDENTITY, delete(federation::unlink))
        .route(paths::END_SESSION, get(oidc::end_session).post(oidc::end_session))
        .route(paths::LOGOUT_CONFIRM, post(oidc::confirm_logout))
        .route(paths::REVOCATIONS, get(oauth::revocations))
        .route(paths::API_KEY_CHECK, post(api_keys::check))
        .route(
            paths::ACCOUNT_API_KEYS,
            get(api_keys::own_list).post(api_keys::own_create),
        )
        .route(paths::ACCOUNT_API_KEY, delete(api_keys::own_revoke))
        .route(paths::SESSIONS, get(sessions::list))
        .route(paths::SESSION, delete(sessions::end_one))
        .route(paths::LOGOUT, post(sessions::logout))
        .route(paths::SIGNUP, post(accounts::signup))
        .route(paths::VERIFY_EMAIL, get(accounts::verify_email))
        .route(paths::LOGIN, post(accounts::login))
        .route(paths::REISSUE, post(accounts::reissue))
        .route(paths::ME, get(accounts::me))
        .route(paths::PROFILE, get(profile::show).patch(profile::update))
        .route(paths::MEMBER_ME, get(accounts::member_me))
        .route(
            paths::PASSWORD_FORGOT,
            get(accounts::forgot_link).post(accounts::forgot_password),
        )
        .route(
            paths::PASSWORD_RESET,
            get(accounts::reset_link).post(accounts::reset_password),
        )
        .route(paths::PASSWORD_CHANGE, post(accounts::change_password))
        .route(paths::EMAIL_CHANGE, post(accounts::change_email))
        .route(paths::EMAIL_CHANGE_CONFIRM, post(accounts::confirm_email_change))
        .route(paths::END_SIGN_IN, get(alerts::confirm).post(alerts::end))
        .route(paths::MFA_VERIFY, post(mfa::verify))
        .route(paths::MFA, get(mfa::list))
        .route(paths::MFA_TOTP, post(mfa::enrol_totp))
        .route(paths::MFA_TOTP_CONFIRM, post(mfa::confirm_totp))
        .route(paths::MFA_RECOVERY_CODES, post(mfa::regenerate))
        .route(paths::MFA_CHALLENGE, post(mfa::challenge))
        .route(paths::MFA_EMAIL, post(mfa::enrol_email))
        .route(paths::MFA_EMAIL_CONFIRM, post(mfa::confirm_email))
        .route(paths::MFA_SMS, post(mfa::enrol_sms))
        .route(paths::MFA_SMS_CONFIRM, post(mfa::confirm_sms))
        .route(paths::MFA_ENROL_TOTP, post(mfa::enrol_totp_for_sign_in))
        .route(paths::MFA_WEBAUTHN, post(passkeys::register))
        .route(paths::MFA_WEBAUTHN_CONFIRM, post(passkeys::confirm))
        .route(paths::PASSKEY_OPTIONS, post(passkeys::options))
        .route(paths::PASSKEY_LOGIN, post(passkeys::login))
        .route(paths::MFA_FACTOR, delete(mfa::remove).patch(mfa::rename))
        .route(
            crate::pages::portal::PORTAL_STYLESHEET_PATH,
            get(crate::pages::portal::stylesheet),
        )
        .route(
            crate::pages::portal::EXPIRY_SCRIPT_PATH,
            get(crate::pages::portal::expiry_js),
        )
        .route(crate::pages::STYLESHEET_PATH, get(crate::pages::stylesheet))
        .route(crate::pages::PASSKEY_SCRIPT_PATH, get(crate::pages::passkey_js));
    let router = router.merge(account::routes()).merge(console::routes());
    let router = admin_routes()
        .into_iter()
        .fold(router, |router, route| router.route(route.path, route.handler));
    let router = if state.config.metrics.enabled {
        router.route(paths::METRICS, get(health::metrics))
    } else {
        router
    };
    // Validated at start; an entry that does not parse cannot get here.
    let trusted: std::sync::Arc<[tessera_proto::net::Cidr]> = http
        .trusted_proxies
        .iter()
        .filter_map(|entry| tessera_proto::net::Cidr::parse(entry).ok())
        .collect();
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            trusted,
            request::resolve_client_ip,
        ))
        .layer(limits)
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(middleware);
    // Outermost, so it sees the status every other layer settled on; after routing (a
    // `Router::layer`), so the matched route template is known.
    let router = if state.config.metrics.enabled {
        router.layer(axum::middleware::from_fn(crate::metrics::track_requests))
    } else {
        router
    };
    router.with_state(state)
}

/// An HTTP method of the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

// Read by the test that holds the OpenAPI document to these routes.
#[cfg_attr(not(test), allow(dead_code))]
impl Verb {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }
}

/// One route of the admin API.
pub(crate) struct AdminRoute {
    pub(crate) path: &'static str,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) verb: Verb,
    handler: MethodRouter<AppState>,
}

fn at<H, T>(path: &'static str, verb: Verb, handler: H) -> AdminRoute
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = match verb {
        Verb::Get => get(handler),
        Verb::Post => post(handler),
        Verb::Patch => patch(handler),
        Verb::Delete => delete(handler),
    };
    AdminRoute { path, verb, handler }
}

/// Every route under `/admin`: the router serves exactly these, and a test holds the OpenAPI
/// document (`openapi.rs`) to exactly these.
pub(crate) fn admin_routes() -> Vec<AdminRoute> {
    use Verb::{Delete, Get, Patch, Post};
    vec![
        at(paths::ADMIN_OPENAPI, Get, openapi::document),
        at(paths::ADMIN_CLIENTS, Get, admin::list),
        at(paths::ADMIN_CLIENTS, Post, admin::create),
        at(paths::ADMIN_CLIENT, Get, admin::show),
        at(paths::ADMIN_CLIENT, Patch, admin::update),
        at(paths::ADMIN_CLIENT, Delete, admin::remove),
        at(paths::ADMIN_CLIENT_SECRET, Post, admin::rotate_secret),
        at(paths::ADMIN_AUDIT, Get, audit::list),
        at(paths::ADMIN_USERS, Get, admin_users::list),
        at(paths::ADMIN_USERS, Post, admin_users::create),
        at(paths::ADMIN_USER, Get, admin_users::show),
        at(paths::ADMIN_USER, Delete, admin_users::remove),
        at(paths::ADMIN_USER_DISABLE, Post, admin_users::disable),
        at(paths::ADMIN_USER_ENABLE, Post, admin_users::enable),
        at(paths::ADMIN_USER_SESSIONS, Get, admin_users::sessions),
        at(paths::ADMIN_USER_SESSIONS, Delete, admin_users::end_sessions),
        at(paths::ADMIN_USER_PROFILE, Get, admin_users::profile),
        at(paths::ADMIN_USER_PROFILE, Patch, admin_users::update_profile),
        at(paths::ADMIN_USER_MFA, Get, admin_users::factors),
        at(paths::ADMIN_USER_MFA, Delete, admin_users::reset_factors),
        at(paths::ADMIN_SESSION, Delete, admin_users::end_session),
        at(paths::ADMIN_USER_ROLES, Post, admin_roles::set_user_roles),
        at(paths::ADMIN_ROLES, Get, admin_roles::list),
        at(paths::ADMIN_ROLES, Post, admin_roles::create),
        at(paths::ADMIN_ROLE, Get, admin_roles::show),
        at(paths::ADMIN_ROLE, Patch, admin_roles::update),
        at(paths::ADMIN_ROLE, Delete, admin_roles::remove),
        at(paths::ADMIN_SOD, Get, admin_roles::list_sod),
        at(paths::ADMIN_SOD, Post, admin_roles::create_sod),
        at(paths::ADMIN_SOD_RULE, Delete, admin_roles::remove_sod),
        at(paths::ADMIN_AUTHZ_CHECK, Post, admin_roles::check),
        at(paths::ADMIN_API_KEYS, Get, api_keys::admin_list),
        at(paths::ADMIN_API_KEYS, Post, api_keys::admin_create),
        at(paths::ADMIN_API_KEY, Get, api_keys::admin_show),
        at(paths::ADMIN_API_KEY, Delete, api_keys::admin_revoke),
        at(paths::ADMIN_KEYS, Get, admin_keys::list),
        at(paths::ADMIN_KEYS_ROTATE, Post, admin_keys::rotate),
    ]
}

/// The body limit and the timeout answer in plain text or with no body; clients of every
/// endpoint get problem JSON instead. After a refused oversized body the connection closes
/// (the rest of the body was not read), and the response says so.
async fn problem_for_bare_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json") || v.starts_with("text/html"));
    // JSON and hosted pages already explain themselves.
    if is_json {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            let mut response = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload Too Large",
            )
            .detail("the request body is larger than this server accepts")
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        StatusCode::SERVICE_UNAVAILABLE => ApiError::unavailable()
            .detail("the request took too long")
            .into_response(),
        _ => response,
    }
}

/// An OPTIONS request the CORS layer did not answer (not a preflight, or an origin that is
/// not allowed): nothing to say.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn not_found() -> Response {
    ApiError::not_found().detail("no such endpoint").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method Not Allowed",
    )
    .into_response()
}

/// Request ids: 64 random bits in hex, unless a trusted proxy already set one.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        HeaderValue::from_str(&text).ok().map(RequestId::new)
    }
}
