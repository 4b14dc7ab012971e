//! The admin API for authorization (R26): roles with their permissions and parents
//! (`/admin/roles…`), separation-of-duty rules (`/admin/sod…`), a user's roles
//! (`/admin/users/{id}/roles`) and the decision for one permission (`/admin/authz/check`) —
//! over the same service layer as `tessera role|sod|authz …` ([`tessera_idp::authz::Authz`]),
//! authorized and audited as the rest of `/admin`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use tessera_idp::accounts::{AccountError, UserView};

use tessera_idp::authz::{
    AssignmentTerms, AuthzError, Condition, Decision, RoleSpec, RoleView, Situation, SodView,
};
use tessera_idp::state::AppState;
use tessera_proto::paths;

use super::admin::{actor, admin, created, no_store, path_id, AdminError};
use super::request::{json_body, Context};
use crate::error::ApiError;

impl From<AuthzError> for ApiError {
    fn from(err: AuthzError) -> Self {
        let code = |e: ApiError, code: &str| e.extension("code", Value::from(code));
        match err {
            AuthzError::Invalid { field, reason } => code(
                ApiError::bad_request(format!("invalid {field}: {reason}")),
                "invalid_request",
            )
            .extension("field", Value::from(field)),
            AuthzError::UnknownRole(role) => code(
                ApiError::bad_request(format!("role {role:?} is not defined")),
                "unknown_role",
            ),
            AuthzError::NotFound => ApiError::not_found().detail("no such role or rule"),
            AuthzError::Exists(role) => code(
                ApiError::new(StatusCode::CONFLICT, "role-exists", "Role exists")
                    .detail(format!("role {role:?} exists")),
                "role_exists",
            ),
            err @ AuthzError::Cycle(_) => code(
                ApiError::new(StatusCode::CONFLICT, "role-cycle", "Role cycle").detail(err.to_string()),
                "role_cycle",
            ),
            err @ AuthzError::InUse { .. } => code(
                ApiError::new(StatusCode::CONFLICT, "role-in-use", "Role in use").detail(err.to_string()),
                "role_in_use",
            ),
            err @ AuthzError::NotAssigned(_) => code(ApiError::bad_request(err.to_string()), "invalid_roles"),
            err @ (AuthzError::SeparationOfDuty { .. } | AuthzError::ActiveTogether { .. }) => code(
                ApiError::new(StatusCode::CONFLICT, "separation-of-duty", "Separation of duty")
                    .detail(err.to_string()),
                "separation_of_duty",
            ),
            AuthzError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "Busy")
                .detail("the role graph kept changing; try again")
                .retry_after(1),
            AuthzError::Store(err) => err.into(),
        }
    }
}

impl From<AuthzError> for AdminError {
    fn from(err: AuthzError) -> Self {
        ApiError::from(err).into()
    }
}

/// Every role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleView>,
}

/// A role to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// 1–64 of letters, digits and `- _ : .`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Permission names (OAuth scope tokens, `orders:refund`).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Defined roles whose permissions this one inherits.
    #[serde(default)]
    pub parents: Vec<String>,
    /// Where some of `permissions` hold: `{"orders:refund": {"networks": ["10.0.0.0/8"],
    /// "channels": ["web"], "acr": "urn:tessera:acr:mfa"}}` (every given part must hold).
    #[serde(default)]
    pub conditions: BTreeMap<String, Condition>,
}

/// Changes to a role: absent fields stay, lists are replaced whole.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub parents: Option<Vec<String>>,
    pub conditions: Option<BTreeMap<String, Condition>>,
}

/// Every separation-of-duty rule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SodList {
    pub rules: Vec<SodView>,
}

/// A separation-of-duty rule to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSod {
    /// Two or more defined roles that no user may hold together (inherited ones count).
    pub roles: Vec<String>,
    /// The roles may be held together, but not be active in one session.
    #[serde(default)]
    pub dynamic: bool,
}

/// A user's roles, replaced whole.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRoles {
    pub roles: Vec<String>,
    /// Terms of some of `roles`: an expiry (`until`, Unix seconds) and a condition.
    #[serde(default)]
    pub role_terms: BTreeMap<String, AssignmentTerms>,
}

/// The question of `POST /admin/authz/check`: one of `user_id` and `email`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub permission: String,
    /// The caller's address, for permissions with a network condition.
    pub ip: Option<String>,
    /// The session's channel, for permissions with a channel condition.
    pub channel: Option<String>,
    /// The sign-in's class, for permissions with an acr condition.
    pub acr: Option<String>,
    /// When (Unix seconds; now when absent), for time windows and expiring assignments.
    pub at: Option<i64>,
}

