//! Second factors (issue 12): TOTP enrolment and sign-in through the first-party JSON API
//! and the hosted login page, recovery codes, operator reset — and their abuse. TOTP codes
//! are computed by an independent implementation, Python `pyotp`, at the node's clock.

use std::collections::BTreeMap;
use std::process::Command;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use tessera_testkit::{
    backend_tests, pkce_pair, spawn, spawn_with, spawn_with_mail, Backend, Browser, SmtpSink, TestNode,
};

backend_tests!(
    totp_enrolment_sign_in_and_recovery_codes,
    codes_work_once_and_belong_to_their_user,
    wrong_codes_lock_the_account_like_wrong_passwords,
    mfa_tokens_are_single_use_bound_and_unforgeable,
    the_last_factor_goes_only_with_the_password,
    the_hosted_login_asks_for_the_factor_and_amr_shows_it,
    operators_list_and_reset_factors,
    acr_values_step_an_sso_sign_in_up_to_the_factor,
    e_mailed_codes_are_a_factor_that_works_once,
    the_hosted_login_e_mails_the_code_to_a_user_without_an_app,
    sms_codes_go_through_the_file_sender,
    sms_codes_go_through_a_signed_webhook,
    factors_are_managed_by_their_owner_only,
    introspection_says_how_the_user_signed_in,
);

pub(crate) const PASSWORD: &str = "correct horse battery staple 42";
const REDIRECT: &str = "https://shop.example/cb";

/// Whether pyotp is importable; without it the test is skipped, or fails under
/// `TESSERA_REQUIRE_INTEROP=1`.
pub(crate) fn pyotp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyotp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("TESSERA_REQUIRE_INTEROP").map_or(true, |v| v != "1"),
            "pyotp is not installed (pip install -r tests/interop/requirements.txt)"
        );
        eprintln!("skipped: pyotp not installed in tests/interop");
    }
    ok
}

/// The code pyotp computes for `otpauth_uri` at unix time `at` (it parses the URI itself).
pub(crate) fn pyotp_code(otpauth_uri: &str, at: i64) -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            otpauth_uri,
            &at.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A per-run address for `name`: account throttles and lockouts live in the shared Redis of
/// the PostgreSQL variants, across runs.
pub(crate) fn who(name: &str) -> String {
    static RUN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(tessera_testkit::random_u64);
    format!("{name}-{run:x}@example.com")
}

/// The claims of a JWT (unverified: the signature is tested elsewhere).
pub(crate) fn payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub(crate) fn now(node: &TestNode) -> i64 {
    tessera_idp::clock::Clock::now(node.clock.as_ref())
}

pub(crate) async fn login(node: &TestNode, email: &str, password: &str) -> (u16, Value) {
    let (status, _, body) = node
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": password }),
            None,
        )
        .await;
    (status, body)
}

/// `node` with its client on a loopback address of this test's own: wrong codes count on
/// the per-IP login throttle, which the PostgreSQL variants share (one Redis) with every
/// other test and run.
fn from_own_address(mut node: TestNode) -> TestNode {
    node.client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(tessera_testkit::loopback_ip())
        .build()
        .unwrap();
    node
}

