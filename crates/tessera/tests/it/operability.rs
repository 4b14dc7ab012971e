//! Operability (R19, R20): Prometheus metrics at `/metrics`, the audit trail through
//! `GET /admin/audit`, and `tessera audit tail` as a process.
//!
//! The metrics recorder is global to a process, and the tests of this binary run in
//! parallel: in-process tests check that series exist and grow by *at least* what they did.
//! Exact counts are checked on the real binary, a process of its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tessera_idp::registry::{ClientRegistry, ClientSpec};
use tessera_testkit::{backend_tests, spawn, spawn_with, Backend, Process, TestClient, TestNode};

backend_tests!(
    metrics_expose_requests_logins_and_tokens,
    metrics_can_be_disabled,
    admin_audit_needs_the_admin_scope,
    admin_audit_filters_and_pages_newest_first,
);

const PASSWORD: &str = "correct horse battery staple 42";
const EXIT: Duration = Duration::from_secs(60);
const READY: Duration = Duration::from_secs(60);

// --- Prometheus text ----------------------------------------------------------------------

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (0.0.4): comments skipped, labels unescaped.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels in {line:?}"));
                (name.to_owned(), parse_labels(body))
            }
        };
        samples.push(Sample { name, labels, value });
    }
    samples
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "label {key} is not quoted in {body}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

/// The sum of the samples of `name` whose labels include every pair of `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn has_series(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

/// No label value contains any of `secrets` (ids, addresses, tokens, raw paths).
fn assert_no_label_contains(samples: &[Sample], secrets: &[&str]) {
    for sample in samples {
        for (key, value) in &sample.labels {
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                assert!(
                    !value.contains(secret),
                    "{}{{{key}={value:?}}} contains {secret:?}",
                    sample.name
                );
            }
        }
    }
}

async fn scrape(client: &reqwest::Client, base: &str) -> (String, Vec<Sample>) {
    let response = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let samples = parse_metrics(&text);
    (text, samples)
}

// --- In-process: metrics -----------------------------------------------------------------