fn role_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path_id(path, "role")
}

/// `GET /admin/roles`
#[utoipa::path(
    get,
    path = "/admin/roles",
    tag = "authorization",
    summary = "List roles",
    operation_id = "listRoles",
    description = "As `tessera role list`: every role with its own and its effective (inherited) permissions.",
    responses((status = 200, description = "The roles", body = RoleList)),
)]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let roles = state.authz.roles().await?;
    Ok(no_store(StatusCode::OK, RoleList { roles }))
}

/// `POST /admin/roles`
#[utoipa::path(
    post,
    path = "/admin/roles",
    tag = "authorization",
    summary = "Create a role",
    operation_id = "createRole",
    description = "As `tessera role create`: parents must be defined roles and make no cycle. Audited as `role.created`.",
    request_body = NewRole,
    responses(
        (status = 201, description = "Created", body = RoleView,
            headers(("Location" = String, description = "The role's URL")),
            links(
                ("GetRole" = (operation_id = "getRole", parameters(("name" = "$response.body#/name")))),
                ("UpdateRole" = (operation_id = "updateRole", parameters(("name" = "$response.body#/name")))),
                ("DeleteRole" = (operation_id = "deleteRole", parameters(("name" = "$response.body#/name")))),
            )),
        (status = 400, description = "Malformed body, an invalid name or permission, or an undefined parent"),
        (status = 409, description = "The role exists, or its parents would make a cycle"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "The role graph kept changing; try again"),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let new: NewRole = json_body(&headers, &body)?;
    let spec = RoleSpec {
        description: new.description,
        permissions: new.permissions,
        parents: new.parents,
        conditions: new.conditions,
    };
    let role = state
        .authz
        .put_role(&new.name, spec, true, &actor(&claims), &context)
        .await?;
    let location = paths::ADMIN_ROLE.replace("{name}", &role.name);
    Ok(created(&role, &location))
}

/// `GET /admin/roles/{name}`
#[utoipa::path(
    get,
    path = "/admin/roles/{name}",
    tag = "authorization",
    summary = "Show a role",
    operation_id = "getRole",
    params(("name" = String, Path, description = "The role's name")),
    responses(
        (status = 200, description = "The role", body = RoleView),
        (status = 404, description = "No such role"),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let name = role_name(path)?;
    Ok(no_store(StatusCode::OK, state.authz.role(&name).await?))
}

/// `PATCH /admin/roles/{name}`
#[utoipa::path(
    patch,
    path = "/admin/roles/{name}",
    tag = "authorization",
    summary = "Change a role",
    operation_id = "updateRole",
    description = "As `tessera role update`: absent fields stay, lists are replaced whole. Users' tokens show the change at their next refresh. Audited as `role.updated`.",
    params(("name" = String, Path, description = "The role's name")),
    request_body = RolePatch,
    responses(
        (status = 200, description = "The role as changed", body = RoleView),
        (status = 400, description = "Malformed body, an invalid permission, or an undefined parent"),
        (status = 404, description = "No such role"),
        (status = 409, description = "The parents would make a cycle"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "The role graph kept changing; try again"),
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
    let name = role_name(path)?;
    let patch: RolePatch = json_body(&headers, &body)?;
    let current = state.authz.role(&name).await?;
    let spec = RoleSpec {
        description: patch.description.unwrap_or(current.description),
        permissions: patch.permissions.unwrap_or(current.permissions),
        parents: patch.parents.unwrap_or(current.parents),
        conditions: patch.conditions.unwrap_or(current.conditions),
    };
    let role = state
        .authz
        .put_role(&name, spec, false, &actor(&claims), &context)
        .await?;
    Ok(no_store(StatusCode::OK, role))
}

