//! Partner API keys (R27): long-lived credentials of an account — a user or a confidential
//! client — for machine-to-machine calls through the gateway or a service embedding
//! `tessera-verify`.
//!
//! A key is `tsk_` + a public key id (22 characters) + `_` + a 256-bit secret (43), shown
//! once; only its SHA-256 is stored. Each key has a name, scopes and permissions (never
//! more than its owner holds), an expiry, and an optional allow-list of addresses. Verifiers
//! never reach the database on the hot path: they ask [`ApiKeys::check`] (the
//! `/oauth2/api-keys/check` endpoint, client-authenticated) once, cache the answer, and
//! learn of revocations through the revocation feed (kind `api_key`, by key id). Uses are
//! recorded in memory and written in batches ([`ApiKeys::flush_uses`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::json;
pub use tessera_store::durable::ApiKeyOwner;
use tessera_store::durable::{
    ApiKeyRecord, ApiKeyStore, ClientRecord, ClientStore, RevokedKind, UserRecord, UserStore,
};
use tessera_store::StoreError;

use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::authz::{check_permission, in_force, Authz, Situation};
use crate::clock::Clock;
use crate::registry::ADMIN_SCOPE;
use crate::tokens::opaque::{hashes_equal, random_b64, random_id, sha256_b64};
use crate::tokens::TokenService;

/// Prefix of API keys: recognisable to secret scanners, in support, and at the gateway.
pub const API_KEY_PREFIX: &str = "tsk_";
/// Length of the key id (128 bits, base64url) and of the secret (256 bits).
const ID_LEN: usize = 22;
const SECRET_LEN: usize = 43;
/// Live (neither revoked nor expired) keys one account may hold.
pub const MAX_LIVE_KEYS: u64 = 50;
/// Lifetime of a key created without an expiry, and the longest one allowed.
pub const DEFAULT_TTL_SECS: i64 = 90 * 86_400;
pub const MAX_TTL_SECS: i64 = 730 * 86_400;
/// Most scopes, permissions or allow-list entries on one key.
const MAX_LIST: usize = 64;
const MAX_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such API key")]
    NotFound,
    #[error("no such account")]
    NoSuchOwner,
    #[error("the account already has {MAX_LIVE_KEYS} live API keys")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ApiKeyError {
    ApiKeyError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A key as created, shown once. Not `Clone`; `Debug` is redacted.
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

/// The key id of a presented key, if it has the shape of one of ours (cheap rejection of
/// garbage before any lookup).
pub fn key_id_of(presented: &str) -> Option<&str> {
    let body = presented.strip_prefix(API_KEY_PREFIX)?;
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if body.len() != ID_LEN + 1 + SECRET_LEN || body.as_bytes().get(ID_LEN) != Some(&b'_') {
        return None;
    }
    let (id, secret) = (body.get(..ID_LEN)?, body.get(ID_LEN + 1..)?);
    (base64url(id) && base64url(secret)).then_some(id)
}

