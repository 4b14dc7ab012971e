//! The admin API for users and their sessions (`/admin/users…`, `/admin/sessions/{sid}`),
//! over the same service layer as `tessera user …` and `tessera sessions …`
//! ([`tessera_idp::accounts::Accounts`], [`tessera_idp::tokens::TokenService`]), authorized as for
//! `/admin/clients` ([`super::admin::admin`]). Every change is audited with the calling
//! client as actor (`client:<id>`). No answer ever carries a password hash.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tessera_proto::paths;

use super::admin::{actor, admin, created, no_store, path_id, AdminError};
use super::paging::{invalid, next_page, parameters, PageSize};
use super::request::{json_body, Context};
use crate::error::ApiError;
use tessera_idp::accounts::profile::{self, Editor, ProfilePatch};
use tessera_idp::accounts::{AccountError, UserView};
use tessera_idp::mfa::{FactorView, MfaError};
use tessera_idp::state::AppState;
use tessera_idp::tokens::SessionView;

/// Users per page when `limit` is not given, and the most one page holds.
const USERS_PER_PAGE: PageSize = PageSize {
    default: 50,
    max: 200,
};

/// Why the admin API ends sessions (as `tessera sessions revoke`).
const REVOKED_BY_OPERATOR: &str = "revoked_by_operator";

impl From<AccountError> for AdminError {
    fn from(err: AccountError) -> Self {
        ApiError::from(err).into()
    }
}

/// A user to create (as `tessera user create`). The password policy applies.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    /// Checked against the password policy; stored only as a hash.
    pub password: String,
    /// Mark the e-mail address as verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Roles to grant: 1–64 of letters, digits and `- _ : .` each.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One page of users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; `null` when this is the last.
    pub next_cursor: Option<String>,
}

/// A disabled user, and how many sessions ended with it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisabledUser {
    pub user: UserView,
    pub sessions_ended: u64,
}

/// The sessions of a user that are alive now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// How many sessions ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionsEnded {
    pub sessions_ended: u64,
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The list parameters: (email, after_id, limit).
fn list_query(text: &str) -> Result<(Option<String>, Option<String>, u32), ApiError> {
    let (mut email, mut after, mut limit) = (None, None, USERS_PER_PAGE.default);
    for (name, value) in parameters(text, &["email", "cursor", "limit"])? {
        match name {
            "email" => {
                if value.len() > 320 {
                    return Err(invalid("email", "is longer than 320 bytes"));
                }
                email = Some(value.into_owned());
            }
            "cursor" => {
                let id = URL_SAFE_NO_PAD
                    .decode(value.as_bytes())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .filter(|id| !id.is_empty() && !id.contains('\0'))
                    .ok_or_else(|| invalid("cursor", "must be the next_cursor of a previous page"))?;
                after = Some(id);
            }
            _ => limit = USERS_PER_PAGE.parse(&value)?,
        }
    }
    Ok((email, after, limit))
}

/// `GET /admin/users`
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "users",
    summary = "List users",
    operation_id = "listUsers",
    description = "Users in a stable order, one page at a time; with `email`, only the user with that address.",
    params(
        ("email" = Option<String>, Query, description = "Only the user with this e-mail address (compared as normalised at signup)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
        ("limit" = Option<u32>, Query, description = "Users per page, 1–200 (default 50).", minimum = 1, maximum = 200),
    ),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "A parameter is unknown, repeated or malformed"),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let (email, after, limit) = list_query(query.as_deref().unwrap_or(""))?;
    // One more than asked tells whether another page exists.
    let mut users = match state
        .accounts
        .list_users(email.as_deref(), after.as_deref(), limit + 1)
        .await
    {
        Ok(users) => users,
        Err(AccountError::InvalidEmail) => return Err(invalid("email", "is not an e-mail address").into()),
        Err(other) => return Err(other.into()),
    };
    let next_cursor = next_page(&mut users, limit, |u| URL_SAFE_NO_PAD.encode(u.id.as_bytes()));
    let users = users.iter().map(UserView::from).collect();
    Ok(no_store(StatusCode::OK, UserPage { users, next_cursor }))
}

