//! Partner API keys (R27) over HTTP: the admin API (`/admin/api-keys…`, any account's keys,
//! as `tessera apikey …`), the signed-in user's own keys (`/auth/api-keys…`, Bearer), and
//! the check endpoint verifiers call once per key (`POST /oauth2/api-keys/check`,
//! client-authenticated as introspection). All over [`tessera_idp::apikeys::ApiKeys`].

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_idp::apikeys::{ApiKeyError, ApiKeySpec, ApiKeyView, CreatedApiKey, Grantor};
use tessera_idp::error::OAuthFailure;
use tessera_idp::state::AppState;
use tessera_proto::{paths, OAuthErrorCode};
use tessera_store::durable::ApiKeyOwner;

use super::admin::{actor, admin, created, no_store, path_id, AdminError};
use super::paging::{invalid, parameters};
use super::request::{json_body, oauth_form, Context};
use super::sessions::caller;
use crate::error::{ApiError, OAuthReply};

impl From<ApiKeyError> for ApiError {
    fn from(err: ApiKeyError) -> Self {
        let code = |e: ApiError, code: &str| e.extension("code", Value::from(code));
        match err {
            ApiKeyError::Invalid { field, reason } => code(
                ApiError::bad_request(format!("invalid {field}: {reason}")),
                "invalid_request",
            )
            .extension("field", Value::from(field)),
            ApiKeyError::NotFound => ApiError::not_found().detail("no such API key"),
            ApiKeyError::NoSuchOwner => ApiError::not_found().detail("no such user or confidential client"),
            err @ ApiKeyError::TooMany => code(
                ApiError::new(StatusCode::CONFLICT, "too-many-api-keys", "Too many API keys")
                    .detail(err.to_string()),
                "too_many_api_keys",
            ),
            ApiKeyError::Store(err) => err.into(),
        }
    }
}

impl From<ApiKeyError> for AdminError {
    fn from(err: ApiKeyError) -> Self {
        ApiError::from(err).into()
    }
}

/// The keys of one account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
}

/// A key just created: the key itself, shown this once, and how it is listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewlyCreatedApiKey {
    /// `tsk_…`: store it now; only a hash is kept.
    pub api_key: String,
    #[serde(flatten)]
    pub key: ApiKeyView,
}

impl From<CreatedApiKey> for NewlyCreatedApiKey {
    fn from(created: CreatedApiKey) -> Self {
        NewlyCreatedApiKey {
            api_key: created.key.secret().to_owned(),
            key: created.view,
        }
    }
}

/// A key to create, for exactly one of a user and a confidential client.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// 1–64 characters.
    pub name: String,
    /// OAuth scopes; a client's key only scopes registered for the client; never `tessera:admin`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Permissions the user's roles grant (users only).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Unix seconds, at most 730 days ahead (default: 90 days from now).
    pub expires_at: Option<i64>,
    /// Addresses or CIDR ranges the key may be used from (default: any).
    #[serde(default)]
    pub allowed_ips: Vec<String>,
}

fn owner_of(user_id: Option<String>, client_id: Option<String>) -> Result<ApiKeyOwner, ApiError> {
    match (user_id, client_id) {
        (Some(user), None) => Ok(ApiKeyOwner::User(user)),
        (None, Some(client)) => Ok(ApiKeyOwner::Client(client)),
        _ => Err(ApiError::bad_request("give one of user_id and client_id")
            .extension("code", Value::from("invalid_request"))),
    }
}

