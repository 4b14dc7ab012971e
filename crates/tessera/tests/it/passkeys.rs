//! Passkeys (issue 12): registration, the second step of a password sign-in, and
//! usernameless sign-in — through the JSON API and the hosted pages — in real headless
//! Chromium with the DevTools virtual authenticator (`tests/interop/passkeys.mjs`, which
//! also forges assertions with the authenticator's own key, one wrong thing at a time).
//! This side starts the node on `http://localhost:PORT` (WebAuthn takes no IP address as
//! relying party), redeems what the browser came back with, and checks the methods the
//! tokens carry. The abuse a browser is not needed for is tested here directly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tessera_testkit::{backend_tests, pkce_pair, spawn, spawn_with, Backend, TestClient, TestNode};

use crate::mfa::{login, payload, who};

backend_tests!(
    passkeys_register_and_sign_in_in_headless_chromium,
    passkey_ceremonies_refuse_foreign_and_malformed_answers,
    the_hosted_passkey_form_refuses_forgeries_and_bad_answers,
);

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "passkey horse battery staple 7";
const REDIRECT: &str = "https://passkeys.example/cb";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// A node whose issuer is `http://localhost:PORT` (it listens on 127.0.0.1), with room
/// for the forged assertions' failures on the shared per-IP throttle.
async fn localhost_node(backend: Backend) -> Option<TestNode> {
    spawn_with(backend, |config| {
        let issuer = config.issuer.take().unwrap().replace("127.0.0.1", "localhost");
        config.issuer = Some(issuer);
        config.login.max_failures_per_ip = 10_000;
    })
    .await
}

