//! The device authorization grant (RFC 8628) as a TV and its user walk it: the device
//! authorization endpoint, the hosted `/device` page (code, sign-in, confirmation), and the
//! token endpoint's answers while polling — and the abuse: polling too fast, expired,
//! denied, redeemed twice, by another client, guessed user codes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tessera_store::durable::{AuditQuery, AuditRecord, AuditStore, ClientRecord, SessionStore};
use tessera_testkit::{backend_tests, spawn_with, Backend, Browser, TestClient, TestNode};

use crate::mfa::payload;

backend_tests!(
    a_device_approved_on_the_hosted_page_gets_tokens_once,
    device_codes_polled_too_fast_expired_denied_or_of_another_client_are_refused,
    guessed_user_codes_are_throttled_per_ip_and_for_everyone_and_audited,
    the_device_endpoint_authenticates_clients_and_needs_the_grant,
    a_client_that_requires_a_second_factor_gets_it_on_the_device_page
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_device_grant_and_only_one_poll_redeems_it() {
    two_nodes_share_one_device_grant(Backend::Postgres).await
}

const PASSWORD: &str = "correct horse battery staple 42";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A node whose devices poll every second (the default 5 s would make slow tests).
async fn node(backend: Backend) -> Option<TestNode> {
    spawn_with(backend, |c| c.device.poll_interval_secs = 1).await
}

/// Registers a device client (public unless `secret`) with the device grant and refresh.
pub(crate) async fn device_client(
    node: &TestNode,
    client_id: &str,
    confidential: bool,
    grants: &[&str],
) -> TestClient {
    let (secret, hash) = tessera_idp::clients::new_client_secret();
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    let record = ClientRecord {
        client_id: client_id.to_owned(),
        name: format!("{client_id} TV"),
        secret_hash: confidential.then_some(hash),
        token_endpoint_auth_method: if confidential {
            "client_secret_basic"
        } else {
            "none"
        }
        .to_owned(),
        channel: "mobile".to_owned(),
        token_endpoint_auth_signing_alg: None,
        jwks: None,
        jwks_uri: None,
        secret_sealed: None,
        request_object_signing_alg: None,
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        allowed_cors_origins: vec![],
        backchannel_logout_uri: None,
        first_party: false,
        access_token_ttl_secs: None,
        refresh_token_ttl_secs: None,
        mfa_policy: None,
        require_pushed_authorization_requests: false,
        created_at: now,
        updated_at: now,
    };
    node.state.clients.create_client(&record).await.unwrap();
    TestClient {
        client_id: client_id.to_owned(),
        secret: confidential.then_some(secret),
    }
}

async fn form(node: &TestNode, path: &str, client: &TestClient, fields: &[(&str, &str)]) -> (u16, Value) {
    let response = node.post_form(path, client, fields).await;
    let status = response.status().as_u16();
    let no_store = response
        .headers()
        .get("cache-control")
        .is_some_and(|v| v == "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(no_store || status != 200, "a 200 answer is not cached: {body}");
    (status, body)
}

pub(crate) async fn start(node: &TestNode, client: &TestClient, scope: &str) -> Value {
    let (status, body) = form(node, "/oauth2/device_authorization", client, &[("scope", scope)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(node: &TestNode, client: &TestClient, device_code: &str) -> (u16, Value) {
    form(
        node,
        "/oauth2/token",
        client,
        &[("grant_type", GRANT), ("device_code", device_code)],
    )
    .await
}

fn assert_error(answer: &(u16, Value), error: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (400, Some(error)),
        "{}",
        answer.1
    );
}

async fn audit(node: &TestNode) -> Vec<AuditRecord> {
    node.state
        .db
        .audit_records(&AuditQuery {
            limit: 500,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// Waits past the poll interval of a device that was not slowed down.
async fn wait_interval() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// The user's side: enters `user_code` on the page (signing in as `email` when the browser
/// is not signed in yet), then answers `decision` on the confirmation. Returns the page
/// that answers.
pub(crate) async fn answer_on_page(
    node: &TestNode,
    browser: &mut Browser,
    user_code: &str,
    email: &str,
    decision: &str,
) -> tessera_testkit::Page {
    let entry = browser.get(&node.at("/device")).await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    let mut fields = entry.form_fields();
    fields.insert("user_code".into(), user_code.to_owned());
    let mut next = browser.post_form(&node.at("/device"), &fields).await;
    if next.body.contains("name=\"password\"") {
        let mut login = next.form_fields();
        login.insert("username".into(), email.to_owned());
        login.insert("password".into(), PASSWORD.into());
        let signed_in = browser
            .post_form(&node.at("/oauth2/authorize/login"), &login)
            .await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        let back = signed_in.location.clone().unwrap();
        assert!(back.starts_with("/device?user_code="), "{back}");
        next = browser.get(&node.at(&back)).await;
    }
    assert_eq!(next.status, 200, "{}", next.body);
    assert!(
        next.body.contains("name=\"decision\""),
        "a confirmation: {}",
        next.body
    );
    let mut fields = next.form_fields();
    fields.insert("decision".into(), decision.to_owned());
    browser.post_form(&node.at("/device"), &fields).await
}

async fn a_device_approved_on_the_hosted_page_gets_tokens_once(backend: Backend) {
    let Some(node) = node(backend).await else { return };
    let user_id = node.create_user("tv-viewer@example.com", PASSWORD).await;
    let tv = device_client(&node, "living-room", false, &[GRANT, "refresh_token"]).await;

    // RFC 8628 §3.2: every member, the user code as XXXX-XXXX from the consonant alphabet.
    let started = start(&node, &tv, "openid email").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    assert!(device_code.len() >= 43, "{started}");
    assert_eq!(user_code.len(), 9, "{started}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(started["verification_uri"], node.at("/device").as_str());
    assert_eq!(
        started["verification_uri_complete"],
        format!("{}?user_code={user_code}", node.at("/device")).as_str()
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 1);

    assert_error(&poll(&node, &tv, &device_code).await, "authorization_pending");

    // The user opens verification_uri_complete: the code is there, typed in lower case
    // without the dash it still works; the sign-in comes back to the confirmation.
    let mut browser = Browser::new();
    let page = browser
        .get(started["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!("value=\"{user_code}\"")),
        "{}",
        page.body
    );
    let typed = user_code.replace('-', "").to_ascii_lowercase();
    let done = answer_on_page(&node, &mut browser, &typed, "tv-viewer@example.com", "allow").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);

    wait_interval().await;
    let (status, tokens) = poll(&node, &tv, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid email");
    assert!(tokens["refresh_token"].as_str().is_some());
    let id_token = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["aud"], "living-room");
    assert_eq!(id_token["sub"], user_id.as_str());
    // The scope's claims are userinfo's (OIDC Core §5.4: an access token was issued).
    assert_eq!(id_token["email"], "tv-viewer@example.com");
    assert_eq!(id_token["amr"], serde_json::json!(["pwd"]));
    // The session is on the client's channel, and refreshes like any other.
    let access = payload(tokens["access_token"].as_str().unwrap());
    let session = node
        .state
        .db
        .session(access["sid"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.channel, "mobile");
    assert_eq!(session.client_id, "living-room");
    let (status, refreshed) = node.refresh(&tv, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");

    // One redemption only; the code cannot be entered again either.
    wait_interval().await;
    assert_error(&poll(&node, &tv, &device_code).await, "invalid_grant");
    let entry = browser.get(&node.at("/device")).await;
    let mut fields = entry.form_fields();
    fields.insert("user_code".into(), user_code.clone());
    let again = browser.post_form(&node.at("/device"), &fields).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("This code is not valid"), "{}", again.body);

    // The Korean page.
    let ko = node
        .client
        .get(node.at("/device"))
        .header("accept-language", "ko-KR,ko;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ko.contains("lang=\"ko\"") && ko.contains("기기 연결"), "{ko}");

    // Audited.
    let events: Vec<String> = audit(&node).await.into_iter().map(|e| e.event).collect();
    for event in [
        "device.authorization_started",
        "device.approved",
        "device.redeemed",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
}

async fn device_codes_polled_too_fast_expired_denied_or_of_another_client_are_refused(backend: Backend) {
    let Some(node) = node(backend).await else { return };
    node.create_user("tv-owner@example.com", PASSWORD).await;
    let tv = device_client(&node, "den-tv", false, &[GRANT]).await;
    let other = device_client(&node, "kitchen-tv", true, &[GRANT]).await;

    // Too fast: slow_down, and the interval grows by 5 s for good (§3.5): waiting the old
    // interval is still too fast.
    let started = start(&node, &tv, "openid").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    assert_error(&poll(&node, &tv, &device_code).await, "authorization_pending");
    assert_error(&poll(&node, &tv, &device_code).await, "slow_down");
    wait_interval().await;
    assert_error(&poll(&node, &tv, &device_code).await, "slow_down");

    // Another client cannot poll (or learn anything about) the code, however it
    // authenticates; an unknown or missing code is refused as such.
    assert_error(&poll(&node, &other, &device_code).await, "invalid_grant");
    assert_error(&poll(&node, &other, "not-a-device-code").await, "invalid_grant");
    assert_error(&poll(&node, &tv, &"x".repeat(4000)).await, "invalid_grant");
    let missing = form(&node, "/oauth2/token", &tv, &[("grant_type", GRANT)]).await;
    assert_error(&missing, "invalid_request");

    // Denied on the page: access_denied, every time.
    let started = start(&node, &tv, "openid profile").await;
    let denied_code = started["device_code"].as_str().unwrap().to_owned();
    let mut browser = Browser::new();
    let done = answer_on_page(
        &node,
        &mut browser,
        started["user_code"].as_str().unwrap(),
        "tv-owner@example.com",
        "deny",
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Request denied"), "{}", done.body);
    assert_error(&poll(&node, &tv, &denied_code).await, "access_denied");
    wait_interval().await;
    assert_error(&poll(&node, &tv, &denied_code).await, "access_denied");

    // An answer cannot be changed: the form of the confirmation posted again is refused.
    let started = start(&node, &tv, "openid").await;
    let twice_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let entry = browser.get(&node.at("/device")).await;
    let mut fields = entry.form_fields();
    fields.insert("user_code".into(), user_code.clone());
    let confirm = browser.post_form(&node.at("/device"), &fields).await;
    let mut deny: BTreeMap<String, String> = confirm.form_fields();
    deny.insert("decision".into(), "deny".into());
    let mut allow = deny.clone();
    allow.insert("decision".into(), "allow".into());
    assert_eq!(browser.post_form(&node.at("/device"), &deny).await.status, 200);
    assert_eq!(browser.post_form(&node.at("/device"), &allow).await.status, 400);
    assert_error(&poll(&node, &tv, &twice_code).await, "access_denied");

    // Expired: expired_token (not "unknown"), and the page no longer takes the code.
    let started = start(&node, &tv, "openid").await;
    let late_code = started["device_code"].as_str().unwrap().to_owned();
    node.clock.advance(601);
    assert_error(&poll(&node, &tv, &late_code).await, "expired_token");
    let entry = browser.get(&node.at("/device")).await;
    let mut fields = entry.form_fields();
    fields.insert(
        "user_code".into(),
        started["user_code"].as_str().unwrap().to_owned(),
    );
    assert_eq!(browser.post_form(&node.at("/device"), &fields).await.status, 400);

    // A forged form (no CSRF cookie) changes nothing.
    let mut stranger = Browser::new();
    let forged = stranger.post_form(&node.at("/device"), &allow).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
}

async fn guessed_user_codes_are_throttled_per_ip_and_for_everyone_and_audited(backend: Backend) {
    let Some(node) = spawn_with(backend, |c| {
        c.device.max_failures_per_ip = 3;
        c.device.max_failures = 5;
    })
    .await
    else {
        return;
    };
    node.create_user("guess-victim@example.com", PASSWORD).await;
    let tv = device_client(&node, "hall-tv", false, &[GRANT]).await;
    let started = start(&node, &tv, "openid").await;
    let real = started["user_code"].as_str().unwrap().to_owned();

    async fn enter(node: &TestNode, browser: &mut Browser, code: &str) -> tessera_testkit::Page {
        let entry = browser.get(&node.at("/device")).await;
        let mut fields = entry.form_fields();
        fields.insert("user_code".into(), code.to_owned());
        browser.post_form(&node.at("/device"), &fields).await
    }
    // Per IP: three wrong guesses, then even the right code is refused from that address.
    let mut guesser = Browser::from_address(tessera_testkit::loopback_ip());
    for guess in ["BCDF-GHJK", "bcdfghjl", "ZZZZ-ZZZZ"] {
        let page = enter(&node, &mut guesser, guess).await;
        assert_eq!(page.status, 400, "{}", page.body);
    }
    let refused = enter(&node, &mut guesser, &real).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.body.contains("Too many wrong codes"), "{}", refused.body);

    // A right code costs nothing: from another address it shows the sign-in, as often as
    // needed.
    let mut user = Browser::from_address(tessera_testkit::loopback_ip());
    for _ in 0..3 {
        let page = enter(&node, &mut user, &real).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("name=\"password\""), "{}", page.body);
    }

    // For everyone: two more wrong guesses from a second address reach the global limit
    // of 5; a third address is refused too.
    let mut second = Browser::from_address(tessera_testkit::loopback_ip());
    for guess in ["MMMM-MMMM", "NNNN-NNNN"] {
        assert_eq!(enter(&node, &mut second, guess).await.status, 400);
    }
    let mut third = Browser::from_address(tessera_testkit::loopback_ip());
    assert_eq!(enter(&node, &mut third, "PPPP-PPPP").await.status, 429);

    // Counted: each wrong guess and each refusal is an audit event (and a metric).
    let events = audit(&node).await;
    let count = |name: &str| events.iter().filter(|e| e.event == name).count();
    assert_eq!(count("device.user_code_rejected"), 5);
    assert_eq!(count("device.user_code_throttled"), 2);
}

async fn the_device_endpoint_authenticates_clients_and_needs_the_grant(backend: Backend) {
    let Some(node) = node(backend).await else { return };
    let web_only = device_client(&node, "web-only", false, &["refresh_token"]).await;
    let confidential = device_client(&node, "box", true, &[GRANT]).await;

    let (status, body) = form(&node, "/oauth2/device_authorization", &web_only, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let wrong = TestClient {
        client_id: "box".into(),
        secret: Some("tcs_wrong".into()),
    };
    let (status, body) = form(&node, "/oauth2/device_authorization", &wrong, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let nobody = TestClient {
        client_id: "nobody".into(),
        secret: None,
    };
    let (status, _) = form(&node, "/oauth2/device_authorization", &nobody, &[]).await;
    assert_eq!(status, 401);
    // Scope within what the client registered.
    let (status, body) = form(
        &node,
        "/oauth2/device_authorization",
        &confidential,
        &[("scope", "openid tessera:admin")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    // The confidential client authenticates to poll too.
    let started = start(&node, &confidential, "openid").await;
    let code = started["device_code"].as_str().unwrap();
    assert_error(&poll(&node, &confidential, code).await, "authorization_pending");
    wait_interval().await;
    let (status, body) = poll(&node, &wrong, code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // A form with a repeated parameter is refused like at the token endpoint.
    let response = node
        .client
        .post(node.at("/oauth2/device_authorization"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=web-only&client_id=box")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // An operator registers a device client through the admin API (public, no redirect
    // URI), and it works at once.
    let (_, token) = node.admin_token("device-ops").await;
    let (status, _, created) = node
        .post_json(
            "/admin/clients",
            &serde_json::json!({
                "client_id": "set-top",
                "client_name": "Set-top box",
                "token_endpoint_auth_method": "none",
                "grant_types": [GRANT, "refresh_token"],
                "scope": "openid profile",
            }),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["grant_types"],
        serde_json::json!([GRANT, "refresh_token"])
    );
    let set_top = TestClient {
        client_id: "set-top".into(),
        secret: None,
    };
    start(&node, &set_top, "openid profile").await;

    // Discovery advertises the endpoint and the grant.
    let (_, metadata) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        metadata["device_authorization_endpoint"],
        node.at("/oauth2/device_authorization").as_str()
    );
    assert!(metadata["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == GRANT));
}

async fn a_client_that_requires_a_second_factor_gets_it_on_the_device_page(backend: Backend) {
    let Some(node) = node(backend).await else { return };
    node.create_user("strict@example.com", PASSWORD).await;
    let relaxed = device_client(&node, "relaxed-tv", false, &[GRANT]).await;
    let strict = device_client(&node, "strict-tv", false, &[GRANT]).await;
    let mut record = node.state.clients.client("strict-tv").await.unwrap().unwrap();
    record.mfa_policy = Some("required".into());
    node.state.clients.update_client(&record).await.unwrap();

    // Signed in with a password only, through the relaxed client's code.
    let started = start(&node, &relaxed, "openid").await;
    let mut browser = Browser::new();
    let done = answer_on_page(
        &node,
        &mut browser,
        started["user_code"].as_str().unwrap(),
        "strict@example.com",
        "allow",
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(browser.cookie("tessera_sso").is_some());

    // That session is not enough for the strict client: the sign-in again, and then the
    // enrolment of a factor its policy requires — no confirmation before.
    let started = start(&node, &strict, "openid").await;
    let entry = browser.get(&node.at("/device")).await;
    let mut fields = entry.form_fields();
    fields.insert(
        "user_code".into(),
        started["user_code"].as_str().unwrap().to_owned(),
    );
    let login = browser.post_form(&node.at("/device"), &fields).await;
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    assert!(!login.body.contains("name=\"decision\""), "{}", login.body);
    let mut fields = login.form_fields();
    fields.insert("username".into(), "strict@example.com".into());
    fields.insert("password".into(), PASSWORD.into());
    let enrol = browser
        .post_form(&node.at("/oauth2/authorize/login"), &fields)
        .await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    assert!(
        enrol.body.contains("Set up two-step verification"),
        "{}",
        enrol.body
    );
    assert_error(
        &poll(&node, &strict, started["device_code"].as_str().unwrap()).await,
        "authorization_pending",
    );
}

/// RFC 8628 across nodes: started on one node, approved on the other, polled on both at
/// once — exactly one poll gets the tokens, whichever node it reached.
async fn two_nodes_share_one_device_grant(backend: Backend) {
    let Some(node) = node(backend).await else { return };
    if node.config.redis_url.is_none() {
        eprintln!("skipped: the nodes share nothing without Redis");
        return;
    }
    let (other, server) = node.peer().await;
    node.create_user("two-nodes@example.com", PASSWORD).await;
    let tv = device_client(&node, "shared-tv", false, &[GRANT]).await;
    let started = start(&node, &tv, "openid").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();

    // The user's browser talks to the other node only.
    let mut browser = Browser::new();
    let entry = browser.get(&format!("{other}/device")).await;
    let mut fields = entry.form_fields();
    fields.insert(
        "user_code".into(),
        started["user_code"].as_str().unwrap().to_owned(),
    );
    let login = browser.post_form(&format!("{other}/device"), &fields).await;
    let mut fields = login.form_fields();
    fields.insert("username".into(), "two-nodes@example.com".into());
    fields.insert("password".into(), PASSWORD.into());
    let signed_in = browser
        .post_form(&format!("{other}/oauth2/authorize/login"), &fields)
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let confirm = browser
        .get(&format!("{other}{}", signed_in.location.unwrap()))
        .await;
    let mut fields = confirm.form_fields();
    fields.insert("decision".into(), "allow".into());
    let done = browser.post_form(&format!("{other}/device"), &fields).await;
    assert_eq!(done.status, 200, "{}", done.body);

    // Eight polls at once, half on each node: one 200, the rest refused.
    let http = reqwest::Client::new();
    let polls = (0..8).map(|i| {
        let base = if i % 2 == 0 {
            node.url.clone()
        } else {
            other.clone()
        };
        let http = http.clone();
        let secret = tv.secret.clone();
        let device_code = device_code.clone();
        async move {
            let mut form = vec![("grant_type", GRANT.to_owned()), ("device_code", device_code)];
            if secret.is_none() {
                form.push(("client_id", "shared-tv".to_owned()));
            }
            let response = http
                .post(format!("{base}/oauth2/token"))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    });
    let answers = futures_util::future::join_all(polls).await;
    let ok = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 400, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(["slow_down", "invalid_grant"].contains(&error), "{error}: {body}");
    }
    // Redeemed is redeemed on both nodes (checked before the pace).
    for base in [&node.url, &other] {
        let response = http
            .post(format!("{base}/oauth2/token"))
            .form(&[
                ("grant_type", GRANT),
                ("device_code", device_code.as_str()),
                ("client_id", "shared-tv"),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{base}: {body}");
    }
    server.abort();
}
