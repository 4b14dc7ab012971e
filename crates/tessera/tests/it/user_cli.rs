//! `tessera user create|show|disable|enable|delete|import` as the real binary: each test runs
//! it in a temp working directory with its own SQLite data directory, and where it matters
//! starts `tessera serve` on that directory and talks HTTP to it, while a second process
//! changes the same users.
//!
//! The legacy hashes below were made outside Tessera (Python's `bcrypt` 5.0, `hashlib` and
//! `argon2-cffi` 25.1) and checked against their passwords there; the Spring Security and
//! jBCrypt ones are published vectors, checked the same way.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use tessera_testkit::Process;

/// Base64 of the 32 bytes `tessera-cli-test-master-key-A-32`.
const MASTER_KEY: &str = "dGVzc2VyYS1jbGktdGVzdC1tYXN0ZXIta2V5LUEtMzI=";
const READY: Duration = Duration::from_secs(60);
const EXIT: Duration = Duration::from_secs(60);

const PASSWORD: &str = "correct horse battery staple 42";

/// Spring Security's `BCryptPasswordEncoder` documentation example: "password".
const SPRING_BCRYPT: &str = "$2a$10$dXJ3SW6G7P50lGmMkkmwe.20cQQubK3.HZWzG3YB1tlRy.fqvM/BG";
/// Python `bcrypt.hashpw(b"imported bcrypt passphrase 7", b"$2b$04$abcdefghijklmnopqrstuu")`.
const PY_BCRYPT: &str = "$2b$04$abcdefghijklmnopqrstuu24UZ/X6vuMGAjEJzHVyhPjdQtdVFvrm";
const PY_BCRYPT_PASSWORD: &str = "imported bcrypt passphrase 7";
/// jBCrypt's test vector for "abc" (cost 6), behind Spring's `{bcrypt}` prefix.
const JBCRYPT: &str = "{bcrypt}$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i";
/// PBKDF2-HMAC-SHA256, 10 000 rounds, salt "tessera-import-salt!", of
/// "imported pbkdf2 passphrase 8", as a PHC string (`hashlib.pbkdf2_hmac`).
const PBKDF2: &str =
    "$pbkdf2-sha256$i=10000,l=32$dGVzc2VyYS1pbXBvcnQtc2FsdCE$Ufap5mVaPYMAzh+ibUT7K5yhsbyUZfm/4z1w/l29SIs";
const PBKDF2_PASSWORD: &str = "imported pbkdf2 passphrase 8";
/// Argon2id (m=4096, t=2, p=1, no key id, no pepper) of "imported argon2 passphrase 9"
/// (`argon2.low_level.hash_secret`).
const ARGON2: &str =
    "$argon2id$v=19$m=4096,t=2,p=1$dGVzc2VyYS1hcmdvbi1zYWx0$o8a3hxBPnozQrE9twWQtwwJrjKSNQ5HVYlt7RMxp2kQ";
const ARGON2_PASSWORD: &str = "imported argon2 passphrase 9";
const MD5: &str = "md5:5f4dcc3b5aa765d61d8327deb882cf99";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

/// A temp working directory with a data directory inside; every command runs with the same
/// data directory and master key.
struct Sandbox {
    dir: TempDir,
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "TESSERA_DATA_DIR",
                self.dir.path().join("data").display().to_string(),
            ),
            ("TESSERA_MASTER_KEY", MASTER_KEY.to_owned()),
        ]
    }

    async fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut envs: Vec<(String, String)> =
            self.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        envs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let finished = Process::run_in(binary(), self.dir.path(), args, &envs, EXIT).await;
        Output {
            status: finished.status,
            stdout: finished.stdout,
            stderr: finished.stderr,
        }
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[]).await
    }

    /// Runs `args`, asserts success, returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        output.assert_success(args);
        output.stdout
    }

    /// `user show EMAIL --json`.
    async fn show(&self, email: &str) -> Value {
        let stdout = self.ok(&["user", "show", email, "--json"]).await;
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// Makes the signing keys (the first command in a data directory logs that it did, which
    /// would be a second stderr line) and a first user.
    async fn init(&self) {
        self.ok(&[
            "user",
            "create",
            "--email",
            "first@example.com",
            "--password",
            PASSWORD,
        ])
        .await;
    }

    async fn serve(&self) -> Process {
        let mut server = Process::serve_in(binary(), self.dir.path(), &self.env());
        server.wait_ready(READY).await;
        server
    }
}

