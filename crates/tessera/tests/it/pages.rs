//! The hosted pages in a real browser: Debian's headless Chromium, driven by Node
//! `playwright-core` (`tests/interop/pages.mjs`), walks the login and consent pages with
//! JavaScript off, in English and Korean, on a desktop and a 375 px phone, and takes
//! screenshots. The script checks what a person would see (language, labelled fields, the
//! error announced as an alert, Allow/Deny, no horizontal scrolling, the submit button in
//! view, the CSP header, no request leaving the node); this test sets up the node, hands it
//! the authorization URLs, and redeems the codes the browser came back with.
//!
//! CI installs Chromium, the Korean fonts and `playwright-core` (`.ci/run`) and sets
//! `TESSERA_REQUIRE_INTEROP=1`, which turns a missing one into a failure; elsewhere it skips
//! with a message. Screenshots land in `target/tmp/pages-screenshots/<backend>/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::{backend_tests, pkce_pair, spawn, Backend, TestClient, TestNode};

backend_tests!(hosted_pages_work_in_headless_chromium);

const CHROMIUM: &str = "/usr/bin/chromium";
const REDIRECT: &str = "https://pages.example/cb";
const EMAIL: &str = "pages-user@example.com";
const PASSWORD: &str = "pages horse battery staple 9";
/// The whole browser run; it takes a few seconds when nothing hangs.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The screenshots the script must leave behind.
const SCREENSHOTS: [&str; 18] = [
    "login-en-desktop.png",
    "login-ko-desktop.png",
    "login-en-mobile.png",
    "login-ko-mobile.png",
    "login-error-en-desktop.png",
    "login-error-ko-mobile.png",
    "consent-en-desktop.png",
    "consent-ko-desktop.png",
    "consent-en-mobile.png",
    "consent-ko-mobile.png",
    "error-page-en-desktop.png",
    "error-page-ko-mobile.png",
    "device-ko-desktop.png",
    "device-confirm-ko-desktop.png",
    "device-done-ko-desktop.png",
    "device-en-desktop.png",
    "device-confirm-en-desktop.png",
    "device-done-en-desktop.png",
];

/// The device authorization grant's type (RFC 8628).
fn device_grant() -> &'static str {
    "urn:ietf:params:oauth:grant-type:device_code"
}

