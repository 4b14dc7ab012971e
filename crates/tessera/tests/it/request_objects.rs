//! Request objects by value (`request`; OpenID Connect Core §6.1, RFC 9101): signed with the
//! client's registered algorithm and keys they are verified and their parameters win over
//! the query's; unsigned only for a client that registered `none`; pushed to `/oauth2/par`
//! (RFC 9126 §3) they are verified before they are stored. And the abuse: `none` where
//! another algorithm is registered, another client's key, a different `client_id` or
//! `response_type`, another audience, expired, tampered; `request_uri` not from PAR.

use std::collections::BTreeMap;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use tessera_idp::registry::{ClientRegistry, ClientSpec};
use tessera_testkit::{backend_tests, pkce_pair, random_u64, spawn, Backend, TestNode};

use crate::client_auth::KeyPair;

backend_tests!(
    signed_request_objects_are_verified_and_their_parameters_win,
    unsigned_request_objects_only_for_clients_that_registered_none,
    request_objects_that_do_not_verify_are_invalid_request_objects,
    signed_request_objects_can_be_pushed,
);

const REDIRECT: &str = "https://shop.example/cb";

/// Registers a confidential web client with `request_object_signing_alg` = `alg` (and, for
/// an asymmetric one, `key`'s public half); returns its id and secret.
async fn client(node: &TestNode, alg: Option<&str>, key: Option<&KeyPair>) -> (String, String) {
    let id = format!("ro-{}", random_u64());
    let mut spec = json!({
        "client_id": id,
        "client_name": id,
        "redirect_uris": [REDIRECT],
        "scope": "openid email",
    });
    if let Some(alg) = alg {
        spec["request_object_signing_alg"] = json!(alg);
    }
    if let Some(key) = key {
        spec["jwks"] = KeyPair::jwks(&[key]);
    }
    let spec: ClientSpec = serde_json::from_value(spec).unwrap();
    let (_, secret) = ClientRegistry::new(&node.state).create(spec).await.unwrap();
    (id, secret.unwrap())
}

/// Request parameters of `client_id` (as a request object's claims, or a query).
fn request(node: &TestNode, client_id: &str, state: &str) -> Value {
    json!({
        "iss": client_id,
        "aud": node.url,
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": state,
        "nonce": "n-ro",
        "code_challenge": pkce_pair().1,
        "code_challenge_method": "S256",
    })
}

fn signed(key: &KeyPair, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = key.public.common.key_id.clone();
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn unsigned(claims: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", b64(&json!({"alg": "none"})), b64(claims))
}

/// `GET /oauth2/authorize` with `query`: the status, and the redirect's query parameters
/// when it redirects.
async fn authorize(node: &TestNode, query: &[(&str, &str)]) -> (u16, BTreeMap<String, String>) {
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    let response = node.client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let params = location
        .and_then(|l| reqwest::Url::parse(&l).ok())
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (status, params)
}

/// The query of a request that carries `jwt`: client_id, response_type and redirect_uri
/// outside (so errors can be redirected), state `st-query`.
fn with_object<'a>(client_id: &'a str, jwt: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "st-query"),
        ("request", jwt),
    ]
}

fn assert_refused(answer: &(u16, BTreeMap<String, String>), error: &str, why: &str) {
    assert!(matches!(answer.0, 302 | 303), "{why}: {answer:?}");
    assert_eq!(
        answer.1.get("error").map(String::as_str),
        Some(error),
        "{why}: {answer:?}"
    );
}

async fn signed_request_objects_are_verified_and_their_parameters_win(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = KeyPair::es256("ro-key");
    let (id, _) = client(&node, Some("ES256"), Some(&key)).await;
    // A good object: the login page.
    let jwt = signed(&key, &request(&node, &id, "st-object"));
    let (status, _) = authorize(&node, &with_object(&id, &jwt)).await;
    assert_eq!(status, 200, "a verified request object shows the login page");
    // Its parameters win: a scope the client may not have, inside, is refused — with the
    // object's state, not the query's.
    let mut claims = request(&node, &id, "st-object");
    claims["scope"] = json!("openid admin");
    let answer = authorize(&node, &with_object(&id, &signed(&key, &claims))).await;
    assert_refused(&answer, "invalid_scope", "the object's scope");
    assert_eq!(answer.1["state"], "st-object");
    // RFC 9101 style: only client_id and request outside.
    let (status, _) = authorize(&node, &[("client_id", &id), ("request", &jwt)]).await;
    assert_eq!(status, 200);
    // Discovery says so.
    let (_, metadata) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["request_parameter_supported"], true);
    assert_eq!(metadata["request_uri_parameter_supported"], false);
    let algs = metadata["request_object_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")) && algs.contains(&json!("none")));
}

