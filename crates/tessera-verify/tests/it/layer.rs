//! The axum layer, extractor and guards, served on 127.0.0.1:0.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use serde_json::json;
use tessera_verify::axum::{
    Authenticated, RequireAcr, RequirePermission, RequireRole, RequireScope, VerifyLayer,
};
use tessera_verify::{Introspector, Verifier};

use crate::common::*;

async fn me(Authenticated(claims): Authenticated) -> String {
    claims.subject
}

async fn maybe(who: Option<Authenticated>) -> String {
    who.map_or_else(|| "anonymous".to_owned(), |a| a.0.subject)
}

async fn in_handler(who: Authenticated) -> Result<&'static str, tessera_verify::axum::AuthRejection> {
    who.require_scope("orders:write")?;
    Ok("written")
}

fn app(verifier: Arc<Verifier>) -> Router {
    let orders = Router::new()
        .route("/orders", get(me))
        .route_layer(RequireScope::new("orders:read"));
    let profile = Router::new()
        .route("/profile", get(me))
        .route_layer(RequireScope::new("profile"));
    let admin = Router::new()
        .route("/admin", get(me))
        .route_layer(RequireRole::new("admin"));
    let member = Router::new()
        .route("/member", get(me))
        .route_layer(RequireRole::new("member"));
    let critical = Router::new()
        .route("/critical", get(me))
        .route_layer(VerifyLayer::new(verifier.clone()).realm("shop").uncached());
    Router::new()
        .route("/me", get(me))
        .route("/write", get(in_handler))
        .merge(orders)
        .merge(profile)
        .merge(admin)
        .merge(member)
        .layer(VerifyLayer::new(verifier).realm("shop"))
        .merge(critical)
        .route("/public", get(maybe))
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

struct Answer {
    status: u16,
    challenge: Option<String>,
    body: String,
}

async fn get_with(url: &str, authorization: &[&str]) -> Answer {
    let mut request = unpooled().get(url);
    for value in authorization {
        request = request.header("authorization", *value);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        challenge: response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_answers_as_rfc_6750_says() {
    let node = node().await;
    let verifier = Arc::new(verifier(&node).await);
    let url = serve(app(verifier.clone())).await;
    let (token, _, sid) = login(&node, "user-1").await;
    let bearer = format!("Bearer {token}");

    // No credentials, other credentials, a token in the query: 401 without an error code.
    for (path, authorization) in [
        ("/me", vec![]),
        ("/me", vec!["Basic dXNlcjpwYXNz"]),
        (&*format!("/me?access_token={token}"), vec![]),
    ] {
        let answer = get_with(&format!("{url}{path}"), &authorization).await;
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(
            answer.challenge.as_deref(),
            Some("Bearer realm=\"shop\""),
            "{path}"
        );
    }

    // A valid token.
    let answer = get_with(&format!("{url}/me"), &[&bearer]).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "user-1"));

    // A bad token: 401 invalid_token, the reason not disclosed.
    let answer = get_with(&format!("{url}/me"), &[&format!("{bearer}x")]).await;
    assert_eq!(answer.status, 401);
    let challenge = answer.challenge.unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"shop\", error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(!challenge.contains("signature"), "{challenge}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["error"],
        "invalid_token"
    );

    // Two Authorization headers, or a malformed one: 400 invalid_request.
    let answer = get_with(&format!("{url}/me"), &[&bearer, &bearer]).await;
    assert_eq!(answer.status, 400);
    assert!(answer.challenge.unwrap().contains("error=\"invalid_request\""));
    let answer = get_with(&format!("{url}/me"), &["Bearer a b"]).await;
    assert_eq!(answer.status, 400);

    // Scopes: "openid profile"; roles: ["member"].
    let answer = get_with(&format!("{url}/orders"), &[&bearer]).await;
    assert_eq!(answer.status, 403);
    let challenge = answer.challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"orders:read\""),
        "{challenge}"
    );
    assert_eq!(get_with(&format!("{url}/profile"), &[&bearer]).await.status, 200);
    let answer = get_with(&format!("{url}/admin"), &[&bearer]).await;
    assert_eq!(answer.status, 403);
    assert!(answer.challenge.unwrap().contains("error=\"insufficient_scope\""));
    assert_eq!(get_with(&format!("{url}/member"), &[&bearer]).await.status, 200);
    // A guard is no substitute for a token.
    assert_eq!(get_with(&format!("{url}/orders"), &[]).await.status, 401);
    // A check inside the handler.
    let answer = get_with(&format!("{url}/write"), &[&bearer]).await;
    assert_eq!(answer.status, 403);
    assert!(answer.challenge.unwrap().contains("scope=\"orders:write\""));

    // A token with the scope and the role.
    let mut claims = claims(&node);
    claims["scope"] = json!("orders:read orders:write");
    claims["roles"] = json!(["admin"]);
    let admin = format!("Bearer {}", sign(&node, &claims));
    assert_eq!(get_with(&format!("{url}/orders"), &[&admin]).await.status, 200);
    assert_eq!(get_with(&format!("{url}/admin"), &[&admin]).await.status, 200);
    assert_eq!(get_with(&format!("{url}/write"), &[&admin]).await.status, 200);
    assert_eq!(get_with(&format!("{url}/member"), &[&admin]).await.status, 403);

    // Routes outside the layer: optional identity.
    assert_eq!(get_with(&format!("{url}/public"), &[]).await.body, "anonymous");

    // The critical route verifies without the cache; both refuse a revoked session.
    assert_eq!(get_with(&format!("{url}/critical"), &[&bearer]).await.status, 200);
    let hits = verifier.status().cache_hits;
    assert_eq!(get_with(&format!("{url}/critical"), &[&bearer]).await.status, 200);
    assert_eq!(verifier.status().cache_hits, hits);
    end_session(&node, &sid).await;
    assert!(
        eventually(Duration::from_secs(2), async || {
            get_with(&format!("{url}/me"), &[&bearer]).await.status == 401
        })
        .await
    );
    assert_eq!(get_with(&format!("{url}/critical"), &[&bearer]).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_works_with_introspection() {
    let node = node().await;
    let rs = node.create_client("gateway", false, "web").await;
    let introspector = Introspector::new(
        &node.at("/oauth2/introspect"),
        rs.client_id.clone(),
        rs.secret.clone().unwrap(),
    )
    .unwrap();
    let app = Router::new()
        .route("/me", get(me))
        .layer(VerifyLayer::with_authenticator(Arc::new(introspector)));
    let url = serve(app).await;
    let (token, _, _) = login(&node, "user-9").await;
    let answer = get_with(&format!("{url}/me"), &[&format!("Bearer {token}")]).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "user-9"));
    let answer = get_with(&format!("{url}/me"), &["Bearer opaque-garbage"]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\"")
    );

    // The endpoint unreachable: 503, not a blame on the token.
    let closed = format!("http://127.0.0.1:{}/introspect", tessera_testkit::free_port());
    let down = Introspector::new(&closed, "gateway", "s")
        .unwrap()
        .retries(0, Duration::ZERO);
    let app = Router::new()
        .route("/me", get(me))
        .layer(VerifyLayer::with_authenticator(Arc::new(down)));
    let url = serve(app).await;
    let answer = get_with(&format!("{url}/me"), &[&format!("Bearer {token}")]).await;
    assert_eq!(answer.status, 503);
    assert!(answer.challenge.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acr_guards_ask_for_a_stronger_sign_in_as_rfc_9470_says() {
    let node = node().await;
    let verifier = Arc::new(verifier(&node).await);
    let mfa = Router::new()
        .route("/mfa", get(me))
        .route_layer(RequireAcr::new(&["urn:tessera:acr:mfa"]));
    let pwd = Router::new()
        .route("/pwd", get(me))
        .route_layer(RequireAcr::new(&["urn:tessera:acr:pwd"]));
    let url = serve(
        Router::new()
            .route("/me", get(me))
            .merge(mfa)
            .merge(pwd)
            .layer(VerifyLayer::new(verifier).realm("shop")),
    )
    .await;

    // A real password login: its token says acr pwd, amr pwd.
    let (token, _, _) = login(&node, "user-1").await;
    let answer = get_with(&format!("{url}/mfa"), &[&format!("Bearer {token}")]).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let challenge = answer.challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"")
            && challenge.contains("acr_values=\"urn:tessera:acr:mfa\""),
        "{challenge}"
    );
    assert!(
        answer.body.contains("insufficient_user_authentication"),
        "{}",
        answer.body
    );
    let answer = get_with(&format!("{url}/pwd"), &[&format!("Bearer {token}")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    // A sign-in with a second factor meets both; a token without acr (a client's) neither.
    let mut stepped_up = claims(&node);
    stepped_up["acr"] = json!("urn:tessera:acr:mfa");
    stepped_up["amr"] = json!(["pwd", "otp", "mfa"]);
    stepped_up["auth_time"] = json!(now());
    let stepped_up = sign(&node, &stepped_up);
    for path in ["/mfa", "/pwd"] {
        let answer = get_with(&format!("{url}{path}"), &[&format!("Bearer {stepped_up}")]).await;
        assert_eq!((answer.status, answer.body.as_str()), (200, "user-1"), "{path}");
    }
    let no_acr = sign(&node, &claims(&node));
    let answer = get_with(&format!("{url}/pwd"), &[&format!("Bearer {no_acr}")]).await;
    assert_eq!(answer.status, 401);
    // A claim of the wrong type is a bad token, not a weaker one.
    for (claim, value) in [
        ("auth_time", json!("yesterday")),
        ("amr", json!("mfa")),
        ("acr", json!(2)),
    ] {
        let mut bad = claims(&node);
        bad[claim] = value;
        let answer = get_with(&format!("{url}/me"), &[&format!("Bearer {}", sign(&node, &bad))]).await;
        assert_eq!(answer.status, 401, "{claim}");
        assert!(answer.challenge.unwrap().contains("invalid_token"), "{claim}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_guards_read_the_tokens_permissions() {
    let node = node().await;
    let verifier = Arc::new(verifier(&node).await);
    let refunds = Router::new()
        .route("/refunds", get(me))
        .route_layer(RequirePermission::new("orders:refund"));
    let url = serve(
        Router::new()
            .merge(refunds)
            .layer(VerifyLayer::new(verifier).realm("shop")),
    )
    .await;
    let mut granted = claims(&node);
    granted["permissions"] = json!(["orders:read", "orders:refund"]);
    let granted = sign(&node, &granted);
    let answer = get_with(&format!("{url}/refunds"), &[&format!("Bearer {granted}")]).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "user-1"));

    // A token without it, or with only a scope or role of that name: 403 insufficient_scope.
    let mut other = claims(&node);
    other["permissions"] = json!(["orders:read"]);
    other["scope"] = json!("orders:refund");
    other["roles"] = json!(["orders:refund"]);
    let other = sign(&node, &other);
    let answer = get_with(&format!("{url}/refunds"), &[&format!("Bearer {other}")]).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let challenge = answer.challenge.unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(
        answer.body.contains("permission orders:refund"),
        "{}",
        answer.body
    );
    // A `permissions` claim of the wrong type is a bad token.
    let mut malformed = claims(&node);
    malformed["permissions"] = json!("orders:refund");
    let malformed = sign(&node, &malformed);
    let answer = get_with(&format!("{url}/refunds"), &[&format!("Bearer {malformed}")]).await;
    assert_eq!(answer.status, 401);
}
