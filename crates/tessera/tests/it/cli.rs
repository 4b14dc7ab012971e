//! The `tessera` binary as a process: start-up with no configuration, start-up errors (one
//! line, naming the key, no secrets, no panics), the master key, SIGTERM with idle and
//! in-flight connections, JSON logs, the `keys` and `migrate` commands, and PostgreSQL.
//!
//! Every test runs the real binary in a temp working directory with a temp data directory
//! and a free port, so the tests are independent and run in parallel.

// Helpers outside `#[test]` functions are test code too (clippy.toml allows these in tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tessera_testkit::{free_port, PgSchema, Process, DATABASE_URL_VAR};

/// Base64 of the 32 bytes `tessera-cli-test-master-key-A-32`.
const MASTER_KEY_A: &str = "dGVzc2VyYS1jbGktdGVzdC1tYXN0ZXIta2V5LUEtMzI=";
/// Base64 of the 32 bytes `tessera-cli-test-master-key-B-32`.
const MASTER_KEY_B: &str = "dGVzc2VyYS1jbGktdGVzdC1tYXN0ZXIta2V5LUItMzI=";

/// Upper bounds for waiting; none of them is an assertion about speed.
const READY: Duration = Duration::from_secs(60);
const EXIT: Duration = Duration::from_secs(60);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A temp working directory for the child, with a `data` directory path inside it.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn data_dir_env(&self) -> String {
        self.data_dir().display().to_string()
    }

    /// Writes `name` in the working directory and returns its absolute path.
    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// Runs `tessera args…` here to completion.
    async fn run(&self, args: &[&str], envs: &[(String, String)]) -> Output {
        let finished = Process::run_in(binary(), self.path(), args, envs, EXIT).await;
        Output {
            status: finished.status,
            stdout: finished.stdout,
            stderr: finished.stderr,
        }
    }

    /// Starts `tessera serve` here on a free port.
    fn serve(&self, envs: &[(&str, String)]) -> Process {
        Process::serve_in(binary(), self.path(), envs)
    }
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Asserts a failed start: a non-zero exit and exactly one non-empty stderr line,
    /// `error: …`, containing every one of `mentions`, and no panic. Returns the line.
    fn assert_one_error_line(&self, mentions: &[&str]) -> String {
        assert!(
            !self.status.success(),
            "expected a failure, got {}:\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(
            self.status.code().is_some(),
            "killed by a signal: {}",
            self.status
        );
        assert!(!self.stderr.contains("panicked"), "panicked:\n{}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one stderr line, got:\n{}", self.stderr);
        let line = lines[0];
        assert!(
            line.starts_with("error:") && line.len() > "error:".len(),
            "not an `error:` line: {line:?}"
        );
        for mention in mentions {
            assert!(line.contains(mention), "{line:?} does not mention {mention:?}");
        }
        line.to_owned()
    }

    fn assert_success(&self) {
        assert!(
            self.status.success(),
            "expected success, got {}:\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// SIGTERM, then the exit status (panics with stderr if it does not exit).
async fn terminate(process: &mut Process) -> ExitStatus {
    process.signal("TERM");
    match process.wait_exit(EXIT).await {
        Some(status) => status,
        None => panic!("no exit after SIGTERM:\n{}", process.stderr()),
    }
}

/// Starts `serve` with `envs`, waits until it serves, stops it with SIGTERM, and asserts it
/// exited with status 0. Leaves the data directory initialised.
async fn serve_once(sandbox: &Sandbox, envs: &[(&str, String)]) {
    let mut node = sandbox.serve(envs);
    node.wait_ready(READY).await;
    let status = terminate(&mut node).await;
    assert!(status.success(), "exit {status}:\n{}", node.stderr());
}

// --- 1. No configuration at all ------------------------------------------------------------

#[tokio::test]
async fn serve_without_configuration_uses_the_embedded_default_in_the_working_directory() {
    let sandbox = Sandbox::new();
    // Only the port: the default 127.0.0.1:8080 may be taken while tests run in parallel.
    let mut node = sandbox.serve(&[]);
    node.wait_ready(READY).await;

    let data = sandbox.path().join("tessera-data");
    assert!(data.join("tessera.db").is_file(), "no ./tessera-data/tessera.db");
    let key_file = data.join("master.key");
    assert!(key_file.is_file(), "no ./tessera-data/master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "master.key has mode {mode:o}");
    }

    let (status, ready) = get_json(&format!("{}/readyz", node.url)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["database"]["backend"], "sqlite", "{ready}");

    let stderr = node.stderr();
    let warning = stderr
        .lines()
        .find(|line| line.contains("no master_key configured"))
        .unwrap_or_else(|| panic!("no warning about the generated master key:\n{stderr}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("master.key"), "{warning}");

    let status = terminate(&mut node).await;
    assert!(status.success(), "exit {status}:\n{}", node.stderr());
}

// --- 2. Bad configuration ------------------------------------------------------------------

/// Runs `serve` with a configuration that must be refused; returns the error line.
async fn refused(sandbox: &Sandbox, args: &[&str], envs: &[(&str, &str)], mentions: &[&str]) -> String {
    let mut all = env(envs);
    if !envs.iter().any(|(k, _)| *k == "TESSERA_DATA_DIR") {
        all.push(("TESSERA_DATA_DIR".into(), sandbox.data_dir_env()));
    }
    let output = sandbox.run(args, &all).await;
    output.assert_one_error_line(mentions)
}

#[tokio::test]
async fn an_unknown_key_in_the_file_is_named() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("tessera.toml", "lissten = \"127.0.0.1:1\"\n");
    refused(&sandbox, &["--config", &file, "serve"], &[], &["lissten"]).await;
}

#[tokio::test]
async fn an_unknown_key_in_a_section_is_named() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("tessera.toml", "[keys]\nprepublish = 1\n");
    refused(&sandbox, &["--config", &file, "serve"], &[], &["prepublish"]).await;
}

#[tokio::test]
async fn an_invalid_value_in_the_file_is_named() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("tessera.toml", "listen = \"nonsense\"\n");
    refused(&sandbox, &["--config", &file, "serve"], &[], &["listen"]).await;
}

#[tokio::test]
async fn an_invalid_value_after_a_section_is_named() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("tessera.toml", "[http]\nmax_body_bytes = 10\n");
    refused(
        &sandbox,
        &["--config", &file, "serve"],
        &[],
        &["http.max_body_bytes"],
    )
    .await;
}

