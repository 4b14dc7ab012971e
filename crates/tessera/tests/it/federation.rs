//! Federated sign-in (R14) against a real, independent upstream: Node `oidc-provider`
//! (tests/interop/oidc_upstream.mjs), walked through by a browser with a cookie jar — the
//! relying party's `/oauth2/authorize`, the login page's button, the upstream, the callback,
//! and the code and tokens the relying party gets. Then what must fail: replayed, tampered
//! and foreign state, an upstream error, a mixed-up issuer, a nonce that is not the flow's,
//! an open redirect through `return_to`, and linking by an unverified e-mail address.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{json, Value};
use tessera_idp::config::{ClaimMapping, ProviderConfig, ProviderKind};
use tessera_idp::secret::Secret;
use tessera_store::durable::{AuditQuery, AuditStore as _, FederationStore as _, UserStore as _};
use tessera_testkit::{
    backend_tests, loopback_ip, pkce_pair, random_u64, spawn_with, Backend, TestClient, TestNode,
};

backend_tests!(
    a_first_sign_in_at_oidc_provider_creates_an_account_and_the_relying_party_gets_idp_and_amr,
    replayed_tampered_and_foreign_callbacks_are_refused_and_leave_nothing_behind,
    an_upstream_error_a_mixed_up_issuer_and_a_wrong_nonce_end_on_an_error_page,
    return_to_cannot_send_the_browser_anywhere_else,
    an_unverified_upstream_address_of_an_existing_account_links_only_after_its_password,
    a_trusted_provider_links_a_verified_address_and_the_last_way_in_stays,
    an_oauth2_only_provider_signs_in_through_its_user_api,
    a_second_tessera_node_is_an_upstream_too,
    the_federated_sign_in_works_in_headless_chromium,
    an_unreachable_upstream_ends_on_an_error_page,
);

const PROVIDER: &str = "corp";
const UPSTREAM_SECRET: &str = "upstream-client-secret-0123456789abcdef";
const REDIRECT_URI: &str = "https://rp.example/callback";
const PASSWORD: &str = "correct horse battery staple";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Whether the upstream can run here; a missing one skips (or fails under
/// `TESSERA_REQUIRE_INTEROP=1`).
fn upstream_available() -> bool {
    let ok = interop_dir().join("node_modules/oidc-provider").is_dir()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("node oidc-provider is not installed (run `npm ci` in tests/interop)");
        }
        eprintln!("skipped: node oidc-provider not installed in tests/interop");
    }
    ok
}

/// A running `oidc-provider`, stopped when dropped.
struct Upstream {
    issuer: String,
    child: Child,
    /// Kept open: a closed pipe would end the process at its next line of output.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The account the upstream signs in.
fn account(email: &str, verified: bool) -> Value {
    json!({
        "sub": format!("upstream-{:016x}", random_u64()),
        "email": email,
        "email_verified": verified,
        "name": "Upstream User",
    })
}

fn start_upstream(redirect_uri: &str, account: &Value) -> Upstream {
    let config = json!({
        "client_id": "tessera",
        "client_secret": UPSTREAM_SECRET,
        "redirect_uri": redirect_uri,
        "account": account,
    });
    let mut child = Command::new("node")
        .current_dir(interop_dir())
        .arg("oidc_upstream.mjs")
        .arg(config.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start oidc-provider");
    let mut stdout = BufReader::new(child.stdout.take().expect("no stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("no issuer line");
    let issuer = serde_json::from_str::<Value>(&line).expect("issuer line is JSON")["issuer"]
        .as_str()
        .expect("issuer")
        .to_owned();
    Upstream {
        issuer,
        child,
        _stdout: stdout,
    }
}

fn provider(issuer: &str, trust_email: bool) -> ProviderConfig {
    ProviderConfig {
        id: PROVIDER.to_owned(),
        display_name: "Corp SSO".to_owned(),
        kind: ProviderKind::Oidc,
        issuer: Some(issuer.to_owned()),
        authorization_endpoint: None,
        token_endpoint: None,
        userinfo_endpoint: None,
        emails_endpoint: None,
        client_id: "tessera".to_owned(),
        client_secret: Some(Secret::new(UPSTREAM_SECRET)),
        client_secret_env: None,
        scopes: vec!["email".to_owned(), "profile".to_owned()],
        claims: ClaimMapping::default(),
        trust_email,
        secret_from_env: None,
    }
}

/// A Tessera node federated to a fresh upstream that signs in `account`, with a
/// first-party relying party.
async fn federated(
    backend: Backend,
    account: &Value,
    trust_email: bool,
) -> Option<(TestNode, Upstream, TestClient)> {
    if !upstream_available() {
        return None;
    }
    // The upstream learns the node's callback URL (the issuer is set before `adjust`).
    let mut upstream: Option<Upstream> = None;
    let node = spawn_with(backend, |config| {
        let callback = format!(
            "{}/federation/{PROVIDER}/callback",
            config.issuer.clone().unwrap_or_default()
        );
        let started = start_upstream(&callback, account);
        config.federation.providers = vec![provider(&started.issuer, trust_email)];
        upstream = Some(started);
    })
    .await?;
    let client = node
        .create_oidc_client(
            &format!("rp-{:08x}", random_u64() as u32),
            false,
            REDIRECT_URI,
            true,
            None,
        )
        .await;
    Some((node, upstream?, client))
}

// --- a browser -------------------------------------------------------------------------

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

/// A browser: one cookie jar for every host (names do not collide here), no redirects
/// followed by itself.
struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(loopback_ip())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, header);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some((name, value)) = text.split(';').next().unwrap_or("").split_once('=') else {
                continue;
            };
            let lower = text.to_ascii_lowercase();
            if value.is_empty() || lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let request = self.client.get(url);
        self.send(request).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(url).form(form);
        self.send(request).await
    }
}

fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base).unwrap().join(location).unwrap().to_string()
}

