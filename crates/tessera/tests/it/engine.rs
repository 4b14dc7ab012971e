//! The token engine end to end, on every backend: idle and absolute expiry, session limits,
//! the access-token verification checklist as seen through introspection, client
//! authentication abuse, revocation (RFC 7009), the revocation feed, the `/auth/*` session
//! endpoints, key rotation and the audit trail.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response};
use serde_json::{json, Value};
use tessera_idp::config::{ChannelPolicy, OnLimit};
use tessera_idp::tokens::access::AccessClaims;
use tessera_idp::tokens::TokenError;
use tessera_store::durable::{AuditQuery, AuditStore as _, SessionStore as _};
use tessera_testkit::{backend_tests, spawn, spawn_with, Backend, TestClient, TestNode};

backend_tests!(
    idle_timeout_ends_a_session_that_is_not_refreshed,
    extend_pushes_idle_expiry_out_by_the_idle_timeout,
    absolute_expiry_ends_a_session_however_often_it_is_refreshed,
    newest_wins_limit_revokes_the_oldest_session_of_that_user_and_channel,
    reject_limit_refuses_a_new_session_and_keeps_the_old_one,
    introspection_reports_a_valid_access_token_in_full,
    introspection_rejects_forged_and_broken_access_tokens,
    introspection_rejects_expired_tokens_after_the_leeway,
    introspection_of_refresh_tokens_is_for_their_own_client,
    introspection_rejects_an_empty_token_parameter,
    client_authentication_abuse_is_refused_and_changes_nothing,
    token_endpoint_refuses_unsupported_grants_and_missing_parameters,
    public_clients_may_not_introspect,
    revoking_a_refresh_token_ends_its_session,
    revoking_an_access_token_denies_only_that_token,
    revocation_refuses_other_clients_tokens_and_bad_hints,
    revocation_feed_pages_by_cursor_and_answers_conditionally,
    session_endpoints_require_exactly_one_valid_bearer_token,
    users_list_and_end_their_own_sessions_only,
    logout_ends_this_session_or_every_session_of_the_user,
    access_tokens_survive_a_key_rotation_and_new_ones_use_the_new_key,
    audit_trail_records_the_session_lifecycle_without_secrets,
    introspection_rejects_a_token_for_another_audience,
);

const TOKEN: &str = "/oauth2/token";
const REVOKE: &str = "/oauth2/revoke";
const INTROSPECT: &str = "/oauth2/introspect";
const FEED: &str = "/oauth2/revocations";
const FORM: &str = "application/x-www-form-urlencoded";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn now(node: &TestNode) -> i64 {
    tessera_idp::clock::Clock::now(node.clock.as_ref())
}

fn secret_of(client: &TestClient) -> &str {
    client.secret.as_deref().expect("a confidential client")
}

/// Status and body of a response; a body that is not JSON becomes a JSON string.
async fn status_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// `k=v&k=v`; every value used here is URL-safe already (base64url, dots, ids).
fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn post_raw(node: &TestNode, path: &str, body: String) -> RequestBuilder {
    node.client
        .post(node.at(path))
        .header(CONTENT_TYPE, FORM)
        .body(body)
}

/// Refreshes and returns the successor, failing the test unless the refresh worked.
async fn refresh_ok(node: &TestNode, client: &TestClient, token: &str) -> (String, String) {
    let (status, body) = node.refresh(client, token).await;
    assert_eq!(status, 200, "refresh failed: {body}");
    let refresh = body["refresh_token"].as_str().expect("refresh_token").to_owned();
    let access = body["access_token"].as_str().expect("access_token").to_owned();
    (refresh, access)
}

/// Asserts that a refresh fails with `invalid_grant`.
async fn refresh_fails(node: &TestNode, client: &TestClient, token: &str, why: &str) {
    let (status, body) = node.refresh(client, token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{why}: {body}"
    );
}

fn inactive() -> Value {
    json!({ "active": false })
}

async fn revoke(node: &TestNode, client: &TestClient, fields: &[(&str, &str)]) -> (u16, Value) {
    status_json(node.post_form(REVOKE, client, fields).await).await
}

async fn feed(node: &TestNode, after: Option<&str>) -> (String, Value, String) {
    let mut request = node.client.get(node.at(FEED));
    if let Some(after) = after {
        request = request.query(&[("after", after)]);
    }
    let response = request.send().await.expect("feed request");
    assert_eq!(response.status(), 200);
    let etag = response.headers()[ETAG].to_str().expect("ascii etag").to_owned();
    let body: Value = response.json().await.expect("feed is JSON");
    let cursor = body["cursor"].as_str().expect("cursor is a string").to_owned();
    (cursor, body, etag)
}

/// `(kind, value)` of every feed entry.
fn entries(feed: &Value) -> Vec<(String, String)> {
    feed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn sid(value: &str) -> (String, String) {
    ("sid".to_owned(), value.to_owned())
}

fn jti(value: &str) -> (String, String) {
    ("jti".to_owned(), value.to_owned())
}

fn claims_of(token: &str) -> AccessClaims {
    jsonwebtoken::dangerous::insecure_decode_claims(token).expect("an access token")
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWS")
        .kid
        .expect("a kid")
}

/// A header like the node's own: ES256, `typ: at+jwt`, the current key's `kid`.
fn access_header(node: &TestNode) -> Header {
    let key = node
        .state
        .keys
        .signing_key(Algorithm::ES256)
        .expect("an ES256 signing key");
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid);
    header
}

/// Signs `claims` with the node's real ES256 key under `header`.
fn forge(node: &TestNode, header: &Header, claims: &AccessClaims) -> String {
    let key = node
        .state
        .keys
        .signing_key(Algorithm::ES256)
        .expect("an ES256 signing key");
    jsonwebtoken::encode(header, claims, &key.encoding).expect("signing")
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str, alphabet: &[u8; 64]) -> Vec<u8> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = alphabet.iter().position(|&a| a == c).expect("base64 character") as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

fn b64url(bytes: &[u8]) -> String {
    base64(bytes, B64URL, false)
}

/// Replaces one character of the signature part with another base64url character.
fn flip_signature(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').expect("a JWS");
    let mut chars: Vec<char> = signature.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    format!("{message}.{}", chars.into_iter().collect::<String>())
}