#[tokio::test]
async fn an_invalid_environment_value_is_named() {
    let sandbox = Sandbox::new();
    refused(
        &sandbox,
        &["serve"],
        &[("TESSERA_KEYS__RELOAD_SECS", "soon")],
        &["TESSERA_KEYS__RELOAD_SECS", "keys.reload_secs"],
    )
    .await;
}

#[tokio::test]
async fn a_malformed_master_key_is_refused_without_echoing_it() {
    let sandbox = Sandbox::new();
    let line = refused(
        &sandbox,
        &["serve"],
        &[("TESSERA_MASTER_KEY", "short")],
        &["master_key"],
    )
    .await;
    assert!(!line.contains("short"), "{line}");
    // Valid base64, wrong length.
    let line = refused(
        &sandbox,
        &["serve"],
        &[("TESSERA_MASTER_KEY", "c2VjcmV0LXRvby1zaG9ydA==")],
        &["master_key", "32 bytes"],
    )
    .await;
    assert!(!line.contains("c2VjcmV0LXRvby1zaG9ydA"), "{line}");
}

#[tokio::test]
async fn a_missing_configuration_file_is_named() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("nowhere.toml").display().to_string();
    refused(&sandbox, &["--config", &missing, "serve"], &[], &[&missing]).await;
    // The same through TESSERA_CONFIG.
    refused(&sandbox, &["serve"], &[("TESSERA_CONFIG", &missing)], &[&missing]).await;
    assert!(
        !sandbox.data_dir().exists(),
        "a refused start created the data directory"
    );
}

// --- 3. Unreachable PostgreSQL -------------------------------------------------------------

