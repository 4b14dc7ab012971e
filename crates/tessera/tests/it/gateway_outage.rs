//! The premise of the product (R16–R18): a service behind `tessera gateway` is not affected
//! by a failure of the identity provider. The provider runs as a real process and is killed
//! with SIGKILL while traffic flows through a `tessera gateway` process; it is restarted on
//! the same data directory and port, its keys are rotated, and the gateway accepts the new
//! key's tokens without a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{json, Value};
use tessera_testkit::{free_port, Process};

/// Base64 of the 32 bytes `tessera-gateway-outage-master-k1`.
const MASTER_KEY: &str = "dGVzc2VyYS1nYXRld2F5LW91dGFnZS1tYXN0ZXItazE=";
const PASSWORD: &str = "correct horse battery staple 42";
const READY: Duration = Duration::from_secs(60);
/// The gateway's revocation poll interval in this test.
const POLL_SECS: u64 = 1;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

/// The provider's environment: its data directory, master key and port; keys reloaded from
/// the database every second (so a rotation by the CLI is picked up at once), and new keys
/// signing one second after they are published.
fn idp_env(dir: &Path, port: u16) -> Vec<(String, String)> {
    [
        ("TESSERA_DATA_DIR", dir.join("data").display().to_string()),
        ("TESSERA_MASTER_KEY", MASTER_KEY.to_owned()),
        ("TESSERA_LISTEN", format!("127.0.0.1:{port}")),
        ("TESSERA_KEYS__RELOAD_SECS", "1".to_owned()),
        ("TESSERA_KEYS__PREPUBLISH_SECS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn start_idp(dir: &Path, port: u16) -> Process {
    let mut idp = Process::start_in(binary(), dir, &["serve"], &idp_env(dir, port));
    idp.url = format!("http://127.0.0.1:{port}");
    idp.wait_ready(READY).await;
    idp
}

/// Runs a `tessera` command on the provider's data directory, asserting success.
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

/// `POST /auth/login` → the access token.
async fn login(idp: &Process, email: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/auth/login", idp.url))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "login of {email}: {body}\n{}", idp.stderr());
    body["accessToken"].as_str().unwrap().to_owned()
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The token with one character of its signature changed.
fn tampered(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').unwrap();
    let mut signature: Vec<u8> = signature.bytes().collect();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == b'A' { b'B' } else { b'A' };
    format!("{head}.{}", String::from_utf8(signature).unwrap())
}

/// An upstream on 127.0.0.1 that answers with the subject the gateway forwarded.
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
    let app = axum::Router::new().fallback(whoami);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

async fn start_gateway(dir: &Path, idp_port: u16, upstream: &str) -> Process {
    let port = free_port();
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             issuer = \"http://127.0.0.1:{idp_port}\"\n\
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

/// `GET {gateway}/api/whoami` with `token`: the status, and the subject the upstream saw.
async fn call(client: &reqwest::Client, gateway: &Process, token: &str) -> (u16, String) {
    let response = client
        .get(format!("{}/api/whoami", gateway.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["subject"].as_str().unwrap_or("").to_owned())
}

async fn readyz(client: &reqwest::Client, gateway: &Process) -> (u16, Value) {
    let response = client
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_keeps_serving_through_an_idp_outage_and_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let idp_port = free_port();
    for email in ["alice@example.com", "bob@example.com", "carol@example.com"] {
        cli(
            dir,
            idp_port,
            &[
                "user",
                "create",
                "--email",
                email,
                "--password",
                PASSWORD,
                "--verified",
            ],
        )
        .await;
    }
    let mut idp = start_idp(dir, idp_port).await;
    let alice = login(&idp, "alice@example.com").await;
    let bob = login(&idp, "bob@example.com").await;
    let carol = login(&idp, "carol@example.com").await;
    let (upstream_url, upstream_task) = upstream().await;
    let gateway = start_gateway(dir, idp_port, &upstream_url).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Before the outage: everyone valid gets through, with their identity forwarded.
    let (status, alice_sub) = call(&client, &gateway, &alice).await;
    assert_eq!(status, 200, "{}", gateway.stderr());
    assert!(!alice_sub.is_empty());
    assert_eq!(call(&client, &gateway, &bob).await.0, 200);
    let (status, body) = readyz(&client, &gateway).await;
    assert_eq!((status, &body["stale"]), (200, &json!(false)), "{body}");

    // Bob logs out: the gateway refuses his still-unexpired token within a poll interval.
    let logout = client
        .post(format!("{}/auth/logout", idp.url))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success(), "logout: {}", logout.status());
    let revoked = Instant::now();
    loop {
        if call(&client, &gateway, &bob).await.0 == 401 {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(10),
            "bob's token still accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "revocation reached the gateway process after {:?} (poll interval {POLL_SECS} s)",
        revoked.elapsed()
    );

    // The provider dies without a chance to say goodbye.
    idp.signal("KILL");
    assert!(idp.wait_exit(Duration::from_secs(10)).await.is_some());
    assert!(
        reqwest::get(format!("{}/healthz", idp.url)).await.is_err(),
        "the provider is still answering"
    );

    // The whole outage: 200 rounds over ~5 s. Valid tokens pass, the revoked and the
    // tampered ones never do, and readiness stays up while reporting stale data.
    let outage = Instant::now();
    let forged = tampered(&alice);
    let mut saw_stale = false;
    for round in 0..200 {
        let (status, subject) = call(&client, &gateway, &alice).await;
        assert_eq!(
            (status, subject.as_str()),
            (200, alice_sub.as_str()),
            "round {round}: alice"
        );
        assert_eq!(
            call(&client, &gateway, &carol).await.0,
            200,
            "round {round}: carol"
        );
        assert_eq!(
            call(&client, &gateway, &bob).await.0,
            401,
            "round {round}: revoked bob"
        );
        assert_eq!(
            call(&client, &gateway, &forged).await.0,
            401,
            "round {round}: tampered"
        );
        if round % 10 == 0 {
            let (status, body) = readyz(&client, &gateway).await;
            assert_eq!(status, 200, "round {round}: /readyz {body}");
            saw_stale |= body["stale"] == json!(true);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, body) = readyz(&client, &gateway).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stale"], true, "{body}");
    assert_eq!(body["deny_list_poll_failing"], true, "{body}");
    assert!(saw_stale);
    eprintln!(
        "outage of {:?}: 800 requests, every one answered as before",
        outage.elapsed()
    );

    // The provider comes back on the same data and port; a key is rotated (signing one
    // second later), and a new login is signed with it.
    let idp = start_idp(dir, idp_port).await;
    let old_kid = kid(&alice);
    let rotated = cli(dir, idp_port, &["keys", "rotate", "--alg", "ES256"]).await;
    assert!(rotated.contains("ES256"), "{rotated}");
    let started = Instant::now();
    let fresh = loop {
        let token = login(&idp, "alice@example.com").await;
        if kid(&token) != old_kid {
            break token;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no token under the new key after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The gateway was not restarted: the unknown kid makes it fetch the key set once.
    let (status, subject) = call(&client, &gateway, &fresh).await;
    assert_eq!(status, 200, "new-key token refused:\n{}", gateway.stderr());
    assert_eq!(subject, alice_sub);
    assert_eq!(call(&client, &gateway, &alice).await.0, 200, "old-key token");
    assert_eq!(call(&client, &gateway, &bob).await.0, 401, "still revoked");
    // And readiness turns fresh again once the feed answers.
    let back = Instant::now();
    loop {
        let (status, body) = readyz(&client, &gateway).await;
        assert_eq!(status, 200);
        if body["stale"] == json!(false) {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "still stale: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(gateway);
    drop(idp);
    upstream_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_gateway_configuration_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    for (text, key) in [
        (
            "issuer = \"http://127.0.0.1:1\"\n[[routes]]\npath_prefix = \"/a\"\nupstream = [\"http://127.0.0.1:2\"]\n",
            "upstream",
        ),
        (
            "issuer = \"http://127.0.0.1:1\"\n[[routes]]\npath_prefix = \"/a\"\nupstreams = [\"http://127.0.0.1:2\"]\n\
             cors = { allow_origins = [\"*\"], allow_credentials = true }\n",
            "`routes[0].cors.allow_origins`",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let path = file.display().to_string();
        let done = Process::run_in(
            binary(),
            dir.path(),
            &["gateway", "--config", &path],
            &[],
            READY,
        )
        .await;
        assert!(!done.status.success());
        let stderr = done.stderr.trim();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(key), "{stderr}");
    }
}
