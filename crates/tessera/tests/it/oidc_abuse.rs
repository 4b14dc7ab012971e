//! The authorization code flow under attack: redirect URIs that are almost the registered
//! one, open redirects through every redirect parameter, hostile `state`, every invalid
//! authorization request, `prompt`/`max_age`, codes presented wrongly, late, twice or by
//! the wrong client, CSRF on the hosted forms, brute force through the login page, logout
//! without proof, back-channel logout, userinfo, CORS, and whether discovery tells the
//! truth in both directions.
//!
//! Every refusal is checked for what it must *not* do as well: no `Location` header where
//! only a page may answer, no code issued, no session or token created, no sign-in ended,
//! no audit trail of anything having happened. Addresses and client IP addresses are fresh
//! per test run: with Redis (shared by every test and every run) login throttle counters
//! would otherwise carry over.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use reqwest::Method;
use serde_json::{json, Value};
use tessera_idp::audit::RequestContext;
use tessera_idp::clock::Clock;
use tessera_store::durable::{
    AuditQuery, AuditStore, ClientRecord, ClusterStore, OidcStore, OutboxRecord, SessionStore,
};
use tessera_testkit::{
    backend_tests, loopback_ip, pkce_pair, random_u64, spawn, Backend, Page, TestClient, TestNode,
};

backend_tests!(
    unregistered_redirect_uris_get_an_error_page_never_a_redirect,
    unknown_or_missing_clients_get_an_error_page,
    post_logout_redirects_go_only_to_the_hinted_clients_registered_uris,
    hostile_state_is_url_encoded_in_redirects_and_escaped_in_pages,
    invalid_requests_after_the_redirect_uri_is_known_go_back_to_the_client,
    prompt_none_answers_login_required_and_consent_required,
    prompt_login_and_max_age_force_a_fresh_login_with_a_new_auth_time,
    ui_locales_chooses_the_page_language,
    exchange_needs_the_exact_redirect_uri_and_the_matching_verifier,
    a_verifier_for_a_code_without_challenge_is_refused,
    a_code_presented_by_another_client_is_refused_and_burned,
    codes_expire_after_sixty_seconds,
    a_replayed_code_revokes_what_the_first_exchange_issued,
    concurrent_redemptions_of_one_code_issue_tokens_once,
    codes_die_with_the_sign_in_session_and_with_the_user,
    garbage_codes_and_unauthenticated_clients_are_refused,
    hosted_forms_refuse_posts_without_a_matching_csrf_cookie,
    hosted_login_shares_the_brute_force_throttle_with_the_json_api,
    the_login_page_never_echoes_the_password,
    logout_without_a_matching_hint_asks_first,
    logout_refuses_invalid_id_token_hints,
    backchannel_logout_delivers_a_verifiable_logout_token,
    backchannel_logout_retries_a_failing_endpoint_three_times,
    backchannel_logout_outbox_survives_the_node_that_queued_it,
    userinfo_wants_a_live_user_token_with_openid,
    cors_allows_only_registered_origins_and_never_credentials,
    every_discovered_endpoint_answers,
    advertised_grants_and_client_authentication_work_and_nothing_else,
    advertised_authorization_values_work_and_nothing_else,
    disabling_a_user_ends_their_sign_in_at_the_provider,
    cancelling_logout_does_not_claim_the_user_signed_out,
    cors_preflight_from_a_registered_origin_is_answered,
    concurrent_replays_revoke_the_winners_tokens,
    a_password_change_ends_other_browsers_sign_in_at_the_provider,
    a_burned_code_that_issued_nothing_revokes_nothing,
);

// --- constants -----------------------------------------------------------------------------

const REDIRECT: &str = "https://shop.example/cb";
const PARTNER_REDIRECT: &str = "https://partner.example/cb";
const PASSWORD: &str = "correct horse battery staple 42";
const WRONG: &str = "not the password at all 99";

const AUTHORIZE: &str = "/oauth2/authorize";
const LOGIN_FORM: &str = "/oauth2/authorize/login";
const CONSENT_FORM: &str = "/oauth2/authorize/consent";
const END_SESSION: &str = "/oauth2/logout";
const LOGOUT_CONFIRM: &str = "/oauth2/logout/confirm";
const TOKEN: &str = "/oauth2/token";
const USERINFO: &str = "/oauth2/userinfo";

const SSO: &str = "tessera_sso";
const CSRF: &str = "tessera_csrf";

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A `state` that would break out of a header or an HTML attribute if it were not encoded.
const HOSTILE_STATE: &str = "<script>alert(1)</script>\r\nSet-Cookie: pwned=1; \"'>";

// --- fresh names ---------------------------------------------------------------------------

struct Person {
    email: String,
    id: String,
}

/// A verified user with a fresh address.
async fn person(node: &TestNode, tag: &str) -> Person {
    let email = format!("{tag}-{:016x}@example.com", random_u64());
    let id = node.create_user(&email, PASSWORD).await;
    Person { email, id }
}

fn context() -> RequestContext {
    RequestContext::default()
}

// --- a browser -----------------------------------------------------------------------------

/// A browser on an address of its own: keeps cookies (which a test may also forge or
/// drop), follows no redirect, and answers [`Page`]s.
struct Agent {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Agent {
    fn new() -> Agent {
        Agent {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(loopback_ip())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    fn drop_cookie(&mut self, name: &str) {
        self.cookies.remove(name);
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, header);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some((name, value)) = text.split(';').next().unwrap_or("").split_once('=') else {
                continue;
            };
            if value.is_empty() || text.to_ascii_lowercase().contains("max-age=0") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let request = self.client.get(url);
        self.send(request).await
    }

    async fn post_form<T: serde::Serialize + ?Sized>(&mut self, url: &str, form: &T) -> Page {
        let request = self.client.post(url).form(form);
        self.send(request).await
    }

    async fn post_json(&mut self, url: &str, body: &Value) -> Page {
        let request = self.client.post(url).json(body);
        self.send(request).await
    }
}

// --- authorization requests ----------------------------------------------------------------

/// An authorization request's parameters, in order (a parameter may be repeated).
#[derive(Clone)]
struct Authz(Vec<(String, String)>);

impl Authz {
    /// A valid request of `client_id` at [`REDIRECT`] with PKCE, state `st-1` and nonce `n-1`.
    fn new(client_id: &str, challenge: &str) -> Authz {
        Authz(
            [
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid email profile"),
                ("state", "st-1"),
                ("nonce", "n-1"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
    }

    /// The same request without PKCE (for confidential clients).
    fn without_pkce(client_id: &str) -> Authz {
        Authz::new(client_id, "-")
            .without("code_challenge")
            .without("code_challenge_method")
    }

    fn set(mut self, key: &str, value: &str) -> Authz {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_owned(),
            None => self.0.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    fn without(mut self, key: &str) -> Authz {
        self.0.retain(|(k, _)| k != key);
        self
    }

    /// Appends `key` even if it is there already.
    fn plus(mut self, key: &str, value: &str) -> Authz {
        self.0.push((key.to_owned(), value.to_owned()));
        self
    }

    fn url(&self, node: &TestNode) -> String {
        let mut url = reqwest::Url::parse(&node.at(AUTHORIZE)).unwrap();
        url.query_pairs_mut().extend_pairs(self.0.iter());
        url.to_string()
    }
}

/// Walks the login page at `url` as `email`; returns what follows the login form.
async fn sign_in(node: &TestNode, agent: &mut Agent, url: &str, email: &str) -> Page {
    let page = agent.get(url).await;
    assert_login_page(&page);
    let mut form = page.form_fields();
    form.insert("username".into(), email.into());
    form.insert("password".into(), PASSWORD.into());
    agent.post_form(&node.at(LOGIN_FORM), &form).await
}

/// Signs in through the login page and returns the code it leads to.
async fn sign_in_for_code(node: &TestNode, agent: &mut Agent, authz: &Authz, email: &str) -> String {
    let page = sign_in(node, agent, &authz.url(node), email).await;
    assert_eq!(page.status, 303, "{}", page.body);
    code_of(&page)
}

/// A code from a browser already signed in (no page in between).
async fn sso_code(node: &TestNode, agent: &mut Agent, authz: &Authz) -> String {
    let page = agent.get(&authz.url(node)).await;
    assert_eq!(page.status, 302, "expected a code at once: {}", page.body);
    code_of(&page)
}

fn code_of(page: &Page) -> String {
    let params = at_client(page);
    params
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {params:?}"))
}

/// The parameters of a redirect to [`REDIRECT`] (asserting that it is one).
fn at_client(page: &Page) -> BTreeMap<String, String> {
    assert!(
        matches!(page.status, 302 | 303),
        "not a redirect: {} {}",
        page.status,
        page.body
    );
    let location = page.location.as_deref().unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT}?")),
        "redirected elsewhere: {location}"
    );
    page.location_params()
}

/// Whether the agent's SSO cookie still signs it in.
async fn signed_in(node: &TestNode, agent: &Agent) -> bool {
    node.state
        .provider
        .sso_session(agent.cookie(SSO))
        .await
        .unwrap()
        .is_some()
}

// --- what a page must be -------------------------------------------------------------------

fn header(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn sets_sso_cookie(page: &Page) -> bool {
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("tessera_sso=") && !v.starts_with("tessera_sso=;"))
}

fn clears_sso_cookie(page: &Page) -> bool {
    page.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("tessera_sso=;"))
}

/// An HTML error page with `status`: no `Location` header at all, no sign-in cookie.
fn assert_error_page(page: &Page, status: u16, what: &str) {
    assert_eq!(page.status, status, "{what}: {}", page.body);
    assert!(
        page.headers.get(LOCATION).is_none(),
        "{what}: redirected to {:?}",
        page.location
    );
    assert!(
        header(&page.headers, CONTENT_TYPE).is_some_and(|v| v.starts_with("text/html")),
        "{what}: {:?}",
        page.headers
    );
    assert!(page.body.starts_with("<!DOCTYPE html>"), "{what}: {}", page.body);
    assert!(!sets_sso_cookie(page), "{what}: a sign-in cookie was set");
}

fn assert_login_page(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.headers.get(LOCATION).is_none());
    assert!(
        page.body.contains("name=\"password\""),
        "not a login page: {}",
        page.body
    );
}

fn assert_consent_page(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("value=\"allow\""),
        "not a consent page: {}",
        page.body
    );
}

fn assert_logout_confirm_page(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.headers.get(LOCATION).is_none(), "{:?}", page.location);
    assert!(
        page.body.contains("value=\"logout\""),
        "not a confirmation page: {}",
        page.body
    );
    assert!(!clears_sso_cookie(page), "the confirmation page signs out");
}

/// An OAuth error sent back to the client at [`REDIRECT`], with `state` and `iss`, and
/// no code.
fn assert_client_error(node: &TestNode, page: &Page, error: &str, state: &str, what: &str) {
    assert!(
        matches!(page.status, 302 | 303),
        "{what}: {} {}",
        page.status,
        page.body
    );
    let params = at_client(page);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(error),
        "{what}: {params:?}"
    );
    assert!(
        params.get("error_description").is_some_and(|d| !d.is_empty()),
        "{what}: {params:?}"
    );
    assert_eq!(params.get("state").map(String::as_str), Some(state), "{what}");
    assert_eq!(params.get("iss"), Some(&node.url), "{what}");
    assert!(!params.contains_key("code"), "{what}");
}

// --- what the node holds -------------------------------------------------------------------

/// How many audit records of each event the node has: a refused request adds none.
async fn trail(node: &TestNode) -> BTreeMap<String, usize> {
    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for record in records {
        *counts.entry(record.event).or_insert(0) += 1;
    }
    counts
}

async fn count(node: &TestNode, event: &str) -> usize {
    trail(node).await.get(event).copied().unwrap_or(0)
}

/// The user's alive token sessions.
async fn token_sessions(node: &TestNode, user_id: &str) -> usize {
    node.state
        .db
        .alive_sessions(user_id, node.clock.now())
        .await
        .unwrap()
        .len()
}

// --- the token endpoint --------------------------------------------------------------------

/// The device authorization grant's type (RFC 8628).
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn token_request(node: &TestNode, client: &TestClient, fields: &[(&str, &str)]) -> (u16, Value) {
    let response = node.post_form(TOKEN, client, fields).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// `grant_type=authorization_code` with `fields`.
async fn exchange(node: &TestNode, client: &TestClient, fields: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("grant_type", "authorization_code")];
    all.extend_from_slice(fields);
    token_request(node, client, &all).await
}

