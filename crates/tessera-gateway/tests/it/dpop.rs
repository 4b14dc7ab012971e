//! DPoP-bound tokens (RFC 9449 §7) at the gateway: a token with `cnf.jkt` passes only with
//! the `DPoP` scheme and a fresh proof of its key for this very request (method, the
//! gateway's public URL and path, `ath`, `iat`), once; as Bearer it is refused with a
//! `DPoP` challenge. Real tokens from a provider node, bound at its token endpoint.

use serde_json::{json, Value};
use tessera_testkit::{random_u64, DpopKey, TestNode};

use crate::common::*;

/// What clients address the gateway by (a load balancer in front of it, say).
const PUBLIC: &str = "https://api.example.com";

/// A client-credentials token of `node` bound to `key` (or a Bearer token without one).
async fn token(node: &TestNode, key: Option<&DpopKey>) -> String {
    let (client, _) = node.admin_token(&format!("gw-dpop-{}", random_u64())).await;
    let mut request = node
        .client
        .post(node.at("/oauth2/token"))
        .basic_auth(&client.client_id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials"), ("scope", "tessera:admin")]);
    if let Some(key) = key {
        request = request.header("DPoP", key.proof("POST", &node.at("/oauth2/token"), None));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], if key.is_some() { "DPoP" } else { "Bearer" });
    body["access_token"].as_str().unwrap().to_owned()
}

/// `GET url` with `Authorization: DPoP <token>` and these `DPoP` headers.
async fn get_dpop(url: &str, token: &str, proofs: &[&str]) -> (u16, reqwest::header::HeaderMap, Value) {
    let authorization = format!("DPoP {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    get_with(url, None, &headers).await
}

fn assert_refused(answer: &(u16, reqwest::header::HeaderMap, Value), error: &str, what: &str) {
    assert_eq!(answer.0, 401, "{what}: {}", answer.2);
    assert_eq!(answer.2["error"], error, "{what}");
    let challenge = answer.1["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(&format!("DPoP realm=\"api\", error=\"{error}\""))
            && challenge.contains("algs=\"ES256"),
        "{what}: {challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_tokens_need_a_fresh_proof_of_their_key_for_each_request() {
    let node = node().await;
    let upstream = Upstream::start("orders");
    let mut gateway_config = config(&node.url, vec![route("/orders", &[&upstream])]);
    gateway_config.public_url = Some(format!("{PUBLIC}/"));
    let gateway = TestGateway::start(gateway_config).await;
    let key = DpopKey::generate();
    let bound = token(&node, Some(&key)).await;
    let url = gateway.at("/orders/1?page=2");
    let htu = format!("{PUBLIC}/orders/1");

    // As Bearer: refused, with the DPoP challenge; nothing reaches the upstream.
    let (status, headers, body) = get(&url, Some(&bound)).await;
    assert_refused(
        &(status, headers, body),
        "invalid_token",
        "a bound token as Bearer",
    );
    assert_eq!(upstream.hits(), 0);

    // With its proof (the query is not part of htu): through, the proof forwarded as sent.
    let proof = key.proof("GET", &htu, Some(&bound));
    let (status, _, body) = get_dpop(&url, &bound, &[&proof]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["authorization"], format!("DPoP {bound}"));
    assert_eq!(upstream.hits(), 1);

    // The same proof again: a replay.
    assert_refused(
        &get_dpop(&url, &bound, &[&proof]).await,
        "invalid_dpop_proof",
        "a replay",
    );

    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    let stale = {
        let mut claims = key.claims("GET", &htu, Some(&bound));
        claims["iat"] = json!(now - 600);
        key.sign(&key.header(), &claims)
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no proof", vec![]),
        (
            "two proofs",
            vec![
                key.proof("GET", &htu, Some(&bound)),
                key.proof("GET", &htu, Some(&bound)),
            ],
        ),
        (
            "another path",
            vec![key.proof("GET", &format!("{PUBLIC}/orders/2"), Some(&bound))],
        ),
        (
            "the gateway's own address",
            vec![key.proof("GET", &gateway.at("/orders/1"), Some(&bound))],
        ),
        ("another method", vec![key.proof("POST", &htu, Some(&bound))]),
        (
            "the ath of another token",
            vec![key.proof("GET", &htu, Some("another-token"))],
        ),
        ("a stale iat", vec![stale]),
        ("oversized", vec!["x".repeat(7 * 1024)]),
    ];
    for (what, proofs) in &cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        assert_refused(&get_dpop(&url, &bound, &proofs).await, "invalid_dpop_proof", what);
    }
    // A valid proof of another key: the token is not bound to it.
    let other = DpopKey::generate();
    assert_refused(
        &get_dpop(&url, &bound, &[&other.proof("GET", &htu, Some(&bound))]).await,
        "invalid_token",
        "another key's proof",
    );
    assert_eq!(upstream.hits(), 1, "nothing refused reached the upstream");

    // An unbound token: as Bearer as ever; as DPoP, refused.
    let plain = token(&node, None).await;
    let (status, _, body) = get(&url, Some(&plain)).await;
    assert_eq!(status, 200, "{body}");
    assert_refused(
        &get_dpop(&url, &plain, &[&key.proof("GET", &htu, Some(&plain))]).await,
        "invalid_token",
        "an unbound token as DPoP",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_public_url_bound_tokens_are_refused() {
    let node = node().await;
    let upstream = Upstream::start("orders");
    let gateway = TestGateway::start(config(&node.url, vec![route("/orders", &[&upstream])])).await;
    let key = DpopKey::generate();
    let bound = token(&node, Some(&key)).await;
    for htu in [gateway.at("/orders/1"), format!("{PUBLIC}/orders/1")] {
        let answer = get_dpop(
            &gateway.at("/orders/1"),
            &bound,
            &[&key.proof("GET", &htu, Some(&bound))],
        )
        .await;
        assert_refused(&answer, "invalid_token", "no public_url");
    }
    assert_eq!(upstream.hits(), 0);
}
