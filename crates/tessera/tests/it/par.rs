//! Pushed authorization requests (RFC 9126): `/oauth2/par` validates as `/oauth2/authorize`
//! does and answers a `request_uri`, used once, by its own client, within 60 s, whose
//! parameters stand for the query's; a client may require it. And the abuse: replayed,
//! another client's, expired, unknown, malformed pushes, oversized bodies.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tessera_testkit::{backend_tests, pkce_pair, spawn, Backend, Browser, TestClient, TestNode};

backend_tests!(
    a_pushed_request_is_used_once_and_its_parameters_win,
    malformed_pushes_get_the_errors_authorize_would_give,
    request_uris_are_single_use_bound_to_their_client_and_short_lived,
    a_client_may_require_pushed_requests
);

const REDIRECT: &str = "https://shop.example/cb";
const PASSWORD: &str = "correct horse battery staple 42";
const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Form fields, in order.
type Fields = Vec<(String, String)>;

/// The fields of an authorization request of `client` with PKCE `challenge`.
fn request(client: &TestClient, challenge: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "st-pushed"),
        ("nonce", "n-pushed"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn with(mut fields: Vec<(String, String)>, name: &str, value: Option<&str>) -> Vec<(String, String)> {
    fields.retain(|(k, _)| k != name);
    if let Some(value) = value {
        fields.push((name.to_owned(), value.to_owned()));
    }
    fields
}

/// Pushes `fields` as `client` (a public client's `client_id` is added by its
/// authentication, so a `client_id` field is left out for it).
async fn push(node: &TestNode, client: &TestClient, fields: &[(String, String)]) -> (u16, Value) {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| client.secret.is_some() || k != "client_id")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = node.post_form("/oauth2/par", client, &pairs).await;
    let status = response.status().as_u16();
    if status == 201 {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap())
}

async fn pushed_uri(node: &TestNode, client: &TestClient, fields: &[(String, String)]) -> String {
    let (status, body) = push(node, client, fields).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with(PREFIX) && uri.len() > PREFIX.len() + 40, "{uri}");
    uri
}