/// The exchange a legitimate client makes.
async fn redeem(node: &TestNode, client: &TestClient, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut fields = vec![("code", code), ("redirect_uri", REDIRECT)];
    if let Some(verifier) = verifier {
        fields.push(("code_verifier", verifier));
    }
    exchange(node, client, &fields).await
}

async fn redeem_ok(node: &TestNode, client: &TestClient, code: &str, verifier: Option<&str>) -> Value {
    let (status, tokens) = redeem(node, client, code, verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn assert_oauth_error(answer: &(u16, Value), status: u16, error: &str, what: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (status, Some(error)),
        "{what}: {}",
        answer.1
    );
    assert!(answer.1.get("access_token").is_none(), "{what}: {}", answer.1);
}

fn assert_invalid_grant(answer: &(u16, Value), what: &str) {
    assert_oauth_error(answer, 400, "invalid_grant", what);
}

fn text<'a>(tokens: &'a Value, name: &str) -> &'a str {
    tokens[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}: {tokens}"))
}

async fn userinfo_status(node: &TestNode, access_token: &str) -> u16 {
    node.get_bearer(USERINFO, access_token).await.0
}

/// A JWT of this node, verified with its JWKS: (header, claims).
async fn verify_jwt(node: &TestNode, token: &str, audience: &str) -> (Header, Value) {
    let jwks: JwkSet = node.get("/.well-known/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&node.url]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    (header, claims)
}

/// Registers a client: confidential (`client_secret_basic`), first party, the code and
/// refresh grants, `openid profile email`, [`REDIRECT`] — then `adjust`.
async fn register(node: &TestNode, client_id: &str, adjust: impl FnOnce(&mut ClientRecord)) -> TestClient {
    let (secret, hash) = tessera_idp::clients::new_client_secret();
    let now = node.clock.now();
    let mut record = ClientRecord {
        client_id: client_id.to_owned(),
        name: format!("{client_id} app"),
        secret_hash: Some(hash),
        token_endpoint_auth_method: "client_secret_basic".to_owned(),
        channel: "web".to_owned(),
        token_endpoint_auth_signing_alg: None,
        jwks: None,
        jwks_uri: None,
        secret_sealed: None,
        request_object_signing_alg: None,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        redirect_uris: vec![REDIRECT.to_owned()],
        post_logout_redirect_uris: vec![format!("{REDIRECT}/logged-out")],
        allowed_cors_origins: vec![],
        backchannel_logout_uri: None,
        first_party: true,
        access_token_ttl_secs: None,
        refresh_token_ttl_secs: None,
        mfa_policy: None,
        require_pushed_authorization_requests: false,
        created_at: now,
        updated_at: now,
    };
    adjust(&mut record);
    node.state.clients.create_client(&record).await.unwrap();
    TestClient {
        client_id: client_id.to_owned(),
        secret: record.secret_hash.is_some().then_some(secret),
    }
}

// --- 1. redirect_uri and client_id --------------------------------------------------------

async fn unregistered_redirect_uris_get_an_error_page_never_a_redirect(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "redirect").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    node.create_oidc_client("partner-app", true, PARTNER_REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let valid = Authz::new(&shop.client_id, &challenge);
    // Signed in: a request that got through would be answered with a code at once.
    let mut agent = Agent::new();
    sign_in_for_code(&node, &mut agent, &valid, &alice.email).await;
    let before = trail(&node).await;

    let hostile = [
        "https://evil.example/cb",
        "https://shop.example/cb/../evil",
        "https://shop.example/cb/..%2F..%2Fevil",
        "https://shop.example/cb.evil.com",
        "https://shop.example.evil.com/cb",
        "https://shop.example/cb?x=1",
        "https://shop.example/cb#frag",
        "https://shop.example/cb/",
        "https://shop.example/cbx",
        "http://shop.example/cb",
        "https://shop.example:8443/cb",
        "https://shop.example:443/cb",
        "https://SHOP.example/cb",
        "HTTPS://shop.example/cb",
        "https://shop.example/CB",
        "https://shop.example/%63b",
        " https://shop.example/cb",
        "https://shop.example/cb ",
        "//evil.example",
        "//shop.example/cb",
        "/cb",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://evil.example@shop.example/cb",
        "https://shop.example@evil.example/cb",
        "https://shop.example\\@evil.example/cb",
        PARTNER_REDIRECT,
    ];
    for uri in hostile {
        // Errors that would otherwise go to the client cannot go to an untrusted URI either.
        for authz in [
            valid.clone().set("redirect_uri", uri),
            valid
                .clone()
                .set("redirect_uri", uri)
                .set("response_type", "token"),
            valid.clone().set("redirect_uri", uri).plus("scope", "openid"),
            valid.clone().set("redirect_uri", uri).set("prompt", "none"),
        ] {
            let page = agent.get(&authz.url(&node)).await;
            assert_error_page(&page, 400, uri);
            assert!(
                !page.body.contains(&format!("href=\"{uri}")),
                "{uri}: linked from the page"
            );
        }
        let page = agent
            .post_form(&node.at(AUTHORIZE), &valid.clone().set("redirect_uri", uri).0)
            .await;
        assert_error_page(&page, 400, &format!("POST {uri}"));
    }
    for authz in [
        valid.clone().without("redirect_uri"),
        valid.clone().set("redirect_uri", ""),
    ] {
        let page = agent.get(&authz.url(&node)).await;
        assert_error_page(&page, 400, "missing redirect_uri");
    }

    assert_eq!(trail(&node).await, before, "refused requests leave no trace");
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    assert!(signed_in(&node, &agent).await);
    // The registered URI itself still works.
    sso_code(&node, &mut agent, &valid).await;
}

async fn unknown_or_missing_clients_get_an_error_page(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "client").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let valid = Authz::new(&shop.client_id, &challenge);
    let mut agent = Agent::new();
    sign_in_for_code(&node, &mut agent, &valid, &alice.email).await;
    let before = trail(&node).await;

    let long = "x".repeat(300);
    let cases = [
        ("unknown client", valid.clone().set("client_id", "no-such-client")),
        ("missing client", valid.clone().without("client_id")),
        ("empty client", valid.clone().set("client_id", "")),
        (
            "SQL in client_id",
            valid.clone().set("client_id", "shop-web' OR '1'='1"),
        ),
        ("case of client_id", valid.clone().set("client_id", "SHOP-WEB")),
        ("overlong client_id", valid.clone().set("client_id", &long)),
        (
            "unknown client, hostile redirect",
            valid
                .clone()
                .set("client_id", "nope")
                .set("redirect_uri", "https://evil.example/"),
        ),
        (
            "unknown client, bad response_type",
            valid
                .clone()
                .set("client_id", "nope")
                .set("response_type", "token"),
        ),
    ];
    for (what, authz) in cases {
        let page = agent.get(&authz.url(&node)).await;
        assert_error_page(&page, 400, what);
        let page = agent.post_form(&node.at(AUTHORIZE), &authz.0).await;
        assert_error_page(&page, 400, &format!("POST: {what}"));
    }
    assert_eq!(trail(&node).await, before, "refused requests leave no trace");
    sso_code(&node, &mut agent, &valid).await;
}

// --- 2. open redirects and hostile state ---------------------------------------------------

fn logout_url(node: &TestNode, params: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&node.at(END_SESSION)).unwrap();
    url.query_pairs_mut().extend_pairs(params.iter());
    url.to_string()
}

async fn post_logout_redirects_go_only_to_the_hinted_clients_registered_uris(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "postlogout").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let partner = register(&node, "partner-app", |c| {
        c.redirect_uris = vec![PARTNER_REDIRECT.to_owned()];
        c.post_logout_redirect_uris = vec![format!("{PARTNER_REDIRECT}/logged-out")];
    })
    .await;
    let mut agent = Agent::new();
    let code = sign_in_for_code(
        &node,
        &mut agent,
        &Authz::without_pkce(&shop.client_id),
        &alice.email,
    )
    .await;
    let tokens = redeem_ok(&node, &shop, &code, None).await;
    let hint = text(&tokens, "id_token");
    let access = text(&tokens, "access_token");
    let own = format!("{REDIRECT}/logged-out");
    let partners = format!("{PARTNER_REDIRECT}/logged-out");
    let before = trail(&node).await;

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "another client's URI",
            vec![("id_token_hint", hint), ("post_logout_redirect_uri", &partners)],
        ),
        (
            "another client's URI, its client_id too",
            vec![
                ("id_token_hint", hint),
                ("client_id", &partner.client_id),
                ("post_logout_redirect_uri", &partners),
            ],
        ),
        (
            "unregistered",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
        ),
        (
            "registered + ..",
            vec![
                ("id_token_hint", hint),
                (
                    "post_logout_redirect_uri",
                    "https://shop.example/cb/logged-out/../../evil",
                ),
            ],
        ),
        (
            "registered + suffix",
            vec![
                ("id_token_hint", hint),
                (
                    "post_logout_redirect_uri",
                    "https://shop.example/cb/logged-out.evil.com",
                ),
            ],
        ),
        (
            "registered + query",
            vec![
                ("id_token_hint", hint),
                (
                    "post_logout_redirect_uri",
                    "https://shop.example/cb/logged-out?next=https://evil.example",
                ),
            ],
        ),
        (
            "scheme-relative",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "//evil.example"),
            ],
        ),
        (
            "javascript:",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "javascript:alert(1)"),
            ],
        ),
        (
            "userinfo trick",
            vec![
                ("id_token_hint", hint),
                (
                    "post_logout_redirect_uri",
                    "https://evil.example@shop.example/cb/logged-out",
                ),
            ],
        ),
        ("no client at all", vec![("post_logout_redirect_uri", &own)]),
        (
            "unknown client_id",
            vec![("client_id", "nope"), ("post_logout_redirect_uri", &own)],
        ),
        (
            "client_id against the hint",
            vec![
                ("id_token_hint", hint),
                ("client_id", &partner.client_id),
                ("post_logout_redirect_uri", &own),
            ],
        ),
        (
            "repeated parameter",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", &own),
                ("post_logout_redirect_uri", &own),
            ],
        ),
    ];
    for (what, params) in &cases {
        let page = agent.get(&logout_url(&node, params)).await;
        assert_error_page(&page, 400, what);
        assert!(!clears_sso_cookie(&page), "{what}: signed out");
        let page = agent.post_form(&node.at(END_SESSION), params).await;
        assert_error_page(&page, 400, &format!("POST: {what}"));
    }
    // Nothing ended: the browser is signed in, the tokens work, no audit record.
    assert!(signed_in(&node, &agent).await);
    assert_eq!(node.introspect(&shop, access).await["active"], true);
    assert_eq!(trail(&node).await, before);

    // The client's own registered URI, with its hint: out at once, back to the client.
    let page = agent
        .get(&logout_url(
            &node,
            &[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", &own),
                ("state", "bye"),
            ],
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{own}?state=bye").as_str())
    );
    assert!(!signed_in(&node, &agent).await);
}

/// The raw `Location` header carries `state` only percent-encoded, and decodes to it.
fn assert_state_encoded(page: &Page, state: &str, what: &str) {
    let raw = page
        .headers
        .get(LOCATION)
        .unwrap_or_else(|| panic!("{what}: no Location"))
        .as_bytes();
    assert!(
        raw.iter().all(u8::is_ascii_graphic),
        "{what}: raw bytes in Location: {raw:?}"
    );
    for forbidden in [b'<', b'>', b'"', b'\'', b'\\', b'`'] {
        assert!(
            !raw.contains(&forbidden),
            "{what}: {:?} in Location",
            forbidden as char
        );
    }
    let text = std::str::from_utf8(raw).unwrap();
    assert!(
        text.contains("state=%3Cscript%3Ealert%281%29%3C%2Fscript%3E%0D%0ASet-Cookie"),
        "{what}: {text}"
    );
    assert_eq!(
        page.location_params().get("state").map(String::as_str),
        Some(state),
        "{what}"
    );
    assert!(
        page.headers
            .get_all(SET_COOKIE)
            .iter()
            .all(|v| !v.as_bytes().starts_with(b"pwned")),
        "{what}"
    );
}

/// `state` is nowhere in the page unescaped.
fn assert_not_reflected(page: &Page, what: &str) {
    let lower = page.body.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{what}: {}", page.body);
    assert!(!page.body.contains("\"'>"), "{what}: {}", page.body);
}