/// `GET /admin/api-keys?user_id=|client_id=`
#[utoipa::path(
    get,
    path = "/admin/api-keys",
    tag = "api-keys",
    summary = "List an account's API keys",
    operation_id = "listApiKeys",
    description = "As `tessera apikey list`: every key of the user or client (revoked and expired ones too), newest first, with prefix, last use and expiry; never a secret.",
    params(
        ("user_id" = Option<String>, Query, description = "The user whose keys to list (or client_id)."),
        ("client_id" = Option<String>, Query, description = "The client whose keys to list (or user_id)."),
    ),
    responses(
        (status = 200, description = "The keys", body = ApiKeyList),
        (status = 400, description = "Neither or both of user_id and client_id, or an unknown or repeated parameter"),
        (status = 404, description = "No such user or confidential client"),
    ),
)]
pub async fn admin_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let (mut user, mut client) = (None, None);
    for (name, value) in parameters(query.as_deref().unwrap_or(""), &["user_id", "client_id"])? {
        if value.len() > 255 {
            return Err(invalid(name, "is longer than 255 bytes").into());
        }
        match name {
            "user_id" => user = Some(value.into_owned()),
            _ => client = Some(value.into_owned()),
        }
    }
    let owner = owner_of(user, client)?;
    let api_keys = state.api_keys.list(&owner).await?;
    Ok(no_store(StatusCode::OK, ApiKeyList { api_keys }))
}

/// `POST /admin/api-keys`
#[utoipa::path(
    post,
    path = "/admin/api-keys",
    tag = "api-keys",
    summary = "Create an API key",
    operation_id = "createApiKey",
    description = "As `tessera apikey create`: a key for a user (permissions their roles grant) or a confidential client (scopes registered for it). The answer holds the key, shown this once. Audited as `api_key.created`.",
    request_body = NewApiKey,
    responses(
        (status = 201, description = "Created", body = NewlyCreatedApiKey,
            headers(("Location" = String, description = "The key's URL")),
            links(
                ("GetApiKey" = (operation_id = "getApiKey", parameters(("id" = "$response.body#/id")))),
                ("RevokeApiKey" = (operation_id = "revokeApiKey", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "Malformed body, neither or both owners, or an invalid name, scope, permission, expiry or address"),
        (status = 404, description = "No such user or confidential client"),
        (status = 409, description = "The account has the most live keys allowed"),
        (status = 415, description = "The body is not JSON"),
    ),
)]
pub async fn admin_create(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let new: NewApiKey = json_body(&headers, &body)?;
    let owner = owner_of(new.user_id, new.client_id)?;
    let spec = ApiKeySpec {
        name: new.name,
        scopes: new.scopes,
        permissions: new.permissions,
        expires_at: new.expires_at,
        allowed_ips: new.allowed_ips,
    };
    let key = state
        .api_keys
        .create(&owner, spec, Grantor::Operator, &actor(&claims), &context)
        .await?;
    let location = paths::ADMIN_API_KEY.replace("{id}", &key.view.id);
    Ok(created(NewlyCreatedApiKey::from(key), &location))
}

/// `GET /admin/api-keys/{id}`
#[utoipa::path(
    get,
    path = "/admin/api-keys/{id}",
    tag = "api-keys",
    summary = "Show an API key",
    operation_id = "getApiKey",
    params(("id" = String, Path, description = "The key id (after `tsk_`)")),
    responses(
        (status = 200, description = "The key (never its secret)", body = ApiKeyView),
        (status = 404, description = "No such key"),
    ),
)]
pub async fn admin_show(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let id = path_id(path, "API key")?;
    Ok(no_store(StatusCode::OK, state.api_keys.get(&id, None).await?))
}

/// `DELETE /admin/api-keys/{id}`
#[utoipa::path(
    delete,
    path = "/admin/api-keys/{id}",
    tag = "api-keys",
    summary = "Revoke an API key",
    operation_id = "revokeApiKey",
    description = "As `tessera apikey revoke`: the key stops working at once at the provider, and at verifiers within their revocation poll interval (the feed names it by key id). Revoking a revoked key changes nothing. Audited as `api_key.revoked`.",
    params(("id" = String, Path, description = "The key id (after `tsk_`)")),
    responses(
        (status = 200, description = "The key, revoked", body = ApiKeyView),
        (status = 404, description = "No such key"),
    ),
)]
pub async fn admin_revoke(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "API key")?;
    let key = state
        .api_keys
        .revoke(&id, None, &actor(&claims), &context)
        .await?;
    Ok(no_store(StatusCode::OK, key))
}