async fn unsigned_request_objects_only_for_clients_that_registered_none(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (open, _) = client(&node, Some("none"), None).await;
    let (status, _) = authorize(
        &node,
        &with_object(&open, &unsigned(&request(&node, &open, "st-1"))),
    )
    .await;
    assert_eq!(status, 200, "alg none for a client that registered none");
    // A signature where none was registered is not what was registered either.
    let key = KeyPair::es256("k");
    let answer = authorize(
        &node,
        &with_object(&open, &signed(&key, &request(&node, &open, "st-1"))),
    )
    .await;
    assert_refused(&answer, "invalid_request_object", "signed for a none client");

    let key = KeyPair::es256("k");
    let (strict, _) = client(&node, Some("ES256"), Some(&key)).await;
    let answer = authorize(
        &node,
        &with_object(&strict, &unsigned(&request(&node, &strict, "st-1"))),
    )
    .await;
    assert_refused(&answer, "invalid_request_object", "alg none for an ES256 client");

    let (plain, _) = client(&node, None, None).await;
    let answer = authorize(
        &node,
        &with_object(&plain, &unsigned(&request(&node, &plain, "st-1"))),
    )
    .await;
    assert_refused(
        &answer,
        "request_not_supported",
        "a client that registered nothing",
    );
    // request_uri stays PAR-only.
    let answer = authorize(
        &node,
        &[
            ("client_id", &plain),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("request_uri", "https://shop.example/request.jwt"),
        ],
    )
    .await;
    assert_refused(&answer, "request_uri_not_supported", "a request_uri not from PAR");
}

async fn request_objects_that_do_not_verify_are_invalid_request_objects(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = KeyPair::es256("ro-key");
    let other_key = KeyPair::es256("ro-key");
    let (id, _) = client(&node, Some("ES256"), Some(&key)).await;
    let (other, _) = client(&node, Some("ES256"), Some(&other_key)).await;
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    let with = |name: &str, value: Value| {
        let mut claims = request(&node, &id, "st-1");
        claims[name] = value;
        claims
    };
    let tampered = {
        let jwt = signed(&key, &request(&node, &id, "st-1"));
        let parts: Vec<&str> = jwt.split('.').collect();
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(with("scope", json!("openid")).to_string());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    for (why, jwt) in [
        (
            "signed by another client's key",
            signed(&other_key, &request(&node, &id, "st-1")),
        ),
        (
            "another client's object",
            signed(&key, &request(&node, &other, "st-1")),
        ),
        (
            "a different client_id inside",
            signed(&key, &with("client_id", json!(other))),
        ),
        (
            "a different response_type inside",
            signed(&key, &with("response_type", json!("token"))),
        ),
        ("iss is another client", signed(&key, &with("iss", json!(other)))),
        (
            "for another provider",
            signed(&key, &with("aud", json!("https://other-idp.example"))),
        ),
        ("expired", signed(&key, &with("exp", json!(now - 600)))),
        ("not yet valid", signed(&key, &with("nbf", json!(now + 600)))),
        (
            "nested request_uri",
            signed(&key, &with("request_uri", json!("urn:x"))),
        ),
        ("tampered", tampered),
        ("garbage", "not-a-jwt".to_owned()),
        ("HS256 with the public key", {
            let public = serde_json::to_string(&key.public).unwrap();
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &request(&node, &id, "st-1"),
                &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
            )
            .unwrap()
        }),
    ] {
        let answer = authorize(&node, &with_object(&id, &jwt)).await;
        assert_refused(&answer, "invalid_request_object", why);
        assert_eq!(
            answer.1["state"], "st-query",
            "{why}: the query's state, the object being untrusted"
        );
    }
    // Without a registered redirect_uri outside, a bad object gets a page, not a redirect.
    let jwt = signed(&other_key, &request(&node, &id, "st-1"));
    let (status, params) = authorize(&node, &[("client_id", &id), ("request", &jwt)]).await;
    assert_eq!((status, params.len()), (400, 0));
    // An oversized object.
    let huge = "a".repeat(20_000);
    let answer = authorize(&node, &with_object(&id, &huge)).await;
    assert_refused(&answer, "invalid_request_object", "oversized");
}

async fn signed_request_objects_can_be_pushed(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = KeyPair::es256("ro-key");
    let (id, secret) = client(&node, Some("ES256"), Some(&key)).await;
    let push = |jwt: String| {
        node.client
            .post(node.at("/oauth2/par"))
            .basic_auth(&id, Some(&secret))
            .form(&[("client_id", id.as_str()), ("request", jwt.as_str())])
            .send()
    };
    let response = push(signed(&key, &request(&node, &id, "st-pushed")))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    let (status, _) = authorize(&node, &[("client_id", &id), ("request_uri", &request_uri)]).await;
    assert_eq!(
        status, 200,
        "the pushed object's parameters stand for the request"
    );

    for (why, jwt) in [
        ("unsigned", unsigned(&request(&node, &id, "st-1"))),
        (
            "another key",
            signed(&KeyPair::es256("ro-key"), &request(&node, &id, "st-1")),
        ),
    ] {
        let response = push(jwt).await.unwrap();
        assert_eq!(response.status(), 400, "{why}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request_object", "{why}: {body}");
    }
}
