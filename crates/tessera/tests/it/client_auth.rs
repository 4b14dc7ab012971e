//! JWT client authentication (RFC 7523 §2.2, OpenID Connect Core §9): `private_key_jwt`
//! with keys registered inline or by `jwks_uri`, and `client_secret_jwt`, at every endpoint
//! where a client authenticates — and the abuse: replayed (also on a second node sharing
//! Redis), misaddressed, expired, too long-lived, forged, key-confused and unsigned
//! assertions; key sets at internal addresses, oversized or slow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tessera_idp::registry::{ClientRegistry, ClientSpec};
use tessera_testkit::{backend_tests, random_u64, spawn, spawn_with, Backend, TestNode};

backend_tests!(
    private_key_jwt_authenticates_at_every_client_endpoint,
    client_secret_jwt_authenticates_with_the_secret_it_was_issued,
    assertions_are_single_use_across_nodes,
    bad_assertions_get_invalid_client_and_change_nothing,
    keys_at_a_jwks_uri_are_cached_and_fetched_again_on_rotation_at_most_once_per_interval,
    jwks_uris_at_internal_addresses_oversized_or_slow_are_refused,
    the_admin_api_registers_jwt_clients_and_their_key_rotations,
);

const REDIRECT: &str = "https://shop.example/cb";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The endpoints where a client authenticates.
mod paths {
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const TOKEN: &str = "/oauth2/token";
    pub const INTROSPECT: &str = "/oauth2/introspect";
    pub const REVOKE: &str = "/oauth2/revoke";
    pub const PAR: &str = "/oauth2/par";
    pub const DEVICE_AUTHORIZATION: &str = "/oauth2/device_authorization";
}
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A P-256 key pair: the private key and its public JWK with `kid`.
pub(crate) struct KeyPair {
    pub encoding: EncodingKey,
    pub public: Jwk,
}

impl KeyPair {
    pub fn es256(kid: &str) -> KeyPair {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let encoding = EncodingKey::from_ec_der(doc.as_ref());
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        public.common.key_id = Some(kid.to_owned());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        KeyPair { encoding, public }
    }

    pub fn jwks(keys: &[&KeyPair]) -> Value {
        json!({ "keys": keys.iter().map(|k| &k.public).collect::<Vec<_>>() })
    }

    fn kid(&self) -> &str {
        self.public.common.key_id.as_deref().unwrap()
    }
}

/// The claims of a well-formed assertion of `client_id` for `aud`, valid for 60 s.
fn claims(node: &TestNode, client_id: &str, aud: &str) -> Value {
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + 60,
        "jti": format!("jti-{}", random_u64()),
    })
}