/// The first `href` on `page` that starts with `prefix`, unescaped.
fn href(page: &Page, prefix: &str) -> Option<String> {
    let start = page.body.find(&format!("href=\"{prefix}"))? + "href=\"".len();
    let end = start + page.body[start..].find('"')?;
    Some(page.body[start..end].replace("&amp;", "&"))
}

/// The value of the hidden field `name` on `page`.
fn field(page: &Page, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.body.find(&marker)? + marker.len();
    let end = start + page.body[start..].find('"')?;
    Some(page.body[start..end].replace("&amp;", "&"))
}

struct Authorization {
    verifier: String,
    url: String,
}

fn authorization_request(node: &TestNode, client: &TestClient) -> Authorization {
    let (verifier, challenge) = pkce_pair();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid email")
        .append_pair("state", "rp-state")
        .append_pair("nonce", "rp-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    Authorization {
        verifier,
        url: node.at(&format!("/oauth2/authorize?{query}")),
    }
}

/// From the relying party's authorization request to the moment the upstream sends the
/// browser back: the callback URL (not yet visited).
async fn to_callback(node: &TestNode, browser: &mut Browser, authorization: &Authorization) -> String {
    let login = browser.get(&authorization.url).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let start = href(&login, &format!("/federation/{PROVIDER}/start?"))
        .expect("no provider button on the login page");
    assert!(login.body.contains("Corp SSO"), "{}", login.body);
    let mut page = browser.get(&node.at(&start)).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let mut url = node.url.clone();
    for _ in 0..10 {
        let location = absolute(&url, page.location.as_deref().expect("a redirect"));
        if location.starts_with(&node.at("/federation/")) {
            return location;
        }
        url = location.clone();
        page = browser.get(&location).await;
        assert!(matches!(page.status, 302 | 303), "{}: {}", page.status, page.body);
    }
    panic!("the upstream never sent the browser back");
}

