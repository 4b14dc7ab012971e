//! Proxying: public routes, header hygiene, routing, CORS, rate limits per IP, round-robin
//! and passive health, timeouts, unreachable upstreams, streaming, HTTP/2, the gateway's own
//! endpoints.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tessera_gateway::{CorsConfig, RateLimitConfig, RouteConfig};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_route_passes_without_token_and_strips_spoofed_identity() {
    let node = node().await;
    let upstream = Upstream::start("catalog");
    let gateway = TestGateway::start(config(&node.url, vec![public_route("/catalog", &[&upstream])])).await;

    let (status, headers, body) = get_with(
        &gateway.at("/catalog/items?page=2"),
        None,
        &[
            ("X-Auth-Subject", "admin"),
            ("x-auth-roles", "admin"),
            ("X-AUTH-SCOPES", "everything"),
            ("connection", "x-hop-secret"),
            ("x-hop-secret", "1"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-request-id", "req-42"),
            ("x-custom", "kept"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = body["headers"].as_object().unwrap();
    let identity: Vec<&String> = seen.keys().filter(|k| k.starts_with("x-auth-")).collect();
    assert!(
        identity.is_empty(),
        "spoofed identity reached the upstream: {identity:?}"
    );
    assert!(
        !seen.contains_key("x-hop-secret"),
        "a field named by Connection was forwarded"
    );
    assert_eq!(seen["x-custom"], "kept");
    // The caller is not a trusted proxy: its forwarding headers are replaced.
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    let host = gateway.url.trim_start_matches("http://");
    assert_eq!(seen["x-forwarded-host"], host);
    assert_eq!(
        seen["forwarded"],
        format!("for=127.0.0.1;proto=http;host=\"{host}\"").as_str()
    );
    assert_eq!(seen["host"], upstream.url.trim_start_matches("http://"));
    // The request id is passed through, both ways.
    assert_eq!(seen["x-request-id"], "req-42");
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(body["path"], "/catalog/items");
    assert_eq!(body["query"], "page=2");

    // Without one, a fresh id is made and sent both ways.
    let (_, headers, body) = get(&gateway.at("/catalog"), None).await;
    let id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(body["headers"]["x-request-id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_match_by_longest_prefix_segment_wise_and_strip_prefixes() {
    let node = node().await;
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let stripped = RouteConfig {
        strip_prefix: true,
        ..public_route("/api/v2", &[&b])
    };
    let gateway = TestGateway::start(config(&node.url, vec![public_route("/api", &[&a]), stripped])).await;
    let (_, _, body) = get(&gateway.at("/api/v1/x"), None).await;
    assert_eq!(
        (body["upstream"].as_str(), body["path"].as_str()),
        (Some("a"), Some("/api/v1/x"))
    );
    let (_, _, body) = get(&gateway.at("/api/v2/x"), None).await;
    assert_eq!(
        (body["upstream"].as_str(), body["path"].as_str()),
        (Some("b"), Some("/x"))
    );
    let (_, _, body) = get(&gateway.at("/api/v2"), None).await;
    assert_eq!(body["path"], "/");
    let (_, _, body) = get(&gateway.at("/api/v20"), None).await;
    assert_eq!(
        body["upstream"], "a",
        "segment-wise: /api/v20 is not under /api/v2"
    );

    let (status, headers, body) = get(&gateway.at("/nothing/here"), None).await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["status"], 404);
    assert!(headers.contains_key("x-request-id"));
    // A path an upstream could normalise into another route is refused.
    for path in [
        "/api/v1/%2e%2e/v2/x",
        "/api/v1/../v2/x",
        "/api/v1%2fx",
        // Read as /api/v2/x by upstreams, but matching no route (or another) as sent.
        "/%61pi/v2/x",
        "/api/v%32/x",
        "/api;v=1/v2/x",
        "/api/v1/..;/v2/x",
        "//api/v2/x",
        "/api//v2/x",
        "/api/v1/%252e%252e/v2/x",
    ] {
        assert_eq!(get_raw(&gateway.url, path).await, 400, "{path}");
    }
    assert_eq!(a.hits() + b.hits(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_answered_from_the_route_policy() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let mut cors = CorsConfig::new(&["https://app.example.com"]);
    cors.allow_methods = vec!["GET".into(), "POST".into()];
    cors.expose_headers = vec!["x-request-id".into()];
    cors.allow_credentials = true;
    cors.max_age_secs = 300;
    let protected = RouteConfig {
        cors: Some(cors),
        ..route("/api", &[&upstream])
    };
    let open = RouteConfig {
        cors: Some(CorsConfig::new(&["*"])),
        ..public_route("/open", &[&upstream])
    };
    let gateway = TestGateway::start(config(&node.url, vec![protected, open])).await;
    let preflight = |origin: &'static str, method: &'static str, headers: &'static str| {
        let url = gateway.at("/api/orders");
        async move {
            http()
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", method)
                .header("access-control-request-headers", headers)
                .send()
                .await
                .unwrap()
        }
    };

    // Allowed: answered by the gateway (no token needed, the upstream never sees it).
    let answer = preflight("https://app.example.com", "POST", "Authorization, Content-Type").await;
    assert_eq!(answer.status(), 204);
    let h = answer.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    assert_eq!(h["access-control-allow-headers"], "authorization, content-type");
    assert_eq!(h["access-control-max-age"], "300");
    assert!(h.get_all("vary").iter().any(|v| v == "Origin"));
    // Refused: another origin, method or header.
    for (origin, method, headers) in [
        ("https://evil.example.com", "POST", "authorization"),
        ("https://app.example.com", "DELETE", "authorization"),
        ("https://app.example.com", "GET", "x-secret"),
    ] {
        let answer = preflight(origin, method, headers).await;
        assert_eq!(answer.status(), 403, "{origin} {method} {headers}");
        assert!(answer.headers().get("access-control-allow-origin").is_none());
    }
    assert_eq!(upstream.hits(), 0);

    // Actual requests: even the gateway's own 401 carries the CORS headers, so the browser
    // can read it; an unknown origin gets none.
    let (status, headers, _) = get_with(
        &gateway.at("/api/orders"),
        None,
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(headers["access-control-expose-headers"], "x-request-id");
    let (_, headers, _) = get_with(
        &gateway.at("/api/orders"),
        None,
        &[("origin", "https://evil.example.com")],
    )
    .await;
    assert!(headers.get("access-control-allow-origin").is_none());
    // A wildcard policy (never with credentials).
    let (status, headers, _) = get_with(
        &gateway.at("/open/x"),
        None,
        &[("origin", "https://anywhere.example")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("access-control-allow-credentials").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_ip_answers_429() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let limited = RouteConfig {
        rate_limit: Some(RateLimitConfig {
            per_subject: None,
            per_ip: Some(2),
            per_key: None,
            window_secs: 3600,
        }),
        ..public_route("/limited", &[&upstream])
    };
    let gateway = TestGateway::start(config(&node.url, vec![limited])).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, headers, _) = get(&gateway.at("/limited"), None).await;
        if status == 429 {
            assert!(headers.contains_key("retry-after"));
        }
        statuses.push(status);
    }
    let first_429 = statuses.iter().position(|s| *s == 429).expect("never limited");
    assert!(first_429 == 2 || first_429 == 4, "{statuses:?}");
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    assert!(metrics["text"]
        .as_str()
        .unwrap()
        .contains("tessera_gateway_rate_limited_total{route=\"/limited\",key=\"ip\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_and_passive_health_survive_a_killed_upstream() {
    let node = node().await;
    let a = Upstream::start("a");
    let mut b = Upstream::start("b");
    let gateway = TestGateway::start(config(&node.url, vec![public_route("/svc", &[&a, &b])])).await;
    let client = http();
    let mut seen = std::collections::HashMap::new();
    for _ in 0..10 {
        let response = client.get(gateway.at("/svc/x")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        *seen
            .entry(body["upstream"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(seen.get("a"), Some(&5), "{seen:?}");
    assert_eq!(seen.get("b"), Some(&5), "{seen:?}");

    // Kill b (its pooled connections close): every request still succeeds, through a.
    b.kill();
    for i in 0..20 {
        let response = client.get(gateway.at("/svc/x")).send().await.unwrap();
        assert_eq!(response.status(), 200, "request {i} after the kill");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["upstream"], "a");
    }
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "tessera_gateway_upstream_healthy{{route=\"/svc\",upstream=\"{}\"}} 0",
            b.url
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "tessera_gateway_upstream_healthy{{route=\"/svc\",upstream=\"{}\"}} 1",
        a.url
    )));

    // An upstream answering 503 is skipped too (its answer is passed through once).
    let c = Upstream::start("c");
    let d = Upstream::start("d");
    let gateway = TestGateway::start(config(&node.url, vec![public_route("/svc", &[&c, &d])])).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(get(&gateway.at("/svc/status/503"), None).await.0);
    }
    // Both answer 503 and get marked; after that the gateway still tries one (never fails
    // without trying).
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    assert!(metrics["text"]
        .as_str()
        .unwrap()
        .contains("tessera_gateway_upstream_errors_total{route=\"/svc\",kind=\"status\"} 6"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_503_makes_the_next_requests_go_elsewhere() {
    let node = node().await;
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let gateway = TestGateway::start(config(&node.url, vec![public_route("/svc", &[&a, &b])])).await;
    // Round-robin starts at a: a answers 503 for this path and is marked.
    let (status, _, _) = get(&gateway.at("/svc/status/503"), None).await;
    assert_eq!(status, 503);
    let marked_hits = a.hits();
    for _ in 0..6 {
        let (status, _, body) = get(&gateway.at("/svc/ok"), None).await;
        assert_eq!(status, 200);
        assert_eq!(body["upstream"], "b", "the marked upstream is skipped");
    }
    assert_eq!(a.hits(), marked_hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_gets_504_and_an_unreachable_one_502() {
    let node = node().await;
    let slow = Upstream::start("slow");
    let closed = format!("http://127.0.0.1:{}", tessera_testkit::free_port());
    let timed = RouteConfig {
        timeout_secs: 1,
        ..public_route("/slow", &[&slow])
    };
    let nowhere = RouteConfig::new("/nowhere", &[closed.as_str()]);
    let gateway = TestGateway::start(config(
        &node.url,
        vec![
            timed,
            RouteConfig {
                public: true,
                ..nowhere
            },
        ],
    ))
    .await;
    let started = Instant::now();
    let (status, headers, body) = get(&gateway.at("/slow/x"), None).await;
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );

    let (status, headers, body) = get(&gateway.at("/nowhere/x"), None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["status"], 502);

    let (_, _, metrics) = get(&gateway.at("/metrics"), None).await;
    let text = metrics["text"].as_str().unwrap();
    assert!(
        text.contains("tessera_gateway_upstream_errors_total{route=\"/slow\",kind=\"timeout\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tessera_gateway_upstream_errors_total{route=\"/nowhere\",kind=\"connect\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tessera_gateway_requests_total{route=\"/slow\",status=\"5xx\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_in_both_directions() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let gateway = TestGateway::start(config(&node.url, vec![public_route("/s", &[&upstream])])).await;

    // The first chunk arrives while the upstream is still holding back the second: nothing
    // waits for the whole body.
    let response = http().get(gateway.at("/s/stream")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the first chunk was held back")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first\n");
    upstream.release();
    let second = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&second[..], b"second\n");

    // A streamed upload of unknown length reaches the upstream whole.
    let chunks = futures_util::stream::iter(
        (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))),
    );
    let response = http()
        .post(gateway.at("/s/upload"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["body_bytes"], 64 * 64 * 1024);
    assert_eq!(body["method"], "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_served() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let gateway = TestGateway::start(config(&node.url, vec![public_route("/h2", &[&upstream])])).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    for _ in 0..3 {
        let uri: hyper::Uri = gateway.at("/h2/x").parse().unwrap();
        let response = client.get(uri).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        assert!(response.headers().contains_key("x-request-id"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        // Upstreams are spoken to in HTTP/1.1, with the Host set.
        assert_eq!(body["version"], "HTTP/1.1");
        assert_eq!(
            body["headers"]["host"],
            upstream.url.trim_start_matches("http://")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let node = node().await;
    let upstream = Upstream::start("svc");
    let mut cfg = config(
        &node.url,
        vec![RouteConfig {
            name: Some("orders".into()),
            ..route("/orders", &[&upstream])
        }],
    );
    cfg.admin_prefix = "/_gw".into();
    let gateway = TestGateway::start(cfg).await;
    let client = node.create_client("shop-web", true, "web").await;
    let token = login(&node, &client, "gina").await.token;
    assert_eq!(get(&gateway.at("/orders/1"), Some(&token)).await.0, 200);
    assert_eq!(
        get(&gateway.at("/orders/1"), Some(&tampered(&token))).await.0,
        401
    );
    assert_eq!(get(&gateway.at("/orders/1"), None).await.0, 401);

    let (status, _, body) = get(&gateway.at("/_gw/healthz"), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("alive")));
    let (status, _, body) = get(&gateway.at("/_gw/readyz"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["stale"], false);
    assert!(body["keys_age_secs"].is_u64(), "{body}");
    assert!(body["deny_list_age_secs"].is_u64(), "{body}");
    // Without the prefix these are ordinary paths (no route here).
    assert_eq!(get(&gateway.at("/healthz"), None).await.0, 404);

    let response = http().get(gateway.at("/_gw/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for line in [
        "tessera_gateway_requests_total{route=\"orders\",status=\"2xx\"} 1",
        "tessera_gateway_requests_total{route=\"orders\",status=\"4xx\"} 2",
        "tessera_gateway_requests_total{route=\"-\",status=\"4xx\"} 1",
        "tessera_gateway_verification_failures_total{reason=\"signature\"} 1",
        "tessera_gateway_verification_failures_total{reason=\"missing\"} 1",
        "tessera_gateway_request_duration_seconds_bucket{route=\"orders\",le=\"0.005\"}",
        "tessera_gateway_request_duration_seconds_count{route=\"orders\"} 3",
        "tessera_gateway_jwks_age_seconds ",
        "tessera_gateway_deny_list_age_seconds ",
        "tessera_gateway_keys_loaded 1",
        "# TYPE tessera_gateway_request_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("/orders/1"), "a raw path became a label");
}