fn sign_es256(key: &KeyPair, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn sign_hs(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// Registers a client through the registry, as an operator would; returns its secret.
async fn register(node: &TestNode, spec: Value) -> Option<String> {
    let spec: ClientSpec = serde_json::from_value(spec).unwrap();
    let (_, secret) = ClientRegistry::new(&node.state).create(spec).await.unwrap();
    secret
}

/// A `private_key_jwt` service with `jwks` (or `jwks_uri`), for client credentials,
/// introspection, PAR and the device grant.
fn key_client_spec(client_id: &str, keys: Value) -> Value {
    let mut spec = json!({
        "client_id": client_id,
        "client_name": client_id,
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials", "authorization_code", DEVICE_CODE_GRANT],
        "redirect_uris": [REDIRECT],
        "scope": "openid email",
    });
    match keys {
        Value::String(uri) => spec["jwks_uri"] = uri.into(),
        jwks => spec["jwks"] = jwks,
    }
    spec
}

/// POSTs `fields` plus the assertion to `path` at `base`; status and JSON body.
async fn post_assertion(base: &str, path: &str, assertion: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", assertion));
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn token(node: &TestNode, assertion: &str) -> (u16, Value) {
    post_assertion(
        &node.url,
        paths::TOKEN,
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

fn assert_invalid_client(answer: &(u16, Value), why: &str) {
    assert_eq!(answer.0, 401, "{why}: {}", answer.1);
    assert_eq!(answer.1["error"], "invalid_client", "{why}: {}", answer.1);
}

async fn private_key_jwt_authenticates_at_every_client_endpoint(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = KeyPair::es256("k1");
    let id = format!("svc-{}", random_u64());
    register(&node, key_client_spec(&id, KeyPair::jwks(&[&key]))).await;

    // Token endpoint, audience = the issuer (rfc7523bis) and = the token endpoint URL (OIDC §9).
    let (status, body) = token(&node, &sign_es256(&key, &claims(&node, &id, &node.url))).await;
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = token(
        &node,
        &sign_es256(&key, &claims(&node, &id, &node.at(paths::TOKEN))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A one-element audience array is the same audience.
    let mut one = claims(&node, &id, "");
    one["aud"] = json!([node.url]);
    assert_eq!(token(&node, &sign_es256(&key, &one)).await.0, 200);
    // client_id in the form is allowed when it names the same client.
    let (status, _) = post_assertion(
        &node.url,
        paths::TOKEN,
        &sign_es256(&key, &claims(&node, &id, &node.url)),
        &[("grant_type", "client_credentials"), ("client_id", &id)],
    )
    .await;
    assert_eq!(status, 200);

    // Introspection and revocation.
    let (status, body) = post_assertion(
        &node.url,
        paths::INTROSPECT,
        &sign_es256(&key, &claims(&node, &id, &node.at(paths::INTROSPECT))),
        &[("token", &access_token)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], id.as_str());
    let (status, body) = post_assertion(
        &node.url,
        paths::REVOKE,
        &sign_es256(&key, &claims(&node, &id, &node.url)),
        &[("token", &access_token)],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Pushed authorization requests, audience = the PAR endpoint (RFC 9126 §2).
    let (status, body) = post_assertion(
        &node.url,
        paths::PAR,
        &sign_es256(&key, &claims(&node, &id, &node.at(paths::PAR))),
        &[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("code_challenge", &tessera_testkit::pkce_pair().1),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["request_uri"].as_str().is_some(), "{body}");

    // Device authorization.
    let (status, body) = post_assertion(
        &node.url,
        paths::DEVICE_AUTHORIZATION,
        &sign_es256(&key, &claims(&node, &id, &node.url)),
        &[("scope", "openid")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["device_code"].as_str().is_some(), "{body}");

    // A private_key_jwt client has no secret; Basic with anything is refused.
    let response = node
        .client
        .post(node.at(paths::TOKEN))
        .basic_auth(&id, Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Discovery lists the methods and algorithms.
    let (_, metadata) = node.get_json(paths::DISCOVERY).await;
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = metadata[field].as_array().unwrap();
        for method in ["private_key_jwt", "client_secret_jwt"] {
            assert!(methods.contains(&json!(method)), "{field} lacks {method}");
        }
    }
    let algs = metadata["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")) && algs.contains(&json!("HS256")));
    assert!(!algs.contains(&json!("none")));
}

async fn client_secret_jwt_authenticates_with_the_secret_it_was_issued(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let id = format!("hmac-{}", random_u64());
    let secret = register(
        &node,
        json!({
            "client_id": id,
            "client_name": "HMAC service",
            "token_endpoint_auth_method": "client_secret_jwt",
            "grant_types": ["client_credentials"],
        }),
    )
    .await
    .unwrap();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let answer = token(
            &node,
            &sign_hs(alg, secret.as_bytes(), &claims(&node, &id, &node.url)),
        )
        .await;
        assert_eq!(answer.0, 200, "{alg:?}: {}", answer.1);
    }
    // Another secret, the hash, and the secret itself sent as a secret are refused.
    let wrong = sign_hs(
        Algorithm::HS256,
        b"tcs_not-the-secret",
        &claims(&node, &id, &node.url),
    );
    assert_invalid_client(&token(&node, &wrong).await, "another secret");
    let response = node
        .client
        .post(node.at(paths::TOKEN))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "client_secret_basic for a client_secret_jwt client"
    );

    // A rotated secret: the old one stops working at once, the new one works.
    let rotated = ClientRegistry::new(&node.state).rotate_secret(&id).await.unwrap();
    let old = sign_hs(
        Algorithm::HS256,
        secret.as_bytes(),
        &claims(&node, &id, &node.url),
    );
    assert_invalid_client(&token(&node, &old).await, "rotated-away secret");
    let new = sign_hs(
        Algorithm::HS256,
        rotated.as_bytes(),
        &claims(&node, &id, &node.url),
    );
    assert_eq!(token(&node, &new).await.0, 200);

    // A registered algorithm is the only one accepted.
    let pinned = format!("hmac-pinned-{}", random_u64());
    let secret = register(
        &node,
        json!({
            "client_id": pinned,
            "client_name": "Pinned",
            "token_endpoint_auth_method": "client_secret_jwt",
            "token_endpoint_auth_signing_alg": "HS512",
            "grant_types": ["client_credentials"],
        }),
    )
    .await
    .unwrap();
    let hs256 = sign_hs(
        Algorithm::HS256,
        secret.as_bytes(),
        &claims(&node, &pinned, &node.url),
    );
    assert_invalid_client(&token(&node, &hs256).await, "HS256 for an HS512 client");
    let hs512 = sign_hs(
        Algorithm::HS512,
        secret.as_bytes(),
        &claims(&node, &pinned, &node.url),
    );
    assert_eq!(token(&node, &hs512).await.0, 200);
}

async fn assertions_are_single_use_across_nodes(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = KeyPair::es256("k1");
    let id = format!("replay-{}", random_u64());
    register(&node, key_client_spec(&id, KeyPair::jwks(&[&key]))).await;
    let assertion = sign_es256(&key, &claims(&node, &id, &node.url));
    assert_eq!(token(&node, &assertion).await.0, 200);
    assert_invalid_client(&token(&node, &assertion).await, "replayed on the same node");
    // Replayed at another endpoint.
    let (status, _) = post_assertion(&node.url, paths::INTROSPECT, &assertion, &[("token", "x")]).await;
    assert_eq!(status, 401, "replayed at introspection");

    // Parallel presentations of one fresh assertion: exactly one wins.
    let fresh = sign_es256(&key, &claims(&node, &id, &node.url));
    let tries = (0..8).map(|_| token(&node, &fresh));
    let answers = futures_util::future::join_all(tries).await;
    assert_eq!(answers.iter().filter(|a| a.0 == 200).count(), 1, "{answers:?}");

    // A second node sharing the stores (Redis with PostgreSQL) refuses what the first took.
    if node.config.redis_url.is_some() {
        let (peer, server) = node.peer().await;
        let assertion = sign_es256(&key, &claims(&node, &id, &node.url));
        assert_eq!(token(&node, &assertion).await.0, 200);
        let answer = post_assertion(
            &peer,
            paths::TOKEN,
            &assertion,
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_invalid_client(&answer, "replayed on the peer");
        // And the other way round.
        let assertion = sign_es256(&key, &claims(&node, &id, &node.url));
        let answer = post_assertion(
            &peer,
            paths::TOKEN,
            &assertion,
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        assert_invalid_client(&token(&node, &assertion).await, "replayed on the first node");
        server.abort();
    }
}

async fn bad_assertions_get_invalid_client_and_change_nothing(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = KeyPair::es256("k1");
    let other_key = KeyPair::es256("k1");
    let id = format!("abuse-{}", random_u64());
    let other = format!("other-{}", random_u64());
    register(&node, key_client_spec(&id, KeyPair::jwks(&[&key]))).await;
    register(&node, key_client_spec(&other, KeyPair::jwks(&[&other_key]))).await;
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    let good = || claims(&node, &id, &node.url);
    let with = |name: &str, value: Value| {
        let mut c = good();
        c[name] = value;
        c
    };
    let without = |name: &str| {
        let mut c = good();
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            sign_es256(&key, &with("aud", json!("https://other-idp.example"))),
        ),
        (
            "another endpoint of a path-suffixed issuer",
            sign_es256(&key, &with("aud", json!(format!("{}/x", node.url)))),
        ),
        (
            "several audiences",
            sign_es256(&key, &with("aud", json!([node.url, "https://other-idp.example"]))),
        ),
        ("no audience", sign_es256(&key, &without("aud"))),
        ("expired", sign_es256(&key, &with("exp", json!(now - 120)))),
        ("no exp", sign_es256(&key, &without("exp"))),
        (
            "exp two hours away",
            sign_es256(&key, &with("exp", json!(now + 7200))),
        ),
        ("issued long ago for long", {
            let mut c = with("iat", json!(now - 3000));
            c["exp"] = json!(now + 1000);
            sign_es256(&key, &c)
        }),
        (
            "issued in the future",
            sign_es256(&key, &with("iat", json!(now + 600))),
        ),
        ("not yet valid", sign_es256(&key, &with("nbf", json!(now + 600)))),
        ("no jti", sign_es256(&key, &without("jti"))),
        ("iss is not sub", sign_es256(&key, &with("iss", json!(other)))),
        ("sub is another client", {
            let mut c = good();
            c["iss"] = json!(other);
            c["sub"] = json!(other);
            sign_es256(&key, &c)
        }),
        ("signed by another client's key", sign_es256(&other_key, &good())),
        ("unknown client", {
            let mut c = good();
            c["iss"] = json!("nobody");
            c["sub"] = json!("nobody");
            sign_es256(&key, &c)
        }),
        ("alg none", {
            let b64 = |v: &Value| {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
            };
            format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&good()))
        }),
        ("HS256 with the public key as the secret", {
            let public = serde_json::to_string(&key.public).unwrap();
            sign_hs(Algorithm::HS256, public.as_bytes(), &good())
        }),
        ("tampered payload", {
            let token = sign_es256(&key, &good());
            let parts: Vec<&str> = token.split('.').collect();
            use base64::Engine as _;
            let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(with("sub", json!(other)).to_string());
            format!("{}.{forged}.{}", parts[0], parts[2])
        }),
        ("crit header", {
            use base64::Engine as _;
            let token = sign_es256(&key, &good());
            let parts: Vec<&str> = token.split('.').collect();
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}).to_string());
            format!("{header}.{}.{}", parts[1], parts[2])
        }),
        ("garbage", "not.a.jwt".to_owned()),
        ("oversized", "a".repeat(20_000)),
    ];
    for (why, assertion) in &cases {
        assert_invalid_client(&token(&node, assertion).await, why);
    }
    // The client_id in the form names another client.
    let answer = post_assertion(
        &node.url,
        paths::TOKEN,
        &sign_es256(&key, &good()),
        &[("grant_type", "client_credentials"), ("client_id", &other)],
    )
    .await;
    assert_invalid_client(&answer, "client_id of another client");
    // An unknown assertion type.
    let response = node
        .client
        .post(node.at(paths::TOKEN))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &sign_es256(&key, &good())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // An assertion beside a secret, or a type without an assertion, is a malformed request.
    let response = node
        .client
        .post(node.at(paths::TOKEN))
        .basic_auth(&id, Some("x"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &sign_es256(&key, &good())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = node
        .client
        .post(node.at(paths::TOKEN))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A client_secret_basic client cannot use an assertion, even one made with its secret.
    let basic = node
        .create_client(&format!("basic-{}", random_u64()), false, "web")
        .await;
    let assertion = sign_hs(
        Algorithm::HS256,
        basic.secret.as_deref().unwrap().as_bytes(),
        &claims(&node, &basic.client_id, &node.url),
    );
    assert_invalid_client(
        &token(&node, &assertion).await,
        "assertion of a client_secret_basic client",
    );
    // An ES256-pinned client refuses other algorithms even with its key family.
    let pinned = format!("pinned-{}", random_u64());
    let mut spec = key_client_spec(&pinned, KeyPair::jwks(&[&key]));
    spec["token_endpoint_auth_signing_alg"] = json!("ES256");
    register(&node, spec).await;
    assert_eq!(
        token(&node, &sign_es256(&key, &claims(&node, &pinned, &node.url)))
            .await
            .0,
        200
    );

    // The refusals issued nothing and spent no jti: the good assertion still works once.
    let assertion = sign_es256(&key, &good());
    assert_eq!(token(&node, &assertion).await.0, 200);
    // After its exp (plus leeway) even an unused assertion is refused.
    let late = sign_es256(&key, &good());
    node.clock.advance(120);
    assert_invalid_client(&token(&node, &late).await, "expired while waiting");
}

/// A JWKS server on 127.0.0.1 whose document can be changed, counting the fetches.
struct JwksServer {
    url: String,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
    _server: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(document: Value) -> JwksServer {
        let document = Arc::new(Mutex::new(document.to_string()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (doc, count, wait) = (document.clone(), fetches.clone(), delay.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (doc, count, wait) = (doc.clone(), count.clone(), wait.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    let pause = *wait.lock().unwrap();
                    tokio::time::sleep(pause).await;
                    let body = doc.lock().unwrap().clone();
                    ([("content-type", "application/json")], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer {
            url: format!("http://127.0.0.1:{port}/jwks"),
            document,
            fetches,
            delay,
            _server: server,
        }
    }

    fn serve(&self, document: Value) {
        *self.document.lock().unwrap() = document.to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn keys_at_a_jwks_uri_are_cached_and_fetched_again_on_rotation_at_most_once_per_interval(
    backend: Backend,
) {
    let Some(node) = spawn_with(backend, |config| {
        config.client_auth.jwks_uri_allow_loopback = true;
    })
    .await
    else {
        return;
    };
    let first = KeyPair::es256("first");
    let jwks = JwksServer::start(KeyPair::jwks(&[&first])).await;
    let id = format!("uri-{}", random_u64());
    register(&node, key_client_spec(&id, Value::String(jwks.url.clone()))).await;

    assert_eq!(
        token(&node, &sign_es256(&first, &claims(&node, &id, &node.url)))
            .await
            .0,
        200
    );
    assert_eq!(
        token(&node, &sign_es256(&first, &claims(&node, &id, &node.url)))
            .await
            .0,
        200
    );
    assert_eq!(jwks.fetches(), 1, "the document is cached");

    // The client rotates: an assertion with the new kid makes the node look again, once
    // (the document was fetched longer than the refetch interval ago).
    node.clock.advance(31);
    let second = KeyPair::es256("second");
    jwks.serve(KeyPair::jwks(&[&first, &second]));
    assert_eq!(
        token(&node, &sign_es256(&second, &claims(&node, &id, &node.url)))
            .await
            .0,
        200
    );
    assert_eq!(jwks.fetches(), 2, "an unknown kid fetches again");
    // Forged kids right after do not: at most one fetch per interval.
    let forged = KeyPair::es256("forged");
    for _ in 0..5 {
        assert_invalid_client(
            &token(&node, &sign_es256(&forged, &claims(&node, &id, &node.url))).await,
            "unknown kid",
        );
    }
    assert_eq!(jwks.fetches(), 2, "forged kids within the interval fetch nothing");
    // After the interval an unknown kid may fetch again; after the cache time anything does.
    node.clock.advance(31);
    assert_invalid_client(
        &token(&node, &sign_es256(&forged, &claims(&node, &id, &node.url))).await,
        "unknown kid after the interval",
    );
    assert_eq!(jwks.fetches(), 3);
    // A removed key stops working once the cache expires (the kid it names is then unknown
    // in a document fetched moments ago: no second fetch).
    jwks.serve(KeyPair::jwks(&[&second]));
    node.clock.advance(301);
    assert_invalid_client(
        &token(&node, &sign_es256(&first, &claims(&node, &id, &node.url))).await,
        "a key the client removed",
    );
    assert_eq!(jwks.fetches(), 4);
    assert_eq!(
        token(&node, &sign_es256(&second, &claims(&node, &id, &node.url)))
            .await
            .0,
        200
    );
    // The server goes bad (not a key set): the last good document is kept.
    jwks.serve(json!({"keys": "nope"}));
    node.clock.advance(301);
    assert_eq!(
        token(&node, &sign_es256(&second, &claims(&node, &id, &node.url)))
            .await
            .0,
        200
    );
    assert_eq!(jwks.fetches(), 5);
}

async fn jwks_uris_at_internal_addresses_oversized_or_slow_are_refused(backend: Backend) {
    // Without the loopback setting: 127.0.0.1, localhost and the metadata address get no
    // connection at all.
    let Some(node) = spawn(backend).await else { return };
    let key = KeyPair::es256("k1");
    let jwks = JwksServer::start(KeyPair::jwks(&[&key])).await;
    let port = jwks
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/jwks")
        .to_owned();
    for uri in [
        jwks.url.clone(),
        format!("http://localhost:{port}/jwks"),
        format!("https://[::ffff:127.0.0.1]:{port}/jwks"),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://10.0.0.1/jwks".to_owned(),
    ] {
        let id = format!("internal-{}", random_u64());
        register(&node, key_client_spec(&id, Value::String(uri.clone()))).await;
        let started = std::time::Instant::now();
        assert_invalid_client(
            &token(&node, &sign_es256(&key, &claims(&node, &id, &node.url))).await,
            &uri,
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{uri} was tried");
    }
    assert_eq!(jwks.fetches(), 0, "no request reached the loopback server");

    // With loopback allowed: documents over the size limit, or too slow, are refused.
    let Some(node) = spawn_with(backend, |config| {
        config.client_auth.jwks_uri_allow_loopback = true;
        config.client_auth.jwks_max_bytes = 4096;
        config.client_auth.jwks_fetch_timeout_ms = 500;
    })
    .await
    else {
        return;
    };
    let mut padded = KeyPair::jwks(&[&key]);
    padded["padding"] = json!("x".repeat(5000));
    jwks.serve(padded);
    let id = format!("big-{}", random_u64());
    register(&node, key_client_spec(&id, Value::String(jwks.url.clone()))).await;
    assert_invalid_client(
        &token(&node, &sign_es256(&key, &claims(&node, &id, &node.url))).await,
        "oversized JWKS",
    );

    jwks.serve(KeyPair::jwks(&[&key]));
    *jwks.delay.lock().unwrap() = Duration::from_secs(3);
    let id = format!("slow-{}", random_u64());
    // Another URL of the same server (documents are cached per URL).
    register(
        &node,
        key_client_spec(&id, Value::String(format!("{}?slow", jwks.url))),
    )
    .await;
    let started = std::time::Instant::now();
    assert_invalid_client(
        &token(&node, &sign_es256(&key, &claims(&node, &id, &node.url))).await,
        "slow JWKS",
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the fetch was not cut short"
    );
    // The same document served promptly works (after the refetch interval).
    *jwks.delay.lock().unwrap() = Duration::ZERO;
    node.clock.advance(31);
    assert_eq!(
        token(&node, &sign_es256(&key, &claims(&node, &id, &node.url)))
            .await
            .0,
        200
    );
}

async fn admin(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let response = node
        .client
        .request(method, node.at(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn the_admin_api_registers_jwt_clients_and_their_key_rotations(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, bearer) = node.admin_token(&format!("ops-{}", random_u64())).await;
    let old = KeyPair::es256("old");
    let id = format!("api-{}", random_u64());
    let mut spec = key_client_spec(&id, KeyPair::jwks(&[&old]));
    spec["token_endpoint_auth_signing_alg"] = json!("ES256");
    let (status, body) = admin(&node, reqwest::Method::POST, "/admin/clients", &bearer, &spec).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(body["token_endpoint_auth_signing_alg"], "ES256");
    assert_eq!(body["jwks"]["keys"][0]["kid"], "old");
    assert_eq!(body["public"], false);
    assert!(
        body.get("client_secret").is_none(),
        "a private_key_jwt client gets no secret: {body}"
    );
    assert_eq!(token_for(&node, &old, &id).await, 200);

    // Rotation by PATCH: the new key works at once, the removed one stops.
    let new = KeyPair::es256("new");
    let path = format!("/admin/clients/{id}");
    let (status, body) = admin(
        &node,
        reqwest::Method::PATCH,
        &path,
        &bearer,
        &json!({"jwks": KeyPair::jwks(&[&new])}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(token_for(&node, &new, &id).await, 200);
    assert_eq!(token_for(&node, &old, &id).await, 401);

    // Bad key material is a 400 naming the field, and changes nothing.
    let mut private = serde_json::to_value(&new.public).unwrap();
    private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    for (patch, field) in [
        (json!({"jwks": {"keys": [private]}}), "jwks"),
        (
            json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            "jwks",
        ),
        (json!({"jwks": null}), "jwks_uri"),
        (json!({"jwks_uri": "http://jwks.example/keys"}), "jwks"),
        (
            json!({"token_endpoint_auth_signing_alg": "HS256"}),
            "token_endpoint_auth_signing_alg",
        ),
        (
            json!({"token_endpoint_auth_method": "client_secret_basic"}),
            "jwks",
        ),
    ] {
        let (status, body) = admin(&node, reqwest::Method::PATCH, &path, &bearer, &patch).await;
        assert_eq!(status, 400, "{patch}: {body}");
        assert!(body.to_string().contains(field), "{patch}: {body}");
    }
    assert_eq!(token_for(&node, &new, &id).await, 200);

    // A client_secret_jwt client gets its secret once, like any secret client.
    let spec = json!({
        "client_name": "HMAC by API",
        "token_endpoint_auth_method": "client_secret_jwt",
        "grant_types": ["client_credentials"],
    });
    let (status, body) = admin(&node, reqwest::Method::POST, "/admin/clients", &bearer, &spec).await;
    assert_eq!(status, 201, "{body}");
    let secret = body["client_secret"].as_str().unwrap();
    let hmac_id = body["client_id"].as_str().unwrap();
    let (_, shown) = node
        .client
        .get(node.at(&format!("/admin/clients/{hmac_id}")))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|v| (0, v))
        .unwrap();
    assert!(
        !shown.to_string().contains(secret),
        "the secret is shown once only"
    );
    let answer = token(
        &node,
        &sign_hs(
            Algorithm::HS256,
            secret.as_bytes(),
            &claims(&node, hmac_id, &node.url),
        ),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);

    // The OpenAPI document describes the new fields.
    let (_, openapi) = node
        .client
        .get(node.at("/admin/openapi.json"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|v| (0, v))
        .unwrap();
    let spec_schema = &openapi["components"]["schemas"]["ClientSpec"]["properties"];
    for field in ["jwks", "jwks_uri", "token_endpoint_auth_signing_alg"] {
        assert!(spec_schema.get(field).is_some(), "ClientSpec lacks {field}");
    }
}

async fn token_for(node: &TestNode, key: &KeyPair, client_id: &str) -> u16 {
    token(node, &sign_es256(key, &claims(node, client_id, &node.url)))
        .await
        .0
}
