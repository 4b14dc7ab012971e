//! The token engine over HTTP: rotation, theft detection, the grace window, concurrency,
//! expiry, session limits, revocation, introspection and the revocation feed.

use serde_json::Value;
use tessera_store::durable::AuditStore as _;
use tessera_testkit::{backend_tests, spawn, spawn_with, Backend};

backend_tests!(
    rotation_chain_of_100_and_reuse_revokes_the_family,
    grace_window_returns_the_same_successor_once,
    parallel_refreshes_leave_one_live_child,
    parallel_refreshes_without_grace_end_revoked,
);

fn refresh_token_of(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token in {body}"))
        .to_owned()
}

async fn rotation_chain_of_100_and_reuse_revokes_the_family(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-1", &app).await.unwrap();
    let mut chain = vec![issued.refresh_token.secret().to_owned()];
    for _ in 0..100 {
        let (status, body) = node.refresh(&app, chain.last().unwrap()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        let next = refresh_token_of(&body);
        assert!(!chain.contains(&next), "a refresh token was issued twice");
        chain.push(next);
    }
    // The refreshed access token still carries the session's roles and scope.
    let (_, last) = node.refresh(&app, chain.last().unwrap()).await;
    chain.push(refresh_token_of(&last));
    let info = node
        .introspect(&app, last["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["roles"], serde_json::json!(["member"]));
    assert_eq!(info["scope"], "openid profile");
    // Past the grace window, presenting token 37 again is theft.
    node.clock.advance(60);
    let (status, body) = node.refresh(&app, &chain[37]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // The whole family is revoked: the current token fails too, and so does the session.
    let (status, body) = node.refresh(&app, chain.last().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let session = node.state.tokens.sessions_of("user-1").await.unwrap();
    assert!(session.is_empty(), "the session is still alive: {session:?}");
    let feed: Value = node.get("/oauth2/revocations").await.json().await.unwrap();
    assert!(
        feed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sid" && e["value"] == issued.session.id.as_str()),
        "{feed}"
    );
    let audit = node
        .state
        .db
        .audit_records(&tessera_store::durable::AuditQuery {
            event: Some("token.reuse_detected".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].session_id.as_deref(), Some(issued.session.id.as_str()));
}

async fn grace_window_returns_the_same_successor_once(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("mobile-app", true, "mobile").await;
    let t0 = node
        .login("user-2", &app)
        .await
        .unwrap()
        .refresh_token
        .secret()
        .to_owned();
    let (status, first) = node.refresh(&app, &t0).await;
    assert_eq!(status, 200, "{first}");
    let t1 = refresh_token_of(&first);
    // The response was "lost": the app sends t0 again within the grace window and gets the
    // very same successor (and a fresh access token).
    node.clock.advance(3);
    let (status, again) = node.refresh(&app, &t0).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(refresh_token_of(&again), t1);
    assert_ne!(again["access_token"], first["access_token"]);
    // Once t1 is used, t0 is no longer a lost response: it is reuse.
    let (status, second) = node.refresh(&app, &t1).await;
    assert_eq!(status, 200, "{second}");
    let t2 = refresh_token_of(&second);
    let (status, body) = node.refresh(&app, &t0).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = node.refresh(&app, &t2).await;
    assert_eq!(status, 400, "the family must be revoked after reuse");
}

async fn parallel_refreshes_leave_one_live_child(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node.create_client("shop-web", false, "web").await;
    let t0 = node
        .login("user-3", &app)
        .await
        .unwrap()
        .refresh_token
        .secret()
        .to_owned();
    let node = std::sync::Arc::new(node);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (node, app, t0) = (node.clone(), app.clone(), t0.clone());
        tasks.push(tokio::spawn(async move { node.refresh(&app, &t0).await }));
    }
    let mut successors = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(
            status, 200,
            "within the grace window every duplicate gets the same successor: {body}"
        );
        successors.insert(refresh_token_of(&body));
    }
    assert_eq!(successors.len(), 1, "two live children: {successors:?}");
    let child = successors.into_iter().next().unwrap();
    let (status, _) = node.refresh(&app, &child).await;
    assert_eq!(status, 200);
}

async fn parallel_refreshes_without_grace_end_revoked(backend: Backend) {
    let Some(node) = spawn_with(backend, |c| c.tokens.refresh_grace_secs = 0).await else {
        return;
    };
    let app = node.create_client("shop-web", false, "web").await;
    let issued = node.login("user-4", &app).await.unwrap();
    let t0 = issued.refresh_token.secret().to_owned();
    let node = std::sync::Arc::new(node);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (node, app, t0) = (node.clone(), app.clone(), t0.clone());
        tasks.push(tokio::spawn(async move { node.refresh(&app, &t0).await }));
    }
    let mut ok = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => ok.push(refresh_token_of(&body)),
            400 => assert_eq!(body["error"], "invalid_grant"),
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one refresh succeeds");
    // The other 19 were reuse: the family is revoked, so the one child is dead too.
    let (status, _) = node.refresh(&app, &ok[0]).await;
    assert_eq!(status, 400);
    assert!(node.state.tokens.sessions_of("user-4").await.unwrap().is_empty());
}
