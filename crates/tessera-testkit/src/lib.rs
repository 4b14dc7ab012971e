//! Boots real Tessera nodes for tests.
//!
//! - [`spawn`] starts a node in this process on `127.0.0.1:0`, on a fresh database (a temp
//!   SQLite file, or a fresh schema in the PostgreSQL named by `TESSERA_TEST_DATABASE_URL`),
//!   with a [`ManualClock`], and hands back an HTTP client pointed at it.
//! - [`backend_tests!`] runs each test function once per backend; the PostgreSQL variant
//!   says it was skipped when no server is configured.
//! - [`Process`] runs the real `tessera` binary, for what only a process shows (signals,
//!   exit codes, start-up errors).

mod browser;
pub mod dpop;
mod process;
mod smtp;
pub mod tls;

use std::sync::Arc;

use tempfile::TempDir;
use tessera_idp::clock::ManualClock;
use tessera_idp::state::AppState;
use tessera_idp::Config;
use tokio::task::JoinHandle;

pub use browser::{Browser, Page};
pub use dpop::DpopKey;
pub use process::{free_port, Finished, Process};
pub use smtp::{ReceivedMail, SmtpSink};

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
    let node = tessera_web::start_with_clock(config.clone(), clock.clone())
        .await
        .expect("test node failed to start");
    let state = node.state().clone();
    let server = tokio::spawn(async move {
        let _ = tessera_web::serve(node, listener, std::future::pending()).await;
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
/// `Drop` and from inside or outside a runtime. A deadlock (SQLSTATE 40P01) is retried: a
/// node whose server task has not stopped yet may still be querying the schema that
/// `DROP SCHEMA … CASCADE` is taking apart, and PostgreSQL then aborts one of the two.
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
            let mut attempts = 0;
            loop {
                match conn.execute(statement.as_str()).await {
                    Ok(_) => break,
                    Err(sqlx::Error::Database(err))
                        if err.code().as_deref() == Some("40P01") && attempts < 5 =>
                    {
                        attempts += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(err) => panic!("statement failed: {err:?}"),
                }
            }
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

/// A client registered for a test: its id, and its secret unless it is public.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    pub secret: Option<String>,
}

impl TestClient {
    /// Adds this client's credentials to a form request (Basic for confidential clients,
    /// `client_id` in the body for public ones).
    pub fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(String, String)>,
    ) -> reqwest::RequestBuilder {
        match &self.secret {
            Some(secret) => request.basic_auth(&self.client_id, Some(secret)),
            None => {
                form.push(("client_id".into(), self.client_id.clone()));
                request
            }
        }
    }
}

impl TestNode {
    /// Starts another node on this one's database, ephemeral store, configuration and
    /// clock (a cluster of two when Redis is configured); its URL and server task.
    pub async fn peer(&self) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot bind");
        let url = format!("http://{}", listener.local_addr().expect("no local addr"));
        let started = tessera_web::start_with_clock(self.config.clone(), self.clock.clone())
            .await
            .expect("cannot start a peer node");
        let server = tokio::spawn(async move {
            let _ = tessera_web::serve(started, listener, std::future::pending()).await;
        });
        (url, server)
    }

    /// Registers a client (`public` ones authenticate with `none`) on `channel`.
    pub async fn create_client(&self, client_id: &str, public: bool, channel: &str) -> TestClient {
        use tessera_store::durable::ClientRecord;
        let (secret, hash) = tessera_idp::clients::new_client_secret();
        let now = tessera_idp::clock::Clock::now(self.clock.as_ref());
        let record = ClientRecord {
            client_id: client_id.to_owned(),
            name: client_id.to_owned(),
            secret_hash: (!public).then_some(hash),
            token_endpoint_auth_method: if public { "none" } else { "client_secret_basic" }.to_owned(),
            channel: channel.to_owned(),
            token_endpoint_auth_signing_alg: None,
            jwks: None,
            jwks_uri: None,
            secret_sealed: None,
            request_object_signing_alg: None,
            grant_types: vec!["refresh_token".into()],
            scopes: vec![
                "openid".into(),
                "profile".into(),
                "email".into(),
                "address".into(),
                "phone".into(),
            ],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            allowed_cors_origins: vec![],
            backchannel_logout_uri: None,
            first_party: true,
            access_token_ttl_secs: None,
            refresh_token_ttl_secs: None,
            mfa_policy: None,
            require_pushed_authorization_requests: false,
            created_at: now,
            updated_at: now,
        };
        self.state
            .clients
            .create_client(&record)
            .await
            .expect("cannot create client");
        TestClient {
            client_id: client_id.to_owned(),
            secret: (!public).then_some(secret),
        }
    }

    /// Starts a session for `subject` through the token engine, as a completed login would.
    pub async fn login(
        &self,
        subject: &str,
        client: &TestClient,
    ) -> Result<tessera_idp::tokens::Issued, tessera_idp::tokens::TokenError> {
        self.login_on(subject, client, None).await
    }

    /// Like [`TestNode::login`] on a given channel.
    pub async fn login_on(
        &self,
        subject: &str,
        client: &TestClient,
        channel: Option<&str>,
    ) -> Result<tessera_idp::tokens::Issued, tessera_idp::tokens::TokenError> {
        self.login_with(subject, client, channel, &["pwd"]).await
    }

    /// Like [`TestNode::login_on`] for a sign-in with methods `amr` (`["pwd", "otp", "mfa"]`:
    /// one that passed a second factor).
    pub async fn login_with(
        &self,
        subject: &str,
        client: &TestClient,
        channel: Option<&str>,
        amr: &[&str],
    ) -> Result<tessera_idp::tokens::Issued, tessera_idp::tokens::TokenError> {
        let record = self
            .state
            .clients
            .client(&client.client_id)
            .await
            .expect("store")
            .expect("client exists");
        let now = tessera_idp::clock::Clock::now(self.clock.as_ref());
        let roles = vec!["member".to_owned()];
        let login = tessera_idp::tokens::Login {
            subject,
            client: &record,
            channel,
            scope: "openid profile",
            roles: &roles,
            role_terms: &Default::default(),
            active_roles: None,
            amr,
            auth_time: now,
            sso_session_id: None,
            idp: None,
        };
        let context = tessera_idp::audit::RequestContext {
            ip: Some("127.0.0.1".into()),
            user_agent: Some("testkit".into()),
            request_id: None,
        };
        self.state.tokens.start_session(login, &context).await
    }

    /// `POST` a form to `path`, authenticated as `client`.
    pub async fn post_form(
        &self,
        path: &str,
        client: &TestClient,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let request = client.authenticate(self.client.post(self.at(path)), &mut form);
        request.form(&form).send().await.expect("request failed")
    }

    /// `POST /oauth2/token` with the refresh grant; returns status and JSON body.
    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> (u16, serde_json::Value) {
        let response = self
            .post_form(
                "/oauth2/token",
                client,
                &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
            )
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("token response is not JSON"))
    }

    /// `POST /oauth2/introspect`; returns the JSON answer.
    pub async fn introspect(&self, client: &TestClient, token: &str) -> serde_json::Value {
        let response = self
            .post_form("/oauth2/introspect", client, &[("token", token)])
            .await;
        assert_eq!(response.status(), 200, "introspection failed");
        response.json().await.expect("introspection is not JSON")
    }
}