/// An id that a user, client or key can have: ids outside this never reach the database.
fn plausible_id(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

/// What a key is to be.
#[derive(Debug, Clone, Default)]
pub struct ApiKeySpec {
    pub name: String,
    pub scopes: Vec<String>,
    pub permissions: Vec<String>,
    /// Unix seconds; `None`: [`DEFAULT_TTL_SECS`] from now.
    pub expires_at: Option<i64>,
    pub allowed_ips: Vec<String>,
}

/// Who is creating a key, which bounds its scopes.
#[derive(Debug, Clone, Copy)]
pub enum Grantor<'a> {
    /// An operator (CLI) or the admin API: a user's key may carry any scope but
    /// `tessera:admin`; a client's key only scopes registered for the client.
    Operator,
    /// The user, with an access token of these scopes: the key carries no scope the token
    /// lacks (no one delegates more than they hold).
    User { token_scopes: &'a [String] },
}

/// A key as listed: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// The key id.
    pub id: String,
    /// How the key starts (`tsk_` + id), to recognise it.
    pub prefix: String,
    pub name: String,
    /// `user` or `client`.
    pub owner_type: String,
    /// The user id or the client id.
    pub owner_id: String,
    pub scopes: Vec<String>,
    pub permissions: Vec<String>,
    /// Addresses or CIDR ranges it may be used from; empty: any.
    pub allowed_ips: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When a verifier last checked it (to within the verifiers' cache TTL).
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

impl ApiKeyView {
    fn of(record: &ApiKeyRecord, now: i64) -> Self {
        let status = if record.revoked_at.is_some() {
            "revoked"
        } else if record.expires_at <= now {
            "expired"
        } else {
            "active"
        };
        ApiKeyView {
            id: record.id.clone(),
            prefix: format!("{API_KEY_PREFIX}{}", record.id),
            name: record.name.clone(),
            owner_type: record.owner.kind().to_owned(),
            owner_id: record.owner.id().to_owned(),
            scopes: record.scopes.clone(),
            permissions: record.permissions.clone(),
            allowed_ips: record.allowed_ips.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
            status: status.to_owned(),
        }
    }
}

/// A key just created: what to show, and the key itself (once).
#[derive(Debug)]
pub struct CreatedApiKey {
    pub view: ApiKeyView,
    pub key: ApiKeySecret,
}

/// The answer of the check endpoint (RFC 7662 in spirit: `active`, then what a verifier
/// needs to decide and to cache).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKeyCheck {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<ApiKeyDetails>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKeyDetails {
    pub key_id: String,
    /// `user` or `client`.
    pub owner_type: String,
    /// The acting account: the user id, or the client id.
    pub sub: String,
    /// The client, for a client's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated, as in OAuth.
    pub scope: String,
    /// What the key may do of what its owner's roles grant now.
    pub permissions: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
}

impl ApiKeyCheck {
    fn inactive() -> Self {
        ApiKeyCheck {
            active: false,
            details: None,
        }
    }
}

pub struct ApiKeys {
    pub(crate) store: Arc<dyn ApiKeyStore>,
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) clients: Arc<dyn ClientStore>,
    pub(crate) authz: Arc<Authz>,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) audit: Auditor,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) issuer: Arc<str>,
    /// Uses not yet written: key id → latest time.
    uses: Mutex<HashMap<String, i64>>,
}

/// What [`ApiKeys`] is built from.
pub struct ApiKeysParts {
    pub store: Arc<dyn ApiKeyStore>,
    pub users: Arc<dyn UserStore>,
    pub clients: Arc<dyn ClientStore>,
    pub authz: Arc<Authz>,
    pub tokens: Arc<TokenService>,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
    pub issuer: Arc<str>,
}

