//! Protected routes: tokens from a real identity provider, identity headers, scopes and
//! roles, rate limits per subject, revocation latency, and a provider that is down.

use std::time::{Duration, Instant};

use serde_json::json;
use tessera_gateway::{RateLimitConfig, RouteConfig};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_route_requires_a_valid_token_and_forwards_the_identity() {
    let node = node().await;
    let upstream = Upstream::start("orders");
    let gateway = TestGateway::start(config(&node.url, vec![route("/orders", &[&upstream])])).await;
    let client = node.create_client("shop-web", true, "web").await;
    let alice = login(&node, &client, "alice").await;

    // No token: a challenge without an error code (RFC 6750 §3.1).
    let (status, headers, body) = get(&gateway.at("/orders/1"), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"api\"");
    assert_eq!(headers["content-type"], "application/problem+json");
    // Another scheme is no bearer credential either.
    let (status, _, _) = get_with(&gateway.at("/orders/1"), None, &[("authorization", "Basic YTpi")]).await;
    assert_eq!(status, 401);
    // Malformed Bearer value.
    let (status, headers, _) =
        get_with(&gateway.at("/orders/1"), None, &[("authorization", "Bearer a b")]).await;
    assert_eq!(status, 400);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_request"));

    // Tampered: the payload changed under the same signature.
    let (status, headers, body) = get(&gateway.at("/orders/1"), Some(&tampered(&alice.token))).await;
    assert_eq!(status, 401, "{body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
        "{challenge}"
    );
    assert_eq!(body["error"], "invalid_token");

    // Expired: the provider's own signature, lifetime over long ago.
    let old = expired(&node, &alice.token);
    let (status, headers, _) = get(&gateway.at("/orders/1"), Some(&old)).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // Not a JWT at all.
    let (status, _, _) = get(&gateway.at("/orders/1"), Some("not.a.jwt")).await;
    assert_eq!(status, 401);
    assert_eq!(upstream.hits(), 0, "nothing refused reached the upstream");

    // Valid: the upstream sees who is calling, and spoofed identity is gone.
    let (status, headers, body) = get_with(
        &gateway.at("/orders/1?x=1"),
        Some(&alice.token),
        &[
            ("x-auth-subject", "admin"),
            ("X-Auth-Roles", "admin"),
            ("x-auth-tenant", "other"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = &body["headers"];
    assert_eq!(seen["x-auth-subject"], "alice");
    assert_eq!(seen["x-auth-client"], "shop-web");
    assert_eq!(seen["x-auth-scopes"], "openid profile");
    assert_eq!(seen["x-auth-roles"], "member");
    assert_eq!(seen["x-auth-session"], alice.session.as_str());
    assert!(seen.get("x-auth-tenant").is_none(), "{seen}");
    assert_eq!(seen["authorization"], format!("Bearer {}", alice.token));
    assert_eq!(body["path"], "/orders/1");
    assert_eq!(body["query"], "x=1");
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(upstream.hits(), 1);
    // Each refusal was for the reason the test meant.
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    let text = metrics["text"].as_str().unwrap();
    for line in [
        "tessera_gateway_verification_failures_total{reason=\"missing\"} 2",
        "tessera_gateway_verification_failures_total{reason=\"invalid_request\"} 1",
        "tessera_gateway_verification_failures_total{reason=\"signature\"} 1",
        "tessera_gateway_verification_failures_total{reason=\"expired\"} 1",
        "tessera_gateway_verification_failures_total{reason=\"malformed\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// One rule for `aud` at the gateway and at the provider's own endpoints (RFC 9068 §4: a
/// token may name several audiences, and is for a resource server when one of them is its
/// own). The gateway used to accept an array the provider refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_array_is_judged_alike_by_the_gateway_and_the_provider() {
    let node = node().await;
    let upstream = Upstream::start("orders");
    let gateway = TestGateway::start(config(&node.url, vec![route("/orders", &[&upstream])])).await;
    let client = node.create_client("shop-web", false, "web").await;
    let alice = login(&node, &client, "alice").await;
    let ours = node.config.audience();
    let other = "https://other.example";
    let cases = [
        (json!(ours), true),
        (json!([ours]), true),
        (json!([other, ours]), true),
        (json!([ours, other]), true),
        (json!(other), false),
        (json!([other]), false),
        (json!([]), false),
        (json!([format!("{ours}/")]), false),
        (json!(null), false),
        (json!(7), false),
    ];
    for (aud, accepted) in cases {
        let token = resigned(&node, &alice.token, |claims| claims["aud"] = aud.clone());
        let (status, _, body) = get(&gateway.at("/orders/1"), Some(&token)).await;
        assert_eq!(
            status,
            if accepted { 200 } else { 401 },
            "gateway, aud {aud}: {body}"
        );
        let (status, body) = node.get_bearer("/auth/sessions", &token).await;
        assert_eq!(
            status,
            if accepted { 200 } else { 401 },
            "provider, aud {aud}: {body}"
        );
        let introspected = node.introspect(&client, &token).await;
        assert_eq!(
            introspected["active"], accepted,
            "introspection, aud {aud}: {introspected}"
        );
        if accepted {
            // Reported as the token has it.
            assert_eq!(introspected["aud"], aud);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_all_required_and_roles_any() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let with = |prefix: &str, scopes: &[&str], roles: &[&str]| RouteConfig {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        ..route(prefix, &[&upstream])
    };
    let gateway = TestGateway::start(config(
        &node.url,
        vec![
            with("/needs-orders", &["orders:read"], &[]),
            with("/needs-profile", &["openid", "profile"], &[]),
            with("/needs-one-missing", &["openid", "orders:read"], &[]),
            with("/admins", &[], &["admin"]),
            with("/staff", &[], &["admin", "member"]),
        ],
    ))
    .await;
    let client = node.create_client("shop-web", true, "web").await;
    let token = login(&node, &client, "bob").await.token;

    let (status, headers, body) = get(&gateway.at("/needs-orders"), Some(&token)).await;
    assert_eq!(status, 403, "{body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"orders:read\""),
        "{challenge}"
    );
    let (status, _, _) = get(&gateway.at("/needs-one-missing"), Some(&token)).await;
    assert_eq!(status, 403, "every scope is required");
    let (status, _, _) = get(&gateway.at("/needs-profile"), Some(&token)).await;
    assert_eq!(status, 200);
    let (status, headers, body) = get(&gateway.at("/admins"), Some(&token)).await;
    assert_eq!(status, 403);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    assert!(body["detail"].as_str().unwrap().contains("admin"));
    let (status, _, _) = get(&gateway.at("/staff"), Some(&token)).await;
    assert_eq!(status, 200, "one of the roles is enough");
    assert_eq!(upstream.hits(), 2);

    // Counted, by route and by what was missing.
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains(
            "tessera_gateway_authorization_failures_total{route=\"/needs-orders\",missing=\"scope\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("tessera_gateway_authorization_failures_total{route=\"/admins\",missing=\"role\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_with_acr_values_asks_for_a_stronger_sign_in() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let mfa_only = RouteConfig {
        acr_values: vec!["urn:tessera:acr:mfa".into()],
        ..route("/payouts", &[&upstream])
    };
    let gateway = TestGateway::start(config(&node.url, vec![mfa_only])).await;
    let client = node.create_client("shop-web", true, "web").await;

    // A password sign-in is told to step up (RFC 9470), and the upstream never sees it.
    let token = login(&node, &client, "erin").await.token;
    let (status, headers, body) = get(&gateway.at("/payouts"), Some(&token)).await;
    assert_eq!(status, 401, "{body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"")
            && challenge.contains("acr_values=\"urn:tessera:acr:mfa\""),
        "{challenge}"
    );
    assert_eq!(upstream.hits(), 0);
    // After a sign-in with a second factor it goes through.
    let issued = node
        .login_with("erin", &client, None, &["pwd", "otp", "mfa"])
        .await
        .unwrap();
    let (status, _, body) = get(&gateway.at("/payouts"), Some(&issued.access_token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.hits(), 1);
    // A client's own token names no sign-in at all.
    let (_, client_token) = node.admin_token("payout-job").await;
    let (status, _, _) = get(&gateway.at("/payouts"), Some(&client_token)).await;
    assert_eq!(status, 401);
    // Both refusals are counted on the route.
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains("tessera_gateway_authorization_failures_total{route=\"/payouts\",missing=\"acr\"} 2"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_subject_answers_429_with_retry_after() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let limited = RouteConfig {
        rate_limit: Some(RateLimitConfig {
            per_subject: Some(3),
            per_ip: None,
            per_key: None,
            window_secs: 3600,
        }),
        ..route("/limited", &[&upstream])
    };
    let gateway = TestGateway::start(config(&node.url, vec![limited])).await;
    let client = node.create_client("shop-web", true, "web").await;
    let carol = login(&node, &client, "carol").await.token;
    let dave = login(&node, &client, "dave").await.token;

    // At most 3 per window; the first refusal comes after exactly 3 successes (unless the
    // window turned over meanwhile, when the count starts again).
    let mut successes = 0;
    let mut refusal = None;
    for _ in 0..7 {
        let (status, headers, _) = get(&gateway.at("/limited"), Some(&carol)).await;
        match status {
            200 => successes += 1,
            429 => {
                refusal = Some(headers);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let headers = refusal.expect("never limited");
    assert!(successes == 3 || successes == 6, "{successes}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(headers["content-type"], "application/problem+json");
    // Another subject has its own count.
    let (status, _, _) = get(&gateway.at("/limited"), Some(&dave)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_is_refused_within_one_poll_interval() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let critical = RouteConfig {
        auth_cache: false,
        ..route("/critical", &[&upstream])
    };
    let cfg = config(&node.url, vec![route("/api", &[&upstream]), critical]);
    let poll = Duration::from_secs(cfg.revocation_poll_secs);
    let gateway = TestGateway::start(cfg).await;
    let client = node.create_client("shop-web", true, "web").await;
    let erin = login(&node, &client, "erin").await;
    let other = login(&node, &client, "frank").await;
    // Accepted, and now in the auth cache.
    for _ in 0..3 {
        assert_eq!(get(&gateway.at("/api/x"), Some(&erin.token)).await.0, 200);
    }
    assert_eq!(get(&gateway.at("/critical"), Some(&erin.token)).await.0, 200);

    end_session(&node, &erin.session).await;
    let revoked_at = Instant::now();
    let mut rejected_after = None;
    while revoked_at.elapsed() < Duration::from_secs(10) {
        let (status, _, _) = get(&gateway.at("/api/x"), Some(&erin.token)).await;
        if status == 401 {
            rejected_after = Some(revoked_at.elapsed());
            break;
        }
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let latency = rejected_after.expect("the revoked token was still accepted after 10 s");
    eprintln!(
        "revocation latency through the gateway: {latency:?} (revocation_poll_secs = {})",
        poll.as_secs()
    );
    // A bound on behaviour: one poll interval, plus a second for the poll itself and a
    // loaded machine.
    assert!(latency <= poll + Duration::from_secs(1), "{latency:?}");
    // The uncached route refuses it too; other sessions go on.
    assert_eq!(get(&gateway.at("/critical"), Some(&erin.token)).await.0, 401);
    assert_eq!(get(&gateway.at("/api/x"), Some(&other.token)).await.0, 200);
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains("tessera_gateway_verification_failures_total{reason=\"revoked\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_at_start_blocks_protected_routes_only_until_it_answers() {
    // Nothing listens on this port.
    let port = tessera_testkit::free_port();
    let upstream = Upstream::start("svc");
    let gateway = TestGateway::start(config(
        &format!("http://127.0.0.1:{port}"),
        vec![
            public_route("/public", &[&upstream]),
            route("/private", &[&upstream]),
        ],
    ))
    .await;
    let (status, _, _) = get(&gateway.at("/public/x"), None).await;
    assert_eq!(status, 200, "public routes do not need the provider");
    let (status, headers, body) = get(&gateway.at("/private/x"), Some("a.b.c")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert!(!headers.contains_key("www-authenticate"));
    let (status, _, body) = get(&gateway.at("/readyz"), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    let (status, _, _) = get(&gateway.at("/healthz"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_require_permissions_from_the_tokens_roles() {
    let node = node().await;
    // The testkit's sessions hold the role `member`; give it permissions.
    node.state
        .authz
        .put_role(
            "member",
            tessera_idp::authz::RoleSpec {
                permissions: vec!["orders:read".into(), "orders:list".into()],
                ..Default::default()
            },
            true,
            "operator",
            &Default::default(),
        )
        .await
        .unwrap();
    let upstream = Upstream::start("svc");
    let all = RouteConfig {
        permissions: vec!["orders:read".into(), "orders:list".into()],
        ..route("/orders", &[&upstream])
    };
    let refunds = RouteConfig {
        permissions: vec!["orders:read".into(), "orders:refund".into()],
        ..route("/refunds", &[&upstream])
    };
    let any = RouteConfig {
        any_permission: vec!["orders:refund".into(), "orders:list".into()],
        ..route("/any", &[&upstream])
    };
    let none = RouteConfig {
        any_permission: vec!["orders:refund".into()],
        ..route("/none", &[&upstream])
    };
    let gateway = TestGateway::start(config(&node.url, vec![all, refunds, any, none])).await;
    let client = node.create_client("shop-web", true, "web").await;
    let token = login(&node, &client, "frank").await.token;

    let (status, _, body) = get(&gateway.at("/orders"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-auth-permissions"], "orders:list orders:read");
    let (status, _, _) = get(&gateway.at("/any"), Some(&token)).await;
    assert_eq!(status, 200, "one of any_permission is enough");
    for path in ["/refunds", "/none"] {
        let (status, headers, body) = get(&gateway.at(path), Some(&token)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope"));
        assert!(
            body["detail"].as_str().unwrap().contains("orders:refund"),
            "{body}"
        );
    }
    assert_eq!(upstream.hits(), 2);
    // A forged X-Auth-Permissions never reaches the upstream.
    let (_, _, body) = get_with(
        &gateway.at("/orders"),
        Some(&token),
        &[("x-auth-permissions", "admin:all")],
    )
    .await;
    assert_eq!(body["headers"]["x-auth-permissions"], "orders:list orders:read");
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains(
            "tessera_gateway_authorization_failures_total{route=\"/refunds\",missing=\"permission\"} 1"
        ),
        "{text}"
    );
}