/// A node whose mail goes through SMTP to a real local sink (aiosmtpd), or `None` when the
/// backend or the sink is unavailable (after saying why).
pub async fn spawn_with_mail(backend: Backend) -> Option<(TestNode, SmtpSink)> {
    spawn_with_mail_and(backend, |_| {}).await
}

/// [`spawn_with_mail`] with further configuration.
pub async fn spawn_with_mail_and(
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
) -> Option<(TestNode, SmtpSink)> {
    let sink = SmtpSink::start()?;
    let url = sink.url();
    let node = spawn_with(backend, move |config| {
        config.mail.transport = Some(tessera_idp::config::MailTransport::Smtp);
        config.mail.smtp_url = Some(tessera_idp::secret::Secret::new(url));
        adjust(config);
    })
    .await?;
    Some((node, sink))
}

impl TestNode {
    /// `POST` a JSON `body` too large for the server to `path` over a fresh connection,
    /// reading the answer while the body is still being written: the server answers an
    /// oversized body at once and closes the connection without reading the rest, and a
    /// client that reads only after writing everything (as reqwest does) then often sees
    /// nothing but a broken pipe. Returns status, headers and body text.
    pub async fn post_oversized(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let authorization = bearer.map(|token| format!("Bearer {token}"));
        self.post_oversized_as(path, "application/json", authorization.as_deref(), body)
            .await
    }

    /// [`TestNode::post_oversized`] with a given `Content-Type` and `Authorization` value.
    pub async fn post_oversized_as(
        &self,
        path: &str,
        content_type: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
        let authority = self.url.trim_start_matches("http://").to_owned();
        let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(value) = authorization {
            head.push_str(&format!("Authorization: {value}\r\n"));
        }
        head.push_str("\r\n");
        let writing = tokio::spawn(async move {
            // The server may stop reading, and reset the connection, at any point.
            if writer.write_all(head.as_bytes()).await.is_ok() {
                let _ = writer.write_all(&body).await;
            }
        });
        let mut received = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while parse_response(&received).is_none() {
            match tokio::time::timeout(WAIT, reader.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
                Err(_) => panic!("no answer to an oversized body within {WAIT:?}"),
            }
        }
        writing.abort();
        parse_response(&received).unwrap_or_else(|| {
            panic!(
                "no complete response to an oversized body: {:?}",
                String::from_utf8_lossy(&received)
            )
        })
    }