/// Sorted, distinct, each checked as an OAuth scope token, at most [`MAX_LIST`].
fn tidy(field: &'static str, list: &[String]) -> Result<Vec<String>, ApiKeyError> {
    if list.len() > MAX_LIST {
        return Err(invalid(field, format!("at most {MAX_LIST}")));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        check_permission(item).map_err(|e| invalid(field, e.to_string()))?;
        out.push(item.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn check_name(name: &str) -> Result<String, ApiKeyError> {
    let name = name.trim();
    let ok = !name.is_empty() && name.chars().count() <= MAX_NAME && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned()).ok_or_else(|| {
        invalid(
            "name",
            format!("1-{MAX_NAME} characters without control characters"),
        )
    })
}

fn check_networks(list: &[String]) -> Result<Vec<String>, ApiKeyError> {
    if list.len() > MAX_LIST {
        return Err(invalid("allowed_ips", format!("at most {MAX_LIST}")));
    }
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        tessera_proto::net::Cidr::parse(entry).map_err(|e| invalid("allowed_ips", e))?;
        out.push(entry.trim().to_owned());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl ApiKeys {
    pub fn new(parts: ApiKeysParts) -> Self {
        ApiKeys {
            store: parts.store,
            users: parts.users,
            clients: parts.clients,
            authz: parts.authz,
            tokens: parts.tokens,
            audit: parts.audit,
            clock: parts.clock,
            issuer: parts.issuer,
            uses: Mutex::new(HashMap::new()),
        }
    }

    /// The client `client_id`, if it exists and is confidential (a public client cannot hold
    /// a credential of its own).
    async fn confidential_client(&self, client_id: &str) -> Result<ClientRecord, ApiKeyError> {
        match self.clients.client(client_id).await? {
            Some(client) if !client.is_public() => Ok(client),
            _ => Err(ApiKeyError::NoSuchOwner),
        }
    }

    /// What the user's roles grant now to a key: of the assignments in force now (an
    /// expired one grants nothing), what holds without a session — a permission or an
    /// assignment conditioned on a network, channel or sign-in class fails closed, as a key
    /// is not used from a session and its use's address is the verifier's to judge.
    async fn user_permissions(&self, user: &UserRecord) -> Result<Vec<String>, StoreError> {
        let situation = Situation {
            at: Some(self.clock.now()),
            ..Situation::default()
        };
        let held = in_force(&user.roles, &user.role_terms, &situation);
        Ok(self.authz.effective(&held, &situation).await?.permissions)
    }

    /// Creates a key for `owner`, audited as `api_key.created` by `actor`.
    pub async fn create(
        &self,
        owner: &ApiKeyOwner,
        spec: ApiKeySpec,
        grantor: Grantor<'_>,
        actor: &str,
        context: &RequestContext,
    ) -> Result<CreatedApiKey, ApiKeyError> {
        let now = self.clock.now();
        let name = check_name(&spec.name)?;
        let scopes = tidy("scopes", &spec.scopes)?;
        let permissions = tidy("permissions", &spec.permissions)?;
        let allowed_ips = check_networks(&spec.allowed_ips)?;
        if scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(invalid("scopes", "an API key never carries tessera:admin"));
        }
        self.check_owner(owner).await?;
        match owner {
            ApiKeyOwner::User(id) => {
                let user = self.users.user(id).await?.ok_or(ApiKeyError::NoSuchOwner)?;
                if user.disabled_at.is_some() {
                    return Err(invalid("owner", "the user is disabled"));
                }
                let granted = self.user_permissions(&user).await?;
                if let Some(missing) = permissions.iter().find(|p| !granted.contains(p)) {
                    return Err(invalid(
                        "permissions",
                        format!("{missing:?} is not granted by the user's roles"),
                    ));
                }
            }
            ApiKeyOwner::Client(id) => {
                let client = self.confidential_client(id).await?;
                if !permissions.is_empty() {
                    return Err(invalid("permissions", "a client holds no roles: give scopes"));
                }
                if let Some(missing) = scopes.iter().find(|s| !client.scopes.contains(s)) {
                    return Err(invalid(
                        "scopes",
                        format!("{missing:?} is not registered for the client"),
                    ));
                }
            }
        }
        if let Grantor::User { token_scopes } = grantor {
            if let Some(missing) = scopes.iter().find(|s| !token_scopes.contains(s)) {
                return Err(invalid(
                    "scopes",
                    format!("{missing:?} is not a scope of your access token"),
                ));
            }
        }
        let expires_at = spec.expires_at.unwrap_or(now.saturating_add(DEFAULT_TTL_SECS));
        if expires_at <= now {
            return Err(invalid("expires_at", "must be in the future"));
        }
        if expires_at > now.saturating_add(MAX_TTL_SECS) {
            return Err(invalid(
                "expires_at",
                format!("at most {} days from now", MAX_TTL_SECS / 86_400),
            ));
        }
        let id = random_id();
        let key = ApiKeySecret(format!("{API_KEY_PREFIX}{id}_{}", random_b64(32)));
        let record = ApiKeyRecord {
            id,
            owner: owner.clone(),
            name,
            secret_hash: sha256_b64(key.secret()),
            scopes,
            permissions,
            allowed_ips,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        if !self.store.create_api_key(&record, MAX_LIVE_KEYS, now).await? {
            return Err(ApiKeyError::TooMany);
        }
        self.audit
            .record(
                context,
                self.event("api_key.created", &record, actor).detail(json!({
                    "key_id": record.id,
                    "name": record.name,
                    "owner_type": record.owner.kind(),
                    "scopes": record.scopes,
                    "permissions": record.permissions,
                    "allowed_ips": record.allowed_ips,
                    "expires_at": record.expires_at,
                })),
            )
            .await;
        Ok(CreatedApiKey {
            view: ApiKeyView::of(&record, now),
            key,
        })
    }

    fn event(&self, name: &'static str, record: &ApiKeyRecord, actor: &str) -> AuditEvent {
        let event = AuditEvent::new(name, "success").actor(actor);
        match &record.owner {
            ApiKeyOwner::User(id) => event.subject(id),
            ApiKeyOwner::Client(id) => event.subject(id).client(id),
        }
    }

    /// Whether the account exists (a user, or a confidential client).
    async fn check_owner(&self, owner: &ApiKeyOwner) -> Result<(), ApiKeyError> {
        if !plausible_id(owner.id(), 255) {
            return Err(ApiKeyError::NoSuchOwner);
        }
        match owner {
            ApiKeyOwner::User(id) => {
                self.users.user(id).await?.ok_or(ApiKeyError::NoSuchOwner)?;
            }
            ApiKeyOwner::Client(id) => {
                self.confidential_client(id).await?;
            }
        }
        Ok(())
    }

    /// Every key of `owner`, newest first (revoked and expired ones too).
    pub async fn list(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyView>, ApiKeyError> {
        self.check_owner(owner).await?;
        let now = self.clock.now();
        Ok(self
            .store
            .api_keys_of(owner)
            .await?
            .iter()
            .map(|r| ApiKeyView::of(r, now))
            .collect())
    }

    /// Key `id`; with `owner`, only if it is that account's (another's is as unknown).
    pub async fn get(&self, id: &str, owner: Option<&ApiKeyOwner>) -> Result<ApiKeyView, ApiKeyError> {
        let record = self.record(id, owner).await?;
        Ok(ApiKeyView::of(&record, self.clock.now()))
    }

    async fn record(&self, id: &str, owner: Option<&ApiKeyOwner>) -> Result<ApiKeyRecord, ApiKeyError> {
        if !plausible_id(id, ID_LEN) {
            return Err(ApiKeyError::NotFound);
        }
        match self.store.api_key(id).await? {
            Some(record) if owner.is_none_or(|o| *o == record.owner) => Ok(record),
            _ => Err(ApiKeyError::NotFound),
        }
    }

    /// Revokes key `id` (with `owner`: only that account's). It goes on the revocation feed
    /// until it would have expired and is announced at once; audited as `api_key.revoked`.
    /// Revoking a revoked key changes nothing and is not an error.
    pub async fn revoke(
        &self,
        id: &str,
        owner: Option<&ApiKeyOwner>,
        actor: &str,
        context: &RequestContext,
    ) -> Result<ApiKeyView, ApiKeyError> {
        let record = self.record(id, owner).await?;
        let now = self.clock.now();
        if self.store.revoke_api_key(&record.id, now).await? {
            if record.expires_at > now {
                self.tokens
                    .announce_revocation(RevokedKind::ApiKey, &record.id, record.expires_at)
                    .await;
            }
            self.audit
                .record(
                    context,
                    self.event("api_key.revoked", &record, actor)
                        .detail(json!({ "key_id": record.id, "name": record.name })),
                )
                .await;
        }
        self.get(&record.id, None).await
    }

    /// Revokes every live key of `owner` (a user being disabled or deleted), each audited
    /// as `api_key.revoked`; returns how many.
    pub async fn revoke_all_of(
        &self,
        owner: &ApiKeyOwner,
        actor: &str,
        context: &RequestContext,
    ) -> Result<usize, ApiKeyError> {
        let now = self.clock.now();
        let mut revoked = 0;
        for key in self.store.api_keys_of(owner).await? {
            if key.is_live(now) {
                self.revoke(&key.id, Some(owner), actor, context).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// The check endpoint: whether `presented` is a live key, and what it may do now.
    /// Anything else — malformed, unknown, tampered, expired, revoked, of a disabled or
    /// deleted account — is `active: false`, without saying which.
    pub async fn check(&self, presented: &str) -> Result<ApiKeyCheck, StoreError> {
        let Some(id) = key_id_of(presented) else {
            return Ok(ApiKeyCheck::inactive());
        };
        let now = self.clock.now();
        let Some(record) = self.store.api_key(id).await? else {
            return Ok(ApiKeyCheck::inactive());
        };
        if !hashes_equal(&record.secret_hash, &sha256_b64(presented)) || !record.is_live(now) {
            return Ok(ApiKeyCheck::inactive());
        }
        // What the owner may still do: a key never outlives its owner's rights.
        let (scopes, permissions, client_id) = match &record.owner {
            ApiKeyOwner::User(user_id) => {
                let Some(user) = self
                    .users
                    .user(user_id)
                    .await?
                    .filter(|u| u.disabled_at.is_none())
                else {
                    return Ok(ApiKeyCheck::inactive());
                };
                let granted = self.user_permissions(&user).await?;
                let permissions = record
                    .permissions
                    .iter()
                    .filter(|p| granted.contains(p))
                    .cloned()
                    .collect();
                (record.scopes.clone(), permissions, None)
            }
            ApiKeyOwner::Client(client_id) => {
                let Some(client) = self.clients.client(client_id).await?.filter(|c| !c.is_public()) else {
                    return Ok(ApiKeyCheck::inactive());
                };
                let scopes = record
                    .scopes
                    .iter()
                    .filter(|s| client.scopes.contains(s))
                    .cloned()
                    .collect();
                (scopes, Vec::new(), Some(client.client_id))
            }
        };
        self.note_use(&record.id, now);
        Ok(ApiKeyCheck {
            active: true,
            details: Some(ApiKeyDetails {
                key_id: record.id.clone(),
                owner_type: record.owner.kind().to_owned(),
                sub: record.owner.id().to_owned(),
                client_id,
                scope: scopes.join(" "),
                permissions,
                allowed_ips: record.allowed_ips.clone(),
                exp: record.expires_at,
                iat: record.created_at,
                iss: self.issuer.to_string(),
            }),
        })
    }

    fn note_use(&self, id: &str, at: i64) {
        let mut uses = self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bounded by the number of keys, which the per-account quota bounds.
        let slot = uses.entry(id.to_owned()).or_insert(at);
        *slot = (*slot).max(at);
    }

    /// Writes the uses recorded since the last flush, in one transaction (the node does
    /// this every few seconds). On failure they are kept for the next try.
    pub async fn flush_uses(&self) -> Result<usize, StoreError> {
        let batch: Vec<(String, i64)> = {
            let mut uses = self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            uses.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(err) = self.store.touch_api_keys(&batch).await {
            let mut uses = self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for (id, at) in batch {
                let slot = uses.entry(id).or_insert(at);
                *slot = (*slot).max(at);
            }
            return Err(err);
        }
        Ok(batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_read_only_from_well_formed_keys() {
        let key = format!("{API_KEY_PREFIX}{}_{}", "a".repeat(22), "b".repeat(43));
        assert_eq!(key_id_of(&key), Some("a".repeat(22).as_str()));
        for bad in [
            key.replacen("tsk_", "tsr_", 1),
            key[..key.len() - 1].to_owned(),
            format!("{key}c"),
            key.replacen("a_b", "aab", 1),
            key.replacen('b', "+", 1),
            key.replacen('a', "é", 1),
            String::new(),
        ] {
            assert_eq!(key_id_of(&bad), None, "{bad}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = ApiKeySecret("tsk_x".to_owned());
        assert_eq!(format!("{secret:?}"), "ApiKeySecret(<redacted>)");
    }
}
