//! Authorization (issue 13), continued: assignments with terms (a channel, an expiry, a
//! condition), time windows in a time zone, and dynamic separation of duty (the roles a
//! session activates at login and refresh) — through the admin API, the JSON sign-in and
//! the token endpoint, and their abuse.

use reqwest::Method;
use serde_json::{json, Value};
use tessera_testkit::{backend_tests, spawn, Backend, TestNode};

use crate::authz::{admin, define, permissions_of};
use crate::mfa::{payload, who, PASSWORD};

backend_tests!(
    assignments_hold_on_their_channel_until_their_expiry_and_in_their_hours,
    a_session_activates_one_side_of_a_dynamic_rule,
    concurrent_grants_to_one_user_lose_none,
);

fn now(node: &TestNode) -> i64 {
    tessera_idp::clock::Clock::now(node.clock.as_ref())
}

/// `POST /auth/login` with extra fields.
async fn login(node: &TestNode, email: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({ "email": email, "password": PASSWORD });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, _, answer) = node.post_json("/auth/login", &body, None).await;
    (status, answer)
}

/// `POST /auth/reissue` of `tokens` with extra fields.
async fn reissue(node: &TestNode, tokens: &Value, extra: Value) -> (u16, Value) {
    let mut body = json!({ "accessToken": tokens["accessToken"], "refreshToken": tokens["refreshToken"] });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, _, answer) = node.post_json("/auth/reissue", &body, None).await;
    (status, answer)
}

fn roles_of(tokens: &Value) -> Value {
    payload(tokens["accessToken"].as_str().unwrap())["roles"].clone()
}

