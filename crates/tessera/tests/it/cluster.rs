//! The cluster proof (issue 7): three `tessera serve` processes on one PostgreSQL schema and
//! one Redis, behind a real HAProxy (round-robin, no stickiness), behave as one identity
//! provider. Every process is really started and really killed:
//!
//! - a login on node 1, a refresh on node 2 and a revocation on node 3 are seen by every node
//!   and by a `tessera gateway` process within its poll interval;
//! - five wrong passwords spread over the three nodes lock the account everywhere;
//! - Redis SIGKILLed and restarted during a loop of logins and refreshes through HAProxy: no
//!   request fails, `/readyz` says "degraded" and then "ready", throttling stays active during
//!   the outage and is shared again after it;
//! - node 2 SIGKILLed during a loop of logins, refreshes and API calls through HAProxy: only
//!   requests in flight on it may fail, no session is lost, and no refresh family ends up
//!   with two live tokens (checked in PostgreSQL).
//!
//! Needs PostgreSQL (`TESSERA_TEST_DATABASE_URL`), `haproxy` and `redis-server`; the test
//! starts its own Redis on a free port and never touches the shared one. Without PostgreSQL
//! it is skipped; without haproxy or redis-server it is skipped with a message, unless
//! `TESSERA_REQUIRE_INTEROP=1` (CI) makes that a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{json, Value};
use tessera_testkit::{free_port, PgSchema, Process, DATABASE_URL_VAR};

/// Base64 of the 32 bytes `tessera-cluster-proof-master-k01` (every node needs the same).
const MASTER_KEY: &str = "dGVzc2VyYS1jbHVzdGVyLXByb29mLW1hc3Rlci1rMDE=";
const PASSWORD: &str = "correct horse battery staple 42";
const WRONG: &str = "not the password at all 42";
const READY: Duration = Duration::from_secs(60);
/// The gateway's revocation poll interval.
const POLL_SECS: u64 = 1;
/// `login.max_failures` (the default, stated here because the test counts against it).
const MAX_FAILURES: usize = 5;
/// Concurrent clients in the load loops.
const WORKERS: usize = 8;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

