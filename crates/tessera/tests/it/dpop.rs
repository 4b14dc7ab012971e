//! DPoP (RFC 9449) at the provider: proofs at the token endpoint bind what every grant
//! issues to the proof's key (`cnf.jkt`, `token_type: DPoP`), a public client's refresh
//! tokens refresh only with that key, `dpop_jkt` binds a code, userinfo takes
//! `Authorization: DPoP` and refuses a bound token presented as Bearer, nonces when the
//! operator requires them, and the abuse: replayed (also on a second node), for another
//! URI or method, stale or future, wrong `ath`, a private or symmetric key, `alg: none`,
//! oversized, two headers.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera_testkit::{
    backend_tests, loopback_ip, pkce_pair, random_u64, spawn, spawn_with, Backend, Browser, DpopKey,
    TestClient, TestNode,
};

backend_tests!(
    a_public_clients_tokens_are_bound_through_refresh_and_userinfo,
    dpop_jkt_binds_the_authorization_code,
    client_credentials_and_confidential_refreshes_bind_the_access_token_only,
    malformed_and_replayed_proofs_are_refused_and_issue_nothing,
    proofs_at_userinfo_must_match_the_token_and_the_request,
    nonces_are_asked_for_when_required_and_good_on_every_node,
    the_device_grant_binds_to_the_key_that_polls
);

const REDIRECT: &str = "https://spa.example/cb";
const PASSWORD: &str = "correct horse battery staple 42";
const TOKEN: &str = "/oauth2/token";
const USERINFO: &str = "/oauth2/userinfo";

/// A response: status, headers, JSON body (null when empty).
type Answer = (u16, reqwest::header::HeaderMap, Value);

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// `POST /oauth2/token` as `client` with `fields` and these `DPoP` headers.
async fn token_request(
    node: &TestNode,
    url: &str,
    client: &TestClient,
    fields: &[(&str, &str)],
    proofs: &[&str],
) -> Answer {
    let mut form: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut request = client.authenticate(node.client.post(format!("{url}{TOKEN}")), &mut form);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    answer(request.form(&form).send().await.unwrap()).await
}