async fn hostile_state_is_url_encoded_in_redirects_and_escaped_in_pages(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "state").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let partner = node
        .create_oidc_client("partner-app", true, REDIRECT, false, None)
        .await;
    let (_, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge).set("state", HOSTILE_STATE);
    let mut agent = Agent::new();

    // The login page carries state in a hidden field, escaped.
    let page = agent.get(&authz.url(&node)).await;
    assert_login_page(&page);
    assert_not_reflected(&page, "login page");
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert_eq!(
        page.form_fields().get("state").map(String::as_str),
        Some(HOSTILE_STATE)
    );
    // A failed login shows it again, still escaped.
    let mut form = page.form_fields();
    form.insert("username".into(), alice.email.clone());
    form.insert("password".into(), WRONG.into());
    let page = agent.post_form(&node.at(LOGIN_FORM), &form).await;
    assert_eq!(page.status, 401);
    assert_not_reflected(&page, "login page after a failure");
    // The code comes back with state percent-encoded in the raw header.
    let mut form = page.form_fields();
    form.insert("username".into(), alice.email.clone());
    form.insert("password".into(), PASSWORD.into());
    let page = agent.post_form(&node.at(LOGIN_FORM), &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(at_client(&page).contains_key("code"));
    assert_state_encoded(&page, HOSTILE_STATE, "code redirect");
    // So do errors sent back to the client, and the SSO redirect.
    let page = agent
        .get(&authz.clone().set("response_type", "token").url(&node))
        .await;
    assert_client_error(
        &node,
        &page,
        "unsupported_response_type",
        HOSTILE_STATE,
        "error redirect",
    );
    assert_state_encoded(&page, HOSTILE_STATE, "error redirect");
    let page = agent.get(&authz.url(&node)).await;
    assert_eq!(page.status, 302);
    assert_state_encoded(&page, HOSTILE_STATE, "SSO redirect");
    // An error page does not show it at all.
    let page = agent
        .get(
            &authz
                .clone()
                .set("redirect_uri", "https://evil.example/")
                .url(&node),
        )
        .await;
    assert_error_page(&page, 400, "error page");
    assert_not_reflected(&page, "error page");
    // Consent page.
    let page = agent
        .get(
            &Authz::new(&partner.client_id, &challenge)
                .set("state", HOSTILE_STATE)
                .url(&node),
        )
        .await;
    assert_consent_page(&page);
    assert_not_reflected(&page, "consent page");
    let mut form = page.form_fields();
    form.insert("decision".into(), "deny".into());
    let page = agent.post_form(&node.at(CONSENT_FORM), &form).await;
    assert_client_error(&node, &page, "access_denied", HOSTILE_STATE, "denied consent");
    assert_state_encoded(&page, HOSTILE_STATE, "denied consent");
    // Logout: the confirmation page, then the post-logout redirect.
    let own = format!("{REDIRECT}/logged-out");
    let page = agent
        .get(&logout_url(
            &node,
            &[
                ("client_id", &shop.client_id),
                ("post_logout_redirect_uri", &own),
                ("state", HOSTILE_STATE),
            ],
        ))
        .await;
    assert_logout_confirm_page(&page);
    assert_not_reflected(&page, "logout confirmation");
    let mut form = page.form_fields();
    form.insert("decision".into(), "logout".into());
    let page = agent.post_form(&node.at(LOGOUT_CONFIRM), &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(page
        .location
        .as_deref()
        .unwrap()
        .starts_with(&format!("{own}?state=")));
    assert_state_encoded(&page, HOSTILE_STATE, "post-logout redirect");
    assert!(!signed_in(&node, &agent).await);
    let page = agent.get(&node.at(END_SESSION)).await;
    assert_eq!(page.status, 200);
    assert_not_reflected(&page, "logged-out page");
}

// --- 3. invalid requests after the redirect URI is known ----------------------------------

async fn invalid_requests_after_the_redirect_uri_is_known_go_back_to_the_client(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "invalid").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let machine = register(&node, "machine", |c| {
        c.grant_types = vec!["client_credentials".into()]
    })
    .await;
    let (verifier, challenge) = pkce_pair();
    let valid = Authz::new(&shop.client_id, &challenge);
    let mut agent = Agent::new();
    sign_in_for_code(&node, &mut agent, &valid, &alice.email).await;
    let before = trail(&node).await;

    let long = "n".repeat(3000);
    let cases: Vec<(&str, Authz, &str)> = vec![
        (
            "response_type=token",
            valid.clone().set("response_type", "token"),
            "unsupported_response_type",
        ),
        (
            "response_type=id_token",
            valid.clone().set("response_type", "id_token"),
            "unsupported_response_type",
        ),
        (
            "response_type=code token",
            valid.clone().set("response_type", "code token"),
            "unsupported_response_type",
        ),
        (
            "response_type=code id_token",
            valid.clone().set("response_type", "code id_token"),
            "unsupported_response_type",
        ),
        (
            "response_type=none",
            valid.clone().set("response_type", "none"),
            "unsupported_response_type",
        ),
        (
            "no response_type",
            valid.clone().without("response_type"),
            "invalid_request",
        ),
        (
            "response_mode=fragment",
            valid.clone().set("response_mode", "fragment"),
            "invalid_request",
        ),
        (
            "response_mode=form_post",
            valid.clone().set("response_mode", "form_post"),
            "invalid_request",
        ),
        (
            "scope twice",
            valid.clone().plus("scope", "openid"),
            "invalid_request",
        ),
        (
            "code_challenge twice",
            valid.clone().plus("code_challenge", &challenge),
            "invalid_request",
        ),
        (
            "an overlong parameter",
            valid.clone().set("nonce", &long),
            "invalid_request",
        ),
        (
            "request object",
            valid
                .clone()
                .set("request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6ImFkbWluIn0."),
            "request_not_supported",
        ),
        (
            "request_uri",
            valid
                .clone()
                .set("request_uri", "https://evil.example/request.jwt"),
            "request_uri_not_supported",
        ),
        (
            "scope admin",
            valid.clone().set("scope", "openid admin"),
            "invalid_scope",
        ),
        (
            "scope only admin",
            valid.clone().set("scope", "admin"),
            "invalid_scope",
        ),
        ("no scope", valid.clone().without("scope"), "invalid_scope"),
        ("blank scope", valid.clone().set("scope", "   "), "invalid_scope"),
        (
            "public client without PKCE",
            valid
                .clone()
                .without("code_challenge")
                .without("code_challenge_method"),
            "invalid_request",
        ),
        (
            "plain PKCE",
            valid
                .clone()
                .set("code_challenge", &verifier)
                .set("code_challenge_method", "plain"),
            "invalid_request",
        ),
        (
            "challenge without method",
            valid.clone().without("code_challenge_method"),
            "invalid_request",
        ),
        (
            "method without challenge",
            valid.clone().without("code_challenge"),
            "invalid_request",
        ),
        (
            "short challenge",
            valid.clone().set("code_challenge", "abc"),
            "invalid_request",
        ),
        (
            "42-character challenge",
            valid.clone().set("code_challenge", &challenge[..42]),
            "invalid_request",
        ),
        (
            "challenge outside base64url",
            valid.clone().set("code_challenge", &"+".repeat(43)),
            "invalid_request",
        ),
        (
            "lower-case method",
            valid.clone().set("code_challenge_method", "s256"),
            "invalid_request",
        ),
        (
            "prompt=none login",
            valid.clone().set("prompt", "none login"),
            "invalid_request",
        ),
        (
            "prompt=none consent",
            valid.clone().set("prompt", "none consent"),
            "invalid_request",
        ),
        (
            "prompt=select_account",
            valid.clone().set("prompt", "select_account"),
            "invalid_request",
        ),
        (
            "max_age=-1",
            valid.clone().set("max_age", "-1"),
            "invalid_request",
        ),
        (
            "max_age=abc",
            valid.clone().set("max_age", "abc"),
            "invalid_request",
        ),
        (
            "max_age=1.5",
            valid.clone().set("max_age", "1.5"),
            "invalid_request",
        ),
        (
            "max_age overflowing",
            valid.clone().set("max_age", "99999999999999999999999"),
            "invalid_request",
        ),
        (
            "client without the code grant",
            Authz::new(&machine.client_id, &challenge),
            "unauthorized_client",
        ),
    ];
    for (what, authz, error) in &cases {
        let page = agent.get(&authz.url(&node)).await;
        assert_client_error(&node, &page, error, "st-1", what);
        let page = agent.post_form(&node.at(AUTHORIZE), &authz.0).await;
        assert_client_error(&node, &page, error, "st-1", &format!("POST: {what}"));
    }
    // Without state, none comes back.
    let page = agent
        .get(
            &valid
                .clone()
                .without("state")
                .set("response_type", "token")
                .url(&node),
        )
        .await;
    assert_eq!(page.status, 302);
    assert!(!at_client(&page).contains_key("state"));

    assert_eq!(trail(&node).await, before, "no code, no session, no audit record");
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    assert!(signed_in(&node, &agent).await);
    // The valid request still gets its code, redeemable with the verifier.
    let code = sso_code(&node, &mut agent, &valid).await;
    redeem_ok(&node, &shop, &code, Some(&verifier)).await;
}

// --- 4. prompt, max_age, nonce, ui_locales -------------------------------------------------

async fn prompt_none_answers_login_required_and_consent_required(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "prompt-none").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let partner = node
        .create_oidc_client("partner-app", true, REDIRECT, false, None)
        .await;
    let (_, challenge) = pkce_pair();
    let at_shop = Authz::new(&shop.client_id, &challenge).set("prompt", "none");
    let at_partner = Authz::new(&partner.client_id, &challenge).set("prompt", "none");

    // No session: login_required, no page.
    let mut stranger = Agent::new();
    for authz in [&at_shop, &at_partner] {
        let page = stranger.get(&authz.url(&node)).await;
        assert_client_error(
            &node,
            &page,
            "login_required",
            "st-1",
            "prompt=none without a session",
        );
        assert!(!sets_sso_cookie(&page));
    }
    // A forged or unknown SSO cookie is no session either.
    stranger.set_cookie(SSO, "forged-cookie-value");
    let page = stranger.get(&at_shop.url(&node)).await;
    assert_client_error(&node, &page, "login_required", "st-1", "forged SSO cookie");

    // A session, but no consent for the third-party client: consent_required.
    let mut agent = Agent::new();
    sign_in_for_code(
        &node,
        &mut agent,
        &Authz::new(&shop.client_id, &challenge),
        &alice.email,
    )
    .await;
    let before = trail(&node).await;
    let page = agent.get(&at_partner.url(&node)).await;
    assert_client_error(
        &node,
        &page,
        "consent_required",
        "st-1",
        "prompt=none without consent",
    );
    assert_eq!(
        node.state
            .db
            .consent(&alice.id, &partner.client_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(trail(&node).await, before);
    // The first-party client needs no consent: a code.
    assert!(at_client(&agent.get(&at_shop.url(&node)).await).contains_key("code"));

    // A session older than max_age: login_required rather than a login page.
    node.clock.advance(120);
    let page = agent.get(&at_shop.clone().set("max_age", "60").url(&node)).await;
    assert_client_error(
        &node,
        &page,
        "login_required",
        "st-1",
        "prompt=none with max_age exceeded",
    );
    assert!(
        at_client(&agent.get(&at_shop.clone().set("max_age", "600").url(&node)).await).contains_key("code")
    );
}

async fn prompt_login_and_max_age_force_a_fresh_login_with_a_new_auth_time(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "fresh").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();

    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    let first = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let (_, first) = verify_jwt(&node, text(&first, "id_token"), &shop.client_id).await;
    let t0 = first["auth_time"].as_i64().unwrap();
    assert_eq!(first["nonce"], "n-1");

    // prompt=login with a live session: the login page again, and the new login's time.
    node.clock.advance(300);
    let login_again = authz.clone().set("prompt", "login").set("nonce", "n-2");
    let page = agent.get(&login_again.url(&node)).await;
    assert_login_page(&page);
    let code = sign_in_for_code(&node, &mut agent, &login_again, &alice.email).await;
    let second = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let (_, second) = verify_jwt(&node, text(&second, "id_token"), &shop.client_id).await;
    assert_eq!(second["auth_time"].as_i64(), Some(t0 + 300), "{second}");
    assert_eq!(second["nonce"], "n-2");

    // max_age: a session 120 s old passes max_age=600 (and keeps its auth_time) …
    node.clock.advance(120);
    let code = sso_code(
        &node,
        &mut agent,
        &authz.clone().set("max_age", "600").set("nonce", "n-3"),
    )
    .await;
    let third = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let (_, third) = verify_jwt(&node, text(&third, "id_token"), &shop.client_id).await;
    assert_eq!(third["auth_time"].as_i64(), Some(t0 + 300));
    assert_eq!(third["nonce"], "n-3");
    // … but not max_age=60: the login page, then a new auth_time.
    let too_old = authz.clone().set("max_age", "60").set("nonce", "n-4");
    let page = agent.get(&too_old.url(&node)).await;
    assert_login_page(&page);
    let code = sign_in_for_code(&node, &mut agent, &too_old, &alice.email).await;
    let fourth = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let (_, fourth) = verify_jwt(&node, text(&fourth, "id_token"), &shop.client_id).await;
    assert_eq!(fourth["auth_time"].as_i64(), Some(t0 + 420));
    assert_eq!(fourth["nonce"], "n-4");
    // Without a nonce in the request, none in the token.
    let code = sso_code(&node, &mut agent, &authz.clone().without("nonce")).await;
    let fifth = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let (_, fifth) = verify_jwt(&node, text(&fifth, "id_token"), &shop.client_id).await;
    assert!(fifth.get("nonce").is_none(), "{fifth}");
}