async fn start_device(node: &TestNode, tv: &TestClient) -> Value {
    let response = node
        .post_form("/oauth2/device_authorization", tv, &[("scope", "openid email")])
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The device's poll: (status, error or token type).
async fn poll_device(node: &TestNode, tv: &TestClient, started: &Value) -> (u16, Value) {
    let response = node
        .post_form(
            "/oauth2/token",
            tv,
            &[
                ("grant_type", device_grant()),
                ("device_code", started["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// What is missing to run the browser, if anything.
fn missing_browser_tools() -> Option<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).is_file() {
        missing.push(CHROMIUM);
    }
    if !interop_dir().join("node_modules/playwright-core").is_dir() {
        missing.push("tests/interop/node_modules/playwright-core");
    }
    let node_runs = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_runs {
        missing.push("node");
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

fn authorize_url(node: &TestNode, client: &TestClient, challenge: &str, state: &str, locale: &str) -> String {
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile email")
        .append_pair("state", state)
        .append_pair("nonce", &format!("nonce-{state}"))
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("ui_locales", locale);
    url.to_string()
}

/// Exchanges the code of a redirect the browser came back with; it must give an ID token.
async fn redeem(node: &TestNode, client: &TestClient, redirect: &Value, verifier: &str) {
    let code = redirect["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {redirect}"));
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
    assert_eq!(
        status, 200,
        "{} could not redeem its code: {tokens}",
        client.client_id
    );
    assert!(tokens["id_token"].is_string(), "{tokens}");
}

/// Whether `path` is a non-empty PNG file.
fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.len() > 100 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
}

/// Whether fontconfig knows a font with Hangul (else Korean pages render as boxes).
fn has_korean_font() -> bool {
    std::process::Command::new("fc-list")
        .args([":lang=ko", "family"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
}

const INSTALL_HINT: &str = "`apt-get install chromium fonts-noto-cjk` and `npm ci` in tests/interop \
                            (never `npx playwright install`)";

async fn hosted_pages_work_in_headless_chromium(backend: Backend) {
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    if let Some(missing) = missing_browser_tools() {
        if required {
            panic!("the browser tests need {missing}: {INSTALL_HINT}");
        }
        eprintln!("skipped: hosted pages in Chromium ({missing} not installed)");
        return;
    }
    if !has_korean_font() {
        if required {
            panic!("the browser tests need a Korean font (fonts-noto-cjk): {INSTALL_HINT}");
        }
        eprintln!("warning: no Korean font installed: the Korean screenshots will show boxes");
    }
    let Some(node) = spawn(backend).await else { return };
    node.create_user(EMAIL, PASSWORD).await;
    // A first-party public client (no consent page) and a third-party confidential one.
    let first = node
        .create_oidc_client("pages-first", true, REDIRECT, true, None)
        .await;
    let third = node
        .create_oidc_client("pages-third", false, REDIRECT, false, None)
        .await;
    let (verifier_en, challenge_en) = pkce_pair();
    let (_, challenge_ko) = pkce_pair();
    let (verifier_consent, challenge_consent) = pkce_pair();
    let url_en = authorize_url(&node, &first, &challenge_en, "st-en", "en");
    let url_ko = authorize_url(&node, &first, &challenge_ko, "st-ko", "ko");
    let url_consent = authorize_url(&node, &third, &challenge_consent, "st-consent", "en");
    // A TV with two pending device grants: approved in Korean, denied in English.
    let tv = node.create_client("pages-tv", true, "web").await;
    let mut record = node.state.clients.client("pages-tv").await.unwrap().unwrap();
    record.grant_types = vec![device_grant().to_owned()];
    node.state.clients.update_client(&record).await.unwrap();
    let device_ko = start_device(&node, &tv).await;
    let device_en = start_device(&node, &tv).await;

    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("pages-screenshots")
        .join(backend_name);
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(interop_dir())
        .arg("pages.mjs")
        .env("ISSUER", &node.url)
        .env("AUTHORIZE_URL_EN", &url_en)
        .env("AUTHORIZE_URL_KO", &url_ko)
        .env("AUTHORIZE_URL_CONSENT", &url_consent)
        .env("USERNAME", EMAIL)
        .env("PASSWORD", PASSWORD)
        .env("REDIRECT_PREFIX", REDIRECT)
        .env("SCREENSHOT_DIR", &shots)
        .env("DEVICE_USER_CODE_KO", device_ko["user_code"].as_str().unwrap())
        .env("DEVICE_USER_CODE_EN", device_en["user_code"].as_str().unwrap())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .expect("pages.mjs did not finish in time")
        .expect("cannot run node pages.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the hosted pages failed in Chromium ({}):\n{stdout}\n{stderr}",
        output.status
    );
    eprintln!("pages.mjs ({backend_name}):\n{stdout}{stderr}");
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("pages.mjs printed no JSON summary:\n{stdout}\n{stderr}"));
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["failures"], serde_json::json!([]), "{summary}");
    // What the answers on /device did to the devices' polls.
    let (status, tokens) = poll_device(&node, &tv, &device_ko).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, denied) = poll_device(&node, &tv, &device_en).await;
    assert_eq!(
        (status, denied["error"].as_str()),
        (400, Some("access_denied")),
        "{denied}"
    );

    for name in SCREENSHOTS {
        let path = shots.join(name);
        assert!(is_png(&path), "no screenshot {}", path.display());
    }

    // The codes the browser brought back are real ones: the English login's (a public
    // client) and the one Allow gave (a confidential client).
    let login = &summary["redirects"]["login_en"];
    assert_eq!(login["state"], "st-en", "{summary}");
    assert_eq!(login["iss"], node.url.as_str(), "{summary}");
    redeem(&node, &first, login, &verifier_en).await;
    let denied = &summary["redirects"]["consent_deny"];
    assert_eq!(denied["error"], "access_denied", "{summary}");
    assert_eq!(denied["state"], "st-consent", "{summary}");
    let allowed = &summary["redirects"]["consent_allow"];
    assert_eq!(allowed["state"], "st-consent", "{summary}");
    redeem(&node, &third, allowed, &verifier_consent).await;
}
