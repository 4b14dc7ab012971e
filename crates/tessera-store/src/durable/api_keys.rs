//! Partner API keys (R27): rows of keys that belong to a user or to a client. Only a hash
//! of each key is stored. Revoking marks the row and adds its revocation-feed entry in one
//! transaction, so a revoked key is on the feed by the time the caller hears "revoked".

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::revocations::{insert_revocation, RevokedKind};
use super::SqlStore;
use crate::StoreError;

/// The account a key acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyOwner {
    /// A user, by id.
    User(String),
    /// A client, by client id.
    Client(String),
}

impl ApiKeyOwner {
    /// `user` or `client`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiKeyOwner::User(_) => "user",
            ApiKeyOwner::Client(_) => "client",
        }
    }

    /// The user id or the client id.
    pub fn id(&self) -> &str {
        match self {
            ApiKeyOwner::User(id) | ApiKeyOwner::Client(id) => id,
        }
    }

    fn column(&self) -> &'static str {
        match self {
            ApiKeyOwner::User(_) => "user_id",
            ApiKeyOwner::Client(_) => "client_id",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The public key id (the part of the key after `tsk_` and before the secret).
    pub id: String,
    pub owner: ApiKeyOwner,
    /// The owner's name for it ("billing export").
    pub name: String,
    /// SHA-256 of the whole key, base64url.
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub permissions: Vec<String>,
    /// Addresses or CIDR ranges the key may be used from; empty: any.
    pub allowed_ips: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKeyRecord {
    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key, unless its owner already has `max_live` keys that are neither
    /// revoked nor expired at `now` (then `false`). `StoreError::Conflict` if the id is
    /// taken. The owner must exist (the caller checks; the foreign key refuses otherwise).
    async fn create_api_key(&self, key: &ApiKeyRecord, max_live: u64, now: i64) -> Result<bool, StoreError>;

    /// The key with id `id`, whoever owns it.
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Every key of `owner` (revoked and expired ones too), newest first.
    async fn api_keys_of(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes key `id` and puts it on the revocation feed until its expiry, in one
    /// transaction: `true` for the one caller that revoked it, `false` when it is unknown
    /// or was revoked already.
    async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// Records uses: each key's `last_used_at` becomes the given time unless it is already
    /// later. One transaction for the whole batch; unknown ids are skipped.
    async fn touch_api_keys(&self, uses: &[(String, i64)]) -> Result<(), StoreError>;
}

const COLUMNS: &str = "id, user_id, client_id, name, secret_hash, scopes, permissions, allowed_ips, \
                       created_at, expires_at, last_used_at, revoked_at";

fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(format!("api key list field: {e}")))
}

fn list(row: &AnyRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("api_keys.{column}: {e}")))
}

fn from_row(row: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    let user: Option<String> = row.try_get("user_id")?;
    let client: Option<String> = row.try_get("client_id")?;
    let owner = match (user, client) {
        (Some(user), None) => ApiKeyOwner::User(user),
        (None, Some(client)) => ApiKeyOwner::Client(client),
        _ => return Err(StoreError::Corrupt("api_keys: not exactly one owner".to_owned())),
    };
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        owner,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        scopes: list(row, "scopes")?,
        permissions: list(row, "permissions")?,
        allowed_ips: list(row, "allowed_ips")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn create_api_key(&self, key: &ApiKeyRecord, max_live: u64, now: i64) -> Result<bool, StoreError> {
        let (user, client) = match &key.owner {
            ApiKeyOwner::User(id) => (Some(id.as_str()), None),
            ApiKeyOwner::Client(id) => (None, Some(id.as_str())),
        };
        let column = key.owner.column();
        let max_live = i64::try_from(max_live).unwrap_or(i64::MAX);
        // One statement: the count and the insert see the same snapshot (SQLite serialises
        // writers; on PostgreSQL two racing creations may both pass — the limit is a quota
        // against runaway scripts, not a security boundary).
        let sql = format!(
            "INSERT INTO api_keys ({COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL \
             WHERE (SELECT COUNT(*) FROM api_keys WHERE {column} = $11 AND revoked_at IS NULL \
                    AND expires_at > $12) < $13"
        );
        let done = sqlx::query(&sql)
            .bind(&key.id)
            .bind(user)
            .bind(client)
            .bind(&key.name)
            .bind(&key.secret_hash)
            .bind(to_json(&key.scopes)?)
            .bind(to_json(&key.permissions)?)
            .bind(to_json(&key.allowed_ips)?)
            .bind(key.created_at)
            .bind(key.expires_at)
            .bind(key.owner.id())
            .bind(now)
            .bind(max_live)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn api_keys_of(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE {} = $1 ORDER BY created_at DESC, id",
            owner.column()
        );
        let rows = sqlx::query(&sql).bind(owner.id()).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING expires_at",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = revoked else {
            return Ok(false);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at > now {
            insert_revocation(&mut *tx, RevokedKind::ApiKey, id, expires_at, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn touch_api_keys(&self, uses: &[(String, i64)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (id, at) in uses {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            )
            .bind(id)
            .bind(*at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