async fn ui_locales_chooses_the_page_language(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let mut agent = Agent::new();
    for (ui_locales, lang) in [("ko", "ko"), ("fr-CA ko-KR en", "ko"), ("en", "en"), ("fr", "en")] {
        let page = agent
            .get(&authz.clone().set("ui_locales", ui_locales).url(&node))
            .await;
        assert_login_page(&page);
        assert!(
            page.body.contains(&format!("<html lang=\"{lang}\">")),
            "{ui_locales}: {}",
            page.body
        );
    }
    let page = agent.get(&authz.url(&node)).await;
    assert!(page.body.contains("<html lang=\"en\">"));
}

// --- 5. the token endpoint with codes ------------------------------------------------------

async fn exchange_needs_the_exact_redirect_uri_and_the_matching_verifier(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "exchange").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (_, challenge) = pkce_pair();
    sign_in_for_code(
        &node,
        &mut agent,
        &Authz::new(&shop.client_id, &challenge),
        &alice.email,
    )
    .await;

    let cases = [
        "redirect_uri with a trailing slash",
        "another redirect_uri",
        "no redirect_uri",
        "no code_verifier",
        "another verifier",
        "the challenge as verifier",
        "a verifier too short",
        "a verifier with bad characters",
    ];
    for what in cases {
        let (verifier, challenge) = pkce_pair();
        let code = sso_code(&node, &mut agent, &Authz::new(&shop.client_id, &challenge)).await;
        let other = pkce_pair().0;
        let short = verifier[..42].to_owned();
        let bad = format!("{verifier}+/=");
        let with_slash = format!("{REDIRECT}/");
        let fields: Vec<(&str, &str)> = match what {
            "redirect_uri with a trailing slash" => vec![
                ("code", &code),
                ("redirect_uri", &with_slash),
                ("code_verifier", &verifier),
            ],
            "another redirect_uri" => vec![
                ("code", &code),
                ("redirect_uri", "https://evil.example/cb"),
                ("code_verifier", &verifier),
            ],
            "no redirect_uri" => vec![("code", &code), ("code_verifier", &verifier)],
            "no code_verifier" => vec![("code", &code), ("redirect_uri", REDIRECT)],
            "another verifier" => vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &other),
            ],
            "the challenge as verifier" => vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &challenge),
            ],
            "a verifier too short" => vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &short),
            ],
            _ => vec![
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &bad),
            ],
        };
        assert_invalid_grant(&exchange(&node, &shop, &fields).await, what);
        assert_eq!(
            token_sessions(&node, &alice.id).await,
            0,
            "{what}: tokens were issued"
        );
        // The code is spent: even the correct request fails now, and issues nothing.
        assert_invalid_grant(&redeem(&node, &shop, &code, Some(&verifier)).await, what);
        assert_eq!(token_sessions(&node, &alice.id).await, 0, "{what}");
    }
    assert_eq!(count(&node, "session.created").await, 0);
    // The correct request on a fresh code works.
    let (verifier, challenge) = pkce_pair();
    let code = sso_code(&node, &mut agent, &Authz::new(&shop.client_id, &challenge)).await;
    redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    assert_eq!(token_sessions(&node, &alice.id).await, 1);
}

async fn a_verifier_for_a_code_without_challenge_is_refused(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "downgrade").await;
    let server = node
        .create_oidc_client("shop-server", false, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let authz = Authz::without_pkce(&server.client_id);
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    let verifier = pkce_pair().0;
    assert_invalid_grant(
        &redeem(&node, &server, &code, Some(&verifier)).await,
        "verifier without challenge",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    // Without a verifier, a code without challenge is fine for a confidential client.
    let code = sso_code(&node, &mut agent, &authz).await;
    redeem_ok(&node, &server, &code, None).await;
    assert_eq!(token_sessions(&node, &alice.id).await, 1);
}

async fn a_code_presented_by_another_client_is_refused_and_burned(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "crossclient").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    // Registered at the same redirect URI: only the client binding tells them apart.
    let rogue = node
        .create_oidc_client("rogue-app", false, REDIRECT, true, None)
        .await;
    let spa = node
        .create_oidc_client("rogue-spa", true, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;

    assert_invalid_grant(
        &redeem(&node, &rogue, &code, Some(&verifier)).await,
        "another confidential client",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    // The code is burned: its own client cannot redeem it any more.
    assert_invalid_grant(
        &redeem(&node, &shop, &code, Some(&verifier)).await,
        "after the rogue attempt",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);

    let code = sso_code(&node, &mut agent, &authz).await;
    assert_invalid_grant(
        &redeem(&node, &spa, &code, Some(&verifier)).await,
        "a public client",
    );
    assert_invalid_grant(
        &redeem(&node, &shop, &code, Some(&verifier)).await,
        "after the public client",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    assert_eq!(count(&node, "session.created").await, 0);

    let code = sso_code(&node, &mut agent, &authz).await;
    redeem_ok(&node, &shop, &code, Some(&verifier)).await;
}

async fn codes_expire_after_sixty_seconds(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "expiry").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    node.clock.advance(61);
    assert_invalid_grant(
        &redeem(&node, &shop, &code, Some(&verifier)).await,
        "a code 61 s old",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    // 59 s is still in time.
    let code = sso_code(&node, &mut agent, &authz).await;
    node.clock.advance(59);
    redeem_ok(&node, &shop, &code, Some(&verifier)).await;
}

async fn a_replayed_code_revokes_what_the_first_exchange_issued(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "replay").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let rogue = node
        .create_oidc_client("rogue-app", false, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    let tokens = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let (access, refresh) = (text(&tokens, "access_token"), text(&tokens, "refresh_token"));
    assert_eq!(node.introspect(&shop, access).await["active"], true);

    assert_invalid_grant(&redeem(&node, &shop, &code, Some(&verifier)).await, "replay");
    assert_eq!(node.introspect(&shop, access).await["active"], false);
    assert_invalid_grant(&node.refresh(&shop, refresh).await, "refresh after replay");
    assert_eq!(userinfo_status(&node, access).await, 401);
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    assert_eq!(count(&node, "code.replayed").await, 1);

    // A replay by another client (one that saw the code go by) revokes just the same.
    node.clock.advance(5);
    let code = sso_code(&node, &mut agent, &authz).await;
    let tokens = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let access = text(&tokens, "access_token");
    assert_invalid_grant(
        &redeem(&node, &rogue, &code, Some(&verifier)).await,
        "replay by another client",
    );
    assert_eq!(node.introspect(&shop, access).await["active"], false);
    assert_invalid_grant(
        &node.refresh(&shop, text(&tokens, "refresh_token")).await,
        "refresh",
    );
    assert_eq!(count(&node, "code.replayed").await, 2);
}

/// `n` concurrent redemptions of `code` by `client` (confidential); every answer.
async fn race_redemptions(
    node: &TestNode,
    client: &TestClient,
    code: &str,
    verifier: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    let mut racers = Vec::new();
    for _ in 0..n {
        let http = node.client.clone();
        let url = node.at(TOKEN);
        let (id, secret) = (client.client_id.clone(), client.secret.clone().unwrap());
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ];
        racers.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.unwrap());
    }
    // At most one redemption gets tokens; when the replays reach it in time, the winner is
    // refused too (it revokes what it issued before answering), so none may win.
    let winners = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(winners <= 1, "at most one redemption wins: {answers:?}");
    for answer in answers.iter().filter(|(s, _)| *s != 200) {
        assert_invalid_grant(answer, "a concurrent redemption");
    }
    answers
}

async fn concurrent_redemptions_of_one_code_issue_tokens_once(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "race").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    race_redemptions(&node, &shop, &code, &verifier, 8).await;
    assert!(token_sessions(&node, &alice.id).await <= 1);
    for _ in 0..4 {
        let code = sso_code(&node, &mut agent, &authz).await;
        race_redemptions(&node, &shop, &code, &verifier, 8).await;
    }
    // Never more than one session per code, and none of them survives its replays.
    assert!(
        count(&node, "session.created").await <= 5,
        "at most one session per code"
    );
    assert_eq!(
        token_sessions(&node, &alice.id).await,
        0,
        "a replayed code's session survived"
    );
}

async fn concurrent_replays_revoke_the_winners_tokens(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "race-revoke").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    // The loser may be the legitimate client and the winner whoever stole the code: what
    // the winner got must not outlive the replays (RFC 6749 §4.1.2). The window is narrow,
    // so try it often.
    for round in 0..20 {
        let code = sso_code(&node, &mut agent, &authz).await;
        let answers = race_redemptions(&node, &shop, &code, &verifier, 4).await;
        if let Some(winner) = answers.iter().find(|(s, _)| *s == 200).map(|(_, body)| body) {
            assert_eq!(
                node.introspect(&shop, text(winner, "access_token")).await["active"],
                false,
                "round {round}: the winner of a concurrent redemption kept its tokens"
            );
        }
        assert_eq!(token_sessions(&node, &alice.id).await, 0, "round {round}");
    }
}

async fn sign_out_through_confirmation(node: &TestNode, agent: &mut Agent) {
    let page = agent.get(&node.at(END_SESSION)).await;
    assert_logout_confirm_page(&page);
    let mut form = page.form_fields();
    form.insert("decision".into(), "logout".into());
    let page = agent.post_form(&node.at(LOGOUT_CONFIRM), &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(clears_sso_cookie(&page));
    assert!(agent.cookie(SSO).is_none());
}

async fn codes_die_with_the_sign_in_session_and_with_the_user(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "dead-code").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);

    // A code whose SSO session ended before it was redeemed.
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    sign_out_through_confirmation(&node, &mut agent).await;
    assert_invalid_grant(
        &redeem(&node, &shop, &code, Some(&verifier)).await,
        "after logout",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);

    // A code whose user was disabled before it was redeemed.
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    node.state
        .accounts
        .disable(&alice.email, &context())
        .await
        .unwrap();
    assert_invalid_grant(
        &redeem(&node, &shop, &code, Some(&verifier)).await,
        "after disabling",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    // Nor does the browser get new codes.
    let page = agent.get(&authz.url(&node)).await;
    assert_login_page(&page);
    assert_eq!(count(&node, "session.created").await, 0);
}