async fn assignments_hold_on_their_channel_until_their_expiry_and_in_their_hours(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token("authz-terms").await;
    define(&node, &token, "support", &["tickets:write"], &[]).await;
    define(&node, &token, "stand-in", &["users:write"], &[]).await;
    // A permission held only in the ten minutes from now, in UTC; the time is the test
    // clock's, so the window is where the test puts it whatever the time of day.
    let minute = now(&node).rem_euclid(86_400) / 60;
    let hhmm = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1_440) / 60, m.rem_euclid(60));
    let (status, body) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/roles",
        Some(json!({
            "name": "night-clerk",
            "permissions": ["till:open", "till:count"],
            "conditions": { "till:open": { "time": { "zone": "UTC", "from": hhmm(minute), "to": hhmm(minute + 10) } } }
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let email = who("authz-terms");
    let user_id = node.create_user(&email, PASSWORD).await;
    let until = now(&node) + 600;
    let (status, user) = admin(
        &node,
        &token,
        Method::POST,
        &format!("/admin/users/{user_id}/roles"),
        Some(json!({
            "roles": ["night-clerk", "stand-in", "support"],
            "role_terms": {
                "support": { "condition": { "channels": ["mobile"] } },
                "stand-in": { "until": until }
            }
        })),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(
        user["role_terms"]["stand-in"],
        json!({ "until": until }),
        "{user}"
    );

    // On the web: not the mobile-only assignment.
    let (status, web) = login(&node, &email, json!({})).await;
    assert_eq!(status, 200, "{web}");
    assert_eq!(roles_of(&web), json!(["night-clerk", "stand-in"]));
    assert_eq!(
        permissions_of(&web),
        json!(["till:count", "till:open", "users:write"])
    );
    let (status, mobile) = login(&node, &email, json!({ "channel": "mobile" })).await;
    assert_eq!(status, 200, "{mobile}");
    assert_eq!(
        permissions_of(&mobile),
        json!(["tickets:write", "till:count", "till:open", "users:write"])
    );

    // Fifteen minutes on: the stand-in assignment ended and the window closed; the refresh
    // says so without a new sign-in.
    node.clock.advance(15 * 60);
    let (status, later) = reissue(&node, &web, json!({})).await;
    assert_eq!(status, 200, "{later}");
    assert_eq!(roles_of(&later), json!(["night-clerk"]));
    assert_eq!(permissions_of(&later), json!(["till:count"]));

    // The decision at a given time says the same, and why.
    let decide = |permission: &str, at: i64| {
        let body = json!({ "email": email, "permission": permission, "channel": "web", "at": at });
        let (node, token) = (&node, token.clone());
        async move {
            admin(node, &token, Method::POST, "/admin/authz/check", Some(body))
                .await
                .1
        }
    };
    let then = until - 300;
    assert_eq!(decide("till:open", then).await["allowed"], true);
    assert_eq!(decide("users:write", then).await["allowed"], true);
    let denied = decide("users:write", now(&node)).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(denied["reason"].as_str().unwrap().contains("terms"), "{denied}");
    assert_eq!(decide("till:open", now(&node)).await["allowed"], false);

    // Malformed terms change nothing.
    for (bad, why) in [
        (json!({ "support": { "until": 0 } }), "not a time"),
        (json!({ "member": { "until": until } }), "not one of the roles"),
        (
            json!({ "support": { "condition": { "time": { "zone": "Mars/Olympus", "from": "08:00", "to": "18:00" } } } }),
            "time zone",
        ),
        (
            json!({ "support": { "condition": { "time": { "zone": "UTC", "from": "8", "to": "18:00" } } } }),
            "HH:MM",
        ),
        (json!({ "support": { "condition": {} } }), "empty"),
        (json!({ "support": { "expires": 5 } }), "wrong type or value"),
    ] {
        let (status, body) = admin(
            &node,
            &token,
            Method::POST,
            &format!("/admin/users/{user_id}/roles"),
            Some(json!({ "roles": ["support"], "role_terms": bad })),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.to_string().contains(why), "{why}: {body}");
    }
    let stored = node.state.accounts.user(&user_id).await.unwrap().unwrap();
    assert_eq!(stored.roles, ["night-clerk", "stand-in", "support"]);
    assert_eq!(stored.role_terms.len(), 2);

    // Granting one role keeps the others' terms; revoking one drops its terms.
    let terms = tessera_idp::authz::AssignmentTerms {
        until: Some(until + 86_400),
        condition: None,
    };
    let user = node
        .state
        .accounts
        .grant_role(&user_id, "stand-in", terms, "operator", &Default::default())
        .await
        .unwrap();
    assert_eq!(user.role_terms["stand-in"], json!({ "until": until + 86_400 }));
    assert_eq!(
        user.role_terms["support"],
        json!({ "condition": { "channels": ["mobile"] } })
    );
    let user = node
        .state
        .accounts
        .revoke_role(&user_id, "support", "operator", &Default::default())
        .await
        .unwrap();
    assert!(!user.role_terms.contains_key("support"));
}

async fn a_session_activates_one_side_of_a_dynamic_rule(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, token) = node.admin_token("authz-dsd").await;
    define(&node, &token, "cashier", &["till:open"], &[]).await;
    define(&node, &token, "head-cashier", &["till:close"], &["cashier"]).await;
    define(&node, &token, "auditor", &["till:audit"], &[]).await;
    let (status, rule) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/sod",
        Some(json!({ "roles": ["auditor", "cashier"], "dynamic": true })),
    )
    .await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!(rule["dynamic"], true);

    // A dynamic rule does not stop holding both.
    let email = who("authz-dsd");
    let user_id = node.create_user(&email, PASSWORD).await;
    let (status, user) = admin(
        &node,
        &token,
        Method::POST,
        &format!("/admin/users/{user_id}/roles"),
        Some(json!({ "roles": ["auditor", "head-cashier", "member"] })),
    )
    .await;
    assert_eq!(status, 200, "{user}");

    // Chosen none: neither side of the rule is active.
    let (status, plain) = login(&node, &email, json!({})).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(roles_of(&plain), json!(["member"]));
    assert_eq!(permissions_of(&plain), json!([]));
    // One side, by name (with what it inherits).
    let (status, till) = login(&node, &email, json!({ "roles": ["head-cashier", "member"] })).await;
    assert_eq!(status, 200, "{till}");
    assert_eq!(roles_of(&till), json!(["cashier", "head-cashier", "member"]));
    assert_eq!(permissions_of(&till), json!(["till:close", "till:open"]));

    // Both at once, a role not assigned, or a malformed name: refused, no session made.
    let before = node.state.tokens.sessions_of(&user_id).await.unwrap().len();
    for (roles, why) in [
        (
            json!(["auditor", "head-cashier"]),
            "may not be active in one session",
        ),
        (json!(["admin"]), "not assigned"),
        (json!(["has space"]), "invalid roles"),
    ] {
        let (status, body) = login(&node, &email, json!({ "roles": roles })).await;
        assert_eq!(status, 400, "{roles}: {body}");
        assert!(body.to_string().contains(why), "{why}: {body}");
    }
    assert_eq!(
        node.state.tokens.sessions_of(&user_id).await.unwrap().len(),
        before
    );

    // A refresh switches sides; the choice stays with the session.
    let (status, audit) = reissue(&node, &till, json!({ "roles": ["auditor"] })).await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(roles_of(&audit), json!(["auditor"]));
    assert_eq!(permissions_of(&audit), json!(["till:audit"]));
    let (status, still) = reissue(&node, &audit, json!({})).await;
    assert_eq!(status, 200, "{still}");
    assert_eq!(roles_of(&still), json!(["auditor"]));
    // A refused switch leaves the refresh token as it was: it still works.
    let (status, body) = reissue(&node, &still, json!({ "roles": ["auditor", "cashier"] })).await;
    assert_eq!(status, 400, "{body}");
    let (status, after) = reissue(&node, &still, json!({})).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(roles_of(&after), json!(["auditor"]));

    // The OAuth token endpoint takes `roles` on a refresh, refused as invalid_request.
    let client = node.create_client("dsd-app", false, "web").await;
    let issued = node.login(&user_id, &client).await.unwrap();
    let form = |roles: &'static str, refresh: String| {
        let (node, client) = (&node, &client);
        async move {
            let response = node
                .post_form(
                    "/oauth2/token",
                    client,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &refresh),
                        ("roles", roles),
                    ],
                )
                .await;
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    // A scope wider than the session's is refused before the token rotates, too (it did
    // rotate before: the client lost its token to a bad parameter).
    let response = node
        .post_form(
            "/oauth2/token",
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", issued.refresh_token.secret()),
                ("scope", "openid admin"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let (status, body) = form("auditor head-cashier", issued.refresh_token.secret().to_owned()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // An inherited role is not an assignment: the session names what it was given.
    let (status, body) = form("cashier", issued.refresh_token.secret().to_owned()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = form("head-cashier", issued.refresh_token.secret().to_owned()).await;
    assert_eq!(status, 200, "{body}");
    let claims = payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["roles"], json!(["cashier", "head-cashier"]), "{claims}");
    // Another client's refresh token is refused before any role is looked at.
    let other = node.create_client("dsd-other", false, "web").await;
    let response = node
        .post_form(
            "/oauth2/token",
            &other,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ("roles", "head-cashier"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");

    // The decision tells that a session must ask for the role.
    let (_, decision) = admin(
        &node,
        &token,
        Method::POST,
        "/admin/authz/check",
        Some(json!({ "email": email, "permission": "till:audit" })),
    )
    .await;
    assert_eq!(decision["allowed"], true, "{decision}");
    assert!(
        decision["reason"]
            .as_str()
            .unwrap()
            .contains("dynamic separation-of-duty"),
        "{decision}"
    );
}

/// Grants read the user's roles and write them back only if unchanged (compare-and-set):
/// racing grants all land, none overwrites another.
async fn concurrent_grants_to_one_user_lose_none(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(&who("authz-race"), PASSWORD).await;
    let grants = (0..4).map(|i| {
        let accounts = node.state.accounts.clone();
        let user_id = user_id.clone();
        tokio::spawn(async move {
            accounts
                .grant_role(
                    &user_id,
                    &format!("racer-{i}"),
                    Default::default(),
                    "operator",
                    &Default::default(),
                )
                .await
        })
    });
    for grant in futures_util::future::join_all(grants).await {
        grant.unwrap().unwrap();
    }
    let user = node.state.accounts.user(&user_id).await.unwrap().unwrap();
    assert_eq!(user.roles, ["member", "racer-0", "racer-1", "racer-2", "racer-3"]);
}
