//! The authorization code flow as a browser and a relying party walk it: login page, SSO,
//! consent, code exchange with PKCE, ID token, userinfo, code replay, prompt=none, logout.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tessera_testkit::{backend_tests, pkce_pair, spawn, Backend, Browser, TestClient, TestNode};

backend_tests!(
    code_flow_with_pkce_sso_userinfo_replay_and_logout,
    third_party_clients_ask_for_consent_once
);

const REDIRECT: &str = "https://shop.example/cb";
const PASSWORD: &str = "correct horse battery staple 42";

fn authorize_url(node: &TestNode, client: &TestClient, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email profile")
            .append_pair("state", "st-123")
            .append_pair("nonce", "n-456")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

async fn log_in(node: &TestNode, browser: &mut Browser, url: &str, email: &str) -> BTreeMap<String, String> {
    let page = browser.get(url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("name=\"password\""),
        "not a login page: {}",
        page.body
    );
    let mut form = page.form_fields();
    form.insert("username".into(), email.into());
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location.as_deref().unwrap().starts_with(REDIRECT));
    done.location_params()
}

async fn exchange(node: &TestNode, client: &TestClient, code: &str, verifier: &str) -> (u16, Value) {
    let response = node
        .post_form(
            "/oauth2/token",
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn code_flow_with_pkce_sso_userinfo_replay_and_logout(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user("alice@example.com", PASSWORD).await;
    let shop = node
        .create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let mut browser = Browser::new();
    let (verifier, challenge) = pkce_pair();

    // Login page → code at the redirect URI, with state and iss (RFC 9207).
    let params = log_in(
        &node,
        &mut browser,
        &authorize_url(&node, &shop, &challenge, &[]),
        "alice@example.com",
    )
    .await;
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], node.url);
    assert!(browser.cookie("tessera_sso").is_some(), "an SSO cookie is set");

    let (status, tokens) = exchange(&node, &shop, &params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].as_str().is_some());

    // The ID token verifies against the JWKS and carries what OIDC Core requires.
    let jwks: JwkSet = node.get("/.well-known/jwks.json").await.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["shop-web"]);
    validation.set_issuer(&[&node.url]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["nonce"], "n-456");
    // An access token was issued: the scope's claims come from userinfo (OIDC Core §5.4).
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        claims["at_hash"],
        tessera_idp::oidc::id_token::at_hash(access).as_str()
    );
    assert!(claims["auth_time"].as_i64().is_some() && claims["sid"].as_str().is_some());

    // Userinfo releases the scope's claims.
    let (status, info) = node.get_bearer("/oauth2/userinfo", access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);

    // The code is single use; a replay revokes what it issued.
    let (status, body) = exchange(&node, &shop, &params["code"], &verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(node.introspect(&shop, access).await["active"], false);

    // SSO: a second authorization needs no login; a wrong verifier fails.
    let (verifier, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(&node, &shop, &challenge, &[])).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let code = page.location_params()["code"].clone();
    let (status, _) = exchange(&node, &shop, &code, &pkce_pair().0).await;
    assert_eq!(status, 400, "a wrong PKCE verifier must fail");
    let page = browser.get(&authorize_url(&node, &shop, &challenge, &[])).await;
    let (status, tokens) = exchange(&node, &shop, &page.location_params()["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");

    // prompt=none without a session: login_required at the client, no page.
    let mut stranger = Browser::new();
    let page = stranger
        .get(&authorize_url(&node, &shop, &challenge, &[("prompt", "none")]))
        .await;
    assert_eq!(page.status, 302);
    assert_eq!(page.location_params()["error"], "login_required");
    assert_eq!(page.location_params()["state"], "st-123");

    // RP-initiated logout with id_token_hint ends the SSO session and its tokens.
    let id_token = tokens["id_token"].as_str().unwrap();
    let mut logout = reqwest::Url::parse(&node.at("/oauth2/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", &format!("{REDIRECT}/logged-out"))
        .append_pair("state", "bye");
    let page = browser.get(logout.as_str()).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{REDIRECT}/logged-out?state=bye").as_str())
    );
    assert!(
        browser.cookie("tessera_sso").is_none(),
        "the SSO cookie is cleared"
    );
    assert_eq!(
        node.introspect(&shop, tokens["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
    let (status, _) = node
        .refresh(&shop, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 400);
    // And the next authorization asks for a login again.
    let page = browser.get(&authorize_url(&node, &shop, &challenge, &[])).await;
    assert_eq!(page.status, 200);
}

async fn third_party_clients_ask_for_consent_once(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    node.create_user("bob@example.com", PASSWORD).await;
    let partner = node
        .create_oidc_client("partner-app", true, REDIRECT, false, None)
        .await;
    let mut browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let url = authorize_url(&node, &partner, &challenge, &[]);

    let page = browser.get(&url).await;
    let mut form = page.form_fields();
    form.insert("username".into(), "bob@example.com".into());
    form.insert("password".into(), PASSWORD.into());
    let consent = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(consent.status, 200, "a consent page follows the login");
    assert!(consent.body.contains("value=\"allow\""), "{}", consent.body);

    // Deny: access_denied at the client.
    let mut form = consent.form_fields();
    form.insert("decision".into(), "deny".into());
    let denied = browser
        .post_form(&node.at("/oauth2/authorize/consent"), &form)
        .await;
    assert_eq!(denied.location_params()["error"], "access_denied");

    // Allow once; the next request goes straight through.
    let consent = browser.get(&url).await;
    let mut form = consent.form_fields();
    form.insert("decision".into(), "allow".into());
    let allowed = browser
        .post_form(&node.at("/oauth2/authorize/consent"), &form)
        .await;
    assert!(allowed.location_params().contains_key("code"));
    let again = browser.get(&url).await;
    assert_eq!(again.status, 302);
    assert!(again.location_params().contains_key("code"));

    // A forged consent post (no CSRF cookie) is refused.
    let mut forger = Browser::new();
    let refused = forger
        .post_form(&node.at("/oauth2/authorize/consent"), &form)
        .await;
    assert_eq!(refused.status, 403);
}