#[tokio::test]
async fn an_unreachable_database_is_one_line_without_the_password() {
    let sandbox = Sandbox::new();
    let line = refused(
        &sandbox,
        &["serve"],
        &[
            (
                "TESSERA_DATABASE_URL",
                "postgres://tessera:hunter2@127.0.0.1:1/none",
            ),
            ("TESSERA_MASTER_KEY", MASTER_KEY_A),
            ("TESSERA_DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
        ],
        &["database", "127.0.0.1:1"],
    )
    .await;
    assert!(!line.contains("hunter2"), "the password leaked: {line}");
}

#[tokio::test]
async fn postgresql_without_a_master_key_names_master_key() {
    let sandbox = Sandbox::new();
    // The check must not depend on reaching the database: every node of a shared database
    // needs the same key, which a missing key can never be.
    let line = refused(
        &sandbox,
        &["serve"],
        &[
            (
                "TESSERA_DATABASE_URL",
                "postgres://tessera:hunter2@127.0.0.1:1/none",
            ),
            ("TESSERA_DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
        ],
        &["master_key"],
    )
    .await;
    assert!(!line.contains("hunter2"), "the password leaked: {line}");
}

// --- 4. Wrong master key -------------------------------------------------------------------

#[tokio::test]
async fn a_different_master_key_is_refused_and_the_right_one_still_works() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir_env();
    let with_key = |key: &str| {
        vec![
            ("TESSERA_DATA_DIR", data.clone()),
            ("TESSERA_MASTER_KEY", key.to_owned()),
        ]
    };
    serve_once(&sandbox, &with_key(MASTER_KEY_A)).await;

    let port = free_port().to_string();
    let output = sandbox
        .run(
            &["serve"],
            &env(&[
                ("TESSERA_DATA_DIR", &data),
                ("TESSERA_MASTER_KEY", MASTER_KEY_B),
                ("TESSERA_LISTEN", &format!("127.0.0.1:{port}")),
            ]),
        )
        .await;
    let line = output.assert_one_error_line(&["master key does not decrypt"]);
    assert!(line.contains("signing key"), "{line}");
    assert!(
        !line.contains(MASTER_KEY_A) && !line.contains(MASTER_KEY_B),
        "{line}"
    );

    let mut node = sandbox.serve(&with_key(MASTER_KEY_A));
    node.wait_ready(READY).await;
    let (status, ready) = get_json(&format!("{}/readyz", node.url)).await;
    assert_eq!(status, 200, "{ready}");
    let status = terminate(&mut node).await;
    assert!(status.success(), "exit {status}:\n{}", node.stderr());
}

// --- 5. SIGTERM ----------------------------------------------------------------------------

const GRACE_EXCEEDED: &str = "did not finish within the grace period";

/// Reads one HTTP/1.1 response (headers and a `Content-Length` body) from `stream`.
fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    (head, body)
}

fn connect(url: &str) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(EXIT)).unwrap();
    stream
}

#[tokio::test]
async fn sigterm_exits_zero_and_an_idle_keep_alive_connection_does_not_hold_it() {
    let sandbox = Sandbox::new();
    let mut node = sandbox.serve(&[
        ("TESSERA_DATA_DIR", sandbox.data_dir_env()),
        ("TESSERA_HTTP__SHUTDOWN_GRACE_SECS", "5".into()),
    ]);
    node.wait_ready(READY).await;

    // One complete request on a keep-alive connection, which then stays open and idle.
    let mut idle = connect(&node.url);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut idle);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert_eq!(body, br#"{"status":"ok"}"#);

    node.signal("TERM");
    let status = node.wait_exit(EXIT).await;
    let stderr = node.stderr();
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}:\n{stderr}");
    assert!(stderr.contains("shutting down"), "no shutdown message:\n{stderr}");
    assert!(stderr.contains("stopped"), "no stop message:\n{stderr}");
    // Had the idle connection held the drain, the grace period would have run out.
    assert!(
        !stderr.contains(GRACE_EXCEEDED),
        "the idle connection held the drain:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(idle);
}