async fn garbage_codes_and_unauthenticated_clients_are_refused(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "garbage").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let code = sign_in_for_code(
        &node,
        &mut agent,
        &Authz::new(&shop.client_id, &challenge),
        &alice.email,
    )
    .await;
    let before = trail(&node).await;

    let long = "A".repeat(5000);
    let near = format!(
        "{}{}",
        &code[..code.len() - 1],
        if code.ends_with('x') { 'y' } else { 'x' }
    );
    let lookalike = pkce_pair().0;
    for garbage in [
        "garbage",
        "' OR '1'='1",
        "%00",
        long.as_str(),
        near.as_str(),
        lookalike.as_str(),
    ] {
        let answer = exchange(
            &node,
            &shop,
            &[
                ("code", garbage),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_invalid_grant(&answer, garbage);
    }
    let answer = exchange(
        &node,
        &shop,
        &[
            ("code", ""),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_request", "empty code");

    // Client authentication comes before the code is even looked at.
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let secret = shop.secret.as_deref().unwrap();
    let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "no authentication",
            node.client.post(node.at(TOKEN)).form(&fields),
        ),
        (
            "client_id only",
            node.client
                .post(node.at(TOKEN))
                .form(&[&fields[..], &[("client_id", "shop-web")]].concat()),
        ),
        (
            "wrong secret",
            node.client
                .post(node.at(TOKEN))
                .basic_auth("shop-web", Some("tsec_wrong"))
                .form(&fields),
        ),
        (
            "no secret",
            node.client
                .post(node.at(TOKEN))
                .basic_auth("shop-web", None::<&str>)
                .form(&fields),
        ),
        (
            "another client's name",
            node.client
                .post(node.at(TOKEN))
                .basic_auth("rogue", Some(secret))
                .form(&fields),
        ),
        (
            "secret in the body (not the registered method)",
            node.client.post(node.at(TOKEN)).form(
                &[
                    &fields[..],
                    &[("client_id", "shop-web"), ("client_secret", secret)],
                ]
                .concat(),
            ),
        ),
        (
            "a Bearer header",
            node.client.post(node.at(TOKEN)).bearer_auth(secret).form(&fields),
        ),
    ];
    for (what, request) in attempts {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{what}");
        assert!(header(response.headers(), WWW_AUTHENTICATE).is_some(), "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    }
    assert_eq!(trail(&node).await, before, "refused requests leave no trace");
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
    // None of that spent the code.
    redeem_ok(&node, &shop, &code, Some(&verifier)).await;
}

async fn a_burned_code_that_issued_nothing_revokes_nothing(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "burned").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    // An attacker who saw a code go by burns it with a guessed verifier: nothing issued.
    let stolen = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    assert_invalid_grant(
        &redeem(&node, &shop, &stolen, Some(&pkce_pair().0)).await,
        "guessed verifier",
    );
    // Later the user signs in to the client again, through the same browser session.
    node.clock.advance(5);
    let code = sso_code(&node, &mut agent, &authz).await;
    let tokens = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let access = text(&tokens, "access_token");
    // The attacker presents the dead code again: refused, and the new tokens, which were
    // never based on that code, must live on.
    assert_invalid_grant(
        &redeem(&node, &shop, &stolen, Some(&verifier)).await,
        "dead code again",
    );
    assert_eq!(
        userinfo_status(&node, access).await,
        200,
        "a dead code's replay revoked unrelated tokens"
    );
    assert_eq!(node.refresh(&shop, text(&tokens, "refresh_token")).await.0, 200);
}

// --- 6. CSRF and brute force on the hosted forms --------------------------------------------

/// Asserts a refused form post: 403 page, no sign-in cookie, no redirect.
fn assert_forged(page: &Page, what: &str) {
    assert_error_page(page, 403, what);
}

async fn hosted_forms_refuse_posts_without_a_matching_csrf_cookie(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "csrf").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let partner = node
        .create_oidc_client("partner-app", true, REDIRECT, false, None)
        .await;
    let (_, challenge) = pkce_pair();
    let mut agent = Agent::new();

    // Login form.
    let page = agent
        .get(&Authz::new(&shop.client_id, &challenge).url(&node))
        .await;
    assert_login_page(&page);
    let mut form = page.form_fields();
    form.insert("username".into(), alice.email.clone());
    form.insert("password".into(), PASSWORD.into());
    let real_csrf = agent.cookie(CSRF).unwrap().to_owned();
    let before = trail(&node).await;
    let mut forger = Agent::new();
    let page = forger.post_form(&node.at(LOGIN_FORM), &form).await;
    assert_forged(&page, "login without the cookie");
    let mut mismatched = form.clone();
    mismatched.insert("csrf".into(), "not-the-cookie-value".into());
    assert_forged(
        &agent.post_form(&node.at(LOGIN_FORM), &mismatched).await,
        "login with another token",
    );
    let mut missing = form.clone();
    missing.remove("csrf");
    assert_forged(
        &agent.post_form(&node.at(LOGIN_FORM), &missing).await,
        "login without the field",
    );
    agent.drop_cookie(CSRF);
    assert_forged(
        &agent.post_form(&node.at(LOGIN_FORM), &form).await,
        "login, cookie dropped",
    );
    agent.set_cookie(CSRF, "attacker-chosen");
    let mut planted = form.clone();
    planted.insert("csrf".into(), "attacker-chosen-too".into());
    assert_forged(
        &agent.post_form(&node.at(LOGIN_FORM), &planted).await,
        "login, planted cookie",
    );
    assert!(agent.cookie(SSO).is_none() && forger.cookie(SSO).is_none());
    assert_eq!(trail(&node).await, before, "a forged login is not even attempted");
    // The real form works.
    agent.set_cookie(CSRF, &real_csrf);
    let page = agent.post_form(&node.at(LOGIN_FORM), &form).await;
    assert_eq!(page.status, 303, "{}", page.body);

    // Consent form (the agent is signed in now; the forms carry its SSO cookie).
    let page = agent
        .get(&Authz::new(&partner.client_id, &challenge).url(&node))
        .await;
    assert_consent_page(&page);
    let mut form = page.form_fields();
    form.insert("decision".into(), "allow".into());
    let real_csrf = agent.cookie(CSRF).unwrap().to_owned();
    let before = trail(&node).await;
    let mut mismatched = form.clone();
    mismatched.insert("csrf".into(), "not-the-cookie-value".into());
    assert_forged(
        &agent.post_form(&node.at(CONSENT_FORM), &mismatched).await,
        "consent with another token",
    );
    agent.drop_cookie(CSRF);
    assert_forged(
        &agent.post_form(&node.at(CONSENT_FORM), &form).await,
        "consent without the cookie",
    );
    assert_forged(
        &Agent::new().post_form(&node.at(CONSENT_FORM), &form).await,
        "consent from elsewhere",
    );
    assert_eq!(
        node.state
            .db
            .consent(&alice.id, &partner.client_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(trail(&node).await, before, "no consent, no code");
    agent.set_cookie(CSRF, &real_csrf);
    let page = agent.post_form(&node.at(CONSENT_FORM), &form).await;
    assert!(at_client(&page).contains_key("code"));
    assert!(node
        .state
        .db
        .consent(&alice.id, &partner.client_id)
        .await
        .unwrap()
        .is_some());

    // Logout confirmation.
    let page = agent.get(&node.at(END_SESSION)).await;
    assert_logout_confirm_page(&page);
    let mut form = page.form_fields();
    form.insert("decision".into(), "logout".into());
    let real_csrf = agent.cookie(CSRF).unwrap().to_owned();
    let before = trail(&node).await;
    let mut mismatched = form.clone();
    mismatched.insert("csrf".into(), "not-the-cookie-value".into());
    let page = agent.post_form(&node.at(LOGOUT_CONFIRM), &mismatched).await;
    assert_forged(&page, "logout with another token");
    assert!(!clears_sso_cookie(&page));
    agent.drop_cookie(CSRF);
    let page = agent.post_form(&node.at(LOGOUT_CONFIRM), &form).await;
    assert_forged(&page, "logout without the cookie");
    assert!(!clears_sso_cookie(&page));
    assert!(
        signed_in(&node, &agent).await,
        "a forged logout signed the user out"
    );
    assert_eq!(trail(&node).await, before);
    agent.set_cookie(CSRF, &real_csrf);
    let page = agent.post_form(&node.at(LOGOUT_CONFIRM), &form).await;
    assert_eq!(page.status, 200);
    assert!(!signed_in(&node, &agent).await);
}

/// Posts the login form of `page` with `password`; returns the answer.
async fn post_login(node: &TestNode, agent: &mut Agent, page: &Page, email: &str, password: &str) -> Page {
    let mut form = page.form_fields();
    form.insert("username".into(), email.into());
    form.insert("password".into(), password.into());
    agent.post_form(&node.at(LOGIN_FORM), &form).await
}

async fn hosted_login_shares_the_brute_force_throttle_with_the_json_api(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "brute-page").await;
    let bob = person(&node, "brute-api").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);

    // Five wrong passwords through the page …
    let mut agent = Agent::new();
    let mut page = agent.get(&authz.url(&node)).await;
    for attempt in 1..=5 {
        page = post_login(&node, &mut agent, &page, &alice.email, WRONG).await;
        assert_eq!(page.status, 401, "attempt {attempt}: {}", page.body);
        assert!(page.body.contains("incorrect"), "{}", page.body);
        assert!(!sets_sso_cookie(&page));
    }
    // … and the sixth, with the right password, is refused.
    let page = post_login(&node, &mut agent, &page, &alice.email, PASSWORD).await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(
        page.body.contains("Too many failed sign-in attempts"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("name=\"password\""),
        "the login form is shown again"
    );
    assert!(!sets_sso_cookie(&page) && agent.cookie(SSO).is_none());
    // The JSON API, from another address, sees the same lock.
    let mut api = Agent::new();
    let reply = api
        .post_json(
            &node.at("/auth/login"),
            &json!({"email": alice.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(
        serde_json::from_str::<Value>(&reply.body).unwrap()["code"],
        "too_many_attempts"
    );

    // And the other way round: failures through the JSON API lock the page.
    for _ in 0..5 {
        let reply = api
            .post_json(
                &node.at("/auth/login"),
                &json!({"email": bob.email, "password": WRONG}),
            )
            .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let mut agent = Agent::new();
    let page = agent.get(&authz.url(&node)).await;
    let page = post_login(&node, &mut agent, &page, &bob.email, PASSWORD).await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(!sets_sso_cookie(&page));

    assert_eq!(count(&node, "sso.started").await, 0);
    assert_eq!(count(&node, "code.issued").await, 0);
}

async fn the_login_page_never_echoes_the_password(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "echo").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let secret_guess = "Zebra-Quartz-Guess-7781";
    // Even a password smuggled into the authorization request is not put into the page.
    let authz = Authz::new(&shop.client_id, &challenge).set("password", secret_guess);
    let mut agent = Agent::new();
    let page = agent.get(&authz.url(&node)).await;
    assert_login_page(&page);
    assert!(!page.body.contains(secret_guess), "{}", page.body);

    let page = post_login(&node, &mut agent, &page, &alice.email, secret_guess).await;
    assert_eq!(page.status, 401);
    assert!(!page.body.contains(secret_guess), "{}", page.body);
    assert!(
        !page.form_fields().contains_key("password"),
        "the password came back in a field"
    );
    let page = post_login(&node, &mut agent, &page, &alice.email, PASSWORD).await;
    assert_eq!(page.status, 303);
    assert!(!page.location.as_deref().unwrap().contains(secret_guess));
    assert!(!page.location.as_deref().unwrap().contains("horse"));
    // Nor does the audit trail keep it.
    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let dump = format!("{records:?}");
    assert!(!dump.contains(secret_guess) && !dump.contains(PASSWORD), "{dump}");
}

// --- 7. logout -----------------------------------------------------------------------------

async fn logout_without_a_matching_hint_asks_first(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "logout-ask").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let authz = Authz::without_pkce(&shop.client_id);
    let mut agent = Agent::new();
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    let tokens = redeem_ok(&node, &shop, &code, None).await;
    // A second browser, signed in too, with an ID token of its own session.
    let mut other = Agent::new();
    let code = sign_in_for_code(&node, &mut other, &authz, &alice.email).await;
    let other_tokens = redeem_ok(&node, &shop, &code, None).await;
    let other_hint = text(&other_tokens, "id_token");
    let before = trail(&node).await;

    // No hint: a confirmation page, and nothing ended.
    let own = format!("{REDIRECT}/logged-out");
    for url in [
        node.at(END_SESSION),
        logout_url(
            &node,
            &[
                ("client_id", &shop.client_id),
                ("post_logout_redirect_uri", &own),
                ("state", "s"),
            ],
        ),
        // Someone else's session's hint: no silent logout either.
        logout_url(&node, &[("id_token_hint", other_hint)]),
        logout_url(
            &node,
            &[("id_token_hint", other_hint), ("post_logout_redirect_uri", &own)],
        ),
    ] {
        let page = agent.get(&url).await;
        assert_logout_confirm_page(&page);
    }
    let page = agent
        .post_form(&node.at(END_SESSION), &[("client_id", &shop.client_id)])
        .await;
    assert_logout_confirm_page(&page);
    assert!(signed_in(&node, &agent).await && signed_in(&node, &other).await);
    assert_eq!(trail(&node).await, before, "nothing was ended");
    // The SSO cookie still works for a new authorization.
    let code = sso_code(&node, &mut agent, &authz).await;
    redeem_ok(&node, &shop, &code, None).await;

    // Confirming signs this browser out — and only this one.
    let page = agent.get(&node.at(END_SESSION)).await;
    let mut form = page.form_fields();
    form.insert("decision".into(), "logout".into());
    let page = agent.post_form(&node.at(LOGOUT_CONFIRM), &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(clears_sso_cookie(&page));
    assert!(!signed_in(&node, &agent).await);
    assert_eq!(
        node.introspect(&shop, text(&tokens, "access_token")).await["active"],
        false
    );
    assert_invalid_grant(
        &node.refresh(&shop, text(&tokens, "refresh_token")).await,
        "refresh after logout",
    );
    assert_login_page(&agent.get(&authz.url(&node)).await);
    assert!(signed_in(&node, &other).await);
    assert_eq!(
        node.introspect(&shop, text(&other_tokens, "access_token")).await["active"],
        true
    );
}

async fn cancelling_logout_does_not_claim_the_user_signed_out(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "logout-cancel").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let mut agent = Agent::new();
    sign_in_for_code(
        &node,
        &mut agent,
        &Authz::new(&shop.client_id, &challenge),
        &alice.email,
    )
    .await;
    let page = agent.get(&node.at(END_SESSION)).await;
    assert_logout_confirm_page(&page);
    let mut form = page.form_fields();
    form.insert("decision".into(), "cancel".into());
    let page = agent.post_form(&node.at(LOGOUT_CONFIRM), &form).await;
    assert!(!clears_sso_cookie(&page));
    assert!(signed_in(&node, &agent).await, "cancel signed the user out");
    // A user who chose to stay signed in must not be told the opposite (on a shared
    // computer they would walk away signed in).
    assert!(!page.body.contains("You have signed out"), "{}", page.body);
}

async fn logout_refuses_invalid_id_token_hints(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "hint").await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let mut agent = Agent::new();
    let code = sign_in_for_code(
        &node,
        &mut agent,
        &Authz::without_pkce(&shop.client_id),
        &alice.email,
    )
    .await;
    let tokens = redeem_ok(&node, &shop, &code, None).await;
    let id_token = text(&tokens, "id_token");
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let (_, claims) = verify_jwt(&node, id_token, &shop.client_id).await;

    // The same claims under an HMAC keyed with public knowledge (alg confusion), and that
    // payload spliced under the real signature.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = jsonwebtoken::decode_header(id_token).unwrap().kid;
    let hs = jsonwebtoken::encode(&hs_header, &claims, &EncodingKey::from_secret(b"public")).unwrap();
    let mut other_claims = claims.clone();
    other_claims["sid"] = json!("another-session");
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &other_claims,
        &EncodingKey::from_secret(b"x"),
    )
    .unwrap();
    let forged_payload = forged.split('.').nth(1).unwrap();
    let flipped = {
        let mut sig = parts[2].to_owned();
        let last = sig.pop().unwrap();
        sig.push(if last == 'A' { 'B' } else { 'A' });
        sig
    };
    // {"alg":"none","typ":"JWT"}
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let hints = [
        ("garbage", "garbage".to_owned()),
        (
            "flipped signature",
            format!("{}.{}.{flipped}", parts[0], parts[1]),
        ),
        (
            "spliced payload",
            format!("{}.{forged_payload}.{}", parts[0], parts[2]),
        ),
        ("alg none", format!("{none_header}.{}.", parts[1])),
        ("HS256 with the kid", hs),
        ("no signature", format!("{}.{}", parts[0], parts[1])),
        ("an access token", text(&tokens, "access_token").to_owned()),
    ];
    let before = trail(&node).await;
    for (what, hint) in &hints {
        let page = agent.get(&logout_url(&node, &[("id_token_hint", hint)])).await;
        assert_error_page(&page, 400, what);
        assert!(!clears_sso_cookie(&page), "{what}");
        let page = agent
            .get(&logout_url(
                &node,
                &[
                    ("id_token_hint", hint),
                    ("post_logout_redirect_uri", &format!("{REDIRECT}/logged-out")),
                ],
            ))
            .await;
        assert_error_page(&page, 400, what);
    }
    assert!(signed_in(&node, &agent).await);
    assert_eq!(
        node.introspect(&shop, text(&tokens, "access_token")).await["active"],
        true
    );
    assert_eq!(trail(&node).await, before);
    // The genuine hint signs out at once.
    let page = agent
        .get(&logout_url(&node, &[("id_token_hint", id_token)]))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(clears_sso_cookie(&page));
    assert!(!signed_in(&node, &agent).await);
}

// --- back-channel logout -------------------------------------------------------------------

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    content_type: Option<String>,
    body: String,
}

/// A back-channel logout endpoint on 127.0.0.1 answering every request with `status`.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/backchannel-logout", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    if let Some(request) = read_request(&stream).await {
                        log.lock().unwrap().push(request);
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} Whatever\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    write_all(&stream, reply.as_bytes()).await;
                });
            }
        });
        Receiver { url, seen, task }
    }

    fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (up to `within`) until `n` requests have arrived; returns all there are.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        while self.received().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }
}