/// `GET /oauth2/userinfo` with `Authorization: <scheme> <token>` and these `DPoP` headers.
async fn userinfo(node: &TestNode, scheme: &str, token: &str, proofs: &[&str]) -> Answer {
    let mut request = node
        .client
        .get(node.at(USERINFO))
        .header("Authorization", format!("{scheme} {token}"));
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    answer(request.send().await.unwrap()).await
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn assert_error(answer: &Answer, status: u16, error: &str, what: &str) {
    assert_eq!(
        (answer.0, answer.2["error"].as_str()),
        (status, Some(error)),
        "{what}: {}",
        answer.2
    );
    assert!(
        answer.2.get("access_token").is_none(),
        "{what}: a token was issued"
    );
}

fn authorize_url(node: &TestNode, client: &TestClient, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email")
            .append_pair("state", "st-dpop")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// A signed-in browser and a user for code flows.
async fn signed_in(node: &TestNode, client: &TestClient) -> Browser {
    let email = format!("dpop-{}@example.com", random_u64());
    node.create_user(&email, PASSWORD).await;
    let mut browser = Browser::from_address(loopback_ip());
    let (_, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(node, client, &challenge, &[])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = page.form_fields();
    form.insert("username".into(), email);
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    browser
}

/// A code for `client` from the signed-in `browser` (SSO), with its PKCE verifier.
async fn new_code(
    node: &TestNode,
    browser: &mut Browser,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(node, client, &challenge, extra)).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let params: BTreeMap<String, String> = page.location_params();
    (params["code"].clone(), verifier)
}

async fn redeem(node: &TestNode, client: &TestClient, code: &str, verifier: &str, proofs: &[&str]) -> Answer {
    token_request(
        node,
        &node.url,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
        proofs,
    )
    .await
}

async fn refresh(node: &TestNode, client: &TestClient, refresh_token: &str, proofs: &[&str]) -> Answer {
    token_request(
        node,
        &node.url,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
        proofs,
    )
    .await
}

/// A confidential client that may introspect.
async fn resource_server(node: &TestNode) -> TestClient {
    node.create_client(&format!("rs-{}", random_u64()), false, "partner")
        .await
}

async fn a_public_clients_tokens_are_bound_through_refresh_and_userinfo(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let spa = node
        .create_oidc_client("dpop-spa", true, REDIRECT, true, None)
        .await;
    let rs = resource_server(&node).await;
    let key = DpopKey::generate();
    let other = DpopKey::generate();
    let mut browser = signed_in(&node, &spa).await;

    // The code exchange with a proof: a DPoP token bound to the key.
    let (code, verifier) = new_code(&node, &mut browser, &spa, &[]).await;
    let tokens = redeem(
        &node,
        &spa,
        &code,
        &verifier,
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(tokens.0, 200, "{}", tokens.2);
    assert_eq!(tokens.2["token_type"], "DPoP");
    let access = tokens.2["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&access)["cnf"], json!({ "jkt": key.jkt() }));
    let introspected = node.introspect(&rs, &access).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], key.jkt().as_str());

    // Userinfo: with its proof, yes; as Bearer, or with another key's proof, no.
    let info = userinfo(
        &node,
        "DPoP",
        &access,
        &[&key.proof("GET", &node.at(USERINFO), Some(&access))],
    )
    .await;
    assert_eq!(info.0, 200, "{}", info.2);
    assert!(info.2["sub"].is_string());
    let bearer = userinfo(&node, "Bearer", &access, &[]).await;
    assert_error(&bearer, 401, "invalid_token", "a bound token as Bearer");
    let challenge = bearer.1["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("algs=\"ES256"), "{challenge}");
    let wrong_key = userinfo(
        &node,
        "DPoP",
        &access,
        &[&other.proof("GET", &node.at(USERINFO), Some(&access))],
    )
    .await;
    assert_error(&wrong_key, 401, "invalid_token", "another key's proof");

    // The refresh token is bound: without a proof, or with another key, invalid_grant, and
    // nothing changes (the right key still refreshes the same token).
    let refresh_token = tokens.2["refresh_token"].as_str().unwrap().to_owned();
    assert_error(
        &refresh(&node, &spa, &refresh_token, &[]).await,
        400,
        "invalid_grant",
        "no proof",
    );
    let foreign = other.proof("POST", &node.at(TOKEN), None);
    assert_error(
        &refresh(&node, &spa, &refresh_token, &[&foreign]).await,
        400,
        "invalid_grant",
        "another key",
    );
    let refreshed = refresh(
        &node,
        &spa,
        &refresh_token,
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(refreshed.0, 200, "{}", refreshed.2);
    assert_eq!(refreshed.2["token_type"], "DPoP");
    let access = refreshed.2["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["cnf"]["jkt"], key.jkt().as_str());
    // The successor is bound as well.
    let next = refreshed.2["refresh_token"].as_str().unwrap();
    assert_error(
        &refresh(&node, &spa, next, &[]).await,
        400,
        "invalid_grant",
        "successor without a proof",
    );
    let again = refresh(&node, &spa, next, &[&key.proof("POST", &node.at(TOKEN), None)]).await;
    assert_eq!(again.0, 200, "{}", again.2);

    // Without a proof, a public client's tokens are Bearer tokens as before.
    let (code, verifier) = new_code(&node, &mut browser, &spa, &[]).await;
    let plain = redeem(&node, &spa, &code, &verifier, &[]).await;
    assert_eq!(plain.0, 200, "{}", plain.2);
    assert_eq!(plain.2["token_type"], "Bearer");
    let plain_access = plain.2["access_token"].as_str().unwrap();
    assert!(claims_of(plain_access).get("cnf").is_none());
    assert_eq!(userinfo(&node, "Bearer", plain_access, &[]).await.0, 200);
    // ... and an unbound token may not pose as a DPoP one.
    let posing = userinfo(
        &node,
        "DPoP",
        plain_access,
        &[&key.proof("GET", &node.at(USERINFO), Some(plain_access))],
    )
    .await;
    assert_error(&posing, 401, "invalid_token", "an unbound token as DPoP");

    // Discovery lists the proof algorithms.
    let (_, discovery) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "RS256", "PS256", "EdDSA"])
    );
}

