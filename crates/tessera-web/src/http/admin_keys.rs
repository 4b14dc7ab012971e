//! The admin API for signing keys (`/admin/keys`), over the same service layer as
//! `tessera keys list|rotate` ([`tessera_idp::keys::list_keys`], [`tessera_idp::keys::rotate_keys`]),
//! authorized as for `/admin/clients`. Never private key material.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::admin::{actor, admin, no_store, AdminError};
use super::request::{json_body, Context};
use crate::error::ApiError;
use tessera_idp::keys::{algorithms, list_keys, rotate_keys, KeyError, KeyView};
use tessera_idp::state::AppState;

impl From<KeyError> for AdminError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Store(err) => ApiError::from(err).into(),
            KeyError::UnsupportedAlgorithm(_) => unknown_alg().into(),
            other => ApiError::internal().caused_by(other).into(),
        }
    }
}

fn unknown_alg() -> ApiError {
    ApiError::bad_request("alg: must be ES256, RS256 or EdDSA").extension("field", Value::from("alg"))
}

/// What to rotate: one algorithm, or every one when `alg` is absent or `null` (as when the
/// body is empty or `null`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Parsed as text so that an unknown name is refused naming the field.
    #[schema(value_type = Option<Alg>)]
    #[serde(default)]
    pub alg: Option<String>,
}

/// A signing algorithm (JOSE name).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum Alg {
    ES256,
    RS256,
    EdDSA,
}

/// The signing keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

/// `GET /admin/keys`
#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "keys",
    summary = "List signing keys",
    operation_id = "listKeys",
    description = "As `tessera keys list`: every key, expired or not, oldest first, with its state and timeline.",
    responses((status = 200, description = "The keys", body = KeyList)),
)]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let keys = list_keys(&state.db, state.clock.now()).await?;
    Ok(no_store(StatusCode::OK, KeyList { keys }))
}

/// `POST /admin/keys/rotate`
#[utoipa::path(
    post,
    path = "/admin/keys/rotate",
    tag = "keys",
    summary = "Rotate signing keys",
    operation_id = "rotateKeys",
    description = "As `tessera keys rotate`: a new key per algorithm (or for `alg` only), published at once and signing after `keys.prepublish_secs`; the key it replaces retires then and leaves JWKS `keys.retire_window_secs` later. Nodes sharing Redis reload at once, others within `keys.reload_secs`. The body may be empty.",
    request_body(content = Option<RotateRequest>, content_type = "application/json", description = "Optional: without a body (or with `null`) every algorithm rotates."),
    responses(
        (status = 200, description = "The keys created", body = KeyList),
        (status = 400, description = "Unknown algorithm or malformed body"),
        (status = 415, description = "A body that is not JSON"),
    ),
)]
pub async fn rotate(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let request: RotateRequest = if body.is_empty() {
        RotateRequest::default()
    } else {
        json_body::<Option<RotateRequest>>(&headers, &body)?.unwrap_or_default()
    };
    let algs = algorithms(request.alg.as_deref())?;
    let created = rotate_keys(
        &state.keys,
        state.ephemeral.as_ref(),
        &state.audit,
        &algs,
        &actor(&claims),
        &context,
    )
    .await?;
    let now = state.clock.now();
    let keys = created.iter().map(|key| KeyView::of(key, now)).collect();
    Ok(no_store(StatusCode::OK, KeyList { keys }))
}
