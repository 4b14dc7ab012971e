//! The foundation over HTTP, on every backend: discovery, JWKS, key rotation windows,
//! health and readiness, and the behaviour every endpoint shares (errors, request ids,
//! security headers, body limits).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{json, Value};
use tessera_testkit::{backend_tests, spawn, Backend, TestNode};

backend_tests!(
    discovery_names_this_issuer_and_its_jwks,
    jwks_publishes_public_keys_only,
    jwks_verifies_what_the_node_signs,
    rotation_prepublishes_then_switches_then_retires,
    health_and_readiness,
    errors_are_problem_json_with_request_ids,
    oversized_bodies_are_refused,
);

async fn discovery_names_this_issuer_and_its_jwks(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let response = node.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], node.url);
    assert_eq!(doc["jwks_uri"], format!("{}/.well-known/jwks.json", node.url));
    assert!(doc["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    // The advertised JWKS URI is served.
    let jwks = node
        .client
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
}

async fn jwks_publishes_public_keys_only(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let response = node.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/jwk-set+json");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|kid| kid.len() >= 40), "{key}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published: {key}"
            );
        }
    }
    let kids: std::collections::HashSet<_> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 3, "kids must be unique");
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
}

fn sign(node: &TestNode, alg: Algorithm) -> (String, String) {
    let key = node
        .state
        .keys
        .signing_key(alg)
        .expect("a signing key for the algorithm");
    let mut header = Header::new(alg);
    header.kid = Some(key.kid.clone());
    let claims = Claims {
        iss: node.url.clone(),
        sub: "user-1".into(),
        aud: "service".into(),
        exp: node.clock_now() + 600,
    };
    (
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap(),
        key.kid,
    )
}

async fn fetch_jwks(node: &TestNode) -> JwkSet {
    node.get("/.well-known/jwks.json").await.json().await.unwrap()
}

fn verify(jwks: &JwkSet, token: &str, alg: Algorithm) -> Result<Claims, jsonwebtoken::errors::Error> {
    let kid = jsonwebtoken::decode_header(token)?.kid.unwrap_or_default();
    let jwk = jwks.find(&kid).ok_or_else(|| {
        jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)
    })?;
    let mut validation = Validation::new(alg);
    validation.set_audience(&["service"]);
    validation.validate_exp = false; // the node's clock is a test clock
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_jwk(jwk)?, &validation).map(|d| d.claims)
}

trait ClockNow {
    fn clock_now(&self) -> i64;
}

impl ClockNow for TestNode {
    fn clock_now(&self) -> i64 {
        use tessera_idp::clock::Clock;
        self.clock.now()
    }
}

async fn jwks_verifies_what_the_node_signs(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let jwks = fetch_jwks(&node).await;
    for alg in [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA] {
        let (token, _) = sign(&node, alg);
        let claims = verify(&jwks, &token, alg).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims.sub, "user-1");
        // A flipped signature byte fails.
        let mut tampered = token.clone().into_bytes();
        let i = tampered.len() - 5;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(verify(&jwks, std::str::from_utf8(&tampered).unwrap(), alg).is_err());
    }
}

async fn rotation_prepublishes_then_switches_then_retires(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let keys = &node.state.keys;
    let prepublish = node.config.keys.prepublish_secs as i64;
    let retire = node.config.keys.retire_window_secs as i64;
    let (old_token, old_kid) = sign(&node, Algorithm::ES256);

    let new = keys.rotate(Algorithm::ES256).await.unwrap();
    // Published at once, before it signs anything.
    let jwks = fetch_jwks(&node).await;
    assert!(jwks.find(&new.kid).is_some());
    assert!(jwks.find(&old_kid).is_some());
    assert_eq!(jwks.keys.len(), 4);
    assert_eq!(keys.signing_key(Algorithm::ES256).unwrap().kid, old_kid);

    // After the pre-publish window the new key signs; the old one still verifies.
    node.clock.advance(prepublish);
    let (new_token, signing_kid) = sign(&node, Algorithm::ES256);
    assert_eq!(signing_kid, new.kid);
    let jwks = fetch_jwks(&node).await;
    verify(&jwks, &old_token, Algorithm::ES256).unwrap();
    verify(&jwks, &new_token, Algorithm::ES256).unwrap();
    // Other algorithms were not rotated.
    assert_eq!(
        keys.snapshot()
            .iter()
            .filter(|k| k.alg == Algorithm::RS256)
            .count(),
        1
    );

    // After the retire window the old key leaves the key set, and its tokens stop verifying.
    node.clock.advance(retire);
    keys.reload().await.unwrap();
    let jwks = fetch_jwks(&node).await;
    assert!(jwks.find(&old_kid).is_none());
    assert!(verify(&jwks, &old_token, Algorithm::ES256).is_err());
    verify(&jwks, &new_token, Algorithm::ES256).unwrap();
    assert_eq!(jwks.keys.len(), 3);
}

async fn health_and_readiness(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (status, body) = node.get_json("/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = node.get_json("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    let expected_db = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["checks"]["database"]["backend"], expected_db);
    assert_eq!(body["checks"]["keys"]["active"], 3);

    // With the database gone, the node is alive but not ready.
    node.state.db.close().await;
    let (status, body) = node.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "unavailable");
    let (status, _) = node.get_json("/healthz").await;
    assert_eq!(status, 200);
}

async fn errors_are_problem_json_with_request_ids(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let response = node.get("/no/such/endpoint?token=secret").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert_eq!(body["type"], "urn:tessera:problem:not-found");

    // Each request gets its own id; an id set by a proxy in front is kept.
    let other = node.get("/healthz").await;
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);
    let proxied = node
        .client
        .get(node.at("/healthz"))
        .header("x-request-id", "edge-42")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.headers()["x-request-id"], "edge-42");

    let response = node
        .client
        .delete(node.at("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let body = vec![b'x'; node.config.http.max_body_bytes + 1];
    let response = node
        .client
        .post(node.at("/healthz"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}