async fn metrics_expose_requests_logins_and_tokens(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let email = "metrics-user@example.com";
    let user_id = node.create_user(email, PASSWORD).await;
    let (_, before) = scrape(&node.client, &node.url).await;

    let login = json!({"email": email, "password": PASSWORD});
    let (status, _, pair) = node.post_json("/auth/login", &login, None).await;
    assert_eq!(status, 200, "{pair}");
    let wrong = json!({"email": email, "password": "not the password at all"});
    let (status, _, _) = node.post_json("/auth/login", &wrong, None).await;
    assert_eq!(status, 401);
    let (status, _, pair2) = node
        .post_json(
            "/auth/reissue",
            &json!({"accessToken": pair["accessToken"], "refreshToken": pair["refreshToken"]}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{pair2}");
    let secret_path = "/no-such-page/metrics-user-secret";
    let response = node
        .client
        .get(node.at(&format!("{secret_path}?token=query-secret")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    tessera_idp::telemetry::refresh_gauges(&node.state).await;
    // A readiness check measures the stores' round trips.
    let (status, _) = node.get_json("/readyz").await;
    assert_eq!(status, 200);
    let (text, after) = scrape(&node.client, &node.url).await;

    // Other tests of this process count too: at least what this one did.
    let grew = |name: &str, with: &[(&str, &str)], by: f64| {
        let delta = value(&after, name, with) - value(&before, name, with);
        assert!(
            delta >= by,
            "{name}{with:?} grew by {delta}, expected at least {by}\n{text}"
        );
    };
    grew("tessera_logins_total", &[("outcome", "success")], 1.0);
    grew("tessera_logins_total", &[("outcome", "invalid_credentials")], 1.0);
    grew("tessera_tokens_issued_total", &[("grant_type", "login")], 1.0);
    grew(
        "tessera_tokens_issued_total",
        &[("grant_type", "refresh_token")],
        1.0,
    );
    let login_route = [("route", "/auth/login"), ("method", "POST")];
    grew(
        "tessera_http_requests_total",
        &[login_route[0], login_route[1], ("status", "200")],
        1.0,
    );
    grew(
        "tessera_http_requests_total",
        &[login_route[0], login_route[1], ("status", "401")],
        1.0,
    );
    grew(
        "tessera_http_requests_total",
        &[("route", "unmatched"), ("method", "GET"), ("status", "404")],
        1.0,
    );
    grew(
        "tessera_http_request_duration_seconds_count",
        &[("route", "/auth/login")],
        2.0,
    );
    grew("tessera_password_hash_duration_seconds_count", &[], 2.0);
    grew(
        "tessera_store_round_trip_seconds_count",
        &[("store", "database")],
        1.0,
    );
    if node.config.redis_url.is_some() {
        grew(
            "tessera_store_round_trip_seconds_count",
            &[("store", "redis")],
            1.0,
        );
    }
    grew(
        "tessera_audit_events_total",
        &[("event", "login.failed"), ("outcome", "failure")],
        1.0,
    );
    grew(
        "tessera_audit_events_total",
        &[("event", "token.refreshed"), ("outcome", "success")],
        1.0,
    );
    // Histograms are histograms (buckets), not summaries.
    assert!(
        text.contains("tessera_http_request_duration_seconds_bucket{route=\"/auth/login\",le=\""),
        "{text}"
    );
    assert!(text.contains("# HELP tessera_logins_total "), "{text}");
    // Every fixed counter series exists from the start, at zero or more.
    for name in [
        "tessera_refresh_reuse_detected_total",
        "tessera_lockouts_total",
        "tessera_store_errors_total",
    ] {
        assert!(has_series(&after, name), "{name} missing\n{text}");
    }
    // Gauges.
    for alg in ["ES256", "RS256", "EdDSA"] {
        let age = after
            .iter()
            .find(|s| {
                s.name == "tessera_signing_key_age_seconds"
                    && s.labels.get("alg").map(String::as_str) == Some(alg)
            })
            .unwrap_or_else(|| panic!("no key age for {alg}\n{text}"));
        assert!(age.value >= 0.0);
    }
    assert!(has_series(&after, "tessera_active_sessions"), "{text}");
    assert!(has_series(&after, "tessera_ready"), "{text}");
    if node.config.redis_url.is_some() {
        // Every node of this process that sets it has Redis, and Redis is up.
        assert_eq!(value(&after, "tessera_redis_up", &[]), 1.0, "{text}");
    }

    // No label carries a user, a session, a token or a raw path.
    let session_id = node
        .state
        .tokens
        .sessions_of(&user_id)
        .await
        .unwrap()
        .first()
        .map(|s| s.id.clone())
        .unwrap_or_default();
    assert!(!session_id.is_empty());
    assert_no_label_contains(
        &after,
        &[
            &user_id,
            email,
            &session_id,
            pair["accessToken"].as_str().unwrap(),
            pair["refreshToken"].as_str().unwrap(),
            pair2["refreshToken"].as_str().unwrap(),
            secret_path,
            "query-secret",
            "127.0.0.1",
        ],
    );
    // Every route label is a template of the router or `unmatched`.
    for sample in after.iter().filter(|s| s.name == "tessera_http_requests_total") {
        let route = &sample.labels["route"];
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "unexpected route label {route:?}"
        );
    }
}

async fn metrics_can_be_disabled(backend: Backend) {
    let Some(node) = spawn_with(backend, |config| config.metrics.enabled = false).await else {
        return;
    };
    let response = node.get("/metrics").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    // The rest of the node works as ever.
    let (status, _) = node.get_json("/readyz").await;
    assert_eq!(status, 200);
}

// --- In-process: the audit API ----------------------------------------------------------------

const AUDIT: &str = "/admin/audit";

async fn admin_token(node: &TestNode) -> (TestClient, String) {
    node.admin_token("audit-console").await
}

async fn client_token(node: &TestNode, client: &TestClient, scope: &str) -> String {
    node.client_credentials_token(client, scope).await
}

async fn get_audit(node: &TestNode, query: &str, token: Option<&str>) -> (u16, HeaderMap, Value) {
    let path = if query.is_empty() {
        AUDIT.to_owned()
    } else {
        format!("{AUDIT}?{query}")
    };
    let mut request = node.client.get(node.at(&path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn admin_audit_needs_the_admin_scope(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, admin) = admin_token(&node).await;

    // No token: 401 with a Bearer challenge.
    let (status, headers, problem) = get_audit(&node, "", None).await;
    assert_eq!(status, 401, "{problem}");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(headers["content-type"], "application/problem+json");
    // A garbled token: 401 invalid_token.
    let (status, headers, _) = get_audit(&node, "", Some("not-a-jwt")).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    let forbidden = |status: u16, headers: &HeaderMap, problem: &Value| {
        assert_eq!(status, 403, "{problem}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
        assert!(challenge.contains("scope=\"tessera:admin\""), "{challenge}");
        assert_eq!(headers["content-type"], "application/problem+json");
    };
    // A user's token: 403.
    let email = "audit-reader@example.com";
    node.create_user(email, PASSWORD).await;
    let (status, _, pair) = node
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{pair}");
    let (status, headers, problem) = get_audit(&node, "", pair["accessToken"].as_str()).await;
    forbidden(status, &headers, &problem);
    // A client token without the scope: 403.
    let (record, secret) = ClientRegistry::new(&node.state)
        .create(ClientSpec {
            client_id: Some("reports".into()),
            client_name: Some("Reports".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            scope: Some("reports:read".into()),
            ..ClientSpec::default()
        })
        .await
        .unwrap();
    let reports = TestClient {
        client_id: record.client_id,
        secret,
    };
    let token = client_token(&node, &reports, "reports:read").await;
    let (status, headers, problem) = get_audit(&node, "", Some(&token)).await;
    forbidden(status, &headers, &problem);

    // The admin: 200, never cached.
    let (status, headers, page) = get_audit(&node, "", Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    let events = page["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["event"] == "login.succeeded"), "{page}");
    assert!(events.iter().any(|e| e["event"] == "client.created"), "{page}");
    assert!(page["next_cursor"].is_null(), "{page}");
}

async fn admin_audit_filters_and_pages_newest_first(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (admin, token) = admin_token(&node).await;
    let token = Some(token.as_str());
    let t0 = tessera_idp::clock::Clock::now(node.clock.as_ref());

    let alice = node.create_user("alice@example.com", PASSWORD).await;
    let bob = node.create_user("bob@example.com", PASSWORD).await;
    node.clock.advance(100);
    let t1 = t0 + 100;
    let mut secrets = vec![PASSWORD.to_owned(), admin.secret.clone().unwrap()];
    for email in ["alice@example.com", "bob@example.com"] {
        let (status, _, pair) = node
            .post_json(
                "/auth/login",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{pair}");
        secrets.push(pair["accessToken"].as_str().unwrap().to_owned());
        secrets.push(pair["refreshToken"].as_str().unwrap().to_owned());
        node.clock.advance(10);
    }
    let (status, _, _) = node
        .post_json(
            "/auth/login",
            &json!({"email": "alice@example.com", "password": "a wrong password here"}),
            None,
        )
        .await;
    assert_eq!(status, 401);

    let events = |page: &Value| -> Vec<Value> { page["events"].as_array().unwrap().clone() };
    let field =
        |events: &[Value], name: &str| -> Vec<Value> { events.iter().map(|e| e[name].clone()).collect() };

    // Everything, newest first, with every field.
    let (status, _, all) = get_audit(&node, "limit=500", token).await;
    assert_eq!(status, 200, "{all}");
    let all = events(&all);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let failed = all.iter().find(|e| e["event"] == "login.failed").unwrap();
    for key in [
        "id",
        "at",
        "event",
        "outcome",
        "actor",
        "subject",
        "session_id",
        "client_id",
        "ip",
        "user_agent",
        "request_id",
        "detail",
    ] {
        assert!(failed.get(key).is_some(), "{key} missing from {failed}");
    }
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["detail"], json!({"reason": "invalid_credentials"}));
    assert_eq!(failed["ip"], "127.0.0.1");
    assert!(failed["request_id"].is_string());
    // No secret anywhere in the trail.
    let text = serde_json::to_string(&all).unwrap();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "the audit trail shows a secret");
    }

    // By type.
    let (_, _, page) = get_audit(&node, "type=login.succeeded", token).await;
    let succeeded = events(&page);
    assert_eq!(field(&succeeded, "subject"), [json!(bob), json!(alice)]);
    // By user, and by user and type.
    let (_, _, page) = get_audit(&node, &format!("user={alice}"), token).await;
    let of_alice = events(&page);
    assert!(of_alice.iter().all(|e| e["subject"] == json!(alice)), "{page}");
    let kinds: Vec<Value> = field(&of_alice, "event");
    for kind in ["user.created", "session.created", "login.succeeded"] {
        assert!(kinds.contains(&json!(kind)), "{kinds:?}");
    }
    let (_, _, page) = get_audit(&node, &format!("user={alice}&type=user.created"), token).await;
    assert_eq!(events(&page).len(), 1);
    // By time: since inclusive, until exclusive.
    let (_, _, page) = get_audit(&node, &format!("since={t1}"), token).await;
    let later = events(&page);
    assert!(!later.is_empty());
    assert!(later.iter().all(|e| e["at"].as_i64().unwrap() >= t1), "{page}");
    assert!(!later.iter().any(|e| e["event"] == "user.created"));
    let (_, _, page) = get_audit(&node, &format!("until={t1}"), token).await;
    let earlier = events(&page);
    assert!(earlier.iter().all(|e| e["at"].as_i64().unwrap() < t1), "{page}");
    assert_eq!(earlier.iter().filter(|e| e["event"] == "user.created").count(), 2);
    assert_eq!(later.len() + earlier.len(), all.len());
    let (_, _, page) = get_audit(&node, &format!("since={t1}&until={}", t1 + 10), token).await;
    assert_eq!(
        field(&events(&page), "subject")
            .iter()
            .filter(|s| **s == json!(alice))
            .count(),
        events(&page).len(),
        "{page}"
    );

    // Paging: pages of 2 with the cursor give everything once, in order.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("limit=2&cursor={cursor}"),
            None => "limit=2".to_owned(),
        };
        let (status, _, page) = get_audit(&node, &query, token).await;
        assert_eq!(status, 200, "{page}");
        let chunk = events(&page);
        assert!(chunk.len() <= 2);
        paged.extend(chunk);
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    // The admin's own token request and the pages themselves may have added records since
    // `all` was read; those are newer than every record of `all`.
    let tail: Vec<&Value> = paged
        .iter()
        .filter(|e| e["id"].as_i64().unwrap() <= ids[0])
        .collect();
    assert_eq!(tail.len(), all.len());
    assert!(tail.iter().zip(&all).all(|(a, b)| *a == b));
    // Paging with a filter.
    let (_, _, first) = get_audit(&node, "type=user.created&limit=1", token).await;
    assert_eq!(field(&events(&first), "subject"), [json!(bob)]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, second) = get_audit(
        &node,
        &format!("type=user.created&limit=1&cursor={cursor}"),
        token,
    )
    .await;
    assert_eq!(field(&events(&second), "subject"), [json!(alice)]);
    assert!(second["next_cursor"].is_null(), "{second}");

    // Bad parameters: 400 problem documents naming the parameter.
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=-5", "cursor"),
        ("since=yesterday", "since"),
        ("until=1.5", "until"),
        ("since=200&until=100", "until"),
        ("type=Login%20Failed", "type"),
        ("user=a&user=b", "user"),
        ("subject=a", "subject"),
    ] {
        let (status, headers, problem) = get_audit(&node, query, token).await;
        assert_eq!(status, 400, "{query}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json", "{query}");
        assert_eq!(problem["status"], 400, "{query}");
        assert_eq!(problem["parameter"], parameter, "{query}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(parameter),
            "{query}: {problem}"
        );
    }
}

// --- Processes: exact metrics, `tessera audit tail` -----------------------------------------------

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

/// A temp working directory whose data directory the commands share.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![(
            "TESSERA_DATA_DIR".to_owned(),
            self.dir.path().join("data").display().to_string(),
        )];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// Runs `tessera args…` to completion; it must succeed. Returns stdout.
    async fn ok(&self, args: &[&str], extra: &[(&str, &str)]) -> String {
        let finished = Process::run_in(binary(), self.dir.path(), args, &self.env(extra), EXIT).await;
        assert!(
            finished.status.success(),
            "tessera {args:?} failed:\n{}\n{}",
            finished.stdout,
            finished.stderr
        );
        assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
        finished.stdout
    }

    /// `tessera user create`; returns the new user's id.
    async fn create_user(&self, email: &str, verified: bool) -> String {
        let mut args = vec!["user", "create", "--email", email];
        if verified {
            args.push("--verified");
        }
        let out = self.ok(&args, &[("TESSERA_USER_PASSWORD", PASSWORD)]).await;
        out.split_whitespace().next().unwrap().to_owned()
    }
}

/// Waits (at most 30 s) until `process` printed `n` lines; returns how many it printed.
async fn wait_for_lines(process: &Process, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = process.stdout().lines().count();
    while lines < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines = process.stdout().lines().count();
    }
    lines
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[tokio::test]
async fn a_process_counts_logins_tokens_and_reuse_exactly() {
    let sandbox = Sandbox::new();
    let settings = [
        ("TESSERA_LOGIN__MAX_FAILURES", "2"),
        ("TESSERA_TOKENS__REFRESH_GRACE_SECS", "0"),
        ("TESSERA_METRICS__REFRESH_SECS", "1"),
    ];
    let alice = sandbox.create_user("alice@example.com", true).await;
    sandbox.create_user("bob@example.com", true).await;
    sandbox.create_user("carol@example.com", false).await;
    sandbox.create_user("dave@example.com", true).await;
    sandbox.ok(&["user", "disable", "dave@example.com"], &[]).await;

    let mut env = vec![(
        "TESSERA_DATA_DIR",
        sandbox.dir.path().join("data").display().to_string(),
    )];
    env.extend(settings.iter().map(|(k, v)| (*k, v.to_string())));
    let mut process = Process::serve_in(binary(), sandbox.dir.path(), &env);
    process.wait_ready(READY).await;
    let base = process.url.clone();
    let http = reqwest::Client::new();
    let login = |email: &str, password: &str| {
        let request = http
            .post(format!("{base}/auth/login"))
            .json(&json!({"email": email, "password": password}));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let reissue = |access: &Value, refresh: &Value| {
        let request = http
            .post(format!("{base}/auth/reissue"))
            .json(&json!({"accessToken": access, "refreshToken": refresh}));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (_, start) = scrape(&http, &base).await;
    for outcome in [
        "success",
        "invalid_credentials",
        "throttled",
        "locked",
        "email_not_verified",
        "disabled",
    ] {
        assert_eq!(
            value(&start, "tessera_logins_total", &[("outcome", outcome)]),
            0.0,
            "{outcome}"
        );
    }

    let (status, pair) = login("alice@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(login("alice@example.com", "wrong password entirely").await.0, 401);
    // Bob: two failures lock the account; the right password is then refused unchecked.
    assert_eq!(login("bob@example.com", "wrong password entirely").await.0, 401);
    assert_eq!(login("bob@example.com", "wrong password entirely").await.0, 401);
    let (status, _) = login("bob@example.com", PASSWORD).await;
    assert!(status == 429 || status == 401, "{status}");
    assert_ne!(login("carol@example.com", PASSWORD).await.0, 200);
    assert_ne!(login("dave@example.com", PASSWORD).await.0, 200);
    let (status, pair2) = reissue(&pair["accessToken"], &pair["refreshToken"]).await;
    assert_eq!(status, 200, "{pair2}");

    // The gauge follows the store within `metrics.refresh_secs`.
    let wait_for_sessions = |expected: f64| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (text, samples) = scrape(&http, &base).await;
                if value(&samples, "tessera_active_sessions", &[]) == expected {
                    return samples;
                }
                assert!(
                    Instant::now() < deadline,
                    "active sessions never became {expected}:\n{text}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for_sessions(1.0).await;
    // The spent refresh token again: theft; the session ends.
    let (status, _) = reissue(&pair2["accessToken"], &pair["refreshToken"]).await;
    assert_eq!(status, 401);
    wait_for_sessions(0.0).await;
    let response = http
        .get(format!("{base}/nope/alice?token=query-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let (text, end) = scrape(&http, &base).await;
    let exactly = |name: &str, with: &[(&str, &str)], expected: f64| {
        assert_eq!(value(&end, name, with), expected, "{name}{with:?}\n{text}");
    };
    for (outcome, n) in [
        ("success", 1.0),
        ("invalid_credentials", 3.0),
        ("throttled", 0.0),
        ("locked", 1.0),
        ("email_not_verified", 1.0),
        ("disabled", 1.0),
    ] {
        exactly("tessera_logins_total", &[("outcome", outcome)], n);
    }
    exactly("tessera_lockouts_total", &[], 1.0);
    exactly("tessera_refresh_reuse_detected_total", &[], 1.0);
    for (grant, n) in [
        ("login", 1.0),
        ("refresh_token", 1.0),
        ("authorization_code", 0.0),
        ("client_credentials", 0.0),
        ("password", 0.0),
    ] {
        exactly("tessera_tokens_issued_total", &[("grant_type", grant)], n);
    }
    // Argon2 ran once per checked password: alice twice, bob twice (not when locked),
    // carol and dave once each.
    exactly("tessera_password_hash_duration_seconds_count", &[], 6.0);
    exactly(
        "tessera_http_requests_total",
        &[("route", "/auth/login"), ("method", "POST")],
        7.0,
    );
    exactly(
        "tessera_http_requests_total",
        &[("route", "/auth/login"), ("method", "POST"), ("status", "200")],
        1.0,
    );
    exactly(
        "tessera_http_request_duration_seconds_count",
        &[("route", "/auth/login")],
        7.0,
    );
    exactly(
        "tessera_http_requests_total",
        &[("route", "/auth/reissue"), ("method", "POST")],
        2.0,
    );
    exactly(
        "tessera_http_requests_total",
        &[("route", "unmatched"), ("method", "GET"), ("status", "404")],
        1.0,
    );
    for (event, outcome, n) in [
        ("login.failed", "failure", 6.0),
        ("login.locked", "failure", 1.0),
        ("login.succeeded", "success", 1.0),
        ("token.refreshed", "success", 1.0),
        ("token.reuse_detected", "failure", 1.0),
        ("session.revoked", "success", 1.0),
    ] {
        exactly(
            "tessera_audit_events_total",
            &[("event", event), ("outcome", outcome)],
            n,
        );
    }
    exactly("tessera_store_errors_total", &[], 0.0);
    exactly("tessera_ready", &[], 1.0);
    assert!(
        !has_series(&end, "tessera_redis_up"),
        "no Redis, no gauge:\n{text}"
    );
    for alg in ["ES256", "RS256", "EdDSA"] {
        let age = value(&end, "tessera_signing_key_age_seconds", &[("alg", alg)]);
        assert!((0.0..3600.0).contains(&age), "{alg}: {age}");
    }
    assert_no_label_contains(
        &end,
        &[
            &alice,
            "alice",
            "example.com",
            pair["accessToken"].as_str().unwrap(),
            pair["refreshToken"].as_str().unwrap(),
            pair2["refreshToken"].as_str().unwrap(),
            "query-secret",
            "/nope",
        ],
    );
}

#[tokio::test]
async fn audit_tail_prints_json_lines_filters_and_follows() {
    let sandbox = Sandbox::new();
    let alice = sandbox.create_user("alice@example.com", true).await;
    let created = sandbox
        .ok(
            &[
                "client",
                "create",
                "--name",
                "Ops",
                "--client-id",
                "ops",
                "--grant",
                "client_credentials",
                "--scope",
                "tessera:admin",
                "--json",
            ],
            &[],
        )
        .await;
    let client_secret = serde_json::from_str::<Value>(&created).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();

    // The newest records, oldest of them first, one JSON object per line.
    let out = sandbox.ok(&["audit", "tail", "--json"], &[]).await;
    let records = json_lines(&out);
    let events: Vec<&str> = records.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["user.created", "client.created"], "{out}");
    assert_eq!(records[0]["subject"], json!(alice));
    assert_eq!(records[0]["actor"], "operator");
    assert_eq!(records[1]["client_id"], "ops");
    assert!(records[0]["id"].as_i64().unwrap() < records[1]["id"].as_i64().unwrap());
    for key in [
        "id",
        "at",
        "event",
        "outcome",
        "actor",
        "subject",
        "client_id",
        "detail",
    ] {
        assert!(records[1].get(key).is_some(), "{key} missing: {out}");
    }
    assert!(!out.contains(&client_secret), "the trail shows a client secret");
    assert!(!out.contains(PASSWORD), "the trail shows a password");

    // Filters and limit.
    let out = sandbox
        .ok(&["audit", "tail", "--json", "--type", "client.created"], &[])
        .await;
    assert_eq!(json_lines(&out).len(), 1, "{out}");
    let out = sandbox
        .ok(&["audit", "tail", "--json", "--user", &alice], &[])
        .await;
    let mine = json_lines(&out);
    assert_eq!(mine.len(), 1, "{out}");
    assert_eq!(mine[0]["event"], "user.created");
    let out = sandbox
        .ok(&["audit", "tail", "--json", "--limit", "1"], &[])
        .await;
    assert_eq!(json_lines(&out)[0]["event"], "client.created", "{out}");
    // Text: one line per record, with the time and the event.
    let out = sandbox.ok(&["audit", "tail"], &[]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("user.created") && lines[0].contains(&format!("subject={alice}")),
        "{out}"
    );
    assert!(
        lines[0].starts_with("20") && lines[0].contains('T') && lines[0].contains('Z'),
        "{out}"
    );
    // A bad flag: one error line, no panic.
    let finished = Process::run_in(
        binary(),
        sandbox.dir.path(),
        &["audit", "tail", "--limit", "0"],
        &sandbox.env(&[]),
        EXIT,
    )
    .await;
    assert!(!finished.status.success());
    assert!(finished.stderr.contains("--limit"), "{}", finished.stderr);

    // --follow: prints what is there, then what arrives, until interrupted.
    let mut follow = Process::start_in(
        binary(),
        sandbox.dir.path(),
        &["audit", "tail", "--follow", "--json", "--type", "user.created"],
        &sandbox.env(&[]),
    );
    assert_eq!(
        wait_for_lines(&follow, 1).await,
        1,
        "{}\n{}",
        follow.stdout(),
        follow.stderr()
    );
    let bob = sandbox.create_user("bob@example.com", true).await;
    // An event of another type is not printed; the next user is.
    sandbox.ok(&["user", "disable", "bob@example.com"], &[]).await;
    let carol = sandbox.create_user("carol@example.com", true).await;
    assert_eq!(
        wait_for_lines(&follow, 3).await,
        3,
        "{}\n{}",
        follow.stdout(),
        follow.stderr()
    );
    let records = json_lines(&follow.stdout());
    let subjects: Vec<&Value> = records.iter().map(|r| &r["subject"]).collect();
    assert_eq!(subjects, [&json!(alice), &json!(bob), &json!(carol)]);
    follow.signal("INT");
    let status = follow
        .wait_exit(EXIT)
        .await
        .expect("tail --follow did not stop on SIGINT");
    assert!(status.success(), "{status}: {}", follow.stderr());
    assert_eq!(json_lines(&follow.stdout()).len(), 3);
}