    /// `POST` JSON to `path`; returns status, headers and body (JSON, or null when empty).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        bearer: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut request = self.client.post(self.at(path)).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, headers, json)
    }

    /// `GET` with a Bearer token; returns status and JSON body.
    pub async fn get_bearer(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(self.at(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request failed");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// The `token` query parameter of the first link in `text` that contains `path`.
pub fn link_token(text: &str, path: &str) -> Option<String> {
    let start = text.find(path)?;
    let rest = &text[start..];
    let query = rest.split_once("token=")?.1;
    let token: String = query
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

impl TestNode {
    /// Creates a verified user through the accounts service; returns the user id.
    pub async fn create_user(&self, email: &str, password: &str) -> String {
        let context = tessera_idp::audit::RequestContext::default();
        self.state
            .accounts
            .create_user(email, password, true, &["member".to_owned()], &context)
            .await
            .expect("cannot create user")
            .id
    }

    /// Registers a client for the authorization code flow with `redirect_uri` (and
    /// `redirect_uri` + `/logged-out` as its post-logout URI).
    pub async fn create_oidc_client(
        &self,
        client_id: &str,
        public: bool,
        redirect_uri: &str,
        first_party: bool,
        backchannel_logout_uri: Option<&str>,
    ) -> TestClient {
        use tessera_store::durable::ClientRecord;
        let (secret, hash) = tessera_idp::clients::new_client_secret();
        let now = tessera_idp::clock::Clock::now(self.clock.as_ref());
        let record = ClientRecord {
            client_id: client_id.to_owned(),
            name: format!("{client_id} app"),
            secret_hash: (!public).then_some(hash),
            token_endpoint_auth_method: if public { "none" } else { "client_secret_basic" }.to_owned(),
            channel: "web".to_owned(),
            token_endpoint_auth_signing_alg: None,
            jwks: None,
            jwks_uri: None,
            secret_sealed: None,
            request_object_signing_alg: None,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scopes: vec![
                "openid".into(),
                "profile".into(),
                "email".into(),
                "address".into(),
                "phone".into(),
            ],
            redirect_uris: vec![redirect_uri.to_owned()],
            post_logout_redirect_uris: vec![format!("{redirect_uri}/logged-out")],
            allowed_cors_origins: vec![],
            backchannel_logout_uri: backchannel_logout_uri.map(str::to_owned),
            first_party,
            access_token_ttl_secs: None,
            refresh_token_ttl_secs: None,
            mfa_policy: None,
            require_pushed_authorization_requests: false,
            created_at: now,
            updated_at: now,
        };
        self.state
            .clients
            .create_client(&record)
            .await
            .expect("cannot create client");
        TestClient {
            client_id: client_id.to_owned(),
            secret: (!public).then_some(secret),
        }
    }
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce_pair() -> (String, String) {
    let verifier = tessera_idp::tokens::opaque::random_b64(32);
    let challenge = tessera_idp::tokens::opaque::sha256_b64(&verifier);
    (verifier, challenge)
}

impl TestNode {
    /// Registers a client-credentials client `client_id` with scope `tessera:admin` through
    /// the registry, as an operator would, and obtains its token from the token endpoint.
    pub async fn admin_token(&self, client_id: &str) -> (TestClient, String) {
        use tessera_idp::registry::{ClientRegistry, ClientSpec};
        let spec = ClientSpec {
            client_id: Some(client_id.into()),
            client_name: Some(format!("{client_id} (admin)")),
            grant_types: Some(vec!["client_credentials".into()]),
            scope: Some("tessera:admin".into()),
            ..ClientSpec::default()
        };
        let (record, secret) = ClientRegistry::new(&self.state)
            .create(spec)
            .await
            .expect("admin client");
        let admin = TestClient {
            client_id: record.client_id,
            secret,
        };
        let token = self.client_credentials_token(&admin, "tessera:admin").await;
        (admin, token)
    }

    /// `grant_type=client_credentials` for `client` with `scope`; panics unless 200 with
    /// exactly that scope.
    pub async fn client_credentials_token(&self, client: &TestClient, scope: &str) -> String {
        let response = self
            .post_form(
                "/oauth2/token",
                client,
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("token response is not JSON");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["scope"], scope, "{body}");
        body["access_token"].as_str().expect("access_token").to_owned()
    }
}

/// 64 bits that differ between calls, threads and test processes (not cryptographic).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

/// A fresh loopback address other than 127.0.0.1 (Linux routes all of 127/8 to lo), for a
/// client whose per-IP counters must not meet other tests' on a shared Redis.
pub fn loopback_ip() -> std::net::IpAddr {
    let r = random_u64();
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        1 + (r % 254) as u8,
        ((r >> 8) % 256) as u8,
        1 + ((r >> 16) % 254) as u8,
    ))
}

/// A complete HTTP/1.1 response with a `Content-Length` body, or `None` if `raw` is not one
/// (yet): status, headers, body text.
fn parse_response(raw: &[u8]) -> Option<(u16, reqwest::header::HeaderMap, String)> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            reqwest::header::HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let length: usize = headers.get("content-length")?.to_str().ok()?.parse().ok()?;
    let body = raw.get(head_end..head_end + length)?;
    Some((status, headers, String::from_utf8(body.to_vec()).ok()?))
}