fn authorize_url(node: &TestNode, pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

async fn log_in(node: &TestNode, browser: &mut Browser, url: &str, email: &str) -> BTreeMap<String, String> {
    let page = browser.get(url).await;
    assert_eq!(page.status, 200, "{}", page.body);
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

fn assert_oauth_error(answer: &(u16, Value), status: u16, error: &str, what: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (status, Some(error)),
        "{what}: {}",
        answer.1
    );
}

async fn a_pushed_request_is_used_once_and_its_parameters_win(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    node.create_user("par-user@example.com", PASSWORD).await;
    let shop = node
        .create_oidc_client("par-shop", false, REDIRECT, true, None)
        .await;
    let (verifier, challenge) = pkce_pair();
    let uri = pushed_uri(&node, &shop, &request(&shop, &challenge)).await;

    // Only client_id and request_uri of the query count: another state, scope and redirect
    // URI beside them are ignored (RFC 9126 §4).
    let url = authorize_url(
        &node,
        &[
            ("client_id", "par-shop"),
            ("request_uri", &uri),
            ("state", "st-query"),
            ("scope", "openid profile"),
            ("redirect_uri", "https://evil.example/cb"),
        ],
    );
    let mut browser = Browser::new();
    let params = log_in(&node, &mut browser, &url, "par-user@example.com").await;
    assert_eq!(params["state"], "st-pushed");
    assert_eq!(params["iss"], node.url);
    let response = node
        .post_form(
            "/oauth2/token",
            &shop,
            &[
                ("grant_type", "authorization_code"),
                ("code", &params["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["scope"], "openid email");
    let id_token = crate::mfa::payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["nonce"], "n-pushed");

    // Used once: the same request_uri again is refused on a page (nothing to redirect to).
    let again = browser.get(&url).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("already used"), "{}", again.body);

    // A public client pushes with its client_id alone; with SSO the code comes at once.
    let spa = node
        .create_oidc_client("par-spa", true, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let uri = pushed_uri(&node, &spa, &request(&spa, &challenge)).await;
    let page = browser
        .get(&authorize_url(
            &node,
            &[("client_id", "par-spa"), ("request_uri", &uri)],
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(page.location_params().contains_key("code"));
    // A confidential client's push with Basic may leave client_id out of the body.
    let (_, challenge) = pkce_pair();
    pushed_uri(&node, &shop, &with(request(&shop, &challenge), "client_id", None)).await;

    // Discovery.
    let (_, metadata) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        metadata["pushed_authorization_request_endpoint"],
        node.at("/oauth2/par").as_str()
    );
    assert_eq!(metadata["require_pushed_authorization_requests"], false);
}

async fn malformed_pushes_get_the_errors_authorize_would_give(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let shop = node
        .create_oidc_client("par-strict", false, REDIRECT, true, None)
        .await;
    let spa = node
        .create_oidc_client("par-pub", true, REDIRECT, true, None)
        .await;
    let (verifier, challenge) = pkce_pair();
    let valid = request(&shop, &challenge);
    let long = "n".repeat(3000);
    let cases: Vec<(&str, Fields, &str)> = vec![
        (
            "no response_type",
            with(valid.clone(), "response_type", None),
            "invalid_request",
        ),
        (
            "implicit",
            with(valid.clone(), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            "a scope not registered",
            with(valid.clone(), "scope", Some("openid admin")),
            "invalid_scope",
        ),
        ("no scope", with(valid.clone(), "scope", None), "invalid_scope"),
        (
            "an unregistered redirect URI",
            with(valid.clone(), "redirect_uri", Some("https://evil.example/cb")),
            "invalid_request",
        ),
        (
            "no redirect URI",
            with(valid.clone(), "redirect_uri", None),
            "invalid_request",
        ),
        (
            "plain PKCE",
            with(
                with(valid.clone(), "code_challenge", Some(&verifier)),
                "code_challenge_method",
                Some("plain"),
            ),
            "invalid_request",
        ),
        (
            "a request object",
            with(valid.clone(), "request", Some("eyJhbGciOiJub25lIn0.e30.")),
            "request_not_supported",
        ),
        (
            "a request_uri",
            with(valid.clone(), "request_uri", Some(&format!("{PREFIX}x"))),
            "invalid_request",
        ),
        (
            "another client_id",
            with(valid.clone(), "client_id", Some("par-pub")),
            "invalid_request",
        ),
        (
            "an overlong parameter",
            with(valid.clone(), "nonce", Some(&long)),
            "invalid_request",
        ),
        (
            "an unknown prompt",
            with(valid.clone(), "prompt", Some("select_account")),
            "invalid_request",
        ),
    ];
    for (what, fields, error) in cases {
        assert_oauth_error(&push(&node, &shop, &fields).await, 400, error, what);
    }
    // A public client without PKCE.
    let bare = with(
        with(request(&spa, &challenge), "code_challenge", None),
        "code_challenge_method",
        None,
    );
    assert_oauth_error(&push(&node, &spa, &bare).await, 400, "invalid_request", "no PKCE");

    // Client authentication as at the token endpoint.
    let wrong = TestClient {
        client_id: "par-strict".into(),
        secret: Some("tcs_wrong".into()),
    };
    assert_oauth_error(
        &push(&node, &wrong, &valid).await,
        401,
        "invalid_client",
        "a wrong secret",
    );
    let nobody = TestClient {
        client_id: "nobody".into(),
        secret: None,
    };
    assert_oauth_error(
        &push(&node, &nobody, &valid).await,
        401,
        "invalid_client",
        "an unknown client",
    );

    // A repeated parameter, a body that is not a form, a body past http.max_body_bytes.
    let raw = |body: String, content_type: &'static str| {
        node.client
            .post(node.at("/oauth2/par"))
            .basic_auth("par-strict", shop.secret.as_deref())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let repeated = raw(
        "response_type=code&scope=openid&scope=email".into(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(repeated.status(), 400);
    let json_body = raw("{}".into(), "application/json").await.unwrap();
    assert_eq!(json_body.status(), 400);
    // Sent by the helper that reads the 413 while still writing (the server may close
    // before the body is through, which a plain client reports as a broken pipe).
    let basic = {
        use base64::Engine as _;
        let pair = format!("par-strict:{}", shop.secret.as_deref().unwrap_or_default());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    };
    let (huge, _, _) = node
        .post_oversized_as(
            "/oauth2/par",
            "application/x-www-form-urlencoded",
            Some(&basic),
            format!("response_type=code&nonce={}", "n".repeat(2 * 1024 * 1024)).into_bytes(),
        )
        .await;
    assert_eq!(huge, 413);
    // And nothing of the refused pushes can be used.
    let audit = node
        .state
        .db
        .audit_records(&tessera_store::durable::AuditQuery {
            event: Some("par.pushed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(audit.is_empty(), "{audit:?}");
}

use tessera_store::durable::AuditStore as _;

async fn request_uris_are_single_use_bound_to_their_client_and_short_lived(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    node.create_user("par-bound@example.com", PASSWORD).await;
    let shop = node
        .create_oidc_client("par-owner", false, REDIRECT, true, None)
        .await;
    node.create_oidc_client("par-thief", false, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let uri = pushed_uri(&node, &shop, &request(&shop, &challenge)).await;
    let mut browser = Browser::new();

    // Another client's: refused, and the owner can still use it.
    let stolen = browser
        .get(&authorize_url(
            &node,
            &[("client_id", "par-thief"), ("request_uri", &uri)],
        ))
        .await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert!(stolen.body.contains("another client"), "{}", stolen.body);
    let owned = browser
        .get(&authorize_url(
            &node,
            &[("client_id", "par-owner"), ("request_uri", &uri)],
        ))
        .await;
    assert_eq!(owned.status, 200, "{}", owned.body);
    assert!(owned.body.contains("name=\"password\""));
    // Taken by that page view: a second view (a replay) is refused.
    let replay = browser
        .get(&authorize_url(
            &node,
            &[("client_id", "par-owner"), ("request_uri", &uri)],
        ))
        .await;
    assert_eq!(replay.status, 400, "{}", replay.body);

    // Without client_id, unknown, or with a repeated parameter: refused.
    let uri = pushed_uri(&node, &shop, &request(&shop, &challenge)).await;
    for (what, pairs) in [
        ("no client_id", vec![("request_uri", uri.as_str())]),
        (
            "unknown",
            vec![
                ("client_id", "par-owner"),
                ("request_uri", "urn:ietf:params:oauth:request_uri:nope"),
            ],
        ),
        (
            "repeated",
            vec![
                ("client_id", "par-owner"),
                ("client_id", "par-owner"),
                ("request_uri", uri.as_str()),
            ],
        ),
    ] {
        let page = browser.get(&authorize_url(&node, &pairs)).await;
        assert_eq!(page.status, 400, "{what}: {}", page.body);
    }

    // Expired after 60 s.
    let uri = pushed_uri(&node, &shop, &request(&shop, &challenge)).await;
    node.clock.advance(61);
    let late = browser
        .get(&authorize_url(
            &node,
            &[("client_id", "par-owner"), ("request_uri", &uri)],
        ))
        .await;
    assert_eq!(late.status, 400, "{}", late.body);

    // Two presentations at once: exactly one gets the login page.
    let uri = pushed_uri(&node, &shop, &request(&shop, &challenge)).await;
    let url = authorize_url(&node, &[("client_id", "par-owner"), ("request_uri", &uri)]);
    let mut statuses: Vec<u16> = futures_util::future::join_all((0..8).map(|_| {
        let url = url.clone();
        async move {
            let mut browser = Browser::new();
            browser.get(&url).await.status
        }
    }))
    .await;
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400]);
}

async fn a_client_may_require_pushed_requests(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    node.create_user("par-required@example.com", PASSWORD).await;
    let (_, token) = node.admin_token("par-ops").await;
    let (status, _, created) = node
        .post_json(
            "/admin/clients",
            &json!({
                "client_id": "par-bank",
                "client_name": "Bank",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code"],
                "scope": "openid email",
                "first_party": true,
                "require_pushed_authorization_requests": true,
            }),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["require_pushed_authorization_requests"], true);
    let bank = TestClient {
        client_id: "par-bank".into(),
        secret: created["client_secret"].as_str().map(str::to_owned),
    };
    let (_, challenge) = pkce_pair();

    // A plain request is refused at the client's redirect URI (it is registered).
    let plain: Vec<(String, String)> = request(&bank, &challenge);
    let pairs: Vec<(&str, &str)> = plain.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut browser = Browser::new();
    let page = browser.get(&authorize_url(&node, &pairs)).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let params = page.location_params();
    assert_eq!(params["error"], "invalid_request", "{params:?}");
    assert_eq!(params["state"], "st-pushed");
    assert!(!params.contains_key("code"));
    // A pushed one goes through.
    let uri = pushed_uri(&node, &bank, &plain).await;
    let params = log_in(
        &node,
        &mut browser,
        &authorize_url(&node, &[("client_id", "par-bank"), ("request_uri", &uri)]),
        "par-required@example.com",
    )
    .await;
    assert!(params.contains_key("code"), "{params:?}");

    // The operator turns it off again: plain requests work.
    let response = node
        .client
        .patch(node.at("/admin/clients/par-bank"))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"require_pushed_authorization_requests": false}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["require_pushed_authorization_requests"], false);
    let page = browser.get(&authorize_url(&node, &pairs)).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(page.location_params().contains_key("code"));
}