/// `POST /admin/users`
#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "users",
    summary = "Create a user",
    operation_id = "createUser",
    description = "As `tessera user create`: the password policy applies; the answer shows the user, never the hash.",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView,
            headers(("Location" = String, description = "The user's URL")),
            links(
                ("GetUser" = (operation_id = "getUser", parameters(("id" = "$response.body#/id")))),
                ("DisableUser" = (operation_id = "disableUser", parameters(("id" = "$response.body#/id")))),
                ("EnableUser" = (operation_id = "enableUser", parameters(("id" = "$response.body#/id")))),
                ("DeleteUser" = (operation_id = "deleteUser", parameters(("id" = "$response.body#/id")))),
                ("ListUserSessions" = (operation_id = "listUserSessions", parameters(("id" = "$response.body#/id")))),
                ("EndUserSessions" = (operation_id = "endUserSessions", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "Malformed body, invalid e-mail or role, or a password the policy rejects"),
        (status = 409, description = "A user with this e-mail exists"),
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
    let new: NewUser = json_body(&headers, &body)?;
    let user = state
        .accounts
        .create_user_as(
            &new.email,
            &new.password,
            new.email_verified,
            &new.roles,
            &actor(&claims),
            &context,
        )
        .await?;
    let location = paths::ADMIN_USER.replace("{id}", &user.id);
    Ok(created(UserView::from(&user), &location))
}

/// `GET /admin/users/{id}`
#[utoipa::path(
    get,
    path = "/admin/users/{id}",
    tag = "users",
    summary = "Show a user",
    operation_id = "getUser",
    params(("id" = String, Path, description = "The user's id (the `sub` of their tokens)")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    Ok(no_store(StatusCode::OK, UserView::from(&user)))
}

/// `POST /admin/users/{id}/disable`
#[utoipa::path(
    post,
    path = "/admin/users/{id}/disable",
    tag = "users",
    summary = "Disable a user",
    operation_id = "disableUser",
    description = "As `tessera user disable`: every session and refresh token of the user ends at once, and their access tokens go on the revocation feed.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Disabled", body = DisabledUser),
        (status = 404, description = "No such user"),
        (status = 409, description = "The user is already disabled (nothing changed)"),
    ),
)]
pub async fn disable(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let ended = state
        .accounts
        .disable_user(&id, &actor(&claims), &context)
        .await?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    Ok(no_store(
        StatusCode::OK,
        DisabledUser {
            user: UserView::from(&user),
            sessions_ended: count(ended),
        },
    ))
}

/// `POST /admin/users/{id}/enable`
#[utoipa::path(
    post,
    path = "/admin/users/{id}/enable",
    tag = "users",
    summary = "Enable a user",
    operation_id = "enableUser",
    description = "As `tessera user enable`: the user may log in again, and their login lockouts are cleared (also for a user who was not disabled).",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Enabled", body = UserView),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn enable(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    state.accounts.enable_user(&id, &actor(&claims), &context).await?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    Ok(no_store(StatusCode::OK, UserView::from(&user)))
}

/// `DELETE /admin/users/{id}`
#[utoipa::path(
    delete,
    path = "/admin/users/{id}",
    tag = "users",
    summary = "Delete a user",
    operation_id = "deleteUser",
    description = "As `tessera user delete`: the user's sessions end first (their access tokens go on the revocation feed), then the user, their password history, consents and pending links are deleted.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    state.accounts.delete_user(&id, &actor(&claims), &context).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /admin/users/{id}/sessions`
#[utoipa::path(
    get,
    path = "/admin/users/{id}/sessions",
    tag = "sessions",
    summary = "List a user's sessions",
    operation_id = "listUserSessions",
    description = "As `tessera sessions list`: the sessions of the user that are alive now.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The alive sessions", body = SessionList),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    let sessions = state.tokens.sessions_of(&user.id).await?;
    let sessions = sessions.iter().map(SessionView::from).collect();
    Ok(no_store(StatusCode::OK, SessionList { sessions }))
}

