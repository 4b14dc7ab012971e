//! The introspection client against the node's /oauth2/introspect, and its failure modes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use tessera_verify::{IntrospectError, Introspector};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspects_access_tokens_and_caches_active_answers() {
    let node = node().await;
    let rs = node.create_client("resource-server", false, "web").await;
    let introspector = Introspector::new(
        &node.at("/oauth2/introspect"),
        rs.client_id.clone(),
        rs.secret.clone().unwrap(),
    )
    .unwrap()
    .audience(node.url.clone());
    let issued = node.login("user-7", &rs).await.unwrap();
    let token = issued.access_token;

    let claims = introspector.introspect(&token).await.unwrap().expect("active");
    assert_eq!(claims.subject, "user-7");
    assert_eq!(claims.client_id, "resource-server");
    assert_eq!(claims.scopes, vec!["openid", "profile"]);
    assert_eq!(claims.roles, vec!["member"]);
    assert_eq!(claims.session_id.as_deref(), Some(issued.session.id.as_str()));
    assert!(claims.expires_at > now());
    assert_eq!(introspector.requests_made(), 1);
    // Cached…
    assert_eq!(
        introspector.introspect(&token).await.unwrap(),
        Some(claims.clone())
    );
    assert_eq!(introspector.requests_made(), 1);
    // …unless asked not to.
    assert!(introspector.introspect_uncached(&token).await.unwrap().is_some());
    assert_eq!(introspector.requests_made(), 2);

    // A refresh token is active for its own client, but it is no bearer credential.
    let refresh = issued.refresh_token.secret().to_owned();
    assert_eq!(introspector.introspect(&refresh).await.unwrap(), None);
    // Garbage is inactive.
    assert_eq!(introspector.introspect("not-a-token").await.unwrap(), None);
    // An ended session is inactive at the provider at once (uncached).
    end_session(&node, &issued.session.id).await;
    assert_eq!(introspector.introspect_uncached(&token).await.unwrap(), None);

    // Another audience required: inactive for us.
    let other = Introspector::new(
        &node.at("/oauth2/introspect"),
        rs.client_id.clone(),
        rs.secret.clone().unwrap(),
    )
    .unwrap()
    .audience("https://elsewhere");
    let (fresh, _, _) = login(&node, "user-8").await;
    assert_eq!(other.introspect(&fresh).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_without_opening_the_breaker() {
    let node = node().await;
    let rs = node.create_client("resource-server", false, "web").await;
    let introspector = Introspector::new(&node.at("/oauth2/introspect"), rs.client_id.clone(), "wrong")
        .unwrap()
        .circuit_breaker(2, Duration::from_secs(30));
    let (token, _, _) = login(&node, "user-1").await;
    for _ in 0..3 {
        assert_eq!(
            introspector.introspect(&token).await,
            Err(IntrospectError::Refused(401))
        );
    }
    assert!(!introspector.circuit_open());
    assert_eq!(introspector.requests_made(), 3, "a refusal is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_closed_port_and_fails_fast() {
    let closed = format!(
        "http://127.0.0.1:{}/oauth2/introspect",
        tessera_testkit::free_port()
    );
    let introspector = Introspector::new(&closed, "rs", "secret")
        .unwrap()
        .retries(2, Duration::from_millis(10))
        .circuit_breaker(3, Duration::from_millis(500));
    for _ in 0..3 {
        assert!(matches!(
            introspector.introspect("token").await,
            Err(IntrospectError::Failed(_))
        ));
    }
    assert_eq!(introspector.requests_made(), 9, "three calls of three attempts");
    assert!(introspector.circuit_open());
    assert_eq!(
        introspector.introspect("token").await,
        Err(IntrospectError::CircuitOpen)
    );
    assert_eq!(introspector.requests_made(), 9, "no request while open");

    // After the cool-down one trial call goes through; it fails, so the breaker opens again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(
        introspector.introspect("token").await,
        Err(IntrospectError::Failed(_))
    ));
    assert_eq!(introspector.requests_made(), 12);
    assert_eq!(
        introspector.introspect("token").await,
        Err(IntrospectError::CircuitOpen)
    );
}

/// A stand-in endpoint that fails (500) while `failing` is set, and answers slowly while
/// `slow` is set.
async fn flaky_endpoint() -> (String, Arc<AtomicBool>, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let failing = Arc::new(AtomicBool::new(true));
    let slow = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let (f, s, c) = (failing.clone(), slow.clone(), calls.clone());
    let app = Router::new().route(
        "/introspect",
        post(move || {
            let (f, s, c) = (f.clone(), s.clone(), c.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                if s.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                if f.load(Ordering::SeqCst) {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new());
                }
                let exp = now() + 60;
                let body = serde_json::json!({
                    "active": true, "sub": "u", "client_id": "c", "scope": "a b",
                    "exp": exp, "token_type": "Bearer"
                });
                (axum::http::StatusCode::OK, body.to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, failing, slow, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_recover_and_a_successful_trial_closes_the_breaker() {
    let (url, failing, _slow, calls) = flaky_endpoint().await;
    let introspector = Introspector::new(&url, "rs", "secret")
        .unwrap()
        .retries(1, Duration::from_millis(10))
        .circuit_breaker(2, Duration::from_millis(300));
    for _ in 0..2 {
        assert!(matches!(
            introspector.introspect("t").await,
            Err(IntrospectError::Failed(_))
        ));
    }
    assert!(introspector.circuit_open());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    failing.store(false, Ordering::SeqCst);
    assert_eq!(
        introspector.introspect("t").await,
        Err(IntrospectError::CircuitOpen)
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let claims = introspector.introspect("t").await.unwrap().unwrap();
    assert_eq!(claims.scopes, vec!["a", "b"]);
    assert!(!introspector.circuit_open());
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_times_out() {
    let (url, failing, slow, calls) = flaky_endpoint().await;
    failing.store(false, Ordering::SeqCst);
    slow.store(true, Ordering::SeqCst);
    let introspector = Introspector::new(&url, "rs", "secret")
        .unwrap()
        .timeout(Duration::from_millis(200))
        .retries(1, Duration::from_millis(10));
    // The endpoint takes 3 s; each of the two attempts gives up after 200 ms.
    let err = introspector.introspect("t").await.unwrap_err();
    assert!(
        matches!(&err, IntrospectError::Failed(why) if why.contains("timeout")),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
