//! TLS to PostgreSQL and Redis, against real servers this suite starts itself: a throwaway
//! CA and a server certificate for 127.0.0.1/localhost from the `openssl` CLI, a
//! `redis-server --tls-port` and a private PostgreSQL (`initdb` + `postgres -c ssl=on`) on
//! free ports. The shared servers on 5432/6379 are never touched.
//!
//! Redis trusts a private CA through the platform store, which `SSL_CERT_FILE` replaces by
//! one PEM bundle; the Redis cases change that variable, so they run one at a time (and
//! this suite is its own test binary, so no other suite sees it). PostgreSQL takes its CA
//! from the URL (`sslrootcert`).
//!
//! A missing `openssl`, `redis-server` or PostgreSQL skips the cases that need it with a
//! message, and fails them under `TESSERA_REQUIRE_INTEROP=1` (CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sqlx::Connection;
use tessera_store::durable::{ConnectSettings, KeyStore, SqlStore};
use tessera_store::ephemeral::{EphemeralStore, FailoverStore, RedisStore};
use tessera_store::StoreError;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Skips (returns `None`) with a message, or panics under `TESSERA_REQUIRE_INTEROP=1`.
fn missing<T>(what: &str) -> Option<T> {
    assert!(
        !std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1"),
        "{what} is required under TESSERA_REQUIRE_INTEROP=1"
    );
    eprintln!("skipped: {what} not available");
    None
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway CA, a server certificate it signed (SAN `127.0.0.1`, `localhost`), and a
/// second, unrelated CA that must not be trusted for that server.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Option<Pki> {
        if Command::new("openssl").arg("version").output().is_err() {
            return missing("openssl");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        for ca in ["ca", "other-ca"] {
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec"])
                .args([
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=Tessera test {ca}"),
                    "-keyout",
                ])
                .arg(p(&format!("{ca}.key")))
                .arg("-out")
                .arg(p(&format!("{ca}.pem"))));
        }
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-subj", "/CN=localhost", "-keyout"])
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")));
        std::fs::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(p("server.ext"))
            .arg("-out")
            .arg(p("server.pem")));
        Some(Pki { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, server: &mut Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("{what} exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on {port}");
}

// ---------------------------------------------------------------------------------------
// Redis

/// `SSL_CERT_FILE` is process-wide: one Redis case at a time.
static CERT_ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `redis-server` speaking only TLS on a free port.
async fn tls_redis(pki: &Pki) -> Option<(Server, u16)> {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--tls-cert-file")
        .arg(pki.path("server.pem"))
        .arg("--tls-key-file")
        .arg(pki.path("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(pki.path("ca.pem"))
        .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        return missing("redis-server");
    };
    let mut server = Server(child);
    wait_for_port(port, &mut server, "redis-server").await;
    Some((server, port))
}

/// Trust exactly `pem` (a PEM bundle) for Redis from now on.
fn trust(pem: &Path) {
    std::env::set_var("SSL_CERT_FILE", pem);
}

#[tokio::test]
async fn redis_store_and_failover_store_speak_tls_to_a_private_ca_server() {
    let _env = CERT_ENV.lock().await;
    let Some(pki) = Pki::new() else { return };
    let Some((_server, port)) = tls_redis(&pki).await else {
        return;
    };
    trust(&pki.path("ca.pem"));

    for host in ["127.0.0.1", "localhost"] {
        let url = format!("rediss://{host}:{port}");
        let store = RedisStore::connect(&url).await.unwrap();
        store
            .set("tls:probe", b"v1", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.get("tls:probe").await.unwrap().as_deref(), Some(&b"v1"[..]));
        // Pub/sub opens its own connection: over TLS too.
        let mut sub = store.subscribe("tls-channel").await.unwrap();
        store.publish("tls-channel", "hello").await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("hello"));
        store.delete("tls:probe").await.unwrap();
    }

    let failover = FailoverStore::connect(&format!("rediss://127.0.0.1:{port}"))
        .await
        .unwrap();
    assert!(
        !failover.degraded(),
        "the failover store must be on Redis, not its fallback"
    );
    assert_eq!(
        failover.incr("tls:count", Duration::from_secs(60)).await.unwrap(),
        1
    );
    // The same counter through a second client proves it is Redis's, not a local one.
    let other = RedisStore::connect(&format!("rediss://localhost:{port}"))
        .await
        .unwrap();
    assert_eq!(other.incr("tls:count", Duration::from_secs(60)).await.unwrap(), 2);
}

#[tokio::test]
async fn redis_over_tls_refuses_a_server_signed_by_an_untrusted_ca() {
    let _env = CERT_ENV.lock().await;
    let Some(pki) = Pki::new() else { return };
    let Some((_server, port)) = tls_redis(&pki).await else {
        return;
    };
    trust(&pki.path("other-ca.pem"));

    let started = Instant::now();
    let err = RedisStore::connect(&format!("rediss://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::Unavailable(_)) && message.contains("UnknownIssuer"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // The failover store stays up, but on its per-node fallback: nothing reached Redis.
    let failover = FailoverStore::connect(&format!("rediss://127.0.0.1:{port}"))
        .await
        .unwrap();
    assert!(failover.degraded());
}

#[tokio::test]
async fn plaintext_redis_to_a_tls_port_fails() {
    let _env = CERT_ENV.lock().await;
    let Some(pki) = Pki::new() else { return };
    let Some((_server, port)) = tls_redis(&pki).await else {
        return;
    };
    trust(&pki.path("ca.pem"));

    let started = Instant::now();
    let err = RedisStore::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// A private PostgreSQL that accepts only TLS connections (`hostssl` in pg_hba.conf) from
/// 127.0.0.1, as `postgres` with trust auth, and no Unix socket.
struct TlsPostgres {
    _server: Server,
    _dir: tempfile::TempDir,
    port: u16,
}

/// Runs a PostgreSQL program as the `postgres` user when this is root (it refuses root).
fn pg_command(program: &str, root: bool) -> Command {
    let path = format!("{PG_BIN}/{program}");
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", &path]);
        cmd
    } else {
        Command::new(path)
    }
}

async fn tls_postgres(pki: &Pki) -> Option<TlsPostgres> {
    if !Path::new(PG_BIN).join("initdb").exists() {
        return missing("PostgreSQL 15 server binaries");
    }
    let root = String::from_utf8_lossy(&run(Command::new("id").arg("-u")).stdout).trim() == "0";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The key must belong to the server's user and be private to it.
    std::fs::copy(pki.path("server.pem"), dir.path().join("server.pem")).unwrap();
    std::fs::copy(pki.path("server.key"), dir.path().join("server.key")).unwrap();
    run(Command::new("chmod")
        .arg("0600")
        .arg(dir.path().join("server.key")));
    if root {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path()));
    }
    run(pg_command("initdb", root)
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "-D"])
        .arg(&data)
        .stdout(Stdio::null()));
    std::fs::write(data.join("pg_hba.conf"), "hostssl all all 127.0.0.1/32 trust\n").unwrap();
    if root {
        run(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(data.join("pg_hba.conf")));
    }
    let port = free_port();
    let child = pg_command("postgres", root)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args([
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "ssl=on",
        ])
        .arg("-c")
        .arg(format!(
            "ssl_cert_file={}",
            dir.path().join("server.pem").display()
        ))
        .arg("-c")
        .arg(format!(
            "ssl_key_file={}",
            dir.path().join("server.key").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    wait_for_port(port, &mut server, "postgres").await;
    Some(TlsPostgres {
        _server: server,
        _dir: dir,
        port,
    })
}

/// Whether the connection at `url` is encrypted, as the server sees it.
async fn server_sees_tls(url: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let (ssl,): (bool,) = sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    ssl
}

#[tokio::test]
async fn postgres_over_tls_verifies_the_server_and_refuses_cleartext() {
    let started = Instant::now();
    let Some(pki) = Pki::new() else { return };
    let Some(pg) = tls_postgres(&pki).await else {
        return;
    };
    let base = format!("postgres://postgres@localhost:{}/postgres", pg.port);
    let ca = pki.path("ca.pem");
    let ready = started.elapsed();

    // verify-full: the chain up to the private CA and the host name are checked.
    let full = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let store = SqlStore::connect(&ConnectSettings::new(&full)).await.unwrap();
    store.migrate().await.unwrap();
    let status = store.migration_status().await.unwrap();
    assert!(!status.is_empty() && status.iter().all(|(_, _, applied)| *applied));
    assert!(store.all_keys().await.unwrap().is_empty());
    store.close().await;
    assert!(server_sees_tls(&full).await);

    // require: encrypted, without verifying the certificate (libpq's meaning).
    let require = format!("{base}?sslmode=require");
    let store = SqlStore::connect(&ConnectSettings::new(&require)).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
    assert!(server_sees_tls(&require).await);

    // verify-full against another CA fails, and names the cause.
    let other = pki.path("other-ca.pem");
    let wrong = format!("{base}?sslmode=verify-full&sslrootcert={}", other.display());
    let err = SqlStore::connect(&ConnectSettings::new(&wrong))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_)) && err.to_string().contains("UnknownIssuer"),
        "{err}"
    );

    // The certificate names 127.0.0.1 too: verify-full accepts the address.
    let by_address = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        pg.port,
        ca.display()
    );
    assert!(server_sees_tls(&by_address).await);

    // Cleartext is refused by this server (hostssl only), so the successes above were TLS.
    let err = SqlStore::connect(&ConnectSettings::new(format!("{base}?sslmode=disable")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no encryption"), "{err}");

    eprintln!(
        "private PostgreSQL with TLS ready in {ready:?}; whole test {:?}",
        started.elapsed()
    );
}