/// `DELETE /admin/users/{id}/sessions`
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/sessions",
    tag = "sessions",
    summary = "End every session of a user",
    operation_id = "endUserSessions",
    description = "As `tessera sessions revoke --subject`: refresh tokens stop working at once, access tokens go on the revocation feed, and the user's sign-in at the provider ends too.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "How many sessions ended", body = SessionsEnded),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn end_sessions(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    let ended = state
        .tokens
        .end_sessions_of(&user.id, REVOKED_BY_OPERATOR, &actor(&claims), &context)
        .await?;
    Ok(no_store(
        StatusCode::OK,
        SessionsEnded {
            sessions_ended: count(ended),
        },
    ))
}

/// The second factors of a user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FactorList {
    pub factors: Vec<FactorView>,
}

/// How many factors an operator's reset removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FactorsRemoved {
    pub factors_removed: u64,
}

impl From<MfaError> for AdminError {
    fn from(err: MfaError) -> Self {
        ApiError::from(err).into()
    }
}

/// A user's profile: the OpenID Connect standard claims Tessera keeps (OIDC Core §5.1).
/// As a request body, a JSON merge patch (RFC 7396): a member given replaces the stored
/// one, `null` removes it, an absent member stays. (Documentation of the shape; the
/// handlers check the members one by one and name the first bad one.)
#[allow(dead_code)]
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserProfile {
    /// Full name, at most 256 characters.
    pub name: Option<String>,
    /// At most 128 characters (as are the other names).
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub preferred_username: Option<String>,
    /// An absolute https or http URL without credentials, at most 2048 bytes.
    #[schema(format = "uri")]
    pub picture: Option<String>,
    /// As `picture`.
    #[schema(format = "uri")]
    pub website: Option<String>,
    /// At most 64 characters.
    pub gender: Option<String>,
    /// `YYYY-MM-DD`, `0000-MM-DD` (year withheld) or `YYYY`.
    pub birthdate: Option<String>,
    /// A time zone of the IANA database, such as `Europe/Paris`.
    pub zoneinfo: Option<String>,
    /// A BCP 47 language tag such as `ko-KR` (also the language of the user's e-mails).
    pub locale: Option<String>,
    /// E.164, such as `+14155550100`, optionally with `;ext=123`. A new number is
    /// unverified unless the same patch verifies it.
    pub phone_number: Option<String>,
    /// Only the operator sets this; the user cannot.
    pub phone_number_verified: Option<bool>,
    pub address: Option<UserAddress>,
    /// When the user last changed (read-only; Unix seconds).
    #[schema(read_only)]
    pub updated_at: Option<i64>,
}

/// The structured `address` claim (OIDC Core §5.1.1); each member at most 256 characters
/// on one line, `formatted` and `street_address` at most 1024 with line breaks.
#[allow(dead_code)]
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAddress {
    pub formatted: Option<String>,
    pub street_address: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// `GET /admin/users/{id}/profile`
#[utoipa::path(
    get,
    path = "/admin/users/{id}/profile",
    tag = "users",
    summary = "Show a user's profile",
    operation_id = "getUserProfile",
    description = "The OpenID Connect standard claims of the user (names, picture, birthdate, zoneinfo, locale, address, phone number) as clients receive them by scope.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The profile", body = UserProfile),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    let stored = state.accounts.profile(&user.id).await?;
    Ok(no_store(StatusCode::OK, profile::view(&user, &stored)))
}

