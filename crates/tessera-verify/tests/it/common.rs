//! Helpers: tokens signed with a real node's keys, a counting proxy in front of the node,
//! and clients without connection pooling (so a stopped server is really unreachable).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};
use tessera_testkit::{Backend, TestNode};
use tessera_verify::{Verifier, VerifierBuilder};
use tokio::task::JoinHandle;

pub const JWKS: &str = "/.well-known/jwks.json";
pub const FEED: &str = "/oauth2/revocations";

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub async fn node() -> TestNode {
    tessera_testkit::spawn(Backend::Sqlite)
        .await
        .expect("sqlite node")
}

/// A client that opens a new connection for every request.
pub fn unpooled() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// A builder for `node`'s tokens (issuer and audience are the node's URL), with an unpooled
/// client and a short revocation poll.
pub fn builder(node: &TestNode) -> VerifierBuilder {
    Verifier::builder(node.url.clone())
        .audience(node.url.clone())
        .http_client(unpooled())
        .revocation_poll_interval(Duration::from_millis(200))
}

/// A verifier straight on the node's JWKS and feed.
pub async fn verifier(node: &TestNode) -> Verifier {
    builder(node).with_jwks_uri(&node.at(JWKS)).await.unwrap()
}

/// Access-token claims as Tessera issues them, for `node`.
pub fn claims(node: &TestNode) -> Value {
    let now = now();
    json!({
        "iss": node.url, "sub": "user-1", "aud": node.url,
        "exp": now + 300, "nbf": now, "iat": now,
        "jti": format!("jti-{}", rand_suffix()), "client_id": "shop-web",
        "scope": "openid profile", "sid": format!("sid-{}", rand_suffix()), "roles": ["member"]
    })
}

pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", now(), N.fetch_add(1, Ordering::SeqCst))
}

/// Signs `claims` with the node's current key for `alg`, header `typ: at+jwt` and its kid,
/// after `adjust` had its say on the header.
pub fn sign_with(
    node: &TestNode,
    alg: Algorithm,
    claims: &Value,
    adjust: impl FnOnce(&mut Header),
) -> String {
    let key = node.state.keys.signing_key(alg).expect("signing key");
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid.clone());
    adjust(&mut header);
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

pub fn sign(node: &TestNode, claims: &Value) -> String {
    sign_with(node, Algorithm::ES256, claims, |_| {})
}

/// A real login on the node: (access token, refresh token, session id).
pub async fn login(node: &TestNode, subject: &str) -> (String, String, String) {
    let client = node
        .create_client(&format!("app-{}", rand_suffix()), true, "web")
        .await;
    let issued = node.login(subject, &client).await.unwrap();
    (
        issued.access_token,
        issued.refresh_token.secret().to_owned(),
        issued.session.id.clone(),
    )
}

pub async fn end_session(node: &TestNode, sid: &str) {
    let context = tessera_idp::audit::RequestContext::default();
    assert!(node
        .state
        .tokens
        .end_session(sid, "test", "test", &context)
        .await
        .unwrap());
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A reverse proxy in front of a node that counts requests per path, can serve another
/// key set, and can be stopped.
pub struct Proxy {
    pub url: String,
    shared: Arc<ProxyState>,
    server: JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    counts: Mutex<HashMap<String, usize>>,
    jwks_override: Mutex<Option<String>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let shared = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            client: unpooled(),
            counts: Mutex::new(HashMap::new()),
            jwks_override: Mutex::new(None),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy { url, shared, server }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn count(&self, path: &str) -> usize {
        self.shared.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Serves this key set instead of the node's (`None`: the node's again).
    pub fn override_jwks(&self, jwks: Option<String>) {
        *self.shared.jwks_override.lock().unwrap() = jwks;
    }

    /// Stops accepting connections (clients here do not pool, so nothing reaches the node
    /// any more).
    pub fn stop(&self) {
        self.server.abort();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    *state.counts.lock().unwrap().entry(path.clone()).or_default() += 1;
    if path == JWKS {
        if let Some(body) = state.jwks_override.lock().unwrap().clone() {
            return ([("cache-control", "public, max-age=300")], body).into_response();
        }
    }
    let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let mut upstream = state.client.get(format!("{}{path}{query}", state.upstream));
    if let Some(etag) = request.headers().get("if-none-match") {
        upstream = upstream.header("if-none-match", etag.clone());
    }
    let Ok(answer) = upstream.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut headers = HeaderMap::new();
    for name in ["cache-control", "etag", "content-type"] {
        if let Some(value) = answer.headers().get(name) {
            headers.insert(name, HeaderValue::from_bytes(value.as_bytes()).unwrap());
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    (status, headers, Body::from(body)).into_response()
}

/// Waits until `check` holds, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
