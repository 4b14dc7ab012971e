//! The admin API for the client registry (`/admin/clients`), over the same
//! [`ClientRegistry`] as `tessera client …`. The audit trail (`/admin/audit`, in
//! `audit.rs`) is authorized by the same check, [`admin`].
//!
//! Callers present a Bearer access token with scope `tessera:admin`: a client-credentials
//! token of a client whose registered scopes include it. No token is 401; a user's token
//! or one without the scope is 403 `insufficient_scope` (RFC 6750 §3.1). Answers are
//! problem JSON on error, never cached, and never carry a secret's hash; a secret appears
//! once, in the answer that created it.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tessera_proto::paths;
use tessera_store::StoreError;

use super::request::{bearer_token, json_body, Context};
use crate::error::ApiError;
use tessera_idp::audit::RequestContext;
use tessera_idp::registry::{
    ClientPatch, ClientRegistry, ClientSpec, ClientView, RegistryError, ADMIN_SCOPE,
};
use tessera_idp::state::AppState;
use tessera_idp::tokens::access::AccessClaims;
use tessera_idp::tokens::TokenError;

/// A refused admin request, ready to send.
pub struct AdminError(Response);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<ApiError> for AdminError {
    fn from(err: ApiError) -> Self {
        AdminError(err.into_response())
    }
}

impl From<TokenError> for AdminError {
    fn from(err: TokenError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<RegistryError> for AdminError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::Invalid { field, reason } => invalid_metadata(field, &reason).into(),
            RegistryError::NotFound => ApiError::not_found().detail("no such client").into(),
            RegistryError::Conflict(id) => {
                ApiError::new(StatusCode::CONFLICT, "client-exists", "Client exists")
                    .detail(format!("client id {id:?} is already registered"))
                    .into()
            }
            RegistryError::Store(err) => err.into(),
        }
    }
}

/// 400 naming the field, with the RFC 7591 §3.2.2 error code.
fn invalid_metadata(field: &str, reason: &str) -> ApiError {
    let code = match field {
        "redirect_uris" | "post_logout_redirect_uris" => "invalid_redirect_uri",
        _ => "invalid_client_metadata",
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid-client-metadata",
        "Invalid client metadata",
    )
    .detail(format!("{field}: {reason}"))
    .extension("field", Value::from(field))
    .extension("code", Value::from(code))
}

/// 403 for a valid token that may not use the admin API.
fn insufficient_scope(detail: &str) -> AdminError {
    let mut response = ApiError::new(StatusCode::FORBIDDEN, "insufficient-scope", "Forbidden")
        .detail(detail)
        .extension("code", Value::from("insufficient_scope"))
        .into_response();
    let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{ADMIN_SCOPE}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    AdminError(response)
}

/// The verified admin caller: a client-credentials token carrying `tessera:admin`, of a
/// client that is still registered with that scope.
pub(super) async fn admin(state: &AppState, headers: &HeaderMap) -> Result<AccessClaims, AdminError> {
    let token = bearer_token(headers)?;
    let (claims, session) = state
        .tokens
        .verify_access_token(token, Some(state.tokens.audience()))
        .await?;
    if session.is_some() {
        return Err(insufficient_scope(
            "the admin API needs a client-credentials token with scope tessera:admin, not a user's token",
        ));
    }
    if !claims.scope.split_ascii_whitespace().any(|s| s == ADMIN_SCOPE) {
        return Err(insufficient_scope("the access token lacks scope tessera:admin"));
    }
    // Tokens outlive changes to their client: check it is still registered with the scope.
    match state.clients.client(&claims.client_id).await? {
        None => Err(ApiError::unauthorized(Some("invalid_token"))
            .detail("the client of this access token is no longer registered")
            .into()),
        Some(client) if !client.scopes.iter().any(|s| s == ADMIN_SCOPE) => Err(insufficient_scope(
            "the client of this access token may no longer use scope tessera:admin",
        )),
        Some(_) => Ok(claims),
    }
}

/// An id from the path: one that no user, session or client can have is as unknown as any other
/// (and never reaches the database, where a NUL byte is an error of its own).
pub(super) fn path_id(path: Result<Path<String>, PathRejection>, what: &str) -> Result<String, ApiError> {
    let unknown = || ApiError::not_found().detail(format!("no such {what}"));
    let Ok(Path(id)) = path else {
        return Err(unknown());
    };
    let plausible = !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if plausible {
        Ok(id)
    } else {
        Err(unknown())
    }
}

/// The audit actor of an admin-API caller: `client:<client_id>`.
pub(super) fn actor(claims: &AccessClaims) -> String {
    format!("client:{}", claims.client_id)
}

/// The registry, acting for the calling client.
fn registry(state: &AppState, claims: &AccessClaims, context: RequestContext) -> ClientRegistry {
    ClientRegistry::new(state).acting_as(actor(claims), context)
}

