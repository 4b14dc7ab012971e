//! One request through the gateway: the gateway's own endpoints, route matching, CORS,
//! rate limits, authentication and authorization, then forwarding to an upstream with a
//! timeout, streaming both bodies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tessera_verify::Claims;

use crate::auth::{Auth, Refused};
use crate::config::Cidr;
use crate::cors::CorsPolicy;
use crate::headers;
use crate::metrics::{Metrics, RouteMetrics};
use crate::response::{self, problem, Body};
use crate::routes::{Route, RouteTable};

/// The body sent upstream: the client's, streamed, or none (then a failed connection can be
/// retried on another upstream).
pub(crate) type UpstreamBody = Either<Incoming, Empty<Bytes>>;
pub(crate) type UpstreamClient = Client<HttpConnector, UpstreamBody>;

/// What every request handler shares.
pub(crate) struct Shared {
    pub routes: RouteTable,
    pub auth: Arc<Auth>,
    pub client: UpstreamClient,
    pub metrics: Arc<Metrics>,
    pub trusted: Vec<Cidr>,
    pub admin_prefix: String,
    pub poll_interval: Duration,
    /// Metrics of requests that matched no route.
    pub unmatched: RouteMetrics,
}

/// Handles one request; never fails (every failure is an HTTP answer).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = headers::request_id(request.headers());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();

    if let Some(mut response) = admin(&shared, &request) {
        response.headers_mut().insert(headers::REQUEST_ID, request_id);
        return response;
    }

    let (mut response, route_name, upstream) = if !headers::path_is_acceptable(&path) {
        let response = problem(
            StatusCode::BAD_REQUEST,
            "the request path is not acceptable (dot segments or encoded separators)",
            &[],
        );
        shared.unmatched.observe(400, started.elapsed());
        (response, "-", None)
    } else {
        let host = headers::request_host(&request);
        match shared.routes.find(host.as_deref(), &path) {
            None => {
                let response = problem(StatusCode::NOT_FOUND, "no route matches this request", &[]);
                shared.unmatched.observe(404, started.elapsed());
                (response, "-", None)
            }
            Some(route) => {
                let origin = request.headers().get(ORIGIN).cloned();
                let preflight =
                    route.cors.is_some() && CorsPolicy::is_preflight(request.method(), request.headers());
                let (mut response, upstream) = serve_route(&shared, route, request, peer, &request_id).await;
                if let (Some(cors), false) = (&route.cors, preflight) {
                    cors.apply(origin.as_ref(), response.headers_mut());
                }
                route
                    .metrics
                    .observe(response.status().as_u16(), started.elapsed());
                (response, route.name.as_str(), upstream)
            }
        }
    };
    response
        .headers_mut()
        .insert(headers::REQUEST_ID, request_id.clone());
    tracing::info!(
        target: "tessera_gateway::access",
        request_id = request_id.to_str().unwrap_or("-"),
        method = %method,
        path = %path,
        route = route_name,
        status = response.status().as_u16(),
        upstream = upstream.as_deref().unwrap_or("-"),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// The gateway's own endpoints under `admin_prefix`: `/healthz`, `/readyz`, `/metrics`.
fn admin<B>(shared: &Shared, request: &Request<B>) -> Option<Response<Body>> {
    let path = request.uri().path().strip_prefix(shared.admin_prefix.as_str())?;
    let endpoint = match path {
        "/healthz" | "/readyz" | "/metrics" => path,
        _ => return None,
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = problem(StatusCode::METHOD_NOT_ALLOWED, "use GET", &[]);
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(response);
    }
    Some(match endpoint {
        "/healthz" => response::json(StatusCode::OK, &serde_json::json!({ "status": "alive" })),
        "/readyz" => readiness(shared),
        _ => {
            let upstreams: Vec<(String, String, bool)> = shared
                .routes
                .iter()
                .flat_map(|route| {
                    route
                        .upstreams
                        .iter()
                        .map(|u| (route.name.clone(), u.url.clone(), u.is_healthy()))
                })
                .collect();
            let status = shared.auth.status();
            let text = shared
                .metrics
                .render(status.as_ref(), shared.auth.api_keys_cached(), &upstreams);
            let mut response = Response::new(response::full(text));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
    })
}

/// Ready while a key set is loaded, however old: traffic is never failed because the
/// provider is down. `stale` says the data may be out of date (the provider unreachable).
fn readiness(shared: &Shared) -> Response<Body> {
    let Some(status) = shared.auth.status() else {
        return response::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "ready": false, "keys_loaded": false, "keys_age_secs": null,
                "deny_list_age_secs": null, "stale": true,
                "reason": "the identity provider's discovery document was never fetched",
            }),
        );
    };
    let limit = (shared.poll_interval * 3).max(Duration::from_secs(15));
    let deny_stale = status.deny_list_enabled
        && (status.deny_list_last_error.is_some() || status.deny_list_age.is_none_or(|age| age > limit));
    let stale = !status.keys_loaded || status.keys_last_error.is_some() || deny_stale;
    let ready = status.keys_loaded;
    let secs = |age: Option<Duration>| age.map(|a| a.as_secs());
    let body = serde_json::json!({
        "ready": ready,
        "keys_loaded": status.keys_loaded,
        "key_count": status.key_count,
        "keys_age_secs": secs(status.keys_age),
        "keys_refresh_failing": status.keys_last_error.is_some(),
        "deny_list_age_secs": secs(status.deny_list_age),
        "deny_list_poll_failing": status.deny_list_last_error.is_some(),
        "deny_list_entries": status.deny_list_entries,
        "stale": stale,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    response::json(code, &body)
}

/// A route's pipeline. Returns the answer and the upstream that gave it (if any).
async fn serve_route(
    shared: &Shared,
    route: &Route,
    request: Request<Incoming>,
    peer: SocketAddr,
    request_id: &HeaderValue,
) -> (Response<Body>, Option<String>) {
    // 1. CORS preflight: answered here, no token (browsers never send one with it).
    if let Some(cors) = &route.cors {
        if CorsPolicy::is_preflight(request.method(), request.headers()) {
            return (preflight(cors, request.headers()), None);
        }
    }
    // 2. Per-IP limit, before any verification work.
    let client_ip = headers::client_ip(peer, request.headers(), &shared.trusted);
    if let Some(limit) = &route.per_ip {
        if let Err(retry) = limit.check(&client_ip.to_string()) {
            route.metrics.limited_ip.increment(1);
            return (too_many(retry), None);
        }
    }
    // 3. Authentication and authorization.
    let claims = if route.public {
        None
    } else {
        match authorize(shared, route, &request, client_ip).await {
            Ok(claims) => Some(claims),
            Err(refused) => return (refused.response(&shared.auth.realm), None),
        }
    };
    // 4. Per-key and per-subject limits.
    if let Some(key_id) = claims.as_ref().and_then(|c| c.api_key_id.as_deref()) {
        if let Some(limit) = &route.per_key {
            if let Err(retry) = limit.check(key_id) {
                route.metrics.limited_key.increment(1);
                return (too_many(retry), None);
            }
        }
        route.metrics.api_key_request(key_id);
    }
    if let (Some(limit), Some(claims)) = (&route.per_subject, &claims) {
        if let Err(retry) = limit.check(&claims.subject) {
            route.metrics.limited_subject.increment(1);
            return (too_many(retry), None);
        }
    }
    // 5. Forward.
    forward(shared, route, request, claims.as_ref(), peer, request_id).await
}

fn preflight(cors: &CorsPolicy, request: &HeaderMap) -> Response<Body> {
    match cors.preflight(request) {
        Ok(allowed) => {
            let mut response = Response::new(response::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response.headers_mut().extend(allowed);
            response
        }
        Err((refusal, vary)) => {
            let mut response = problem(StatusCode::FORBIDDEN, refusal.detail(), &[]);
            response.headers_mut().extend(vary);
            response
        }
    }
}

fn too_many(retry_after: u64) -> Response<Body> {
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "rate limit exceeded; retry after the number of seconds in Retry-After",
        &[],
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

async fn authorize<B>(
    shared: &Shared,
    route: &Route,
    request: &http::Request<B>,
    client_ip: std::net::IpAddr,
) -> Result<Claims, Refused> {
    let headers = request.headers();
    let authenticated = match route.api_keys.then(|| crate::auth::api_key(headers)) {
        Some(Err(refused)) => Err(refused),
        Some(Ok(Some(key))) => shared.auth.authenticate_key(key, client_ip).await,
        // A route without API keys never looks at `X-API-Key`: the caller needs a token.
        _ => {
            shared
                .auth
                .authenticate(
                    headers,
                    request.method().as_str(),
                    request.uri().path(),
                    !route.auth_cache,
                )
                .await
        }
    };
    let claims = match authenticated {
        Ok(claims) => claims,
        Err(refused) => {
            shared.metrics.verification_failure(refused.reason());
            match &refused {
                Refused::Unavailable(why) => {
                    tracing::warn!(route = %route.name, reason = %why, "token could not be verified")
                }
                other => tracing::info!(route = %route.name, reason = other.reason(), "token refused"),
            }
            return Err(refused);
        }
    };
    if !route.scopes.iter().all(|scope| claims.has_scope(scope)) {
        route.metrics.forbidden_scope.increment(1);
        return Err(Refused::Scope(route.scopes.join(" ")));
    }
    if !route.roles.is_empty() && !route.roles.iter().any(|role| claims.has_role(role)) {
        route.metrics.forbidden_role.increment(1);
        return Err(Refused::Role(route.roles.join(", ")));
    }
    let missing = route.permissions.iter().find(|p| !claims.has_permission(p));
    let none_of_any =
        !route.any_permission.is_empty() && !route.any_permission.iter().any(|p| claims.has_permission(p));
    if missing.is_some() || none_of_any {
        route.metrics.forbidden_permission.increment(1);
        return Err(Refused::Permission(match missing {
            Some(_) => format!("the permissions {} are required", route.permissions.join(" ")),
            None => format!(
                "one of the permissions {} is required",
                route.any_permission.join(", ")
            ),
        }));
    }
    let acr_values: Vec<&str> = route.acr_values.iter().map(String::as_str).collect();
    if !claims.meets_acr(&acr_values) {
        route.metrics.forbidden_acr.increment(1);
        return Err(Refused::Acr(route.acr_values.join(" ")));
    }
    Ok(claims)
}

/// Forwards to an upstream: round-robin, skipping unhealthy ones. A request without a body
/// whose connection failed, or an idempotent one without a body that failed in transport, is
/// retried once on each other upstream.
async fn forward(
    shared: &Shared,
    route: &Route,
    request: Request<Incoming>,
    claims: Option<&Claims>,
    peer: SocketAddr,
    request_id: &HeaderValue,
) -> (Response<Body>, Option<String>) {
    let mut outgoing = request.headers().clone();
    headers::strip_hop_by_hop(&mut outgoing);
    headers::strip_identity(&mut outgoing);
    // A partner's key is for the gateway alone; upstreams get the identity it stands for.
    outgoing.remove(headers::X_API_KEY);
    outgoing.remove(HOST);
    headers::set_forwarded(&request, &mut outgoing, peer, &shared.trusted);
    outgoing.insert(headers::REQUEST_ID, request_id.clone());
    if let Some(claims) = claims {
        headers::set_identity(&mut outgoing, claims);
    }
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let bodyless = body.is_end_stream();
    let mut body = Some(body);
    let deadline = tokio::time::Instant::now() + route.timeout;
    let mut tried: Vec<usize> = Vec::new();

    loop {
        let Some(index) = route.pick(&tried) else {
            return (bad_gateway("no upstream could be reached"), None);
        };
        tried.push(index);
        let upstream = &route.upstreams[index];
        let target = format!(
            "http://{}{}{query}",
            upstream.authority,
            route.upstream_path(upstream, parts.uri.path())
        );
        let Ok(uri) = target.parse::<Uri>() else {
            return (bad_gateway("the upstream URL could not be formed"), None);
        };
        let upstream_body = if bodyless {
            Either::Right(Empty::new())
        } else {
            match body.take() {
                Some(body) => Either::Left(body),
                None => return (bad_gateway("the upstream could not be reached"), None),
            }
        };
        let mut upstream_request = Request::new(upstream_body);
        *upstream_request.method_mut() = parts.method.clone();
        *upstream_request.uri_mut() = uri;
        *upstream_request.version_mut() = Version::HTTP_11;
        *upstream_request.headers_mut() = outgoing.clone();
        if let Ok(host) = HeaderValue::from_str(&upstream.authority) {
            upstream_request.headers_mut().insert(HOST, host);
        }

        let sent = tokio::time::timeout_at(deadline, shared.client.request(upstream_request)).await;
        match sent {
            Err(_elapsed) => {
                route.metrics.upstream_timeout.increment(1);
                tracing::warn!(route = %route.name, upstream = %upstream.url, timeout_secs = route.timeout.as_secs(), "upstream timed out");
                let response = problem(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the upstream service did not answer in time",
                    &[],
                );
                return (response, Some(upstream.url.clone()));
            }
            Ok(Ok(answer)) => {
                let status = answer.status();
                if matches!(status.as_u16(), 502..=504) {
                    route.metrics.upstream_bad_status.increment(1);
                    route.mark_unhealthy(index, "answered 502/503/504");
                }
                return (relay(answer), Some(upstream.url.clone()));
            }
            Ok(Err(err)) => {
                let connect = err.is_connect();
                route.mark_unhealthy(
                    index,
                    if connect {
                        "connection failed"
                    } else {
                        "transport error"
                    },
                );
                if connect {
                    route.metrics.upstream_connect.increment(1);
                    tracing::warn!(route = %route.name, upstream = %upstream.url, error = %err, "upstream connection failed");
                } else {
                    route.metrics.upstream_io.increment(1);
                    tracing::warn!(route = %route.name, upstream = %upstream.url, error = %err, "upstream request failed");
                }
                // Another upstream gets the request when it cannot have had an effect: it
                // never left (connection failed), or it is idempotent (RFC 9110 §9.2.2);
                // and only without a body, which cannot be sent twice.
                let replayable = bodyless && (connect || idempotent(&parts.method));
                if replayable && tried.len() < route.upstreams.len() {
                    continue;
                }
                return (
                    bad_gateway("the upstream service could not be reached"),
                    Some(upstream.url.clone()),
                );
            }
        }
    }
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn bad_gateway(detail: &str) -> Response<Body> {
    problem(StatusCode::BAD_GATEWAY, detail, &[])
}

/// The upstream's answer, streamed back without its hop-by-hop fields.
fn relay(answer: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = answer.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let body = body
        .map_err(|e| Box::new(e) as crate::response::BoxError)
        .boxed_unsync();
    Response::from_parts(parts, body)
}