async fn dpop_jkt_binds_the_authorization_code(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let spa = node
        .create_oidc_client("dpop-jkt-spa", true, REDIRECT, true, None)
        .await;
    let key = DpopKey::generate();
    let other = DpopKey::generate();
    let mut browser = signed_in(&node, &spa).await;
    let jkt = key.jkt();

    // Another key's proof, or none: invalid_grant.
    let (code_a, verifier) = new_code(&node, &mut browser, &spa, &[("dpop_jkt", &jkt)]).await;
    let refused = redeem(
        &node,
        &spa,
        &code_a,
        &verifier,
        &[&other.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_error(&refused, 400, "invalid_grant", "a code bound to another key");
    let (code_b, verifier) = new_code(&node, &mut browser, &spa, &[("dpop_jkt", &jkt)]).await;
    assert_error(
        &redeem(&node, &spa, &code_b, &verifier, &[]).await,
        400,
        "invalid_grant",
        "no proof",
    );

    // The key it was bound to: tokens bound to it.
    let (code_c, verifier) = new_code(&node, &mut browser, &spa, &[("dpop_jkt", &jkt)]).await;
    let tokens = redeem(
        &node,
        &spa,
        &code_c,
        &verifier,
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(tokens.0, 200, "{}", tokens.2);
    assert_eq!(
        claims_of(tokens.2["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt.as_str()
    );

    // A malformed dpop_jkt is an invalid request, sent back to the client.
    let (_, challenge) = pkce_pair();
    let page = browser
        .get(&authorize_url(
            &node,
            &spa,
            &challenge,
            &[("dpop_jkt", "not-a-thumbprint")],
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.location_params()["error"], "invalid_request");
}

async fn client_credentials_and_confidential_refreshes_bind_the_access_token_only(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = DpopKey::generate();
    let other = DpopKey::generate();
    let (admin, _) = node.admin_token(&format!("dpop-cc-{}", random_u64())).await;
    let cc = token_request(
        &node,
        &node.url,
        &admin,
        &[("grant_type", "client_credentials"), ("scope", "tessera:admin")],
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(cc.0, 200, "{}", cc.2);
    assert_eq!(cc.2["token_type"], "DPoP");
    let bound = cc.2["access_token"].as_str().unwrap();
    assert_eq!(claims_of(bound)["cnf"]["jkt"], key.jkt().as_str());
    // The provider's own Bearer APIs refuse it as Bearer.
    let (status, _) = node.get_bearer("/admin/users", bound).await;
    assert_eq!(status, 401, "a bound token as Bearer at the admin API");

    // A confidential client: its refresh token is bound to its authentication, so another
    // key (or none) may refresh, and the new access token is bound to that request's key.
    let shop = node
        .create_oidc_client("dpop-shop", false, REDIRECT, true, None)
        .await;
    let mut browser = signed_in(&node, &shop).await;
    let (code, verifier) = new_code(&node, &mut browser, &shop, &[]).await;
    let tokens = redeem(
        &node,
        &shop,
        &code,
        &verifier,
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(tokens.0, 200, "{}", tokens.2);
    let refreshed = refresh(
        &node,
        &shop,
        tokens.2["refresh_token"].as_str().unwrap(),
        &[&other.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(refreshed.0, 200, "{}", refreshed.2);
    assert_eq!(
        claims_of(refreshed.2["access_token"].as_str().unwrap())["cnf"]["jkt"],
        other.jkt().as_str()
    );
    let unbound = refresh(&node, &shop, refreshed.2["refresh_token"].as_str().unwrap(), &[]).await;
    assert_eq!(unbound.0, 200, "{}", unbound.2);
    assert_eq!(unbound.2["token_type"], "Bearer");
}

async fn malformed_and_replayed_proofs_are_refused_and_issue_nothing(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let key = DpopKey::generate();
    let (admin, _) = node.admin_token(&format!("dpop-abuse-{}", random_u64())).await;
    let uri = node.at(TOKEN);
    let grant: &[(&str, &str)] = &[("grant_type", "client_credentials"), ("scope", "tessera:admin")];
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    let with = |edit: &dyn Fn(&mut Value, &mut Value)| {
        let mut header = key.header();
        let mut claims = key.claims("POST", &uri, None);
        edit(&mut header, &mut claims);
        key.sign(&header, &claims)
    };
    let garbage = "x".repeat(7 * 1024);
    let cases: Vec<(&str, String)> = vec![
        (
            "another URI",
            with(&|_, c| c["htu"] = json!(node.at("/oauth2/introspect"))),
        ),
        (
            "another host",
            with(&|_, c| c["htu"] = json!("https://evil.example/oauth2/token")),
        ),
        ("another method", with(&|_, c| c["htm"] = json!("GET"))),
        ("a stale iat", with(&|_, c| c["iat"] = json!(now - 600))),
        ("a future iat", with(&|_, c| c["iat"] = json!(now + 600))),
        (
            "no jti",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        ("an ath without a token", with(&|_, c| c["ath"] = json!("abc"))),
        (
            "a private key in the jwk",
            with(&|h, _| h["jwk"]["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]))),
        ),
        (
            "a symmetric jwk",
            with(&|h, _| h["jwk"] = json!({ "kty": "oct", "k": "c2VjcmV0" })),
        ),
        (
            "no jwk",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("jwk");
            }),
        ),
        ("alg none", with(&|h, _| h["alg"] = json!("none"))),
        ("alg HS256", with(&|h, _| h["alg"] = json!("HS256"))),
        ("typ JWT", with(&|h, _| h["typ"] = json!("JWT"))),
        (
            "another key's jwk",
            with(&|h, _| h["jwk"] = DpopKey::generate().jwk()),
        ),
        ("oversized", garbage),
        ("not a JWS", "not.a.jws".to_owned()),
    ];
    for (what, proof) in &cases {
        let refused = token_request(&node, &node.url, &admin, grant, &[proof]).await;
        assert_error(&refused, 400, "invalid_dpop_proof", what);
    }
    let two = token_request(
        &node,
        &node.url,
        &admin,
        grant,
        &[&key.proof("POST", &uri, None), &key.proof("POST", &uri, None)],
    )
    .await;
    assert_error(&two, 400, "invalid_dpop_proof", "two DPoP headers");

    // A proof is good once; a replay is refused, on this node and (sharing Redis) another.
    let proof = key.proof("POST", &uri, None);
    let first = token_request(&node, &node.url, &admin, grant, &[&proof]).await;
    assert_eq!(first.0, 200, "{}", first.2);
    assert_error(
        &token_request(&node, &node.url, &admin, grant, &[&proof]).await,
        400,
        "invalid_dpop_proof",
        "a replay",
    );
    let (peer, server) = node.peer().await;
    if node.config.redis_url.is_some() {
        assert_error(
            &token_request(&node, &peer, &admin, grant, &[&proof]).await,
            400,
            "invalid_dpop_proof",
            "a replay on another node",
        );
    }
    // The other node takes fresh proofs made for the issuer's URL.
    let fresh = token_request(&node, &peer, &admin, grant, &[&key.proof("POST", &uri, None)]).await;
    assert_eq!(fresh.0, 200, "{}", fresh.2);
    server.abort();
}

async fn proofs_at_userinfo_must_match_the_token_and_the_request(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let spa = node
        .create_oidc_client("dpop-ui-spa", true, REDIRECT, true, None)
        .await;
    let key = DpopKey::generate();
    let mut browser = signed_in(&node, &spa).await;
    let (code, verifier) = new_code(&node, &mut browser, &spa, &[]).await;
    let tokens = redeem(
        &node,
        &spa,
        &code,
        &verifier,
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(tokens.0, 200, "{}", tokens.2);
    let access = tokens.2["access_token"].as_str().unwrap();
    let at_userinfo = node.at(USERINFO);

    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no proof", vec![]),
        ("a proof without ath", vec![key.proof("GET", &at_userinfo, None)]),
        (
            "the ath of another token",
            vec![key.proof("GET", &at_userinfo, Some("another-token"))],
        ),
        (
            "a proof for the token endpoint",
            vec![key.proof("GET", &node.at(TOKEN), Some(access))],
        ),
        (
            "a proof for POST",
            vec![key.proof("POST", &at_userinfo, Some(access))],
        ),
        (
            "two proofs",
            vec![
                key.proof("GET", &at_userinfo, Some(access)),
                key.proof("GET", &at_userinfo, Some(access)),
            ],
        ),
    ];
    for (what, proofs) in &cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let refused = userinfo(&node, "DPoP", access, &proofs).await;
        assert_error(&refused, 401, "invalid_dpop_proof", what);
        let challenge = refused.1["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
            "{what}: {challenge}"
        );
    }
    let proof = key.proof("GET", &at_userinfo, Some(access));
    assert_eq!(userinfo(&node, "DPoP", access, &[&proof]).await.0, 200);
    let replayed = userinfo(&node, "DPoP", access, &[&proof]).await;
    assert_error(
        &replayed,
        401,
        "invalid_dpop_proof",
        "a replayed proof at userinfo",
    );
}

async fn nonces_are_asked_for_when_required_and_good_on_every_node(backend: Backend) {
    let Some(node) = spawn_with(backend, |c| c.tokens.dpop.require_nonce = true).await else {
        return;
    };
    let key = DpopKey::generate();
    let (admin, _) = node.admin_token(&format!("dpop-nonce-{}", random_u64())).await;
    let uri = node.at(TOKEN);
    let grant: &[(&str, &str)] = &[("grant_type", "client_credentials"), ("scope", "tessera:admin")];

    // Without a nonce: use_dpop_nonce, and one to use.
    let asked = token_request(&node, &node.url, &admin, grant, &[&key.proof("POST", &uri, None)]).await;
    assert_error(&asked, 400, "use_dpop_nonce", "a proof without a nonce");
    let nonce = asked.1["dpop-nonce"].to_str().unwrap().to_owned();
    // A made-up nonce is no better.
    let made_up = key.proof_with_nonce("POST", &uri, None, "bm90LWEtbm9uY2U");
    assert_error(
        &token_request(&node, &node.url, &admin, grant, &[&made_up]).await,
        400,
        "use_dpop_nonce",
        "a made-up nonce",
    );
    // With it: tokens, and the next nonce offered.
    let issued = token_request(
        &node,
        &node.url,
        &admin,
        grant,
        &[&key.proof_with_nonce("POST", &uri, None, &nonce)],
    )
    .await;
    assert_eq!(issued.0, 200, "{}", issued.2);
    assert!(issued.1.contains_key("dpop-nonce"));
    // Another node accepts this node's nonce (derived from the shared master key).
    let (peer, server) = node.peer().await;
    let there = token_request(
        &node,
        &peer,
        &admin,
        grant,
        &[&key.proof_with_nonce("POST", &uri, None, &nonce)],
    )
    .await;
    assert_eq!(there.0, 200, "{}", there.2);
    // Requests without DPoP are not affected.
    let plain = token_request(&node, &node.url, &admin, grant, &[]).await;
    assert_eq!(plain.0, 200, "{}", plain.2);
    // Nonces expire: two windows later this one is refused.
    node.clock.advance(601);
    let late = key.proof_with_nonce("POST", &uri, None, &nonce);
    let mut late_claims = claims_of(&late);
    late_claims["iat"] = json!(tessera_idp::clock::Clock::now(node.clock.as_ref()));
    let late = key.sign(&key.header(), &late_claims);
    assert_error(
        &token_request(&node, &node.url, &admin, grant, &[&late]).await,
        400,
        "use_dpop_nonce",
        "an expired nonce",
    );
    server.abort();
}

async fn the_device_grant_binds_to_the_key_that_polls(backend: Backend) {
    let Some(node) = spawn_with(backend, |c| c.device.poll_interval_secs = 1).await else {
        return;
    };
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
    let email = format!("dpop-tv-{}@example.com", random_u64());
    node.create_user(&email, PASSWORD).await;
    let tv = crate::device::device_client(&node, "dpop-tv", false, &[GRANT, "refresh_token"]).await;
    let key = DpopKey::generate();
    let started = crate::device::start(&node, &tv, "openid email").await;
    let device_code = started["device_code"].as_str().unwrap();
    let mut browser = Browser::from_address(loopback_ip());
    let user_code = started["user_code"].as_str().unwrap();
    let done = crate::device::answer_on_page(&node, &mut browser, user_code, &email, "allow").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let poll = &[("grant_type", GRANT), ("device_code", device_code)];
    let tokens = token_request(
        &node,
        &node.url,
        &tv,
        poll,
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(tokens.0, 200, "{}", tokens.2);
    assert_eq!(tokens.2["token_type"], "DPoP");
    assert_eq!(
        claims_of(tokens.2["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt().as_str()
    );
    // The TV is a public client: its refresh token is bound too.
    let refresh_token = tokens.2["refresh_token"].as_str().unwrap();
    assert_error(
        &refresh(&node, &tv, refresh_token, &[]).await,
        400,
        "invalid_grant",
        "a device's refresh without a proof",
    );
    let refreshed = refresh(
        &node,
        &tv,
        refresh_token,
        &[&key.proof("POST", &node.at(TOKEN), None)],
    )
    .await;
    assert_eq!(refreshed.0, 200, "{}", refreshed.2);
}
