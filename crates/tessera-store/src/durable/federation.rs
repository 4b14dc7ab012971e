//! Federated identities: an account's identities at upstream OpenID Connect / OAuth 2.0
//! providers, keyed by (provider, upstream subject) — never by e-mail.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::users::insert_user;
use super::{SqlStore, UserRecord};
use crate::StoreError;

/// One upstream identity linked to a Tessera account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedIdentityRecord {
    /// The configured provider id (`google`, `corp`).
    pub provider: String,
    /// The upstream's subject identifier for the user (`sub`, or the mapped claim).
    pub subject: String,
    pub user_id: String,
    /// The address the upstream gave at the last sign-in, for the user's own list.
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
}

#[async_trait]
pub trait FederationStore: Send + Sync + 'static {
    /// The identity `subject` at `provider`, if it is linked to an account.
    async fn federated_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<FederatedIdentityRecord>, StoreError>;

    /// Every identity linked to `user_id`, oldest first.
    async fn federated_identities(&self, user_id: &str) -> Result<Vec<FederatedIdentityRecord>, StoreError>;

    /// Links an identity to its (existing) account; `StoreError::Conflict` if that
    /// (provider, subject) is linked already, to this account or another.
    async fn link_identity(&self, identity: &FederatedIdentityRecord) -> Result<(), StoreError>;

    /// Creates `user` and links `identity` to it in one transaction: both or neither
    /// (`StoreError::Conflict` when the e-mail or the identity is taken).
    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &FederatedIdentityRecord,
    ) -> Result<(), StoreError>;

    /// Records a sign-in through the identity (time, the address the upstream gave now).
    async fn touch_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Removes the link of `subject` at `provider` from `user_id`; whether there was one.
    async fn unlink_identity(&self, user_id: &str, provider: &str, subject: &str)
        -> Result<bool, StoreError>;
}

const COLUMNS: &str = "provider, subject, user_id, email, created_at, last_used_at";

fn from_row(row: &AnyRow) -> Result<FederatedIdentityRecord, StoreError> {
    Ok(FederatedIdentityRecord {
        provider: row.try_get("provider")?,
        subject: row.try_get("subject")?,
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

const INSERT: &str = "INSERT INTO federated_identities (provider, subject, user_id, email, created_at, \
     last_used_at) VALUES ($1, $2, $3, $4, $5, $6)";

fn insert(
    identity: &FederatedIdentityRecord,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(INSERT)
        .bind(&identity.provider)
        .bind(&identity.subject)
        .bind(&identity.user_id)
        .bind(&identity.email)
        .bind(identity.created_at)
        .bind(identity.last_used_at)
}

#[async_trait]
impl FederationStore for SqlStore {
    async fn federated_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<FederatedIdentityRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM federated_identities WHERE provider = $1 AND subject = $2");
        let row = sqlx::query(&sql)
            .bind(provider)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn federated_identities(&self, user_id: &str) -> Result<Vec<FederatedIdentityRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM federated_identities WHERE user_id = $1 \
             ORDER BY created_at, provider, subject"
        );
        let rows = sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    async fn link_identity(&self, identity: &FederatedIdentityRecord) -> Result<(), StoreError> {
        insert(identity).execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &FederatedIdentityRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_user(user)?.execute(&mut *tx).await?;
        insert(identity).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE federated_identities SET last_used_at = $3, email = COALESCE($4, email) \
             WHERE provider = $1 AND subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .bind(now)
        .bind(email)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn unlink_identity(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM federated_identities WHERE user_id = $1 AND provider = $2 AND subject = $3",
        )
        .bind(user_id)
        .bind(provider)
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
