//! Authorization (issue 13): roles with permissions and parents, separation of duty, and
//! what tokens carry — through the admin API (`/admin/roles`, `/admin/sod`,
//! `/admin/users/{id}/roles`, `/admin/authz/check`) and the CLI, and their abuse.

use reqwest::Method;
use serde_json::{json, Value};
use tessera_testkit::{backend_tests, spawn, spawn_with, Backend, TestNode};

use crate::mfa::{login, payload, who, PASSWORD};

backend_tests!(
    inherited_roles_put_their_permissions_in_tokens_and_refresh_sees_changes,
    the_role_graph_refuses_cycles_unknown_parents_and_bad_names,
    separation_of_duty_refuses_conflicting_assignments,
    conditions_put_a_permission_in_the_token_only_where_they_hold,
    token_permissions_are_bounded_and_past_the_bound_there_are_none,
);

/// `method path` with the admin token and an optional JSON body: status and JSON.
pub(crate) async fn admin(
    node: &TestNode,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = node.client.request(method, node.at(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(crate) async fn define(
    node: &TestNode,
    token: &str,
    name: &str,
    permissions: &[&str],
    parents: &[&str],
) -> Value {
    let (status, body) = admin(
        node,
        token,
        Method::POST,
        "/admin/roles",
        Some(json!({ "name": name, "permissions": permissions, "parents": parents })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn inherited_roles_put_their_permissions_in_tokens_and_refresh_sees_changes(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token("authz-ops").await;
    define(&node, &token, "viewer", &["orders:read"], &[]).await;
    define(&node, &token, "clerk", &["orders:refund"], &["viewer"]).await;
    let manager = define(&node, &token, "manager", &["reports:read"], &["clerk"]).await;
    assert_eq!(
        manager["effective_permissions"],
        json!(["orders:read", "orders:refund", "reports:read"])
    );

    let email = who("authz-clerk");
    let user_id = node.create_user(&email, PASSWORD).await;
    let (status, user) = admin(
        &node,
        &token,
        Method::POST,
        &format!("/admin/users/{user_id}/roles"),
        Some(json!({ "roles": ["clerk", "member"] })),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["roles"], json!(["clerk", "member"]));

    let (status, tokens) = login(&node, &email, PASSWORD).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = payload(tokens["accessToken"].as_str().unwrap());
    assert_eq!(claims["roles"], json!(["clerk", "member", "viewer"]), "{claims}");
    assert_eq!(
        claims["permissions"],
        json!(["orders:read", "orders:refund"]),
        "{claims}"
    );

    // The decision and its reason, as the CLI's `tessera authz check` gives it.
    let (status, decision) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/authz/check",
        Some(json!({ "email": email, "permission": "orders:read" })),
    )
    .await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["allowed"], true);
    assert_eq!(decision["granted_by"], "viewer");
    assert!(
        decision["reason"].as_str().unwrap().contains("inherited"),
        "{decision}"
    );
    let (_, decision) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/authz/check",
        Some(json!({ "user_id": user_id, "permission": "reports:read" })),
    )
    .await;
    assert_eq!(decision["allowed"], false, "{decision}");
    for bad in [
        json!({ "permission": "orders:read" }),
        json!({ "email": email, "user_id": user_id, "permission": "x" }),
        json!({ "email": email, "permission": "has space" }),
    ] {
        let (status, body) = admin(
            &node,
            &token,
            Method::POST,
            "/admin/authz/check",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/authz/check",
        Some(json!({ "email": "nobody@example.com", "permission": "x" })),
    )
    .await;
    assert_eq!(status, 404);

    // A change to a parent shows at the next refresh, without signing in again.
    let (status, body) = admin(
        &node,
        &token,
        Method::PATCH,
        "/admin/roles/viewer",
        Some(json!({ "permissions": ["orders:read", "orders:export"] })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, refreshed) = node
        .post_json(
            "/auth/reissue",
            &json!({ "accessToken": tokens["accessToken"], "refreshToken": tokens["refreshToken"] }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let claims = payload(refreshed["accessToken"].as_str().unwrap());
    assert_eq!(
        claims["permissions"],
        json!(["orders:export", "orders:read", "orders:refund"]),
        "{claims}"
    );
    // So does taking a role away (the CLI's `user revoke-role`).
    node.state
        .accounts
        .revoke_role(&user_id, "clerk", "operator", &Default::default())
        .await
        .unwrap();
    let (_, _, again) = node
        .post_json(
            "/auth/reissue",
            &json!({ "accessToken": refreshed["accessToken"], "refreshToken": refreshed["refreshToken"] }),
            None,
        )
        .await;
    let claims = payload(again["accessToken"].as_str().unwrap());
    assert_eq!(claims["roles"], json!(["member"]), "{claims}");
    assert!(claims.get("permissions").is_none(), "{claims}");

    // Every change was audited with the calling client as actor.
    let (_, audit) = admin(&node, &token, Method::GET, "/admin/audit?type=role.updated", None).await;
    assert_eq!(audit["events"][0]["actor"], "client:authz-ops", "{audit}");
}

async fn the_role_graph_refuses_cycles_unknown_parents_and_bad_names(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token("authz-graph").await;
    define(&node, &token, "a", &["x:read"], &[]).await;
    define(&node, &token, "b", &[], &["a"]).await;
    define(&node, &token, "c", &[], &["b"]).await;
    let before = admin(&node, &token, Method::GET, "/admin/roles", None).await.1;

    // a -> c would close a -> c -> b -> a.
    let (status, body) = admin(
        &node,
        &token,
        Method::PATCH,
        "/admin/roles/a",
        Some(json!({ "parents": ["c"] })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("role_cycle")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("a -> c -> b -> a"),
        "{body}"
    );
    let (status, body) = admin(
        &node,
        &token,
        Method::PATCH,
        "/admin/roles/a",
        Some(json!({ "parents": ["a"] })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("role_cycle")),
        "{body}"
    );
    for (bad, code) in [
        (json!({ "name": "d", "parents": ["ghost"] }), "unknown_role"),
        (json!({ "name": "has space" }), "invalid_request"),
        (json!({ "name": "d", "permissions": ["a b"] }), "invalid_request"),
        (
            json!({ "name": "d", "permissions": ["q\"uote"] }),
            "invalid_request",
        ),
        (json!({ "name": "x".repeat(65) }), "invalid_request"),
        (
            json!({ "name": "d", "description": "line\nbreak" }),
            "invalid_request",
        ),
    ] {
        let (status, body) = admin(&node, &token, Method::POST, "/admin/roles", Some(bad.clone())).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{bad}: {body}"
        );
    }
    let (status, body) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/roles",
        Some(json!({ "name": "a" })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("role_exists")),
        "{body}"
    );
    let (status, body) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/roles",
        Some(json!({ "name": "e", "extra": 1 })),
    )
    .await;
    assert_eq!(status, 400, "unknown fields: {body}");
    // A parent in use cannot go; the leaf can.
    let (status, body) = admin(&node, &token, Method::DELETE, "/admin/roles/a", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("role_in_use")),
        "{body}"
    );
    let (status, _) = admin(&node, &token, Method::GET, "/admin/roles/ghost", None).await;
    assert_eq!(status, 404);
    let (status, _) = admin(
        &node,
        &token,
        Method::PATCH,
        "/admin/roles/ghost",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 404);
    // Nothing above changed the graph.
    assert_eq!(
        admin(&node, &token, Method::GET, "/admin/roles", None).await.1,
        before
    );
    let (status, _) = admin(&node, &token, Method::DELETE, "/admin/roles/c", None).await;
    assert_eq!(status, 204);
    // A user's token cannot reach the admin API.
    let email = who("authz-user");
    node.create_user(&email, PASSWORD).await;
    let user_token = login(&node, &email, PASSWORD).await.1["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = admin(&node, &user_token, Method::GET, "/admin/roles", None).await;
    assert_eq!(status, 403);
}

async fn separation_of_duty_refuses_conflicting_assignments(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token("authz-sod").await;
    define(&node, &token, "payer", &["payments:send"], &[]).await;
    define(&node, &token, "approver", &["payments:approve"], &[]).await;
    define(&node, &token, "treasurer", &[], &["approver"]).await;
    let (status, rule) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/sod",
        Some(json!({ "roles": ["payer", "approver"] })),
    )
    .await;
    assert_eq!(status, 201, "{rule}");
    for bad in [
        json!({ "roles": ["payer"] }),
        json!({ "roles": ["payer", "payer"] }),
        json!({ "roles": ["payer", "ghost"] }),
    ] {
        let (status, body) = admin(&node, &token, Method::POST, "/admin/sod", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    let email = who("authz-payer");
    let user_id = node.create_user(&email, PASSWORD).await;
    let set = |roles: Value| {
        let (node, token, user_id) = (&node, token.clone(), user_id.clone());
        async move {
            admin(
                node,
                &token,
                Method::POST,
                &format!("/admin/users/{user_id}/roles"),
                Some(json!({ "roles": roles })),
            )
            .await
        }
    };
    assert_eq!(set(json!(["payer"])).await.0, 200);
    // Directly, and through inheritance: refused, and the user keeps the old roles.
    for conflicting in [json!(["payer", "approver"]), json!(["payer", "treasurer"])] {
        let (status, body) = set(conflicting.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("separation_of_duty")),
            "{conflicting}: {body}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("approver, payer"),
            "{body}"
        );
    }
    let (_, shown) = admin(
        &node,
        &token,
        Method::GET,
        &format!("/admin/users/{user_id}"),
        None,
    )
    .await;
    assert_eq!(shown["roles"], json!(["payer"]), "{shown}");
    // Creating a user with both is refused too.
    let refused = node
        .state
        .accounts
        .create_user(
            &who("authz-both"),
            PASSWORD,
            true,
            &["payer".into(), "treasurer".into()],
            &Default::default(),
        )
        .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("separation-of-duty")));
    // A role in a rule cannot be deleted; once the rule goes, the assignment is allowed.
    let (status, _) = admin(&node, &token, Method::DELETE, "/admin/roles/payer", None).await;
    assert_eq!(status, 409);
    let id = rule["id"].as_str().unwrap();
    let (status, _) = admin(&node, &token, Method::DELETE, &format!("/admin/sod/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&node, &token, Method::DELETE, &format!("/admin/sod/{id}"), None).await;
    assert_eq!(status, 404);
    assert_eq!(set(json!(["payer", "treasurer"])).await.0, 200);
    let (status, _) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/users/nobody/roles",
        Some(json!({ "roles": [] })),
    )
    .await;
    assert_eq!(status, 404);
}

/// A password login from behind the trusted proxy, for the client address `ip`.
pub(crate) async fn login_via(node: &TestNode, email: &str, ip: &str) -> Value {
    let response = node
        .client
        .post(node.at("/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub(crate) fn permissions_of(tokens: &Value) -> Value {
    payload(tokens["accessToken"].as_str().unwrap())
        .get("permissions")
        .cloned()
        .unwrap_or(json!([]))
}

async fn conditions_put_a_permission_in_the_token_only_where_they_hold(backend: Backend) {
    // The node sits behind a proxy on 127.0.0.1 that says who the client is.
    let Some(node) = spawn_with(backend, |c| c.http.trusted_proxies = vec!["127.0.0.1".into()]).await else {
        return;
    };
    let (_, token) = node.admin_token("authz-abac").await;
    let (status, role) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/roles",
        Some(json!({
            "name": "clerk",
            "permissions": ["orders:read", "orders:refund", "orders:approve"],
            "conditions": {
                "orders:refund": { "networks": ["10.0.0.0/8"] },
                "orders:approve": { "acr": "urn:tessera:acr:mfa" }
            }
        })),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    assert_eq!(
        role["conditions"]["orders:refund"]["networks"],
        json!(["10.0.0.0/8"])
    );
    for (bad, why) in [
        (
            json!({ "orders:delete": { "networks": ["10.0.0.0/8"] } }),
            "not a permission of the role",
        ),
        (
            json!({ "orders:refund": { "networks": ["10.0.0.0/33"] } }),
            "prefix",
        ),
        (json!({ "orders:refund": { "acr": "gold" } }), "acr"),
        (json!({ "orders:refund": {} }), "empty"),
        (
            json!({ "orders:refund": { "ip": "10.0.0.1" } }),
            "wrong type or value",
        ),
    ] {
        let (status, body) = admin(
            &node,
            &token,
            Method::PATCH,
            "/admin/roles/clerk",
            Some(json!({ "conditions": bad })),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.to_string().contains(why), "{why}: {body}");
    }

    let email = who("authz-abac");
    let user_id = node.create_user(&email, PASSWORD).await;
    node.state
        .accounts
        .set_roles(
            &user_id,
            &["clerk".into()],
            &Default::default(),
            "operator",
            &Default::default(),
        )
        .await
        .unwrap();
    let office = login_via(&node, &email, "10.1.2.3").await;
    assert_eq!(
        permissions_of(&office),
        json!(["orders:read", "orders:refund"]),
        "a password sign-in lacks approve"
    );
    let cafe = login_via(&node, &email, "192.0.2.7").await;
    assert_eq!(permissions_of(&cafe), json!(["orders:read"]));
    // Refreshing from elsewhere re-evaluates: the office session loses refund on the road.
    let response = node
        .client
        .post(node.at("/auth/reissue"))
        .header("x-forwarded-for", "192.0.2.7")
        .json(&json!({ "accessToken": office["accessToken"], "refreshToken": office["refreshToken"] }))
        .send()
        .await
        .unwrap();
    let refreshed: Value = response.json().await.unwrap();
    assert_eq!(permissions_of(&refreshed), json!(["orders:read"]), "{refreshed}");
    // A sign-in with a second factor meets the acr condition (the testkit's sessions hold
    // the role `member`, here a child of clerk).
    define(&node, &token, "member", &[], &["clerk"]).await;
    let client = node.create_client("abac-app", true, "web").await;
    let issued = node
        .login_with(&user_id, &client, None, &["pwd", "otp", "mfa"])
        .await
        .unwrap();
    let claims = payload(&issued.access_token);
    assert!(
        claims["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("orders:approve")),
        "{claims}"
    );

    // The decision says which condition failed.
    let check = |ip: &str| {
        let body = json!({ "email": email, "permission": "orders:refund", "ip": ip });
        let (node, token) = (&node, token.clone());
        async move {
            admin(node, &token, Method::POST, "/admin/authz/check", Some(body))
                .await
                .1
        }
    };
    assert_eq!(check("10.200.0.1").await["allowed"], true);
    let denied = check("192.0.2.7").await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(
        denied["reason"].as_str().unwrap().contains("condition"),
        "{denied}"
    );
    let (status, _) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/authz/check",
        Some(json!({ "email": email, "permission": "orders:refund", "ip": "not-an-ip" })),
    )
    .await;
    assert_eq!(status, 400);
}

async fn token_permissions_are_bounded_and_past_the_bound_there_are_none(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token("authz-bound").await;
    let perms =
        |prefix: &str, n: usize| -> Vec<String> { (0..n).map(|i| format!("{prefix}:{i:03}")).collect() };
    // One role past the bound (itself, or through a parent) is refused and not stored.
    let (status, body) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/roles",
        Some(json!({ "name": "huge", "permissions": perms("h", 257) })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("at most 256"), "{body}");
    assert_eq!(
        admin(&node, &token, Method::GET, "/admin/roles/huge", None)
            .await
            .0,
        404
    );
    for (name, prefix) in [("a", "a"), ("b", "b"), ("c", "c")] {
        let (status, body) = admin(
            &node,
            &token,
            Method::POST,
            "/admin/roles",
            Some(json!({ "name": name, "permissions": perms(prefix, 100) })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/roles",
        Some(json!({ "name": "abc", "parents": ["a", "b", "c"] })),
    )
    .await;
    assert_eq!(status, 400, "300 through parents: {body}");

    // A user holding all three gets a token without any permission, and the audit says why.
    let email = who("authz-bound");
    let user_id = node.create_user(&email, PASSWORD).await;
    node.state
        .accounts
        .set_roles(
            &user_id,
            &["a".into(), "b".into(), "c".into()],
            &Default::default(),
            "operator",
            &Default::default(),
        )
        .await
        .unwrap();
    let (status, tokens) = login(&node, &email, PASSWORD).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = payload(tokens["accessToken"].as_str().unwrap());
    assert!(claims.get("permissions").is_none(), "{claims}");
    assert_eq!(claims["roles"], json!(["a", "b", "c"]));
    let (_, audit) = admin(
        &node,
        &token,
        Method::GET,
        "/admin/audit?type=token.permissions_overflow",
        None,
    )
    .await;
    assert_eq!(audit["events"][0]["detail"]["permissions"], 300, "{audit}");
    // Two of them fit.
    node.state
        .accounts
        .set_roles(
            &user_id,
            &["a".into(), "b".into()],
            &Default::default(),
            "operator",
            &Default::default(),
        )
        .await
        .unwrap();
    let (_, tokens) = login(&node, &email, PASSWORD).await;
    let claims = payload(tokens["accessToken"].as_str().unwrap());
    assert_eq!(
        claims["permissions"].as_array().map(Vec::len),
        Some(200),
        "{claims}"
    );
}
