//! The durable store's test suite, run against SQLite always and PostgreSQL when
//! `TESSERA_TEST_DATABASE_URL` is set (each test in a schema of its own).

use std::sync::Arc;

use tessera_store::durable::{ConnectSettings, KeyStore, SqlStore, StoredKey};

/// A store on a fresh database, and what keeps that database alive.
struct Fresh {
    store: SqlStore,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { base: String, schema: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { base, schema } = self {
            let (base, schema) = (base.clone(), schema.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(pg_execute(
                    &base,
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                ));
            })
            .join()
            .unwrap();
        }
    }
}

async fn pg_execute(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    conn.execute(sql).await.unwrap();
    conn.close().await.unwrap();
}

async fn fresh(backend: &str, migrate: bool) -> Option<Fresh> {
    let (url, guard) = match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
            (url, Guard::Sqlite(dir))
        }
        _ => {
            let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
                eprintln!("skipped: TESSERA_TEST_DATABASE_URL not set");
                return None;
            };
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let schema = format!(
                "s_{}_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos(),
                N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            pg_execute(&base, &format!("CREATE SCHEMA {schema}")).await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            (url, Guard::Postgres { base, schema })
        }
    };
    let store = SqlStore::connect(&ConnectSettings::new(url)).await.unwrap();
    if migrate {
        store.migrate().await.unwrap();
    }
    Some(Fresh { store, _guard: guard })
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name("sqlite").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name("postgres").await }
        }
    )*};
}

suite!(
    migrations_apply_from_empty_and_are_idempotent,
    fixture_rows_survive_later_migrations,
    exactly_one_bootstrap_wins,
    rotation_retires_only_the_same_algorithm,
    expired_keys_leave_the_live_set_and_are_pruned,
    duplicate_kid_is_a_conflict,
);

fn key(kid: &str, alg: &str, activates_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        encrypted_private_key: vec![1, 2, 3, 0, 255],
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        created_at: activates_at,
        activates_at,
        retires_at: None,
        expires_at: None,
    }
}

async fn migrations_apply_from_empty_and_are_idempotent(backend: &str) {
    let Some(db) = fresh(backend, false).await else {
        return;
    };
    let before = db.store.migration_status().await.unwrap();
    assert!(!before.is_empty());
    assert!(before.iter().all(|(_, _, applied)| !applied));
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    let after = db.store.migration_status().await.unwrap();
    assert!(after.iter().all(|(_, _, applied)| *applied), "{after:?}");
    db.store.ping().await.unwrap();
}

/// Data written under each migration must survive every later one (Hydra's migratest
/// idea): fixtures are inserted right after the migration that created their table.
async fn fixture_rows_survive_later_migrations(backend: &str) {
    let Some(db) = fresh(backend, false).await else {
        return;
    };
    let all = db.store.migration_status().await.unwrap();
    for (version, _, _) in &all {
        db.store.migrate_to(*version).await.unwrap();
        if *version == 1 {
            assert!(db
                .store
                .bootstrap_keys(&[key("fixture-1", "ES256", 100)])
                .await
                .unwrap());
        }
    }
    db.store.migrate().await.unwrap();
    let keys = db.store.all_keys().await.unwrap();
    assert_eq!(keys, vec![key("fixture-1", "ES256", 100)]);
}

async fn exactly_one_bootstrap_wins(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store: Arc<dyn KeyStore> = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .bootstrap_keys(&[
                    key(&format!("a{i}"), "ES256", 10),
                    key(&format!("b{i}"), "RS256", 10),
                ])
                .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        // A loser may see the marker row (false) or, on SQLite, a busy database that the
        // caller retries; neither may store keys.
        if let Ok(true) = task.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.all_keys().await.unwrap().len(), 2);
    assert!(!store.bootstrap_keys(&[key("late", "ES256", 10)]).await.unwrap());
}

async fn rotation_retires_only_the_same_algorithm(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .bootstrap_keys(&[key("es-1", "ES256", 10), key("rs-1", "RS256", 10)])
        .await
        .unwrap();
    store.rotate_key(&key("es-2", "ES256", 100), 50).await.unwrap();
    let keys = store.all_keys().await.unwrap();
    let by_kid = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().clone();
    assert_eq!(by_kid("es-1").retires_at, Some(100));
    assert_eq!(by_kid("es-1").expires_at, Some(150));
    assert_eq!(by_kid("es-2").retires_at, None);
    assert_eq!(by_kid("rs-1").retires_at, None);
    // A second rotation retires es-2 but leaves es-1's schedule alone.
    store.rotate_key(&key("es-3", "ES256", 200), 50).await.unwrap();
    let keys = store.all_keys().await.unwrap();
    let es1 = keys.iter().find(|k| k.kid == "es-1").unwrap();
    let es2 = keys.iter().find(|k| k.kid == "es-2").unwrap();
    assert_eq!((es1.retires_at, es1.expires_at), (Some(100), Some(150)));
    assert_eq!((es2.retires_at, es2.expires_at), (Some(200), Some(250)));
}

async fn expired_keys_leave_the_live_set_and_are_pruned(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store.bootstrap_keys(&[key("es-1", "ES256", 10)]).await.unwrap();
    store.rotate_key(&key("es-2", "ES256", 100), 50).await.unwrap();
    let live = |now| async move {
        store
            .live_keys(now)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect::<Vec<_>>()
    };
    assert_eq!(live(149).await, ["es-1", "es-2"]);
    assert_eq!(live(150).await, ["es-2"]);
    assert_eq!(store.prune_keys(150).await.unwrap(), 0);
    assert_eq!(store.prune_keys(151).await.unwrap(), 1);
    assert_eq!(store.all_keys().await.unwrap().len(), 1);
}

async fn duplicate_kid_is_a_conflict(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    db.store
        .bootstrap_keys(&[key("same", "ES256", 10)])
        .await
        .unwrap();
    let err = db
        .store
        .rotate_key(&key("same", "ES256", 20), 5)
        .await
        .unwrap_err();
    assert!(matches!(err, tessera_store::StoreError::Conflict(_)), "{err:?}");
    // The failed rotation changed nothing (one transaction).
    assert_eq!(db.store.all_keys().await.unwrap()[0].retires_at, None);
}
