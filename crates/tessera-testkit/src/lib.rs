//! Boots real Tessera nodes for tests.
//!
//! - [`spawn`] starts a node in this process on `127.0.0.1:0`, on a fresh database (a temp
//!   SQLite file, or a fresh schema in the PostgreSQL named by `TESSERA_TEST_DATABASE_URL`),
//!   with a [`ManualClock`], and hands back an HTTP client pointed at it.
//! - [`backend_tests!`] runs each test function once per backend; the PostgreSQL variant
//!   says it was skipped when no server is configured.
//! - [`Process`] runs the real `tessera` binary, for what only a process shows (signals,
//!   exit codes, start-up errors).

mod process;

use std::sync::Arc;

use tempfile::TempDir;
use tessera_idp::clock::ManualClock;
use tessera_idp::state::AppState;
use tessera_idp::{Config, Node};
use tokio::task::JoinHandle;

pub use process::{free_port, Process};

/// Environment variable naming a PostgreSQL server for tests (`postgres://…/test`).
pub const DATABASE_URL_VAR: &str = "TESSERA_TEST_DATABASE_URL";
/// Environment variable naming a Redis server for tests (`redis://127.0.0.1:6379`).
pub const REDIS_URL_VAR: &str = "TESSERA_TEST_REDIS_URL";

/// Where a test node keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temp SQLite file and the in-process ephemeral store (the embedded default).
    Sqlite,
    /// A fresh schema in `TESSERA_TEST_DATABASE_URL`, and Redis when
    /// `TESSERA_TEST_REDIS_URL` is set.
    Postgres,
}

/// A running node.
pub struct TestNode {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    server: JoinHandle<()>,
    _data_dir: TempDir,
    _schema: Option<PgSchema>,
}

impl TestNode {
    /// The absolute URL of `path` on this node.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.at(path))
            .send()
            .await
            .expect("request failed")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("response is not JSON"))
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A test configuration for `backend`, or `None` (after printing why) when the backend is
/// not available here. The data directory lives as long as the returned guard.
pub fn config_for(backend: Backend) -> Option<(Config, TempDir, Option<PgSchema>)> {
    let data_dir = tempfile::tempdir().expect("cannot create temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    config.http.shutdown_grace_secs = 2;
    let schema = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let Ok(base) = std::env::var(DATABASE_URL_VAR) else {
                eprintln!("skipped: {DATABASE_URL_VAR} not set");
                return None;
            };
            let schema = PgSchema::create(&base);
            config.database_url = Some(tessera_idp::secret::Secret::new(schema.url.clone()));
            config.master_key = Some(tessera_idp::secret::Secret::new(
                "dGVzc2VyYS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=",
            ));
            if let Ok(redis) = std::env::var(REDIS_URL_VAR) {
                config.redis_url = Some(tessera_idp::secret::Secret::new(redis));
            }
            Some(schema)
        }
    };
    Some((config, data_dir, schema))
}

/// Starts a node on `backend` with the test defaults.
pub async fn spawn(backend: Backend) -> Option<TestNode> {
    spawn_with(backend, |_| {}).await
}

/// Starts a node on `backend` after `adjust` has changed the test configuration.
pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestNode> {
    let (mut config, data_dir, schema) = config_for(backend)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("cannot bind");
    let url = format!("http://{}", listener.local_addr().expect("no local addr"));
    config.issuer = Some(url.clone());
    adjust(&mut config);
    let clock = Arc::new(ManualClock::starting_now());
    let node = Node::start_with_clock(config.clone(), clock.clone())
        .await
        .expect("test node failed to start");
    let state = node.state().clone();
    let server = tokio::spawn(async move {
        let _ = node.serve(listener, std::future::pending()).await;
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("cannot build client");
    Some(TestNode {
        url,
        client,
        state,
        clock,
        config,
        server,
        _data_dir: data_dir,
        _schema: schema,
    })
}

/// A PostgreSQL schema made for one test and dropped after it, so tests run in parallel
/// on one database without seeing each other's rows.
pub struct PgSchema {
    base: String,
    name: String,
    /// The base URL with `search_path` set to this schema.
    pub url: String,
}

impl PgSchema {
    pub fn create(base: &str) -> PgSchema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("t_{}_{}_{}", std::process::id(), nanos % 1_000_000_000_000, n);
        run_pg(base, &format!("CREATE SCHEMA {name}"));
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        PgSchema {
            base: base.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        run_pg(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

/// Runs one statement on a fresh connection from a thread of its own, so it works from
/// `Drop` and from inside or outside a runtime.
fn run_pg(url: &str, statement: &str) {
    let url = url.to_owned();
    let statement = statement.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            use sqlx::{Connection, Executor};
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url)
                .await
                .expect("cannot connect to TESSERA_TEST_DATABASE_URL");
            conn.execute(statement.as_str()).await.expect("statement failed");
            let _ = conn.close().await;
        });
    })
    .join()
    .expect("postgres helper thread panicked");
}

/// Runs each named `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}