/// The code the relying party got, redeemed: the token response.
async fn redeem(node: &TestNode, client: &TestClient, location: &str, verifier: &str) -> Value {
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let query: BTreeMap<String, String> = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query.get("state").map(String::as_str), Some("rp-state"));
    let mut form = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), query["code"].clone()),
        ("redirect_uri".to_owned(), REDIRECT_URI.to_owned()),
        ("code_verifier".to_owned(), verifier.to_owned()),
    ];
    let request = client.authenticate(node.client.post(node.at("/oauth2/token")), &mut form);
    let response = request.form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn audit(node: &TestNode, event: &str) -> Vec<tessera_store::durable::AuditRecord> {
    node.state
        .db
        .audit_records(&AuditQuery {
            event: Some(event.into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// The reasons of the audited federation failures, oldest first.
async fn failures(node: &TestNode) -> Vec<String> {
    let mut reasons: Vec<(i64, String)> = audit(node, "federation.failed")
        .await
        .into_iter()
        .map(|r| {
            let detail: Value = serde_json::from_str(r.detail.as_deref().unwrap_or("{}")).unwrap();
            (r.id, detail["reason"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    reasons.sort();
    reasons.into_iter().map(|(_, r)| r).collect()
}

// --- tests -------------------------------------------------------------------------------

async fn a_first_sign_in_at_oidc_provider_creates_an_account_and_the_relying_party_gets_idp_and_amr(
    backend: Backend,
) {
    let email = format!("fed-{:016x}@example.com", random_u64());
    let upstream_account = account(&email, true);
    let Some((node, _upstream, client)) = federated(backend, &upstream_account, false).await else {
        return;
    };
    let mut browser = Browser::new();
    let authorization = authorization_request(&node, &client);
    let callback = to_callback(&node, &mut browser, &authorization).await;
    let done = browser.get(&callback).await;
    assert!(matches!(done.status, 302 | 303), "{}: {}", done.status, done.body);
    assert!(
        !browser.cookies.contains_key("tessera_federation"),
        "the flow cookie stays"
    );
    let tokens = redeem(
        &node,
        &client,
        done.location.as_deref().unwrap(),
        &authorization.verifier,
    )
    .await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    let access = claims(tokens["access_token"].as_str().unwrap());
    for token in [&id_token, &access] {
        assert_eq!(token["idp"], PROVIDER, "{token}");
        assert_eq!(token["amr"], json!(["fed"]), "{token}");
    }
    assert_eq!(id_token["nonce"], "rp-nonce");
    assert_eq!(id_token["email"], email.as_str());
    let user = node
        .state
        .db
        .user_by_email(&email)
        .await
        .unwrap()
        .expect("an account was created");
    assert_eq!(id_token["sub"], user.id.as_str());
    assert!(user.password_hash.is_none());
    assert!(user.email_verified_at.is_some());
    let linked = node.state.db.federated_identities(&user.id).await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].subject, upstream_account["sub"].as_str().unwrap());

    // A refreshed access token still names the upstream.
    let mut form = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        (
            "refresh_token".to_owned(),
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        ),
    ];
    let request = client.authenticate(node.client.post(node.at("/oauth2/token")), &mut form);
    let refreshed: Value = request.form(&form).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["idp"],
        PROVIDER,
        "{refreshed}"
    );

    // The user's own list of linked identities.
    let (status, listed) = node
        .get_bearer("/auth/identities", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed[0]["provider"], PROVIDER);
    assert_eq!(listed[0]["email"], email.as_str());

    // A second sign-in, in another browser, finds the same account by (provider, sub).
    let mut other = Browser::new();
    let authorization = authorization_request(&node, &client);
    let callback = to_callback(&node, &mut other, &authorization).await;
    let done = other.get(&callback).await;
    let tokens = redeem(
        &node,
        &client,
        done.location.as_deref().unwrap(),
        &authorization.verifier,
    )
    .await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["sub"],
        user.id.as_str()
    );
    assert_eq!(audit(&node, "federation.account_created").await.len(), 1);
    assert_eq!(audit(&node, "federation.signed_in").await.len(), 1);
    assert!(failures(&node).await.is_empty(), "{:?}", failures(&node).await);
}

async fn replayed_tampered_and_foreign_callbacks_are_refused_and_leave_nothing_behind(backend: Backend) {
    let email = format!("fed-{:016x}@example.com", random_u64());
    let Some((node, _upstream, client)) = federated(backend, &account(&email, true), false).await else {
        return;
    };
    let count_before = node.state.db.count_users().await.unwrap();

    // The callback in another browser (login CSRF: no flow cookie there) is refused…
    let mut browser = Browser::new();
    let callback = to_callback(&node, &mut browser, &authorization_request(&node, &client)).await;
    let mut intruder = Browser::new();
    let page = intruder.get(&callback).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("Sign-in did not complete"), "{}", page.body);
    // …and a tampered state in the right browser too.
    let tampered = callback.replace("state=", "state=x");
    let page = browser.get(&tampered).await;
    assert_eq!(page.status, 400, "{}", page.body);

    // A fresh flow completes once; the same callback again is a replay.
    let mut browser = Browser::new();
    let authorization = authorization_request(&node, &client);
    let callback = to_callback(&node, &mut browser, &authorization).await;
    let flow_cookie = browser.cookies["tessera_federation"].clone();
    let done = browser.get(&callback).await;
    assert!(matches!(done.status, 302 | 303), "{}", done.body);
    browser.cookies.insert("tessera_federation".into(), flow_cookie);
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.location.is_none());

    // A state of this provider's flow at another provider's callback path.
    let mut browser = Browser::new();
    let callback = to_callback(&node, &mut browser, &authorization_request(&node, &client)).await;
    let elsewhere = callback.replace(&format!("/federation/{PROVIDER}/"), "/federation/nope/");
    let page = browser.get(&elsewhere).await;
    assert_eq!(page.status, 400, "{}", page.body);

    assert_eq!(
        failures(&node).await,
        [
            "invalid_state",
            "invalid_state",
            "invalid_state",
            "unknown_provider"
        ],
    );
    // One account, from the one completed flow.
    assert_eq!(node.state.db.count_users().await.unwrap(), count_before + 1);
}

async fn an_upstream_error_a_mixed_up_issuer_and_a_wrong_nonce_end_on_an_error_page(backend: Backend) {
    let email = format!("fed-{:016x}@example.com", random_u64());
    let Some((node, upstream, client)) = federated(backend, &account(&email, true), false).await else {
        return;
    };
    let count_before = node.state.db.count_users().await.unwrap();
    let query_of = |url: &str| -> BTreeMap<String, String> {
        url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
    };

    // The upstream says no (`?error=`), with its own issuer: an error page, in Korean when
    // the browser asks for it.
    let mut browser = Browser::new();
    let callback = to_callback(&node, &mut browser, &authorization_request(&node, &client)).await;
    let query = query_of(&callback);
    let denied = format!(
        "{}?error=access_denied&state={}&iss={}",
        node.at(&format!("/federation/{PROVIDER}/callback")),
        query["state"],
        url::form_urlencoded::byte_serialize(upstream.issuer.as_bytes()).collect::<String>()
    );
    let request = browser.client.get(&denied).header("accept-language", "ko");
    let page = browser.send(request).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("로그인을 완료하지 못했습니다"),
        "{}",
        page.body
    );

    // RFC 9207: a response naming another issuer (mix-up) is not used.
    let mut browser = Browser::new();
    let callback = to_callback(&node, &mut browser, &authorization_request(&node, &client)).await;
    let mixed = callback.replace(
        &url::form_urlencoded::byte_serialize(upstream.issuer.as_bytes()).collect::<String>(),
        "https%3A%2F%2Fattacker.example",
    );
    assert_ne!(mixed, callback);
    let page = browser.get(&mixed).await;
    assert_eq!(page.status, 502, "{}", page.body);
    // Nor one without `iss` from a provider that sends it.
    let mut browser = Browser::new();
    let callback = to_callback(&node, &mut browser, &authorization_request(&node, &client)).await;
    let stripped: String = {
        let mut url = url::Url::parse(&callback).unwrap();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "iss")
            .collect();
        url.query_pairs_mut().clear().extend_pairs(kept);
        url.to_string()
    };
    let page = browser.get(&stripped).await;
    assert_eq!(page.status, 502, "{}", page.body);

    // The ID token carries the nonce of the authorization request; a flow expecting another
    // one (what a token injected from another sign-in looks like) refuses it.
    let mut browser = Browser::new();
    let callback = to_callback(&node, &mut browser, &authorization_request(&node, &client)).await;
    let state = query_of(&callback)["state"].clone();
    let key = format!(
        "federation:flow:{}",
        tessera_idp::tokens::opaque::sha256_b64(&state)
    );
    let mut flow: Value =
        serde_json::from_slice(&node.state.ephemeral.get(&key).await.unwrap().unwrap()).unwrap();
    flow["nonce"] = json!("another-sign-ins-nonce");
    node.state
        .ephemeral
        .set(
            &key,
            flow.to_string().as_bytes(),
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 502, "{}", page.body);

    assert_eq!(
        failures(&node).await,
        [
            "upstream_error",
            "issuer_mismatch",
            "issuer_mismatch",
            "nonce_mismatch"
        ]
    );
    assert_eq!(
        node.state.db.count_users().await.unwrap(),
        count_before,
        "a failed sign-in created an account"
    );
}