/// One HTTP/1.1 request with a `Content-Length` body, read from a tokio socket.
async fn read_request(stream: &tokio::net::TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let field = |name: &str| {
                head.lines().skip(1).find_map(|line| {
                    let (n, v) = line.split_once(':')?;
                    n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            };
            let length: usize = field("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(Received {
                    request_line: head.lines().next().unwrap_or("").to_owned(),
                    content_type: field("content-type"),
                    body: String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned(),
                });
            }
        }
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
    }
}

async fn write_all(stream: &tokio::net::TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        if stream.writable().await.is_err() {
            return;
        }
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    }
}

/// The `logout_token` of a back-channel request.
fn logout_token_of(request: &Received) -> String {
    assert!(
        request.request_line.starts_with("POST /backchannel-logout "),
        "{request:?}"
    );
    assert!(
        request
            .content_type
            .as_deref()
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")),
        "{request:?}"
    );
    let url = reqwest::Url::parse(&format!("http://x/?{}", request.body)).unwrap();
    let fields: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0].0, "logout_token");
    fields[0].1.clone()
}

async fn backchannel_logout_delivers_a_verifiable_logout_token(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "backchannel").await;
    let receiver = Receiver::start(200).await;
    let bystander = Receiver::start(200).await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, Some(&receiver.url))
        .await;
    // A client the user never used: it hears nothing.
    node.create_oidc_client("partner-app", false, PARTNER_REDIRECT, true, Some(&bystander.url))
        .await;
    let mut agent = Agent::new();
    let code = sign_in_for_code(
        &node,
        &mut agent,
        &Authz::without_pkce(&shop.client_id),
        &alice.email,
    )
    .await;
    let tokens = redeem_ok(&node, &shop, &code, None).await;
    let (_, id_claims) = verify_jwt(&node, text(&tokens, "id_token"), &shop.client_id).await;
    assert!(receiver.received().is_empty());

    let page = agent
        .get(&logout_url(
            &node,
            &[("id_token_hint", text(&tokens, "id_token"))],
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let token = logout_token_of(&received[0]);

    let (header, claims) = verify_jwt(&node, &token, &shop.client_id).await;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(claims["iss"], node.url.as_str());
    assert_eq!(claims["aud"], "shop-web");
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["sid"], id_claims["sid"], "{claims}");
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["events"][BACKCHANNEL_EVENT].is_object(), "{claims}");
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims["iat"].as_i64().is_some() && claims["exp"].as_i64() > claims["iat"].as_i64());

    // Exactly once, and only to the client that had a session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
    assert!(bystander.received().is_empty(), "{:?}", bystander.received());
    assert_eq!(count(&node, "logout.backchannel_delivered").await, 1);
    assert_eq!(count(&node, "logout.backchannel_failed").await, 0);
}