impl Output {
    fn assert_success(&self, args: &[&str]) {
        assert!(
            self.status.success(),
            "tessera {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }

    /// A non-zero exit, nothing on stdout, and exactly one stderr line: `error: …` naming
    /// every one of `mentions`.
    fn assert_one_error_line(&self, mentions: &[&str]) -> String {
        assert!(
            !self.status.success() && self.status.code().is_some(),
            "expected a failure, got {}:\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(self.stdout.is_empty(), "{}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one stderr line:\n{}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{:?}", lines[0]);
        for mention in mentions {
            assert!(
                lines[0].contains(mention),
                "{:?} does not mention {mention:?}",
                lines[0]
            );
        }
        lines[0].to_owned()
    }
}

/// SIGTERM and a clean exit.
async fn stop(server: &mut Process) {
    server.signal("TERM");
    let status = server.wait_exit(EXIT).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}:\n{}",
        server.stderr()
    );
}

/// `POST /auth/login` on `server`: status and JSON.
async fn login(server: &Process, email: &str, password: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/auth/login", server.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Logs in, asserting 200; returns the pair.
async fn login_ok(server: &Process, email: &str, password: &str) -> (String, String) {
    let (status, body) = login(server, email, password).await;
    assert_eq!(status, 200, "login of {email}: {body}\n{}", server.stderr());
    (
        body["accessToken"].as_str().unwrap().to_owned(),
        body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn member_me(server: &Process, access: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/api/member/me", server.url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// No password hash, and not the start of one, in `text`.
fn assert_no_hash(text: &str) {
    for needle in [
        "$argon2",
        "$2a$",
        "$2b$",
        "$pbkdf2",
        "keyid=",
        "password_hash",
        "dXJ3SW6G7P50lGmMkkmwe",
        "24UZ/X6vuMGAjEJzHVyhPjdQtdVFvrm",
        "Ufap5mVaPYMAzh",
        "o8a3hxBPnozQrE9t",
        "5f4dcc3b5aa765d61d8327deb882cf99",
    ] {
        assert!(!text.contains(needle), "{needle:?} printed:\n{text}");
    }
}

// --- create, show, refusals ------------------------------------------------------------------

#[tokio::test]
async fn user_create_and_show_never_print_the_hash_and_refusals_are_one_line() {
    let sandbox = Sandbox::new();
    let created = sandbox
        .ok(&[
            "user",
            "create",
            "--email",
            " Admin.Ops@Example.COM ",
            "--password",
            PASSWORD,
            "--verified",
            "--role",
            "admin",
            "--role",
            "ops",
        ])
        .await;
    let printed: Vec<&str> = created.split_whitespace().collect();
    assert_eq!(printed.len(), 2, "{created}");
    assert_eq!(printed[1], "admin.ops@example.com");
    let id = printed[0].to_owned();

    let shown = sandbox.show("ADMIN.OPS@example.com").await;
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["email"], "admin.ops@example.com");
    assert_eq!(shown["email_verified"], true);
    assert_eq!(shown["password_algorithm"], "argon2id");
    assert_eq!(shown["roles"], json!(["admin", "ops"]));
    assert_eq!(shown["disabled"], false);
    assert!(shown["password_changed_at"].is_i64(), "{shown}");
    let table = sandbox.run(&["user", "show", "admin.ops@example.com"]).await;
    table.assert_success(&["user", "show"]);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("password_algorithm") && l.contains("\"argon2id\"")),
        "{}",
        table.stdout
    );
    for text in [&created, &table.stdout, &table.stderr] {
        assert_no_hash(text);
    }
    assert_no_hash(&shown.to_string());

    // The password from the environment (out of shell history) works alike; unverified.
    let output = sandbox
        .run_with(
            &["user", "create", "--email", "env@example.com"],
            &[("TESSERA_USER_PASSWORD", "amber kettle sings over mountains 19")],
        )
        .await;
    output.assert_success(&["user", "create"]);
    let shown = sandbox.show("env@example.com").await;
    assert_eq!(shown["email_verified"], false);
    assert_eq!(shown["roles"], json!([]));

    // Refusals: one line each, and nothing created or changed.
    let sandbox = &sandbox;
    let refused = |email: &'static str, password: &'static str| async move {
        sandbox
            .run(&["user", "create", "--email", email, "--password", password])
            .await
    };
    refused("weak@example.com", "password1")
        .await
        .assert_one_error_line(&["too easy to guess"]);
    refused("short@example.com", "short")
        .await
        .assert_one_error_line(&["at least 8 characters"]);
    refused("not an address", PASSWORD)
        .await
        .assert_one_error_line(&["e-mail"]);
    refused("ADMIN.OPS@example.com", "violet tractor whispers at dawn 7")
        .await
        .assert_one_error_line(&["exists"]);
    for email in ["weak@example.com", "short@example.com"] {
        sandbox
            .run(&["user", "show", email])
            .await
            .assert_one_error_line(&["no such user"]);
    }
    let shown = sandbox.show("admin.ops@example.com").await;
    assert_eq!(shown["id"], id.as_str(), "the duplicate replaced the user");
    assert_eq!(shown["roles"], json!(["admin", "ops"]));
}

#[tokio::test]
async fn an_invalid_role_is_named_as_such() {
    let sandbox = Sandbox::new();
    sandbox.init().await;
    let output = sandbox
        .run(&[
            "user",
            "create",
            "--email",
            "roles@example.com",
            "--password",
            PASSWORD,
            "--role",
            "bad role",
        ])
        .await;
    let line = output.assert_one_error_line(&["role"]);
    assert!(!line.contains("password"), "{line}");
    sandbox
        .run(&["user", "show", "roles@example.com"])
        .await
        .assert_one_error_line(&["no such user"]);
}

// --- import ----------------------------------------------------------------------------------

/// Line numbers matter: the expected rejections are lines 6, 7 and 8.
fn import_file() -> String {
    let line = |email: &str, hash: &str, extra: &str| {
        format!(
            r#"{{"email":{},"password_hash":{}{extra}}}"#,
            json!(email),
            json!(hash)
        )
    };
    [
        line(
            "spring@example.com",
            SPRING_BCRYPT,
            r#","email_verified":true,"roles":["member"]"#,
        ),
        line(
            "Python.Bcrypt@Example.com",
            PY_BCRYPT,
            r#","email_verified":true"#,
        ),
        line("jbcrypt@example.com", JBCRYPT, r#","email_verified":true"#),
        line("pbkdf2@example.com", PBKDF2, r#","email_verified":true"#),
        line("argon2@example.com", ARGON2, r#","email_verified":true"#),
        // 6: not an address. 7: a hash format Tessera cannot verify. 8: not JSON.
        line("not an address", SPRING_BCRYPT, ""),
        line("md5@example.com", MD5, ""),
        format!(r#"{{"email": "broken@example.com", "password_hash": "{SPRING_BCRYPT}"#),
        // 9: empty, ignored. 10: spring@ again (another case, another hash): left alone.
        String::new(),
        line("SPRING@example.com", PY_BCRYPT, r#","email_verified":true"#),
    ]
    .join("\n")
        + "\n"
}

/// (address, password, algorithm as imported)
const IMPORTED: [(&str, &str, &str); 5] = [
    ("spring@example.com", "password", "bcrypt"),
    ("python.bcrypt@example.com", PY_BCRYPT_PASSWORD, "bcrypt"),
    ("jbcrypt@example.com", "abc", "bcrypt"),
    ("pbkdf2@example.com", PBKDF2_PASSWORD, "pbkdf2-sha256"),
    ("argon2@example.com", ARGON2_PASSWORD, "argon2"),
];

#[tokio::test]
async fn user_import_then_login_upgrades_legacy_hashes_to_argon2id() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("users.jsonl", &import_file());
    let output = sandbox.run(&["user", "import", &file]).await;
    output.assert_success(&["user", "import"]);
    assert_eq!(
        output.stdout,
        "imported 5, skipped 1 (already present), rejected 3\n"
    );
    let rejected: Vec<&str> = output.stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(rejected.len(), 3, "{}", output.stderr);
    assert!(
        rejected[0].starts_with("line 6: ") && rejected[0].contains("e-mail"),
        "{rejected:?}"
    );
    assert!(
        rejected[1].starts_with("line 7: ") && rejected[1].contains("unsupported password hash"),
        "{rejected:?}"
    );
    assert!(rejected[2].starts_with("line 8: "), "{rejected:?}");
    assert_no_hash(&output.stdout);
    assert_no_hash(&output.stderr);

    for (email, _, algorithm) in IMPORTED {
        let shown = sandbox.show(email).await;
        assert_eq!(shown["password_algorithm"], algorithm, "{shown}");
        assert_eq!(shown["email_verified"], true, "{shown}");
        assert!(shown["password_changed_at"].is_null(), "{shown}");
    }
    assert_eq!(
        sandbox.show("spring@example.com").await["roles"],
        json!(["member"])
    );
    for email in ["md5@example.com", "broken@example.com"] {
        sandbox
            .run(&["user", "show", email])
            .await
            .assert_one_error_line(&["no such user"]);
    }

    // Each logs in with the old password; the hash is replaced at that login.
    let mut server = sandbox.serve().await;
    for (email, password, _) in IMPORTED {
        let (access, _) = login_ok(&server, email, password).await;
        assert_eq!(member_me(&server, &access).await, 200);
        let (status, body) = login(&server, email, "wrong password entirely").await;
        assert_eq!(status, 401, "{body}");
    }
    // The skipped duplicate line did not replace spring@'s hash.
    let (status, body) = login(&server, "spring@example.com", PY_BCRYPT_PASSWORD).await;
    assert_eq!(status, 401, "{body}");
    stop(&mut server).await;

    for (email, _, _) in IMPORTED {
        let shown = sandbox.show(email).await;
        assert_eq!(shown["password_algorithm"], "argon2id", "{shown}");
        // An upgrade is not a password change.
        assert!(shown["password_changed_at"].is_null(), "{shown}");
        assert_no_hash(&shown.to_string());
    }
    // And the upgraded hashes work.
    let mut server = sandbox.serve().await;
    for (email, password, _) in IMPORTED {
        login_ok(&server, email, password).await;
    }
    stop(&mut server).await;
}

#[tokio::test]
async fn user_import_of_a_missing_file_is_one_line() {
    let sandbox = Sandbox::new();
    sandbox.init().await;
    sandbox
        .run(&["user", "import", "nowhere.jsonl"])
        .await
        .assert_one_error_line(&["nowhere.jsonl"]);
}

// --- disable, enable, delete against a running server ----------------------------------------

#[tokio::test]
async fn user_disable_in_a_second_process_ends_the_running_servers_sessions() {
    let sandbox = Sandbox::new();
    let email = "ops@example.com";
    sandbox
        .ok(&[
            "user",
            "create",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--verified",
        ])
        .await;
    let mut server = sandbox.serve().await;
    let (access, refresh) = login_ok(&server, email, PASSWORD).await;
    let (access2, _) = login_ok(&server, email, PASSWORD).await;
    assert_eq!(member_me(&server, &access).await, 200);

    // Another process, the same SQLite database, while the server runs.
    let disabled = sandbox.ok(&["user", "disable", "OPS@example.com"]).await;
    assert_eq!(disabled, "disabled; ended 2 session(s)\n");
    assert_eq!(sandbox.show(email).await["disabled"], true);
    assert_eq!(member_me(&server, &access).await, 401);
    assert_eq!(member_me(&server, &access2).await, 401);
    let response = reqwest::Client::new()
        .post(format!("{}/auth/reissue", server.url))
        .json(&json!({"accessToken": access, "refreshToken": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, body) = login(&server, email, PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("account_disabled")),
        "{body}"
    );

    assert_eq!(sandbox.ok(&["user", "enable", email]).await, "enabled\n");
    assert_eq!(sandbox.show(email).await["disabled"], false);
    let (access3, _) = login_ok(&server, email, PASSWORD).await;
    assert_eq!(member_me(&server, &access3).await, 200);
    assert_eq!(
        member_me(&server, &access).await,
        401,
        "ended sessions stay ended"
    );

    assert_eq!(sandbox.ok(&["user", "delete", email]).await, "deleted\n");
    assert_eq!(member_me(&server, &access3).await, 401);
    let (status, body) = login(&server, email, PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_credentials")),
        "{body}"
    );
    stop(&mut server).await;

    for command in ["show", "disable", "enable", "delete"] {
        sandbox
            .run(&["user", command, email])
            .await
            .assert_one_error_line(&["no such user"]);
    }
}

// --- roles, separation of duty, decisions ---------------------------------------------------

#[tokio::test]
async fn roles_grants_and_decisions_from_the_command_line() {
    let sandbox = Sandbox::new();
    sandbox.init().await;
    sandbox
        .ok(&["role", "create", "viewer", "--permission", "orders:read"])
        .await;
    let shown = sandbox
        .ok(&[
            "role",
            "create",
            "clerk",
            "--inherits",
            "viewer",
            "--permission",
            "orders:refund",
        ])
        .await;
    assert!(
        shown.contains("effective_permissions  orders:read orders:refund"),
        "{shown}"
    );
    sandbox
        .ok(&["role", "create", "auditor", "--permission", "audit:read"])
        .await;
    sandbox.ok(&["sod", "add", "clerk", "auditor"]).await;

    sandbox.ok(&["user", "grant", "first@example.com", "clerk"]).await;
    let decision: Value = serde_json::from_str(
        &sandbox
            .ok(&["authz", "check", "first@example.com", "orders:read", "--json"])
            .await,
    )
    .unwrap();
    assert_eq!(decision["allowed"], true, "{decision}");
    assert_eq!(decision["granted_by"], "viewer");
    let denied = sandbox
        .ok(&["authz", "check", "first@example.com", "audit:read"])
        .await;
    assert!(
        denied.starts_with("deny: no role of the user grants audit:read"),
        "{denied}"
    );

    // Refusals are one line each and change nothing.
    sandbox
        .run(&["user", "grant", "first@example.com", "auditor"])
        .await
        .assert_one_error_line(&["separation-of-duty"]);
    sandbox
        .run(&["role", "update", "viewer", "--inherits", "clerk"])
        .await
        .assert_one_error_line(&["cycle", "viewer -> clerk -> viewer"]);
    sandbox
        .run(&["role", "delete", "viewer"])
        .await
        .assert_one_error_line(&["clerk"]);
    sandbox
        .run(&["role", "create", "x", "--inherits", "ghost"])
        .await
        .assert_one_error_line(&["ghost"]);
    assert_eq!(sandbox.show("first@example.com").await["roles"], json!(["clerk"]));

    sandbox
        .ok(&["user", "revoke-role", "first@example.com", "clerk"])
        .await;
    let roles: Value = serde_json::from_str(&sandbox.ok(&["role", "list", "--json"]).await).unwrap();
    assert_eq!(roles.as_array().map(Vec::len), Some(3), "{roles}");
    let rules: Value = serde_json::from_str(&sandbox.ok(&["sod", "list", "--json"]).await).unwrap();
    let id = rules[0]["id"].as_str().unwrap().to_owned();
    sandbox.ok(&["sod", "remove", &id]).await;

    // Assignments with terms, dynamic rules, and decisions at a given time.
    let granted = sandbox
        .ok(&[
            "user",
            "grant",
            "first@example.com",
            "auditor",
            "--channel",
            "mobile",
            "--until",
            "2030-01-01T00:00:00Z",
        ])
        .await;
    assert!(
        granted.contains(r#"auditor: {"until":1893456000,"condition":{"channels":["mobile"]}}"#),
        "{granted}"
    );
    let at = |when: &'static str| {
        let sandbox = &sandbox;
        async move {
            let out = sandbox
                .ok(&[
                    "authz",
                    "check",
                    "first@example.com",
                    "audit:read",
                    "--channel",
                    "mobile",
                    "--at",
                    when,
                    "--json",
                ])
                .await;
            serde_json::from_str::<Value>(&out).unwrap()["allowed"].clone()
        }
    };
    assert_eq!(at("2029-12-31T23:59:59Z").await, true);
    assert_eq!(at("1893456000").await, false, "the assignment ended");
    // (A flag clap cannot parse is clap's usage error, exit 2.)
    let bad_time = sandbox
        .run(&[
            "user",
            "grant",
            "first@example.com",
            "auditor",
            "--until",
            "next tuesday",
        ])
        .await;
    assert_eq!(bad_time.status.code(), Some(2), "{}", bad_time.stderr);
    assert!(bad_time.stderr.contains("RFC 3339"), "{}", bad_time.stderr);
    sandbox
        .run(&[
            "user",
            "grant",
            "first@example.com",
            "auditor",
            "--condition",
            r#"{"time":{"zone":"Nowhere/City","from":"08:00","to":"18:00"}}"#,
        ])
        .await
        .assert_one_error_line(&["time zone"]);
    sandbox.ok(&["user", "grant", "first@example.com", "clerk"]).await;
    let listed = sandbox.ok(&["sod", "add", "clerk", "auditor", "--dynamic"]).await;
    assert!(listed.contains("dynamic  auditor clerk"), "{listed}");
    assert_eq!(
        sandbox.show("first@example.com").await["roles"],
        json!(["auditor", "clerk"]),
        "a dynamic rule lets a user hold both"
    );
}
