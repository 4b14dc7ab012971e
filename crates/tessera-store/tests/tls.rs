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

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sqlx::Connection;
use tessera_store::durable::{ConnectSettings, KeyStore, SqlStore};
use tessera_store::ephemeral::{EphemeralStore, FailoverStore, RedisStore};
use tessera_store::StoreError;
use tessera_testkit::tls::{tls_postgres, tls_redis, Pki};

// ---------------------------------------------------------------------------------------
// Redis

/// `SSL_CERT_FILE` is process-wide: one Redis case at a time.
static CERT_ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

    // No way around verification from the URL: this build has no `#insecure` mode.
    let err = RedisStore::connect(&format!("rediss://127.0.0.1:{port}/#insecure"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_)) && err.to_string().contains("insecure"),
        "{err}"
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