/// The `tx_queue` and `rx_queue` (bytes) of the IPv4 TCP socket from `local_port` to
/// `remote_port` on 127.0.0.1, from `/proc/net/tcp`.
#[cfg(target_os = "linux")]
fn tcp_queues(local_port: u16, remote_port: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_of = |address: &str| {
        address
            .split_once(':')
            .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if port_of(fields.get(1)?)? != local_port || port_of(fields.get(2)?)? != remote_port {
            return None;
        }
        let (tx, rx) = fields.get(4)?.split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
}

/// A request whose first bytes the server has read before SIGTERM still gets its response.
///
/// No endpoint takes long enough to be caught mid-handler, and none reads a request body
/// (so a `Content-Length` body sent late does not hold the response back). What can be in
/// flight is a request whose head is still arriving: the test sends part of the head, waits
/// until the kernel shows that the server's process has read every byte of it (client send
/// queue and server receive queue both empty in `/proc/net/tcp`), sends SIGTERM, waits for
/// the shutdown message, and only then sends the rest.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let sandbox = Sandbox::new();
    let mut node = sandbox.serve(&[
        ("TESSERA_DATA_DIR", sandbox.data_dir_env()),
        ("TESSERA_HTTP__SHUTDOWN_GRACE_SECS", "5".into()),
    ]);
    node.wait_ready(READY).await;

    let mut stream = connect(&node.url);
    let server_port = stream.peer_addr().unwrap().port();
    let client_port = stream.local_addr().unwrap().port();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: in-flight\r\n")
        .unwrap();
    let deadline = Instant::now() + READY;
    loop {
        let sent = tcp_queues(client_port, server_port).map(|(tx, _)| tx);
        let unread = tcp_queues(server_port, client_port).map(|(_, rx)| rx);
        if sent == Some(0) && unread == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server never read the request head (send queue {sent:?}, receive queue {unread:?})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    node.signal("TERM");
    assert!(
        node.wait_for_stderr("shutting down", EXIT).await,
        "no shutdown message:\n{}",
        node.stderr()
    );
    stream.write_all(b"\r\n").unwrap();
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, br#"{"status":"ok"}"#);

    let status = node.wait_exit(EXIT).await;
    let stderr = node.stderr();
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}:\n{stderr}");
    assert!(!stderr.contains(GRACE_EXCEEDED), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

// --- 6. JSON logs --------------------------------------------------------------------------

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_carry_the_request_id() {
    let sandbox = Sandbox::new();
    let mut node = Process::serve_with(
        binary(),
        Some(sandbox.path()),
        &["--log-format", "json", "serve"],
        &[("TESSERA_DATA_DIR", sandbox.data_dir_env())],
    );
    node.wait_ready(READY).await;
    let response = reqwest::get(format!("{}/healthz", node.url)).await.unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!request_id.is_empty());
    let status = terminate(&mut node).await;
    let stderr = node.stderr();
    assert!(status.success(), "exit {status}:\n{stderr}");

    let lines: Vec<Value> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(value.is_object(), "not an object: {line}");
            value
        })
        .collect();
    // The start-up warning (no master key configured) is a JSON line too.
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("master_key")),
        "{stderr}"
    );
    let logged: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == request_id.as_str())
        .collect();
    assert_eq!(
        logged.len(),
        1,
        "expected one log line for request {request_id}:\n{stderr}"
    );
    let line = logged[0];
    assert_eq!(line["span"]["path"], "/healthz", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
}

// --- 7. Keys -------------------------------------------------------------------------------

fn keys_of(list: &Value) -> &Vec<Value> {
    list.as_array().unwrap_or_else(|| panic!("not an array: {list}"))
}