async fn bearer(node: &TestNode, method: reqwest::Method, path: &str, token: &str) -> Response {
    node.client
        .request(method, node.at(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request failed")
}

async fn list_sessions(node: &TestNode, token: &str) -> (u16, Value) {
    status_json(bearer(node, reqwest::Method::GET, "/auth/sessions", token).await).await
}

async fn extend(node: &TestNode, token: &str) -> (u16, Value) {
    status_json(bearer(node, reqwest::Method::POST, "/auth/session/extend", token).await).await
}

fn www_authenticate(response: &Response) -> String {
    response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// 1. Idle and absolute expiry
// ---------------------------------------------------------------------------------------

async fn idle_timeout_ends_a_session_that_is_not_refreshed(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    assert_eq!(node.config.sessions.idle_timeout_secs, 1800);
    let app = node.create_client("shop-web", false, "web").await;
    let idle = node.login("user-idle", &app).await.unwrap();
    let busy = node.login("user-busy", &app).await.unwrap();
    let idle_token = idle.refresh_token.secret().to_owned();
    let mut busy_token = busy.refresh_token.secret().to_owned();

    // The busy session is refreshed every 1000 s, the idle one never.
    node.clock.advance(1000);
    busy_token = refresh_ok(&node, &app, &busy_token).await.0;
    node.clock.advance(801); // 1801 s after login
    refresh_fails(&node, &app, &idle_token, "a session idle for 1801 s must be over").await;
    assert_eq!(node.introspect(&app, &idle_token).await, inactive());
    assert!(node
        .state
        .tokens
        .sessions_of("user-idle")
        .await
        .unwrap()
        .is_empty());
    for _ in 0..4 {
        // 2000, 3000, 4000, 5000 s after login: far past one idle timeout.
        node.clock.advance(199);
        busy_token = refresh_ok(&node, &app, &busy_token).await.0;
        node.clock.advance(801);
    }
    let (refreshed, access) = refresh_ok(&node, &app, &busy_token).await;
    let alive = node.state.tokens.sessions_of("user-busy").await.unwrap();
    assert_eq!(alive.len(), 1);
    assert_eq!(alive[0].idle_expires_at, now(&node) + 1800);
    assert_eq!(node.introspect(&app, &access).await["active"], true);

    // Idle again: 1801 s later even the busy session is over.
    node.clock.advance(1801);
    refresh_fails(&node, &app, &refreshed, "idle after its last refresh").await;
}

async fn extend_pushes_idle_expiry_out_by_the_idle_timeout(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-extend", &app).await.unwrap();
    let created = issued.session.created_at;
    let absolute = issued.session.absolute_expires_at;
    assert_eq!(absolute, created + 30 * 86_400);
    assert_eq!(issued.session.idle_expires_at, created + 1800);

    node.clock.advance(500);
    let (status, body) = extend(&node, &issued.access_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessionId"], issued.session.id.as_str());
    assert_eq!(body["idleExpiresAt"], now(&node) + 1800);
    assert_eq!(body["absoluteExpiresAt"], absolute);

    // Past the original idle expiry (login + 1800) the session is alive thanks to the
    // extension alone: no refresh happened in between.
    node.clock.advance(1400); // login + 1900
    let (_, access) = refresh_ok(&node, &app, issued.refresh_token.secret()).await;

    // Extending again with a fresh access token moves it on from the new "now".
    node.clock.advance(100);
    let (status, body) = extend(&node, &access).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["idleExpiresAt"], now(&node) + 1800);
    assert!(body["idleExpiresAt"].as_i64().unwrap() <= body["absoluteExpiresAt"].as_i64().unwrap());
}

async fn absolute_expiry_ends_a_session_however_often_it_is_refreshed(backend: Backend) {
    let Some(node) = spawn_with(backend, |c| c.tokens.refresh_token_ttl_secs = 3600).await else {
        return;
    };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-absolute", &app).await.unwrap();
    let created = issued.session.created_at;
    assert_eq!(issued.session.absolute_expires_at, created + 3600);
    let mut token = issued.refresh_token.secret().to_owned();

    // Refreshed every 1000 s: each refresh extends idle expiry, never past the absolute one.
    let mut access = issued.access_token.clone();
    for step in 1..=3 {
        node.clock.advance(1000);
        (token, access) = refresh_ok(&node, &app, &token).await;
        let session = &node.state.tokens.sessions_of("user-absolute").await.unwrap()[0];
        assert_eq!(
            session.idle_expires_at,
            (now(&node) + 1800).min(created + 3600),
            "step {step}"
        );
    }
    // At login + 3000 the idle expiry is capped at the absolute one; extend cannot pass it.
    let (status, body) = extend(&node, &access).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["idleExpiresAt"], created + 3600);
    assert_eq!(body["absoluteExpiresAt"], created + 3600);

    // Still alive one second before the end.
    node.clock.advance(599);
    (token, access) = refresh_ok(&node, &app, &token).await;
    let (status, body) = extend(&node, &access).await;
    assert_eq!(
        (status, body["idleExpiresAt"].as_i64()),
        (200, Some(created + 3600)),
        "{body}"
    );

    // Past the absolute expiry the refresh fails although idle expiry was just extended.
    node.clock.advance(2);
    refresh_fails(&node, &app, &token, "past the absolute expiry").await;
    assert!(node
        .state
        .tokens
        .sessions_of("user-absolute")
        .await
        .unwrap()
        .is_empty());
    let (status, _) = extend(&node, &access).await;
    assert_eq!(status, 401, "an ended session cannot be extended");
}

// ---------------------------------------------------------------------------------------
// 2. Session limits
// ---------------------------------------------------------------------------------------

async fn newest_wins_limit_revokes_the_oldest_session_of_that_user_and_channel(backend: Backend) {
    let policy = ChannelPolicy {
        max_sessions: 1,
        on_limit: OnLimit::RevokeOldest,
    };
    let Some(node) = spawn_with(backend, |c| {
        c.sessions.channels.insert("mobile".to_owned(), policy);
    })
    .await
    else {
        return;
    };
    let mobile = node.create_client("mobile-app", true, "mobile").await;
    let web = node.create_client("shop-web", false, "web").await;
    let first = node.login("user-1", &mobile).await.unwrap();
    let web_session = node.login("user-1", &web).await.unwrap();
    let other_user = node.login("user-2", &mobile).await.unwrap();
    assert_eq!(first.session.channel, "mobile");

    let second = node.login("user-1", &mobile).await.unwrap();

    // The first mobile session is over: refresh, introspection, feed.
    assert_eq!(node.introspect(&web, &first.access_token).await, inactive());
    refresh_fails(
        &node,
        &mobile,
        first.refresh_token.secret(),
        "the oldest mobile session was revoked",
    )
    .await;
    let (_, body, _) = feed(&node, None).await;
    assert!(entries(&body).contains(&sid(&first.session.id)), "{body}");
    let stored = node.state.db.session(&first.session.id).await.unwrap().unwrap();
    assert_eq!(stored.revoke_reason.as_deref(), Some("session_limit"));

    // The new session, the web session of the same user and the other user's mobile session
    // are untouched.
    assert_eq!(node.introspect(&web, &second.access_token).await["active"], true);
    assert_eq!(
        node.introspect(&web, &web_session.access_token).await["active"],
        true
    );
    assert_eq!(
        node.introspect(&web, &other_user.access_token).await["active"],
        true
    );
    refresh_ok(&node, &mobile, second.refresh_token.secret()).await;
    refresh_ok(&node, &web, web_session.refresh_token.secret()).await;
    refresh_ok(&node, &mobile, other_user.refresh_token.secret()).await;
    assert!(!entries(&body).contains(&sid(&web_session.session.id)));
    assert!(!entries(&body).contains(&sid(&other_user.session.id)));
    let mut alive: Vec<String> = node
        .state
        .tokens
        .sessions_of("user-1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    alive.sort();
    let mut expected = vec![second.session.id.clone(), web_session.session.id.clone()];
    expected.sort();
    assert_eq!(alive, expected);
}

async fn reject_limit_refuses_a_new_session_and_keeps_the_old_one(backend: Backend) {
    let policy = ChannelPolicy {
        max_sessions: 1,
        on_limit: OnLimit::Reject,
    };
    let Some(node) = spawn_with(backend, |c| {
        c.sessions.channels.insert("mobile".to_owned(), policy);
    })
    .await
    else {
        return;
    };
    let mobile = node.create_client("mobile-app", true, "mobile").await;
    let web = node.create_client("shop-web", false, "web").await;
    let first = node.login("user-1", &mobile).await.unwrap();

    let refused = node.login("user-1", &mobile).await;
    assert!(matches!(refused, Err(TokenError::SessionLimit)), "{refused:?}");
    // The limit is per channel (web is unlimited) and per user.
    let web_session = node.login("user-1", &web).await.unwrap();
    let other_user = node.login("user-2", &mobile).await.unwrap();
    // Choosing the channel explicitly does not get around it either.
    let refused = node.login_on("user-1", &web, Some("mobile")).await;
    assert!(matches!(refused, Err(TokenError::SessionLimit)), "{refused:?}");

    // The first session is alive and untouched.
    assert_eq!(node.introspect(&web, &first.access_token).await["active"], true);
    let (next, _) = refresh_ok(&node, &mobile, first.refresh_token.secret()).await;
    let (_, body, _) = feed(&node, None).await;
    assert_eq!(entries(&body), vec![], "a refused login revokes nothing");
    let sessions = node.state.tokens.sessions_of("user-1").await.unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(
        node.introspect(&web, &web_session.access_token).await["active"],
        true
    );
    assert_eq!(
        node.introspect(&web, &other_user.access_token).await["active"],
        true
    );

    // Once the first session ends, a new mobile login is allowed again.
    let (status, _) = revoke(&node, &mobile, &[("token", &next)]).await;
    assert_eq!(status, 200);
    node.login("user-1", &mobile).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// 3. Introspection and the verification checklist
// ---------------------------------------------------------------------------------------

async fn introspection_reports_a_valid_access_token_in_full(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let rs = node.create_client("orders-api", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let claims = claims_of(&issued.access_token);

    let body = node.introspect(&rs, &issued.access_token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["sub"], "user-1");
    assert_eq!(body["client_id"], "shop-web");
    assert_eq!(body["scope"], "openid profile");
    assert_eq!(body["sid"], issued.session.id.as_str());
    assert_eq!(body["exp"], now(&node) + 900);
    assert_eq!(body["exp"], issued.access_expires_at);
    assert_eq!(body["jti"], claims.jti.as_str());
    assert_eq!(body["iss"], node.url.as_str());
    assert_eq!(body["aud"], node.url.as_str());
    assert_eq!(body["roles"], json!(["member"]));

    // The response must not be cached.
    let response = node
        .post_form(INTROSPECT, &rs, &[("token", &issued.access_token)])
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");

    // A refreshed access token carries the same session, subject and roles, with a new jti.
    node.clock.advance(60);
    let (_, refreshed) = refresh_ok(&node, &app, issued.refresh_token.secret()).await;
    let body = node.introspect(&rs, &refreshed).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sid"], issued.session.id.as_str());
    assert_eq!(body["sub"], "user-1");
    assert_eq!(body["roles"], json!(["member"]));
    assert_eq!(body["exp"], now(&node) + 900);
    assert_ne!(body["jti"], claims.jti.as_str());
}

async fn introspection_rejects_forged_and_broken_access_tokens(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let real = issued.access_token.clone();
    let claims = claims_of(&real);
    let header = access_header(&node);
    let at = now(&node);

    // Control: the forging helper makes tokens that pass when nothing is wrong with them,
    // so each rejection below is caused by the one defect it introduces.
    let control = forge(&node, &header, &claims);
    assert_eq!(
        node.introspect(&app, &control).await["active"],
        true,
        "the control token must pass"
    );

    let mut cases: Vec<(&str, String)> = Vec::new();

    cases.push(("tampered signature", flip_signature(&real)));
    let (head, rest) = real.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut other_sub = claims.clone();
    other_sub.sub = "admin".to_owned();
    let payload = b64url(&serde_json::to_vec(&other_sub).unwrap());
    cases.push(("tampered payload", format!("{head}.{payload}.{signature}")));

    let mut unknown_kid = header.clone();
    unknown_kid.kid = Some("not-a-published-kid".to_owned());
    cases.push(("unknown kid", forge(&node, &unknown_kid, &claims)));
    let mut no_kid = header.clone();
    no_kid.kid = None;
    cases.push(("no kid", forge(&node, &no_kid, &claims)));
    // The kid of our RS256 key with an ES256 signature: kid and algorithm must match.
    let rs_kid = node.state.keys.signing_key(Algorithm::RS256).unwrap().kid;
    let mut wrong_alg_kid = header.clone();
    wrong_alg_kid.kid = Some(rs_kid);
    cases.push(("kid of another algorithm", forge(&node, &wrong_alg_kid, &claims)));

    let payload = b64url(&serde_json::to_vec(&claims).unwrap());
    for alg in ["none", "None", "NONE"] {
        let none_header = json!({ "alg": alg, "typ": "at+jwt", "kid": header.kid });
        let none_header = b64url(&serde_json::to_vec(&none_header).unwrap());
        cases.push(("alg none, empty signature", format!("{none_header}.{payload}.")));
        cases.push((
            "alg none, real signature",
            format!("{none_header}.{payload}.{signature}"),
        ));
    }

    // HS256 keyed with the public key material, in every form a verifier might have it.
    let es_key = node.state.keys.signing_key(Algorithm::ES256).unwrap();
    let jwk_json = serde_json::to_vec(&es_key.public).unwrap();
    let jwk: Value = serde_json::to_value(&es_key.public).unwrap();
    let mut point = vec![4u8];
    point.extend(base64_decode(jwk["x"].as_str().unwrap(), B64URL));
    point.extend(base64_decode(jwk["y"].as_str().unwrap(), B64URL));
    assert_eq!(point.len(), 65, "{jwk}");
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend(&point);
    let b64 = base64(&spki, B64STD, true);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    let jwks_text = node.get("/.well-known/jwks.json").await.text().await.unwrap();
    for secret in [
        jwk_json,
        point.clone(),
        spki.clone(),
        pem.into_bytes(),
        jwks_text.into_bytes(),
    ] {
        let mut hs = header.clone();
        hs.alg = Algorithm::HS256;
        let token = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        cases.push(("HS256 keyed with the public key", token));
    }

    let mut future = claims.clone();
    future.nbf = at + 3600;
    future.iat = at + 3600;
    cases.push(("not yet valid", forge(&node, &header, &future)));
    let mut future_iat = claims.clone();
    future_iat.iat = at + 3600;
    cases.push(("issued in the future", forge(&node, &header, &future_iat)));

    let mut wrong_issuer = claims.clone();
    wrong_issuer.iss = "https://evil.example".to_owned();
    cases.push(("wrong issuer", forge(&node, &header, &wrong_issuer)));
    let mut issuer_suffix = claims.clone();
    issuer_suffix.iss = format!("{}/", claims.iss);
    cases.push((
        "issuer with a trailing slash",
        forge(&node, &header, &issuer_suffix),
    ));

    let mut untyped = header.clone();
    untyped.typ = None;
    cases.push(("no typ", forge(&node, &untyped, &claims)));
    let mut jwt_typed = header.clone();
    jwt_typed.typ = Some("JWT".to_owned());
    cases.push((
        "typ JWT (an ID-token-like JWT)",
        forge(&node, &jwt_typed, &claims),
    ));

    let mut critical = header.clone();
    critical.crit = Some(vec!["exp".to_owned()]);
    cases.push(("crit header", forge(&node, &critical, &claims)));

    // Our own session id, but a session that does not exist.
    let mut unknown_session = claims.clone();
    unknown_session.sid = Some("no-such-session".to_owned());
    cases.push(("unknown session", forge(&node, &header, &unknown_session)));

    for garbage in ["garbage", "a.b.c", "..", "tsr_", &real[..real.len() / 2]] {
        cases.push(("garbage", garbage.to_owned()));
    }

    let mut other_audience = claims.clone();
    other_audience.aud = "someone-else".to_owned().into();
    cases.push(("another audience", forge(&node, &header, &other_audience)));

    for (what, token) in &cases {
        let body = node.introspect(&app, token).await;
        assert_eq!(body, inactive(), "{what} must be inactive: {token}");
    }

    // Every one of them is refused at the session endpoints as well.
    for (what, token) in &cases {
        if token.is_empty() {
            continue;
        }
        let (status, body) = list_sessions(&node, token).await;
        assert_eq!(status, 401, "{what} must not reach /auth/sessions: {body}");
    }
    let (status, _) = list_sessions(&node, &control).await;
    assert_eq!(status, 200, "the control token reaches /auth/sessions");

    // None of this touched the real token or its session.
    assert_eq!(node.introspect(&app, &real).await["active"], true);

    // A revoked session's access token is inactive as well.
    let (status, _) = revoke(&node, &app, &[("token", issued.refresh_token.secret())]).await;
    assert_eq!(status, 200);
    assert_eq!(node.introspect(&app, &real).await, inactive());
    assert_eq!(node.introspect(&app, &control).await, inactive());
}

/// A token signed with our key but for another audience is not one this deployment issued.
async fn introspection_rejects_a_token_for_another_audience(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let header = access_header(&node);
    let claims = claims_of(&issued.access_token);
    assert_eq!(
        node.introspect(&app, &forge(&node, &header, &claims)).await["active"],
        true
    );

    let mut other = claims.clone();
    other.aud = "someone-else".to_owned().into();
    let token = forge(&node, &header, &other);
    assert_eq!(node.introspect(&app, &token).await, inactive());
}

async fn introspection_rejects_expired_tokens_after_the_leeway(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    assert_eq!(node.config.tokens.leeway_secs, 30);
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let token = issued.access_token.clone();
    let exp = claims_of(&token).exp;

    node.clock.advance(exp - now(&node) + 29);
    assert_eq!(
        node.introspect(&app, &token).await["active"],
        true,
        "within the leeway"
    );
    node.clock.advance(2); // exp + 31
    assert_eq!(node.introspect(&app, &token).await, inactive());
    // The session itself is alive: a refresh still works and gives an active token.
    let (_, fresh) = refresh_ok(&node, &app, issued.refresh_token.secret()).await;
    assert_eq!(node.introspect(&app, &fresh).await["active"], true);
    assert_eq!(node.introspect(&app, &token).await, inactive());
}

async fn introspection_of_refresh_tokens_is_for_their_own_client(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let rs = node.create_client("orders-api", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let token = issued.refresh_token.secret().to_owned();

    let body = node.introspect(&app, &token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], "shop-web");
    assert_eq!(body["sub"], "user-1");
    assert_eq!(body["sid"], issued.session.id.as_str());
    assert_eq!(body["exp"], issued.session.absolute_expires_at);
    assert!(body.get("jti").is_none(), "{body}");

    // Another confidential client learns nothing, with or without a hint.
    assert_eq!(node.introspect(&rs, &token).await, inactive());
    let response = node
        .post_form(
            INTROSPECT,
            &rs,
            &[("token", &token), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(status_json(response).await, (200, inactive()));

    // Once rotated, the old refresh token is inactive and its successor active.
    let (next, _) = refresh_ok(&node, &app, &token).await;
    assert_eq!(node.introspect(&app, &token).await, inactive());
    assert_eq!(node.introspect(&app, &next).await["active"], true);
    // Introspection is read-only: the successor still refreshes.
    refresh_ok(&node, &app, &next).await;
}

async fn introspection_rejects_an_empty_token_parameter(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    for body in ["token=", "token", "", "token=&token_type_hint=access_token"] {
        let response = post_raw(&node, INTROSPECT, body.to_owned())
            .basic_auth(&app.client_id, Some(secret_of(&app)))
            .send()
            .await
            .unwrap();
        let (status, json) = status_json(response).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (400, Some("invalid_request")),
            "{body:?}: {json}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. Client authentication abuse
// ---------------------------------------------------------------------------------------

/// Asserts an OAuth error response; returns its `WWW-Authenticate` header ("" if none).
async fn expect_oauth_error(response: Response, status: u16, error: &str, what: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let www = www_authenticate(&response);
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let (_, body) = status_json(response).await;
    assert_eq!(body["error"], error, "{what}: {body}");
    assert_eq!(cache.as_deref(), Some("no-store"), "{what}");
    if error == "invalid_client" {
        assert!(
            www.starts_with("Basic realm="),
            "{what}: WWW-Authenticate {www:?}"
        );
    }
    www
}

async fn client_authentication_abuse_is_refused_and_changes_nothing(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let refresh = issued.refresh_token.secret().to_owned();
    let access = issued.access_token.clone();
    let id = app.client_id.as_str();
    let secret = secret_of(&app);

    for path in [INTROSPECT, REVOKE, TOKEN] {
        // Each request names the real refresh token: were it accepted, it would act on it.
        let fields: Vec<(&str, &str)> = if path == TOKEN {
            vec![("grant_type", "refresh_token"), ("refresh_token", &refresh)]
        } else {
            vec![("token", &refresh)]
        };
        let body = form_body(&fields);
        let send = |request: RequestBuilder| async move { request.send().await.expect("request failed") };

        let what = format!("{path}: wrong secret");
        let response = send(post_raw(&node, path, body.clone()).basic_auth(id, Some("tcs_wrong"))).await;
        let www = expect_oauth_error(response, 401, "invalid_client", &what).await;
        assert!(www.starts_with("Basic"), "{what}: {www}");

        let what = format!("{path}: empty secret");
        let response = send(post_raw(&node, path, body.clone()).basic_auth(id, Some(""))).await;
        let www = expect_oauth_error(response, 401, "invalid_client", &what).await;
        assert!(www.starts_with("Basic"), "{what}: {www}");

        let what = format!("{path}: unknown client");
        let response =
            send(post_raw(&node, path, body.clone()).basic_auth("no-such-client", Some(secret))).await;
        let www = expect_oauth_error(response, 401, "invalid_client", &what).await;
        assert!(www.starts_with("Basic"), "{what}: {www}");

        let what = format!("{path}: no credentials");
        let response = send(post_raw(&node, path, body.clone())).await;
        expect_oauth_error(response, 401, "invalid_client", &what).await;

        let what = format!("{path}: client_id alone for a confidential client");
        let with_id = format!("{body}&client_id={id}");
        let response = send(post_raw(&node, path, with_id)).await;
        expect_oauth_error(response, 401, "invalid_client", &what).await;

        let what = format!("{path}: Basic and client_secret in the body");
        let both = format!("{body}&client_secret={secret}");
        let response = send(post_raw(&node, path, both).basic_auth(id, Some(secret))).await;
        expect_oauth_error(response, 400, "invalid_request", &what).await;

        let what = format!("{path}: client_secret_post for a client_secret_basic client");
        let posted = format!("{body}&client_id={id}&client_secret={secret}");
        let response = send(post_raw(&node, path, posted)).await;
        let www = expect_oauth_error(response, 401, "invalid_client", &what).await;
        assert!(www.starts_with("Basic"), "{what}: {www}");

        let what = format!("{path}: Basic for one client, client_id of another in the body");
        let mismatched = format!("{body}&client_id=other-client");
        let response = send(post_raw(&node, path, mismatched).basic_auth(id, Some(secret))).await;
        expect_oauth_error(response, 400, "invalid_request", &what).await;

        let what = format!("{path}: two Authorization headers");
        let basic = format!(
            "Basic {}",
            base64(format!("{id}:{secret}").as_bytes(), B64STD, true)
        );
        let request = post_raw(&node, path, body.clone())
            .header(AUTHORIZATION, &basic)
            .header(AUTHORIZATION, &basic);
        expect_oauth_error(send(request).await, 400, "invalid_request", &what).await;

        let what = format!("{path}: a repeated parameter");
        let (key, value) = fields[fields.len() - 1];
        let repeated = format!("{body}&{key}={value}");
        let response = send(post_raw(&node, path, repeated).basic_auth(id, Some(secret))).await;
        expect_oauth_error(response, 400, "invalid_request", &what).await;
        let response =
            send(post_raw(&node, path, format!("{body}&token=a&token=b")).basic_auth(id, Some(secret))).await;
        expect_oauth_error(response, 400, "invalid_request", &what).await;

        let what = format!("{path}: a JSON body");
        let object: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let request = node
            .client
            .post(node.at(path))
            .basic_auth(id, Some(secret))
            .json(&object);
        expect_oauth_error(send(request).await, 400, "invalid_request", &what).await;

        let what = format!("{path}: no content type");
        let request = node
            .client
            .post(node.at(path))
            .basic_auth(id, Some(secret))
            .body(body.clone());
        expect_oauth_error(send(request).await, 400, "invalid_request", &what).await;

        let what = format!("{path}: a body over 1 MiB");
        let limit = node.config.http.max_body_bytes;
        assert_eq!(limit, 1024 * 1024);
        let oversized = format!("{body}&padding={}", "x".repeat(limit));
        // On a connection of its own: the server answers 413 without reading the body and
        // then closes the connection, which a pooled client might otherwise reuse.
        let unpooled = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let request = unpooled
            .post(node.at(path))
            .header(CONTENT_TYPE, FORM)
            .body(oversized)
            .basic_auth(id, Some(secret));
        let response = send(request).await;
        assert_eq!(response.status(), 413, "{what}");
    }

    // Nothing above changed anything: the access token is active and the refresh token
    // (never rotated, never revoked) still works.
    assert_eq!(node.introspect(&app, &access).await["active"], true);
    let (_, body, _) = feed(&node, None).await;
    assert_eq!(entries(&body), vec![]);
    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            subject: Some("user-1".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let events: Vec<&str> = records.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events, ["session.created"]);
    refresh_ok(&node, &app, &refresh).await;
}

async fn token_endpoint_refuses_unsupported_grants_and_missing_parameters(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let other = node.create_client("reporting", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let refresh = issued.refresh_token.secret().to_owned();

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("refresh_token", &refresh)], "invalid_request"),
        (
            vec![("grant_type", ""), ("refresh_token", &refresh)],
            "invalid_request",
        ),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
        (
            vec![
                ("grant_type", "password"),
                ("username", "user-1"),
                ("password", "x"),
            ],
            // Supported grants the client did not register (RFC 6749 §5.2).
            "unauthorized_client",
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", "abc")],
            "unauthorized_client",
        ),
        (
            vec![("grant_type", "something"), ("refresh_token", &refresh)],
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "REFRESH_TOKEN"), ("refresh_token", &refresh)],
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "tsr_garbage")],
            "invalid_grant",
        ),
    ];
    for (fields, error) in cases {
        let response = node.post_form(TOKEN, &app, &fields).await;
        let (status, body) = status_json(response).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{fields:?}: {body}"
        );
    }
    // Another client's refresh token is an invalid grant, and presenting it ends nothing.
    let (status, body) = node.refresh(&other, &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    let (_, access) = refresh_ok(&node, &app, &refresh).await;
    assert_eq!(node.introspect(&app, &access).await["active"], true);
}

async fn public_clients_may_not_introspect(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let mobile = node.create_client("mobile-app", true, "mobile").await;
    let issued = node.login("user-1", &mobile).await.unwrap();
    for token in [issued.access_token.as_str(), issued.refresh_token.secret()] {
        let response = node.post_form(INTROSPECT, &mobile, &[("token", token)]).await;
        let (status, body) = status_json(response).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("unauthorized_client")),
            "{body}"
        );
        assert!(body.get("active").is_none(), "{body}");
    }
    // A public client presenting a made-up secret is not a confidential client either.
    let response = post_raw(&node, INTROSPECT, format!("token={}", issued.access_token))
        .basic_auth(&mobile.client_id, Some("tcs_made_up"))
        .send()
        .await
        .unwrap();
    expect_oauth_error(response, 401, "invalid_client", "public client with a secret").await;
    // Nothing changed.
    refresh_ok(&node, &mobile, issued.refresh_token.secret()).await;
}

// ---------------------------------------------------------------------------------------
// 5. Revocation (RFC 7009)
// ---------------------------------------------------------------------------------------

async fn revoking_a_refresh_token_ends_its_session(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let mobile = node.create_client("mobile-app", true, "mobile").await;

    let hints: [Option<&str>; 3] = [None, Some("refresh_token"), Some("access_token")];
    for hint in hints {
        let issued = node.login("user-1", &app).await.unwrap();
        let bystander = node.login("user-1", &app).await.unwrap();
        let mut fields = vec![("token", issued.refresh_token.secret())];
        if let Some(hint) = hint {
            fields.push(("token_type_hint", hint));
        }
        let response = node.post_form(REVOKE, &app, &fields).await;
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(status_json(response).await, (200, json!({})), "hint {hint:?}");

        refresh_fails(&node, &app, issued.refresh_token.secret(), "revoked").await;
        assert_eq!(
            node.introspect(&app, &issued.access_token).await,
            inactive(),
            "hint {hint:?}"
        );
        let (_, body, _) = feed(&node, None).await;
        assert!(
            entries(&body).contains(&sid(&issued.session.id)),
            "hint {hint:?}: {body}"
        );
        // Only that session ended.
        assert_eq!(
            node.introspect(&app, &bystander.access_token).await["active"],
            true
        );
        refresh_ok(&node, &app, bystander.refresh_token.secret()).await;

        // Revoking again is fine (RFC 7009 §2.2).
        let (status, body) = revoke(&node, &app, &fields).await;
        assert_eq!((status, body), (200, json!({})));
    }

    // A public client revokes its own refresh token with its client_id alone.
    let issued = node.login("user-2", &mobile).await.unwrap();
    let (status, body) = revoke(&node, &mobile, &[("token", issued.refresh_token.secret())]).await;
    assert_eq!((status, body), (200, json!({})));
    refresh_fails(
        &node,
        &mobile,
        issued.refresh_token.secret(),
        "revoked by a public client",
    )
    .await;
    assert!(node.state.tokens.sessions_of("user-2").await.unwrap().is_empty());
}

async fn revoking_an_access_token_denies_only_that_token(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let access = issued.access_token.clone();
    let claims = claims_of(&access);

    let (status, body) = revoke(
        &node,
        &app,
        &[("token", &access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(node.introspect(&app, &access).await, inactive());
    let (status, _) = list_sessions(&node, &access).await;
    assert_eq!(status, 401, "a revoked access token must not reach /auth/*");
    let (_, body, _) = feed(&node, None).await;
    assert_eq!(entries(&body), vec![jti(&claims.jti)], "{body}");
    assert_eq!(body["entries"][0]["exp"], claims.exp);

    // The session is alive: the refresh token works, and the new access token is active.
    let (next, fresh) = refresh_ok(&node, &app, issued.refresh_token.secret()).await;
    assert_ne!(claims_of(&fresh).jti, claims.jti);
    assert_eq!(node.introspect(&app, &fresh).await["active"], true);
    assert_eq!(node.introspect(&app, &access).await, inactive());

    // Revoking twice is fine and adds no second entry; a wrong hint is only a hint.
    let (status, _) = revoke(&node, &app, &[("token", &access)]).await;
    assert_eq!(status, 200);
    let (status, _) = revoke(
        &node,
        &app,
        &[("token", &fresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(node.introspect(&app, &fresh).await, inactive());
    let (_, body, _) = feed(&node, None).await;
    assert_eq!(
        entries(&body),
        vec![jti(&claims.jti), jti(&claims_of(&fresh).jti)],
        "{body}"
    );
    refresh_ok(&node, &app, &next).await;
}

async fn revocation_refuses_other_clients_tokens_and_bad_hints(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let other = node.create_client("reporting", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let refresh = issued.refresh_token.secret().to_owned();
    let access = issued.access_token.clone();

    for token in [refresh.as_str(), access.as_str()] {
        let (status, body) = revoke(&node, &other, &[("token", token)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("unauthorized_client")),
            "{body}"
        );
    }
    let (status, body) = revoke(&node, &app, &[("token", &refresh), ("token_type_hint", "bogus")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_token_type")),
        "{body}"
    );
    let (status, body) = revoke(&node, &app, &[("token_type_hint", "refresh_token")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // Unknown and garbage tokens are not an error (RFC 7009 §2.2).
    let unknown_refresh = format!("tsr_{}", "A".repeat(43));
    let expired_forgery = {
        let mut claims = claims_of(&access);
        claims.exp = now(&node) - 3600;
        forge(&node, &access_header(&node), &claims)
    };
    for token in [unknown_refresh.as_str(), "garbage", "a.b.c", &expired_forgery] {
        let (status, body) = revoke(&node, &app, &[("token", token)]).await;
        assert_eq!((status, body), (200, json!({})), "{token}");
    }

    // None of it revoked anything.
    let (_, body, _) = feed(&node, None).await;
    assert_eq!(entries(&body), vec![], "{body}");
    assert_eq!(node.introspect(&app, &access).await["active"], true);
    refresh_ok(&node, &app, &refresh).await;
}

// ---------------------------------------------------------------------------------------
// 6. The revocation feed
// ---------------------------------------------------------------------------------------

async fn revocation_feed_pages_by_cursor_and_answers_conditionally(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let a = node.login("user-feed", &app).await.unwrap();
    let b = node.login("user-feed", &app).await.unwrap();
    let c = node.login("user-feed", &app).await.unwrap();

    let (cursor0, body, _) = feed(&node, None).await;
    assert_eq!(entries(&body), vec![]);

    revoke(&node, &app, &[("token", a.refresh_token.secret())]).await;
    let (c1, body, e1) = feed(&node, None).await;
    assert!(
        c1.parse::<i64>().unwrap() > cursor0.parse::<i64>().unwrap(),
        "{cursor0} -> {c1}"
    );
    assert_eq!(entries(&body), vec![sid(&a.session.id)]);
    assert_eq!(body["entries"][0]["exp"], a.access_expires_at);

    // Nothing changed: 304 with the same ETag, no body.
    let response = node
        .client
        .get(node.at(FEED))
        .header(IF_NONE_MATCH, &e1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()[ETAG].to_str().unwrap(), e1);
    assert!(response.bytes().await.unwrap().is_empty());

    // A minute later, past the recent window: still unchanged, and nothing after c1.
    node.clock.advance(60);
    let response = node
        .client
        .get(node.at(FEED))
        .header(IF_NONE_MATCH, &e1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    let (cursor, body, _) = feed(&node, Some(&c1)).await;
    assert_eq!((cursor.as_str(), entries(&body)), (c1.as_str(), vec![]));

    // A new revocation: after c1 comes b, and not a.
    revoke(&node, &app, &[("token", b.refresh_token.secret())]).await;
    let (c2, body, _) = feed(&node, Some(&c1)).await;
    assert!(c2.parse::<i64>().unwrap() > c1.parse::<i64>().unwrap());
    assert_eq!(entries(&body), vec![sid(&b.session.id)]);
    // The full feed changed: the old ETag gets a 200 and a new one.
    let response = node
        .client
        .get(node.at(FEED))
        .header(IF_NONE_MATCH, &e1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let e2 = response.headers()[ETAG].to_str().unwrap().to_owned();
    assert_ne!(e2, e1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(entries(&body), vec![sid(&a.session.id), sid(&b.session.id)]);

    // Within 30 s of a revocation it is re-sent even to a poller already past it; later not.
    let (_, body, _) = feed(&node, Some(&c2)).await;
    assert_eq!(
        entries(&body),
        vec![sid(&b.session.id)],
        "recent entries are re-sent"
    );
    node.clock.advance(25);
    let (_, body, _) = feed(&node, Some(&c2)).await;
    assert_eq!(entries(&body), vec![sid(&b.session.id)], "re-sent for 30 s");
    node.clock.advance(6);
    let (_, body, _) = feed(&node, Some(&c2)).await;
    assert_eq!(entries(&body), vec![]);

    // An access token revocation shows up by jti.
    revoke(&node, &app, &[("token", &c.access_token)]).await;
    let (c3, body, _) = feed(&node, Some(&c2)).await;
    assert_eq!(entries(&body), vec![jti(&claims_of(&c.access_token).jti)]);

    // Entries leave the feed once the tokens they cover have expired; the cursor stays.
    let last_exp = [a.access_expires_at, b.access_expires_at, c.access_expires_at]
        .into_iter()
        .max()
        .unwrap();
    node.clock.advance(last_exp - now(&node) - 1);
    let (_, body, _) = feed(&node, None).await;
    assert_eq!(entries(&body).len(), 3, "not yet expired: {body}");
    node.clock.advance(1);
    let response = node
        .client
        .get(node.at(FEED))
        .header(IF_NONE_MATCH, &e2)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(entries(&body), vec![], "{body}");
    assert_eq!(body["cursor"], c3.as_str());
    // And the poller that used it gets nothing either.
    let (_, body, _) = feed(&node, Some(&c1)).await;
    assert_eq!(entries(&body), vec![]);
}

// ---------------------------------------------------------------------------------------
// 7. The /auth/* session endpoints
// ---------------------------------------------------------------------------------------

async fn session_endpoints_require_exactly_one_valid_bearer_token(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let token = issued.access_token.clone();
    let endpoints = [
        (reqwest::Method::GET, "/auth/sessions".to_owned()),
        (
            reqwest::Method::DELETE,
            format!("/auth/sessions/{}", issued.session.id),
        ),
        (reqwest::Method::POST, "/auth/logout".to_owned()),
        (reqwest::Method::POST, "/auth/logout?all=true".to_owned()),
        (reqwest::Method::POST, "/auth/session/extend".to_owned()),
    ];
    let basic = format!(
        "Basic {}",
        base64(
            format!("{}:{}", app.client_id, secret_of(&app)).as_bytes(),
            B64STD,
            true
        )
    );
    let bearer_value = format!("Bearer {token}");
    for (method, path) in &endpoints {
        let request = || node.client.request(method.clone(), node.at(path));

        let response = request().send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path} without credentials");
        assert_eq!(www_authenticate(&response), "Bearer realm=\"tessera\"");
        assert_eq!(content_type(&response), "application/problem+json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 401);

        let response = request().header(AUTHORIZATION, &basic).send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path} with Basic");
        assert!(www_authenticate(&response).starts_with("Bearer realm=\"tessera\""));

        for odd in ["Bearer", "Bearer ", "Bearer  ", "Token abc"] {
            let response = request().header(AUTHORIZATION, odd).send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {odd:?}");
        }

        let response = request()
            .header(AUTHORIZATION, &bearer_value)
            .header(AUTHORIZATION, &bearer_value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            400,
            "{method} {path} with two Authorization headers"
        );
        assert_eq!(content_type(&response), "application/problem+json");

        let response = request()
            .bearer_auth(flip_signature(&token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} with a tampered token");
        let www = www_authenticate(&response);
        assert!(www.starts_with("Bearer realm=\"tessera\""), "{www}");
        assert!(www.contains("error=\"invalid_token\""), "{www}");
        assert_eq!(content_type(&response), "application/problem+json");

        // A refresh token is not an access token.
        let response = request()
            .bearer_auth(issued.refresh_token.secret())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} with a refresh token");
    }

    // The token is not accepted from the query string either.
    let response = node.get(&format!("/auth/sessions?access_token={token}")).await;
    assert_eq!(response.status(), 401);

    // None of the refused requests ended or changed the session.
    let sessions = node.state.tokens.sessions_of("user-1").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].idle_expires_at, issued.session.idle_expires_at);
    let (status, body) = list_sessions(&node, &token).await;
    assert_eq!(status, 200, "{body}");
}

async fn users_list_and_end_their_own_sessions_only(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let web = node.create_client("shop-web", false, "web").await;
    let mobile = node.create_client("mobile-app", true, "mobile").await;
    let mine = node.login("user-1", &web).await.unwrap();
    node.clock.advance(5);
    let my_phone = node.login("user-1", &mobile).await.unwrap();
    let my_other = node.login("user-1", &web).await.unwrap();
    let theirs = node.login("user-2", &web).await.unwrap();

    let (status, body) = list_sessions(&node, &mine.access_token).await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    let mut ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec![
        mine.session.id.as_str(),
        my_phone.session.id.as_str(),
        my_other.session.id.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(ids, expected, "only user-1's alive sessions");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{body}");
    assert_eq!(current[0]["id"], mine.session.id.as_str());
    for session in sessions {
        for field in [
            "id",
            "clientId",
            "channel",
            "userAgent",
            "ip",
            "createdAt",
            "lastSeenAt",
            "idleExpiresAt",
            "absoluteExpiresAt",
            "current",
        ] {
            assert!(session.get(field).is_some(), "{field} missing in {session}");
        }
    }
    let phone = sessions
        .iter()
        .find(|s| s["id"] == my_phone.session.id.as_str())
        .unwrap();
    assert_eq!(phone["clientId"], "mobile-app");
    assert_eq!(phone["channel"], "mobile");
    assert_eq!(phone["userAgent"], "testkit");
    assert_eq!(phone["ip"], "127.0.0.1");
    assert_eq!(phone["createdAt"], my_phone.session.created_at);
    assert_eq!(phone["lastSeenAt"], my_phone.session.last_seen_at);
    assert_eq!(phone["idleExpiresAt"], my_phone.session.idle_expires_at);
    assert_eq!(phone["absoluteExpiresAt"], my_phone.session.absolute_expires_at);
    assert!(!body.to_string().contains(&theirs.session.id));

    // Another user's session: 404, and it stays alive.
    let path = format!("/auth/sessions/{}", theirs.session.id);
    let (status, body) =
        status_json(bearer(&node, reqwest::Method::DELETE, &path, &mine.access_token).await).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(node.introspect(&web, &theirs.access_token).await["active"], true);
    refresh_ok(&node, &web, theirs.refresh_token.secret()).await;

    // A session that does not exist: 404.
    let response = bearer(
        &node,
        reqwest::Method::DELETE,
        "/auth/sessions/no-such-session",
        &mine.access_token,
    )
    .await;
    assert_eq!(response.status(), 404);
    assert_eq!(content_type(&response), "application/problem+json");

    // My other session: 204, and it is over.
    let path = format!("/auth/sessions/{}", my_phone.session.id);
    let response = bearer(&node, reqwest::Method::DELETE, &path, &mine.access_token).await;
    assert_eq!(response.status(), 204);
    refresh_fails(
        &node,
        &mobile,
        my_phone.refresh_token.secret(),
        "ended by the user",
    )
    .await;
    assert_eq!(node.introspect(&web, &my_phone.access_token).await, inactive());
    let (_, feed_body, _) = feed(&node, None).await;
    assert_eq!(entries(&feed_body), vec![sid(&my_phone.session.id)]);
    // Ending it again: it is no longer an alive session of mine.
    let response = bearer(&node, reqwest::Method::DELETE, &path, &mine.access_token).await;
    assert_eq!(response.status(), 404);

    // The rest is as it was.
    let (_, body) = list_sessions(&node, &mine.access_token).await;
    assert_eq!(body["sessions"].as_array().unwrap().len(), 2, "{body}");
    refresh_ok(&node, &web, my_other.refresh_token.secret()).await;
    refresh_ok(&node, &web, mine.refresh_token.secret()).await;
}

async fn logout_ends_this_session_or_every_session_of_the_user(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let web = node.create_client("shop-web", false, "web").await;
    let mobile = node.create_client("mobile-app", true, "mobile").await;

    // Plain logout: this session only.
    let here = node.login("user-1", &web).await.unwrap();
    let elsewhere = node.login("user-1", &mobile).await.unwrap();
    let response = bearer(&node, reqwest::Method::POST, "/auth/logout", &here.access_token).await;
    assert_eq!(response.status(), 204);
    let response = bearer(&node, reqwest::Method::GET, "/auth/sessions", &here.access_token).await;
    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).contains("error=\"invalid_token\""));
    refresh_fails(&node, &web, here.refresh_token.secret(), "logged out").await;
    assert_eq!(node.introspect(&web, &here.access_token).await, inactive());
    let (status, body) = list_sessions(&node, &elsewhere.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1, "{body}");
    // Logging out again with the same token: it is no longer accepted.
    let response = bearer(&node, reqwest::Method::POST, "/auth/logout", &here.access_token).await;
    assert_eq!(response.status(), 401);

    // Logout everywhere: every session of user-1, none of user-2's.
    let second = node.login("user-1", &web).await.unwrap();
    let third = node.login("user-1", &web).await.unwrap();
    let theirs = node.login("user-2", &web).await.unwrap();
    let response = bearer(
        &node,
        reqwest::Method::POST,
        "/auth/logout?all=true",
        &second.access_token,
    )
    .await;
    assert_eq!(response.status(), 204);
    assert!(node.state.tokens.sessions_of("user-1").await.unwrap().is_empty());
    refresh_fails(&node, &mobile, elsewhere.refresh_token.secret(), "logout all").await;
    refresh_fails(&node, &web, second.refresh_token.secret(), "logout all").await;
    refresh_fails(&node, &web, third.refresh_token.secret(), "logout all").await;
    for token in [&elsewhere.access_token, &second.access_token, &third.access_token] {
        assert_eq!(node.introspect(&web, token).await, inactive());
    }
    let (_, body, _) = feed(&node, None).await;
    let listed = entries(&body);
    for session in [&here.session, &elsewhere.session, &second.session, &third.session] {
        assert!(listed.contains(&sid(&session.id)), "{body}");
    }
    assert!(!listed.contains(&sid(&theirs.session.id)));
    assert_eq!(node.introspect(&web, &theirs.access_token).await["active"], true);
    let (status, body) = list_sessions(&node, &theirs.access_token).await;
    assert_eq!(
        (status, body["sessions"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    refresh_ok(&node, &web, theirs.refresh_token.secret()).await;
}

// ---------------------------------------------------------------------------------------
// 8. Key rotation
// ---------------------------------------------------------------------------------------

async fn access_tokens_survive_a_key_rotation_and_new_ones_use_the_new_key(backend: Backend) {
    let Some(node) = spawn_with(backend, |c| c.keys.prepublish_secs = 600).await else {
        return;
    };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let old = issued.access_token.clone();
    let old_kid = kid_of(&old);

    let new = node.state.keys.rotate(Algorithm::ES256).await.unwrap();
    assert_ne!(new.kid, old_kid);
    assert_eq!(
        node.introspect(&app, &old).await["active"],
        true,
        "right after the rotation"
    );
    // Before the pre-publish window ends, new tokens are still signed with the old key.
    let (refresh, during) = refresh_ok(&node, &app, issued.refresh_token.secret()).await;
    assert_eq!(kid_of(&during), old_kid);

    node.clock
        .advance(i64::try_from(node.config.keys.prepublish_secs).unwrap() + 1);
    assert_eq!(
        node.introspect(&app, &old).await["active"],
        true,
        "after the new key activated"
    );
    let (status, _) = list_sessions(&node, &old).await;
    assert_eq!(status, 200, "the old key's token still reaches /auth/*");

    let (_, after) = refresh_ok(&node, &app, &refresh).await;
    assert_eq!(kid_of(&after), new.kid);
    assert_eq!(jsonwebtoken::decode_header(&after).unwrap().alg, Algorithm::ES256);
    let body = node.introspect(&app, &after).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sid"], issued.session.id.as_str());
    let (status, _) = list_sessions(&node, &after).await;
    assert_eq!(status, 200);
    // Both keys are published.
    let jwks: Value = node.get("/.well-known/jwks.json").await.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new.kid.as_str()),
        "{jwks}"
    );
}

// ---------------------------------------------------------------------------------------
// 9. Audit trail
// ---------------------------------------------------------------------------------------

async fn audit_trail_records_the_session_lifecycle_without_secrets(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let first = node.login("user-audit", &app).await.unwrap();
    let t0 = first.refresh_token.secret().to_owned();
    let (t1, a1) = refresh_ok(&node, &app, &t0).await;
    // Past the grace window, t0 again is theft.
    node.clock.advance(60);
    refresh_fails(&node, &app, &t0, "reuse").await;
    let second = node.login("user-audit", &app).await.unwrap();
    let response = bearer(&node, reqwest::Method::POST, "/auth/logout", &second.access_token).await;
    assert_eq!(response.status(), 204);

    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            subject: Some("user-audit".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    // Newest first.
    let mut events: Vec<(&str, Option<&str>)> = records
        .iter()
        .map(|r| (r.event.as_str(), r.session_id.as_deref()))
        .collect();
    events.reverse();
    let (s1, s2) = (first.session.id.as_str(), second.session.id.as_str());
    assert_eq!(
        events,
        [
            ("session.created", Some(s1)),
            ("token.refreshed", Some(s1)),
            ("token.reuse_detected", Some(s1)),
            ("session.revoked", Some(s1)),
            ("session.created", Some(s2)),
            ("session.revoked", Some(s2)),
        ],
        "{records:#?}"
    );
    for record in &records {
        assert_eq!(record.client_id.as_deref(), Some("shop-web"), "{record:?}");
        assert_eq!(record.subject.as_deref(), Some("user-audit"));
    }
    let reasons: Vec<Value> = records
        .iter()
        .filter(|r| r.event == "session.revoked")
        .map(|r| serde_json::from_str::<Value>(r.detail.as_deref().unwrap()).unwrap()["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("logout"), json!("refresh_token_reuse")]);
    let reuse = records
        .iter()
        .find(|r| r.event == "token.reuse_detected")
        .unwrap();
    assert_eq!(reuse.outcome, "failure");
    let logout = records
        .iter()
        .find(|r| r.event == "session.revoked" && r.session_id.as_deref() == Some(s2))
        .unwrap();
    assert_eq!(logout.actor.as_deref(), Some("user:user-audit"));

    // No record carries a token, or any recognisable part of one.
    let mut secrets = vec![
        t0.clone(),
        t1.clone(),
        second.refresh_token.secret().to_owned(),
        first.access_token.clone(),
        a1.clone(),
        second.access_token.clone(),
    ];
    for token in [&t0, &t1] {
        secrets.push(token["tsr_".len()..].to_owned());
    }
    for token in [&first.access_token, &a1, &second.access_token] {
        secrets.extend(token.split('.').skip(1).map(str::to_owned));
    }
    for record in &records {
        let fields = [
            Some(record.event.as_str()),
            record.actor.as_deref(),
            record.subject.as_deref(),
            record.session_id.as_deref(),
            record.client_id.as_deref(),
            record.ip.as_deref(),
            record.user_agent.as_deref(),
            Some(record.outcome.as_str()),
            record.request_id.as_deref(),
            record.detail.as_deref(),
        ];
        for field in fields.into_iter().flatten() {
            for secret in &secrets {
                assert!(!field.contains(secret.as_str()), "a token leaked into {record:?}");
            }
        }
    }
}
