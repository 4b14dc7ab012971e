//! The client registry through its two doors: the admin API (`/admin/clients`, authorized
//! by a real client-credentials token with scope `tessera:admin`) and `tessera client …` as
//! a process. Both reach the same `ClientRegistry`; the secrets they hand out work at the
//! token endpoints, and stop working when rotated or deleted.

use std::path::Path;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tessera_idp::registry::{ClientRegistry, ClientSpec};
use tessera_idp::tokens::opaque::sha256_b64;
use tessera_store::durable::{AuditQuery, AuditStore as _};
use tessera_testkit::{backend_tests, spawn, Backend, Process, TestClient, TestNode};

backend_tests!(
    admin_api_creates_lists_shows_updates_and_deletes_clients,
    admin_api_refuses_invalid_metadata_naming_the_field,
    admin_api_needs_a_client_token_with_the_admin_scope,
    rotating_a_secret_retires_the_old_one_at_once,
    deleting_a_client_makes_its_secret_and_tokens_fail,
    deleting_a_client_ends_the_sessions_made_through_it,
);

/// Users' sessions at a deleted client end with it: its access tokens turn inactive and
/// reach the revocation feed (so gateways reject them), other clients' sessions live on.
async fn deleting_a_client_ends_the_sessions_made_through_it(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = admin_token(&node).await;
    let shop = node.create_client("shop", false, "web").await;
    let auditor = node.create_client("auditor", false, "web").await;
    let at_shop = node.login("user-1", &shop).await.unwrap();
    let elsewhere = node.login("user-1", &auditor).await.unwrap();
    assert_eq!(
        node.introspect(&auditor, &at_shop.access_token).await["active"],
        true
    );

    let (status, _, _) = call(
        &node,
        reqwest::Method::DELETE,
        "/admin/clients/shop",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        node.introspect(&auditor, &at_shop.access_token).await["active"],
        false
    );
    assert_eq!(
        node.introspect(&auditor, &elsewhere.access_token).await["active"],
        true
    );
    let (status, feed) = node.get_json("/oauth2/revocations").await;
    assert_eq!(status, 200);
    let sids: Vec<&str> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sid")
        .filter_map(|e| e["value"].as_str())
        .collect();
    assert!(sids.contains(&at_shop.session.id.as_str()), "{feed}");
    assert!(!sids.contains(&elsewhere.session.id.as_str()), "{feed}");
    let ended = node.state.tokens.sessions_of("user-1").await.unwrap();
    assert!(ended.iter().all(|s| s.client_id != "shop"), "{ended:?}");
}

const CLIENTS: &str = "/admin/clients";

async fn admin_token(node: &TestNode) -> (TestClient, String) {
    node.admin_token("ops-console").await
}

async fn client_token(node: &TestNode, client: &TestClient, scope: &str) -> String {
    node.client_credentials_token(client, scope).await
}

