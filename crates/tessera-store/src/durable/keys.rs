//! Signing keys: stored encrypted, published while any token they signed may live.
//!
//! A key's life: created → published (in JWKS) → `activates_at` (used for signing) →
//! `retires_at` (a newer key of the same algorithm took over) → `expires_at` (every token
//! it signed has expired; it leaves JWKS and may be pruned).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::StoreError;

/// A signing key as stored. `private_key` is ciphertext; this crate never sees the
/// key-encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// JOSE algorithm name: `ES256`, `RS256`, `EdDSA`.
    pub alg: String,
    pub encrypted_private_key: Vec<u8>,
    /// The public JWK (JSON text) as published.
    pub public_jwk: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub retires_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("encrypted_private_key", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every key that has not expired at `now` (unix seconds), oldest first.
    async fn live_keys(&self, now: i64) -> Result<Vec<StoredKey>, StoreError>;

    /// Every key, expired or not, oldest first (for operators).
    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError>;

    /// Stores the first keys of a fresh deployment. Returns `false`, storing nothing, when
    /// another node (or an earlier start) already did: exactly one bootstrap wins.
    async fn bootstrap_keys(&self, keys: &[StoredKey]) -> Result<bool, StoreError>;

    /// Adds `new` and schedules every other unretired key of the same algorithm to retire
    /// when `new` activates, and to expire `retire_window_secs` later — one transaction.
    async fn rotate_key(&self, new: &StoredKey, retire_window_secs: i64) -> Result<(), StoreError>;

    /// Deletes keys that expired before `before`; returns how many.
    async fn prune_keys(&self, before: i64) -> Result<u64, StoreError>;
}

const KEY_COLUMNS: &str =
    "kid, alg, private_key, public_jwk, created_at, activates_at, retires_at, expires_at";

fn key_from_row(row: &AnyRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        encrypted_private_key: row.try_get("private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: row.try_get("created_at")?,
        activates_at: row.try_get("activates_at")?,
        retires_at: row.try_get("retires_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

async fn insert_key<'c, E>(executor: E, key: &StoredKey) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, activates_at, retires_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.encrypted_private_key)
    .bind(&key.public_jwk)
    .bind(key.created_at)
    .bind(key.activates_at)
    .bind(key.retires_at)
    .bind(key.expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn live_keys(&self, now: i64) -> Result<Vec<StoredKey>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE expires_at IS NULL OR expires_at > $1 \
             ORDER BY activates_at, kid"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY activates_at, kid");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn bootstrap_keys(&self, keys: &[StoredKey]) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let marked = sqlx::query(
            "INSERT INTO store_markers (name, created_at) VALUES ('signing_keys_bootstrapped', $1) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(keys.first().map_or(0, |k| k.created_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for key in keys {
            insert_key(&mut *tx, key).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_key(&self, new: &StoredKey, retire_window_secs: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE signing_keys SET retires_at = $1, expires_at = $2 \
             WHERE alg = $3 AND retires_at IS NULL",
        )
        .bind(new.activates_at)
        .bind(new.activates_at.saturating_add(retire_window_secs))
        .bind(&new.alg)
        .execute(&mut *tx)
        .await?;
        insert_key(&mut *tx, new).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune_keys(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
