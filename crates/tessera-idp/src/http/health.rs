//! Liveness and readiness, as small JSON documents for probes and load balancers, and the
//! Prometheus metrics of the process (`GET /metrics`, when `metrics.enabled`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::{self, Readiness};

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Runs one store check within [`CHECK_TIMEOUT`]: whether it answered, and how long it took.
async fn timed<E>(check: impl std::future::Future<Output = Result<(), E>>) -> (bool, Duration) {
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    (matches!(answer, Ok(Ok(()))), started.elapsed())
}

/// Checks what readiness depends on: the database answers and every algorithm has an
/// active signing key; and whether Redis (when configured) answers.
pub(crate) async fn check(state: &AppState) -> Readiness {
    let ((database, database_took), (_, ephemeral_took)) = tokio::join!(
        timed(state.db.ping()),
        // Lets the ephemeral store notice an outage (or the end of one) now.
        timed(state.ephemeral.ping()),
    );
    let now = state.clock.now();
    let keys = state.keys.snapshot();
    let redis = state.ephemeral.kind() == "redis";
    let redis_up = !state.ephemeral.degraded();
    Readiness {
        database,
        database_round_trip: database.then_some(database_took),
        redis_round_trip: (redis && redis_up).then_some(ephemeral_took),
        keys: crate::keys::ALGORITHMS
            .iter()
            .all(|alg| keys.iter().any(|k| k.alg == *alg && k.is_active(now))),
        redis,
        redis_up,
    }
}

/// `GET /readyz`: whether this node can do its work. 200 `ready`; 200 `degraded` when Redis
/// is unreachable (the node serves on per-node state and stricter throttling, so a load
/// balancer should keep it); 503 `unavailable` when the database does not answer or no
/// signing key is loaded.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = check(&state).await;
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
