//! Who must pass a second factor (issue 12): `mfa.policy` and a client's `mfa_policy` —
//! `required` makes a user without a factor enrol an authenticator app while signing in
//! (JSON API and hosted login), `adaptive` steps a risky sign-in of such a user up to an
//! e-mailed code (R25: new device on a new network, an unusual hour, abuse signals),
//! `optional` and `off` do neither. TOTP codes come from pyotp; e-mailed codes from the real SMTP sink.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tessera_idp::config::MfaPolicy;
use tessera_idp::registry::{ClientRegistry, ClientSpec};
use tessera_store::durable::{AuditQuery, AuditStore};
use tessera_testkit::{
    backend_tests, pkce_pair, spawn, spawn_with, spawn_with_mail_and, Backend, Browser, TestNode,
};

use crate::mfa::{mailed_code, now, payload, pyotp_available, pyotp_code, verify, who, PASSWORD};

backend_tests!(
    an_sso_session_without_a_factor_does_not_carry_into_a_client_that_requires_one,
    a_required_policy_enrols_an_app_during_the_json_sign_in,
    a_clients_required_policy_enrols_on_the_hosted_page,
    risky_sign_ins_without_a_factor_pass_an_e_mailed_code,
    other_policies_and_unverified_addresses_do_not_step_up,
);

const REDIRECT: &str = "https://policy.example/cb";

