//! The account pages in a real browser: Debian's headless Chromium driven by
//! `playwright-core` (`tests/interop/account_pages.mjs`) walks sign-up → verify (the link
//! read from the SMTP sink) → sign-in → change e-mail (the confirmation link from the sink)
//! → sessions → end another session → delete account, every form by keyboard, axe-core on
//! every page in both languages, screenshots at 375 and 1280 px; and, on a node with a
//! 20-second idle timeout whose clock follows the real one, the expiry warning: it shows,
//! "stay signed in" extends, the expiry is announced, and signing in again lands on the
//! same page.
//!
//! The script asks this test for what only the test can see (`NEED {…}` lines on its
//! stdout, answered on its stdin): the link of a mail that reached the sink. The test then
//! checks what the browser did to the stores.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tessera_store::durable::AuditStore;
use tessera_testkit::{backend_tests, spawn_with, spawn_with_mail_and, Backend, SmtpSink};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

backend_tests!(account_pages_work_in_headless_chromium);

const CHROMIUM: &str = "/usr/bin/chromium";
const SIGN_UP_EMAIL: &str = "browser-signup@example.com";
const NEW_EMAIL: &str = "browser-new@example.com";
const EXPIRY_EMAIL: &str = "browser-expiry@example.com";
const PASSWORD: &str = "browser horse battery staple 9";
/// The second node's idle timeout: the warning shows at half of it.
const EXPIRY_IDLE_SECS: u64 = 20;
/// The whole browser run (the expiry scenario alone waits about a minute).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// What is missing to run the browser, if anything.
fn missing_browser_tools() -> Option<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).is_file() {
        missing.push(CHROMIUM);
    }
    for module in ["playwright-core", "axe-core"] {
        if !interop_dir().join("node_modules").join(module).is_dir() {
            missing.push(module);
        }
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

/// The link (absolute URL) containing `path` in the newest mail to `to`, waiting for it;
/// `None` after 10 s (the script then fails, saying so).
async fn link_in_mail(sink: &SmtpSink, to: &str, path: &str) -> Option<String> {
    for _ in 0..200 {
        let found = sink
            .messages()
            .into_iter()
            .rev()
            .filter(|m| m.to.contains(to) || m.envelope_to.contains(to))
            .find_map(|m| {
                m.body
                    .split_whitespace()
                    .find(|word| word.starts_with("http") && word.contains(path))
                    .map(|word| word.trim_end_matches(['>', ')', '.']).to_owned())
            });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("no mail to {to} with a link to {path}; sink log:\n{}", sink.log());
    None
}

async fn account_pages_work_in_headless_chromium(backend: Backend) {
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    if let Some(missing) = missing_browser_tools() {
        if required {
            panic!(
                "the account browser test needs {missing}: apt-get install chromium; npm ci in tests/interop"
            );
        }
        eprintln!("skipped: account pages in Chromium ({missing} not installed)");
        return;
    }
    let Some((node, sink)) = spawn_with_mail_and(backend, |_| {}).await else {
        return;
    };
    let Some(expiry) = spawn_with(backend, |config| {
        config.sessions.idle_timeout_secs = EXPIRY_IDLE_SECS;
    })
    .await
    else {
        return;
    };
    expiry.create_user(EXPIRY_EMAIL, PASSWORD).await;
    // The expiry node's clock follows the real one, a second at a time, so the browser's
    // timers and the server's expiry agree.
    let clock = Arc::clone(&expiry.clock);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            clock.advance(1);
        }
    });

    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("account-screenshots")
        .join(backend_name);
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let mut child = tokio::process::Command::new("node")
        .current_dir(interop_dir())
        .arg("account_pages.mjs")
        .env("ISSUER", &node.url)
        .env("EXPIRY_ISSUER", &expiry.url)
        .env("SIGN_UP_EMAIL", SIGN_UP_EMAIL)
        .env("NEW_EMAIL", NEW_EMAIL)
        .env("EXPIRY_EMAIL", EXPIRY_EMAIL)
        .env("PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &shots)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run node account_pages.mjs");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = child.stderr.take().unwrap();
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let mut reader = BufReader::new(stderr);
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut text).await;
        text
    });
    let mut stdout = String::new();
    let conversation = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stdout.push_str(&line);
            stdout.push('\n');
            let Some(request) = line.strip_prefix("NEED ") else {
                continue;
            };
            let request: Value = serde_json::from_str(request).unwrap();
            let answer = match request["kind"].as_str() {
                Some("mail-link") => {
                    let link = link_in_mail(
                        &sink,
                        request["to"].as_str().unwrap(),
                        request["path"].as_str().unwrap(),
                    )
                    .await;
                    json!({ "link": link })
                }
                other => panic!("the script asked for {other:?}"),
            };
            stdin.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
            stdin.flush().await.unwrap();
        }
    };
    tokio::time::timeout(SCRIPT_TIMEOUT, conversation)
        .await
        .expect("account_pages.mjs did not finish in time");
    let status = child.wait().await.unwrap();
    ticker.abort();
    let stderr = stderr_text.await.unwrap();
    eprintln!("account_pages.mjs ({backend_name}):\n{stdout}{stderr}");
    assert!(
        status.success(),
        "the account pages failed in Chromium ({status}):\n{stdout}\n{stderr}"
    );
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("account_pages.mjs printed no JSON summary:\n{stdout}\n{stderr}"));
    assert_eq!(summary["failures"], json!([]), "{summary}");
    assert_eq!(summary["ok"], true, "{summary}");

    // Every page under 50 KB transferred, HTML + CSS + JS.
    let weights = summary["weights"].as_object().expect("page weights");
    assert!(weights.len() >= 10, "{summary}");
    for (page, bytes) in weights {
        assert!(bytes.as_u64().unwrap() < 50 * 1024, "{page} weighs {bytes} bytes");
    }
    // Each page at 375 and 1280 px in both languages.
    let shots_taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(
        shots_taken >= 40,
        "only {shots_taken} screenshots in {}",
        shots.display()
    );

    // What the browser did: the old address was told of the change, the account is gone,
    // and it is gone in the audit trail with the user as actor.
    let old_notice = sink
        .messages()
        .into_iter()
        .any(|m| m.to.contains(SIGN_UP_EMAIL) && m.subject.contains("change of your e-mail address"));
    assert!(old_notice, "the old address got the notice");
    assert!(node
        .state
        .accounts
        .user_by_email(NEW_EMAIL)
        .await
        .unwrap()
        .is_none());
    let deleted = node
        .state
        .db
        .audit_records(&tessera_store::durable::AuditQuery {
            event: Some("user.deleted".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(
        deleted[0].actor.as_deref(),
        deleted[0]
            .subject
            .as_ref()
            .map(|s| format!("user:{s}"))
            .as_deref()
    );
}