/// `program` if it runs here (`program -v` / `--version` succeeds).
fn tool(program: &str, version_flag: &str) -> Option<PathBuf> {
    let candidates = [
        PathBuf::from(program),
        Path::new("/usr/sbin").join(program),
        Path::new("/usr/bin").join(program),
    ];
    candidates.into_iter().find(|p| {
        Command::new(p)
            .arg(version_flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The PostgreSQL URL and the two tools, or `None` (with a message) when the test cannot
/// run here. A missing tool is a failure under `TESSERA_REQUIRE_INTEROP=1`.
fn prerequisites() -> Option<(String, PathBuf, PathBuf)> {
    let Ok(database) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("skipped: {DATABASE_URL_VAR} not set (the cluster proof needs PostgreSQL)");
        return None;
    };
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    let haproxy = tool("haproxy", "-v");
    let redis = tool("redis-server", "--version");
    for (name, found) in [("haproxy", &haproxy), ("redis-server", &redis)] {
        if found.is_none() {
            if required {
                panic!("{name} is not installed (Debian: apt-get install {name})");
            }
            eprintln!("skipped: {name} is not installed (Debian: apt-get install {name})");
        }
    }
    Some((database, haproxy?, redis?))
}

/// A `redis-server` child of this test on its own port, without persistence.
struct Redis {
    program: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    async fn start(program: PathBuf, dir: &Path) -> Redis {
        let mut redis = Redis {
            program,
            port: free_port(),
            dir: dir.to_path_buf(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits for `PING`.
    async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis is still running");
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let child = Command::new(&self.program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.pong().await {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer:\n{}",
                std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn pong(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 16];
        stream.write_all(b"PING\r\n").await.is_ok()
            && matches!(stream.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    /// SIGKILL: no shutdown, no goodbye to the clients.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// HAProxy in front of the nodes, in the foreground (`-db`), with a stats listener.
struct Haproxy {
    child: Child,
    stats: String,
    log: PathBuf,
}

impl Haproxy {
    async fn start(program: &Path, dir: &Path, port: u16, nodes: &[u16]) -> Haproxy {
        let stats_port = free_port();
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, p)| format!("    server n{} 127.0.0.1:{p} check\n", i + 1))
            .collect();
        // Retries. HAProxy retries a request on another node (`option redispatch 1`) when
        // the connection to a node fails (`conn-failure`: the node is down and HAProxy does
        // not know yet) and when a node closed the connection without answering
        // (`empty-response`: it died with the request in flight). The second case re-sends
        // requests a dead node may already have carried out, POSTs included. We allow it
        // deliberately: a replayed `POST /auth/reissue` is exactly the lost response the
        // refresh grace window (tokens.refresh_grace_secs) exists for — the retry gets the
        // same successor token, never a second live one (the test checks that in the
        // database); a replayed login creates one extra session; a replayed wrong password
        // counts twice (stricter). Not retried: `response-timeout` (a slow node is still
        // working on the request) and any request after response bytes came back.
        let config = format!(
            "global\n\
             \x20   maxconn 2000\n\
             defaults\n\
             \x20   mode http\n\
             \x20   option forwardfor\n\
             \x20   option http-keep-alive\n\
             \x20   timeout connect 1s\n\
             \x20   timeout client 30s\n\
             \x20   timeout server 15s\n\
             \x20   timeout http-request 10s\n\
             \x20   timeout check 2s\n\
             \x20   retries 2\n\
             \x20   option redispatch 1\n\
             \x20   retry-on conn-failure empty-response\n\
             \x20   default-server inter 250ms fall 2 rise 2\n\
             frontend idp\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   default_backend nodes\n\
             backend nodes\n\
             \x20   balance roundrobin\n\
             \x20   option httpchk\n\
             \x20   http-check send meth GET uri /healthz\n\
             \x20   http-check expect status 200\n\
             {servers}\
             frontend stats\n\
             \x20   bind 127.0.0.1:{stats_port}\n\
             \x20   stats enable\n\
             \x20   stats uri /stats\n"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let log = dir.join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("cannot start haproxy");
        let haproxy = Haproxy {
            child,
            stats: format!("http://127.0.0.1:{stats_port}/stats;csv"),
            log,
        };
        // Up when every node is marked UP by the health checks.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let states = haproxy.server_states().await;
            if states.len() == nodes.len() && states.values().all(|s| s == "UP") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not mark the nodes up: {states:?}\n{}",
                std::fs::read_to_string(&haproxy.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        haproxy
    }

    /// `n1`… → status (`UP`, `DOWN`, `UP 1/2`, …) from the stats CSV.
    async fn server_states(&self) -> BTreeMap<String, String> {
        self.server_stats()
            .await
            .into_iter()
            .map(|(server, mut columns)| (server, columns.remove("status").unwrap_or_default()))
            .collect()
    }

    /// `n1`… → the stats CSV's columns (`status`, `wretr` retries, `wredis` redispatches…).
    async fn server_stats(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let Ok(response) = reqwest::get(&self.stats).await else {
            return BTreeMap::new();
        };
        let text = response.text().await.unwrap_or_default();
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .map(str::to_owned)
            .collect();
        lines
            .map(|line| {
                header
                    .iter()
                    .cloned()
                    .zip(line.split(',').map(str::to_owned))
                    .collect::<BTreeMap<_, _>>()
            })
            .filter(|row| {
                row.get("pxname").is_some_and(|p| p == "nodes")
                    && row.get("svname").is_some_and(|s| s.starts_with('n'))
            })
            .map(|row| (row["svname"].clone(), row))
            .collect()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three nodes on one PostgreSQL schema and one Redis, behind HAProxy.
struct Cluster {
    dir: tempfile::TempDir,
    schema: PgSchema,
    redis: Redis,
    ports: Vec<u16>,
    /// The balancer's address: every node's issuer.
    issuer: String,
    nodes: Vec<Process>,
    lb: Option<Haproxy>,
}

impl Cluster {
    async fn start(database: &str, haproxy: &Path, redis: PathBuf) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let schema = PgSchema::create(database);
        let redis = Redis::start(redis, dir.path()).await;
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let lb_port = free_port();
        let mut cluster = Cluster {
            dir,
            schema,
            redis,
            ports,
            issuer: format!("http://127.0.0.1:{lb_port}"),
            nodes: Vec::new(),
            lb: None,
        };
        cluster.cli(&["migrate"]).await;
        for i in 0..3 {
            let node = Process::start_in(binary(), cluster.dir.path(), &["serve"], &cluster.env(Some(i)));
            cluster.nodes.push(node);
        }
        for (i, node) in cluster.nodes.iter_mut().enumerate() {
            node.url = format!("http://127.0.0.1:{}", cluster.ports[i]);
            node.wait_ready(READY).await;
        }
        cluster.lb = Some(Haproxy::start(haproxy, cluster.dir.path(), lb_port, &cluster.ports).await);
        cluster
    }

    fn lb(&self) -> &Haproxy {
        self.lb.as_ref().expect("haproxy runs")
    }

    /// The environment of node `i` (or of a CLI command, `None`): the same database,
    /// Redis, master key and issuer (the balancer's address) everywhere.
    fn env(&self, node: Option<usize>) -> Vec<(String, String)> {
        let data = match node {
            Some(i) => format!("node{}", i + 1),
            None => "cli".to_owned(),
        };
        let mut env: Vec<(String, String)> = [
            (
                "TESSERA_DATA_DIR",
                self.dir.path().join(data).display().to_string(),
            ),
            ("TESSERA_DATABASE_URL", self.schema.url.clone()),
            ("TESSERA_REDIS_URL", self.redis.url()),
            ("TESSERA_MASTER_KEY", MASTER_KEY.to_owned()),
            ("TESSERA_ISSUER", self.issuer.clone()),
            ("TESSERA_HTTP__TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
            ("TESSERA_LOG__LEVEL", "warn".to_owned()),
            // Argon2 cost down from the default (19 MiB, 2 passes): this test is about
            // coordination, and three nodes plus the load share two cores.
            ("TESSERA_PASSWORDS__ARGON2_MEMORY_KIB", "4096".to_owned()),
            ("TESSERA_PASSWORDS__ARGON2_ITERATIONS", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(i) = node {
            env.push((
                "TESSERA_LISTEN".to_owned(),
                format!("127.0.0.1:{}", self.ports[i]),
            ));
        }
        env
    }

    /// Runs a `tessera` command against the cluster's database, asserting success.
    async fn cli(&self, args: &[&str]) -> String {
        let done = Process::run_in(binary(), self.dir.path(), args, &self.env(None), READY).await;
        assert!(
            done.status.success(),
            "tessera {} failed:\n{}\n{}",
            args.join(" "),
            done.stdout,
            done.stderr
        );
        done.stdout
    }

    async fn create_user(&self, email: &str) {
        self.cli(&[
            "user",
            "create",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--verified",
        ])
        .await;
    }

    fn node_url(&self, i: usize) -> &str {
        &self.nodes[i].url
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!("--- node {} stderr:\n{}\n", i + 1, node.stderr()));
        }
        out.push_str(&format!(
            "--- haproxy:\n{}\n",
            std::fs::read_to_string(&self.lb().log).unwrap_or_default()
        ));
        out
    }

    /// Every node's `/readyz` as (status code, body).
    async fn readiness(&self, client: &reqwest::Client) -> Vec<(u16, Value)> {
        let mut all = Vec::new();
        for node in &self.nodes {
            let response = client.get(format!("{}/readyz", node.url)).send().await.unwrap();
            let status = response.status().as_u16();
            all.push((status, response.json().await.unwrap_or(Value::Null)));
        }
        all
    }

    /// Waits until every node's `/readyz` says `status` (always with 200), at most `limit`.
    async fn await_readiness(&self, client: &reqwest::Client, status: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            let all = self.readiness(client).await;
            for (code, body) in &all {
                assert_eq!(*code, 200, "/readyz while waiting for {status:?}: {body}");
            }
            if all.iter().all(|(_, body)| {
                body["status"] == status
                    && body["checks"]["ephemeral"]["status"] == if status == "ready" { "ok" } else { status }
            }) {
                eprintln!(
                    "every node's /readyz says {status:?} after {:?}",
                    started.elapsed()
                );
                return;
            }
            assert!(
                started.elapsed() < limit,
                "/readyz not {status:?} on every node after {limit:?}: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A token pair as the JSON API returns it.
#[derive(Debug, Clone)]
struct Pair {
    access: String,
    refresh: String,
}

/// What one request answered: the status (0 when no response came) and the body.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value, HeaderMap) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.json().await.unwrap_or(Value::Null);
            (status, body, headers)
        }
        Err(err) => (0, json!({ "transport": err.to_string() }), HeaderMap::new()),
    }
}

async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> (u16, Value, HeaderMap) {
    send(
        client
            .post(format!("{base}/auth/login"))
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

fn pair(body: &Value) -> Option<Pair> {
    Some(Pair {
        access: body["accessToken"].as_str()?.to_owned(),
        refresh: body["refreshToken"].as_str()?.to_owned(),
    })
}

async fn reissue(client: &reqwest::Client, base: &str, tokens: &Pair) -> (u16, Value) {
    let (status, body, _) = send(
        client
            .post(format!("{base}/auth/reissue"))
            .json(&json!({"accessToken": tokens.access, "refreshToken": tokens.refresh})),
    )
    .await;
    (status, body)
}

async fn me(client: &reqwest::Client, base: &str, access: &str) -> (u16, Value) {
    let (status, body, _) = send(client.get(format!("{base}/api/member/me")).bearer_auth(access)).await;
    (status, body)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// An upstream on 127.0.0.1 for the gateway: answers with the subject it was given.
async fn upstream() -> (String, tokio::task::JoinHandle<()>) {
    async fn whoami(headers: HeaderMap) -> axum::Json<Value> {
        let subject = headers
            .get("x-auth-subject")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        axum::Json(json!({ "subject": subject }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(whoami)).await;
    });
    (url, task)
}

/// A `tessera gateway` process whose issuer is the balancer.
async fn start_gateway(dir: &Path, issuer: &str, upstream: &str) -> Process {
    let port = free_port();
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             issuer = \"{issuer}\"\n\
             revocation_poll_secs = {POLL_SECS}\n\
             [[routes]]\n\
             name = \"api\"\n\
             path_prefix = \"/api\"\n\
             upstreams = [\"{upstream}\"]\n"
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let mut gateway = Process::start_in(binary(), dir, &["gateway", "--config", &file], &[]);
    gateway.url = format!("http://127.0.0.1:{port}");
    gateway.wait_ready(READY).await;
    gateway
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_behave_as_one_identity_provider() {
    let Some((database, haproxy, redis)) = prerequisites() else {
        return;
    };
    let started = Instant::now();
    let mut cluster = Cluster::start(&database, &haproxy, redis).await;
    eprintln!("cluster up after {:?}", started.elapsed());

    five_wrong_passwords_on_three_nodes_lock_the_account(&cluster).await;
    login_refresh_and_revocation_on_three_nodes_agree(&cluster).await;
    a_redis_outage_fails_no_login_and_keeps_throttling(&mut cluster).await;
    a_killed_node_loses_only_its_requests_in_flight(&mut cluster).await;
    eprintln!("cluster proof done after {:?}", started.elapsed());
}

/// (c) Five wrong passwords, each sent to a node directly in turn, lock the account on
/// every node: the right password is then refused with 429 and `Retry-After` everywhere.
async fn five_wrong_passwords_on_three_nodes_lock_the_account(cluster: &Cluster) {
    let client = http();
    let email = "locked@example.com";
    cluster.create_user(email).await;
    for attempt in 0..MAX_FAILURES {
        let node = attempt % 3;
        let (status, body, _) = login(&client, cluster.node_url(node), email, WRONG).await;
        assert_eq!(
            status,
            401,
            "wrong password {} on node {}: {body}",
            attempt + 1,
            node + 1
        );
        assert_eq!(body["code"], "invalid_credentials", "{body}");
    }
    for node in 0..3 {
        let (status, body, headers) = login(&client, cluster.node_url(node), email, PASSWORD).await;
        assert_eq!(
            status,
            429,
            "right password on node {} after 5 failures: {body}",
            node + 1
        );
        assert_eq!(body["code"], "too_many_attempts", "{body}");
        let retry: u64 = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(retry >= 1, "no Retry-After on node {}: {headers:?}", node + 1);
    }
    // A control: another account is not affected.
    cluster.create_user("unlocked@example.com").await;
    let (status, body, _) = login(&client, cluster.node_url(1), "unlocked@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    eprintln!("(c) 5 wrong passwords over 3 nodes locked the account on all 3");
}

/// (b) A login on node 1, a refresh on node 2, a revocation on node 3: every node and a
/// gateway process reject the session's access tokens within the poll interval + 1 s, and
/// its refresh token is refused on every node.
async fn login_refresh_and_revocation_on_three_nodes_agree(cluster: &Cluster) {
    let client = http();
    let email = "roaming@example.com";
    cluster.create_user(email).await;
    let (upstream_url, upstream_task) = upstream().await;
    let gateway = start_gateway(cluster.dir.path(), &cluster.issuer, &upstream_url).await;

    let (status, body, _) = login(&client, cluster.node_url(0), email, PASSWORD).await;
    assert_eq!(status, 200, "login on node 1: {body}");
    let first = pair(&body).unwrap();
    let (status, body) = reissue(&client, cluster.node_url(1), &first).await;
    assert_eq!(status, 200, "refresh on node 2: {body}");
    let second = pair(&body).unwrap();
    assert_ne!(first.refresh, second.refresh);
    // Every node, and the gateway, accept both access tokens of the session.
    let (status, who) = me(&client, cluster.node_url(2), &second.access).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["email"], email);
    let (status, session, _) = send(
        client
            .get(format!("{}/auth/me", cluster.node_url(2)))
            .bearer_auth(&second.access),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let sid = session["sessionId"].as_str().unwrap().to_owned();
    for access in [&first.access, &second.access] {
        for node in 0..3 {
            assert_eq!(me(&client, cluster.node_url(node), access).await.0, 200);
        }
        let (status, body) = me(&client, &gateway.url, access).await;
        assert_eq!(
            status,
            200,
            "gateway before the revocation: {body}\n{}",
            gateway.stderr()
        );
        assert_eq!(body["subject"], session["id"], "{body}");
    }

    // Node 3 ends the session.
    let (status, body, _) = send(
        client
            .delete(format!("{}/auth/sessions/{sid}", cluster.node_url(2)))
            .bearer_auth(&second.access),
    )
    .await;
    assert_eq!(status, 204, "DELETE /auth/sessions/{sid} on node 3: {body}");
    let revoked = Instant::now();
    let bound = Duration::from_secs(POLL_SECS + 1);
    let mut pending: BTreeSet<(usize, usize)> = (0..4).flat_map(|v| (0..2).map(move |t| (v, t))).collect();
    let mut seen: BTreeMap<usize, Duration> = BTreeMap::new();
    while !pending.is_empty() {
        for (verifier, token) in pending.clone() {
            let access = if token == 0 { &first.access } else { &second.access };
            let base = if verifier < 3 {
                cluster.node_url(verifier)
            } else {
                gateway.url.as_str()
            };
            let (status, body) = me(&client, base, access).await;
            match status {
                401 => {
                    pending.remove(&(verifier, token));
                    seen.entry(verifier).or_insert(revoked.elapsed());
                }
                200 => {}
                other => panic!("verifier {verifier} answered {other}: {body}"),
            }
        }
        assert!(
            revoked.elapsed() <= bound,
            "still accepted {:?} after {bound:?} (verifier 0-2: nodes, 3: gateway; token 0: login, 1: refreshed); rejected so far: {seen:?}",
            pending,
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "(b) revocation on node 3 rejected by nodes 1-3 and the gateway after {seen:?} (bound {bound:?})"
    );
    // The refresh token is dead on every node (and the rotated one too).
    for node in 0..3 {
        for tokens in [&second, &first] {
            let (status, body) = reissue(&client, cluster.node_url(node), tokens).await;
            assert_eq!(
                status,
                401,
                "refresh after revocation on node {}: {body}",
                node + 1
            );
        }
    }
    drop(gateway);
    upstream_task.abort();
}

/// One failed request in a load loop.
#[derive(Debug, Clone)]
struct Failure {
    worker: usize,
    what: &'static str,
    started: Instant,
    ended: Instant,
    status: u16,
    body: String,
}

/// What a load worker leaves behind: its failures, the number of requests it completed,
/// and the latest token pair of every session it opened.
#[derive(Debug, Default)]
struct Worked {
    failures: Vec<Failure>,
    requests: usize,
    sessions: Vec<Pair>,
}

/// A client of the balancer: logs in, then refreshes and calls the API until `stop`;
/// every `login_every`-th round logs in again (a new session, the old one kept). A failed
/// refresh is retried with the same token, as a real client would after a lost response.
async fn worker(
    base: String,
    email: String,
    index: usize,
    login_every: usize,
    stop: Arc<AtomicBool>,
) -> Worked {
    let client = http();
    let mut worked = Worked::default();
    let mut round = 0usize;
    let fail = |worked: &mut Worked, what: &'static str, started: Instant, status: u16, body: &Value| {
        worked.failures.push(Failure {
            worker: index,
            what,
            started,
            ended: Instant::now(),
            status,
            body: body.to_string(),
        });
    };
    while !stop.load(Ordering::Relaxed) {
        if worked.sessions.is_empty() || (login_every > 0 && round % login_every == 0) {
            let started = Instant::now();
            let (status, body, _) = login(&client, &base, &email, PASSWORD).await;
            worked.requests += 1;
            match (status, pair(&body)) {
                (200, Some(tokens)) => worked.sessions.push(tokens),
                _ => fail(&mut worked, "login", started, status, &body),
            }
        }
        round += 1;
        let Some(current) = worked.sessions.last().cloned() else {
            continue;
        };
        let started = Instant::now();
        let (status, body) = reissue(&client, &base, &current).await;
        worked.requests += 1;
        let current = match (status, pair(&body)) {
            (200, Some(tokens)) => {
                if let Some(last) = worked.sessions.last_mut() {
                    *last = tokens.clone();
                }
                tokens
            }
            _ => {
                fail(&mut worked, "refresh", started, status, &body);
                continue;
            }
        };
        let started = Instant::now();
        let (status, body) = me(&client, &base, &current.access).await;
        worked.requests += 1;
        if status != 200 || body["email"] != email.as_str() {
            fail(&mut worked, "api", started, status, &body);
        }
    }
    worked
}

/// Starts `WORKERS` workers on users `{prefix}-{i}@example.com` (created here).
async fn start_workers(
    cluster: &Cluster,
    prefix: &str,
    login_every: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Worked>> {
    let emails: Vec<String> = (0..WORKERS)
        .map(|i| format!("{prefix}-{i}@example.com"))
        .collect();
    for email in &emails {
        cluster.create_user(email).await;
    }
    emails
        .into_iter()
        .enumerate()
        .map(|(i, email)| {
            tokio::spawn(worker(
                cluster.issuer.clone(),
                email,
                i,
                login_every,
                stop.clone(),
            ))
        })
        .collect()
}

async fn join(workers: Vec<tokio::task::JoinHandle<Worked>>) -> Vec<Worked> {
    let mut all = Vec::new();
    for handle in workers {
        all.push(handle.await.unwrap());
    }
    all
}

/// The live refresh tokens per session in the database: `rotated_at IS NULL`.
async fn live_refresh_tokens(schema_url: &str) -> (BTreeMap<String, i64>, i64) {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(schema_url).await.unwrap();
    let rows = sqlx::query(
        "SELECT s.id AS session_id, \
                (SELECT COUNT(*) FROM refresh_tokens t \
                  WHERE t.session_id = s.id AND t.rotated_at IS NULL) AS live \
         FROM sessions s",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let live = rows
        .iter()
        .map(|r| (r.get::<String, _>("session_id"), r.get::<i64, _>("live")))
        .collect();
    let revoked: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE revoked_at IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get("n");
    let _ = conn.close().await;
    (live, revoked)
}

/// (d) Redis SIGKILLed during a loop of logins and refreshes through HAProxy and started
/// again a few seconds later: no request fails, `/readyz` says "degraded" and then "ready"
/// on every node, wrong passwords still lock an account during the outage, and after it a
/// lock set on one node is seen by the others again.
async fn a_redis_outage_fails_no_login_and_keeps_throttling(cluster: &mut Cluster) {
    let client = http();
    cluster.create_user("outage-lock@example.com").await;
    cluster.create_user("after-lock@example.com").await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers = start_workers(cluster, "redis-outage", 3, &stop).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    cluster.redis.kill();
    let down = Instant::now();
    eprintln!("(d) redis SIGKILLed");
    cluster
        .await_readiness(&client, "degraded", Duration::from_secs(15))
        .await;

    // Throttling during the outage: wrong passwords spread over the nodes still lock the
    // account, and the cluster checks no more than `login.max_failures` of them.
    let email = "outage-lock@example.com";
    let mut checked = 0;
    for attempt in 0..MAX_FAILURES {
        let node = attempt % 3;
        let (status, body, _) = login(&client, cluster.node_url(node), email, WRONG).await;
        match status {
            401 => checked += 1,
            429 => {}
            _ => panic!(
                "wrong password {} on node {} during the outage: {body}",
                attempt + 1,
                node + 1
            ),
        }
    }
    assert!(
        (1..=MAX_FAILURES).contains(&checked),
        "{checked} passwords checked"
    );
    for node in 0..3 {
        let (status, body, headers) = login(&client, cluster.node_url(node), email, PASSWORD).await;
        assert_eq!(
            status,
            429,
            "right password on node {} during the outage: {body}",
            node + 1
        );
        assert!(headers.contains_key("retry-after"), "{headers:?}");
    }
    eprintln!("(d) during the outage: {checked} of {MAX_FAILURES} wrong passwords checked, then locked on all nodes");

    let outage_min = Duration::from_secs(4);
    if let Some(left) = outage_min.checked_sub(down.elapsed()) {
        tokio::time::sleep(left).await;
    }
    cluster.redis.restart().await;
    eprintln!("(d) redis back after {:?}", down.elapsed());
    cluster
        .await_readiness(&client, "ready", Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let worked = join(workers).await;
    let failures: Vec<&Failure> = worked.iter().flat_map(|w| &w.failures).collect();
    let requests: usize = worked.iter().map(|w| w.requests).sum();
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed around the Redis outage: {failures:#?}\n{}",
        failures.len(),
        cluster.logs()
    );
    assert!(requests >= WORKERS * 10, "only {requests} requests ran");
    eprintln!(
        "(d) {requests} logins/refreshes/API calls through HAProxy around the Redis outage, none failed"
    );

    // Shared state again: five failures on node 1 lock the account on nodes 2 and 3.
    let email = "after-lock@example.com";
    for attempt in 0..MAX_FAILURES {
        let (status, body, _) = login(&client, cluster.node_url(0), email, WRONG).await;
        assert_eq!(
            status,
            401,
            "wrong password {} after recovery: {body}",
            attempt + 1
        );
    }
    for node in 1..3 {
        let (status, body, _) = login(&client, cluster.node_url(node), email, PASSWORD).await;
        assert_eq!(
            status,
            429,
            "lock set on node 1 after recovery, node {}: {body}",
            node + 1
        );
    }
    eprintln!("(d) after recovery a lock set on node 1 holds on nodes 2 and 3");
}

/// (a) Node 2 SIGKILLed during a loop of logins, refreshes and API calls through HAProxy:
/// the only failures are requests in flight at the kill (at most one per worker, none
/// started after HAProxy marked the node down); afterwards every session's latest refresh
/// token still refreshes, no session was revoked, and no session has two live refresh
/// tokens in PostgreSQL.
async fn a_killed_node_loses_only_its_requests_in_flight(cluster: &mut Cluster) {
    let client = http();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = start_workers(cluster, "node-kill", 10, &stop).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let killed = Instant::now();
    cluster.nodes[1].signal("KILL");
    assert!(cluster.nodes[1]
        .wait_exit(Duration::from_secs(10))
        .await
        .is_some());
    let marked_down = loop {
        let states = cluster.lb().server_states().await;
        if states.get("n2").is_some_and(|s| s.starts_with("DOWN")) {
            break Instant::now();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "haproxy still routes to node 2: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "(a) node 2 SIGKILLed; haproxy marked it down after {:?}",
        marked_down - killed
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let worked = join(workers).await;

    // The load did reach the dead node: HAProxy sent requests to it that it had to retry
    // elsewhere (connection refused, or closed with no answer).
    let n2 = cluster.lb().server_stats().await.remove("n2").unwrap_or_default();
    let count = |column: &str| n2.get(column).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    eprintln!(
        "(a) haproxy on node 2: {} retries, {} redispatches",
        count("wretr"),
        count("wredis")
    );
    assert!(
        count("wretr") + count("wredis") > 0,
        "no request met the dead node: {n2:?}"
    );

    let requests: usize = worked.iter().map(|w| w.requests).sum();
    let failures: Vec<&Failure> = worked.iter().flat_map(|w| &w.failures).collect();
    eprintln!(
        "(a) {requests} requests through haproxy, {} failed: {:?}",
        failures.len(),
        failures
            .iter()
            .map(|f| format!("worker {} {}: {} {}", f.worker, f.what, f.status, f.body))
            .collect::<Vec<_>>()
    );
    assert!(requests >= WORKERS * 20, "only {requests} requests ran");
    for w in &worked {
        assert!(
            w.failures.len() <= 1,
            "worker failed more than once: {:#?}",
            w.failures
        );
    }
    for f in &failures {
        assert!(
            f.ended >= killed && f.started <= marked_down,
            "a failure not in flight at the kill: {f:#?}\n{}",
            cluster.logs()
        );
    }

    // No refresh family has two live tokens; no session was ended (no reuse detected).
    let (live, revoked) = live_refresh_tokens(&cluster.schema.url).await;
    let opened: usize = worked.iter().map(|w| w.sessions.len()).sum();
    assert!(
        live.len() >= opened,
        "{} sessions in the database, {opened} opened",
        live.len()
    );
    let doubled: Vec<_> = live.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "sessions with two live refresh tokens: {doubled:?}"
    );
    // (b) ended one session and (d) none; the load loops none.
    assert_eq!(revoked, 1, "sessions ended besides the one (b) revoked");

    // No session lost: every session's latest token refreshes, through the balancer.
    for (w, work) in worked.iter().enumerate() {
        for tokens in &work.sessions {
            let (status, body) = reissue(&client, &cluster.issuer, tokens).await;
            assert_eq!(status, 200, "worker {w}: a session was lost: {body}");
        }
    }
    eprintln!("(a) all {opened} sessions still refresh; one live refresh token per family");
}
