//! The first-party JSON API under abuse (R29, R10, R21–R23, R15): brute force (per account,
//! per IP, in parallel bursts), account enumeration, `Idempotency-Key`, malformed and
//! oversized bodies, e-mail normalisation, SQL metacharacters, one-time links used twice,
//! late, crosswise or for someone else, the password policy's answers, disabling, the
//! refresh-token cookie and login channels.
//!
//! Every test asserts the answer *and* the state behind it (how many users, which e-mails
//! arrived, whether a session still works). Addresses, idempotency keys and client IP
//! addresses are fresh per test run: with Redis (shared by every test and every run)
//! throttle counters, lockouts and idempotency keys would otherwise carry over.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{json, Value};
use tessera_idp::audit::RequestContext;
use tessera_store::durable::{UserRecord, UserStore};
use tessera_testkit::{
    backend_tests, link_token, loopback_ip, random_u64, spawn, spawn_with, spawn_with_mail,
    spawn_with_mail_and, Backend, ReceivedMail, SmtpSink, TestNode,
};

const PASSWORD: &str = "correct horse battery staple 42";
const OTHER_PASSWORD: &str = "violet tractor whispers at dawn 7";
const WRONG: &str = "not the password at all 99";
/// Upper bound for mail that must arrive (not an assertion about speed).
// The mailer's own deadline for one message (three times the 10 s SMTP timeout): on a
// loaded two-core machine a first delivery to the sink once took longer than 10 s.
const WAIT: Duration = Duration::from_secs(30);
/// How long to watch for mail that must not arrive (sending happens in the background).
const QUIET: Duration = Duration::from_millis(1500);

const VERIFY_SUBJECT: &str = "Verify your e-mail address";
const RESET_SUBJECT: &str = "Reset your password";
const EXISTS_SUBJECT: &str = "You already have an account";

// --- helpers -------------------------------------------------------------------------------

/// A fresh lower-case token for addresses and keys.
fn unique() -> String {
    format!("{:016x}", random_u64())
}

/// A fresh address `tag-<random>@example.com` (already normalised).
fn address(tag: &str) -> String {
    format!("{tag}-{}@example.com", unique())
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Reply {
    fn code(&self) -> Option<&str> {
        self.json["code"].as_str()
    }

    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem document (RFC 9457) with this status and, when given, `code`, and a
    /// human-readable `detail`.
    fn assert_problem(&self, status: u16, code: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.header(CONTENT_TYPE),
            Some("application/problem+json"),
            "{self:?}"
        );
        assert_eq!(self.json["status"], status, "{}", self.text);
        assert!(
            self.json["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:tessera:problem:")),
            "{}",
            self.text
        );
        assert!(
            self.json["detail"].as_str().is_some_and(|d| !d.trim().is_empty()),
            "no detail: {}",
            self.text
        );
        if let Some(code) = code {
            assert_eq!(self.code(), Some(code), "{}", self.text);
        }
    }

    /// `Retry-After` as whole seconds (panics unless it is a positive integer).
    fn retry_after(&self) -> u64 {
        let value = self
            .header(RETRY_AFTER)
            .unwrap_or_else(|| panic!("no Retry-After: {self:?}"));
        let secs: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After is not an integer: {value:?}"));
        assert!(secs >= 1, "Retry-After {secs}");
        secs
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request failed");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// A client of `node` that connects from its own loopback address, so per-IP failure
/// counts (shared through Redis by every test) are this test's alone.
struct Api<'a> {
    node: &'a TestNode,
    client: reqwest::Client,
}

impl<'a> Api<'a> {
    fn new(node: &'a TestNode) -> Api<'a> {
        Api {
            node,
            client: client_from(loopback_ip()),
        }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.node.at(path))
    }

    async fn post_json(&self, path: &str, body: &Value) -> Reply {
        send(self.post(path).json(body)).await
    }

