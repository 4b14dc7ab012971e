//! The first-party JSON API end to end, with mail delivered over real SMTP to a local sink:
//! signup → verification link → login → me → reissue → forgot → reset → change.

use std::time::Duration;

use serde_json::json;
use tessera_testkit::{backend_tests, link_token, spawn_with_mail, Backend};

backend_tests!(signup_verify_login_reissue_reset_change);

const PASSWORD: &str = "correct horse battery staple 42";
const NEW_PASSWORD: &str = "violet tractor whispers at dawn 7";

async fn signup_verify_login_reissue_reset_change(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };

    // Signup normalises the address and mails a verification link.
    let (status, _, body) = node
        .post_json(
            "/auth/signup",
            &json!({"email": "  Alice@Example.COM ", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"email": "alice@example.com"}));
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].to, "alice@example.com");
    let token = link_token(&mails[0].body, "/auth/verify-email").expect("verification link");

    // Not verified yet: refused, after the password was checked.
    let login = json!({"email": "alice@example.com", "password": PASSWORD});
    let (status, _, body) = node.post_json("/auth/login", &login, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("email_not_verified")),
        "{body}"
    );

    let (status, body) = node.get_json(&format!("/auth/verify-email?token={token}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"email": "alice@example.com", "verified": true}));
    let (status, body) = node.get_json(&format!("/auth/verify-email?token={token}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_link")),
        "a link works once"
    );

    // Login: the shape the current clients expect.
    let (status, headers, pair) = node.post_json("/auth/login", &login, None).await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(pair["grantType"], "Bearer");
    let expires_ms = pair["accessTokenExpiresIn"].as_i64().unwrap();
    let now_ms = tessera_idp::clock::Clock::now(node.clock.as_ref()) * 1000;
    assert!(
        (now_ms + 890_000..=now_ms + 910_000).contains(&expires_ms),
        "{expires_ms} vs {now_ms}"
    );
    let access = pair["accessToken"].as_str().unwrap().to_owned();
    let refresh = pair["refreshToken"].as_str().unwrap().to_owned();

    let (status, me) = node.get_bearer("/api/member/me", &access).await;
    assert_eq!((status, me), (200, json!({"email": "alice@example.com"})));
    let (status, me) = node.get_bearer("/auth/me", &access).await;
    assert_eq!(status, 200);
    assert_eq!(me["emailVerified"], true);

    // Reissue: a new pair; the old refresh token is spent.
    let (status, _, pair2) = node
        .post_json(
            "/auth/reissue",
            &json!({"accessToken": access, "refreshToken": refresh}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{pair2}");
    assert_ne!(pair2["refreshToken"], pair["refreshToken"]);
    // An access token of another session cannot vouch for this refresh token.
    let (_, _, other) = node.post_json("/auth/login", &login, None).await;
    let (status, _, body) = node
        .post_json(
            "/auth/reissue",
            &json!({"accessToken": other["accessToken"], "refreshToken": pair2["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(status, 401, "{body}");

    // Forgot → reset: a weak password is refused without spending the link.
    let (status, _, _) = node
        .post_json(
            "/auth/password/forgot",
            &json!({"email": "ALICE@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let (status, _, _) = node
        .post_json(
            "/auth/password/forgot",
            &json!({"email": "nobody@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "the same answer for an unknown address");
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    let reset = link_token(&mails[1].body, "/auth/password/reset").expect("reset link");
    let (status, _, body) = node
        .post_json(
            "/auth/password/reset",
            &json!({"token": reset, "password": "password1"}),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("password_too_weak")),
        "{body}"
    );
    let (status, _, body) = node
        .post_json(
            "/auth/password/reset",
            &json!({"token": reset, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("password_reused")),
        "{body}"
    );
    let (status, _, body) = node
        .post_json(
            "/auth/password/reset",
            &json!({"token": reset, "password": NEW_PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = node
        .post_json(
            "/auth/password/reset",
            &json!({"token": reset, "password": NEW_PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 400, "a reset link works once");
    // Every session ended: the old access token is refused.
    let (status, _) = node
        .get_bearer("/api/member/me", pair2["accessToken"].as_str().unwrap())
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = node.post_json("/auth/login", &login, None).await;
    assert_eq!(status, 401, "the old password no longer works");

    // Change password while signed in.
    let login = json!({"email": "alice@example.com", "password": NEW_PASSWORD});
    let (status, _, pair) = node.post_json("/auth/login", &login, None).await;
    assert_eq!(status, 200, "{pair}");
    let access = pair["accessToken"].as_str().unwrap();
    let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});
    let (status, _, body) = node
        .post_json("/auth/password/change", &change("wrong", PASSWORD), Some(access))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_credentials")),
        "{body}"
    );
    let (status, _, body) = node
        .post_json(
            "/auth/password/change",
            &change(NEW_PASSWORD, PASSWORD),
            Some(access),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("password_reused")),
        "{body}"
    );
    let third = "amber kettle sings over mountains 19";
    let (status, _, body) = node
        .post_json(
            "/auth/password/change",
            &change(NEW_PASSWORD, third),
            Some(access),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // The session that changed it stays signed in.
    let (status, _) = node.get_bearer("/api/member/me", access).await;
    assert_eq!(status, 200);
}
