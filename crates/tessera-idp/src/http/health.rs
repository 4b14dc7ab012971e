//! Liveness and readiness, as small JSON documents for probes and load balancers.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is alive and serving HTTP. Checks nothing else, so a
/// database outage never gets a live node restarted.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: whether this node can do its work — the database answers, signing keys
/// are loaded, and the ephemeral store (Redis, when configured) answers. 200 or 503.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (database, ephemeral) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, state.ephemeral.ping()),
    );
    let database_ok = matches!(database, Ok(Ok(())));
    let ephemeral_ok = matches!(ephemeral, Ok(Ok(())));
    let now = state.clock.now();
    let keys = state.keys.snapshot();
    let active = keys.iter().filter(|k| k.is_active(now)).count();
    let keys_ok = crate::keys::ALGORITHMS
        .iter()
        .all(|alg| keys.iter().any(|k| k.alg == *alg && k.is_active(now)));
    let ready = database_ok && ephemeral_ok && keys_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "checks": {
                "database": { "status": word(database_ok), "backend": state.db.backend().name() },
                "keys": { "status": word(keys_ok), "active": active, "published": keys.iter().filter(|k| k.is_published(now)).count() },
                "ephemeral": { "status": word(ephemeral_ok), "backend": state.ephemeral.kind() },
            }
        })),
    )
}
