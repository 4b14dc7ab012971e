//! The admin API for users, sessions and keys (`/admin/users…`, `/admin/sessions/{sid}`,
//! `/admin/keys…`), its OpenAPI 3.1 document (`/admin/openapi.json`), and schemathesis
//! fuzzing the real binary through that document. The API reaches the same services as the
//! CLI: the effects asserted here (sessions ended, `sid` on the revocation feed, audit events,
//! the key-rotation announcement) are the CLI's.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use tessera_idp::node::KEYS_CHANGED_CHANNEL;
use tessera_idp::registry::{ClientRegistry, ClientSpec};
use tessera_store::durable::{AuditQuery, AuditStore as _, KeyStore as _, UserStore as _};
use tessera_testkit::{
    backend_tests, spawn, Backend, PgSchema, Process, TestClient, TestNode, DATABASE_URL_VAR, REDIS_URL_VAR,
};

backend_tests!(
    users_are_created_listed_shown_disabled_enabled_and_deleted,
    sessions_are_listed_and_ended_as_by_the_cli,
    keys_are_listed_and_rotated_as_by_the_cli,
    every_admin_route_needs_an_admin_client_token,
    malformed_unknown_and_repeated_requests_change_nothing,
    schemathesis_finds_no_server_error_in_the_admin_api,
);

const PASSWORD: &str = "correct horse battery staple 42";
const ADMIN: &str = "ops-console";

