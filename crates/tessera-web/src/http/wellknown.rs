//! `/.well-known/…`: the provider metadata and the public key set.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_proto::discovery::ProviderMetadata;

use tessera_idp::state::AppState;

/// How long verifiers may cache the metadata and the key set. Shorter than the key
/// pre-publish window, so a new key is always fetched before it signs.
const CACHE_CONTROL: &str = "public, max-age=300";

pub async fn discovery(State(state): State<AppState>) -> Response {
    let metadata = ProviderMetadata::new(&state.issuer);
    cached(Json(metadata).into_response())
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    cached(response)
}

fn cached(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}
