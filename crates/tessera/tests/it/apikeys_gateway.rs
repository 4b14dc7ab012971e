//! Partner API keys at the gateway (R27), with real processes: keys made with the CLI work
//! through `tessera gateway` on routes with `api_keys = true`, keep working with the
//! provider SIGKILLed, and are refused within the poll interval after a revocation (provider
//! up); expired, revoked, tampered, wrong-prefix, spliced (one key's id with another's
//! secret), out-of-scope and out-of-network keys are refused; per-key rate limits and
//! bounded per-key metrics.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{json, Value};
use tessera_testkit::{free_port, Process};

const MASTER_KEY: &str = "dGVzc2VyYS1nYXRld2F5LW91dGFnZS1tYXN0ZXItazE=";
const READY: Duration = Duration::from_secs(60);
const POLL_SECS: u64 = 1;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

fn idp_env(dir: &Path, port: u16) -> Vec<(String, String)> {
    [
        ("TESSERA_DATA_DIR", dir.join("data").display().to_string()),
        ("TESSERA_MASTER_KEY", MASTER_KEY.to_owned()),
        ("TESSERA_LISTEN", format!("127.0.0.1:{port}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn cli(dir: &Path, port: u16, args: &[&str]) -> String {
    let done = Process::run_in(binary(), dir, args, &idp_env(dir, port), READY).await;
    assert!(
        done.status.success(),
        "tessera {} failed:\n{}\n{}",
        args.join(" "),
        done.stdout,
        done.stderr
    );
    done.stdout
}

async fn cli_json(dir: &Path, port: u16, args: &[&str]) -> Value {
    let out = cli(dir, port, args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// An upstream that answers with the identity headers it received.
async fn upstream() -> (String, tokio::task::JoinHandle<()>) {
    async fn echo(headers: HeaderMap) -> axum::Json<Value> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        axum::Json(json!({
            "subject": get("x-auth-subject"),
            "client": get("x-auth-client"),
            "scopes": get("x-auth-scopes"),
            "api_key": get("x-auth-api-key"),
            "forwarded_key": get("x-api-key"),
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(echo)).await;
    });
    (url, task)
}

struct Keys {
    main: (String, String),
    revoked: (String, String),
    narrow: String,
    office: String,
    other_partner: String,
}

fn key_of(created: &Value) -> (String, String) {
    (
        created["api_key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    )
}

async fn call(client: &reqwest::Client, url: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn tamper(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

async fn eventually(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_work_at_the_gateway_through_an_idp_outage_and_stop_when_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let idp_port = free_port();
    let client = |id: &'static str, scope: &'static str| {
        [
            "client",
            "create",
            "--name",
            id,
            "--client-id",
            id,
            "--grant",
            "client_credentials",
            "--scope",
            scope,
            "--json",
        ]
    };
    let gateway_client = cli_json(dir, idp_port, &client("gateway", "openid")).await;
    let ops = cli_json(dir, idp_port, &client("ops", "tessera:admin")).await;
    cli(dir, idp_port, &client("partner-a", "orders:read orders:write")).await;
    cli(dir, idp_port, &client("partner-b", "orders:read")).await;
    let create = |owner: &'static str, name: &'static str, extra: &'static [&'static str]| {
        let mut args = vec!["apikey", "create", "--client", owner, "--name", name, "--json"];
        args.extend_from_slice(extra);
        args
    };
    let keys = Keys {
        main: key_of(
            &cli_json(
                dir,
                idp_port,
                &create("partner-a", "main", &["--scope", "orders:read"]),
            )
            .await,
        ),
        revoked: key_of(
            &cli_json(
                dir,
                idp_port,
                &create("partner-a", "revoke-me", &["--scope", "orders:read"]),
            )
            .await,
        ),
        narrow: key_of(
            &cli_json(
                dir,
                idp_port,
                &create("partner-a", "narrow", &["--scope", "orders:write"]),
            )
            .await,
        )
        .0,
        office: key_of(
            &cli_json(
                dir,
                idp_port,
                &create(
                    "partner-b",
                    "office",
                    &["--scope", "orders:read", "--allow-ip", "10.0.0.0/8"],
                ),
            )
            .await,
        )
        .0,
        other_partner: key_of(
            &cli_json(
                dir,
                idp_port,
                &create("partner-b", "b", &["--scope", "orders:read"]),
            )
            .await,
        )
        .0,
    };
    let listed = cli(dir, idp_port, &["apikey", "list", "--client", "partner-a"]).await;
    assert!(
        listed.contains(&format!("tsk_{}", keys.main.1)) && listed.contains("revoke-me"),
        "{listed}"
    );
    assert!(
        !listed.contains(&keys.main.0),
        "a listing shows no secret: {listed}"
    );

    let mut idp = Process::start_in(binary(), dir, &["serve"], &idp_env(dir, idp_port));
    idp.url = format!("http://127.0.0.1:{idp_port}");
    idp.wait_ready(READY).await;
    let (upstream_url, upstream_task) = upstream().await;
    let port = free_port();
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             issuer = \"http://127.0.0.1:{idp_port}\"\n\
             revocation_poll_secs = {POLL_SECS}\n\
             [api_keys]\n\
             client_id = \"gateway\"\n\
             client_secret = \"{}\"\n\
             metric_keys = [\"{}\"]\n\
             [[routes]]\n\
             name = \"orders\"\n\
             path_prefix = \"/orders\"\n\
             upstreams = [\"{upstream_url}\"]\n\
             scopes = [\"orders:read\"]\n\
             api_keys = true\n\
             [[routes]]\n\
             name = \"limited\"\n\
             path_prefix = \"/limited\"\n\
             upstreams = [\"{upstream_url}\"]\n\
             api_keys = true\n\
             rate_limit = {{ per_key = 3, window_secs = 86400 }}\n\
             [[routes]]\n\
             name = \"tokens-only\"\n\
             path_prefix = \"/plain\"\n\
             upstreams = [\"{upstream_url}\"]\n",
            gateway_client["client_secret"].as_str().unwrap(),
            keys.main.1,
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let mut gateway = Process::start_in(binary(), dir, &["gateway", "--config", &file], &[]);
    gateway.url = format!("http://127.0.0.1:{port}");
    gateway.wait_ready(READY).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let orders = format!("{}/orders/export", gateway.url);

    // The key works, the identity it stands for is forwarded, the key itself is not.
    let (status, seen) = call(&http, &orders, Some(&keys.main.0)).await;
    assert_eq!(status, 200, "{seen}\n{}", gateway.stderr());
    assert_eq!(
        seen,
        json!({ "subject": "partner-a", "client": "partner-a", "scopes": "orders:read",
                "api_key": keys.main.1, "forwarded_key": null })
    );
    // A token still works on the same route.
    let token: Value = http
        .post(format!("{}/oauth2/token", idp.url))
        .basic_auth("partner-b", Some(cli_secret(dir, idp_port, "partner-b").await))
        .form(&[("grant_type", "client_credentials"), ("scope", "orders:read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = http
        .get(&orders)
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Refused: tampered, wrong prefix, spliced, unknown, out of scope, out of network, on a
    // route without API keys, beside a token, twice, oversized.
    let spliced = format!("tsk_{}_{}", keys.main.1, &keys.other_partner[27..]);
    let unknown = format!("tsk_{}_{}", "Q".repeat(22), "q".repeat(43));
    for (key, status) in [
        (tamper(&keys.main.0), 401),
        (keys.main.0.replacen("tsk_", "tsr_", 1), 401),
        (spliced.clone(), 401),
        (unknown.clone(), 401),
        ("x".repeat(8_000), 401),
        (keys.narrow.clone(), 403),
        (keys.office.clone(), 403),
    ] {
        let (got, body) = call(&http, &orders, Some(&key)).await;
        assert_eq!(got, status, "{}… → {body}", &key[..key.len().min(12)]);
    }
    assert_eq!(
        call(&http, &format!("{}/plain/x", gateway.url), Some(&keys.main.0))
            .await
            .0,
        401
    );
    let both = http
        .get(&orders)
        .header("x-api-key", &keys.main.0)
        .bearer_auth("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    let twice = http
        .get(&orders)
        .header("x-api-key", &keys.main.0)
        .header("x-api-key", &keys.main.0)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);

    // Per-key rate limit: the fourth request of a key is 429, another key is not counted.
    let limited = format!("{}/limited/x", gateway.url);
    for _ in 0..3 {
        assert_eq!(call(&http, &limited, Some(&keys.main.0)).await.0, 200);
    }
    let over = http
        .get(&limited)
        .header("x-api-key", &keys.main.0)
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    assert_eq!(call(&http, &limited, Some(&keys.revoked.0)).await.0, 200);

    // Metrics: the configured key by id, the rest as `other`; 429s by key.
    let metrics = http
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let main_label = format!("key_id=\"{}\"", keys.main.1);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tessera_gateway_api_key_requests_total") && l.contains(&main_label)),
        "{metrics}"
    );
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("tessera_gateway_api_key_requests_total") && l.contains("key_id=\"other\"")));
    assert!(
        !metrics.contains(&keys.revoked.1),
        "only configured key ids become labels"
    );
    assert!(
        metrics.contains("tessera_gateway_rate_limited_total{route=\"limited\",key=\"api_key\"} 1"),
        "{metrics}"
    );

    // Revoked with the provider up: refused within the poll interval.
    assert_eq!(call(&http, &orders, Some(&keys.revoked.0)).await.0, 200);
    cli(dir, idp_port, &["apikey", "revoke", &keys.revoked.1]).await;
    let took = eventually("the revoked key refused", Duration::from_secs(10), async || {
        call(&http, &orders, Some(&keys.revoked.0)).await.0 == 401
    })
    .await;
    eprintln!("a revoked API key was refused by the gateway process {took:?} after `tessera apikey revoke` (poll interval {POLL_SECS} s)");
    assert_eq!(call(&http, &orders, Some(&keys.main.0)).await.0, 200);

    // Expired: a key that lives two seconds stops working at the gateway by itself.
    let admin: Value = http
        .post(format!("{}/oauth2/token", idp.url))
        .basic_auth("ops", Some(ops["client_secret"].as_str().unwrap()))
        .form(&[("grant_type", "client_credentials"), ("scope", "tessera:admin")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let short: Value = http
        .post(format!("{}/admin/api-keys", idp.url))
        .bearer_auth(admin["access_token"].as_str().unwrap())
        .json(&json!({ "client_id": "partner-a", "name": "short", "scopes": ["orders:read"], "expires_at": now + 2 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let short_key = short["api_key"].as_str().unwrap().to_owned();
    assert_eq!(call(&http, &orders, Some(&short_key)).await.0, 200, "{short}");
    eventually("the expired key refused", Duration::from_secs(15), async || {
        call(&http, &orders, Some(&short_key)).await.0 == 401
    })
    .await;

    // The provider dies. Known keys keep working; revoked, expired and tampered ones stay
    // refused; a key never seen cannot be judged and is refused (503, retry later).
    idp.signal("KILL");
    assert!(idp.wait_exit(Duration::from_secs(10)).await.is_some());
    let never_seen = format!("tsk_{}_{}", "Z".repeat(22), "z".repeat(43));
    for round in 0..100 {
        let (status, seen) = call(&http, &orders, Some(&keys.main.0)).await;
        assert_eq!(
            (status, &seen["subject"]),
            (200, &json!("partner-a")),
            "round {round}"
        );
        assert_eq!(
            call(&http, &orders, Some(&keys.revoked.0)).await.0,
            401,
            "round {round}: revoked"
        );
        assert_eq!(
            call(&http, &orders, Some(&short_key)).await.0,
            401,
            "round {round}: expired"
        );
        assert_eq!(
            call(&http, &orders, Some(&tamper(&keys.main.0))).await.0,
            401,
            "round {round}: tampered"
        );
        assert_eq!(
            call(&http, &orders, Some(&keys.narrow)).await.0,
            403,
            "round {round}: scope"
        );
        let (status, _) = call(&http, &orders, Some(&never_seen)).await;
        assert_eq!(status, 503, "round {round}: unknown key during the outage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(gateway);
    upstream_task.abort();
}

/// A new secret for `client` (the CLI shows secrets only when made).
async fn cli_secret(dir: &Path, port: u16, client: &str) -> String {
    let done = cli_json(dir, port, &["client", "rotate-secret", client, "--json"]).await;
    done["client_secret"].as_str().unwrap().to_owned()
}