    async fn post_json_bearer(&self, path: &str, body: &Value, bearer: &str) -> Reply {
        send(self.post(path).json(body).bearer_auth(bearer)).await
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let mut request = self.client.get(self.node.at(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.post_json("/auth/login", &json!({"email": email, "password": password}))
            .await
    }

    /// Logs in and returns `(accessToken, refreshToken)`, asserting 200.
    async fn login_ok(&self, email: &str, password: &str) -> (String, String) {
        let reply = self.login(email, password).await;
        assert_eq!(reply.status, 200, "login of {email}: {}", reply.text);
        (
            reply.json["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
            reply.json["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
        )
    }

    async fn signup(&self, email: &str, password: &str) -> Reply {
        self.post_json("/auth/signup", &json!({"email": email, "password": password}))
            .await
    }

    async fn verify(&self, token: &str) -> Reply {
        self.get(&format!("/auth/verify-email?token={token}"), None).await
    }

    async fn reset(&self, token: &str, password: &str) -> Reply {
        self.post_json(
            "/auth/password/reset",
            &json!({"token": token, "password": password}),
        )
        .await
    }

    async fn forgot(&self, email: &str) -> Reply {
        self.post_json("/auth/password/forgot", &json!({"email": email}))
            .await
    }

    async fn reissue(&self, access: &str, refresh: &str) -> Reply {
        self.post_json(
            "/auth/reissue",
            &json!({"accessToken": access, "refreshToken": refresh}),
        )
        .await
    }

    async fn me(&self, access: &str) -> u16 {
        self.get("/api/member/me", Some(access)).await.status
    }
}

/// `POST path` with an oversized `body` ([`TestNode::post_oversized`]), as a [`Reply`].
async fn post_oversized(node: &TestNode, path: &str, bearer: Option<&str>, body: Vec<u8>) -> Reply {
    let (status, headers, text) = node.post_oversized(path, bearer, body).await;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

fn client_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip)
        .build()
        .expect("client")
}

fn context() -> RequestContext {
    RequestContext::default()
}

/// Creates a verified user directly (no mail, no HTTP).
async fn create_user(node: &TestNode, email: &str, password: &str) -> UserRecord {
    node.state
        .accounts
        .create_user(email, password, true, &[], &context())
        .await
        .expect("create user")
}

async fn stored_user(node: &TestNode, email: &str) -> Option<UserRecord> {
    node.state.db.user_by_email(email).await.expect("store")
}

async fn user_count(node: &TestNode) -> u64 {
    node.state.db.count_users().await.expect("store")
}

async fn session_count(node: &TestNode, user_id: &str) -> usize {
    node.state.tokens.sessions_of(user_id).await.expect("store").len()
}

/// Messages to `to` with `subject`, once at least `n` arrived (panics after [`WAIT`]).
async fn mails(sink: &SmtpSink, to: &str, subject: &str, n: usize) -> Vec<ReceivedMail> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found: Vec<ReceivedMail> = sink
            .messages()
            .into_iter()
            .filter(|m| m.to == to && m.subject == subject)
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} {subject:?} to {to}, got {}: {:#?}",
            found.len(),
            sink.messages()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The token of the `n`th (1-based) message to `to` with `subject` that links to `path`.
async fn mailed_token(sink: &SmtpSink, to: &str, subject: &str, n: usize, path: &str) -> String {
    let found = mails(sink, to, subject, n).await;
    link_token(&found[n - 1].body, path).unwrap_or_else(|| panic!("no {path} link: {}", found[n - 1].body))
}

/// Waits [`QUIET`] and asserts that exactly `n` messages arrived in all.
async fn assert_mail_count(sink: &SmtpSink, n: usize) {
    tokio::time::sleep(QUIET).await;
    let all = sink.messages();
    assert_eq!(all.len(), n, "{all:#?}");
}

// --- 1, 2. Brute force and enumeration -------------------------------------------------------

backend_tests!(
    five_failures_lock_the_account_and_unknown_addresses_alike,
    a_success_before_the_limit_starts_the_count_over,
    a_parallel_burst_gets_no_more_checks_than_the_limit,
    the_lockout_ends_and_doubles_the_next_time,
    the_per_ip_limit_throttles_one_address_across_accounts,
    unknown_address_and_wrong_password_answers_are_byte_identical,
    logout_clears_the_refresh_cookie,
    waiting_retry_after_seconds_is_enough,
    a_parallel_burst_across_accounts_gets_no_more_checks_than_the_per_ip_limit,
);

async fn five_failures_lock_the_account_and_unknown_addresses_alike(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let known = address("locked");
    let unknown = address("nobody");
    let user = create_user(&node, &known, PASSWORD).await;

    for attempt in 1..=5 {
        let wrong = api.login(&known, WRONG).await;
        wrong.assert_problem(401, Some("invalid_credentials"));
        assert_eq!(
            wrong.json["captchaRequired"],
            attempt >= 3,
            "attempt {attempt}: {}",
            wrong.text
        );
        assert!(wrong.header(RETRY_AFTER).is_none(), "{wrong:?}");
        let nobody = api.login(&unknown, WRONG).await;
        assert_eq!(nobody.status, 401, "{}", nobody.text);
        assert_eq!(nobody.text, wrong.text, "attempt {attempt}: the answers differ");
    }

    // The sixth attempt is refused without a check, even with the right password.
    let locked = api.login(&known, PASSWORD).await;
    locked.assert_problem(429, Some("too_many_attempts"));
    let retry = locked.retry_after();
    assert!(retry <= 60, "first lockout is 60 s, Retry-After {retry}");
    assert!(locked.json.get("captchaRequired").is_none(), "{}", locked.text);
    let nobody = api.login(&unknown, PASSWORD).await;
    assert_eq!(nobody.status, 429, "{}", nobody.text);
    assert_eq!(nobody.text, locked.text, "a locked unknown address answers alike");
    assert!(nobody.retry_after() <= 60);
    // Still locked for a wrong password too, and no session was ever started.
    api.login(&known, WRONG)
        .await
        .assert_problem(429, Some("too_many_attempts"));
    assert_eq!(session_count(&node, &user.id).await, 0);
}

async fn a_success_before_the_limit_starts_the_count_over(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let email = address("reset-count");
    create_user(&node, &email, PASSWORD).await;

    for attempt in 1..=4 {
        let reply = api.login(&email, WRONG).await;
        reply.assert_problem(401, Some("invalid_credentials"));
        assert_eq!(reply.json["captchaRequired"], attempt >= 3, "{}", reply.text);
    }
    api.login_ok(&email, PASSWORD).await;
    // Counting starts over: four more failures, the CAPTCHA hint off again at first.
    for attempt in 1..=4 {
        let reply = api.login(&email, WRONG).await;
        reply.assert_problem(401, Some("invalid_credentials"));
        assert_eq!(
            reply.json["captchaRequired"],
            attempt >= 3,
            "attempt {attempt} after a success: {}",
            reply.text
        );
    }
    // …and the fifth consecutive failure locks.
    api.login(&email, WRONG)
        .await
        .assert_problem(401, Some("invalid_credentials"));
    api.login(&email, PASSWORD)
        .await
        .assert_problem(429, Some("too_many_attempts"));
}

async fn a_parallel_burst_gets_no_more_checks_than_the_limit(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let email = address("burst");
    let user = create_user(&node, &email, PASSWORD).await;

    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = api
            .post("/auth/login")
            .json(&json!({"email": email, "password": WRONG}));
        burst.spawn(send(request));
    }
    let mut checked = 0;
    let mut refused = 0;
    while let Some(reply) = burst.join_next().await {
        let reply = reply.expect("task");
        match reply.status {
            401 => {
                reply.assert_problem(401, Some("invalid_credentials"));
                checked += 1;
            }
            429 => {
                reply.assert_problem(429, Some("too_many_attempts"));
                reply.retry_after();
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert!(
        (1..=5).contains(&checked),
        "{checked} passwords were checked in a burst of 20 (limit 5)"
    );
    assert_eq!(checked + refused, 20);
    // The burst used up the limit: the account is locked now.
    api.login(&email, PASSWORD)
        .await
        .assert_problem(429, Some("too_many_attempts"));
    assert_eq!(session_count(&node, &user.id).await, 0);
}

async fn the_lockout_ends_and_doubles_the_next_time(backend: Backend) {
    let Some(node) = spawn_with(backend, |config| {
        config.login.lockout_secs = 1;
        config.login.max_lockout_secs = 60;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&node);
    let email = address("expiry");
    create_user(&node, &email, PASSWORD).await;

    for _ in 0..5 {
        assert_eq!(api.login(&email, WRONG).await.status, 401);
    }
    let locked = api.login(&email, PASSWORD).await;
    locked.assert_problem(429, Some("too_many_attempts"));
    assert_eq!(locked.retry_after(), 1);
    // The store's real expiry (not the test clock) ends the lockout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.login_ok(&email, PASSWORD).await;

    // The second lockout lasts twice as long: still locked after 1.5 s, free after 2.5 s.
    for _ in 0..5 {
        assert_eq!(api.login(&email, WRONG).await.status, 401);
    }
    let locked = api.login(&email, PASSWORD).await;
    locked.assert_problem(429, Some("too_many_attempts"));
    assert!(locked.retry_after() <= 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.login(&email, PASSWORD)
        .await
        .assert_problem(429, Some("too_many_attempts"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    api.login_ok(&email, PASSWORD).await;
}

async fn the_per_ip_limit_throttles_one_address_across_accounts(backend: Backend) {
    let Some(node) = spawn_with(backend, |config| {
        config.login.max_failures_per_ip = 3;
        config.login.window_secs = 60;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&node);
    let victim = address("per-ip-victim");
    let user = create_user(&node, &victim, PASSWORD).await;
    for tag in ["ip-a", "ip-b", "ip-c"] {
        api.login(&address(tag), WRONG)
            .await
            .assert_problem(401, Some("invalid_credentials"));
    }
    // A fourth account from the same address: refused before any check, right password or not.
    let refused = api.login(&victim, PASSWORD).await;
    refused.assert_problem(429, Some("too_many_attempts"));
    assert!(refused.retry_after() <= 60);
    assert_eq!(session_count(&node, &user.id).await, 0);
    // The account itself is not locked: from another address it logs in.
    let elsewhere = Api::new(&node);
    elsewhere.login_ok(&victim, PASSWORD).await;
    assert_eq!(session_count(&node, &user.id).await, 1);
}

async fn unknown_address_and_wrong_password_answers_are_byte_identical(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let known = address("exists");
    create_user(&node, &known, PASSWORD).await;
    let wrong = api.login(&known, WRONG).await;
    let unknown = api.login(&address("missing"), WRONG).await;
    // An implausible address (it can never have an account) answers the same too.
    let implausible = api.login(&format!("not an address {}", unique()), WRONG).await;
    for other in [&unknown, &implausible] {
        assert_eq!(other.status, wrong.status);
        assert_eq!(other.text.as_bytes(), wrong.text.as_bytes());
        let names = |r: &Reply| {
            let mut names: Vec<String> = r
                .headers
                .keys()
                .map(|k| k.as_str().to_owned())
                .filter(|k| k != "date" && k != "x-request-id")
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(other), names(&wrong));
        for name in [CONTENT_TYPE.as_str(), "content-length", "cache-control"] {
            assert_eq!(other.header(name), wrong.header(name), "{name}");
        }
    }
    assert_eq!(
        wrong.json,
        json!({
            "type": "urn:tessera:problem:invalid-credentials",
            "title": "Invalid credentials",
            "status": 401,
            "detail": "the e-mail address or the password is wrong",
            "code": "invalid_credentials",
            "captchaRequired": false,
        })
    );
}

// --- 3. Idempotency-Key ----------------------------------------------------------------------

backend_tests!(
    a_repeated_signup_key_creates_one_account_and_one_email,
    a_repeated_forgot_key_sends_one_email,
);

async fn a_repeated_signup_key_creates_one_account_and_one_email(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let api = Api::new(&node);
    let email = address("idem");
    let body = json!({"email": email, "password": PASSWORD});
    let key = format!("signup-{}", unique());
    let signup = |key: String, body: Value| {
        let request = api
            .post("/auth/signup")
            .header("idempotency-key", key)
            .json(&body);
        send(request)
    };

    let first = signup(key.clone(), body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json, json!({"email": email}));
    assert!(first.header("idempotency-replayed").is_none(), "{first:?}");
    let again = signup(key.clone(), body.clone()).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    mails(&sink, &email, VERIFY_SUBJECT, 1).await;
    assert_mail_count(&sink, 1).await;
    assert_eq!(user_count(&node).await, 1);

    // The same key with another body is a client bug: 422, and nothing happens.
    let other = json!({"email": address("idem-other"), "password": PASSWORD});
    signup(key.clone(), other).await.assert_problem(422, None);
    assert_eq!(user_count(&node).await, 1);

    // A failed request is not remembered: the same key works once the body is fixed.
    let retry_key = format!("retry-{}", unique());
    let second = address("idem-retry");
    signup(
        retry_key.clone(),
        json!({"email": second, "password": "password1"}),
    )
    .await
    .assert_problem(400, Some("password_too_weak"));
    let fixed = signup(retry_key, json!({"email": second, "password": PASSWORD})).await;
    assert_eq!(fixed.status, 201, "{}", fixed.text);
    assert!(fixed.header("idempotency-replayed").is_none());

    // Key length: 255 characters is fine; empty or 256 is refused before anything runs.
    let longest = format!("{}{}", unique(), "k".repeat(255 - 16));
    let third = address("idem-255");
    let reply = signup(longest, json!({"email": third, "password": PASSWORD})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    for bad in [String::new(), "k".repeat(256)] {
        let reply = signup(bad, json!({"email": address("idem-bad"), "password": PASSWORD})).await;
        reply.assert_problem(400, None);
    }
    assert_eq!(user_count(&node).await, 3);
    mails(&sink, &second, VERIFY_SUBJECT, 1).await;
    mails(&sink, &third, VERIFY_SUBJECT, 1).await;
    assert_mail_count(&sink, 3).await;
}

async fn a_repeated_forgot_key_sends_one_email(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let api = Api::new(&node);
    let email = address("idem-forgot");
    create_user(&node, &email, PASSWORD).await;
    let key = format!("forgot-{}", unique());
    let forgot = || {
        send(
            api.post("/auth/password/forgot")
                .header("idempotency-key", key.clone())
                .json(&json!({"email": email})),
        )
    };
    let first = forgot().await;
    assert_eq!((first.status, &first.json), (202, &json!({})), "{}", first.text);
    let again = forgot().await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    let token = mailed_token(&sink, &email, RESET_SUBJECT, 1, "/auth/password/reset").await;
    assert_mail_count(&sink, 1).await;
    // The one link that was sent works.
    let reply = api.reset(&token, OTHER_PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

// --- 4. Malformed input ----------------------------------------------------------------------

backend_tests!(malformed_bodies_are_refused_without_side_effects);

async fn malformed_bodies_are_refused_without_side_effects(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let api = Api::new(&node);
    let email = address("malformed");
    create_user(&node, &email, PASSWORD).await;
    let (access, _) = api.login_ok(&email, PASSWORD).await;

    // (path, needs a Bearer token, a body missing one field, that field)
    let endpoints: [(&str, bool, Value, &str); 6] = [
        (
            "/auth/signup",
            false,
            json!({"email": address("never")}),
            "password",
        ),
        ("/auth/login", false, json!({"password": PASSWORD}), "email"),
        (
            "/auth/reissue",
            false,
            json!({"refreshToken": "tsr_x"}),
            "accessToken",
        ),
        ("/auth/password/forgot", false, json!({}), "email"),
        ("/auth/password/reset", false, json!({"token": "x"}), "password"),
        (
            "/auth/password/change",
            true,
            json!({"currentPassword": PASSWORD}),
            "newPassword",
        ),
    ];
    for (path, bearer, missing, field) in endpoints {
        let with_auth = |request: reqwest::RequestBuilder| {
            if bearer {
                request.bearer_auth(&access)
            } else {
                request
            }
        };
        let json_post = || with_auth(api.post(path)).header(CONTENT_TYPE, "application/json");

        let reply = send(json_post().body(r#"{"email": "a@example.com", "password": "#)).await;
        reply.assert_problem(400, Some("invalid_request"));
        assert_eq!(reply.json["detail"], "malformed JSON", "{path}");
        // The message names the position and field, never the value.
        let reply = send(json_post().body(r#"{"email": ["a"], "password": "s3cr3t-v4lue"}"#)).await;
        reply.assert_problem(400, Some("invalid_request"));
        assert!(!reply.text.contains("s3cr3t"), "{path}: {}", reply.text);

        let reply = send(with_auth(api.post(path)).json(&missing)).await;
        reply.assert_problem(400, Some("invalid_request"));
        let detail = reply.json["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("`{field}`")),
            "{path}: {detail:?} does not name {field}"
        );

        let valid = r#"{"email":"a@example.com","password":"correct horse battery staple 42"}"#;
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let mut request = with_auth(api.post(path)).body(valid);
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, content_type);
            }
            send(request).await.assert_problem(415, None);
        }

        // 10 MB, far over the 1 MiB limit: refused as problem JSON.
        let mut big = String::with_capacity(10 * 1024 * 1024 + 64);
        big.push_str(r#"{"email":"a@example.com","password":""#);
        big.push_str(&"p".repeat(10 * 1024 * 1024));
        big.push_str(r#""}"#);
        let reply = post_oversized(&node, path, bearer.then_some(access.as_str()), big.into_bytes()).await;
        reply.assert_problem(413, None);
        assert_eq!(reply.json["type"], "urn:tessera:problem:payload-too-large");
        assert_eq!(reply.header("connection"), Some("close"), "{path}");
    }
    // Reissue without a refresh token (in the body or a cookie) names the missing field too.
    let reply = api
        .post_json("/auth/reissue", &json!({"accessToken": access}))
        .await;
    reply.assert_problem(400, None);
    assert!(
        reply.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`refreshToken`")),
        "{}",
        reply.text
    );

    // Nothing was created, nothing mailed, and the session that sent the requests lives.
    assert_eq!(user_count(&node).await, 1);
    assert_mail_count(&sink, 0).await;
    assert_eq!(api.me(&access).await, 200);
    // The password is unchanged and the account not locked by any of it.
    api.login_ok(&email, PASSWORD).await;
}

// --- 5. E-mail normalisation -----------------------------------------------------------------

backend_tests!(addresses_are_one_account_whatever_their_case_space_or_unicode_form);

async fn addresses_are_one_account_whatever_their_case_space_or_unicode_form(backend: Backend) {
    // Logins without verification, so that the non-ASCII address needs no mail: the test
    // sink does not offer SMTPUTF8, which a non-ASCII recipient needs.
    let Some((node, sink)) = spawn_with_mail_and(backend, |config| {
        config.accounts.require_verified_email = false;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&node);
    let id = unique();
    let bob = format!("bob.{id}@example.com");

    let reply = api.signup(&format!("Bob.{id}@Example.COM"), PASSWORD).await;
    assert_eq!(
        (reply.status, &reply.json),
        (201, &json!({"email": bob})),
        "{}",
        reply.text
    );
    let token = mailed_token(&sink, &bob, VERIFY_SUBJECT, 1, "/auth/verify-email").await;
    assert_eq!(api.verify(&token).await.status, 200);
    let (access, _) = api.login_ok(&format!("  {bob} "), PASSWORD).await;
    let me = api.get("/api/member/me", Some(&access)).await;
    assert_eq!(me.json, json!({"email": bob}));
    api.login_ok(&format!("\tBOB.{}@EXAMPLE.com\n", id.to_uppercase()), PASSWORD)
        .await;

    // "é" decomposed at signup (e + U+0301), composed (U+00E9) at login.
    let decomposed = format!("jose\u{301}.{id}@example.com");
    let composed = format!("jos\u{e9}.{id}@example.com");
    let reply = api.signup(&decomposed, PASSWORD).await;
    assert_eq!(
        (reply.status, &reply.json),
        (201, &json!({"email": composed})),
        "{}",
        reply.text
    );
    assert_eq!(
        stored_user(&node, &composed).await.expect("stored").email,
        composed
    );
    api.login_ok(&composed, PASSWORD).await;
    api.login_ok(&decomposed.to_uppercase(), PASSWORD).await;
    // The composed form at signup is the same account.
    let reply = api.signup(&composed, OTHER_PASSWORD).await;
    assert_eq!(
        (reply.status, &reply.json),
        (201, &json!({"email": composed})),
        "{}",
        reply.text
    );
    assert_eq!(user_count(&node).await, 2);

    // The same address again, in capitals: the same 201, no second account, and a notice
    // instead of a verification link. The existing password is untouched.
    let reply = api
        .signup(&format!("BOB.{}@example.com", id.to_uppercase()), OTHER_PASSWORD)
        .await;
    assert_eq!(
        (reply.status, &reply.json),
        (201, &json!({"email": bob})),
        "{}",
        reply.text
    );
    let notice = mails(&sink, &bob, EXISTS_SUBJECT, 1).await;
    assert!(
        link_token(&notice[0].body, "/auth/verify-email").is_none(),
        "{}",
        notice[0].body
    );
    assert!(
        notice[0].body.contains("/auth/password/forgot"),
        "{}",
        notice[0].body
    );
    tokio::time::sleep(QUIET).await;
    let to_bob: Vec<String> = sink
        .messages()
        .into_iter()
        .filter(|m| m.to == bob)
        .map(|m| m.subject)
        .collect();
    assert_eq!(to_bob, [VERIFY_SUBJECT, EXISTS_SUBJECT]);
    assert_eq!(user_count(&node).await, 2);
    api.login(&bob, OTHER_PASSWORD)
        .await
        .assert_problem(401, Some("invalid_credentials"));
    api.login_ok(&bob, PASSWORD).await;
    api.login(&composed, OTHER_PASSWORD)
        .await
        .assert_problem(401, Some("invalid_credentials"));
}

// --- 6. SQL metacharacters -------------------------------------------------------------------

backend_tests!(sql_metacharacters_are_only_data);

async fn sql_metacharacters_are_only_data(backend: Backend) {
    let Some(node) = spawn_with(backend, |config| {
        config.accounts.require_verified_email = false;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&node);
    let tricky_password = r#"Tr1cky'"; DROP TABLE users; -- \\ \' back\slash " OR ""=""#;

    // The suffix keeps the addresses' login counters (shared through Redis) to this run.
    let id = unique();
    for invalid in [
        format!("x'; DROP TABLE users; --{id}@example.com"),
        format!("\" OR 1=1 --{id}"),
        format!("' OR '1'='1{id}"),
        format!("admin{id}'--"),
        format!("a@b'); DELETE FROM users; --{id}"),
    ] {
        api.signup(&invalid, tricky_password)
            .await
            .assert_problem(400, Some("invalid_email"));
        api.login(&invalid, tricky_password)
            .await
            .assert_problem(401, Some("invalid_credentials"));
    }
    assert_eq!(user_count(&node).await, 0);

    let odd = [
        format!("o'brien+{id}@example.com"),
        format!("x'or'1'='1.{id}@example.com"),
        format!("back\\slash'--{id}@example.com"),
        format!("%{id}@example.com"),
    ];
    for email in &odd {
        let reply = api.signup(email, tricky_password).await;
        assert_eq!(
            (reply.status, &reply.json),
            (201, &json!({"email": email})),
            "{}",
            reply.text
        );
    }
    for email in &odd {
        let (access, _) = api.login_ok(email, tricky_password).await;
        let me = api.get("/api/member/me", Some(&access)).await;
        assert_eq!(me.json, json!({"email": email}));
        // The stored address is exactly what was sent, quotes and backslashes included.
        assert_eq!(stored_user(&node, email).await.expect("stored").email, *email);
    }
    // `%` is no wildcard: another address with the same password is unknown.
    api.login(&format!("anything{id}@example.com"), tricky_password)
        .await
        .assert_problem(401, Some("invalid_credentials"));
    // The users table still works.
    assert_eq!(user_count(&node).await, 4);
    let plain = address("plain");
    assert_eq!(api.signup(&plain, PASSWORD).await.status, 201);
    api.login_ok(&plain, PASSWORD).await;
    assert_eq!(user_count(&node).await, 5);
}

// --- 7. One-time links and tokens ------------------------------------------------------------

backend_tests!(
    verification_links_are_single_use_personal_and_expire,
    reset_and_verification_links_are_not_interchangeable,
    a_newer_reset_request_invalidates_the_older_link,
    reissue_with_two_users_tokens_is_refused_and_spends_nothing,
);

async fn verification_links_are_single_use_personal_and_expire(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let api = Api::new(&node);
    let alice = address("alice");
    let bob = address("bob");
    assert_eq!(api.signup(&alice, PASSWORD).await.status, 201);
    assert_eq!(api.signup(&bob, PASSWORD).await.status, 201);
    let alice_token = mailed_token(&sink, &alice, VERIFY_SUBJECT, 1, "/auth/verify-email").await;
    mails(&sink, &bob, VERIFY_SUBJECT, 1).await;

    // Alice's link verifies Alice, and only her.
    let reply = api.verify(&alice_token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json, json!({"email": alice, "verified": true}));
    assert!(stored_user(&node, &alice)
        .await
        .unwrap()
        .email_verified_at
        .is_some());
    assert!(stored_user(&node, &bob)
        .await
        .unwrap()
        .email_verified_at
        .is_none());
    api.login(&bob, PASSWORD)
        .await
        .assert_problem(403, Some("email_not_verified"));
    // Used once: used up.
    api.verify(&alice_token)
        .await
        .assert_problem(400, Some("invalid_link"));
    // Made-up and empty tokens.
    api.verify("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .assert_problem(400, Some("invalid_link"));
    api.get("/auth/verify-email?token=", None)
        .await
        .assert_problem(400, None);

    // A link older than 24 hours is refused, and the address stays unverified.
    let late = address("late");
    assert_eq!(api.signup(&late, PASSWORD).await.status, 201);
    let late_token = mailed_token(&sink, &late, VERIFY_SUBJECT, 1, "/auth/verify-email").await;
    node.clock.advance(24 * 3600 + 1);
    api.verify(&late_token)
        .await
        .assert_problem(400, Some("invalid_link"));
    assert!(stored_user(&node, &late)
        .await
        .unwrap()
        .email_verified_at
        .is_none());
}

async fn reset_and_verification_links_are_not_interchangeable(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let api = Api::new(&node);
    let email = address("crosswise");
    assert_eq!(api.signup(&email, PASSWORD).await.status, 201);
    let verify_token = mailed_token(&sink, &email, VERIFY_SUBJECT, 1, "/auth/verify-email").await;
    assert_eq!(api.forgot(&email).await.status, 202);
    let reset_token = mailed_token(&sink, &email, RESET_SUBJECT, 1, "/auth/password/reset").await;

    // Each used for the other's purpose: refused, and neither is spent by the attempt.
    api.verify(&reset_token)
        .await
        .assert_problem(400, Some("invalid_link"));
    assert!(stored_user(&node, &email)
        .await
        .unwrap()
        .email_verified_at
        .is_none());
    api.reset(&verify_token, OTHER_PASSWORD)
        .await
        .assert_problem(400, Some("invalid_link"));
    api.login(&email, OTHER_PASSWORD)
        .await
        .assert_problem(401, Some("invalid_credentials"));

    assert_eq!(api.verify(&verify_token).await.status, 200);
    let reply = api.reset(&reset_token, OTHER_PASSWORD).await;
    assert_eq!(
        (reply.status, &reply.json),
        (200, &json!({"email": email})),
        "{}",
        reply.text
    );
    // Replays of both.
    api.verify(&verify_token)
        .await
        .assert_problem(400, Some("invalid_link"));
    api.reset(&reset_token, "amber kettle sings over mountains 19")
        .await
        .assert_problem(400, Some("invalid_link"));
    api.login_ok(&email, OTHER_PASSWORD).await;
}

async fn a_newer_reset_request_invalidates_the_older_link(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail(backend).await else {
        return;
    };
    let api = Api::new(&node);
    let email = address("newer");
    create_user(&node, &email, PASSWORD).await;
    assert_eq!(api.forgot(&email).await.status, 202);
    let older = mailed_token(&sink, &email, RESET_SUBJECT, 1, "/auth/password/reset").await;
    assert_eq!(api.forgot(&email).await.status, 202);
    let newer = mailed_token(&sink, &email, RESET_SUBJECT, 2, "/auth/password/reset").await;
    assert_ne!(older, newer);

    api.reset(&older, OTHER_PASSWORD)
        .await
        .assert_problem(400, Some("invalid_link"));
    api.login_ok(&email, PASSWORD).await;
    let reply = api.reset(&newer, OTHER_PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    api.login_ok(&email, OTHER_PASSWORD).await;
    // A reset link expires after 30 minutes.
    assert_eq!(api.forgot(&email).await.status, 202);
    let expired = mailed_token(&sink, &email, RESET_SUBJECT, 3, "/auth/password/reset").await;
    node.clock.advance(30 * 60 + 1);
    api.reset(&expired, "amber kettle sings over mountains 19")
        .await
        .assert_problem(400, Some("invalid_link"));
    api.login_ok(&email, OTHER_PASSWORD).await;
}

async fn reissue_with_two_users_tokens_is_refused_and_spends_nothing(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let alice = address("pair-a");
    let bob = address("pair-b");
    create_user(&node, &alice, PASSWORD).await;
    create_user(&node, &bob, PASSWORD).await;
    let (alice_access, alice_refresh) = api.login_ok(&alice, PASSWORD).await;
    let (bob_access, bob_refresh) = api.login_ok(&bob, PASSWORD).await;

    let reply = api.reissue(&alice_access, &bob_refresh).await;
    reply.assert_problem(401, None);
    assert!(reply
        .header(WWW_AUTHENTICATE)
        .is_some_and(|v| v.starts_with("Bearer")));
    let reply = api.reissue(&bob_access, &alice_refresh).await;
    reply.assert_problem(401, None);
    // Garbage in either place.
    api.reissue("not-a-jwt", &bob_refresh)
        .await
        .assert_problem(401, None);
    api.reissue(&bob_access, "tsr_not-a-token")
        .await
        .assert_problem(401, None);

    // Neither refresh token was spent (nor taken for reuse): both still work.
    let reply = api.reissue(&bob_access, &bob_refresh).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let bob_new = reply.json["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(api.me(&bob_new).await, 200);
    let reply = api.reissue(&alice_access, &alice_refresh).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let alice_new = reply.json["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(api.me(&alice_new).await, 200);
}

// --- 8. Password policy ----------------------------------------------------------------------

backend_tests!(each_policy_violation_has_its_code_and_a_sentence);

async fn each_policy_violation_has_its_code_and_a_sentence(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);

    let cases = [
        (
            "short1!".to_owned(),
            "password_too_short",
            "at least 8 characters",
        ),
        ("p".repeat(257), "password_too_long", "at most 256 bytes"),
        ("password123".to_owned(), "password_too_weak", "too easy to guess"),
        // 7 characters of 4 bytes each: long in bytes, short in characters.
        (
            "\u{1F600}".repeat(7),
            "password_too_short",
            "at least 8 characters",
        ),
        // 86 three-byte characters: 258 bytes, though only 86 characters.
        ("\u{AC00}".repeat(86), "password_too_long", "at most 256 bytes"),
    ];
    for (password, code, sentence) in &cases {
        let reply = api.signup(&address("policy"), password).await;
        reply.assert_problem(400, Some(code));
        assert_eq!(reply.json["type"], "urn:tessera:problem:password-policy");
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(detail.contains(sentence), "{code}: {detail:?}");
        assert!(
            !detail.contains(password.as_str()),
            "the detail repeats the password"
        );
        if *code == "password_too_weak" {
            assert!(reply.json["suggestions"].is_array(), "{}", reply.text);
        }
    }
    // A password built from the address is weak too.
    let id = unique();
    let reply = api
        .signup(&format!("zanzibar{id}@example.com"), &format!("zanzibar{id}"))
        .await;
    reply.assert_problem(400, Some("password_too_weak"));
    // Exactly 256 bytes is accepted.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let longest: String = (0..256)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [((state >> 33) % 62) as usize],
            )
        })
        .collect();
    assert_eq!(longest.len(), 256);
    let reply = api.signup(&address("longest"), &longest).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(user_count(&node).await, 1);

    // Reuse, on change and on reset.
    let email = address("reuse");
    create_user(&node, &email, PASSWORD).await;
    let (access, _) = api.login_ok(&email, PASSWORD).await;
    let reply = api
        .post_json_bearer(
            "/auth/password/change",
            &json!({"currentPassword": PASSWORD, "newPassword": PASSWORD}),
            &access,
        )
        .await;
    reply.assert_problem(400, Some("password_reused"));
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("used recently") && detail.contains('5'),
        "{detail:?}"
    );
    let reply = api
        .post_json_bearer(
            "/auth/password/change",
            &json!({"currentPassword": PASSWORD, "newPassword": "short"}),
            &access,
        )
        .await;
    reply.assert_problem(400, Some("password_too_short"));
    // Nothing changed.
    api.login_ok(&email, PASSWORD).await;
    assert_eq!(user_count(&node).await, 2);
}

// --- 9. Disable and enable -------------------------------------------------------------------

backend_tests!(disabling_ends_access_at_once_and_enabling_restores_login);

async fn disabling_ends_access_at_once_and_enabling_restores_login(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let email = address("disable");
    let user = create_user(&node, &email, PASSWORD).await;
    let (access, refresh) = api.login_ok(&email, PASSWORD).await;
    let (access2, _) = api.login_ok(&email, PASSWORD).await;
    assert_eq!(api.me(&access).await, 200);

    let ended = node
        .state
        .accounts
        .disable(&format!(" {} ", email.to_uppercase()), &context())
        .await
        .expect("disable");
    assert_eq!(ended, 2);
    assert!(stored_user(&node, &email).await.unwrap().disabled_at.is_some());

    // At once: no waiting for the access token to expire.
    assert_eq!(api.me(&access).await, 401);
    assert_eq!(api.me(&access2).await, 401);
    api.reissue(&access, &refresh).await.assert_problem(401, None);
    api.login(&email, PASSWORD)
        .await
        .assert_problem(403, Some("account_disabled"));
    // Without the right password nothing tells that the account is disabled.
    api.login(&email, WRONG)
        .await
        .assert_problem(401, Some("invalid_credentials"));
    assert_eq!(session_count(&node, &user.id).await, 0);

    node.state
        .accounts
        .enable(&email, &context())
        .await
        .expect("enable");
    let (access3, _) = api.login_ok(&email, PASSWORD).await;
    assert_eq!(api.me(&access3).await, 200);
    // The sessions ended by disabling stay ended.
    assert_eq!(api.me(&access).await, 401);
    api.reissue(&access, &refresh).await.assert_problem(401, None);
}

// --- 10. The refresh-token cookie -----------------------------------------------------------

backend_tests!(a_cookie_delivered_refresh_token_reissues_from_the_cookie);

/// The `tessera_refresh` cookie set by `reply`: (value, the whole header). A login also sets
/// the device cookie (`tessera_device`, see alerts.rs); it is not this one's business.
fn refresh_cookie(reply: &Reply) -> (String, String) {
    let cookies: Vec<&str> = reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|c| !c.starts_with("tessera_device="))
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = cookies[0];
    let value = cookie
        .strip_prefix("tessera_refresh=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not the refresh cookie: {cookie}"));
    (value.to_owned(), cookie.to_owned())
}

fn assert_refresh_cookie_attributes(cookie: &str) {
    let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
    for expected in ["Path=/auth", "HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(attributes.contains(&expected), "{expected} missing: {cookie}");
    }
    let max_age = attributes
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap_or_else(|| panic!("no Max-Age: {cookie}"));
    assert!(max_age.parse::<u64>().is_ok_and(|s| s > 0), "{cookie}");
}

async fn a_cookie_delivered_refresh_token_reissues_from_the_cookie(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let email = address("cookie");
    let user = create_user(&node, &email, PASSWORD).await;

    let login = api
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD, "refreshTokenDelivery": "cookie"}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(login.json.get("refreshToken").is_none(), "{}", login.text);
    assert!(login.json["accessToken"].is_string());
    let (refresh, cookie) = refresh_cookie(&login);
    assert!(refresh.starts_with("tsr_"), "{cookie}");
    assert_refresh_cookie_attributes(&cookie);
    let access = login.json["accessToken"].as_str().unwrap().to_owned();

    let reissue = send(
        api.post("/auth/reissue")
            .header(COOKIE, format!("theme=dark; tessera_refresh={refresh}; other=1"))
            .json(&json!({"accessToken": access})),
    )
    .await;
    assert_eq!(reissue.status, 200, "{}", reissue.text);
    assert!(reissue.json.get("refreshToken").is_none(), "{}", reissue.text);
    let (renewed, cookie) = refresh_cookie(&reissue);
    assert_ne!(renewed, refresh, "the cookie's token was not rotated");
    assert_refresh_cookie_attributes(&cookie);
    let access2 = reissue.json["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(api.me(&access2).await, 200);
    // The renewed cookie works the next time.
    let again = send(
        api.post("/auth/reissue")
            .header(COOKIE, format!("tessera_refresh={renewed}"))
            .json(&json!({"accessToken": access2})),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text);

    // An unknown delivery is refused before any session starts.
    let sessions = session_count(&node, &user.id).await;
    let reply = api
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD, "refreshTokenDelivery": "bogus"}),
        )
        .await;
    reply.assert_problem(400, None);
    assert!(reply.headers.get(SET_COOKIE).is_none());
    assert_eq!(session_count(&node, &user.id).await, sessions);
}

async fn logout_clears_the_refresh_cookie(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let email = address("logout-cookie");
    create_user(&node, &email, PASSWORD).await;
    let login = api
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD, "refreshTokenDelivery": "cookie"}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let (refresh, _) = refresh_cookie(&login);
    let access = login.json["accessToken"].as_str().unwrap().to_owned();

    let logout = send(
        api.post("/auth/logout")
            .bearer_auth(&access)
            .header(COOKIE, format!("tessera_refresh={refresh}")),
    )
    .await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    assert_eq!(api.me(&access).await, 401);
    let (value, cookie) = refresh_cookie(&logout);
    assert!(value.is_empty(), "{cookie}");
    assert!(cookie.split("; ").any(|a| a == "Max-Age=0"), "{cookie}");
    assert!(cookie.split("; ").any(|a| a == "Path=/auth"), "{cookie}");
}

// --- 11. Channels ----------------------------------------------------------------------------

backend_tests!(a_login_names_its_channel);

async fn a_login_names_its_channel(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let api = Api::new(&node);
    let email = address("channel");
    let user = create_user(&node, &email, PASSWORD).await;

    let reply = api
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD, "channel": "mobile"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let access = reply.json["accessToken"].as_str().unwrap().to_owned();
    let sessions = api.get("/auth/sessions", Some(&access)).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    let list = sessions.json["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", sessions.text);
    assert_eq!(list[0]["channel"], "mobile");
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[0]["clientId"], "tessera-first-party");
    let me = api.get("/auth/me", Some(&access)).await;
    assert_eq!(me.json["channel"], "mobile", "{}", me.text);

    // Without a channel: the first-party client's (web).
    let (web, _) = api.login_ok(&email, PASSWORD).await;
    assert_eq!(api.get("/auth/me", Some(&web)).await.json["channel"], "web");

    // An unknown channel: 400, and no session.
    let reply = api
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD, "channel": "satellite"}),
        )
        .await;
    reply.assert_problem(400, None);
    assert!(reply.text.contains("satellite"), "{}", reply.text);
    assert_eq!(session_count(&node, &user.id).await, 2);
}

// --- Regression tests for bugs these tests found (fixed) -------------------------------

/// `Retry-After` is the least a client must wait (RFC 9110 §10.2.3): waiting exactly that
/// long must be enough.
async fn waiting_retry_after_seconds_is_enough(backend: Backend) {
    let Some(node) = spawn_with(backend, |config| {
        config.login.lockout_secs = 2;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&node);
    let email = address("retry-after");
    create_user(&node, &email, PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(api.login(&email, WRONG).await.status, 401);
    }
    let locked = api.login(&email, PASSWORD).await;
    locked.assert_problem(429, Some("too_many_attempts"));
    let wait = locked.retry_after();
    assert!(wait <= 2, "Retry-After {wait} for a 2 s lockout");
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(50)).await;
    let reply = api.login(&email, PASSWORD).await;
    assert_eq!(reply.status, 200, "waited Retry-After {wait} s: {}", reply.text);
}

/// Credential stuffing: many accounts, one address, all at once.
async fn a_parallel_burst_across_accounts_gets_no_more_checks_than_the_per_ip_limit(backend: Backend) {
    let Some(node) = spawn_with(backend, |config| {
        config.login.max_failures_per_ip = 3;
        config.login.window_secs = 60;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&node);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = api
            .post("/auth/login")
            .json(&json!({"email": address("ip-burst"), "password": WRONG}));
        burst.spawn(send(request));
    }
    let mut checked = 0;
    while let Some(reply) = burst.join_next().await {
        let reply = reply.expect("task");
        match reply.status {
            401 => checked += 1,
            429 => reply.assert_problem(429, Some("too_many_attempts")),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert!(
        checked <= 3,
        "{checked} passwords were checked in a burst from one address (limit 3)"
    );
}
