//! Partner API keys (R27, issue 13): created through the admin API and by a signed-in user
//! for themselves, shown once, listed without their secret, checked by a confidential
//! client at `/oauth2/api-keys/check`, revoked onto the revocation feed — and their abuse:
//! tampered, expired, revoked, wrong-prefix, oversized, malformed and other accounts' keys,
//! unauthenticated checkers, bad input that changes nothing.

use reqwest::Method;
use serde_json::{json, Value};
use tessera_testkit::{backend_tests, spawn, Backend, TestClient, TestNode};

use crate::mfa::{login, now, who, PASSWORD};

backend_tests!(
    admin_keys_are_shown_once_checked_by_a_client_and_revoked_onto_the_feed,
    keys_never_outlive_their_owner_or_their_expiry,
    bad_key_requests_are_refused_and_change_nothing,
    users_manage_their_own_keys_and_no_one_else_s,
);

/// `method path` with a Bearer token and an optional JSON body: status, headers and JSON.
async fn call(
    node: &TestNode,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = node.client.request(method, node.at(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// `POST /oauth2/api-keys/check` as `checker`: status and JSON.
async fn check(node: &TestNode, checker: &TestClient, key: &str) -> (u16, Value) {
    let response = node
        .post_form("/oauth2/api-keys/check", checker, &[("key", key)])
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A user holding role `exporter` (orders:read, orders:export); returns the id.
async fn exporter(node: &TestNode, admin: &str, name: &str) -> (String, String) {
    let (status, _, body) = call(
        node,
        admin,
        Method::POST,
        "/admin/roles",
        Some(json!({ "name": "exporter", "permissions": ["orders:read", "orders:export"] })),
    )
    .await;
    assert!(status == 201 || status == 409, "{body}");
    let email = who(name);
    let id = node.create_user(&email, PASSWORD).await;
    let (status, _, body) = call(
        node,
        admin,
        Method::POST,
        &format!("/admin/users/{id}/roles"),
        Some(json!({ "roles": ["exporter"] })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (id, email)
}

async fn create(node: &TestNode, admin: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = call(node, admin, Method::POST, "/admin/api-keys", Some(body)).await;
    (status, body)
}

fn tamper(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

async fn admin_keys_are_shown_once_checked_by_a_client_and_revoked_onto_the_feed(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, admin) = node.admin_token("apikeys-ops").await;
    let (user_id, _) = exporter(&node, &admin, "apikeys-ana").await;
    let checker = node.create_client("apikeys-gateway", false, "partner").await;

    let (status, headers, created) = call(
        &node,
        &admin,
        Method::POST,
        "/admin/api-keys",
        Some(
            json!({ "user_id": user_id, "name": "nightly export", "permissions": ["orders:read"],
                     "allowed_ips": ["10.0.0.0/8"] }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("tsk_{id}_")), "{key}");
    assert_eq!(key.len(), 4 + 22 + 1 + 43);
    assert_eq!(created["prefix"], format!("tsk_{id}"));
    assert_eq!(created["status"], "active");
    assert_eq!(headers["location"], format!("/admin/api-keys/{id}"));
    let ninety_days = now(&node) + 90 * 86_400;
    assert!(
        (ninety_days - created["expires_at"].as_i64().unwrap()).abs() <= 5,
        "{created}"
    );

    // Listed and shown, never with the secret or its hash.
    let (status, _, listed) = call(
        &node,
        &admin,
        Method::GET,
        &format!("/admin/api-keys?user_id={user_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1);
    let text = listed.to_string();
    assert!(!text.contains(&key[27..]) && !text.contains("hash"), "{text}");
    assert_eq!(listed["api_keys"][0]["last_used_at"], Value::Null);
    let (status, _, shown) = call(&node, &admin, Method::GET, &format!("/admin/api-keys/{id}"), None).await;
    assert_eq!(
        (status, &shown["name"]),
        (200, &json!("nightly export")),
        "{shown}"
    );

    // A confidential client checks it: the owner, what it may do, where from.
    let (status, answer) = check(&node, &checker, &key).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["key_id"], id);
    assert_eq!(answer["sub"], user_id);
    assert_eq!(answer["owner_type"], "user");
    assert_eq!(answer["permissions"], json!(["orders:read"]));
    assert_eq!(answer["allowed_ips"], json!(["10.0.0.0/8"]));
    assert_eq!(answer["iss"], node.config.issuer());
    assert!(answer.get("client_id").is_none(), "{answer}");
    // The use is written in a batch, later.
    assert_eq!(node.state.api_keys.flush_uses().await.unwrap(), 1);
    let (_, _, shown) = call(&node, &admin, Method::GET, &format!("/admin/api-keys/{id}"), None).await;
    assert!(shown["last_used_at"].as_i64().is_some(), "{shown}");

    // Only confidential clients may check; the key's own shape is no credential.
    let public = node.create_client("apikeys-spa", true, "web").await;
    let (status, answer) = check(&node, &public, &key).await;
    assert!(
        matches!(status, 400 | 401) && answer.get("active").is_none(),
        "{answer}"
    );
    let stranger = TestClient {
        client_id: "apikeys-gateway".into(),
        secret: Some("tcs_wrong".into()),
    };
    assert_eq!(check(&node, &stranger, &key).await.0, 401);
    // No client at all: invalid_client.
    let response = node
        .client
        .post(node.at("/oauth2/api-keys/check"))
        .form(&[("key", &key)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("active").is_none(), "{body}");
    let response = node.post_form("/oauth2/api-keys/check", &checker, &[]).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    // Tampered, wrong prefix, another key's id, oversized, malformed: inactive, nothing said.
    let (_, other) = create(&node, &admin, json!({ "user_id": user_id, "name": "other" })).await;
    let other_key = other["api_key"].as_str().unwrap();
    let spliced = format!("tsk_{id}_{}", &other_key[27..]);
    for bad in [
        tamper(&key),
        key.replacen("tsk_", "tsr_", 1),
        key.replacen("tsk_", "TSK_", 1),
        spliced,
        format!("{key}A"),
        key[..key.len() - 1].to_owned(),
        "x".repeat(10_000),
        format!("tsk_{id}"),
    ] {
        let (status, answer) = check(&node, &checker, &bad).await;
        assert_eq!((status, answer), (200, json!({ "active": false })), "{bad}");
    }

    // Revoked: inactive at once, on the feed by key id until the key would have expired.
    let (status, _, revoked) = call(
        &node,
        &admin,
        Method::DELETE,
        &format!("/admin/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, &revoked["status"]),
        (200, &json!("revoked")),
        "{revoked}"
    );
    assert_eq!(check(&node, &checker, &key).await.1, json!({ "active": false }));
    let (status, feed) = node.get_json("/oauth2/revocations").await;
    assert_eq!(status, 200);
    let entries: Vec<&Value> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "api_key" && e["value"] == id)
        .collect();
    assert_eq!(entries.len(), 1, "{feed}");
    assert_eq!(entries[0]["exp"], created["expires_at"]);
    // Again: nothing new; the other key still works.
    let (status, _, again) = call(
        &node,
        &admin,
        Method::DELETE,
        &format!("/admin/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!((status, &again["revoked_at"]), (200, &revoked["revoked_at"]));
    assert_eq!(check(&node, &checker, other_key).await.1["active"], true);

    // Audited, with the operator's client as actor and never the key.
    let (status, _, audit) = call(
        &node,
        &admin,
        Method::GET,
        "/admin/audit?type=api_key.revoked",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(audit["events"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit["events"][0]["actor"], "client:apikeys-ops");
    let (_, _, audit) = call(
        &node,
        &admin,
        Method::GET,
        "/admin/audit?type=api_key.created",
        None,
    )
    .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 2, "{audit}");
    assert!(!audit.to_string().contains(&key[27..]));

    // A confidential client's key: the client's registered scopes, no permissions.
    let partner = node.create_client("apikeys-partner", false, "partner").await;
    let (status, client_key) = create(
        &node,
        &admin,
        json!({ "client_id": partner.client_id, "name": "feed", "scopes": ["profile"] }),
    )
    .await;
    assert_eq!(status, 201, "{client_key}");
    let answer = check(&node, &checker, client_key["api_key"].as_str().unwrap())
        .await
        .1;
    assert_eq!(
        (
            &answer["sub"],
            &answer["client_id"],
            &answer["scope"],
            &answer["owner_type"]
        ),
        (
            &json!("apikeys-partner"),
            &json!("apikeys-partner"),
            &json!("profile"),
            &json!("client")
        ),
        "{answer}"
    );
    let (status, _, listed) = call(
        &node,
        &admin,
        Method::GET,
        "/admin/api-keys?client_id=apikeys-partner",
        None,
    )
    .await;
    assert_eq!((status, listed["api_keys"].as_array().unwrap().len()), (200, 1));
}

async fn keys_never_outlive_their_owner_or_their_expiry(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, admin) = node.admin_token("apikeys-ops2").await;
    let (user_id, _) = exporter(&node, &admin, "apikeys-ben").await;
    let checker = node.create_client("apikeys-gateway2", false, "partner").await;
    let soon = now(&node) + 60;
    let (status, short) = create(
        &node,
        &admin,
        json!({ "user_id": user_id, "name": "short", "permissions": ["orders:read", "orders:export"], "expires_at": soon }),
    )
    .await;
    assert_eq!(status, 201, "{short}");
    let short_key = short["api_key"].as_str().unwrap().to_owned();
    let (_, long) = create(
        &node,
        &admin,
        json!({ "user_id": user_id, "name": "long", "permissions": ["orders:export"] }),
    )
    .await;
    let long_key = long["api_key"].as_str().unwrap().to_owned();
    assert_eq!(check(&node, &checker, &short_key).await.1["active"], true);

    // Past its expiry: inactive, and listed as expired.
    node.clock.advance(61);
    assert_eq!(
        check(&node, &checker, &short_key).await.1,
        json!({ "active": false })
    );
    let (_, _, listed) = call(
        &node,
        &admin,
        Method::GET,
        &format!("/admin/api-keys?user_id={user_id}"),
        None,
    )
    .await;
    let mut statuses: Vec<(String, String)> = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            ("long".to_owned(), "active".to_owned()),
            ("short".to_owned(), "expired".to_owned())
        ],
        "{listed}"
    );

    // An assignment that ends takes its permissions off the key when it ends.
    let until = now(&node) + 30;
    let (status, _, body) = call(
        &node,
        &admin,
        Method::POST,
        &format!("/admin/users/{user_id}/roles"),
        Some(json!({ "roles": ["exporter"], "role_terms": { "exporter": { "until": until } } })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        check(&node, &checker, &long_key).await.1["permissions"],
        json!(["orders:export"])
    );
    node.clock.advance(31);
    let answer = check(&node, &checker, &long_key).await.1;
    assert_eq!(
        (&answer["active"], &answer["permissions"]),
        (&json!(true), &json!([])),
        "{answer}"
    );

    // The owner loses the role: the key keeps only what the roles still grant.
    let (status, _, _) = call(
        &node,
        &admin,
        Method::POST,
        &format!("/admin/users/{user_id}/roles"),
        Some(json!({ "roles": [] })),
    )
    .await;
    assert_eq!(status, 200);
    let answer = check(&node, &checker, &long_key).await.1;
    assert_eq!(
        (&answer["active"], &answer["permissions"]),
        (&json!(true), &json!([])),
        "{answer}"
    );
    // Disabled: its live keys are revoked (on the feed, audited) with its sessions;
    // enabling the user does not bring them back. Deleted: gone.
    let (status, _, _) = call(
        &node,
        &admin,
        Method::POST,
        &format!("/admin/users/{user_id}/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        check(&node, &checker, &long_key).await.1,
        json!({ "active": false })
    );
    let long_id = long["id"].as_str().unwrap();
    let (_, feed) = node.get_json("/oauth2/revocations").await;
    assert!(
        feed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "api_key" && e["value"] == long_id),
        "{feed}"
    );
    let (status, _, _) = call(
        &node,
        &admin,
        Method::POST,
        &format!("/admin/users/{user_id}/enable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, shown) = call(
        &node,
        &admin,
        Method::GET,
        &format!("/admin/api-keys/{long_id}"),
        None,
    )
    .await;
    assert_eq!(shown["status"], "revoked", "{shown}");
    assert_eq!(
        check(&node, &checker, &long_key).await.1,
        json!({ "active": false })
    );
    let (status, _, _) = call(
        &node,
        &admin,
        Method::DELETE,
        &format!("/admin/users/{user_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        check(&node, &checker, &long_key).await.1,
        json!({ "active": false })
    );
    let (status, _, _) = call(
        &node,
        &admin,
        Method::GET,
        &format!("/admin/api-keys/{}", long["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn bad_key_requests_are_refused_and_change_nothing(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, admin) = node.admin_token("apikeys-ops3").await;
    let (user_id, email) = exporter(&node, &admin, "apikeys-cy").await;
    node.create_client("apikeys-spa3", true, "web").await;
    let later = now(&node) + 3_600;
    for (body, status, field) in [
        (json!({ "name": "x" }), 400, None),
        (
            json!({ "user_id": user_id, "client_id": "apikeys-spa3", "name": "x" }),
            400,
            None,
        ),
        (json!({ "user_id": user_id, "name": "" }), 400, Some("name")),
        (
            json!({ "user_id": user_id, "name": "a\u{7}b" }),
            400,
            Some("name"),
        ),
        (
            json!({ "user_id": user_id, "name": "x".repeat(65) }),
            400,
            Some("name"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "scopes": ["tessera:admin"] }),
            400,
            Some("scopes"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "scopes": ["a b"] }),
            400,
            Some("scopes"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "permissions": ["orders:refund"] }),
            400,
            Some("permissions"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "expires_at": 1 }),
            400,
            Some("expires_at"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "expires_at": later + 800 * 86_400 }),
            400,
            Some("expires_at"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "allowed_ips": ["10.0.0.0/33"] }),
            400,
            Some("allowed_ips"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "allowed_ips": ["example.com"] }),
            400,
            Some("allowed_ips"),
        ),
        (
            json!({ "user_id": user_id, "name": "x", "secret": "mine" }),
            400,
            None,
        ),
        (json!({ "user_id": user_id, "name": 5 }), 400, None),
        (json!({ "user_id": "nobody", "name": "x" }), 404, None),
        (json!({ "user_id": "a\u{0}b", "name": "x" }), 404, None),
        (json!({ "client_id": "apikeys-spa3", "name": "x" }), 404, None),
        (
            json!({ "client_id": "apikeys-ops3", "name": "x", "scopes": ["orders:write"] }),
            400,
            Some("scopes"),
        ),
        (
            json!({ "client_id": "apikeys-ops3", "name": "x", "permissions": ["orders:read"] }),
            400,
            Some("permissions"),
        ),
    ] {
        let (got, answer) = create(&node, &admin, body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{body} → {answer}");
        }
    }
    // Not JSON, too big.
    let response = node
        .client
        .post(node.at("/admin/api-keys"))
        .bearer_auth(&admin)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let huge = json!({ "user_id": user_id, "name": "x", "scopes": vec!["s"; 300_000] });
    let (status, _, _) = node
        .post_oversized("/admin/api-keys", Some(&admin), huge.to_string().into_bytes())
        .await;
    assert_eq!(status, 413);
    // List and revoke: the query is strict, ids that cannot exist are unknown.
    for query in ["", "?user_id=a&client_id=b", "?user_id=a&user_id=b", "?owner=a"] {
        let (status, _, _) = call(
            &node,
            &admin,
            Method::GET,
            &format!("/admin/api-keys{query}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}");
    }
    let (status, _, _) = call(&node, &admin, Method::GET, "/admin/api-keys?user_id=nobody", None).await;
    assert_eq!(status, 404);
    for id in ["nope", "%00", "a.b", &"x".repeat(300)] {
        let (status, _, _) = call(
            &node,
            &admin,
            Method::DELETE,
            &format!("/admin/api-keys/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 404, "{id}");
    }
    // A user's token is no admin token.
    let (_, tokens) = login(&node, &email, PASSWORD).await;
    let user_token = tokens["accessToken"].as_str().unwrap();
    let (status, _, _) = call(
        &node,
        user_token,
        Method::GET,
        &format!("/admin/api-keys?user_id={user_id}"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Nothing of it was written.
    let (_, _, listed) = call(
        &node,
        &admin,
        Method::GET,
        &format!("/admin/api-keys?user_id={user_id}"),
        None,
    )
    .await;
    assert_eq!(listed["api_keys"], json!([]), "{listed}");
    let (_, _, audit) = call(
        &node,
        &admin,
        Method::GET,
        "/admin/audit?type=api_key.created",
        None,
    )
    .await;
    assert_eq!(audit["events"], json!([]));
}

async fn users_manage_their_own_keys_and_no_one_else_s(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, admin) = node.admin_token("apikeys-ops4").await;
    let (ana_id, ana) = exporter(&node, &admin, "apikeys-ana4").await;
    let (_, bob) = exporter(&node, &admin, "apikeys-bob4").await;
    let checker = node.create_client("apikeys-gateway4", false, "partner").await;
    let token = |body: Value| body["accessToken"].as_str().unwrap().to_owned();
    let ana_token = token(login(&node, &ana, PASSWORD).await.1);
    let bob_token = token(login(&node, &bob, PASSWORD).await.1);

    let (status, headers, created) = call(
        &node,
        &ana_token,
        Method::POST,
        "/auth/api-keys",
        Some(json!({ "name": "my script", "permissions": ["orders:export"], "scopes": ["profile"], "allowedIps": ["203.0.113.0/24"] })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["apiKey"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], format!("/auth/api-keys/{id}"));
    assert_eq!(
        (&created["ownerId"], &created["allowedIps"]),
        (&json!(ana_id), &json!(["203.0.113.0/24"]))
    );
    let answer = check(&node, &checker, &key).await.1;
    assert_eq!(
        (&answer["sub"], &answer["scope"]),
        (&json!(ana_id), &json!("profile")),
        "{answer}"
    );
    let (_, _, audit) = call(
        &node,
        &admin,
        Method::GET,
        "/admin/audit?type=api_key.created",
        None,
    )
    .await;
    assert_eq!(audit["events"][0]["actor"], ana_id);

    // No more than the token's scopes and the roles' permissions.
    for body in [
        json!({ "name": "x", "scopes": ["orders:write"] }),
        json!({ "name": "x", "permissions": ["orders:refund"] }),
        json!({ "name": "x", "expiresAt": "tomorrow" }),
        json!({ "name": "x", "owner": "someone" }),
        json!({ "user_id": "x", "name": "x" }),
    ] {
        let (status, _, answer) = call(
            &node,
            &ana_token,
            Method::POST,
            "/auth/api-keys",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body} → {answer}");
    }

    // Listed for Ana, not for Bob; Bob cannot revoke it (as unknown as any other id).
    let (status, _, mine) = call(&node, &ana_token, Method::GET, "/auth/api-keys", None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["apiKeys"].as_array().unwrap().len(), 1, "{mine}");
    assert!(mine["apiKeys"][0].get("lastUsedAt").is_some() && !mine.to_string().contains(&key[27..]));
    let (_, _, his) = call(&node, &bob_token, Method::GET, "/auth/api-keys", None).await;
    assert_eq!(his["apiKeys"], json!([]));
    let (status, _, _) = call(
        &node,
        &bob_token,
        Method::DELETE,
        &format!("/auth/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(check(&node, &checker, &key).await.1["active"], true);

    // Without a user's token: refused.
    let (status, _, _) = call(&node, "not-a-token", Method::GET, "/auth/api-keys", None).await;
    assert_eq!(status, 401);
    let (status, _, _) = call(&node, &admin, Method::GET, "/auth/api-keys", None).await;
    assert_eq!(status, 401);
    let response = node.client.get(node.at("/auth/api-keys")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // The key itself is no Bearer token for the account API.
    let (status, _, _) = call(&node, &key, Method::GET, "/auth/api-keys", None).await;
    assert_eq!(status, 401);

    // Ana revokes it.
    let (status, _, revoked) = call(
        &node,
        &ana_token,
        Method::DELETE,
        &format!("/auth/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, &revoked["status"]),
        (200, &json!("revoked")),
        "{revoked}"
    );
    assert_eq!(check(&node, &checker, &key).await.1, json!({ "active": false }));
}