/// `PATCH /admin/users/{id}/profile`
#[utoipa::path(
    patch,
    path = "/admin/users/{id}/profile",
    tag = "users",
    summary = "Change a user's profile",
    operation_id = "updateUserProfile",
    description = "A JSON merge patch of the user's profile: a member given replaces it, `null` removes it. Unlike the user, the operator may set `phone_number_verified`. One invalid member refuses the whole patch. Audited as `user.profile_updated` (the names of the claims changed, never their values).",
    params(("id" = String, Path, description = "The user's id")),
    request_body = UserProfile,
    responses(
        (status = 200, description = "The changed profile", body = UserProfile),
        (status = 400, description = "An invalid or unknown member (named in `field`), or a body that is not a JSON object"),
        (status = 404, description = "No such user"),
        (status = 415, description = "The body is not JSON"),
    ),
)]
pub async fn update_profile(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let patch: serde_json::Map<String, serde_json::Value> = json_body(&headers, &body)?;
    let patch = ProfilePatch::parse(&patch, Editor::Operator).map_err(AccountError::from)?;
    let (user, stored) = state
        .accounts
        .update_profile(&id, &patch, &actor(&claims), &context)
        .await?;
    Ok(no_store(StatusCode::OK, profile::view(&user, &stored)))
}

/// `GET /admin/users/{id}/mfa`
#[utoipa::path(
    get,
    path = "/admin/users/{id}/mfa",
    tag = "users",
    summary = "List a user's second factors",
    operation_id = "listUserFactors",
    description = "As `tessera user mfa list`: each factor's kind, name and use, never its secret.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The factors", body = FactorList),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn factors(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    let factors = state.mfa.factors(&user.id).await?;
    Ok(no_store(StatusCode::OK, FactorList { factors }))
}

/// `DELETE /admin/users/{id}/mfa`
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/mfa",
    tag = "users",
    summary = "Reset a user's second factors",
    operation_id = "resetUserFactors",
    description = "As `tessera user mfa reset`: every factor and recovery code of the user is removed, for a user who lost them. Audited as `mfa.reset`.",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "How many factors were removed", body = FactorsRemoved),
        (status = 404, description = "No such user"),
    ),
)]
pub async fn reset_factors(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let id = path_id(path, "user")?;
    let user = state.accounts.user(&id).await?.ok_or(AccountError::NoSuchUser)?;
    let removed = state.mfa.reset(&user.id, &actor(&claims), &context).await?;
    Ok(no_store(
        StatusCode::OK,
        FactorsRemoved {
            factors_removed: removed,
        },
    ))
}

/// `DELETE /admin/sessions/{sid}`
#[utoipa::path(
    delete,
    path = "/admin/sessions/{sid}",
    tag = "sessions",
    summary = "End one session",
    operation_id = "endSession",
    description = "As `tessera sessions revoke --id`: its refresh tokens stop working at once and its `sid` goes on the revocation feed.",
    params(("sid" = String, Path, description = "The session id (the `sid` claim)")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such session alive (unknown, or already ended)"),
    ),
)]
pub async fn end_session(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AdminError> {
    let claims = admin(&state, &headers).await?;
    let sid = path_id(path, "session")?;
    let ended = state
        .tokens
        .end_session(&sid, REVOKED_BY_OPERATOR, &actor(&claims), &context)
        .await?;
    if !ended {
        return Err(ApiError::not_found().detail("no such session alive").into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_are_checked_and_named() {
        let cursor = URL_SAFE_NO_PAD.encode("u-1");
        let (email, after, limit) =
            list_query(&format!("email=a%40b.example&cursor={cursor}&limit=7")).unwrap();
        assert_eq!(
            (email.as_deref(), after.as_deref(), limit),
            (Some("a@b.example"), Some("u-1"), 7)
        );
        assert_eq!(list_query("").unwrap(), (None, None, USERS_PER_PAGE.default));
        for bad in [
            "limit=0",
            "limit=201",
            "limit=x",
            "cursor=%%%",
            "cursor=AA",
            "email=a&email=b",
            "user=a",
        ] {
            let err = list_query(bad).unwrap_err();
            let name = bad.split('=').next().unwrap();
            assert!(
                err.problem().detail.as_deref().unwrap_or("").starts_with(name),
                "{bad}: {:?}",
                err.problem().detail
            );
        }
    }
}