async fn return_to_cannot_send_the_browser_anywhere_else(backend: Backend) {
    let email = format!("fed-{:016x}@example.com", random_u64());
    let Some((node, _upstream, client)) = federated(backend, &account(&email, true), false).await else {
        return;
    };
    let good = authorization_request(&node, &client).url;
    let good_relative = good.strip_prefix(&node.url).unwrap().to_owned();
    let mut browser = Browser::new();
    for return_to in [
        "https://evil.example/oauth2/authorize?client_id=x".to_owned(),
        "//evil.example/oauth2/authorize".to_owned(),
        "/\\evil.example/".to_owned(),
        good.replace("127.0.0.1", "localhost"),
        "/admin/users".to_owned(),
        "javascript:alert(1)".to_owned(),
        String::new(),
        // A real request for a client that does not exist.
        good_relative.replace(&client.client_id, "no-such-client"),
    ] {
        let start = format!(
            "/federation/{PROVIDER}/start?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &return_to)
                .finish()
        );
        let page = browser.get(&node.at(&start)).await;
        assert_eq!(page.status, 400, "{return_to}: {}", page.body);
        assert!(page.location.is_none(), "{return_to}");
    }
    // Twice, or not at all.
    let page = browser
        .get(&node.at(&format!("/federation/{PROVIDER}/start")))
        .await;
    assert_eq!(page.status, 400);
    // An unknown provider.
    let start = format!(
        "/federation/nope/start?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &good_relative)
            .finish()
    );
    let page = browser.get(&node.at(&start)).await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(!browser.cookies.contains_key("tessera_federation"));
}