#[tokio::test]
async fn keys_list_shows_the_first_keys_and_rotate_publishes_a_new_one() {
    let sandbox = Sandbox::new();
    let envs = env(&[("TESSERA_DATA_DIR", &sandbox.data_dir_env())]);
    serve_once(&sandbox, &[("TESSERA_DATA_DIR", sandbox.data_dir_env())]).await;

    let list = sandbox.run(&["keys", "list", "--json"], &envs).await;
    list.assert_success();
    let list = list.json();
    let keys = keys_of(&list);
    assert_eq!(keys.len(), 3, "{list:#}");
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"], "{list:#}");
    assert!(keys.iter().all(|k| k["status"] == "active"), "{list:#}");
    let old_es256 = keys.iter().find(|k| k["alg"] == "ES256").unwrap()["kid"].clone();

    let rotate = sandbox.run(&["keys", "rotate", "--alg", "ES256"], &envs).await;
    rotate.assert_success();
    let printed: Vec<&str> = rotate.stdout.lines().collect();
    assert_eq!(printed.len(), 1, "{}", rotate.stdout);
    let new_kid = printed[0].split_whitespace().next().unwrap().to_owned();
    assert!(printed[0].contains("ES256"), "{}", printed[0]);

    let list = sandbox.run(&["keys", "list", "--json"], &envs).await;
    list.assert_success();
    let list = list.json();
    let keys = keys_of(&list);
    assert_eq!(keys.len(), 4, "{list:#}");
    let new = keys
        .iter()
        .find(|k| k["kid"] == new_kid.as_str())
        .unwrap_or_else(|| {
            panic!("the printed kid {new_kid} is not listed: {list:#}");
        });
    assert_eq!(new["alg"], "ES256", "{new}");
    assert_eq!(new["status"], "published", "{new}");
    let old = keys.iter().find(|k| k["kid"] == old_es256).unwrap();
    assert_eq!(old["status"], "active", "{old}");
    assert!(
        old["retires_at"].is_i64(),
        "the replaced key has no retires_at: {old}"
    );
    assert!(
        keys.iter()
            .filter(|k| k["alg"] != "ES256")
            .all(|k| k["status"] == "active" && k["retires_at"].is_null()),
        "other algorithms were touched: {list:#}"
    );

    // The table form lists the same four kids.
    let table = sandbox.run(&["keys", "list"], &envs).await;
    table.assert_success();
    for key in keys {
        assert!(
            table.stdout.contains(key["kid"].as_str().unwrap()),
            "{}",
            table.stdout
        );
    }
}

#[tokio::test]
async fn a_running_node_reloads_a_rotation_without_restart() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir_env();
    let mut node = sandbox.serve(&[
        ("TESSERA_DATA_DIR", data.clone()),
        ("TESSERA_MASTER_KEY", MASTER_KEY_A.into()),
        ("TESSERA_KEYS__RELOAD_SECS", "1".into()),
    ]);
    node.wait_ready(READY).await;
    let jwks_url = format!("{}/.well-known/jwks.json", node.url);
    let kids = |jwks: &Value| -> Vec<String> {
        keys_of(&jwks["keys"])
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, before) = get_json(&jwks_url).await;
    assert_eq!(status, 200);
    assert_eq!(kids(&before).len(), 3, "{before:#}");

    let rotate = sandbox
        .run(
            &["keys", "rotate", "--alg", "ES256"],
            &env(&[("TESSERA_DATA_DIR", &data), ("TESSERA_MASTER_KEY", MASTER_KEY_A)]),
        )
        .await;
    rotate.assert_success();
    let new_kid = rotate.stdout.split_whitespace().next().unwrap().to_owned();
    assert!(!kids(&before).contains(&new_kid));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, jwks) = get_json(&jwks_url).await;
        assert_eq!(status, 200);
        let now = kids(&jwks);
        if now.contains(&new_kid) {
            assert_eq!(now.len(), 4, "{jwks:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{new_kid} never appeared in JWKS: {jwks:#}\n{}",
            node.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = terminate(&mut node).await;
    assert!(status.success(), "exit {status}:\n{}", node.stderr());
}

#[tokio::test]
async fn keys_rotate_refuses_an_unsupported_algorithm() {
    let sandbox = Sandbox::new();
    let envs = env(&[
        ("TESSERA_DATA_DIR", &sandbox.data_dir_env()),
        ("TESSERA_MASTER_KEY", MASTER_KEY_A),
    ]);
    let output = sandbox.run(&["keys", "rotate", "--alg", "HS256"], &envs).await;
    output.assert_one_error_line(&["HS256"]);
    assert!(output.stdout.is_empty(), "{}", output.stdout);
}

// --- 8. migrate ----------------------------------------------------------------------------

#[tokio::test]
async fn migrate_reports_up_to_date_and_status_lists_migration_1() {
    let sandbox = Sandbox::new();
    let envs = env(&[("TESSERA_DATA_DIR", &sandbox.data_dir_env())]);
    for _ in 0..2 {
        // Twice: applying again is a no-op that says the same.
        let migrate = sandbox.run(&["migrate"], &envs).await;
        migrate.assert_success();
        assert!(
            migrate.stdout.contains("database is up to date"),
            "{}",
            migrate.stdout
        );
        assert!(migrate.stdout.contains("sqlite"), "{}", migrate.stdout);
    }
    let status = sandbox.run(&["migrate", "--status"], &envs).await;
    status.assert_success();
    let first = status
        .stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("migration 1 not listed:\n{}", status.stdout));
    assert_eq!(first.split_whitespace().nth(1), Some("applied"), "{first}");
    assert!(!status.stdout.contains("pending"), "{}", status.stdout);
}

