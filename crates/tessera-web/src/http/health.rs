//! Liveness and readiness, as small JSON documents for probes and load balancers, and the
//! Prometheus metrics of the process (`GET /metrics`, when `metrics.enabled`).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use tessera_idp::state::AppState;
use tessera_idp::telemetry;

/// `GET /healthz`: the process is alive and serving HTTP. Checks nothing else, so a
/// database outage never gets a live node restarted.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /metrics`: Prometheus text exposition format 0.0.4. Unauthenticated: it must not be
/// reachable from the internet (see docs/operations.md).
pub async fn metrics() -> Response {
    match telemetry::render() {
        Some(text) => {
            let mut response = text.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        None => ApiError::unavailable()
            .detail("metrics are not recorded in this process")
            .into_response(),
    }
}

/// `GET /readyz`: whether this node can do its work. 200 `ready`; 200 `degraded` when Redis
/// is unreachable (the node serves on per-node state and stricter throttling, so a load
/// balancer should keep it); 503 `unavailable` when the database does not answer or no
/// signing key is loaded.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = telemetry::check_readiness(&state).await;
    if state.config.metrics.enabled {
        telemetry::record_readiness(&readiness);
    }
    let now = state.clock.now();
    let keys = state.keys.snapshot();
    let active = keys.iter().filter(|k| k.is_active(now)).count();
    let (status, word) = match (readiness.ready(), readiness.degraded()) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, true) => (StatusCode::OK, "degraded"),
        (true, false) => (StatusCode::OK, "ready"),
    };
    let check = |ok: bool| if ok { "ok" } else { "unavailable" };
    let mut response = (
        status,
        Json(json!({
            "status": word,
            "checks": {
                "database": { "status": check(readiness.database), "backend": state.db.backend().name() },
                "keys": { "status": check(readiness.keys), "active": active, "published": keys.iter().filter(|k| k.is_published(now)).count() },
                "ephemeral": {
                    "status": if readiness.degraded() { "degraded" } else { "ok" },
                    "backend": state.ephemeral.kind(),
                },
                "cluster": { "nodes": state.cluster.live_nodes() },
            }
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