async fn an_unverified_upstream_address_of_an_existing_account_links_only_after_its_password(
    backend: Backend,
) {
    let email = format!("fed-{:016x}@example.com", random_u64());
    let upstream_account = account(&email, false);
    let Some((node, _upstream, client)) = federated(backend, &upstream_account, false).await else {
        return;
    };
    let existing = node.create_user(&email, PASSWORD).await;

    let mut browser = Browser::new();
    let authorization = authorization_request(&node, &client);
    let callback = to_callback(&node, &mut browser, &authorization).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Link your account"), "{}", page.body);
    assert!(
        node.state
            .db
            .federated_identities(&existing)
            .await
            .unwrap()
            .is_empty(),
        "linked without proof"
    );
    let token = field(&page, "link_token").unwrap();
    let csrf = field(&page, "csrf").unwrap();
    let link = node.at("/federation/link");

    // No CSRF token, or another one: refused.
    let forged = browser
        .post_form(&link, &[("link_token", &token), ("password", PASSWORD)])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let forged = browser
        .post_form(
            &link,
            &[("csrf", "guess"), ("link_token", &token), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // The wrong password: asked again, nothing linked.
    let wrong = browser
        .post_form(
            &link,
            &[
                ("csrf", &csrf),
                ("link_token", &token),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(node
        .state
        .db
        .federated_identities(&existing)
        .await
        .unwrap()
        .is_empty());
    // A made-up token.
    let csrf = field(&wrong, "csrf").unwrap();
    let unknown = browser
        .post_form(
            &link,
            &[("csrf", &csrf), ("link_token", "made-up"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);

    // The right password links, and the sign-in goes on to the relying party.
    let done = browser
        .post_form(
            &link,
            &[("csrf", &csrf), ("link_token", &token), ("password", PASSWORD)],
        )
        .await;
    assert!(matches!(done.status, 302 | 303), "{}: {}", done.status, done.body);
    let tokens = redeem(
        &node,
        &client,
        done.location.as_deref().unwrap(),
        &authorization.verifier,
    )
    .await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["sub"],
        existing.as_str()
    );
    let linked = node.state.db.federated_identities(&existing).await.unwrap();
    assert_eq!(linked.len(), 1);
    // The token is used up.
    let again = browser
        .post_form(
            &link,
            &[("csrf", &csrf), ("link_token", &token), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(audit(&node, "federation.linked").await.len(), 1);
}

async fn a_trusted_provider_links_a_verified_address_and_the_last_way_in_stays(backend: Backend) {
    let email = format!("fed-{:016x}@example.com", random_u64());
    let Some((node, _upstream, client)) = federated(backend, &account(&email, true), true).await else {
        return;
    };
    let existing = node.create_user(&email, PASSWORD).await;
    let mut browser = Browser::new();
    let authorization = authorization_request(&node, &client);
    let callback = to_callback(&node, &mut browser, &authorization).await;
    let done = browser.get(&callback).await;
    assert!(matches!(done.status, 302 | 303), "{}: {}", done.status, done.body);
    let tokens = redeem(
        &node,
        &client,
        done.location.as_deref().unwrap(),
        &authorization.verifier,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["sub"], existing.as_str());
    let linked = node.state.db.federated_identities(&existing).await.unwrap();
    assert_eq!(linked.len(), 1);

    // The account has a password, so the identity may go; an unknown one is 404.
    let path = format!("/auth/identities/{PROVIDER}/{}", linked[0].subject);
    let response = node
        .client
        .delete(node.at("/auth/identities/corp/nobody"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = node.client.delete(node.at(&path)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = node
        .client
        .delete(node.at(&path))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(node
        .state
        .db
        .federated_identities(&existing)
        .await
        .unwrap()
        .is_empty());

    // An account created through the upstream has no password: its only identity stays.
    let other_email = format!("fed-{:016x}@example.com", random_u64());
    let upstream_account = account(&other_email, true);
    let Some((node, _upstream, client)) = federated(backend, &upstream_account, false).await else {
        return;
    };
    let mut browser = Browser::new();
    let authorization = authorization_request(&node, &client);
    let callback = to_callback(&node, &mut browser, &authorization).await;
    let done = browser.get(&callback).await;
    let tokens = redeem(
        &node,
        &client,
        done.location.as_deref().unwrap(),
        &authorization.verifier,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let path = format!(
        "/auth/identities/{PROVIDER}/{}",
        upstream_account["sub"].as_str().unwrap()
    );
    let response = node
        .client
        .delete(node.at(&path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let user = node.state.db.user_by_email(&other_email).await.unwrap().unwrap();
    assert_eq!(
        node.state.db.federated_identities(&user.id).await.unwrap().len(),
        1
    );
}

// --- an OAuth 2.0-only provider (GitHub's documented endpoints) ----------------------------

/// A small server of this test's own with GitHub's endpoints: `/login/oauth/authorize`
/// (approves at once), `/login/oauth/access_token` (checks the secret, the code once and
/// the PKCE verifier), `/user` and `/user/emails` (Bearer).
async fn github_like(verified_email: &str) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::{Form, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{get, post};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Github {
        /// code → (PKCE challenge, redirect URI)
        codes: Arc<Mutex<BTreeMap<String, (String, String)>>>,
        email: String,
    }
    const TOKEN: &str = "gho_test_access_token";

    async fn authorize(
        State(gh): State<Github>,
        Query(q): Query<BTreeMap<String, String>>,
    ) -> impl IntoResponse {
        assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
        let code = format!("code{:016x}", random_u64());
        gh.codes.lock().unwrap().insert(
            code.clone(),
            (q["code_challenge"].clone(), q["redirect_uri"].clone()),
        );
        let to = format!(
            "{}?code={code}&state={}",
            q["redirect_uri"],
            url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
        );
        Redirect::to(&to)
    }
    async fn token(State(gh): State<Github>, Form(f): Form<BTreeMap<String, String>>) -> impl IntoResponse {
        let entry = gh
            .codes
            .lock()
            .unwrap()
            .remove(f.get("code").map(String::as_str).unwrap_or(""));
        let ok = f.get("client_id").map(String::as_str) == Some("gh-client")
            && f.get("client_secret").map(String::as_str) == Some(UPSTREAM_SECRET)
            && entry.is_some_and(|(challenge, redirect)| {
                Some(&redirect) == f.get("redirect_uri")
                    && f.get("code_verifier")
                        .map(|v| tessera_idp::tokens::opaque::sha256_b64(v))
                        == Some(challenge)
            });
        if !ok {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "bad_verification_code"})),
            );
        }
        (
            StatusCode::OK,
            axum::Json(
                json!({"access_token": TOKEN, "token_type": "bearer", "scope": "read:user,user:email"}),
            ),
        )
    }
    fn authorized(headers: &HeaderMap) -> bool {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
            && headers.contains_key("user-agent")
    }
    async fn user(headers: HeaderMap) -> impl IntoResponse {
        if !authorized(&headers) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": "Requires authentication"})),
            );
        }
        (
            StatusCode::OK,
            axum::Json(json!({"id": 4242, "login": "octo", "name": null, "email": "public@example.org"})),
        )
    }
    async fn emails(State(gh): State<Github>, headers: HeaderMap) -> impl IntoResponse {
        if !authorized(&headers) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": "Requires authentication"})),
            );
        }
        (
            StatusCode::OK,
            axum::Json(json!([
                {"email": "public@example.org", "primary": false, "verified": false},
                {"email": gh.email, "primary": true, "verified": true},
            ])),
        )
    }
    let app = axum::Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(token))
        .route("/user", get(user))
        .route("/user/emails", get(emails))
        .with_state(Github {
            codes: Default::default(),
            email: verified_email.to_owned(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, server)
}

async fn an_oauth2_only_provider_signs_in_through_its_user_api(backend: Backend) {
    let email = format!("octo-{:016x}@example.com", random_u64());
    let (github, _server) = github_like(&email).await;
    let Some(node) = spawn_with(backend, |config| {
        config.federation.providers = vec![ProviderConfig {
            id: "gh".to_owned(),
            display_name: "GitHub".to_owned(),
            kind: ProviderKind::Oauth2,
            issuer: None,
            authorization_endpoint: Some(format!("{github}/login/oauth/authorize")),
            token_endpoint: Some(format!("{github}/login/oauth/access_token")),
            userinfo_endpoint: Some(format!("{github}/user")),
            emails_endpoint: Some(format!("{github}/user/emails")),
            client_id: "gh-client".to_owned(),
            client_secret: Some(Secret::new(UPSTREAM_SECRET)),
            client_secret_env: None,
            scopes: vec!["read:user".to_owned(), "user:email".to_owned()],
            claims: ClaimMapping {
                subject: "id".to_owned(),
                name: "login".to_owned(),
                ..ClaimMapping::default()
            },
            trust_email: false,
            secret_from_env: None,
        }];
    })
    .await
    else {
        return;
    };
    let client = node
        .create_oidc_client("rp-github", false, REDIRECT_URI, true, None)
        .await;
    let mut browser = Browser::new();
    let authorization = authorization_request(&node, &client);
    let login = browser.get(&authorization.url).await;
    let start = href(&login, "/federation/gh/start?").expect("no GitHub button");
    let to_github = browser.get(&node.at(&start)).await;
    assert_eq!(to_github.status, 302, "{}", to_github.body);
    let back = browser.get(to_github.location.as_deref().unwrap()).await;
    let callback = absolute(&github, back.location.as_deref().expect("GitHub redirects back"));
    assert!(
        callback.starts_with(&node.at("/federation/gh/callback?")),
        "{callback}"
    );
    let done = browser.get(&callback).await;
    assert!(matches!(done.status, 302 | 303), "{}: {}", done.status, done.body);
    let tokens = redeem(
        &node,
        &client,
        done.location.as_deref().unwrap(),
        &authorization.verifier,
    )
    .await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["idp"], "gh");
    // The primary verified address of /user/emails, not the public one of /user.
    assert_eq!(id_token["email"], email.as_str());
    let user = node
        .state
        .db
        .user_by_email(&email)
        .await
        .unwrap()
        .expect("an account");
    let linked = node.state.db.federated_identities(&user.id).await.unwrap();
    assert_eq!(
        (linked[0].provider.as_str(), linked[0].subject.as_str()),
        ("gh", "4242")
    );
    assert!(node
        .state
        .db
        .user_by_email("public@example.org")
        .await
        .unwrap()
        .is_none());
}

// --- another Tessera as the upstream ---------------------------------------------------------

/// Every hidden field of the first form on `page`.
fn hidden_fields(page: &Page) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = page.body.as_str();
    while let Some(at) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[at + "<input type=\"hidden\" name=\"".len()..];
        let Some(end) = rest.find('"') else { break };
        let name = rest[..end].to_owned();
        let Some(v) = rest.find("value=\"") else { break };
        let value_start = v + "value=\"".len();
        let Some(value_end) = rest[value_start..].find('"') else {
            break;
        };
        let value = rest[value_start..value_start + value_end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"");
        if fields.iter().any(|(n, _): &(String, String)| *n == name) {
            break; // the second form (the passkey one) repeats them
        }
        fields.push((name, value));
        rest = &rest[value_start + value_end..];
    }
    fields
}

async fn a_second_tessera_node_is_an_upstream_too(backend: Backend) {
    let Some(upstream) = tessera_testkit::spawn(backend).await else {
        return;
    };
    let email = format!("peer-{:016x}@example.com", random_u64());
    let upstream_user = upstream.create_user(&email, PASSWORD).await;
    let (secret, secret_hash) = tessera_idp::clients::new_client_secret();
    let Some(node) = spawn_with(backend, |config| {
        let mut peer = provider(&upstream.url, false);
        peer.id = "peer".to_owned();
        peer.display_name = "Tessera Peer".to_owned();
        peer.client_id = "tessera-downstream".to_owned();
        peer.client_secret = Some(Secret::new(secret.clone()));
        config.federation.providers = vec![peer];
    })
    .await
    else {
        return;
    };
    // The downstream node, registered at the upstream one as a confidential client.
    let now = tessera_idp::clock::Clock::now(upstream.clock.as_ref());
    upstream
        .state
        .clients
        .create_client(&tessera_store::durable::ClientRecord {
            client_id: "tessera-downstream".to_owned(),
            name: "Downstream".to_owned(),
            secret_hash: Some(secret_hash),
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
            channel: "web".to_owned(),
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            redirect_uris: vec![node.at("/federation/peer/callback")],
            post_logout_redirect_uris: vec![],
            allowed_cors_origins: vec![],
            backchannel_logout_uri: None,
            first_party: true,
            access_token_ttl_secs: None,
            refresh_token_ttl_secs: None,
            mfa_policy: None,
            require_pushed_authorization_requests: false,
            token_endpoint_auth_signing_alg: None,
            jwks: None,
            jwks_uri: None,
            secret_sealed: None,
            request_object_signing_alg: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let client = node
        .create_oidc_client("rp-peer", false, REDIRECT_URI, true, None)
        .await;

    let mut browser = Browser::new();
    let authorization = authorization_request(&node, &client);
    let login = browser.get(&authorization.url).await;
    let start = href(&login, "/federation/peer/start?").expect("no button for the peer");
    let to_upstream = browser.get(&node.at(&start)).await;
    assert_eq!(to_upstream.status, 302, "{}", to_upstream.body);
    let upstream_login = browser.get(to_upstream.location.as_deref().unwrap()).await;
    assert_eq!(upstream_login.status, 200, "{}", upstream_login.body);
    let mut form = hidden_fields(&upstream_login);
    form.push(("username".to_owned(), email.clone()));
    form.push(("password".to_owned(), PASSWORD.to_owned()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let back = browser
        .post_form(&upstream.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    let callback = back.location.unwrap();
    assert!(
        callback.starts_with(&node.at("/federation/peer/callback?")),
        "{callback}"
    );
    let done = browser.get(&callback).await;
    assert!(matches!(done.status, 302 | 303), "{}: {}", done.status, done.body);
    let tokens = redeem(
        &node,
        &client,
        done.location.as_deref().unwrap(),
        &authorization.verifier,
    )
    .await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["idp"], "peer");
    assert_eq!(id_token["email"], email.as_str());
    // Two providers, two subjects: the downstream account is its own, linked by the
    // upstream's subject.
    let user = node
        .state
        .db
        .user_by_email(&email)
        .await
        .unwrap()
        .expect("an account");
    assert_ne!(user.id, upstream_user);
    let linked = node.state.db.federated_identities(&user.id).await.unwrap();
    assert_eq!(linked[0].subject, upstream_user);
}

// --- in a real browser -----------------------------------------------------------------------

async fn the_federated_sign_in_works_in_headless_chromium(backend: Backend) {
    let chromium = Path::new("/usr/bin/chromium").is_file()
        && interop_dir().join("node_modules/playwright-core").is_dir();
    if !chromium {
        if std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!(
                "chromium or playwright-core is missing (apt-get install chromium; npm ci in tests/interop)"
            );
        }
        eprintln!("skipped: chromium or playwright-core missing");
        return;
    }
    let email = format!("fed-{:016x}@example.com", random_u64());
    let Some((node, _upstream, client)) = federated(backend, &account(&email, true), false).await else {
        return;
    };
    let authorization = authorization_request(&node, &client);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("federation-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(interop_dir())
        .arg("federation_browser.mjs")
        .env("AUTHORIZE_URL", &authorization.url)
        .env("BUTTON", "Corp SSO(으)로 계속하기")
        .env("REDIRECT_PREFIX", REDIRECT_URI)
        .env("SCREENSHOT_DIR", &shots)
        .kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(90), command.output())
        .await
        .expect("federation_browser.mjs did not finish in time")
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON summary: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(summary["ok"], true, "{summary}");
    let location = format!(
        "{REDIRECT_URI}?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                summary["params"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k, v.as_str().unwrap()))
            )
            .finish()
    );
    let tokens = redeem(&node, &client, &location, &authorization.verifier).await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["idp"], PROVIDER);
    assert_eq!(id_token["email"], email.as_str());
}

async fn an_unreachable_upstream_ends_on_an_error_page(backend: Backend) {
    // A port nobody listens on (bound, then closed).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let Some(node) = spawn_with(backend, |config| {
        config.federation.providers = vec![provider(&format!("http://{closed}"), false)];
        config.federation.http_timeout_secs = 2;
    })
    .await
    else {
        return;
    };
    let client = node
        .create_oidc_client("rp-down", false, REDIRECT_URI, true, None)
        .await;
    let mut browser = Browser::new();
    let login = browser.get(&authorization_request(&node, &client).url).await;
    let start = href(&login, &format!("/federation/{PROVIDER}/start?")).unwrap();
    let page = browser.get(&node.at(&start)).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("could not be reached"), "{}", page.body);
    assert!(page.location.is_none());
    assert!(!browser.cookies.contains_key("tessera_federation"));
    assert_eq!(failures(&node).await, ["unreachable"]);
}
