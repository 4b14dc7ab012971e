//! Second factors and recovery codes. Every decision that must hold across nodes is one
//! statement: a TOTP step is accepted by a conditional UPDATE (a code works once), a
//! recovery code is used by one (it works once), a new set of codes replaces the old one in
//! a transaction.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::StoreError;

/// One enrolled (or enrolling) factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaFactorRecord {
    pub id: String,
    pub user_id: String,
    /// `totp`.
    pub kind: String,
    /// The user's name for it ("phone").
    pub name: String,
    /// The sealed secret (TOTP key), when the kind has one.
    pub secret: Option<Vec<u8>>,
    pub created_at: i64,
    /// When the first correct code arrived; until then the factor is not used at sign-in.
    pub confirmed_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The newest TOTP time step accepted.
    pub last_step: Option<i64>,
    /// A passkey's credential id (base64url), unique across accounts.
    pub credential_id: Option<String>,
    /// A passkey's public key, sign counter and flags (JSON).
    pub credential: Option<String>,
}

#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    /// Stores a new (unconfirmed) factor.
    async fn create_factor(&self, factor: &MfaFactorRecord) -> Result<(), StoreError>;

    /// The factors of `user_id`, oldest first.
    async fn factors(&self, user_id: &str) -> Result<Vec<MfaFactorRecord>, StoreError>;

    /// Accepts TOTP time step `step` for factor `id` of `user_id`, atomically: only when no
    /// step as new or newer was accepted before (of concurrent callers with the same code,
    /// exactly one gets `true`). Confirms the factor if it was not yet, and records the use.
    async fn accept_step(&self, id: &str, user_id: &str, step: i64, now: i64) -> Result<bool, StoreError>;

    /// Records a use of factor `id` of `user_id` that the caller checked (an e-mailed code),
    /// confirming the factor if it was not yet; `false` when there is no such factor.
    async fn mark_used(&self, id: &str, user_id: &str, now: i64) -> Result<bool, StoreError>;

    /// Renames factor `id` of `user_id`; `false` when there is no such factor.
    async fn rename_factor(&self, id: &str, user_id: &str, name: &str) -> Result<bool, StoreError>;

    /// Deletes factor `id` of `user_id`; `false` when there is no such factor. When it was
    /// the user's last confirmed factor, the recovery codes go with it.
    async fn delete_factor(&self, id: &str, user_id: &str) -> Result<bool, StoreError>;

    /// Deletes every factor and recovery code of `user_id` (an operator's reset). Returns
    /// how many factors there were.
    async fn reset_factors(&self, user_id: &str) -> Result<u64, StoreError>;

    /// Replaces the recovery codes of `user_id` with `code_hashes`, in one transaction.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        now: i64,
    ) -> Result<(), StoreError>;

    /// Uses the recovery code with `code_hash` of `user_id`, atomically: `true` for exactly
    /// one caller, and only while it is unused.
    async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool, StoreError>;

    /// How many unused recovery codes `user_id` has.
    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StoreError>;

    /// The factor holding the passkey with `credential_id`, of whichever account.
    async fn factor_by_credential(&self, credential_id: &str) -> Result<Option<MfaFactorRecord>, StoreError>;

    /// Replaces the stored credential of passkey factor `id` with `new` (its counter moved
    /// on) and records the use, atomically: only while it is still `old` — of two callers
    /// that verified one assertion, exactly one gets `true`.
    async fn swap_credential(&self, id: &str, old: &str, new: &str, now: i64) -> Result<bool, StoreError>;
}

const COLUMNS: &str = "id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, last_step, \
                       credential_id, credential";

fn from_row(row: &AnyRow) -> Result<MfaFactorRecord, StoreError> {
    Ok(MfaFactorRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        secret: row.try_get("secret")?,
        created_at: row.try_get("created_at")?,
        confirmed_at: row.try_get("confirmed_at")?,
        last_used_at: row.try_get("last_used_at")?,
        last_step: row.try_get("last_step")?,
        credential_id: row.try_get("credential_id")?,
        credential: row.try_get("credential")?,
    })
}

#[async_trait]
impl MfaStore for SqlStore {
    async fn create_factor(&self, factor: &MfaFactorRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mfa_factors (id, user_id, kind, name, secret, created_at, confirmed_at, \
             last_used_at, last_step, credential_id, credential) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&factor.id)
        .bind(&factor.user_id)
        .bind(&factor.kind)
        .bind(&factor.name)
        .bind(factor.secret.as_deref())
        .bind(factor.created_at)
        .bind(factor.confirmed_at)
        .bind(factor.last_used_at)
        .bind(factor.last_step)
        .bind(factor.credential_id.as_deref())
        .bind(factor.credential.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn factors(&self, user_id: &str) -> Result<Vec<MfaFactorRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id");
        let rows = sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    async fn accept_step(&self, id: &str, user_id: &str, step: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET last_step = $3, last_used_at = $4, \
             confirmed_at = COALESCE(confirmed_at, $4) \
             WHERE id = $1 AND user_id = $2 AND (last_step IS NULL OR last_step < $3)",
        )
        .bind(id)
        .bind(user_id)
        .bind(step)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_used(&self, id: &str, user_id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET last_used_at = $3, confirmed_at = COALESCE(confirmed_at, $3) \
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn rename_factor(&self, id: &str, user_id: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE mfa_factors SET name = $3 WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_factor(&self, id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM mfa_factors WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let left: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if left == 0 {
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn reset_factors(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let factors = sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(factors)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for hash in code_hashes {
            sqlx::query(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, user_id: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn factor_by_credential(&self, credential_id: &str) -> Result<Option<MfaFactorRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM mfa_factors WHERE credential_id = $1");
        let row = sqlx::query(&sql)
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn swap_credential(&self, id: &str, old: &str, new: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET credential = $3, last_used_at = $4 WHERE id = $1 AND credential = $2",
        )
        .bind(id)
        .bind(old)
        .bind(new)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
