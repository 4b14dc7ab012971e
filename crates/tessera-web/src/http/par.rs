//! Pushed authorization requests (RFC 9126): `POST /oauth2/par`, and what
//! `/oauth2/authorize` does with the `request_uri` it hands out.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_idp::error::OAuthFailure;
use tessera_idp::oidc::authorize::{self, AuthorizeError};
use tessera_idp::oidc::par::{Pushed, PAR_TTL_SECS};
use tessera_idp::state::AppState;
use tessera_proto::OAuthErrorCode;

use super::oauth::no_store;
use super::request::{oauth_form, Context};
use crate::error::OAuthReply;
use crate::pages::{self, ErrorKind};

/// Form fields that authenticate the client: never stored with the request.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

#[derive(Serialize)]
struct PushedResponse {
    request_uri: String,
    expires_in: u64,
}

/// `POST /oauth2/par` (RFC 9126 §2): client authentication as at the token endpoint (a
/// public client sends its `client_id`); the request is validated exactly as
/// `/oauth2/authorize` validates one, and its errors are the same codes, as JSON.
pub async fn push(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthReply> {
    let mut form = oauth_form(&headers, &body)?;
    let client = state
        .client_auth
        .authenticate(&headers, &form, true, tessera_proto::paths::PAR)
        .await?;
    // §2.1: a pushed request cannot itself refer to one.
    if form.contains_key("request_uri") {
        return Err(OAuthFailure::new(OAuthErrorCode::InvalidRequest, "request_uri cannot be pushed").into());
    }
    for field in CREDENTIALS {
        form.remove(field);
    }
    match form.get("client_id") {
        Some(id) if *id != client.client_id => {
            return Err(OAuthFailure::new(
                OAuthErrorCode::InvalidRequest,
                "client_id does not name the authenticated client",
            )
            .into())
        }
        Some(_) => {}
        None => {
            form.insert("client_id".to_owned(), client.client_id.clone());
        }
    }
    // A signed request object may be pushed (RFC 9126 §3): its parameters are what is stored.
    let form = authorize::with_request_object(form, state.provider.clients().as_ref(), &state.client_auth)
        .await
        .map_err(refusal)?;
    let request = authorize::validate(form, false, state.provider.clients().as_ref())
        .await
        .map_err(refusal)?;
    let request_uri = state
        .provider
        .push_request(&request.client, request.params, &context)
        .await?;
    let mut response = no_store(PushedResponse {
        request_uri,
        expires_in: PAR_TTL_SECS,
    });
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// An authorization request's refusal as the JSON error of §2.3: the code the client would
/// have been redirected with, or `invalid_request` for what the page would have shown.
fn refusal(err: AuthorizeError) -> OAuthReply {
    let failure = match err {
        AuthorizeError::Redirect {
            error, description, ..
        } => OAuthFailure::new(error, description),
        AuthorizeError::Unredirectable { error, description } => OAuthFailure::new(error, description),
        AuthorizeError::Page(ErrorKind::InvalidRedirectUri) => OAuthFailure::new(
            OAuthErrorCode::InvalidRequest,
            "redirect_uri is missing or not registered for this client",
        ),
        AuthorizeError::Page(ErrorKind::InvalidRequest(detail)) => {
            OAuthFailure::new(OAuthErrorCode::InvalidRequest, "the request is invalid").caused_by(detail)
        }
        AuthorizeError::Page(other) => {
            OAuthFailure::new(OAuthErrorCode::InvalidRequest, "the request is invalid")
                .caused_by(format!("{other:?}"))
        }
        AuthorizeError::Store(err) => err.into(),
    };
    failure.into()
}

/// The parameters of the pushed request an authorization request refers to with
/// `request_uri` (§4): they replace everything in the query but `client_id` and
/// `request_uri`. Unknown, expired, used or another client's: an error page (nothing in
/// the query can be trusted to redirect to).
pub(super) async fn pushed_params(
    state: &AppState,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
    repeated: bool,
    request_uri: &str,
) -> Result<BTreeMap<String, String>, Response> {
    let page = |detail: &str| {
        pages::error_page(
            super::oidc::locale(None, headers),
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest(detail.to_owned()),
        )
        .into_response()
    };
    if repeated {
        return Err(page("a parameter is repeated"));
    }
    let Some(client_id) = query.get("client_id") else {
        return Err(page("client_id is missing"));
    };
    match state.provider.take_pushed(client_id, request_uri).await {
        Ok(Pushed::Taken(params)) => Ok(params),
        Ok(Pushed::Unknown) => Err(page("request_uri is invalid, expired or already used")),
        Ok(Pushed::OtherClient) => Err(page("request_uri was pushed by another client")),
        Err(err) => Err(super::oidc::authorize_error(
            state,
            headers,
            AuthorizeError::Store(err),
        )),
    }
}