/// A JSON body as `T`; a field that is unknown or of the wrong type is named.
fn metadata<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let value: Value = json_body(headers, body)?;
    let Value::Object(fields) = &value else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    serde_json::from_value::<T>(value.clone()).map_err(|_| {
        // Every field is optional, so the first field that fails alone is the culprit.
        let culprit = fields.iter().find_map(|(name, field)| {
            serde_json::from_value::<T>(json!({ name.as_str(): field }))
                .err()
                .map(|err| (name, err))
        });
        match culprit {
            Some((name, err)) if err.to_string().starts_with("unknown field") => {
                invalid_metadata(name, "unknown field")
            }
            Some((name, _)) => invalid_metadata(name, "wrong type or value"),
            None => ApiError::bad_request("the body is not valid client metadata"),
        }
    })
}

/// A JSON answer that is never cached.
pub(super) fn no_store(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `201 Created` with `body` (never cached) and `Location: location`.
pub(super) fn created(body: impl serde::Serialize, location: &str) -> Response {
    let mut response = no_store(StatusCode::CREATED, body);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[derive(serde::Serialize)]
struct ClientList {
    clients: Vec<ClientView>,
}

/// `GET /admin/clients`
#[utoipa::path(
    get,
    path = "/admin/clients",
    tag = "clients",
    summary = "List clients",
    operation_id = "listClients",
    description = "As `tessera client list`: every registered client, never a secret or its hash.",
    responses((status = 200, description = "The clients", body = super::openapi::ClientList)),
)]
pub async fn list(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let clients = registry(&state, &claims, context).list().await?;
    let clients = clients.iter().map(ClientView::from).collect();
    Ok(no_store(StatusCode::OK, ClientList { clients }))
}

/// `POST /admin/clients`: 201 with `Location`, the client, and its secret (shown once).
#[utoipa::path(
    post,
    path = "/admin/clients",
    tag = "clients",
    summary = "Register a client",
    operation_id = "createClient",
    description = "As `tessera client create`, with the field names of RFC 7591. A confidential client's secret is in this answer only.",
    request_body = ClientSpec,
    responses(
        (status = 201, description = "Registered", body = super::openapi::RegisteredClient,
            headers(("Location" = String, description = "The client's URL"))),
        (status = 400, description = "Invalid client metadata (the field is named)"),
        (status = 409, description = "The client id is taken"),
        (status = 415, description = "The body is not JSON"),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let spec: ClientSpec = metadata(&headers, &body)?;
    let (record, secret) = registry(&state, &claims, context).create(spec).await?;
    let location = paths::ADMIN_CLIENT.replace("{id}", &record.client_id);
    Ok(created(
        ClientView::from(&record).with_secret(secret.as_deref()),
        &location,
    ))
}

/// `GET /admin/clients/{id}`
#[utoipa::path(
    get,
    path = "/admin/clients/{id}",
    tag = "clients",
    summary = "Show a client",
    operation_id = "getClient",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client"),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "client")?;
    let record = registry(&state, &claims, context).get(&id).await?;
    Ok(no_store(StatusCode::OK, ClientView::from(&record)))
}

/// `PATCH /admin/clients/{id}`: a JSON merge patch of the client's metadata.
#[utoipa::path(
    patch,
    path = "/admin/clients/{id}",
    tag = "clients",
    summary = "Change a client",
    operation_id = "updateClient",
    description = "A JSON merge patch of the client's metadata: only the fields given change; `null` clears a nullable one.",
    params(("id" = String, Path, description = "The client id")),
    request_body = ClientPatch,
    responses(
        (status = 200, description = "The changed client", body = ClientView),
        (status = 400, description = "Invalid client metadata (the field is named)"),
        (status = 404, description = "No such client"),
        (status = 415, description = "The body is not JSON"),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "client")?;
    let patch: ClientPatch = metadata(&headers, &body)?;
    let record = registry(&state, &claims, context).update(&id, patch).await?;
    Ok(no_store(StatusCode::OK, ClientView::from(&record)))
}

/// `DELETE /admin/clients/{id}`: 204; the secret stops working and the sessions made through the client end.
#[utoipa::path(
    delete,
    path = "/admin/clients/{id}",
    tag = "clients",
    summary = "Delete a client",
    operation_id = "deleteClient",
    description = "As `tessera client delete`: its secret stops working at once, and every user session made through it ends (their access tokens go on the revocation feed).",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such client"),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "client")?;
    registry(&state, &claims, context).delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /admin/clients/{id}/secret`: a new secret (shown once); the old one stops working.
#[utoipa::path(
    post,
    path = "/admin/clients/{id}/secret",
    tag = "clients",
    summary = "Rotate a client's secret",
    operation_id = "rotateClientSecret",
    description = "As `tessera client rotate-secret`: a new secret, in this answer only; the old one stops working.",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The new secret", body = super::openapi::ClientSecret),
        (status = 400, description = "A public client has no secret"),
        (status = 404, description = "No such client"),
    ),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "client")?;
    let secret = registry(&state, &claims, context).rotate_secret(&id).await?;
    Ok(no_store(
        StatusCode::OK,
        json!({ "client_id": id, "client_secret": secret, "client_secret_expires_at": 0 }),
    ))
}