/// `DELETE /admin/roles/{name}`
#[utoipa::path(
    delete,
    path = "/admin/roles/{name}",
    tag = "authorization",
    summary = "Delete a role",
    operation_id = "deleteRole",
    description = "As `tessera role delete`: refused while another role inherits from it or a separation-of-duty rule names it. Users keep the name, which then grants nothing. Audited as `role.deleted`.",
    params(("name" = String, Path, description = "The role's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such role"),
        (status = 409, description = "Another role or a rule still uses it"),
        (status = 503, description = "The role graph kept changing; try again"),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let name = role_name(path)?;
    state.authz.delete_role(&name, &actor(&claims), &context).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /admin/sod`
#[utoipa::path(
    get,
    path = "/admin/sod",
    tag = "authorization",
    summary = "List separation-of-duty rules",
    operation_id = "listSodRules",
    responses((status = 200, description = "The rules", body = SodList)),
)]
pub async fn list_sod(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let rules = state.authz.sod().await?;
    Ok(no_store(StatusCode::OK, SodList { rules }))
}

/// `POST /admin/sod`
#[utoipa::path(
    post,
    path = "/admin/sod",
    tag = "authorization",
    summary = "Add a separation-of-duty rule",
    operation_id = "createSodRule",
    description = "As `tessera sod add`: no user may then be given two or more of the roles (inherited ones count); with `dynamic`, a user may hold them but no session activates two or more. Audited as `sod.created`.",
    request_body = NewSod,
    responses(
        (status = 201, description = "Added", body = SodView,
            links(("DeleteSodRule" = (operation_id = "deleteSodRule", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Malformed body, fewer than two roles, or an undefined role"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "The role graph kept changing; try again"),
    ),
)]
pub async fn create_sod(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let new: NewSod = json_body(&headers, &body)?;
    let rule = state
        .authz
        .add_sod(&new.roles, new.dynamic, &actor(&claims), &context)
        .await?;
    Ok(no_store(StatusCode::CREATED, rule))
}

/// `DELETE /admin/sod/{id}`
#[utoipa::path(
    delete,
    path = "/admin/sod/{id}",
    tag = "authorization",
    summary = "Remove a separation-of-duty rule",
    operation_id = "deleteSodRule",
    params(("id" = String, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such rule"),
        (status = 503, description = "The role graph kept changing; try again"),
    ),
)]
pub async fn remove_sod(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "rule")?;
    state.authz.remove_sod(&id, &actor(&claims), &context).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /admin/users/{id}/roles`
#[utoipa::path(
    post,
    path = "/admin/users/{id}/roles",
    tag = "authorization",
    summary = "Set a user's roles",
    operation_id = "setUserRoles",
    description = "As `tessera user grant|revoke-role`: the user's roles (and the terms of some: an expiry, a condition) are replaced whole, checked against separation-of-duty rules. The user's tokens show them at their next refresh (end the user's sessions for at once). Audited as `user.roles_changed`.",
    params(("id" = String, Path, description = "The user's id")),
    request_body = UserRoles,
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "Malformed body, an invalid role name, or terms that are malformed or name a role not given"),
        (status = 404, description = "No such user"),
        (status = 409, description = "The roles break a separation-of-duty rule"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "The user's roles kept changing; try again"),
    ),
)]
pub async fn set_user_roles(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let roles: UserRoles = json_body(&headers, &body)?;
    let user = state
        .accounts
        .set_roles(&id, &roles.roles, &roles.role_terms, &actor(&claims), &context)
        .await?;
    Ok(no_store(StatusCode::OK, UserView::from(&user)))
}

/// `POST /admin/authz/check`
#[utoipa::path(
    post,
    path = "/admin/authz/check",
    tag = "authorization",
    summary = "Decide one permission for a user",
    operation_id = "checkPermission",
    description = "As `tessera authz check`: whether the user's roles (with inherited ones) grant the permission — with `ip`, `channel` and `acr` for permissions with conditions — which role does, and why.",
    request_body = CheckRequest,
    responses(
        (status = 200, description = "The decision", body = Decision),
        (status = 400, description = "Malformed body, neither or both of user_id and email, or an invalid permission"),
        (status = 404, description = "No such user"),
        (status = 415, description = "The body is not JSON"),
    ),
)]
pub async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let request: CheckRequest = json_body(&headers, &body)?;
    let user = match (&request.user_id, &request.email) {
        (Some(id), None) => state.accounts.user(id).await?,
        (None, Some(email)) => state.accounts.user_by_email(email).await?,
        _ => return Err(ApiError::bad_request("give one of user_id and email").into()),
    }
    .ok_or(AccountError::NoSuchUser)?;
    let ip = match request.ip.as_deref() {
        Some(text) => Some(
            text.parse()
                .map_err(|_| ApiError::bad_request(format!("ip: {text:?} is not an IP address")))?,
        ),
        None => None,
    };
    let situation = Situation {
        ip,
        channel: request.channel.as_deref(),
        acr: request.acr.as_deref(),
        at: Some(request.at.unwrap_or_else(|| state.clock.now())),
    };
    let decision = state.authz.decide(&user, &request.permission, &situation).await?;
    Ok(no_store(StatusCode::OK, decision))
}