/// A JSON API caller from the loopback address `ip` (its network is `ip`'s /24).
fn caller(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// `POST /auth/login` from `client` with device id `device`.
async fn login_from(node: &TestNode, client: &reqwest::Client, email: &str, device: &str) -> (u16, Value) {
    let response = client
        .post(node.at("/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD, "deviceId": device }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Distinct /24 networks on loopback for one run: `net(n)` is `127.<run>.<n>.<host>`.
fn net(n: u8) -> [u8; 4] {
    static RUN: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    let run = *RUN.get_or_init(|| 1 + (tessera_testkit::random_u64() % 250) as u8);
    [127, run, n, 7]
}

async fn a_required_policy_enrols_an_app_during_the_json_sign_in(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn_with(backend, |c| c.mfa.policy = MfaPolicy::Required).await else {
        return;
    };
    let email = who("required-json");
    node.create_user(&email, PASSWORD).await;
    let (status, _, body) = node
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "mfa_enrolment_required", "{body}");
    assert_eq!(body["methods"], json!([]));
    assert_eq!(body["enrol"], json!(["totp"]));
    assert!(body.get("accessToken").is_none(), "{body}");
    let mfa_token = body["mfaToken"].as_str().unwrap().to_owned();

    // Nothing passes it before an app is enrolled; other methods never do.
    let (status, answer) = verify(&node, &mfa_token, "totp", "123456").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("invalid_code")),
        "{answer}"
    );
    let (status, answer) = verify(&node, &mfa_token, "email_otp", "123456").await;
    assert_eq!(status, 401, "{answer}");
    let (status, _, answer) = node
        .post_json(
            "/auth/mfa/challenge",
            &json!({ "mfaToken": mfa_token, "method": "email_otp" }),
            None,
        )
        .await;
    assert_eq!(status, 400, "no code is sent for an enrolment: {answer}");
    let (status, _, answer) = node
        .post_json(
            "/auth/mfa/enrol/totp",
            &json!({ "mfaToken": "tsm_made_up" }),
            None,
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("invalid_mfa_token")),
        "{answer}"
    );

    let (status, _, enrolment) = node
        .post_json(
            "/auth/mfa/enrol/totp",
            &json!({ "mfaToken": mfa_token, "name": "phone" }),
            None,
        )
        .await;
    assert_eq!(status, 201, "{enrolment}");
    let uri = enrolment["otpauthUri"].as_str().unwrap();
    assert!(enrolment["qrSvg"].as_str().unwrap().contains("<svg"));
    let (status, tokens) = verify(&node, &mfa_token, "totp", &pyotp_code(uri, now(&node))).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["recoveryCodes"].as_array().map(Vec::len),
        Some(10),
        "{tokens}"
    );
    let claims = payload(tokens["accessToken"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], "urn:tessera:acr:mfa");
    // The token is used up, and the factor is the user's now.
    let (status, _) = verify(&node, &mfa_token, "totp", &pyotp_code(uri, now(&node))).await;
    assert_eq!(status, 401);
    let (_, _, body) = node
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(body["error"], "mfa_required", "{body}");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    // A sign-in with the user's factors does not enrol more.
    let (status, _, answer) = node
        .post_json(
            "/auth/mfa/enrol/totp",
            &json!({ "mfaToken": body["mfaToken"] }),
            None,
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    // The legacy password grant cannot ask: it refuses every user under `required`.
    let other = who("required-grant");
    node.create_user(&other, PASSWORD).await;
    let app = node.create_client("required-grant-app", false, "web").await;
    let patch = tessera_idp::registry::ClientPatch {
        grant_types: Some(vec!["password".into()]),
        ..Default::default()
    };
    ClientRegistry::new(&node.state)
        .acting_as("operator", tessera_idp::audit::RequestContext::default())
        .update(&app.client_id, patch.clone())
        .await
        .unwrap();
    let response = node
        .post_form(
            "/oauth2/token",
            &app,
            &[
                ("grant_type", "password"),
                ("username", &other),
                ("password", PASSWORD),
            ],
        )
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // The same client with its own `optional` policy lets the password alone through.
    let patch = tessera_idp::registry::ClientPatch {
        mfa_policy: Some(Some("optional".into())),
        ..Default::default()
    };
    ClientRegistry::new(&node.state)
        .acting_as("operator", tessera_idp::audit::RequestContext::default())
        .update(&app.client_id, patch)
        .await
        .unwrap();
    let response = node
        .post_form(
            "/oauth2/token",
            &app,
            &[
                ("grant_type", "password"),
                ("username", &other),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
}

async fn a_clients_required_policy_enrols_on_the_hosted_page(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    // The deployment's policy is `optional`; this client requires a factor.
    let Some(node) = spawn_with(backend, |_| {}).await else {
        return;
    };
    let email = who("required-hosted");
    node.create_user(&email, PASSWORD).await;
    let registry = ClientRegistry::new(&node.state);
    let spec = |id: &str, policy: Option<&str>| ClientSpec {
        client_id: Some(id.into()),
        client_name: Some("Payroll".into()),
        redirect_uris: vec![REDIRECT.into()],
        scope: Some("openid email".into()),
        first_party: true,
        mfa_policy: policy.map(str::to_owned),
        require_pushed_authorization_requests: false,
        ..ClientSpec::default()
    };
    let refused = registry.create(spec("payroll-bad", Some("sometimes"))).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("mfa_policy")),
        "{refused:?}"
    );
    let (view, secret) = registry.create(spec("payroll", Some("required"))).await.unwrap();
    assert_eq!(view.mfa_policy.as_deref(), Some("required"));
    let payroll = tessera_testkit::TestClient {
        client_id: view.client_id,
        secret,
    };

    let (verifier, challenge) = pkce_pair();
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &payroll.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid email")
        .append_pair("state", "st-p")
        .append_pair("nonce", "n-p")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut browser = Browser::from_address(tessera_testkit::loopback_ip());
    let page = browser.get(url.as_str()).await;
    let mut form = page.form_fields();
    form.insert("username".into(), email.clone());
    form.insert("password".into(), PASSWORD.into());
    let enrol = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    assert!(
        enrol.body.contains("Set up two-step verification"),
        "{}",
        enrol.body
    );
    assert!(enrol.body.contains("<svg"), "the QR code is on the page");
    assert!(
        browser.cookie("tessera_sso").is_none(),
        "no SSO session before the factor"
    );
    let key = enrol
        .body
        .split("<code class=\"key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the key on the page")
        .to_owned();
    let uri = format!("otpauth://totp/Tessera:x?secret={key}&issuer=Tessera");
    let mut fields: BTreeMap<String, String> = enrol.form_fields();
    fields.insert("code".into(), "000000".into());
    let wrong = browser
        .post_form(&node.at("/oauth2/authorize/mfa"), &fields)
        .await;
    assert_eq!(wrong.status, 401, "a wrong first code: {}", wrong.body);
    let mut fields = wrong.form_fields();
    fields.insert("code".into(), pyotp_code(&uri, now(&node)));
    let codes = browser
        .post_form(&node.at("/oauth2/authorize/mfa"), &fields)
        .await;
    assert_eq!(codes.status, 200, "{}", codes.body);
    assert!(codes.body.contains("Save your recovery codes"), "{}", codes.body);
    assert_eq!(codes.body.matches("<li><code>").count(), 10, "{}", codes.body);
    assert!(
        browser.cookie("tessera_sso").is_some(),
        "the page came with the SSO session"
    );
    let onward = codes
        .body
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/oauth2/authorize?"))
        .expect("a Continue link")
        .replace("&amp;", "&");
    let done = browser.get(&node.at(&onward)).await;
    assert!(done.status == 302 || done.status == 303, "{}", done.body);
    let params = done.location_params();
    let response = node
        .post_form(
            "/oauth2/token",
            &payroll,
            &[
                ("grant_type", "authorization_code"),
                ("code", &params["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let tokens: Value = response.json().await.unwrap();
    let id_token = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["amr"], json!(["pwd", "otp", "mfa"]), "{id_token}");
}

async fn risky_sign_ins_without_a_factor_pass_an_e_mailed_code(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |c| {
        c.mfa.policy = MfaPolicy::Adaptive;
        c.alerts.abuse_ips_per_account = 2;
    })
    .await
    else {
        return;
    };
    let email = who("risky");
    node.create_user(&email, PASSWORD).await;
    let (home, elsewhere) = (caller(net(1)), caller(net(2)));
    let (laptop, stranger) = ("laptop-0123456789abcdef", "stranger-0123456789abcdef");

    // The first sign-in has nothing to compare with; a known device, or a known network,
    // is not risky.
    assert_eq!(login_from(&node, &home, &email, laptop).await.0, 200);
    assert_eq!(login_from(&node, &elsewhere, &email, laptop).await.0, 200);
    assert_eq!(
        login_from(&node, &home, &email, "phone-0123456789abcdef").await.0,
        200
    );

    // A new device on a new network: an e-mailed code first.
    let third = caller(net(3));
    let (status, body) = login_from(&node, &third, &email, stranger).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "mfa_required");
    assert_eq!(body["methods"], json!(["email_otp"]), "{body}");
    assert!(
        body.to_string().find("new_device").is_none(),
        "reasons stay in the audit log"
    );
    let token = body["mfaToken"].as_str().unwrap().to_owned();
    let (status, answer) = verify(&node, &token, "totp", "123456").await;
    assert_eq!(status, 401, "only the e-mailed code passes a step-up: {answer}");
    let (status, _, answer) = node
        .post_json(
            "/auth/mfa/challenge",
            &json!({ "mfaToken": token, "method": "sms_otp" }),
            None,
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, _, answer) = node
        .post_json(
            "/auth/mfa/challenge",
            &json!({ "mfaToken": token, "method": "email_otp" }),
            None,
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let code = mailed_code(&sink, &email, 1).await;
    let (status, tokens) = verify(&node, &token, "email_otp", &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(
        tokens.get("recoveryCodes").is_none(),
        "no factor was enrolled: {tokens}"
    );
    assert_eq!(
        payload(tokens["accessToken"].as_str().unwrap())["acr"],
        "urn:tessera:acr:mfa"
    );
    let (_, listed) = node
        .get_bearer("/auth/mfa", tokens["accessToken"].as_str().unwrap())
        .await;
    assert_eq!(listed["factors"], json!([]), "{listed}");

    // An unusual hour: twelve hours from every time the user's devices were seen.
    node.clock.advance(12 * 3600);
    let (status, body) = login_from(&node, &home, &email, laptop).await;
    assert_eq!(
        (status, body["methods"].clone()),
        (401, json!(["email_otp"])),
        "{body}"
    );

    // Abuse signals: failures for the account from two IPs raise the distributed-failures
    // signal, and then even the known laptop at a usual hour steps up.
    node.clock.advance(12 * 3600);
    assert_eq!(
        login_from(&node, &home, &email, laptop).await.0,
        200,
        "a usual hour again"
    );
    for n in [4, 5] {
        let response = caller(net(n))
            .post(node.at("/auth/login"))
            .json(&json!({ "email": email, "password": "wrong password here" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let (status, body) = login_from(&node, &home, &email, laptop).await;
    assert_eq!(
        (status, body["methods"].clone()),
        (401, json!(["email_otp"])),
        "{body}"
    );

    // Each step-up is audited with its reasons.
    let user_id = node
        .state
        .accounts
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap()
        .id;
    let events = node
        .state
        .db
        .audit_records(&AuditQuery {
            subject: Some(user_id),
            event: Some("mfa.risk_step_up".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let reasons: Vec<String> = events.iter().filter_map(|e| e.detail.clone()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("new_device_and_network")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("unusual_hour")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("abuse_signals")), "{reasons:?}");
}

async fn other_policies_and_unverified_addresses_do_not_step_up(backend: Backend) {
    let (laptop, stranger) = ("laptop-0123456789abcdef", "stranger-0123456789abcdef");
    for (policy, n) in [(MfaPolicy::Off, 11), (MfaPolicy::Optional, 13)] {
        let Some((node, _sink)) = spawn_with_mail_and(backend, |c| c.mfa.policy = policy).await else {
            return;
        };
        let email = who(&format!("risky-{}", policy.as_str()));
        node.create_user(&email, PASSWORD).await;
        assert_eq!(login_from(&node, &caller(net(n)), &email, laptop).await.0, 200);
        let (status, body) = login_from(&node, &caller(net(n + 1)), &email, stranger).await;
        assert_eq!(status, 200, "policy {policy:?}: {body}");
    }

    // Under `adaptive`, a risky sign-in of a user whose address is not verified has no
    // channel for a code: the password stands (and the audit log says it was skipped).
    let Some((node, _sink)) = spawn_with_mail_and(backend, |c| {
        c.accounts.require_verified_email = false;
        c.mfa.policy = MfaPolicy::Adaptive;
    })
    .await
    else {
        return;
    };
    let email = who("risky-unverified");
    node.state
        .accounts
        .create_user(
            &email,
            PASSWORD,
            false,
            &["member".to_owned()],
            &tessera_idp::audit::RequestContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(login_from(&node, &caller(net(15)), &email, laptop).await.0, 200);
    let (status, body) = login_from(&node, &caller(net(16)), &email, stranger).await;
    assert_eq!(status, 200, "{body}");
}

/// Found while adding the device grant: an SSO session from a password-only sign-in at a
/// client with a laxer policy got a code from a client whose policy is `required`, without
/// a factor ever being passed. It must sign in again (and enrol) there.
async fn an_sso_session_without_a_factor_does_not_carry_into_a_client_that_requires_one(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let email = who("sso-carry");
    node.create_user(&email, PASSWORD).await;
    node.create_oidc_client("lax-app", true, REDIRECT, true, None)
        .await;
    node.create_oidc_client("strict-app", true, REDIRECT, true, None)
        .await;
    let mut record = node.state.clients.client("strict-app").await.unwrap().unwrap();
    record.mfa_policy = Some("required".into());
    node.state.clients.update_client(&record).await.unwrap();
    let (_, challenge) = pkce_pair();
    let url = |client: &str, prompt: Option<&str>| {
        let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid")
            .append_pair("state", "st-carry")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(prompt) = prompt {
            url.query_pairs_mut().append_pair("prompt", prompt);
        }
        url.to_string()
    };
    let mut browser = Browser::new();
    let page = browser.get(&url("lax-app", None)).await;
    let mut form = page.form_fields();
    form.insert("username".into(), email.clone());
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    // The lax client's SSO still works for itself...
    assert_eq!(browser.get(&url("lax-app", None)).await.status, 302);
    // ...but the strict one shows the login (whose second step enrols a factor), and
    // prompt=none answers login_required instead of a code.
    let strict = browser.get(&url("strict-app", None)).await;
    assert_eq!(strict.status, 200, "{:?}", strict.location);
    assert!(strict.body.contains("name=\"password\""), "{}", strict.body);
    let silent = browser.get(&url("strict-app", Some("none"))).await;
    assert_eq!(silent.status, 302);
    assert_eq!(silent.location_params()["error"], "login_required");
}