enum Body<'a> {
    None,
    Json(&'a Value),
    Raw(&'a str, Vec<u8>),
}

/// Sends `method path` with an optional Bearer token and body; returns status, headers and
/// the body as JSON (`null` when empty).
async fn call(
    node: &TestNode,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Body<'_>,
) -> (u16, HeaderMap, Value) {
    let mut request = node.client.request(method, node.at(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Raw(content_type, bytes) => request.header("content-type", content_type).body(bytes),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, headers, json)
}

/// Asserts a problem document with `status`.
fn assert_problem(status: u16, headers: &HeaderMap, body: &Value, expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(headers["content-type"], "application/problem+json", "{what}");
    assert_eq!(body["status"], expected, "{what}: {body}");
    assert!(
        body["type"].as_str().unwrap().starts_with("urn:tessera:problem:"),
        "{what}: {body}"
    );
}

fn assert_no_hash(text: &str) {
    assert!(!text.contains("password_hash"), "{text}");
    assert!(!text.contains("$argon2"), "{text}");
}

async fn audit(node: &TestNode, event: &str) -> Vec<tessera_store::durable::AuditRecord> {
    node.state
        .db
        .audit_records(&AuditQuery {
            event: Some(event.into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

async fn feed_has_sid(node: &TestNode, sid: &str) -> bool {
    let feed: Value = node.get("/oauth2/revocations").await.json().await.unwrap();
    feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "sid" && e["value"] == sid)
}

async fn create_user_api(node: &TestNode, token: &str, email: &str) -> Value {
    let (status, headers, user) = call(
        node,
        Method::POST,
        "/admin/users",
        Some(token),
        Body::Json(
            &json!({ "email": email, "password": PASSWORD, "email_verified": true, "roles": ["support"] }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/admin/users/{}", user["id"].as_str().unwrap())
    );
    user
}

async fn users_are_created_listed_shown_disabled_enabled_and_deleted(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token(ADMIN).await;

    let alice = create_user_api(&node, &token, " Alice@Example.COM ").await;
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["email_verified"], true);
    assert_eq!(alice["password_algorithm"], "argon2id");
    assert_eq!(alice["roles"], json!(["support"]));
    assert_eq!(alice["disabled"], false);
    assert_no_hash(&alice.to_string());
    let id = alice["id"].as_str().unwrap().to_owned();
    let created = audit(&node, "user.created").await;
    assert_eq!(created[0].actor.as_deref(), Some("client:ops-console"));
    assert_eq!(created[0].subject.as_deref(), Some(id.as_str()));
    // The password works at login.
    let (status, _, _) = node
        .post_json(
            "/auth/login",
            &json!({"email": "alice@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Pages of two walk every user exactly once; the e-mail filter normalises.
    for i in 0..4 {
        create_user_api(&node, &token, &format!("user{i}@example.com")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/admin/users?limit=2".to_owned();
    loop {
        let (status, _, page) = call(&node, Method::GET, &path, Some(&token), Body::None).await;
        assert_eq!(status, 200, "{page}");
        assert_no_hash(&page.to_string());
        let users = page["users"].as_array().unwrap();
        assert!(users.len() <= 2);
        seen.extend(users.iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "alice@example.com",
            "user0@example.com",
            "user1@example.com",
            "user2@example.com",
            "user3@example.com"
        ]
    );
    let (status, _, page) = call(
        &node,
        Method::GET,
        "/admin/users?email=ALICE%40example.com",
        Some(&token),
        Body::None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["users"][0]["id"], id.as_str());
    assert_eq!(page["next_cursor"], Value::Null);

    let (status, _, shown) = call(
        &node,
        Method::GET,
        &format!("/admin/users/{id}"),
        Some(&token),
        Body::None,
    )
    .await;
    assert_eq!((status, &shown), (200, &alice));

    // Disabling ends the user's sessions as `tessera user disable` does.
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login(&id, &app).await.unwrap();
    let (status, _, disabled) = call(
        &node,
        Method::POST,
        &format!("/admin/users/{id}/disable"),
        Some(&token),
        Body::None,
    )
    .await;
    assert_eq!(status, 200, "{disabled}");
    // This session, and the one of the JSON API login above.
    assert_eq!(disabled["sessions_ended"], 2);
    assert_eq!(disabled["user"]["disabled"], true);
    let (status, body) = node.refresh(&app, issued.refresh_token.secret()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert!(feed_has_sid(&node, &issued.session.id).await);
    let (status, _, _) = node
        .post_json(
            "/auth/login",
            &json!({"email": "alice@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let events = audit(&node, "user.disabled").await;
    assert_eq!(events[0].actor.as_deref(), Some("client:ops-console"));
    let revoked = audit(&node, "session.revoked").await;
    assert_eq!(revoked.len(), 2);
    assert!(revoked
        .iter()
        .any(|r| r.session_id.as_deref() == Some(issued.session.id.as_str())));
    assert!(revoked
        .iter()
        .all(|r| r.actor.as_deref() == Some("client:ops-console")));

    let (status, _, enabled) = call(
        &node,
        Method::POST,
        &format!("/admin/users/{id}/enable"),
        Some(&token),
        Body::None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(enabled["disabled"], false);
    let (status, _, _) = node
        .post_json(
            "/auth/login",
            &json!({"email": "alice@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Deleting ends the sessions first (the login above made one), then the user.
    let live = node.state.tokens.sessions_of(&id).await.unwrap();
    assert_eq!(live.len(), 1);
    let (status, _, body) = call(
        &node,
        Method::DELETE,
        &format!("/admin/users/{id}"),
        Some(&token),
        Body::None,
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert!(node.state.db.user(&id).await.unwrap().is_none());
    assert!(feed_has_sid(&node, &live[0].id).await);
    assert_eq!(
        audit(&node, "user.deleted").await[0].actor.as_deref(),
        Some("client:ops-console")
    );
    let (status, headers, body) = call(
        &node,
        Method::GET,
        &format!("/admin/users/{id}"),
        Some(&token),
        Body::None,
    )
    .await;
    assert_problem(status, &headers, &body, 404, "deleted user");
}

async fn sessions_are_listed_and_ended_as_by_the_cli(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token(ADMIN).await;
    let id = node.create_user("bob@example.com", PASSWORD).await;
    let app = node.create_client("shop-web", false, "web").await;
    let first = node.login(&id, &app).await.unwrap();
    let second = node.login(&id, &app).await.unwrap();
    let other = node.login("someone-else", &app).await.unwrap();

    let sessions_path = format!("/admin/users/{id}/sessions");
    let (status, _, list) = call(&node, Method::GET, &sessions_path, Some(&token), Body::None).await;
    assert_eq!(status, 200, "{list}");
    let mut ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![first.session.id.as_str(), second.session.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(!list.to_string().contains(first.refresh_token.secret()));
    assert_eq!(list["sessions"][0]["client_id"], "shop-web");

    // One session: family revoked, sid on the feed, audited with the admin client as actor.
    let one = format!("/admin/sessions/{}", first.session.id);
    let (status, _, body) = call(&node, Method::DELETE, &one, Some(&token), Body::None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, _) = node.refresh(&app, first.refresh_token.secret()).await;
    assert_eq!(status, 400);
    assert!(feed_has_sid(&node, &first.session.id).await);
    let revoked = audit(&node, "session.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].actor.as_deref(), Some("client:ops-console"));
    assert_eq!(revoked[0].session_id.as_deref(), Some(first.session.id.as_str()));
    // Again: it is no longer alive.
    let (status, headers, body) = call(&node, Method::DELETE, &one, Some(&token), Body::None).await;
    assert_problem(status, &headers, &body, 404, "ended twice");
    assert_eq!(audit(&node, "session.revoked").await.len(), 1);

    // All of the user's sessions; someone else's stays.
    let (status, _, body) = call(&node, Method::DELETE, &sessions_path, Some(&token), Body::None).await;
    assert_eq!((status, &body["sessions_ended"]), (200, &json!(1)), "{body}");
    assert!(feed_has_sid(&node, &second.session.id).await);
    let (status, _, list) = call(&node, Method::GET, &sessions_path, Some(&token), Body::None).await;
    assert_eq!((status, list), (200, json!({"sessions": []})));
    let (status, _) = node.refresh(&app, other.refresh_token.secret()).await;
    assert_eq!(status, 200);
    let (status, _, body) = call(&node, Method::DELETE, &sessions_path, Some(&token), Body::None).await;
    assert_eq!((status, &body["sessions_ended"]), (200, &json!(0)));
}

async fn keys_are_listed_and_rotated_as_by_the_cli(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token(ADMIN).await;
    let (status, _, list) = call(&node, Method::GET, "/admin/keys", Some(&token), Body::None).await;
    assert_eq!(status, 200, "{list}");
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for key in keys {
        let mut fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "activates_at",
                "alg",
                "created_at",
                "expires_at",
                "kid",
                "retires_at",
                "status"
            ],
            "{key}"
        );
        assert_eq!(key["status"], "active");
    }
    let old_es256 = keys.iter().find(|k| k["alg"] == "ES256").unwrap()["kid"].clone();

    // Other nodes hear of the rotation (through Redis on PostgreSQL, in-process otherwise).
    let mut announcements = node
        .state
        .ephemeral
        .subscribe(KEYS_CHANGED_CHANNEL)
        .await
        .unwrap();
    let (status, _, rotated) = call(
        &node,
        Method::POST,
        "/admin/keys/rotate",
        Some(&token),
        Body::Json(&json!({"alg": "ES256"})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let created = rotated["keys"].as_array().unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["alg"], "ES256");
    assert_eq!(created[0]["status"], "published");
    let new_kid = created[0]["kid"].as_str().unwrap().to_owned();
    let heard = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut announcements),
    )
    .await;
    assert!(
        matches!(heard, Ok(Some(_))),
        "no announcement on {KEYS_CHANGED_CHANNEL}"
    );
    // Published at once in this node's JWKS; the old key retires when the new one activates.
    let jwks: Value = node.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == new_kid.as_str()));
    let stored = node.state.db.all_keys().await.unwrap();
    assert_eq!(stored.len(), 4);
    let old = stored
        .iter()
        .find(|k| k.kid == old_es256.as_str().unwrap())
        .unwrap();
    assert_eq!(old.retires_at, Some(created[0]["activates_at"].as_i64().unwrap()));
    let events = audit(&node, "key.rotated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_deref(), Some("client:ops-console"));
    assert!(events[0].detail.as_deref().unwrap().contains(&new_kid));

    // No body (or no alg): every algorithm.
    let (status, _, rotated) = call(
        &node,
        Method::POST,
        "/admin/keys/rotate",
        Some(&token),
        Body::None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let mut algs: Vec<&str> = rotated["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    let (status, _, list) = call(&node, Method::GET, "/admin/keys", Some(&token), Body::None).await;
    assert_eq!(status, 200);
    assert_eq!(list["keys"].as_array().unwrap().len(), 7);
    let text = list.to_string();
    assert!(!text.contains("private") && !text.contains("\"d\""), "{text}");
}

/// Every protected admin route, with a body where it takes one.
fn protected_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/admin/users"),
        (Method::POST, "/admin/users"),
        (Method::GET, "/admin/users/u1"),
        (Method::DELETE, "/admin/users/u1"),
        (Method::POST, "/admin/users/u1/disable"),
        (Method::POST, "/admin/users/u1/enable"),
        (Method::GET, "/admin/users/u1/sessions"),
        (Method::DELETE, "/admin/users/u1/sessions"),
        (Method::DELETE, "/admin/sessions/s1"),
        (Method::GET, "/admin/keys"),
        (Method::POST, "/admin/keys/rotate"),
        (Method::GET, "/admin/clients"),
        (Method::GET, "/admin/audit"),
    ]
}

/// What the refused requests must not have changed.
async fn snapshot(node: &TestNode, user_id: &str) -> (u64, usize, Value, usize) {
    let users = node.state.db.count_users().await.unwrap();
    let keys = node.state.db.all_keys().await.unwrap().len();
    let user = node
        .state
        .db
        .user(user_id)
        .await
        .unwrap()
        .map(|u| json!([u.email, u.disabled_at, u.updated_at]));
    let sessions = node.state.tokens.sessions_of(user_id).await.unwrap().len();
    (users, keys, user.unwrap_or(Value::Null), sessions)
}

async fn every_admin_route_needs_an_admin_client_token(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, admin) = node.admin_token(ADMIN).await;
    let id = node.create_user("carol@example.com", PASSWORD).await;
    let app = node.create_client("shop-web", false, "web").await;
    let user_session = node.login(&id, &app).await.unwrap();
    let routes: Vec<(Method, String)> = protected_routes()
        .into_iter()
        .map(|(method, path)| {
            (
                method,
                path.replace("u1", &id).replace("s1", &user_session.session.id),
            )
        })
        .collect();
    let before = snapshot(&node, &id).await;
    let body = json!({"email": "mallory@example.com", "password": PASSWORD, "alg": "ES256"});

    // A client token without the scope, and a client that has since been deleted.
    let reports = ClientRegistry::new(&node.state)
        .create(ClientSpec {
            client_id: Some("reports".into()),
            client_name: Some("Reports".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            scope: Some("reports:read".into()),
            ..ClientSpec::default()
        })
        .await
        .unwrap();
    let reports = TestClient {
        client_id: reports.0.client_id,
        secret: reports.1,
    };
    let no_scope = node.client_credentials_token(&reports, "reports:read").await;
    let (_, gone) = node.admin_token("retired-console").await;
    ClientRegistry::new(&node.state)
        .delete("retired-console")
        .await
        .unwrap();
    // A token of the admin client, with one signature byte changed.
    let mut tampered = admin.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    for (method, path) in &routes {
        let what = format!("{method} {path}");
        let (status, headers, problem) = call(&node, method.clone(), path, None, Body::Json(&body)).await;
        assert_problem(
            status,
            &headers,
            &problem,
            401,
            &format!("{what} without a token"),
        );
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        for (token, expected, kind) in [
            (user_session.access_token.as_str(), 403, "a user's token"),
            (no_scope.as_str(), 403, "a token without the scope"),
            (gone.as_str(), 401, "a deleted client's token"),
            (tampered.as_str(), 401, "a tampered token"),
            ("not-a-jwt", 401, "garbage"),
        ] {
            let (status, headers, problem) =
                call(&node, method.clone(), path, Some(token), Body::Json(&body)).await;
            assert_problem(
                status,
                &headers,
                &problem,
                expected,
                &format!("{what} with {kind}"),
            );
            if expected == 403 {
                let challenge = headers["www-authenticate"].to_str().unwrap();
                assert!(challenge.contains("insufficient_scope"), "{challenge}");
            }
        }
    }
    assert_eq!(snapshot(&node, &id).await, before);
    assert!(audit(&node, "key.rotated").await.is_empty());
    assert!(audit(&node, "session.revoked").await.is_empty());

    // The document needs no token, and is OpenAPI 3.1 listing these routes.
    let response = node.get("/admin/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    for path in [
        "/admin/users",
        "/admin/users/{id}/sessions",
        "/admin/sessions/{sid}",
        "/admin/keys/rotate",
        "/admin/clients",
        "/admin/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
}

async fn malformed_unknown_and_repeated_requests_change_nothing(backend: Backend) {
    let Some(node) = spawn_small_bodies(backend).await else {
        return;
    };
    let (_, token) = node.admin_token(ADMIN).await;
    let t = Some(token.as_str());
    let id = node.create_user("dave@example.com", PASSWORD).await;
    let app = node.create_client("shop-web", false, "web").await;
    node.login(&id, &app).await.unwrap();
    let before = snapshot(&node, &id).await;

    // Unknown and malformed ids: 404, never a database error.
    let long = "x".repeat(300);
    for bad in [
        "nobody",
        "bad%00id",
        "%FF%FE",
        "a%20b",
        "%2F",
        long.as_str(),
        "' OR '1'='1",
    ] {
        for (method, path) in [
            (Method::GET, format!("/admin/users/{bad}")),
            (Method::DELETE, format!("/admin/users/{bad}")),
            (Method::POST, format!("/admin/users/{bad}/disable")),
            (Method::POST, format!("/admin/users/{bad}/enable")),
            (Method::GET, format!("/admin/users/{bad}/sessions")),
            (Method::DELETE, format!("/admin/users/{bad}/sessions")),
            (Method::DELETE, format!("/admin/sessions/{bad}")),
        ] {
            let (status, headers, problem) = call(&node, method.clone(), &path, t, Body::None).await;
            assert_problem(status, &headers, &problem, 404, &format!("{method} {path}"));
        }
    }

    // The older admin routes too: a NUL byte is no database error on PostgreSQL.
    for (method, path) in [
        (Method::GET, "/admin/clients/bad%00id"),
        (Method::DELETE, "/admin/clients/bad%00id"),
        (Method::POST, "/admin/clients/bad%00id/secret"),
    ] {
        let (status, headers, problem) = call(&node, method.clone(), path, t, Body::None).await;
        assert_problem(status, &headers, &problem, 404, &format!("{method} {path}"));
    }
    let (status, _, page) = call(
        &node,
        Method::GET,
        "/admin/audit?user=a%00b&type=x",
        t,
        Body::None,
    )
    .await;
    assert!(status == 200 || status == 400, "{status} {page}");
    let (status, _, page) = call(
        &node,
        Method::GET,
        "/admin/users?email=a%00b%40example.com",
        t,
        Body::None,
    )
    .await;
    assert!(status == 200 || status == 400, "{status} {page}");

    // Bodies: malformed, wrong type, unknown field, missing field, another media type, too big.
    let users = "/admin/users";
    for (body, expected, what) in [
        (
            Body::Raw("application/json", b"{\"email\":".to_vec()),
            400,
            "truncated JSON",
        ),
        (Body::Raw("application/json", b"[]".to_vec()), 400, "an array"),
        (Body::Json(&json!({"email": "x@example.com"})), 400, "no password"),
        (
            Body::Json(&json!({"email": "x@example.com", "password": PASSWORD, "admin": true})),
            400,
            "an unknown field",
        ),
        (
            Body::Json(&json!({"email": 5, "password": PASSWORD})),
            400,
            "a number as e-mail",
        ),
        (
            Body::Json(&json!({"email": "not an address", "password": PASSWORD})),
            400,
            "an invalid e-mail",
        ),
        (
            Body::Json(&json!({"email": "x@example.com", "password": "short"})),
            400,
            "a weak password",
        ),
        (
            Body::Json(&json!({"email": "x@example.com", "password": PASSWORD, "roles": ["no spaces"]})),
            400,
            "a bad role",
        ),
        (
            Body::Json(&json!({"email": "DAVE@example.com", "password": PASSWORD})),
            409,
            "a taken e-mail",
        ),
        (Body::Raw("text/plain", b"email=x".to_vec()), 415, "plain text"),
        (
            Body::Raw("application/json", vec![b' '; 64 * 1024]),
            413,
            "an oversized body",
        ),
    ] {
        let (status, headers, problem) = call(&node, Method::POST, users, t, body).await;
        assert_problem(status, &headers, &problem, expected, what);
        assert_no_hash(&problem.to_string());
    }
    for (body, expected, what) in [
        (Body::Json(&json!({"alg": "HS256"})), 400, "an unsupported alg"),
        (Body::Json(&json!({"alg": "none"})), 400, "alg none"),
        (Body::Json(&json!({"alg": 256})), 400, "a number as alg"),
        (
            Body::Json(&json!({"alg": "ES256", "force": true})),
            400,
            "an unknown field",
        ),
        (
            Body::Raw("application/json", b"{".to_vec()),
            400,
            "truncated JSON",
        ),
        (Body::Raw("text/plain", b"ES256".to_vec()), 415, "plain text"),
        (
            Body::Raw("application/json", vec![b' '; 64 * 1024]),
            413,
            "an oversized body",
        ),
    ] {
        let (status, headers, problem) = call(&node, Method::POST, "/admin/keys/rotate", t, body).await;
        assert_problem(status, &headers, &problem, expected, what);
    }
    let (_, _, problem) = call(
        &node,
        Method::POST,
        "/admin/keys/rotate",
        t,
        Body::Json(&json!({"alg": "HS256"})),
    )
    .await;
    assert_eq!(problem["field"], "alg");

    // List parameters are checked and named.
    for query in [
        "limit=0",
        "limit=201",
        "limit=ten",
        "cursor=%%%",
        "cursor=AA",
        "email=a&email=b",
        "sort=email",
        "email=not-an-address",
    ] {
        let (status, headers, problem) = call(
            &node,
            Method::GET,
            &format!("/admin/users?{query}"),
            t,
            Body::None,
        )
        .await;
        assert_problem(status, &headers, &problem, 400, query);
        let name = query.split('=').next().unwrap();
        assert_eq!(problem["parameter"], name, "{query}: {problem}");
    }
    assert_eq!(snapshot(&node, &id).await, before);
    assert!(
        audit(&node, "user.created").await.len() == 1,
        "only create_user above"
    );

    // Disabling twice: the second changes nothing and says so.
    let disable = format!("/admin/users/{id}/disable");
    let (status, _, _) = call(&node, Method::POST, &disable, t, Body::None).await;
    assert_eq!(status, 200);
    let after_first = snapshot(&node, &id).await;
    node.clock.advance(5);
    let (status, headers, problem) = call(&node, Method::POST, &disable, t, Body::None).await;
    assert_problem(status, &headers, &problem, 409, "disabled twice");
    assert_eq!(snapshot(&node, &id).await, after_first);
    assert_eq!(audit(&node, "user.disabled").await.len(), 1);

    // Deleting twice: the second is 404 and audits nothing.
    let user = format!("/admin/users/{id}");
    let (status, _, _) = call(&node, Method::DELETE, &user, t, Body::None).await;
    assert_eq!(status, 204);
    let (status, headers, problem) = call(&node, Method::DELETE, &user, t, Body::None).await;
    assert_problem(status, &headers, &problem, 404, "deleted twice");
    assert_eq!(audit(&node, "user.deleted").await.len(), 1);
    assert_eq!(node.state.db.count_users().await.unwrap(), before.0 - 1);
}

/// A node whose body limit is 16 KiB, so that "too big" is cheap to send.
async fn spawn_small_bodies(backend: Backend) -> Option<TestNode> {
    tessera_testkit::spawn_with(backend, |config| config.http.max_body_bytes = 16 * 1024).await
}

// --- schemathesis against the real binary ----------------------------------------------------

/// Base64 of the 32 bytes `tessera-admin-api-test-master-ke`.
const MASTER_KEY: &str = "dGVzc2VyYS1hZG1pbi1hcGktdGVzdC1tYXN0ZXIta2U=";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

/// The sum of `tessera_http_requests_total` samples whose labels match `filter`.
fn requests_where(metrics: &str, filter: impl Fn(&str) -> bool) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("tessera_http_requests_total{") && filter(line))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// schemathesis (tests/interop/requirements.txt) generates requests from
/// `/admin/openapi.json` (valid and invalid ones, with the admin token) against the real
/// binary: no answer may be a 5xx, and answers must be documented and match their schemas.
async fn schemathesis_finds_no_server_error_in_the_admin_api(backend: Backend) {
    let installed = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("TESSERA_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "schemathesis is not installed (pip install -r tests/interop/requirements.txt)"
        );
        eprintln!("skipped: schemathesis not installed (pip install -r tests/interop/requirements.txt)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut envs = vec![(
        "TESSERA_DATA_DIR".to_owned(),
        dir.path().join("data").display().to_string(),
    )];
    // On PostgreSQL (and Redis when configured): a schema of its own.
    let _schema = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let Ok(base) = std::env::var(DATABASE_URL_VAR) else {
                eprintln!("skipped: {DATABASE_URL_VAR} not set");
                return;
            };
            let schema = PgSchema::create(&base);
            envs.push(("TESSERA_DATABASE_URL".into(), schema.url.clone()));
            envs.push(("TESSERA_MASTER_KEY".into(), MASTER_KEY.into()));
            if let Ok(redis) = std::env::var(REDIS_URL_VAR) {
                envs.push(("TESSERA_REDIS_URL".into(), redis));
            }
            Some(schema)
        }
    };
    let created = Process::run_in(
        binary(),
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "schemathesis",
            "--client-id",
            "schemathesis",
            "--grant",
            "client_credentials",
            "--scope",
            "tessera:admin",
            "--json",
        ],
        &envs,
        Duration::from_secs(60),
    )
    .await;
    assert!(created.status.success(), "{}", created.stderr);
    let secret = serde_json::from_str::<Value>(&created.stdout).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let serve_envs: Vec<(&str, String)> = envs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut server = Process::serve_in(binary(), dir.path(), &serve_envs);
    server.wait_ready(Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/oauth2/token", server.url))
        .basic_auth("schemathesis", Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "tessera:admin")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    // Two runs. The first may not change or delete clients: it would find its own client in
    // `GET /admin/clients` and cut its own access off (schemathesis does exactly that). The
    // second changes and deletes clients only, with no way to learn an id but guessing.
    let common = |token: &str| -> Vec<String> {
        [
            "run".to_owned(),
            format!("{}/admin/openapi.json", server.url),
            "--url".to_owned(),
            server.url.clone(),
            "--header".to_owned(),
            format!("Authorization: Bearer {token}"),
            // Every check but the two that hold a request the schema allows to be accepted
            // (and the other way round): a schema cannot say "a cursor you were given" or
            // "a password the policy accepts".
            "--checks".to_owned(),
            "all".to_owned(),
            "--exclude-checks".to_owned(),
            "positive_data_acceptance,negative_data_rejection".to_owned(),
            "--max-examples".to_owned(),
            "25".to_owned(),
            "--seed".to_owned(),
            "1".to_owned(),
            "--workers".to_owned(),
            "2".to_owned(),
            "--no-color".to_owned(),
            "--suppress-health-check".to_owned(),
            "all".to_owned(),
        ]
        .into()
    };
    let mut first = common(&token);
    first.extend(
        [
            "--exclude-operation-id",
            "updateClient",
            "--exclude-operation-id",
            "deleteClient",
        ]
        .map(String::from),
    );
    let mut second = common(&token);
    second.extend(
        [
            "--include-operation-id",
            "updateClient",
            "--include-operation-id",
            "deleteClient",
        ]
        .map(String::from),
    );
    let mut outputs = String::new();
    let mut failed = false;
    let mut summaries = Vec::new();
    for args in [first, second] {
        let output = tokio::process::Command::new("schemathesis")
            .args(&args)
            .current_dir(dir.path())
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .await
            .unwrap();
        failed |= !output.status.success();
        let stdout = String::from_utf8_lossy(&output.stdout);
        summaries.extend(
            stdout
                .lines()
                .filter(|l| l.contains("generated") || l.starts_with("==="))
                .map(str::to_owned),
        );
        outputs.push_str(&stdout);
        outputs.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    eprintln!("schemathesis:\n{}", summaries.join("\n"));

    let metrics = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let server_errors = requests_where(&metrics, |l| l.contains("status=\"5"));
    assert_eq!(
        server_errors,
        0.0,
        "the binary answered 5xx:\n{outputs}\nserver log:\n{}",
        server.stderr()
    );
    assert!(!failed, "schemathesis failed:\n{outputs}");
    // Every operation was reached past authorization: the token worked throughout.
    let doc: Value = http
        .get(format!("{}/admin/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let route = format!("route=\"{path}\",method=\"{method}\"");
            let reached = requests_where(&metrics, |l| {
                l.contains(&route) && !l.contains("status=\"401\"") && !l.contains("status=\"403\"")
            });
            assert!(
                reached >= 1.0,
                "{method} {path} was never reached past authorization:\n{outputs}"
            );
        }
    }
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}