/// A login from a loopback address no other test uses.
async fn login_from(node: &TestNode, email: &str, password: &str) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .local_address(tessera_testkit::loopback_ip())
        .build()
        .unwrap();
    let response = client
        .post(node.at("/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn access_token(node: &TestNode, email: &str) -> String {
    let (status, body) = login(node, email, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    body["accessToken"].as_str().unwrap().to_owned()
}

/// Enrols and confirms a TOTP factor for `email` (who has none yet); returns the otpauth
/// URI and the recovery codes. Moves the clock to the next step afterwards, so the step
/// used by the confirmation is behind.
pub(crate) async fn enrol(node: &TestNode, email: &str) -> (String, Vec<String>) {
    let token = access_token(node, email).await;
    let (status, _, enrolment) = node
        .post_json("/auth/mfa/totp", &json!({ "name": "phone" }), Some(&token))
        .await;
    assert_eq!(status, 201, "{enrolment}");
    let uri = enrolment["otpauthUri"].as_str().unwrap().to_owned();
    let code = pyotp_code(&uri, now(node));
    let (status, _, confirmed) = node
        .post_json("/auth/mfa/totp/confirm", &json!({ "code": code }), Some(&token))
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let codes: Vec<String> = confirmed["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    node.clock.advance(30);
    (uri, codes)
}

/// A login of `email` that must go on with a factor: its mfaToken.
async fn challenged(node: &TestNode, email: &str) -> String {
    let (status, body) = login(node, email, PASSWORD).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "mfa_required", "{body}");
    assert!(
        body.get("accessToken").is_none() && body.get("refreshToken").is_none(),
        "{body}"
    );
    body["mfaToken"].as_str().unwrap().to_owned()
}

pub(crate) async fn verify(node: &TestNode, mfa_token: &str, method: &str, code: &str) -> (u16, Value) {
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/verify",
            &json!({ "mfaToken": mfa_token, "method": method, "code": code }),
            None,
        )
        .await;
    (status, body)
}

async fn totp_enrolment_sign_in_and_recovery_codes(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await.map(from_own_address) else {
        return;
    };
    node.create_user(&who("kim"), PASSWORD).await;
    let token = access_token(&node, &who("kim")).await;

    // Enrolment: the URI names the account and issuer and carries the secret; the factor
    // does nothing until confirmed.
    let (status, _, enrolment) = node
        .post_json("/auth/mfa/totp", &json!({ "name": "phone" }), Some(&token))
        .await;
    assert_eq!(status, 201, "{enrolment}");
    let uri = enrolment["otpauthUri"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!(
            "otpauth://totp/Tessera:{}?",
            who("kim").replace('@', "%40")
        )),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={}", enrolment["secret"].as_str().unwrap())));
    assert!(
        enrolment["qrSvg"].as_str().unwrap().starts_with("<?xml")
            || enrolment["qrSvg"].as_str().unwrap().contains("<svg")
    );
    let (status, body) = login(&node, &who("kim"), PASSWORD).await;
    assert_eq!(status, 200, "an unconfirmed factor is not asked for: {body}");
    let (_, listed) = node.get_bearer("/auth/mfa", &token).await;
    assert_eq!(listed["factors"][0]["confirmed"], false, "{listed}");
    assert_eq!(listed["methods"], json!([]));

    // A wrong code does not confirm; pyotp's code does, and brings ten recovery codes.
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/totp/confirm",
            &json!({ "code": "000000" }),
            Some(&token),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_code")),
        "{body}"
    );
    let code = pyotp_code(uri, now(&node));
    let (status, _, confirmed) = node
        .post_json("/auth/mfa/totp/confirm", &json!({ "code": code }), Some(&token))
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let recovery: Vec<String> = confirmed["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    let (_, listed) = node.get_bearer("/auth/mfa", &token).await;
    assert_eq!(listed["factors"][0]["confirmed"], true, "{listed}");
    assert_eq!(listed["factors"][0]["name"], "phone");
    assert_eq!(listed["methods"], json!(["totp", "recovery_code"]));
    assert!(
        !listed.to_string().contains(enrolment["secret"].as_str().unwrap()),
        "the secret is shown once"
    );

    // Now the password alone gets no tokens; the factor does.
    let mfa_token = challenged(&node, &who("kim")).await;
    assert_eq!(
        login(&node, &who("kim"), PASSWORD).await.1["methods"],
        json!(["totp", "recovery_code"])
    );
    node.clock.advance(30);
    let (status, tokens) = verify(&node, &mfa_token, "totp", &pyotp_code(uri, now(&node))).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["grantType"], "Bearer");
    let access = payload(tokens["accessToken"].as_str().unwrap());
    assert_eq!(access["amr"], json!(["pwd", "otp", "mfa"]), "{access}");
    assert_eq!(access["acr"], "urn:tessera:acr:mfa", "{access}");
    assert!(access["auth_time"].as_i64().is_some(), "{access}");
    let (status, me) = node
        .get_bearer("/auth/me", tokens["accessToken"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{me}");

    // A recovery code signs in once, typed in any case and with spaces.
    let mfa_token = challenged(&node, &who("kim")).await;
    let typed = format!(" {} ", recovery[3].to_uppercase());
    let (status, tokens) = verify(&node, &mfa_token, "recovery_code", &typed).await;
    assert_eq!(status, 200, "{tokens}");
    let mfa_token = challenged(&node, &who("kim")).await;
    let (status, body) = verify(&node, &mfa_token, "recovery_code", &recovery[3]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_code")),
        "{body}"
    );

    // New codes void the old ones.
    let (status, _, fresh) = node
        .post_json("/auth/mfa/recovery-codes", &json!({}), Some(&token))
        .await;
    assert_eq!(status, 200, "{fresh}");
    let (status, _) = verify(&node, &mfa_token, "recovery_code", &recovery[4]).await;
    assert_eq!(status, 401);
    let (status, _) = verify(
        &node,
        &mfa_token,
        "recovery_code",
        fresh["recoveryCodes"][0].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    // The legacy password grant cannot ask for a factor, so it refuses such an account.
    let legacy = node.create_client("legacy-app", false, "web").await;
    let patch = tessera_idp::registry::ClientPatch {
        grant_types: Some(vec!["password".into(), "refresh_token".into()]),
        ..Default::default()
    };
    tessera_idp::registry::ClientRegistry::new(&node.state)
        .acting_as("operator", tessera_idp::audit::RequestContext::default())
        .update(&legacy.client_id, patch)
        .await
        .unwrap();
    let response = node
        .post_form(
            "/oauth2/token",
            &legacy,
            &[
                ("grant_type", "password"),
                ("username", &who("kim")),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("second factor"),
        "{body}"
    );
}

async fn codes_work_once_and_belong_to_their_user(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    // Room for the wrong codes below before the account locks (that is tested apart).
    let Some(node) = spawn_with(backend, |config| config.login.max_failures = 20)
        .await
        .map(from_own_address)
    else {
        return;
    };
    node.create_user(&who("a"), PASSWORD).await;
    node.create_user(&who("b"), PASSWORD).await;
    let (uri_a, _) = enrol(&node, &who("a")).await;
    let (uri_b, _) = enrol(&node, &who("b")).await;

    // The code of this step works once: a second login presenting it again is refused,
    // also when the two come at the same moment.
    let code = pyotp_code(&uri_a, now(&node));
    let first = challenged(&node, &who("a")).await;
    let second = challenged(&node, &who("a")).await;
    let (one, two) = tokio::join!(
        verify(&node, &first, "totp", &code),
        verify(&node, &second, "totp", &code)
    );
    let mut statuses = [one.0, two.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{one:?} {two:?}");

    // B's code is not A's, and the step before the one used is not accepted either.
    node.clock.advance(30);
    let token = challenged(&node, &who("a")).await;
    let (status, body) = verify(&node, &token, "totp", &pyotp_code(&uri_b, now(&node))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_code")),
        "{body}"
    );
    let (status, _) = verify(&node, &token, "totp", &pyotp_code(&uri_a, now(&node) - 30)).await;
    assert_eq!(status, 401, "an older step than the last used one");
    // Malformed codes and methods are a wrong code, never a 500.
    for (method, code) in [
        ("totp", "12345"),
        ("totp", "abcdef"),
        ("sms", "123456"),
        ("totp", &"9".repeat(5000)),
    ] {
        let (status, body) = verify(&node, &token, method, code).await;
        assert!(status == 401 || status == 413, "{method} {status} {body}");
    }
    let (status, _) = verify(&node, &token, "totp", &pyotp_code(&uri_a, now(&node))).await;
    assert_eq!(
        status, 200,
        "the right code still works after wrong ones below the limit"
    );
}

async fn wrong_codes_lock_the_account_like_wrong_passwords(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await.map(from_own_address) else {
        return;
    };
    node.create_user(&who("c"), PASSWORD).await;
    let (uri, _) = enrol(&node, &who("c")).await;
    let limit = node.config.login.max_failures;
    let token = challenged(&node, &who("c")).await;
    let mut last = (0, Value::Null);
    for _ in 0..limit + 1 {
        last = verify(&node, &token, "totp", "000000").await;
    }
    assert_eq!(last.0, 429, "{:?}", last.1);
    assert_eq!(last.1["code"], "too_many_attempts");
    // Locked: the right code is refused, and so is the password.
    let (status, _) = verify(&node, &token, "totp", &pyotp_code(&uri, now(&node))).await;
    assert_eq!(status, 429);
    let (status, body) = login(&node, &who("c"), PASSWORD).await;
    assert_eq!(status, 429, "{body}");
}

async fn mfa_tokens_are_single_use_bound_and_unforgeable(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn_with(backend, |config| config.mfa.challenge_ttl_secs = 30)
        .await
        .map(from_own_address)
    else {
        return;
    };
    node.create_user(&who("d"), PASSWORD).await;
    let (uri, _) = enrol(&node, &who("d")).await;
    let token = challenged(&node, &who("d")).await;
    // Tampered and made-up tokens.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for forged in [tampered.as_str(), "tsm_", "", "x"] {
        let (status, body) = verify(&node, forged, "totp", &pyotp_code(&uri, now(&node))).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_mfa_token")),
            "{forged:?} {body}"
        );
    }
    // Used once, then never again.
    let (status, _) = verify(&node, &token, "totp", &pyotp_code(&uri, now(&node))).await;
    assert_eq!(status, 200);
    node.clock.advance(30);
    let (status, body) = verify(&node, &token, "totp", &pyotp_code(&uri, now(&node))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_mfa_token")),
        "{body}"
    );
    // Malformed requests change nothing.
    for bad in [
        json!({}),
        json!({ "mfaToken": token }),
        json!({ "mfaToken": 1, "method": "totp", "code": "1" }),
    ] {
        let (status, _, body) = node.post_json("/auth/mfa/verify", &bad, None).await;
        assert_eq!(status, 400, "{bad} {body}");
    }
    // Expired: the store forgets a token after mfa.challenge_ttl_secs (real time).
    let token = challenged(&node, &who("d")).await;
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    node.clock.advance(30);
    let (status, body) = verify(&node, &token, "totp", &pyotp_code(&uri, now(&node))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_mfa_token")),
        "{body}"
    );
    // Enumeration: a wrong password is answered the same with or without a factor (each
    // from an address of its own: the per-IP counter on a shared Redis carries other tests').
    node.create_user(&who("plain"), PASSWORD).await;
    let (s1, with_factor) = login_from(&node, &who("d"), "wrong password here").await;
    let (s2, without) = login_from(&node, &who("plain"), "wrong password here").await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(with_factor, without);
}

async fn the_last_factor_goes_only_with_the_password(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await.map(from_own_address) else {
        return;
    };
    node.create_user(&who("e"), PASSWORD).await;
    let (uri, _) = enrol(&node, &who("e")).await;
    let mfa_token = challenged(&node, &who("e")).await;
    let (_, tokens) = verify(&node, &mfa_token, "totp", &pyotp_code(&uri, now(&node))).await;
    let token = tokens["accessToken"].as_str().unwrap().to_owned();
    let (_, listed) = node.get_bearer("/auth/mfa", &token).await;
    let id = listed["factors"][0]["id"].as_str().unwrap().to_owned();
    let remove = |body: Value| {
        let node = &node;
        let token = token.clone();
        let id = id.clone();
        async move {
            let response = node
                .client
                .delete(node.at(&format!("/auth/mfa/{id}")))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = remove(json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("reauthentication_required")),
        "{body}"
    );
    let (status, body) = remove(json!({ "password": "not the password" })).await;
    assert_eq!(status, 401, "{body}");
    // Another user's token cannot touch it.
    node.create_user(&who("f"), PASSWORD).await;
    let other = access_token(&node, &who("f")).await;
    let response = node
        .client
        .delete(node.at(&format!("/auth/mfa/{id}")))
        .bearer_auth(&other)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let (_, listed) = node.get_bearer("/auth/mfa", &token).await;
    assert_eq!(listed["factors"].as_array().unwrap().len(), 1, "nothing changed");
    let (status, _) = remove(json!({ "password": PASSWORD })).await;
    assert_eq!(status, 204);
    let (status, body) = login(&node, &who("e"), PASSWORD).await;
    assert_eq!(status, 200, "no factor left: {body}");
    // No token, no factors.
    let response = node.client.get(node.at("/auth/mfa")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

async fn the_hosted_login_asks_for_the_factor_and_amr_shows_it(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await.map(from_own_address) else {
        return;
    };
    node.create_user(&who("g"), PASSWORD).await;
    let (uri, _) = enrol(&node, &who("g")).await;
    let shop = node
        .create_oidc_client("shop-mfa", false, REDIRECT, true, None)
        .await;
    let (verifier, challenge) = pkce_pair();
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &shop.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid email")
        .append_pair("state", "st-9")
        .append_pair("nonce", "n-9")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("ui_locales", "ko");
    let mut browser = Browser::from_address(tessera_testkit::loopback_ip());
    let page = browser.get(url.as_str()).await;
    let mut form = page.form_fields();
    form.insert("username".into(), who("g"));
    form.insert("password".into(), PASSWORD.into());
    let factor_page = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(factor_page.status, 200, "{}", factor_page.body);
    assert!(factor_page.body.contains("name=\"code\""), "{}", factor_page.body);
    assert!(
        factor_page.body.contains("2단계 인증"),
        "in the requested language"
    );
    assert!(
        browser.cookie("tessera_sso").is_none(),
        "no SSO session before the factor"
    );
    let fields: BTreeMap<String, String> = factor_page.form_fields();
    let mfa_token = fields["mfa_token"].clone();

    // The page's token is not one of the JSON API's.
    let (status, body) = verify(&node, &mfa_token, "totp", &pyotp_code(&uri, now(&node))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_mfa_token")),
        "{body}"
    );

    // A wrong code shows the form again; the right one continues to the client.
    let mut wrong = fields.clone();
    wrong.insert("code".into(), "000000".into());
    let again = browser.post_form(&node.at("/oauth2/authorize/mfa"), &wrong).await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.body.contains("role=\"alert\""), "{}", again.body);
    // Without the CSRF cookie's twin the form is refused.
    let mut forged = again.form_fields();
    forged.insert("csrf".into(), "forged".into());
    forged.insert("code".into(), pyotp_code(&uri, now(&node)));
    assert_eq!(
        browser
            .post_form(&node.at("/oauth2/authorize/mfa"), &forged)
            .await
            .status,
        403
    );
    let mut right = again.form_fields();
    right.insert("code".into(), pyotp_code(&uri, now(&node)));
    let done = browser.post_form(&node.at("/oauth2/authorize/mfa"), &right).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let params = done.location_params();
    assert_eq!(params["state"], "st-9");
    assert!(browser.cookie("tessera_sso").is_some());

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
    assert_eq!(response.status().as_u16(), 200);
    let tokens: Value = response.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let jwks: JwkSet = node.get("/.well-known/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["shop-mfa"]);
    validation.set_issuer(&[&node.url]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], "urn:tessera:acr:mfa", "{claims}");
}

async fn operators_list_and_reset_factors(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await.map(from_own_address) else {
        return;
    };
    let user_id = node.create_user(&who("h"), PASSWORD).await;
    enrol(&node, &who("h")).await;
    let (_, admin) = node.admin_token("mfa-ops").await;
    let (status, listed) = node
        .get_bearer(&format!("/admin/users/{user_id}/mfa"), &admin)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["factors"][0]["kind"], "totp");
    assert!(listed["factors"][0].get("secret").is_none());
    // A user's own token is not an admin's.
    let user_token = {
        let token = challenged(&node, &who("h")).await;
        assert!(!token.is_empty());
        let (status, _) = node
            .get_bearer(&format!("/admin/users/{user_id}/mfa"), "not-a-token")
            .await;
        assert_eq!(status, 401);
        token
    };
    let response = node
        .client
        .delete(node.at(&format!("/admin/users/{user_id}/mfa")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["factors_removed"], 1);
    let (status, body) = login(&node, &who("h"), PASSWORD).await;
    assert_eq!(status, 200, "after a reset the password signs in again: {body}");
    // The pending sign-in's token no longer finds a factor to check.
    let (status, _) = verify(&node, &user_token, "totp", "123456").await;
    assert_eq!(status, 401);
    let (status, _) = node.get_bearer("/admin/users/nobody/mfa", &admin).await;
    assert_eq!(status, 404);
}

async fn acr_values_step_an_sso_sign_in_up_to_the_factor(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await.map(from_own_address) else {
        return;
    };
    let (_, discovery) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["acr_values_supported"],
        json!(["urn:tessera:acr:pwd", "urn:tessera:acr:mfa"])
    );
    node.create_user(&who("step"), PASSWORD).await;
    let shop = node
        .create_oidc_client("shop-step", false, REDIRECT, true, None)
        .await;
    let authorize = |acr: Option<&str>, challenge: &str| {
        let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &shop.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid")
            .append_pair("state", "st")
            .append_pair("nonce", "n")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(acr) = acr {
            url.query_pairs_mut().append_pair("acr_values", acr);
        }
        url.to_string()
    };
    let mut browser = Browser::from_address(tessera_testkit::loopback_ip());
    // A password sign-in at the provider before the user had a factor.
    let (_, challenge) = pkce_pair();
    let page = browser.get(&authorize(None, &challenge)).await;
    let mut form = page.form_fields();
    form.insert("username".into(), who("step"));
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (uri, _) = enrol(&node, &who("step")).await;

    // An unknown class is ignored; the password class is met by the SSO sign-in.
    for acr in ["urn:example:unknown", "urn:tessera:acr:pwd"] {
        let (_, challenge) = pkce_pair();
        let answer = browser.get(&authorize(Some(acr), &challenge)).await;
        assert!(
            answer.status == 302 || answer.status == 303,
            "{acr}: {}",
            answer.body
        );
    }
    // Asking for the MFA class signs the user in again, with the factor this time.
    let (verifier, challenge) = pkce_pair();
    let page = browser
        .get(&authorize(Some("urn:tessera:acr:mfa"), &challenge))
        .await;
    assert_eq!(page.status, 200, "a login page, not a code: {:?}", page.location);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    let mut form = page.form_fields();
    form.insert("username".into(), who("step"));
    form.insert("password".into(), PASSWORD.into());
    let factor_page = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert!(factor_page.body.contains("name=\"code\""), "{}", factor_page.body);
    let mut fields = factor_page.form_fields();
    fields.insert("code".into(), pyotp_code(&uri, now(&node)));
    let done = browser
        .post_form(&node.at("/oauth2/authorize/mfa"), &fields)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let params = done.location_params();
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
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["acr"],
        "urn:tessera:acr:mfa"
    );
    let access = payload(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], "urn:tessera:acr:mfa", "{access}");
    assert_eq!(access["amr"], json!(["pwd", "otp", "mfa"]), "{access}");
    // Now the SSO sign-in has the factor: the MFA class is met without a new sign-in.
    let (_, challenge) = pkce_pair();
    let answer = browser
        .get(&authorize(Some("urn:tessera:acr:mfa"), &challenge))
        .await;
    assert!(answer.status == 302 || answer.status == 303, "{}", answer.body);
}

/// The six digits of the `n`-th (1-based) sign-in code mailed to `to`, once it arrived.
pub(crate) async fn mailed_code(sink: &SmtpSink, to: &str, n: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let codes: Vec<String> = sink
            .messages()
            .into_iter()
            .filter(|m| m.to == to && m.subject.starts_with("Your sign-in code: "))
            .map(|m| m.subject["Your sign-in code: ".len()..].trim().to_owned())
            .collect();
        if codes.len() >= n {
            let code = codes[n - 1].clone();
            assert!(
                code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
                "{code}"
            );
            return code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no code {n} for {to}: {:?}",
            sink.messages()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn e_mailed_codes_are_a_factor_that_works_once(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let node = from_own_address(node);
    let email = who("mail");
    node.create_user(&email, PASSWORD).await;
    let token = access_token(&node, &email).await;

    // Enrolment proves the address receives codes; a wrong code does not confirm.
    let (status, _, enrolled) = node.post_json("/auth/mfa/email", &json!({}), Some(&token)).await;
    assert_eq!(status, 201, "{enrolled}");
    let first = mailed_code(&sink, &email, 1).await;
    let wrong = if first == "000000" { "111111" } else { "000000" };
    let (status, _, body) = node
        .post_json("/auth/mfa/email/confirm", &json!({ "code": wrong }), Some(&token))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_code")),
        "{body}"
    );
    let (status, _, confirmed) = node
        .post_json("/auth/mfa/email/confirm", &json!({ "code": first }), Some(&token))
        .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["recoveryCodes"].as_array().unwrap().len(), 10);
    let (_, listed) = node.get_bearer("/auth/mfa", &token).await;
    assert_eq!(
        listed["methods"],
        json!(["email_otp", "recovery_code"]),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains(&email),
        "the factor's name hides the address: {listed}"
    );

    // Sign-in: mfa_required, ask for a code, pass it; it works once.
    let mfa_token = challenged(&node, &email).await;
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/challenge",
            &json!({ "mfaToken": mfa_token, "method": "email_otp" }),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let code = mailed_code(&sink, &email, 2).await;
    let (status, tokens) = verify(&node, &mfa_token, "email_otp", &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        payload(tokens["accessToken"].as_str().unwrap())["acr"],
        "urn:tessera:acr:mfa"
    );
    let again = challenged(&node, &email).await;
    let (status, body) = verify(&node, &again, "email_otp", &code).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_code")),
        "a code works once: {body}"
    );
    // The code of one sign-in is not another's, and a TOTP method it does not have fails.
    let (status, _, _) = node
        .post_json(
            "/auth/mfa/challenge",
            &json!({ "mfaToken": again, "method": "email_otp" }),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let code = mailed_code(&sink, &email, 3).await;
    let other = challenged(&node, &email).await;
    let (status, _) = verify(&node, &other, "email_otp", &code).await;
    assert_eq!(status, 401, "the code belongs to the sign-in it was sent for");
    let (status, _) = verify(&node, &again, "totp", &code).await;
    assert_eq!(status, 401, "no authenticator app enrolled");
    let (status, _) = verify(&node, &again, "email_otp", &code).await;
    assert_eq!(status, 200);
    // Sending is limited per user, and only for a pending sign-in with that method.
    for bad in [
        json!({ "mfaToken": "tsm_made_up", "method": "email_otp" }),
        json!({ "mfaToken": other, "method": "totp" }),
        json!({ "mfaToken": other }),
    ] {
        let (status, _, body) = node.post_json("/auth/mfa/challenge", &bad, None).await;
        assert!(status == 401 || status == 400, "{bad} {status} {body}");
    }
    let mut last = 0;
    for _ in 0..5 {
        last = node
            .post_json(
                "/auth/mfa/challenge",
                &json!({ "mfaToken": other, "method": "email_otp" }),
                None,
            )
            .await
            .0;
    }
    assert_eq!(
        last, 429,
        "five codes per user per window: three were sent, the sixth is refused"
    );
}

async fn the_hosted_login_e_mails_the_code_to_a_user_without_an_app(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let node = from_own_address(node);
    let email = who("hosted-mail");
    node.create_user(&email, PASSWORD).await;
    let token = access_token(&node, &email).await;
    node.post_json("/auth/mfa/email", &json!({}), Some(&token)).await;
    let code = mailed_code(&sink, &email, 1).await;
    let (status, _, _) = node
        .post_json("/auth/mfa/email/confirm", &json!({ "code": code }), Some(&token))
        .await;
    assert_eq!(status, 200);
    let shop = node
        .create_oidc_client("shop-mail", false, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &shop.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid")
        .append_pair("state", "st")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("method", "totp");
    let mut browser = Browser::from_address(tessera_testkit::loopback_ip());
    let page = browser.get(url.as_str()).await;
    let mut form = page.form_fields();
    form.insert("username".into(), email.clone());
    form.insert("password".into(), PASSWORD.into());
    let factor_page = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert!(
        factor_page.body.contains("sent to your e-mail"),
        "{}",
        factor_page.body
    );
    let mut fields = factor_page.form_fields();
    // The page's own method, not the one smuggled into the authorize request.
    assert_eq!(fields["method"], "email_otp");
    fields.insert("code".into(), mailed_code(&sink, &email, 2).await);
    let done = browser
        .post_form(&node.at("/oauth2/authorize/mfa"), &fields)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location_params().contains_key("code"));
}

/// The six digits in an SMS text.
fn code_in(text: &str) -> String {
    let digits: Vec<char> = text.chars().collect();
    for window in digits.windows(6) {
        if window.iter().all(char::is_ascii_digit) {
            return window.iter().collect();
        }
    }
    panic!("no code in {text:?}");
}

/// The messages the `file` SMS sender wrote, oldest first, once at least `n` are there.
async fn sms_files(dir: &std::path::Path, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut messages: Vec<(std::time::SystemTime, Value)> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .map(|e| {
                        let modified = e.metadata().unwrap().modified().unwrap();
                        let text = std::fs::read_to_string(e.path()).unwrap();
                        (modified, serde_json::from_str(&text).unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default();
        if messages.len() >= n {
            messages.sort_by_key(|(t, _)| *t);
            return messages.into_iter().map(|(_, m)| m).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than {n} SMS in {}",
            dir.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn sms_codes_go_through_the_file_sender(backend: Backend) {
    let Some(node) = spawn(backend).await.map(from_own_address) else {
        return;
    };
    let dir = node.config.sms_dir();
    let email = who("sms");
    node.create_user(&email, PASSWORD).await;
    let token = access_token(&node, &email).await;
    for bad in ["01012345678", "+0123", "+82 10 abcd 5678"] {
        let (status, _, body) = node
            .post_json("/auth/mfa/sms", &json!({ "phoneNumber": bad }), Some(&token))
            .await;
        assert_eq!(status, 400, "{bad} {body}");
    }
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/sms",
            &json!({ "phoneNumber": "+82 10-1234-5678" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let sent = sms_files(&dir, 1).await;
    assert_eq!(sent[0]["to"], "+821012345678");
    let code = code_in(sent[0]["text"].as_str().unwrap());
    let (status, _, confirmed) = node
        .post_json("/auth/mfa/sms/confirm", &json!({ "code": code }), Some(&token))
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let (_, listed) = node.get_bearer("/auth/mfa", &token).await;
    assert_eq!(listed["methods"], json!(["sms_otp", "recovery_code"]), "{listed}");
    assert_eq!(listed["factors"][0]["name"], "+82********78", "{listed}");
    assert!(
        !listed.to_string().contains("1234"),
        "the number is not shown: {listed}"
    );

    let mfa_token = challenged(&node, &email).await;
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/challenge",
            &json!({ "mfaToken": mfa_token, "method": "sms_otp" }),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let sent = sms_files(&dir, 2).await;
    let code = code_in(sent[1]["text"].as_str().unwrap());
    // The SMS code is not an e-mail code (the user has no e-mail factor), then it works once.
    let (status, _) = verify(&node, &mfa_token, "email_otp", &code).await;
    assert_eq!(status, 401);
    let (status, tokens) = verify(&node, &mfa_token, "sms_otp", &code).await;
    assert_eq!(status, 200, "{tokens}");
    let again = challenged(&node, &email).await;
    let (status, _) = verify(&node, &again, "sms_otp", &code).await;
    assert_eq!(status, 401, "a code works once");
}

async fn sms_codes_go_through_a_signed_webhook(backend: Backend) {
    use std::sync::{Arc, Mutex};
    const SECRET: &str = "a webhook secret of the test, 32+";
    // The deployment's SMS gateway: answers 503 to the first message, 200 to the rest.
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let store = received.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                let signature = headers
                    .get("x-tessera-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut all = store.lock().unwrap();
                all.push((signature, body));
                if all.len() == 1 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let Some(node) = spawn_with(backend, |config| {
        config.mfa.sms_sender = tessera_idp::config::SmsSenderKind::Webhook;
        config.mfa.sms_webhook_url = Some(url.clone());
        config.mfa.sms_webhook_secret = Some(tessera_idp::secret::Secret::new(SECRET));
    })
    .await
    .map(from_own_address) else {
        return;
    };
    let email = who("webhook-sms");
    node.create_user(&email, PASSWORD).await;
    let token = access_token(&node, &email).await;
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/sms",
            &json!({ "phoneNumber": "+14155550100" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Retried after the 503 (one second later), with the same signed body.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while received.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the webhook was not retried"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (signature, body) = received.lock().unwrap()[1].clone();
    assert_eq!(received.lock().unwrap()[0].1, body);
    // The signature checks out by an independent HMAC (Python's hmac module).
    let output = Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys; print('sha256=' + hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            SECRET,
            &body,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), signature);
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["to"], "+14155550100");
    assert_eq!(message["purpose"], "one_time_code");
    let code = code_in(message["text"].as_str().unwrap());
    let (status, _, confirmed) = node
        .post_json("/auth/mfa/sms/confirm", &json!({ "code": code }), Some(&token))
        .await;
    assert_eq!(status, 200, "{confirmed}");
}

async fn factors_are_managed_by_their_owner_only(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn_with(backend, |config| config.accounts.require_verified_email = false)
        .await
        .map(from_own_address)
    else {
        return;
    };
    let owner = who("owner");
    let owner_id = node.create_user(&owner, PASSWORD).await;
    let token = access_token(&node, &owner).await;
    // Without a factor there are no recovery codes to make.
    let (status, _, body) = node
        .post_json("/auth/mfa/recovery-codes", &json!({}), Some(&token))
        .await;
    assert_eq!(status, 400, "{body}");
    enrol(&node, &owner).await;
    let (_, listed) = node.get_bearer("/auth/mfa", &token).await;
    let id = listed["factors"][0]["id"].as_str().unwrap().to_owned();
    let rename = |bearer: Option<String>, body: Value| {
        let node = &node;
        let id = id.clone();
        async move {
            let mut request = node.client.patch(node.at(&format!("/auth/mfa/{id}"))).json(&body);
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        rename(Some(token.clone()), json!({ "name": "work phone" })).await,
        204
    );
    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x".repeat(65) }),
        json!({ "name": "a\nb" }),
        json!({}),
    ] {
        assert_eq!(rename(Some(token.clone()), bad.clone()).await, 400, "{bad}");
    }
    assert_eq!(rename(None, json!({ "name": "x" })).await, 401);
    // Another user's token finds no such factor, and changes nothing.
    let other = who("other");
    node.create_user(&other, PASSWORD).await;
    let other_token = access_token(&node, &other).await;
    assert_eq!(
        rename(Some(other_token), json!({ "name": "mine now" })).await,
        404
    );
    assert_eq!(
        node.state.mfa.factors(&owner_id).await.unwrap()[0].name,
        "work phone"
    );

    // An unverified address cannot become a factor.
    let unverified = who("unverified");
    node.state
        .accounts
        .create_user(
            &unverified,
            PASSWORD,
            false,
            &[],
            &tessera_idp::audit::RequestContext::default(),
        )
        .await
        .unwrap();
    let unverified_token = access_token(&node, &unverified).await;
    let (status, _, body) = node
        .post_json("/auth/mfa/email", &json!({}), Some(&unverified_token))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// RFC 7662 answers carry `acr`, `amr` and `auth_time` as the access token does, so a
/// resource server that introspects (tessera-verify's introspection mode) can require the
/// MFA class too; before, it saw none and `RequireAcr` refused every such token.
async fn introspection_says_how_the_user_signed_in(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let resource_server = node.create_client("introspector", false, "service").await;
    let (strong, plain) = (who("introspect-mfa"), who("introspect-pwd"));
    node.create_user(&strong, PASSWORD).await;
    node.create_user(&plain, PASSWORD).await;
    let (uri, _) = enrol(&node, &strong).await;
    let mfa_token = challenged(&node, &strong).await;
    let (status, tokens) = verify(&node, &mfa_token, "totp", &pyotp_code(&uri, now(&node))).await;
    assert_eq!(status, 200, "{tokens}");
    let answer = node
        .introspect(&resource_server, tokens["accessToken"].as_str().unwrap())
        .await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["acr"], "urn:tessera:acr:mfa", "{answer}");
    assert_eq!(answer["amr"], json!(["pwd", "otp", "mfa"]), "{answer}");
    assert!(answer["auth_time"].is_i64(), "{answer}");

    let token = access_token(&node, &plain).await;
    let answer = node.introspect(&resource_server, &token).await;
    assert_eq!(answer["acr"], "urn:tessera:acr:pwd", "{answer}");
    assert_eq!(answer["amr"], json!(["pwd"]), "{answer}");
}
