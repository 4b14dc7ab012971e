//! `Idempotency-Key` (R10): a mutating request repeated with the same key within
//! `accounts.idempotency_window_secs` gets the first response again and has no second side
//! effect. Keys live in the ephemeral store (shared by every node with Redis).

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use tessera_idp::state::AppState;
use tessera_idp::tokens::opaque::sha256_b64;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");

#[derive(Serialize, Deserialize)]
struct Stored {
    /// SHA-256 of the request body: the same key with another body is a client bug.
    request: String,
    /// `None` while the first request is still being processed.
    status: Option<u16>,
    body: Option<serde_json::Value>,
}

/// Runs `handler` once per key. Without the header the request simply runs. `scope` names
/// the endpoint (and the caller, for authenticated ones), so keys of different endpoints or
/// users never collide.
pub async fn once<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    scope: &str,
    body: &[u8],
    handler: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return render(handler().await);
    };
    let key = match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => key,
        _ => {
            return ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .into_response()
        }
    };
    let slot = format!("idem:{scope}:{}", sha256_b64(key));
    let window = Duration::from_secs(state.config.accounts.idempotency_window_secs);
    let request = sha256_b64(&String::from_utf8_lossy(body));
    let pending = Stored {
        request: request.clone(),
        status: None,
        body: None,
    };
    let pending = serde_json::to_vec(&pending).unwrap_or_default();
    match state.ephemeral.set_if_absent(&slot, &pending, window).await {
        Err(err) => return ApiError::from(err).into_response(),
        Ok(true) => {}
        Ok(false) => return replay(state, &slot, &request).await,
    }
    let result = handler().await;
    match &result {
        // Only answers that had their effect are remembered; a failure may be retried.
        Ok((status, body)) => {
            let done = Stored {
                request,
                status: Some(status.as_u16()),
                body: Some(body.clone()),
            };
            if let Ok(bytes) = serde_json::to_vec(&done) {
                if let Err(err) = state.ephemeral.set(&slot, &bytes, window).await {
                    tracing::warn!(error = %err, "cannot store an idempotent response");
                }
            }
        }
        Err(_) => {
            let _ = state.ephemeral.delete(&slot).await;
        }
    }
    render(result)
}

async fn replay(state: &AppState, slot: &str, request: &str) -> Response {
    let stored = match state.ephemeral.get(slot).await {
        Ok(Some(bytes)) => serde_json::from_slice::<Stored>(&bytes).ok(),
        Ok(None) => None,
        Err(err) => return ApiError::from(err).into_response(),
    };
    let Some(stored) = stored else {
        return ApiError::new(
            StatusCode::CONFLICT,
            "idempotency-conflict",
            "Request in progress",
        )
        .detail("a request with this Idempotency-Key is being processed; retry later")
        .into_response();
    };
    if stored.request != request {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-mismatch",
            "Idempotency-Key reused",
        )
        .detail("this Idempotency-Key was used with a different request body")
        .into_response();
    }
    match (
        stored.status.and_then(|s| StatusCode::from_u16(s).ok()),
        stored.body,
    ) {
        (Some(status), Some(body)) => {
            let mut response = render(Ok((status, body)));
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
            response
        }
        _ => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency-conflict",
            "Request in progress",
        )
        .detail("a request with this Idempotency-Key is being processed; retry later")
        .into_response(),
    }
}

fn render(result: Result<(StatusCode, serde_json::Value), ApiError>) -> Response {
    match result {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(err) => err.into_response(),
    }
}