async fn backchannel_logout_retries_a_failing_endpoint_three_times(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "backchannel-500").await;
    let receiver = Receiver::start(500).await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, Some(&receiver.url))
        .await;
    let mut agent = Agent::new();
    let code = sign_in_for_code(
        &node,
        &mut agent,
        &Authz::without_pkce(&shop.client_id),
        &alice.email,
    )
    .await;
    let tokens = redeem_ok(&node, &shop, &code, None).await;
    sign_out_through_confirmation(&node, &mut agent).await;
    // The logout itself is not held up by the failing client.
    assert_eq!(
        node.introspect(&shop, text(&tokens, "access_token")).await["active"],
        false
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(&node, "logout.backchannel_failed").await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            event: Some("logout.backchannel_failed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "no logout.backchannel_failed record");
    assert_eq!(records[0].client_id.as_deref(), Some("shop-web"));
    assert_eq!(records[0].subject.as_deref(), Some(alice.id.as_str()));
    let detail: Value = serde_json::from_str(records[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["attempts"], 3, "{detail}");
    let received = receiver.received();
    assert_eq!(received.len(), 3, "{received:?}");
    // Each attempt signs a fresh token (own jti; none is stored) for the same logout.
    let mut jtis = Vec::new();
    for request in &received {
        let (_, claims) = verify_jwt(&node, &logout_token_of(request), &shop.client_id).await;
        assert_eq!(claims["sub"], alice.id.as_str());
        assert_eq!(claims["aud"], "shop-web");
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "{jtis:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.received().len(), 3, "no attempt after giving up");
    assert_eq!(count(&node, "logout.backchannel_delivered").await, 0);
    // Nothing is left in the outbox.
    let now = node.state.clock.now();
    let left = node
        .state
        .db
        .claim_backchannel(now + 3600, now + 3600, 10)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// A notification in the durable outbox is delivered by the outbox job even when the node
/// that queued it never attempted it (it died): no retry depends on one process.
async fn backchannel_logout_outbox_survives_the_node_that_queued_it(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "backchannel-orphan").await;
    let receiver = Receiver::start(200).await;
    node.create_oidc_client("shop-web", false, REDIRECT, true, Some(&receiver.url))
        .await;
    let now = node.state.clock.now();
    // As a node that died right after queueing leaves it: claimed for 30 s, not attempted.
    let record = OutboxRecord {
        id: "orphan-1".into(),
        client_id: "shop-web".into(),
        uri: receiver.url.clone(),
        user_id: alice.id.clone(),
        sso_session_id: "sso-of-a-dead-node".into(),
        attempts: 0,
        next_attempt_at: now + 30,
        created_at: now,
        last_error: None,
    };
    node.state.db.enqueue_backchannel(&record).await.unwrap();
    // Not before its claim runs out…
    node.state.provider.deliver_due_backchannel().await.unwrap();
    assert!(receiver.received().is_empty());
    // …then by whichever node runs the outbox job.
    node.clock.advance(31);
    // The job runs every second; the wait is long because a loaded machine running the
    // whole suite against one PostgreSQL has made 10 s too short (twice, on PostgreSQL
    // only). Should it fail again, the audit trail says what the job did.
    let received = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(received.len(), 1, "{received:?}; audit: {:?}", trail(&node).await);
    let (_, claims) = verify_jwt(&node, &logout_token_of(&received[0]), "shop-web").await;
    assert_eq!(claims["sid"], "sso-of-a-dead-node");
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(count(&node, "logout.backchannel_delivered").await, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "delivered once");
}

// --- 8. userinfo ---------------------------------------------------------------------------

async fn userinfo_wants_a_live_user_token_with_openid(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "userinfo").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let machine = register(&node, "machine", |c| {
        c.grant_types = vec!["client_credentials".into()]
    })
    .await;
    let url = node.at(USERINFO);

    // No token, or not a Bearer one: 401 with a challenge.
    for (what, request) in [
        ("no token", node.client.get(&url)),
        ("Basic", node.client.get(&url).basic_auth("shop-web", Some("x"))),
        (
            "empty Bearer",
            node.client.get(&url).header("authorization", "Bearer "),
        ),
        ("garbage", node.client.get(&url).bearer_auth("garbage")),
        ("POST without a token", node.client.post(&url)),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{what}");
        let challenge = header(response.headers(), WWW_AUTHENTICATE).unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
    }

    // A client's own token, even with openid: 403 insufficient_scope.
    let (status, body) = token_request(
        &node,
        &machine,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let response = node
        .client
        .get(&url)
        .bearer_auth(text(&body, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(header(response.headers(), WWW_AUTHENTICATE)
        .unwrap_or_default()
        .contains("insufficient_scope"));
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "insufficient_scope");

    // A user's token without openid: 403 too.
    let mut agent = Agent::new();
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let code = sign_in_for_code(
        &node,
        &mut agent,
        &authz.clone().set("scope", "email profile"),
        &alice.email,
    )
    .await;
    let no_openid = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    assert!(no_openid.get("id_token").is_none(), "{no_openid}");
    let (status, body) = node.get_bearer(USERINFO, text(&no_openid, "access_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope")),
        "{body}"
    );

    // With openid: GET and POST answer alike, with the scope's claims.
    let code = sso_code(&node, &mut agent, &authz).await;
    let tokens = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    let access = text(&tokens, "access_token");
    let (status, info) = node.get_bearer(USERINFO, access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], alice.id.as_str());
    assert_eq!(info["email"], alice.email.as_str());
    let response = node.client.post(&url).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), info);
    // Never in the query string (invalid_request); the form body of a POST is RFC 6750
    // §2.2's other way, answered as the header is (more in claims.rs).
    let response = node
        .client
        .get(format!("{url}?access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = node
        .client
        .post(&url)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), info);
    // An ID token is not an access token.
    assert_eq!(userinfo_status(&node, text(&tokens, "id_token")).await, 401);

    // Revoked: 401.
    let response = node
        .post_form(
            "/oauth2/revoke",
            &shop,
            &[("token", access), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = node.client.get(&url).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(header(response.headers(), WWW_AUTHENTICATE)
        .unwrap_or_default()
        .contains("invalid_token"));
    assert_eq!(
        node.client
            .post(&url)
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Refresh-token revocation ends the session and with it every access token of it.
    let code = sso_code(&node, &mut agent, &authz).await;
    let tokens = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    assert_eq!(userinfo_status(&node, text(&tokens, "access_token")).await, 200);
    let response = node
        .post_form(
            "/oauth2/revoke",
            &shop,
            &[("token", text(&tokens, "refresh_token"))],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(userinfo_status(&node, text(&tokens, "access_token")).await, 401);
}

// --- 9. CORS -------------------------------------------------------------------------------

async fn preflight(node: &TestNode, path: &str, origin: &str) -> HeaderMap {
    let response = node
        .client
        .request(Method::OPTIONS, node.at(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), 404, "{path}");
    response.headers().clone()
}

/// Registers a public browser app whose origin is `https://shop.example`.
async fn register_spa(node: &TestNode) -> TestClient {
    register(node, "spa", |c| {
        c.secret_hash = None;
        c.token_endpoint_auth_method = "none".into();
        c.allowed_cors_origins = vec!["https://shop.example".into()];
    })
    .await
}

const REGISTERED_ORIGIN: &str = "https://shop.example";

/// Origins no client registered, some of them close to [`REGISTERED_ORIGIN`].
const STRANGE_ORIGINS: [&str; 6] = [
    "https://evil.example",
    "https://shop.example.evil.com",
    "http://shop.example",
    "https://shop.example:8443",
    "https://SHOP.example",
    "null",
];

async fn cors_allows_only_registered_origins_and_never_credentials(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    register_spa(&node).await;

    // Actual requests: the registered origin is echoed, without credentials.
    let requests = |origin: &str| {
        [
            node.client
                .post(node.at(TOKEN))
                .header("origin", origin)
                .form(&[("grant_type", "client_credentials")]),
            node.client
                .get(node.at(USERINFO))
                .header("origin", origin)
                .bearer_auth("garbage"),
            node.client
                .post(node.at(USERINFO))
                .header("origin", origin)
                .bearer_auth("garbage"),
            node.client
                .post(node.at("/oauth2/revoke"))
                .header("origin", origin)
                .form(&[("token", "x")]),
            node.client
                .post(node.at("/oauth2/introspect"))
                .header("origin", origin)
                .form(&[("token", "x")]),
        ]
    };
    for request in requests(REGISTERED_ORIGIN) {
        let response = request.send().await.unwrap();
        let what = response.url().path().to_owned();
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            Some(REGISTERED_ORIGIN),
            "{what}"
        );
        assert_ne!(
            header(response.headers(), "access-control-allow-credentials"),
            Some("true"),
            "{what}"
        );
    }
    for origin in STRANGE_ORIGINS {
        for request in requests(origin) {
            let response = request.send().await.unwrap();
            let what = format!("{} from {origin}", response.url().path());
            assert!(
                response.headers().get("access-control-allow-origin").is_none(),
                "{what}"
            );
            assert_ne!(
                header(response.headers(), "access-control-allow-credentials"),
                Some("true"),
                "{what}"
            );
        }
        // Nor does a preflight from there get a go-ahead.
        for path in [TOKEN, USERINFO, "/oauth2/revoke", "/oauth2/introspect"] {
            let headers = preflight(&node, path, origin).await;
            assert!(
                headers.get("access-control-allow-origin").is_none(),
                "{path} from {origin}: {headers:?}"
            );
        }
    }
    // The hosted pages are not readable cross-origin.
    for path in [AUTHORIZE, END_SESSION] {
        let response = node
            .client
            .get(node.at(path))
            .header("origin", REGISTERED_ORIGIN)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    // Public documents: any origin, without credentials.
    for path in ["/.well-known/jwks.json", "/.well-known/openid-configuration"] {
        let response = node
            .client
            .get(node.at(path))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        assert_ne!(
            header(response.headers(), "access-control-allow-credentials"),
            Some("true")
        );
    }
}

async fn cors_preflight_from_a_registered_origin_is_answered(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    register_spa(&node).await;
    // A browser app sends `Authorization` to userinfo (and Basic or JSON elsewhere): the
    // browser asks first, and without an answer the call never happens.
    for path in [TOKEN, USERINFO, "/oauth2/revoke", "/oauth2/introspect"] {
        let headers = preflight(&node, path, REGISTERED_ORIGIN).await;
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(REGISTERED_ORIGIN),
            "{path}: {headers:?}"
        );
        assert!(
            header(&headers, "access-control-allow-methods").is_some_and(|m| m.contains("POST")),
            "{path}: {headers:?}"
        );
        assert!(
            header(&headers, "access-control-allow-headers")
                .is_some_and(|h| h.to_ascii_lowercase().contains("authorization")),
            "{path}: {headers:?}"
        );
        assert_ne!(
            header(&headers, "access-control-allow-credentials"),
            Some("true"),
            "{path}"
        );
    }
}

// --- 10. discovery -------------------------------------------------------------------------

async fn discovery(node: &TestNode) -> Value {
    let (status, metadata) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    assert_eq!(metadata["issuer"], node.url.as_str());
    metadata
}

fn list(metadata: &Value, name: &str) -> Vec<String> {
    metadata[name]
        .as_array()
        .unwrap_or_else(|| panic!("{name} missing"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn every_discovered_endpoint_answers(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let metadata = discovery(&node).await;
    let endpoints = [
        ("authorization_endpoint", Method::GET, 400),
        ("token_endpoint", Method::POST, 400),
        ("userinfo_endpoint", Method::GET, 401),
        ("jwks_uri", Method::GET, 200),
        ("end_session_endpoint", Method::GET, 200),
        ("revocation_endpoint", Method::POST, 401),
        ("introspection_endpoint", Method::POST, 401),
        ("device_authorization_endpoint", Method::POST, 401),
        ("pushed_authorization_request_endpoint", Method::POST, 401),
    ];
    let mut seen = Vec::new();
    for (name, method, expected) in endpoints {
        let url = metadata[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(url.starts_with(&format!("{}/", node.url)), "{name}: {url}");
        let response = node
            .client
            .request(method.clone(), url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status != 404 && status != 405, "{name} {url}: {status}");
        assert_eq!(status, expected, "{name} {url}");
        seen.push(name);
    }
    // Every `*_endpoint` / `*_uri` member is one of those checked.
    for (name, value) in metadata.as_object().unwrap() {
        if (name.ends_with("_endpoint") || name.ends_with("_uri")) && value.is_string() {
            assert!(
                seen.contains(&name.as_str()),
                "{name} is advertised but not checked"
            );
        }
    }
}

async fn advertised_grants_and_client_authentication_work_and_nothing_else(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let metadata = discovery(&node).await;
    let alice = person(&node, "grants").await;
    let spa = node.create_oidc_client("spa", true, REDIRECT, true, None).await;
    let legacy = register(&node, "legacy", |c| {
        c.grant_types = vec!["password".into(), "refresh_token".into()]
    })
    .await;
    let basic = register(&node, "basic", |c| {
        c.grant_types = vec!["client_credentials".into()]
    })
    .await;
    let poster = register(&node, "poster", |c| {
        c.grant_types = vec!["client_credentials".into()];
        c.token_endpoint_auth_method = "client_secret_post".into();
    })
    .await;
    let post_secret = poster.secret.unwrap();
    // The JWT methods (RFC 7523): one client of each, registered as an operator would.
    let registry = tessera_idp::registry::ClientRegistry::new(&node.state);
    let hmac_spec = json!({"client_id": "hmac", "client_name": "hmac", "token_endpoint_auth_method": "client_secret_jwt", "grant_types": ["client_credentials"]});
    let (_, hmac_secret) = registry
        .create(serde_json::from_value(hmac_spec).unwrap())
        .await
        .unwrap();
    let hmac_secret = hmac_secret.unwrap();
    let keyed_key = crate::client_auth::KeyPair::es256("k1");
    let keyed_spec = json!({"client_id": "keyed", "client_name": "keyed", "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"], "jwks": crate::client_auth::KeyPair::jwks(&[&keyed_key])});
    registry
        .create(serde_json::from_value(keyed_spec).unwrap())
        .await
        .unwrap();
    let assertion = |method: &str| {
        let now = node.clock.now();
        let (id, alg, key) = match method {
            "client_secret_jwt" => (
                "hmac",
                Algorithm::HS256,
                EncodingKey::from_secret(hmac_secret.as_bytes()),
            ),
            _ => ("keyed", Algorithm::ES256, keyed_key.encoding.clone()),
        };
        let claims = json!({"iss": id, "sub": id, "aud": node.url, "exp": now + 60, "jti": format!("{method}-{}", tessera_testkit::random_u64())});
        jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
    };
    let with_assertion = |path: &str, method: &str, fields: &[(&str, &str)]| {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        form.push((
            "client_assertion_type".into(),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ));
        form.push(("client_assertion".into(), assertion(method)));
        node.client.post(node.at(path)).form(&form).send()
    };
    let tv = register(&node, "tv", |c| {
        c.grant_types = vec![DEVICE_CODE.into()];
    })
    .await;

    // Each advertised grant type works.
    let mut refresh_token = None;
    for grant in list(&metadata, "grant_types_supported") {
        match grant.as_str() {
            "authorization_code" => {
                let mut agent = Agent::new();
                let (verifier, challenge) = pkce_pair();
                let code = sign_in_for_code(
                    &node,
                    &mut agent,
                    &Authz::new(&spa.client_id, &challenge),
                    &alice.email,
                )
                .await;
                let tokens = redeem_ok(&node, &spa, &code, Some(&verifier)).await;
                refresh_token = Some(text(&tokens, "refresh_token").to_owned());
            }
            "refresh_token" => {} // below, once a refresh token exists
            "client_credentials" => {
                let (status, body) =
                    token_request(&node, &basic, &[("grant_type", "client_credentials")]).await;
                assert_eq!(status, 200, "{body}");
            }
            "password" => {
                let (status, body) = token_request(
                    &node,
                    &legacy,
                    &[
                        ("grant_type", "password"),
                        ("username", &alice.email),
                        ("password", PASSWORD),
                        ("scope", "openid"),
                    ],
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
            DEVICE_CODE => {
                // Accepted: a fresh device code is pending until the user answers (the
                // whole flow is in device.rs).
                let response = node.post_form("/oauth2/device_authorization", &tv, &[]).await;
                let status = response.status().as_u16();
                let started: Value = response.json().await.unwrap();
                assert_eq!(status, 200, "{started}");
                let answer = token_request(
                    &node,
                    &tv,
                    &[
                        ("grant_type", grant.as_str()),
                        ("device_code", started["device_code"].as_str().unwrap()),
                    ],
                )
                .await;
                assert_oauth_error(&answer, 400, "authorization_pending", &grant);
            }
            other => panic!("advertised grant type {other} has no test"),
        }
    }
    let (status, body) = node
        .refresh(&spa, &refresh_token.expect("authorization_code is advertised"))
        .await;
    assert_eq!(status, 200, "{body}");
    // Grant types not advertised do not work.
    for grant in [
        "implicit",
        "token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:saml2-bearer",
    ] {
        let answer = token_request(&node, &basic, &[("grant_type", grant)]).await;
        assert_oauth_error(&answer, 400, "unsupported_grant_type", grant);
    }

    // Each advertised client authentication method works at the token endpoint.
    for method in list(&metadata, "token_endpoint_auth_methods_supported") {
        let (status, body) = match method.as_str() {
            "client_secret_basic" => {
                token_request(&node, &basic, &[("grant_type", "client_credentials")]).await
            }
            "client_secret_post" => {
                let response = node
                    .client
                    .post(node.at(TOKEN))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", "poster"),
                        ("client_secret", &post_secret),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json().await.unwrap())
            }
            "none" => {
                let mut agent = Agent::new();
                let (verifier, challenge) = pkce_pair();
                let code = sign_in_for_code(
                    &node,
                    &mut agent,
                    &Authz::new(&spa.client_id, &challenge),
                    &alice.email,
                )
                .await;
                redeem(&node, &spa, &code, Some(&verifier)).await
            }
            "client_secret_jwt" | "private_key_jwt" => {
                let response = with_assertion(TOKEN, &method, &[("grant_type", "client_credentials")])
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json().await.unwrap())
            }
            other => panic!("advertised auth method {other} has no test"),
        };
        assert_eq!(status, 200, "{method}: {body}");
    }
    // A client_secret_basic client cannot switch to client_secret_jwt on its own.
    let assertion = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"iss": "basic", "sub": "basic", "aud": node.at(TOKEN), "exp": node.clock.now() + 60, "jti": "j1"}),
        &EncodingKey::from_secret(basic.secret.as_deref().unwrap().as_bytes()),
    )
    .unwrap();
    for with_id in [true, false] {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        if with_id {
            form.push(("client_id", "basic"));
        }
        let response = node.client.post(node.at(TOKEN)).form(&form).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_oauth_error(&(status, body), 401, "invalid_client", "client_secret_jwt");
    }
    // A client uses the method it registered, not another advertised one.
    let response = node
        .client
        .post(node.at(TOKEN))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "basic"),
            ("client_secret", basic.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "client_secret_post for a client_secret_basic client"
    );

    // Revocation: every advertised method; introspection: advertised ones, and not `none`.
    for method in list(&metadata, "revocation_endpoint_auth_methods_supported") {
        let response = match method.as_str() {
            "client_secret_basic" => {
                node.post_form("/oauth2/revoke", &basic, &[("token", "unknown")])
                    .await
            }
            "client_secret_post" => node
                .client
                .post(node.at("/oauth2/revoke"))
                .form(&[
                    ("token", "unknown"),
                    ("client_id", "poster"),
                    ("client_secret", &post_secret),
                ])
                .send()
                .await
                .unwrap(),
            "none" => {
                node.post_form("/oauth2/revoke", &spa, &[("token", "unknown")])
                    .await
            }
            "client_secret_jwt" | "private_key_jwt" => {
                with_assertion("/oauth2/revoke", &method, &[("token", "unknown")])
                    .await
                    .unwrap()
            }
            other => panic!("advertised revocation auth method {other} has no test"),
        };
        assert_eq!(response.status(), 200, "revocation with {method}");
    }
    let methods = list(&metadata, "introspection_endpoint_auth_methods_supported");
    assert!(!methods.contains(&"none".to_owned()));
    for method in &methods {
        let response = match method.as_str() {
            "client_secret_basic" => {
                node.post_form("/oauth2/introspect", &basic, &[("token", "unknown")])
                    .await
            }
            "client_secret_post" => node
                .client
                .post(node.at("/oauth2/introspect"))
                .form(&[
                    ("token", "unknown"),
                    ("client_id", "poster"),
                    ("client_secret", &post_secret),
                ])
                .send()
                .await
                .unwrap(),
            "client_secret_jwt" | "private_key_jwt" => {
                with_assertion("/oauth2/introspect", method, &[("token", "unknown")])
                    .await
                    .unwrap()
            }
            other => panic!("advertised introspection auth method {other} has no test"),
        };
        assert_eq!(response.status(), 200, "introspection with {method}");
    }
    let response = node
        .post_form("/oauth2/introspect", &spa, &[("token", "unknown")])
        .await;
    assert!(
        response.status().is_client_error(),
        "introspection without authentication"
    );
}

async fn advertised_authorization_values_work_and_nothing_else(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let metadata = discovery(&node).await;
    let alice = person(&node, "values").await;
    let spa = node.create_oidc_client("spa", true, REDIRECT, true, None).await;
    let partner = node
        .create_oidc_client("partner-app", true, REDIRECT, false, None)
        .await;
    let (verifier, challenge) = pkce_pair();
    let scopes = list(&metadata, "scopes_supported").join(" ");
    let authz = Authz::new(&spa.client_id, &challenge).set("scope", &scopes);
    let mut agent = Agent::new();
    let code = sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    let tokens = redeem_ok(&node, &spa, &code, Some(&verifier)).await;

    // Claims, signing algorithm, iss in the response.
    let (header, claims) = verify_jwt(&node, text(&tokens, "id_token"), &spa.client_id).await;
    let algs = list(&metadata, "id_token_signing_alg_values_supported");
    assert!(algs.contains(&format!("{:?}", header.alg)), "{algs:?}");
    let supported = list(&metadata, "claims_supported");
    for claim in claims.as_object().unwrap().keys() {
        assert!(
            supported.contains(claim),
            "ID token claim {claim} is not in claims_supported"
        );
    }
    let (_, info) = node.get_bearer(USERINFO, text(&tokens, "access_token")).await;
    for claim in info.as_object().unwrap().keys() {
        assert!(
            supported.contains(claim),
            "userinfo claim {claim} is not in claims_supported"
        );
    }
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
    assert_eq!(metadata["subject_types_supported"], json!(["public"]));

    // response_type, response_mode and code_challenge_method: advertised values work …
    for response_type in list(&metadata, "response_types_supported") {
        assert!(at_client(
            &agent
                .get(&authz.clone().set("response_type", &response_type).url(&node))
                .await
        )
        .contains_key("code"));
    }
    for mode in list(&metadata, "response_modes_supported") {
        assert!(at_client(
            &agent
                .get(&authz.clone().set("response_mode", &mode).url(&node))
                .await
        )
        .contains_key("code"));
    }
    for method in list(&metadata, "code_challenge_methods_supported") {
        assert_eq!(method, "S256", "a new method needs a test here");
        let code = sso_code(
            &node,
            &mut agent,
            &authz.clone().set("code_challenge_method", &method),
        )
        .await;
        redeem_ok(&node, &spa, &code, Some(&verifier)).await;
    }
    // … others do not.
    let mut refusals: Vec<(Authz, &str)> = Vec::new();
    for response_type in [
        "token",
        "id_token",
        "code id_token",
        "code token",
        "id_token token",
        "none",
    ] {
        refusals.push((
            authz.clone().set("response_type", response_type),
            "unsupported_response_type",
        ));
    }
    for mode in ["fragment", "form_post", "query.jwt", "web_message"] {
        refusals.push((authz.clone().set("response_mode", mode), "invalid_request"));
    }
    refusals.push((
        authz
            .clone()
            .set("code_challenge", &verifier)
            .set("code_challenge_method", "plain"),
        "invalid_request",
    ));
    refusals.push((
        authz.clone().set("request", "eyJhbGciOiJub25lIn0.e30."),
        "request_not_supported",
    ));
    refusals.push((
        authz.clone().set("request_uri", "urn:example:req"),
        "request_uri_not_supported",
    ));
    refusals.push((authz.clone().set("prompt", "select_account"), "invalid_request"));
    for (request, error) in &refusals {
        let page = agent.get(&request.url(&node)).await;
        assert_client_error(&node, &page, error, "st-1", error);
    }
    // Request objects by value are supported for clients that register an algorithm
    // (request_objects.rs); this client registered none.
    assert_eq!(metadata["request_parameter_supported"], true);
    for (name, value) in [
        ("request_uri_parameter_supported", false),
        // What the claims parameter does is shown in claims.rs.
        ("claims_parameter_supported", true),
    ] {
        assert_eq!(metadata[name], value, "{name}");
    }
    // Each advertised display value is accepted; another is not.
    for display in list(&metadata, "display_values_supported") {
        assert!(at_client(
            &agent
                .get(&authz.clone().set("display", &display).url(&node))
                .await
        )
        .contains_key("code"));
    }
    let page = agent.get(&authz.clone().set("display", "tv").url(&node)).await;
    assert_client_error(&node, &page, "invalid_request", "st-1", "display=tv");

    // Each advertised prompt value does what it says (third-party client, consent given).
    let third = Authz::new(&partner.client_id, &challenge);
    let page = agent.get(&third.url(&node)).await;
    let mut form = page.form_fields();
    form.insert("decision".into(), "allow".into());
    assert!(at_client(&agent.post_form(&node.at(CONSENT_FORM), &form).await).contains_key("code"));
    for prompt in list(&metadata, "prompt_values_supported") {
        let page = agent.get(&third.clone().set("prompt", &prompt).url(&node)).await;
        match prompt.as_str() {
            "none" => assert!(at_client(&page).contains_key("code")),
            "login" => assert_login_page(&page),
            "consent" => assert_consent_page(&page),
            other => panic!("advertised prompt {other} has no test"),
        }
    }
    // Each advertised UI locale is used.
    let mut stranger = Agent::new();
    for locale in list(&metadata, "ui_locales_supported") {
        let page = stranger
            .get(&authz.clone().set("ui_locales", &locale).url(&node))
            .await;
        assert!(
            page.body.contains(&format!("<html lang=\"{locale}\">")),
            "{locale}"
        );
    }
}

// --- a password change signs other browsers out -----------------------------------------

async fn a_password_change_ends_other_browsers_sign_in_at_the_provider(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "pwchange").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    // Someone who knows the password signs in through the hosted page …
    let mut intruder = Agent::new();
    let code = sign_in_for_code(&node, &mut intruder, &authz, &alice.email).await;
    let stolen = redeem_ok(&node, &shop, &code, Some(&verifier)).await;
    // … and the owner changes it through the first-party API.
    let mut owner = Agent::new();
    let reply = owner
        .post_json(
            &node.at("/auth/login"),
            &json!({"email": alice.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let access: Value = serde_json::from_str(&reply.body).unwrap();
    let response = node
        .client
        .post(node.at("/auth/password/change"))
        .bearer_auth(text(&access, "accessToken"))
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "violet tractor whispers at dawn 7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // The intruder's tokens are gone, and so must be the browser sign-in that mints more.
    assert_eq!(userinfo_status(&node, text(&stolen, "access_token")).await, 401);
    let page = intruder.get(&authz.url(&node)).await;
    assert_eq!(
        page.status, 200,
        "the old password's SSO session still issues codes: {:?}",
        page.location
    );
    assert_login_page(&page);
}

// --- disabling ends the browser session too -----------------------------------------------

async fn disabling_a_user_ends_their_sign_in_at_the_provider(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let alice = person(&node, "disable").await;
    let shop = node
        .create_oidc_client("shop-web", true, REDIRECT, true, None)
        .await;
    let (verifier, challenge) = pkce_pair();
    let authz = Authz::new(&shop.client_id, &challenge);
    let mut agent = Agent::new();
    sign_in_for_code(&node, &mut agent, &authz, &alice.email).await;
    // A code issued before the disabling, held back.
    let early = sso_code(&node, &mut agent, &authz).await;
    node.state
        .accounts
        .disable(&alice.email, &context())
        .await
        .unwrap();
    assert_login_page(&agent.get(&authz.url(&node)).await);
    node.state
        .accounts
        .enable(&alice.email, &context())
        .await
        .unwrap();
    // "Disabling … ends every session" (README): the browser must sign in again, and what
    // the old sign-in issued is worthless.
    let page = agent.get(&authz.url(&node)).await;
    assert_eq!(
        page.status, 200,
        "the SSO session from before the disabling still issues codes: {:?}",
        page.location
    );
    assert_login_page(&page);
    assert_invalid_grant(
        &redeem(&node, &shop, &early, Some(&verifier)).await,
        "a code from before the disabling",
    );
    assert_eq!(token_sessions(&node, &alice.id).await, 0);
}
