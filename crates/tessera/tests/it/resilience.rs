//! A node when what it depends on fails (issue 7): Redis unreachable (keeps serving on
//! per-node state, stricter throttling, `/readyz` "degraded"), PostgreSQL unreachable (fast
//! 503 with `Retry-After`, public keys still served, recovery on its own), client addresses
//! behind trusted proxies, and scheduled key rotation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tessera_idp::clock::Clock;
use tessera_idp::secret::Secret;
use tessera_store::durable::{AuditQuery, AuditStore, ClusterStore, SessionStore};
use tessera_testkit::{spawn_with, Backend, TestNode};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PASSWORD: &str = "correct horse battery staple 7";

/// Nothing listens on port 1: a Redis there is down from the start.
const DEAD_REDIS: &str = "redis://127.0.0.1:1";

async fn login(
    node: &TestNode,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = node
        .client
        .post(node.at("/auth/login"))
        .json(&json!({ "email": email, "password": password }));
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    request.send().await.unwrap()
}

/// A node whose Redis is down: `/readyz` says degraded (200, so a balancer keeps it), and
/// logins, refreshes and API calls work as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_node_serves_degraded() {
    let node = spawn_with(Backend::Sqlite, |c| c.redis_url = Some(Secret::new(DEAD_REDIS)))
        .await
        .unwrap();
    let (status, ready) = node.get_json("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["ephemeral"]["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["ephemeral"]["backend"], "redis", "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "ok", "{ready}");

    node.create_user("degraded@example.com", PASSWORD).await;
    let response = login(&node, "degraded@example.com", PASSWORD, None).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let (status, me) = node
        .get_bearer("/api/member/me", tokens["accessToken"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{me}");
    let (status, _, reissued) = node
        .post_json(
            "/auth/reissue",
            &json!({ "accessToken": tokens["accessToken"], "refreshToken": tokens["refreshToken"] }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{reissued}");
    // Rotation and reuse detection live in the database: once the successor is used, the
    // old token is reuse, with or without Redis.
    let (status, _, _) = node
        .post_json(
            "/auth/reissue",
            &json!({ "accessToken": reissued["accessToken"], "refreshToken": reissued["refreshToken"] }),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = node
        .post_json(
            "/auth/reissue",
            &json!({ "accessToken": reissued["accessToken"], "refreshToken": tokens["refreshToken"] }),
            None,
        )
        .await;
    assert_eq!(status, 401);

    // The embedded default has no Redis to lose: never degraded.
    let plain = spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    let (status, ready) = plain.get_json("/readyz").await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (200, Some("ready")),
        "{ready}"
    );
}

/// While counting per node, the login limit is divided among the live nodes, so the
/// cluster as a whole never allows more failures than with Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_throttling_is_stricter_not_looser() {
    let node = spawn_with(Backend::Sqlite, |c| {
        c.redis_url = Some(Secret::new(DEAD_REDIS));
        c.login.max_failures = 5;
    })
    .await
    .unwrap();
    node.create_user("victim@example.com", PASSWORD).await;
    // Two more nodes are alive (their heartbeats are in the shared database).
    let now = node.clock.now();
    for peer in ["peer-1", "peer-2"] {
        node.state.db.heartbeat(peer, now, now, now - 15).await.unwrap();
    }
    assert_eq!(node.state.cluster.heartbeat().await.unwrap(), 3);
    // 5 failures allowed in the cluster, 3 nodes: 1 per node.
    let first = login(&node, "victim@example.com", "wrong password 1", None).await;
    assert_eq!(first.status(), 401);
    let second = login(&node, "victim@example.com", PASSWORD, None).await;
    assert_eq!(
        second.status(),
        429,
        "locked after 5 / 3 = 1 failure on this node"
    );
    assert!(second.headers().contains_key("retry-after"));

    // Alone, the same degraded node allows the whole limit.
    let alone = spawn_with(Backend::Sqlite, |c| {
        c.redis_url = Some(Secret::new(DEAD_REDIS));
        c.login.max_failures = 5;
    })
    .await
    .unwrap();
    alone.create_user("alone@example.com", PASSWORD).await;
    for n in 0..4 {
        let response = login(&alone, "alone@example.com", &format!("wrong {n}"), None).await;
        assert_eq!(response.status(), 401, "failure {n}");
    }
    assert_eq!(
        login(&alone, "alone@example.com", PASSWORD, None).await.status(),
        200
    );
}

async fn last_login_ip(node: &TestNode) -> Option<String> {
    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            event: Some("login.failed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    records.first().and_then(|r| r.ip.clone())
}

/// Behind a trusted proxy the client address comes from `X-Forwarded-For` (its right-most
/// untrusted entry); from anyone else the header is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addresses_behind_trusted_proxies() {
    let behind = spawn_with(Backend::Sqlite, |c| {
        c.http.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await
    .unwrap();
    behind.create_user("proxied@example.com", PASSWORD).await;
    login(&behind, "proxied@example.com", "wrong", Some("203.0.113.50")).await;
    assert_eq!(last_login_ip(&behind).await.as_deref(), Some("203.0.113.50"));
    // A client-written prefix does not count: only what the proxy appended does.
    login(
        &behind,
        "proxied@example.com",
        "wrong",
        Some("198.51.100.1, 203.0.113.51"),
    )
    .await;
    assert_eq!(last_login_ip(&behind).await.as_deref(), Some("203.0.113.51"));
    // Per-IP throttling sees the real clients: one exhausting its limit leaves others alone.
    let ip_limit = behind.config.login.max_failures_per_ip;
    for n in 0..ip_limit {
        login(
            &behind,
            &format!("nobody{n}@example.com"),
            "wrong",
            Some("192.0.2.66"),
        )
        .await;
    }
    let throttled = login(&behind, "proxied@example.com", PASSWORD, Some("192.0.2.66")).await;
    assert_eq!(throttled.status(), 429);
    let other = login(&behind, "proxied@example.com", PASSWORD, Some("192.0.2.77")).await;
    assert_eq!(other.status(), 200);

    // Without trusted proxies the header is a client's claim and ignored.
    let direct = spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    direct.create_user("direct@example.com", PASSWORD).await;
    login(&direct, "direct@example.com", "wrong", Some("203.0.113.50")).await;
    assert_eq!(last_login_ip(&direct).await.as_deref(), Some("127.0.0.1"));
}

/// Keys are rotated on schedule, once per age, with an audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_on_schedule() {
    let node = spawn_with(Backend::Sqlite, |c| {
        c.keys.rotate_after_secs = 7200;
        c.keys.prepublish_secs = 60;
    })
    .await
    .unwrap();
    let published = |node: &TestNode| node.state.keys.jwks().keys.len();
    let before = published(&node);
    assert_eq!(tessera_idp::node::rotate_due_keys(&node.state).await.unwrap(), 0);
    node.clock.advance(7199);
    assert_eq!(tessera_idp::node::rotate_due_keys(&node.state).await.unwrap(), 0);
    node.clock.advance(1);
    // The node's own leased job may get to some algorithms first (it checks on its own
    // schedule); together they rotate each algorithm exactly once.
    let made = tessera_idp::node::rotate_due_keys(&node.state).await.unwrap();
    assert!(made <= 3, "{made}");
    assert_eq!(tessera_idp::node::rotate_due_keys(&node.state).await.unwrap(), 0);
    node.state.keys.reload().await.unwrap();
    assert_eq!(
        published(&node),
        before + 3,
        "one new, pre-published key per algorithm"
    );
    let records = node
        .state
        .db
        .audit_records(&AuditQuery {
            event: Some("key.rotated".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].actor.as_deref(), Some("system"));
}

/// A TCP forwarder to PostgreSQL that can be cut (every connection dropped, nothing
/// accepted) and restored on the same port.
struct Cuttable {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(target: &str) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Cuttable {
            port: listener.local_addr().unwrap().port(),
            target: target.to_owned(),
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

/// PostgreSQL unreachable: requests that need it fail fast with 503 + `Retry-After` in the
/// protocol's format, readiness says so, the public keys are still served (verifiers keep
/// working), and the node recovers on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_postgres_requests_fail_fast_and_recover() {
    let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
        eprintln!("skipped: TESSERA_TEST_DATABASE_URL not set");
        return;
    };
    let authority = reqwest::Url::parse(&base).unwrap();
    let target = format!(
        "{}:{}",
        authority.host_str().unwrap(),
        authority.port().unwrap_or(5432)
    );
    let proxy = Cuttable::start(&target).await;
    let port = proxy.port;
    let node = spawn_with(Backend::Postgres, |c| {
        let url =
            c.database_url
                .as_ref()
                .unwrap()
                .expose()
                .replacen(&target, &format!("127.0.0.1:{port}"), 1);
        c.database_url = Some(Secret::new(url));
        c.database.acquire_timeout_secs = 2;
    })
    .await
    .unwrap();
    node.create_user("outage@example.com", PASSWORD).await;
    assert_eq!(
        login(&node, "outage@example.com", PASSWORD, None).await.status(),
        200
    );

    proxy.cut();
    let started = std::time::Instant::now();
    let response = login(&node, "outage@example.com", PASSWORD, None).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 503, "{problem}");
    // Bounded by the acquire timeout, not by the request timeout (30 s): reported, not
    // asserted tightly (no wall-clock assertions in tests).
    eprintln!("503 after {waited:?} with database.acquire_timeout_secs = 2");
    assert!(waited < Duration::from_secs(25), "{waited:?}");
    let token_endpoint = node
        .client
        .post(node.at("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token_endpoint.status(), 503);
    assert!(token_endpoint.headers().contains_key("retry-after"));
    let body: Value = token_endpoint.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    let (status, ready) = node.get_json("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "unavailable");
    // What verifiers need is served from memory.
    let (status, jwks) = node.get_json("/.well-known/jwks.json").await;
    assert_eq!(status, 200);
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    assert_eq!(node.get("/.well-known/openid-configuration").await.status(), 200);

    proxy.restore().await;
    let mut recovered = false;
    for _ in 0..50 {
        if login(&node, "outage@example.com", PASSWORD, None).await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the node did not recover when PostgreSQL came back");
    let (status, _) = node.get_json("/readyz").await;
    assert_eq!(status, 200);
}

/// PostgreSQL refuses a NUL character in text. A request carrying one is malformed input —
/// a 4xx in the protocol's format that changes nothing — never a 503 that reads as an
/// outage (found with curl; the admin API had the same bug, fixed by id checks there). A
/// login with such an address never reaches the database: it cannot have an account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_bad_requests_not_outages() {
    let Some(node) = tessera_testkit::spawn(Backend::Postgres).await else {
        return;
    };
    node.create_user("nul@example.com", PASSWORD).await;
    // From an address of its own: the per-IP counters of 127.0.0.1 on the shared Redis
    // carry other tests' failures.
    let client = reqwest::Client::builder()
        .local_address(tessera_testkit::loopback_ip())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |email: String| {
        let request = client
            .post(node.at("/auth/login"))
            .json(&json!({ "email": email, "password": PASSWORD }));
        async move { request.send().await.unwrap() }
    };
    let sessions_before = node
        .state
        .db
        .count_alive_sessions(node.clock.now())
        .await
        .unwrap();

    // An address with a NUL is implausible: the same answer as an unknown account, without
    // a lookup (unique per run: the account's attempt counter on the shared Redis persists).
    let implausible = format!("nul\u{0}{}@example.com", tessera_testkit::random_u64());
    let response = login(implausible).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    let token = node
        .client
        .post(node.at("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "a\u{0}b"),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");

    let authorize = node
        .get("/oauth2/authorize?client_id=a%00b&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb")
        .await;
    assert_eq!(authorize.status(), 400);
    assert!(authorize.headers().get("location").is_none());

    // Nothing changed, and the store was never considered down.
    let (status, ready) = node.get_json("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let sessions_after = node
        .state
        .db
        .count_alive_sessions(node.clock.now())
        .await
        .unwrap();
    assert_eq!(sessions_before, sessions_after);
    assert_eq!(login("nul@example.com".to_owned()).await.status(), 200);
}