/// The self-service API speaks camelCase, as the rest of `/auth/*` does.
fn camel_case(value: Value) -> Value {
    match value {
        Value::Object(members) => {
            let mut out = Map::new();
            for (name, member) in members {
                let mut camel = String::with_capacity(name.len());
                let mut upper = false;
                for c in name.chars() {
                    if c == '_' {
                        upper = true;
                    } else if upper {
                        camel.extend(c.to_uppercase());
                        upper = false;
                    } else {
                        camel.push(c);
                    }
                }
                out.insert(camel, camel_case(member));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case).collect()),
        other => other,
    }
}

fn camel_body(body: impl Serialize) -> Value {
    camel_case(serde_json::to_value(body).unwrap_or(Value::Null))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOwnApiKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    permissions: Vec<String>,
    expires_at: Option<i64>,
    #[serde(default)]
    allowed_ips: Vec<String>,
}

/// The signed-in user (of a user's access token).
async fn own_account(state: &AppState, headers: &HeaderMap) -> Result<(ApiKeyOwner, Vec<String>), ApiError> {
    let (claims, _) = caller(state, headers).await?;
    let scopes = claims.scope.split_ascii_whitespace().map(str::to_owned).collect();
    Ok((ApiKeyOwner::User(claims.sub), scopes))
}

/// `GET /auth/api-keys` → `{apiKeys: [...]}`.
pub async fn own_list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (owner, _) = own_account(&state, &headers).await?;
    let api_keys = state.api_keys.list(&owner).await?;
    Ok(no_store(StatusCode::OK, camel_body(ApiKeyList { api_keys })))
}

/// `POST /auth/api-keys {name, scopes?, permissions?, expiresAt?, allowedIps?}` → 201 with
/// `apiKey` (shown once): scopes of the caller's token only, permissions of the user's roles.
pub async fn own_create(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (owner, token_scopes) = own_account(&state, &headers).await?;
    let new: NewOwnApiKey = json_body(&headers, &body)?;
    let spec = ApiKeySpec {
        name: new.name,
        scopes: new.scopes,
        permissions: new.permissions,
        expires_at: new.expires_at,
        allowed_ips: new.allowed_ips,
    };
    let key = state
        .api_keys
        .create(
            &owner,
            spec,
            Grantor::User {
                token_scopes: &token_scopes,
            },
            owner.id(),
            &context,
        )
        .await?;
    let location = paths::ACCOUNT_API_KEY.replace("{id}", &key.view.id);
    Ok(created(camel_body(NewlyCreatedApiKey::from(key)), &location))
}

/// `DELETE /auth/api-keys/{id}` → 200 the key, revoked; another account's key is 404.
pub async fn own_revoke(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (owner, _) = own_account(&state, &headers).await?;
    let id = path_id(path, "API key")?;
    let key = state
        .api_keys
        .revoke(&id, Some(&owner), owner.id(), &context)
        .await?;
    Ok(no_store(StatusCode::OK, camel_body(key)))
}

/// `POST /oauth2/api-keys/check` (`key=tsk_…`), for confidential clients (gateways and
/// services): `{"active": false}` or the key's owner, scopes, permissions, allow-list and
/// expiry.
pub async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthReply> {
    let form = oauth_form(&headers, &body)?;
    let _client = state
        .client_auth
        .authenticate(&headers, &form, false, tessera_proto::paths::API_KEY_CHECK)
        .await?;
    let key = form
        .get("key")
        .ok_or_else(|| OAuthFailure::new(OAuthErrorCode::InvalidRequest, "key is required"))?;
    let answer = state.api_keys.check(key).await?;
    Ok(super::oauth::no_store(answer))
}
