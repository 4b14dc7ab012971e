//! Helpers: an upstream echo server (axum) that can really be killed, a gateway started in
//! this process on 127.0.0.1:0, and an identity-provider node with real tokens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tessera_gateway::{Gateway, GatewayConfig, RouteConfig};
use tessera_testkit::{Backend, TestClient, TestNode};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// An upstream service on 127.0.0.1 that answers every request with what it received:
/// `{"upstream", "method", "path", "query", "version", "headers"}`. Special paths (anywhere
/// in the path): `/slow` waits 5 s; `/status/NNN` answers NNN; `/stream` sends one chunk,
/// then waits for [`Upstream::release`] before the second; `/upload` counts the body.
///
/// It runs on a runtime of its own in a thread of its own, so [`Upstream::kill`] closes its
/// listener and every connection at once, as a crashed process would.
pub struct Upstream {
    pub url: String,
    hits: Arc<AtomicUsize>,
    release: Arc<Notify>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone)]
struct EchoState {
    name: String,
    hits: Arc<AtomicUsize>,
    release: Arc<Notify>,
}

impl Upstream {
    pub fn start(name: &str) -> Upstream {
        let hits = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let state = EchoState {
            name: name.to_owned(),
            hits: hits.clone(),
            release: release.clone(),
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new().fallback(echo).with_state(state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection task: sockets close.
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx.recv().unwrap();
        Upstream {
            url: format!("http://{addr}"),
            hits,
            release,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Lets a waiting `/stream` response send its second chunk.
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// Stops the server and closes every connection.
    pub fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn echo(State(state): State<EchoState>, request: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_owned();
    if path.contains("/slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if let Some(code) = path
        .split_once("/status/")
        .and_then(|(_, rest)| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
    {
        let status = StatusCode::from_u16(code).unwrap();
        return (status, format!("{} says {code}", state.name)).into_response();
    }
    if path.ends_with("/stream") {
        let release = state.release.clone();
        let chunks = futures_util::stream::unfold(0u8, move |step| {
            let release = release.clone();
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>("first\n".to_owned()), 1)),
                    1 => {
                        release.notified().await;
                        Some((Ok("second\n".to_owned()), 2))
                    }
                    _ => None,
                }
            }
        });
        return Response::new(Body::from_stream(chunks));
    }
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers() {
        let value = value.to_str().unwrap_or("<binary>").to_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let method = request.method().to_string();
    let version = format!("{:?}", request.version());
    let query = request.uri().query().map(str::to_owned);
    let mut body_bytes = 0usize;
    let mut stream = request.into_body().into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => body_bytes += chunk.len(),
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    }
    axum::Json(json!({
        "upstream": state.name,
        "method": method,
        "path": path,
        "query": query,
        "version": version,
        "headers": headers,
        "body_bytes": body_bytes,
    }))
    .into_response()
}

/// A gateway serving in this process on 127.0.0.1:0; stopped when dropped.
pub struct TestGateway {
    pub url: String,
    task: JoinHandle<()>,
}

impl TestGateway {
    pub async fn start(config: GatewayConfig) -> TestGateway {
        let gateway = Gateway::bind(config).await.expect("gateway starts");
        let url = format!("http://{}", gateway.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = gateway.serve(std::future::pending()).await;
        });
        TestGateway { url, task }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway configuration for `issuer` with a 1 s revocation poll.
pub fn config(issuer: &str, routes: Vec<RouteConfig>) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        issuer: Some(issuer.to_owned()),
        revocation_poll_secs: 1,
        routes,
        ..GatewayConfig::default()
    }
}

pub fn route(prefix: &str, upstreams: &[&Upstream]) -> RouteConfig {
    let urls: Vec<&str> = upstreams.iter().map(|u| u.url.as_str()).collect();
    RouteConfig::new(prefix, &urls)
}

pub fn public_route(prefix: &str, upstreams: &[&Upstream]) -> RouteConfig {
    RouteConfig {
        public: true,
        ..route(prefix, upstreams)
    }
}

pub async fn node() -> TestNode {
    tessera_testkit::spawn(Backend::Sqlite)
        .await
        .expect("sqlite node")
}

/// A user's session: its access token and session id.
pub struct Login {
    pub token: String,
    pub session: String,
}

pub async fn login(node: &TestNode, client: &TestClient, subject: &str) -> Login {
    let issued = node.login(subject, client).await.unwrap();
    Login {
        token: issued.access_token,
        session: issued.session.id.clone(),
    }
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

/// A client that opens a new connection for every request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// `GET url` with an optional Bearer token; returns status, headers and body (JSON or
/// `{"text": …}`).
pub async fn get(url: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    get_with(url, token, &[]).await
}

pub async fn get_with(
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
    (status, headers, body)
}

/// The same token with its payload changed (`sub` replaced), signature kept.
pub fn tampered(token: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("someone-else");
    parts[1] = engine.encode(serde_json::to_vec(&claims).unwrap());
    parts.join(".")
}

/// `token`'s claims moved two hours into the past (expired for 105 minutes), signed again
/// with the node's own ES256 key: a genuine token of that provider, only expired.
pub fn expired(node: &TestNode, token: &str) -> String {
    resigned(node, token, |claims| {
        for claim in ["iat", "nbf", "exp", "auth_time"] {
            if let Some(t) = claims[claim].as_i64() {
                claims[claim] = json!(t - 7200);
            }
        }
    })
}

/// `token`'s claims changed by `edit`, signed again with the node's own ES256 key: a token
/// the provider could have issued.
pub fn resigned(node: &TestNode, token: &str, edit: impl FnOnce(&mut Value)) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: Value = serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
    edit(&mut claims);
    let key = node
        .state
        .keys
        .signing_key(jsonwebtoken::Algorithm::ES256)
        .expect("signing key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

/// `GET` with the path sent exactly as given (reqwest would normalise dot segments).
pub async fn get_raw(base: &str, path: &str) -> u16 {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let uri: hyper::Uri = format!("{base}{path}").parse().unwrap();
    client.get(uri).await.unwrap().status().as_u16()
}