/// Sends `method path` with a Bearer token and an optional JSON body.
async fn call(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, HeaderMap, Value) {
    let mut request = node.client.request(method, node.at(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, headers, json)
}

/// Introspection status for `client` (200 when it authenticates, 401 when not).
async fn introspection_status(node: &TestNode, client: &TestClient) -> u16 {
    node.post_form("/oauth2/introspect", client, &[("token", "anything")])
        .await
        .status()
        .as_u16()
}

fn confidential_client(id: &str) -> Value {
    json!({
        "client_id": id,
        "client_name": "Billing portal",
        "redirect_uris": ["https://billing.example.com/callback", "http://127.0.0.1:8400/cb"],
        "post_logout_redirect_uris": ["https://billing.example.com/"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email",
        "allowed_cors_origins": ["https://billing.example.com"],
        "backchannel_logout_uri": "https://billing.example.com/logout",
        "access_token_ttl_secs": 600,
    })
}

/// No `client_secret` member or line (`client_secret_basic` is a method, not a secret).
fn assert_no_secret_field(text: &str) {
    assert!(!text.contains("\"client_secret\""), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.split_whitespace().next() == Some("client_secret")),
        "{text}"
    );
}

fn assert_no_hash(text: &str, secret: &str) {
    assert!(!text.contains("secret_hash"), "{text}");
    assert!(
        !text.contains(&sha256_b64(secret)),
        "the secret's hash was shown: {text}"
    );
}

async fn admin_api_creates_lists_shows_updates_and_deletes_clients(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (admin, token) = admin_token(&node).await;
    let token = Some(token.as_str());

    let (status, headers, created) = call(
        &node,
        reqwest::Method::POST,
        CLIENTS,
        token,
        Some(&confidential_client("billing")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["location"], "/admin/clients/billing");
    assert_eq!(headers["cache-control"], "no-store");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tcs_"), "{created}");
    assert_eq!(created["client_secret_expires_at"], 0);
    assert_eq!(created["client_id"], "billing");
    assert_eq!(created["public"], false);
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["scope"], "openid profile email");
    assert_eq!(created["channel"], "web");
    assert_no_hash(&created.to_string(), &secret);

    // The secret works at once.
    let billing = TestClient {
        client_id: "billing".into(),
        secret: Some(secret.clone()),
    };
    assert_eq!(introspection_status(&node, &billing).await, 200);

    // A generated id, for a public client.
    let spa =
        json!({"client_name": "Docs SPA", "public": true, "redirect_uris": ["https://docs.example.com/cb"]});
    let (status, headers, created_spa) = call(&node, reqwest::Method::POST, CLIENTS, token, Some(&spa)).await;
    assert_eq!(status, 201, "{created_spa}");
    let spa_id = created_spa["client_id"].as_str().unwrap().to_owned();
    assert!(spa_id.starts_with("docs-spa-"), "{spa_id}");
    assert_eq!(headers["location"], format!("/admin/clients/{spa_id}").as_str());
    assert!(created_spa.get("client_secret").is_none(), "{created_spa}");
    assert_eq!(created_spa["token_endpoint_auth_method"], "none");

    let (status, _, list) = call(&node, reqwest::Method::GET, CLIENTS, token, None).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    for id in [
        "billing",
        spa_id.as_str(),
        admin.client_id.as_str(),
        "tessera-first-party",
    ] {
        assert!(ids.contains(&id), "{id} not listed: {list}");
    }
    assert_no_secret_field(&list.to_string());
    assert_no_hash(&list.to_string(), &secret);

    let (status, _, shown) = call(&node, reqwest::Method::GET, "/admin/clients/billing", token, None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["redirect_uris"],
        json!(["https://billing.example.com/callback", "http://127.0.0.1:8400/cb"])
    );
    assert_eq!(
        shown["allowed_cors_origins"],
        json!(["https://billing.example.com"])
    );
    assert_eq!(shown["access_token_ttl_secs"], 600);
    assert!(shown.get("client_secret").is_none(), "{shown}");
    assert_no_hash(&shown.to_string(), &secret);

    // A merge patch: named fields change, lists are replaced, null clears.
    let patch = json!({
        "client_name": "Billing",
        "redirect_uris": ["https://billing.example.com/cb2"],
        "backchannel_logout_uri": null,
        "access_token_ttl_secs": null,
        "channel": "partner",
    });
    let (status, _, updated) = call(
        &node,
        reqwest::Method::PATCH,
        "/admin/clients/billing",
        token,
        Some(&patch),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["client_name"], "Billing");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://billing.example.com/cb2"])
    );
    assert_eq!(updated["backchannel_logout_uri"], Value::Null);
    assert_eq!(updated["access_token_ttl_secs"], Value::Null);
    assert_eq!(updated["channel"], "partner");
    assert_eq!(updated["scope"], "openid profile email");
    assert_no_hash(&updated.to_string(), &secret);
    // The secret survives an update.
    assert_eq!(introspection_status(&node, &billing).await, 200);

    // An invalid patch changes nothing.
    let (status, _, problem) = call(
        &node,
        reqwest::Method::PATCH,
        "/admin/clients/billing",
        token,
        Some(&json!({"client_name": "Other", "redirect_uris": ["https://billing.example.com/cb#x"]})),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "redirect_uris");
    let (_, _, after) = call(&node, reqwest::Method::GET, "/admin/clients/billing", token, None).await;
    assert_eq!(after, updated);
    // Nor may a confidential client turn public, or an id change.
    for (patch, field) in [
        (json!({"public": true}), "public"),
        (json!({"client_id": "other"}), "client_id"),
    ] {
        let (status, _, problem) = call(
            &node,
            reqwest::Method::PATCH,
            "/admin/clients/billing",
            token,
            Some(&patch),
        )
        .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }

    // Taken ids conflict.
    let (status, _, problem) = call(
        &node,
        reqwest::Method::POST,
        CLIENTS,
        token,
        Some(&confidential_client("billing")),
    )
    .await;
    assert_eq!(status, 409, "{problem}");

    let (status, _, body) = call(
        &node,
        reqwest::Method::DELETE,
        "/admin/clients/billing",
        token,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, Value::Null);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let body = (method == reqwest::Method::PATCH).then(|| json!({}));
        let (status, headers, problem) =
            call(&node, method, "/admin/clients/billing", token, body.as_ref()).await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
    }
    // The built-in clients stay: the first-party JSON API's and the account pages'.
    for builtin in ["tessera-first-party", "tessera-account"] {
        let (status, _, problem) = call(
            &node,
            reqwest::Method::DELETE,
            &format!("/admin/clients/{builtin}"),
            token,
            None,
        )
        .await;
        assert_eq!(status, 400, "{builtin}: {problem}");
    }
    assert!(node
        .state
        .clients
        .client("tessera-account")
        .await
        .unwrap()
        .is_some());

    // Every change is in the audit trail, attributed to the admin client.
    let actor = format!("client:{}", admin.client_id);
    for event in ["client.created", "client.updated", "client.deleted"] {
        let records = node
            .state
            .db
            .audit_records(&AuditQuery {
                event: Some(event.into()),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(
            records
                .iter()
                .any(|r| r.actor.as_deref() == Some(actor.as_str())
                    && r.client_id.as_deref() == Some("billing")),
            "no {event} by {actor}: {records:?}"
        );
        assert!(records
            .iter()
            .all(|r| !r.detail.as_deref().unwrap_or("").contains(&secret)));
    }
}

async fn admin_api_refuses_invalid_metadata_naming_the_field(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, bearer) = admin_token(&node).await;
    let token = Some(bearer.as_str());
    let (_, _, before) = call(&node, reqwest::Method::GET, CLIENTS, token, None).await;
    let base = |extra: Value| {
        let mut spec = json!({"client_name": "Bad", "redirect_uris": ["https://app.example/cb"]});
        for (key, value) in extra.as_object().unwrap() {
            spec[key] = value.clone();
        }
        spec
    };
    let cases = [
        (
            base(json!({"redirect_uris": ["http://app.example/cb"]})),
            "redirect_uris",
            "loopback",
        ),
        (
            base(json!({"redirect_uris": ["https://app.example/cb#frag"]})),
            "redirect_uris",
            "fragment",
        ),
        (
            base(json!({"redirect_uris": ["https://*.example.com/cb"]})),
            "redirect_uris",
            "wildcard",
        ),
        (
            base(json!({"post_logout_redirect_uris": ["http://app.example/bye"]})),
            "post_logout_redirect_uris",
            "loopback",
        ),
        (
            base(json!({"allowed_cors_origins": ["*"]})),
            "allowed_cors_origins",
            "*",
        ),
        (
            base(json!({"allowed_cors_origins": ["https://app.example/path"]})),
            "allowed_cors_origins",
            "path",
        ),
        (
            base(json!({"grant_types": ["authorization_code", "password"]})),
            "grant_types",
            "first-party",
        ),
        (
            base(json!({"public": true, "grant_types": ["client_credentials"]})),
            "grant_types",
            "client_credentials",
        ),
        (
            base(json!({"grant_types": ["implicit"]})),
            "grant_types",
            "implicit",
        ),
        (
            base(json!({"redirect_uris": []})),
            "redirect_uris",
            "authorization_code",
        ),
        (
            base(json!({"backchannel_logout_uri": "http://app.example/logout"})),
            "backchannel_logout_uri",
            "https",
        ),
        (
            base(json!({"token_endpoint_auth_method": "tls_client_auth"})),
            "token_endpoint_auth_method",
            "tls_client_auth",
        ),
        (
            base(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            "jwks_uri",
            "public keys",
        ),
        (base(json!({"scope": "openid \"x\""})), "scope", "scope"),
        (
            base(json!({"access_token_ttl_secs": 0})),
            "access_token_ttl_secs",
            "seconds",
        ),
        (base(json!({"channel": "kiosk"})), "channel", "kiosk"),
        (base(json!({"client_name": ""})), "client_name", "name"),
        (base(json!({"client_id": "has space"})), "client_id", "letters"),
        (
            base(json!({"redirect_uri": "https://app.example/cb"})),
            "redirect_uri",
            "unknown field",
        ),
        (
            base(json!({"redirect_uris": "https://app.example/cb"})),
            "redirect_uris",
            "wrong type",
        ),
    ];
    for (spec, field, mention) in cases {
        let (status, headers, problem) =
            call(&node, reqwest::Method::POST, CLIENTS, token, Some(&spec)).await;
        assert_eq!(status, 400, "{spec} → {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["field"], field, "{spec} → {problem}");
        assert_eq!(problem["type"], "urn:tessera:problem:invalid-client-metadata");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{field}: ")), "{detail}");
        assert!(detail.contains(mention), "{detail} does not mention {mention}");
        let code = if field.ends_with("redirect_uris") {
            "invalid_redirect_uri"
        } else {
            "invalid_client_metadata"
        };
        assert_eq!(problem["code"], code, "{problem}");
    }
    // Not JSON at all.
    let response = node
        .client
        .post(node.at(CLIENTS))
        .bearer_auth(&bearer)
        .header("content-type", "text/plain")
        .body("client_name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    // Nothing was stored.
    let (_, _, after) = call(&node, reqwest::Method::GET, CLIENTS, token, None).await;
    assert_eq!(before, after);
}

async fn admin_api_needs_a_client_token_with_the_admin_scope(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, admin) = admin_token(&node).await;

    // No token: 401 with a Bearer challenge.
    for (method, path) in [
        (reqwest::Method::GET, CLIENTS),
        (reqwest::Method::POST, CLIENTS),
        (reqwest::Method::GET, "/admin/clients/ops-console"),
        (reqwest::Method::PATCH, "/admin/clients/ops-console"),
        (reqwest::Method::DELETE, "/admin/clients/ops-console"),
        (reqwest::Method::POST, "/admin/clients/ops-console/secret"),
    ] {
        let (status, headers, problem) = call(&node, method.clone(), path, None, Some(&json!({}))).await;
        assert_eq!(status, 401, "{method} {path}: {problem}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{headers:?}"
        );
    }
    // A forged or garbled token: 401 invalid_token.
    let (status, headers, _) = call(&node, reqwest::Method::GET, CLIENTS, Some("not-a-jwt"), None).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    let forbidden = |status: u16, headers: &HeaderMap, problem: &Value| {
        assert_eq!(status, 403, "{problem}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
        assert!(challenge.contains("scope=\"tessera:admin\""), "{challenge}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["status"], 403);
    };

    // A user's token, even a valid one: 403.
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let (status, headers, problem) = call(
        &node,
        reqwest::Method::GET,
        CLIENTS,
        Some(&issued.access_token),
        None,
    )
    .await;
    forbidden(status, &headers, &problem);

    // A client token without the scope: 403, whether its client may ask for it or not.
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
    let token = client_token(&node, &reports, "reports:read").await;
    let (status, headers, problem) = call(
        &node,
        reqwest::Method::POST,
        CLIENTS,
        Some(&token),
        Some(&confidential_client("x")),
    )
    .await;
    forbidden(status, &headers, &problem);
    // …and a client that may not ask for tessera:admin cannot get it at the token endpoint.
    let response = node
        .post_form(
            "/oauth2/token",
            &reports,
            &[("grant_type", "client_credentials"), ("scope", "tessera:admin")],
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");

    // Nothing was created by the refused requests; the admin token works.
    let (status, _, list) = call(&node, reqwest::Method::GET, CLIENTS, Some(&admin), None).await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains("\"x\""), "{list}");

    // Taking tessera:admin away from the admin client disables its live tokens.
    let (status, _, _) = call(
        &node,
        reqwest::Method::PATCH,
        "/admin/clients/ops-console",
        Some(&admin),
        Some(&json!({"scope": "reports:read"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, problem) = call(&node, reqwest::Method::GET, CLIENTS, Some(&admin), None).await;
    forbidden(status, &headers, &problem);
}

async fn rotating_a_secret_retires_the_old_one_at_once(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (admin, token) = admin_token(&node).await;
    let token = Some(token.as_str());
    let (status, _, created) = call(
        &node,
        reqwest::Method::POST,
        CLIENTS,
        token,
        Some(&confidential_client("billing")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let old = TestClient {
        client_id: "billing".into(),
        secret: Some(created["client_secret"].as_str().unwrap().to_owned()),
    };
    assert_eq!(introspection_status(&node, &old).await, 200);

    let (status, headers, rotated) = call(
        &node,
        reqwest::Method::POST,
        "/admin/clients/billing/secret",
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(rotated["client_id"], "billing");
    let new = TestClient {
        client_id: "billing".into(),
        secret: Some(rotated["client_secret"].as_str().unwrap().to_owned()),
    };
    assert_ne!(old.secret, new.secret);
    assert_eq!(introspection_status(&node, &old).await, 401);
    assert_eq!(introspection_status(&node, &new).await, 200);
    let (_, _, shown) = call(&node, reqwest::Method::GET, "/admin/clients/billing", token, None).await;
    assert_no_hash(&shown.to_string(), new.secret.as_deref().unwrap());

    // A public client has no secret to rotate; an unknown one is 404.
    let spa = json!({"client_id": "spa", "client_name": "SPA", "public": true, "redirect_uris": ["https://spa.example/cb"]});
    assert_eq!(
        call(&node, reqwest::Method::POST, CLIENTS, token, Some(&spa))
            .await
            .0,
        201
    );
    let (status, _, problem) = call(
        &node,
        reqwest::Method::POST,
        "/admin/clients/spa/secret",
        token,
        None,
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    let (status, _, _) = call(
        &node,
        reqwest::Method::POST,
        "/admin/clients/nobody/secret",
        token,
        None,
    )
    .await;
    assert_eq!(status, 404);

    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            event: Some("client.secret_rotated".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].actor.as_deref(),
        Some(format!("client:{}", admin.client_id).as_str())
    );
    assert!(!records[0].detail.as_deref().unwrap_or("").contains("tcs_"));
}

async fn deleting_a_client_makes_its_secret_and_tokens_fail(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (admin, token) = admin_token(&node).await;
    let machine = json!({
        "client_id": "batch", "client_name": "Batch", "grant_types": ["client_credentials"],
        "scope": "reports:read", "token_endpoint_auth_method": "client_secret_post",
    });
    let (status, _, created) = call(
        &node,
        reqwest::Method::POST,
        CLIENTS,
        Some(&token),
        Some(&machine),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    // client_secret_post: the credentials go in the form.
    let introspect = |secret: String| {
        let node = &node;
        async move {
            node.client
                .post(node.at("/oauth2/introspect"))
                .form(&[
                    ("client_id", "batch"),
                    ("client_secret", secret.as_str()),
                    ("token", "x"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(introspect(secret.clone()).await, 200);
    let (status, _, _) = call(
        &node,
        reqwest::Method::DELETE,
        "/admin/clients/batch",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(introspect(secret).await, 401);

    // Deleting the admin client itself ends its own tokens' authority.
    let path = format!("/admin/clients/{}", admin.client_id);
    let (status, _, _) = call(&node, reqwest::Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, 204);
    let (status, headers, _) = call(&node, reqwest::Method::GET, CLIENTS, Some(&token), None).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(introspection_status(&node, &admin).await, 401);
}

// --- `tessera client …` as a process ---------------------------------------------------------

const EXIT: Duration = Duration::from_secs(60);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

struct Cli {
    dir: tempfile::TempDir,
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![(
            "TESSERA_DATA_DIR".into(),
            self.dir.path().join("data").display().to_string(),
        )]
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["client"];
        all.extend_from_slice(args);
        let finished = Process::run_in(binary(), self.dir.path(), &all, &self.env(), EXIT).await;
        assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
        Output {
            ok: finished.status.success(),
            stdout: finished.stdout,
            stderr: finished.stderr,
        }
    }

    async fn ok(&self, args: &[&str]) -> Output {
        let output = self.run(args).await;
        assert!(
            output.ok,
            "client {args:?} failed:\n{}\n{}",
            output.stdout, output.stderr
        );
        output
    }
}

impl Output {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// A failure: a non-zero exit, nothing on stdout and one `error:` line on stderr.
    fn assert_one_error_line(&self, mentions: &[&str]) {
        assert!(!self.ok, "expected a failure:\n{}", self.stdout);
        assert!(self.stdout.is_empty(), "{}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one stderr line, got:\n{}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        for mention in mentions {
            assert!(
                lines[0].contains(mention),
                "{:?} does not mention {mention:?}",
                lines[0]
            );
        }
    }
}

#[tokio::test]
async fn cli_registers_shows_updates_rotates_and_deletes_a_client() {
    let cli = Cli::new();
    let created = cli
        .ok(&[
            "create",
            "--name",
            "Billing portal",
            "--client-id",
            "billing",
            "--redirect-uri",
            "https://billing.example.com/callback",
            "--redirect-uri",
            "http://127.0.0.1:8400/cb",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--scope",
            "openid profile email",
            "--cors-origin",
            "https://billing.example.com",
            "--access-token-ttl",
            "600",
            "--json",
        ])
        .await;
    let body = created.json();
    assert_eq!(body["client_id"], "billing");
    assert_eq!(body["client_name"], "Billing portal");
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["access_token_ttl_secs"], 600);
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tcs_"), "{body}");
    assert_eq!(created.stdout.matches(&secret).count(), 1, "{}", created.stdout);
    assert!(
        !created.stderr.contains(&secret),
        "the secret reached the log: {}",
        created.stderr
    );
    assert_no_hash(&created.all(), &secret);

    for args in [
        &["show", "billing"][..],
        &["show", "billing", "--json"],
        &["list"],
        &["list", "--json"],
    ] {
        let output = cli.ok(args).await;
        assert!(output.stdout.contains("billing"), "{args:?}: {}", output.stdout);
        assert!(!output.all().contains(&secret), "{args:?} printed the secret");
        assert_no_secret_field(&output.all());
        assert_no_hash(&output.all(), &secret);
    }
    let shown = cli.ok(&["show", "billing", "--json"]).await.json();
    assert_eq!(
        shown["redirect_uris"],
        json!(["https://billing.example.com/callback", "http://127.0.0.1:8400/cb"])
    );
    assert_eq!(shown["scope"], "openid profile email");

    // Update: given flags only; a repeated list flag replaces the list.
    let updated = cli
        .ok(&[
            "update",
            "billing",
            "--name",
            "Billing",
            "--redirect-uri",
            "https://billing.example.com/cb2",
            "--channel",
            "partner",
            "--access-token-ttl",
            "default",
            "--json",
        ])
        .await
        .json();
    assert_eq!(updated["client_name"], "Billing");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://billing.example.com/cb2"])
    );
    assert_eq!(updated["channel"], "partner");
    assert_eq!(updated["access_token_ttl_secs"], Value::Null);
    assert_eq!(
        updated["allowed_cors_origins"],
        json!(["https://billing.example.com"])
    );
    let emptied = cli
        .ok(&["update", "billing", "--cors-origin", "", "--json"])
        .await
        .json();
    assert_eq!(emptied["allowed_cors_origins"], json!([]));
    cli.run(&[
        "update",
        "billing",
        "--redirect-uri",
        "https://billing.example.com/cb#x",
    ])
    .await
    .assert_one_error_line(&["redirect_uris", "fragment"]);

    let rotated = cli.ok(&["rotate-secret", "billing", "--json"]).await;
    let new_secret = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("tcs_") && new_secret != secret);
    let shown = cli.ok(&["show", "billing"]).await;
    assert!(!shown.all().contains(&new_secret));
    assert_no_hash(&shown.all(), &new_secret);

    let deleted = cli.ok(&["delete", "billing"]).await;
    assert!(deleted.stdout.contains("deleted billing"), "{}", deleted.stdout);
    cli.run(&["show", "billing"])
        .await
        .assert_one_error_line(&["no such client", "billing"]);
    cli.run(&["delete", "billing"])
        .await
        .assert_one_error_line(&["no such client"]);
}

#[tokio::test]
async fn cli_registers_a_public_device_client() {
    let cli = Cli::new();
    let created = cli
        .ok(&[
            "create",
            "--name",
            "Living-room TV",
            "--client-id",
            "tv",
            "--public",
            "--grant",
            "urn:ietf:params:oauth:grant-type:device_code",
            "--grant",
            "refresh_token",
            "--json",
        ])
        .await
        .json();
    assert_eq!(
        created["grant_types"],
        json!(["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"])
    );
    assert_eq!(created["redirect_uris"], json!([]));
    assert!(
        created.get("client_secret").is_none_or(Value::is_null),
        "{created}"
    );
    assert_eq!(created["require_pushed_authorization_requests"], false);
}

#[tokio::test]
async fn cli_makes_a_client_require_pushed_authorization_requests() {
    let cli = Cli::new();
    let created = cli
        .ok(&[
            "create",
            "--name",
            "Bank",
            "--client-id",
            "bank",
            "--redirect-uri",
            "https://bank.example/cb",
            "--require-par",
            "--json",
        ])
        .await
        .json();
    assert_eq!(created["require_pushed_authorization_requests"], true);
    let updated = cli
        .ok(&["update", "bank", "--require-par=false", "--json"])
        .await
        .json();
    assert_eq!(updated["require_pushed_authorization_requests"], false);
}

#[tokio::test]
async fn cli_text_output_prints_the_id_and_the_secret_once() {
    let cli = Cli::new();
    let created = cli
        .ok(&[
            "create",
            "--name",
            "Nightly batch",
            "--grant",
            "client_credentials",
            "--scope",
            "reports:read",
        ])
        .await;
    let lines: Vec<&str> = created.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", created.stdout);
    let id = lines[0].strip_prefix("client_id").unwrap().trim();
    assert!(id.starts_with("nightly-batch-"), "{id}");
    assert!(lines[1]
        .strip_prefix("client_secret")
        .unwrap()
        .trim()
        .starts_with("tcs_"));
    // A public client has no secret to print.
    let public = cli
        .ok(&[
            "create",
            "--name",
            "App",
            "--public",
            "--redirect-uri",
            "com.example.app:/cb",
            "--channel",
            "mobile",
        ])
        .await;
    assert_eq!(public.stdout.lines().count(), 1, "{}", public.stdout);
    assert_no_secret_field(&public.all());
    let list = cli.ok(&["list"]).await;
    assert!(
        list.stdout.contains(id) && list.stdout.contains("public"),
        "{}",
        list.stdout
    );
}

#[tokio::test]
async fn cli_refuses_invalid_clients_with_one_error_line() {
    let cli = Cli::new();
    cli.run(&[
        "create",
        "--name",
        "Bad",
        "--redirect-uri",
        "http://app.example/cb",
    ])
    .await
    .assert_one_error_line(&["redirect_uris", "http://app.example/cb", "loopback"]);
    cli.run(&[
        "create",
        "--name",
        "Bad",
        "--redirect-uri",
        "https://app.example/cb",
        "--cors-origin",
        "*",
    ])
    .await
    .assert_one_error_line(&["allowed_cors_origins"]);
    cli.run(&[
        "create",
        "--name",
        "Bad",
        "--redirect-uri",
        "https://app.example/cb",
        "--grant",
        "password",
    ])
    .await
    .assert_one_error_line(&["grant_types", "first-party"]);
    cli.run(&[
        "create",
        "--name",
        "Bad",
        "--public",
        "--grant",
        "client_credentials",
    ])
    .await
    .assert_one_error_line(&["grant_types"]);
    // Nothing was stored.
    let list = cli.ok(&["list", "--json"]).await.json();
    assert_eq!(list, json!([]));
}

/// The CLI and a running node share the registry: a secret from `client create` works at
/// the node, and `client rotate-secret` retires it while the node runs.
#[tokio::test]
async fn cli_secrets_work_at_a_running_node_until_rotated() {
    let cli = Cli::new();
    let created = cli
        .ok(&[
            "create",
            "--name",
            "Batch",
            "--client-id",
            "batch",
            "--grant",
            "client_credentials",
            "--json",
        ])
        .await
        .json();
    let old = created["client_secret"].as_str().unwrap().to_owned();
    let data_dir = cli.dir.path().join("data").display().to_string();
    let mut node = Process::serve_in(binary(), cli.dir.path(), &[("TESSERA_DATA_DIR", data_dir)]);
    node.wait_ready(EXIT).await;
    let http = reqwest::Client::new();
    let introspect = |secret: String| {
        let request = http
            .post(format!("{}/oauth2/introspect", node.url))
            .basic_auth("batch", Some(secret))
            .form(&[("token", "x")]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(introspect(old.clone()).await, 200, "{}", node.stderr());
    let new = cli.ok(&["rotate-secret", "batch", "--json"]).await.json()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(introspect(old).await, 401);
    assert_eq!(introspect(new).await, 200);
}
