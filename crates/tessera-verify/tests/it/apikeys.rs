//! Partner API keys in a service (R27): `ApiKeys` on a `Verifier`, and the axum layer with
//! `.api_keys(…)` — checked once at a real node, refused after a revocation within the poll
//! interval, refused once expired, kept working with the node gone; tampered, unknown,
//! out-of-scope and out-of-network keys refused.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::routing;
use axum::Router;
use tessera_idp::apikeys::{ApiKeyOwner, ApiKeySpec, Grantor};
use tessera_idp::audit::RequestContext;
use tessera_verify::axum::{Authenticated, ClientAddr, RequireScope, VerifyLayer};
use tessera_verify::{ApiKeys, VerifyError};

use crate::common::*;

async fn me(Authenticated(claims): Authenticated) -> String {
    format!("{} {}", claims.subject, claims.api_key_id.unwrap_or_default())
}

async fn from_loopback(mut request: Request, next: Next) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(ClientAddr("127.0.0.1".parse().unwrap()));
    next.run(request).await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = unpooled().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_checked_once_revoked_through_the_feed_and_survive_an_outage() {
    let node = node().await;
    let checker = node.create_client("svc-checker", false, "partner").await;
    node.create_client("partner-x", false, "partner").await;
    let context = RequestContext::default();
    let owner = ApiKeyOwner::Client("partner-x".to_owned());
    let make = |name: &str, allowed_ips: &[&str], expires_at: Option<i64>| ApiKeySpec {
        name: name.to_owned(),
        scopes: vec!["profile".to_owned()],
        permissions: vec![],
        expires_at,
        allowed_ips: allowed_ips.iter().map(|s| (*s).to_owned()).collect(),
    };
    let keys = &node.state.api_keys;
    let mut created = Vec::new();
    for spec in [
        make("main", &[], None),
        make("revoke-me", &[], None),
        make("office", &["10.0.0.0/8"], None),
        make("short", &[], Some(now() + 2)),
    ] {
        created.push(
            keys.create(&owner, spec, Grantor::Operator, "operator", &context)
                .await
                .unwrap(),
        );
    }
    let key = |i: usize| created[i].key.secret().to_owned();
    let (main, revoked, office, short) = (key(0), key(1), key(2), key(3));

    let verifier = std::sync::Arc::new(verifier(&node).await);
    let api_keys = ApiKeys::builder("svc-checker", checker.secret.clone().unwrap())
        .http_client(unpooled())
        .build(&verifier)
        .unwrap();

    // Directly: the owner's identity, marked as a key.
    let claims = api_keys.verify(&main, None).await.unwrap();
    assert_eq!(claims.subject, "partner-x");
    assert_eq!(claims.client_id, "partner-x");
    assert_eq!(claims.scopes, vec!["profile"]);
    assert_eq!(claims.api_key_id.as_deref(), Some(created[0].view.id.as_str()));
    assert!(claims.roles.is_empty() && claims.session_id.is_none());
    assert_eq!(api_keys.cached(), 1);
    assert_eq!(
        api_keys.verify(&office, None).await,
        Err(VerifyError::AddressNotAllowed)
    );
    assert!(api_keys
        .verify(&office, Some("10.2.3.4".parse().unwrap()))
        .await
        .is_ok());
    assert_eq!(
        api_keys.verify(&main.replacen("tsk_", "tsr_", 1), None).await,
        Err(VerifyError::Malformed)
    );

    // Through the layer.
    let app = Router::new()
        .route("/me", routing::get(me))
        .merge(
            Router::new()
                .route("/orders", routing::get(me))
                .route_layer(RequireScope::new("orders:read")),
        )
        .layer(VerifyLayer::new(verifier.clone()).api_keys(api_keys.clone()))
        .layer(axum::middleware::from_fn(from_loopback));
    let url = serve(app).await;
    let me_url = format!("{url}/me");
    let (status, body) = get(&me_url, &[("x-api-key", &main)]).await;
    assert_eq!((status, body), (200, format!("partner-x {}", created[0].view.id)));
    let mut tampered = main.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = format!("tsk_{}_{}", "Q".repeat(22), "q".repeat(43));
    assert_eq!(get(&me_url, &[("x-api-key", &tampered)]).await.0, 401);
    assert_eq!(get(&me_url, &[("x-api-key", &unknown)]).await.0, 401);
    assert_eq!(get(&me_url, &[("x-api-key", &office)]).await.0, 403);
    assert_eq!(
        get(&format!("{url}/orders"), &[("x-api-key", &main)]).await.0,
        403
    );
    assert_eq!(
        get(&me_url, &[("x-api-key", &main), ("authorization", "Bearer x")])
            .await
            .0,
        400
    );
    assert_eq!(
        get(&me_url, &[("x-api-key", &main), ("x-api-key", &main)])
            .await
            .0,
        400
    );
    // Tokens still work beside keys.
    let (token, _, _) = login(&node, "user-1").await;
    let bearer = format!("Bearer {token}");
    assert_eq!(get(&me_url, &[("authorization", &bearer)]).await.0, 200);

    // Revoked: refused within the poll interval (200 ms here).
    assert_eq!(get(&me_url, &[("x-api-key", &revoked)]).await.0, 200);
    keys.revoke(&created[1].view.id, None, "operator", &context)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), async || {
            get(&me_url, &[("x-api-key", &revoked)]).await.0 == 401
        })
        .await,
        "the revoked key is still accepted"
    );
    // Expired: refused once its two seconds are over.
    assert_eq!(get(&me_url, &[("x-api-key", &short)]).await.0, 200);
    assert!(
        eventually(Duration::from_secs(10), async || {
            get(&me_url, &[("x-api-key", &short)]).await.0 == 401
        })
        .await,
        "the expired key is still accepted"
    );

    // The provider is gone: known keys work, the rest stays refused, a key never seen
    // cannot be judged (503).
    drop(node);
    let never_seen = format!("tsk_{}_{}", "Z".repeat(22), "z".repeat(43));
    for round in 0..20 {
        assert_eq!(
            get(&me_url, &[("x-api-key", &main)]).await.0,
            200,
            "round {round}"
        );
        assert_eq!(
            get(&me_url, &[("x-api-key", &revoked)]).await.0,
            401,
            "round {round}"
        );
        assert_eq!(
            get(&me_url, &[("x-api-key", &short)]).await.0,
            401,
            "round {round}"
        );
        assert_eq!(
            get(&me_url, &[("x-api-key", &tampered)]).await.0,
            401,
            "round {round}"
        );
        assert_eq!(
            get(&me_url, &[("x-api-key", &never_seen)]).await.0,
            503,
            "round {round}"
        );
    }
}