fn browser_missing() -> Option<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).is_file() {
        missing.push(CHROMIUM);
    }
    if !interop_dir().join("node_modules/playwright-core").is_dir() {
        missing.push("tests/interop/node_modules/playwright-core");
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

fn authorize_url(node: &TestNode, client: &TestClient, challenge: &str, state: &str) -> String {
    let mut url = reqwest::Url::parse(&node.config.issuer()).unwrap();
    url.set_path("/oauth2/authorize");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid email")
        .append_pair("state", state)
        .append_pair("nonce", &format!("n-{state}"))
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("ui_locales", "en");
    url.to_string()
}

/// The ID token for `code`.
async fn redeem(node: &TestNode, client: &TestClient, code: &str, verifier: &str) -> Value {
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
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{tokens}");
    payload(tokens["id_token"].as_str().unwrap())
}

fn amr(claims: &Value) -> Vec<String> {
    claims["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr in {claims}"))
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

/// A passkey's methods: a hardware (`hwk`) or synced (`swk`) key; more than one factor.
fn is_passkey_sign_in(claims: &Value, with_password: bool) {
    let amr = amr(claims);
    assert!(amr.iter().any(|m| m == "hwk" || m == "swk"), "{claims}");
    assert!(amr.iter().any(|m| m == "mfa"), "{claims}");
    assert_eq!(amr.iter().any(|m| m == "pwd"), with_password, "{claims}");
    assert_eq!(claims["acr"], "urn:tessera:acr:mfa", "{claims}");
}

async fn passkeys_register_and_sign_in_in_headless_chromium(backend: Backend) {
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    if let Some(missing) = browser_missing() {
        assert!(
            !required,
            "the passkey tests need {missing}: `apt-get install chromium`, `npm ci` in tests/interop"
        );
        eprintln!("skipped: passkeys in Chromium ({missing} not installed)");
        return;
    }
    let Some(node) = localhost_node(backend).await else {
        return;
    };
    let email = who("passkey");
    let user_id = node.create_user(&email, PASSWORD).await;
    let (status, signed_in) = login(&node, &email, PASSWORD).await;
    assert_eq!(status, 200, "{signed_in}");
    let client = node
        .create_oidc_client("passkeys-first", true, REDIRECT, true, None)
        .await;
    let (verifier_1, challenge_1) = pkce_pair();
    let (verifier_2, challenge_2) = pkce_pair();

    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(interop_dir())
        .arg("passkeys.mjs")
        .env("ISSUER", node.config.issuer())
        .env("ACCESS_TOKEN", signed_in["accessToken"].as_str().unwrap())
        .env("USERNAME", &email)
        .env("PASSWORD", PASSWORD)
        .env(
            "AUTHORIZE_URL_1",
            authorize_url(&node, &client, &challenge_1, "s1"),
        )
        .env(
            "AUTHORIZE_URL_2",
            authorize_url(&node, &client, &challenge_2, "s2"),
        )
        .env("REDIRECT_PREFIX", REDIRECT)
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .expect("passkeys.mjs did not finish in time")
        .expect("cannot run node passkeys.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("passkeys.mjs printed no JSON summary:\n{stdout}\n{stderr}"));
    assert!(
        output.status.success() && summary["ok"] == true,
        "passkeys in Chromium failed:\n{}\n{stderr}",
        serde_json::to_string_pretty(&summary["failures"]).unwrap()
    );
    eprintln!(
        "passkeys.mjs: {} checks on Chromium {}",
        summary["checks"], summary["chromium"]
    );
    let results = &summary["results"];

    // What each sign-in's tokens say about it.
    let access = |name: &str| payload(results[name].as_str().unwrap_or_else(|| panic!("no {name}")));
    is_passkey_sign_in(&access("secondFactorAccessToken"), true);
    is_passkey_sign_in(&access("usernamelessAccessToken"), false);
    let code = |name: &str| {
        results[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name}"))
            .to_owned()
    };
    let id_token = redeem(&node, &client, &code("usernamelessCode"), &verifier_1).await;
    is_passkey_sign_in(&id_token, false);
    assert_eq!(id_token["sub"], user_id.as_str());
    assert_eq!(id_token["email"], email.as_str());
    let id_token = redeem(&node, &client, &code("secondFactorCode"), &verifier_2).await;
    is_passkey_sign_in(&id_token, true);

    // The factor as its owner sees it: one passkey, used, with the name given.
    let token = signed_in["accessToken"].as_str().unwrap();
    let (status, listed) = node.get_bearer("/auth/mfa", token).await;
    assert_eq!(status, 200, "{listed}");
    let factors = listed["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1, "{listed}");
    assert_eq!(factors[0]["kind"], "webauthn");
    assert_eq!(factors[0]["name"], "Laptop");
    assert_eq!(factors[0]["confirmed"], true);
    assert!(factors[0]["lastUsedAt"].is_i64(), "{listed}");
    assert_eq!(listed["methods"], json!(["webauthn", "recovery_code"]));
    // A password alone no longer signs in.
    let (status, body) = login(&node, &email, PASSWORD).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("mfa_required")),
        "{body}"
    );
}

async fn passkey_ceremonies_refuse_foreign_and_malformed_answers(backend: Backend) {
    let Some(node) = localhost_node(backend).await else {
        return;
    };
    let (alice, bob) = (who("passkey-alice"), who("passkey-bob"));
    node.create_user(&alice, PASSWORD).await;
    node.create_user(&bob, PASSWORD).await;
    let token_of = |body: Value| body["accessToken"].as_str().unwrap().to_owned();
    let alice_token = token_of(login(&node, &alice, PASSWORD).await.1);
    let bob_token = token_of(login(&node, &bob, PASSWORD).await.1);

    let (status, _, begun) = node
        .post_json(
            "/auth/mfa/webauthn",
            &json!({ "name": "key" }),
            Some(&alice_token),
        )
        .await;
    assert_eq!(status, 200, "{begun}");
    assert_eq!(begun["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(begun["publicKey"]["user"]["name"], alice.as_str());
    let registration = begun["registrationToken"].as_str().unwrap();
    assert!(registration.starts_with("tsr_"));

    let confirm = |token: &str, registration: &str, credential: Value| {
        let body = json!({ "registrationToken": registration, "credential": credential });
        let token = token.to_owned();
        let node = &node;
        async move {
            node.post_json("/auth/mfa/webauthn/confirm", &body, Some(&token))
                .await
        }
    };
    // Another user cannot finish Alice's registration (and it is used up by trying).
    let (status, _, body) = confirm(&bob_token, registration, json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_mfa_token")),
        "{body}"
    );
    let (status, _, body) = confirm(&alice_token, registration, json!({})).await;
    assert_eq!(status, 401, "a registration token works once: {body}");
    // Not a WebAuthn answer at all, in many shapes: 401 invalid_credential, never a 5xx.
    for credential in [
        json!({}),
        json!("a string"),
        json!([1, 2, 3]),
        json!({ "id": "x", "rawId": "x", "type": "public-key", "response": {} }),
        json!({ "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
                "response": { "attestationObject": "o2NmbXRkbm9uZQ", "clientDataJSON": "e30" } }),
    ] {
        let (_, _, begun) = node
            .post_json("/auth/mfa/webauthn", &json!({}), Some(&alice_token))
            .await;
        let registration = begun["registrationToken"].as_str().unwrap();
        let (status, _, body) = confirm(&alice_token, registration, credential.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_credential")),
            "{credential}: {body}"
        );
    }
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/webauthn/confirm",
            &json!({ "registrationToken": "tsr_x" }),
            Some(&alice_token),
        )
        .await;
    assert_eq!(status, 400, "the credential is required: {body}");
    let (status, _, _) = node.post_json("/auth/mfa/webauthn", &json!({}), None).await;
    assert_eq!(status, 401, "registration needs a signed-in user");
    let (status, _, body) = node
        .post_json("/auth/mfa/webauthn", &json!({ "name": "" }), Some(&alice_token))
        .await;
    assert_eq!(status, 400, "{body}");
    // Nothing was registered by all that.
    let (_, listed) = node.get_bearer("/auth/mfa", &alice_token).await;
    assert_eq!(listed["factors"], json!([]), "{listed}");

    // Usernameless sign-in: made-up tokens and answers.
    let (status, _, options) = node.post_json("/auth/passkey/options", &json!({}), None).await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    assert!(
        options.get("mediation").is_none(),
        "a button, not autofill: {options}"
    );
    let passkey_token = options["passkeyToken"].as_str().unwrap();
    let garbage = json!({ "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": { "authenticatorData": "AAAA", "clientDataJSON": "e30", "signature": "AAAA",
                      "userHandle": "AAAAAAAAAAAAAAAAAAAAAA" } });
    let (status, _, body) = node
        .post_json(
            "/auth/passkey/login",
            &json!({ "passkeyToken": passkey_token, "credential": garbage }),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_credential")),
        "{body}"
    );
    let (status, _, body) = node
        .post_json(
            "/auth/passkey/login",
            &json!({ "passkeyToken": passkey_token, "credential": garbage }),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_mfa_token")),
        "used up: {body}"
    );
    let (status, _, body) = node
        .post_json(
            "/auth/passkey/login",
            &json!({ "passkeyToken": "tpk_made_up", "credential": {} }),
            None,
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = node
        .post_json("/auth/passkey/options", &json!({ "unknown": 1 }), None)
        .await;
    assert_eq!(status, 400, "{body}");
    // An oversized answer is refused before anything reads it.
    let huge = json!({ "passkeyToken": passkey_token, "credential": { "id": "A".repeat(3 << 20) } });
    let (status, _, _) = node
        .post_oversized("/auth/passkey/login", None, huge.to_string().into_bytes())
        .await;
    assert_eq!(status, 413);

    // As a second factor: verify without a credential is a 400; options for a made-up
    // sign-in a 401.
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/verify",
            &json!({ "mfaToken": "tsm_x", "method": "webauthn" }),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = node
        .post_json(
            "/auth/mfa/challenge",
            &json!({ "mfaToken": "tsm_x", "method": "webauthn" }),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_mfa_token")),
        "{body}"
    );

    // A node on an IP address has no passkeys: clear refusals, no button.
    let Some(ip_node) = spawn(backend).await else {
        return;
    };
    ip_node.create_user(&alice, PASSWORD).await;
    let ip_token = token_of(login(&ip_node, &alice, PASSWORD).await.1);
    let (status, _, body) = ip_node
        .post_json("/auth/mfa/webauthn", &json!({}), Some(&ip_token))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("host name"), "{body}");
    let (status, _, _) = ip_node.post_json("/auth/passkey/options", &json!({}), None).await;
    assert_eq!(status, 400);
}

/// The hosted passkey endpoints are hosted forms: CSRF and the carried authorization
/// request are checked, and a refused or used answer shows the login page again.
async fn the_hosted_passkey_form_refuses_forgeries_and_bad_answers(backend: Backend) {
    let Some(node) = localhost_node(backend).await else {
        return;
    };
    let client = node
        .create_oidc_client("passkeys-hosted", true, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let mut browser = tessera_testkit::Browser::new();
    let url = authorize_url(&node, &client, &challenge, "s-h").replace(&node.config.issuer(), &node.url);
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"passkey-sign-in\""), "{}", page.body);
    let form = page.form_fields();

    // Options: with the page's fields, JSON; with a forged CSRF token, the forgery page.
    let options = browser
        .post_form(&node.at("/oauth2/authorize/passkey/options"), &form)
        .await;
    assert_eq!(options.status, 200, "{}", options.body);
    let options: Value = serde_json::from_str(&options.body).unwrap();
    let token = options["passkeyToken"].as_str().unwrap().to_owned();
    let mut forged = form.clone();
    forged.insert("csrf".into(), "forged".into());
    for path in ["/oauth2/authorize/passkey/options", "/oauth2/authorize/passkey"] {
        let refused = browser.post_form(&node.at(path), &forged).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
    }
    // An answer that does not verify: the login page again, saying so; the token is used up.
    let mut answer = form.clone();
    answer.insert("passkey_token".into(), token.clone());
    answer.insert(
        "credential".into(),
        json!({ "id": "AAAA", "type": "public-key" }).to_string(),
    );
    let refused = browser
        .post_form(&node.at("/oauth2/authorize/passkey"), &answer)
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("could not be verified"), "{}", refused.body);
    // The page came with a new CSRF token: the next post uses that page's form.
    let form = refused.form_fields();
    let mut answer = form.clone();
    answer.insert("passkey_token".into(), token.clone());
    answer.insert(
        "credential".into(),
        json!({ "id": "AAAA", "type": "public-key" }).to_string(),
    );
    let again = browser
        .post_form(&node.at("/oauth2/authorize/passkey"), &answer)
        .await;
    assert_eq!(again.status, 401);
    assert!(
        again.body.contains("took too long"),
        "a used token: {}",
        again.body
    );
    // Without the fields at all.
    let form = again.form_fields();
    let bare = browser
        .post_form(&node.at("/oauth2/authorize/passkey"), &form)
        .await;
    assert_eq!(bare.status, 401, "{}", bare.body);
    assert!(
        browser.cookie("tessera_sso").is_none(),
        "nothing signed anyone in"
    );
}
