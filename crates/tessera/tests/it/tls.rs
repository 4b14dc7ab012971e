//! `tessera serve` over TLS to a private PostgreSQL (`sslmode=verify-full`, `sslrootcert`)
//! and a TLS-only Redis (`rediss://`, the private CA trusted through `SSL_CERT_FILE`), both
//! started by the test (tessera_testkit::tls); the servers refuse cleartext, so a node that
//! is ready spoke TLS to both. Skips without openssl / redis-server / PostgreSQL binaries,
//! fails under `TESSERA_REQUIRE_INTEROP=1`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::tls::{tls_postgres, tls_redis, Pki};
use tessera_testkit::Process;

const READY: Duration = Duration::from_secs(60);
/// Base64 of 32 bytes: a database other than the embedded SQLite needs a shared master key.
const MASTER_KEY: &str = "dGxzLXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcy0hISE=";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

#[tokio::test]
async fn serve_speaks_tls_to_postgres_and_redis_with_a_private_ca() {
    let Some(pki) = Pki::new() else { return };
    let Some(pg) = tls_postgres(&pki).await else {
        return;
    };
    let Some((_redis, redis_port)) = tls_redis(&pki).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.path("ca.pem").display().to_string();
    let mut node = Process::serve_in(
        binary(),
        dir.path(),
        &[
            (
                "TESSERA_DATABASE_URL",
                format!(
                    "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
                    pg.port
                ),
            ),
            ("TESSERA_REDIS_URL", format!("rediss://localhost:{redis_port}")),
            ("SSL_CERT_FILE", ca.clone()),
            ("TESSERA_MASTER_KEY", MASTER_KEY.to_owned()),
        ],
    );
    node.wait_ready(READY).await;
    let response = reqwest::get(format!("{}/readyz", node.url)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}\n{}", node.stderr());
    assert_eq!(body["checks"]["database"]["backend"], "postgres", "{body}");
    assert_eq!(body["checks"]["ephemeral"]["backend"], "redis", "{body}");
    assert_eq!(body["checks"]["ephemeral"]["status"], "ok", "{body}");
    assert_eq!(body["checks"]["keys"]["status"], "ok", "{body}");
}

#[tokio::test]
async fn serve_refuses_a_database_certificate_from_an_untrusted_ca() {
    let Some(pki) = Pki::new() else { return };
    let Some(pg) = tls_postgres(&pki).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other = pki.path("other-ca.pem").display().to_string();
    let mut node = Process::serve_in(
        binary(),
        dir.path(),
        &[
            (
                "TESSERA_DATABASE_URL",
                format!(
                    "postgres://postgres:s3cret-pw@localhost:{}/postgres?sslmode=verify-full&sslrootcert={other}",
                    pg.port
                ),
            ),
            ("TESSERA_MASTER_KEY", MASTER_KEY.to_owned()),
        ],
    );
    let status = node.wait_exit(Duration::from_secs(30)).await;
    let stderr = node.stderr();
    assert!(status.is_some_and(|s| !s.success()), "{status:?}\n{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
}