// --- 9. PostgreSQL -------------------------------------------------------------------------

#[tokio::test]
async fn serve_and_keys_list_on_postgresql() {
    let Ok(base) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("skipped: {DATABASE_URL_VAR} not set");
        return;
    };
    let schema = PgSchema::create(&base);
    let sandbox = Sandbox::new();
    let mut node = sandbox.serve(&[
        ("TESSERA_DATABASE_URL", schema.url.clone()),
        ("TESSERA_MASTER_KEY", MASTER_KEY_A.into()),
        ("TESSERA_DATA_DIR", sandbox.data_dir_env()),
    ]);
    node.wait_ready(READY).await;
    let (status, ready) = get_json(&format!("{}/readyz", node.url)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["database"]["backend"], "postgres", "{ready}");
    assert!(
        !node.stderr().contains("no master_key configured"),
        "{}",
        node.stderr()
    );

    let list = sandbox
        .run(
            &["keys", "list", "--json"],
            &env(&[
                ("TESSERA_DATABASE_URL", &schema.url),
                ("TESSERA_MASTER_KEY", MASTER_KEY_A),
            ]),
        )
        .await;
    list.assert_success();
    let list = list.json();
    let keys = keys_of(&list);
    assert_eq!(keys.len(), 3, "{list:#}");
    assert!(keys.iter().all(|k| k["status"] == "active"), "{list:#}");

    let status = terminate(&mut node).await;
    assert!(status.success(), "exit {status}:\n{}", node.stderr());
    // The embedded default's files were never made.
    assert!(
        !sandbox.data_dir().exists(),
        "PostgreSQL start-up created the data directory"
    );
    drop(schema);
}

/// Ids are base64url: an id given on the command line may start with `-` (older ids did, and
/// operators paste them) and must be read as a value, not as a flag.
#[tokio::test]
async fn ids_that_start_with_a_hyphen_are_values_not_flags() {
    let dir = tempfile::tempdir().unwrap();
    let envs = vec![(
        "TESSERA_DATA_DIR".to_owned(),
        dir.path().join("data").display().to_string(),
    )];
    let bin = Path::new(env!("CARGO_BIN_EXE_tessera"));
    for args in [
        vec!["sessions", "revoke", "--id", "-RZtM4CmTFfXLKsA161bHg"],
        vec!["sessions", "revoke", "--subject", "-RZtM4CmTFfXLKsA161bHg"],
        vec![
            "sessions",
            "list",
            "--subject",
            "-RZtM4CmTFfXLKsA161bHg",
            "--json",
        ],
        vec!["audit", "tail", "--json", "--user", "-RZtM4CmTFfXLKsA161bHg"],
    ] {
        let finished = Process::run_in(bin, dir.path(), &args, &envs, EXIT).await;
        assert!(
            finished.status.success(),
            "{args:?}:\n{}\n{}",
            finished.stdout,
            finished.stderr
        );
        assert!(
            !finished.stderr.contains("unexpected argument"),
            "{args:?}: {}",
            finished.stderr
        );
    }
}
