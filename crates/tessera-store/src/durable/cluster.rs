//! Many nodes on one database: node heartbeats (how many nodes are alive), leases (which
//! node runs a background job) and the back-channel logout outbox (deliveries that outlive
//! the node that started them).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::StoreError;

/// Rows of nodes not seen for this long are deleted by any heartbeat.
const FORGET_NODES_AFTER_SECS: i64 = 86_400;

/// A back-channel logout notification waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: String,
    pub client_id: String,
    pub uri: String,
    pub user_id: String,
    pub sso_session_id: String,
    /// Attempts made so far.
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub last_error: Option<String>,
}

#[async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// Records that node `id` (started at `started_at`) is alive at `now`, forgets nodes gone
    /// for a day, and returns how many nodes were seen at or after `alive_since` (this one
    /// included).
    async fn heartbeat(
        &self,
        id: &str,
        started_at: i64,
        now: i64,
        alive_since: i64,
    ) -> Result<u32, StoreError>;

    /// Removes node `id` (it is shutting down).
    async fn leave(&self, id: &str) -> Result<(), StoreError>;

    /// Takes the lease `name` for `holder` until `until`, or renews it if `holder` has it.
    /// Succeeds only if nobody else holds an unexpired lease (`expires_at > now`); exactly
    /// one of several concurrent callers gets a free lease. Returns whether `holder` holds it.
    async fn acquire_lease(&self, name: &str, holder: &str, now: i64, until: i64)
        -> Result<bool, StoreError>;

    /// Gives the lease up, if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Adds a notification to the outbox.
    async fn enqueue_backchannel(&self, record: &OutboxRecord) -> Result<(), StoreError>;

    /// Claims up to `limit` notifications due at `now` (`next_attempt_at <= now`): each one
    /// returned has its `next_attempt_at` moved to `claim_until`, so no other caller gets it
    /// before then. Oldest first.
    async fn claim_backchannel(
        &self,
        now: i64,
        claim_until: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError>;

    /// Records a failed attempt: `attempts` and `last_error` updated, next try at
    /// `next_attempt_at`.
    async fn retry_backchannel(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Removes a notification (delivered, or given up on).
    async fn finish_backchannel(&self, id: &str) -> Result<(), StoreError>;
}

fn outbox_from_row(row: &AnyRow) -> Result<OutboxRecord, StoreError> {
    Ok(OutboxRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        uri: row.try_get("uri")?,
        user_id: row.try_get("user_id")?,
        sso_session_id: row.try_get("sso_session_id")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        last_error: row.try_get("last_error")?,
    })
}

#[async_trait]
impl ClusterStore for SqlStore {
    async fn heartbeat(
        &self,
        id: &str,
        started_at: i64,
        now: i64,
        alive_since: i64,
    ) -> Result<u32, StoreError> {
        sqlx::query(
            "INSERT INTO cluster_nodes (id, started_at, last_seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
        )
        .bind(id)
        .bind(started_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM cluster_nodes WHERE last_seen_at < $1")
            .bind(now - FORGET_NODES_AFTER_SECS)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM cluster_nodes WHERE last_seen_at >= $1")
            .bind(alive_since)
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn leave(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cluster_nodes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        // One statement: the conflict update happens only when the lease is ours or has
        // expired, and RETURNING yields a row only when this call took or renewed it.
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn enqueue_backchannel(&self, record: &OutboxRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO backchannel_outbox \
             (id, client_id, uri, user_id, sso_session_id, attempts, next_attempt_at, created_at, last_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&record.id)
        .bind(&record.client_id)
        .bind(&record.uri)
        .bind(&record.user_id)
        .bind(&record.sso_session_id)
        .bind(record.attempts)
        .bind(record.next_attempt_at)
        .bind(record.created_at)
        .bind(record.last_error.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_backchannel(
        &self,
        now: i64,
        claim_until: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        // Claim by moving next_attempt_at past now, conditional on it still being due, so a
        // row is returned to at most one caller even without a lease.
        let due = sqlx::query(
            "SELECT id FROM backchannel_outbox WHERE next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in due {
            let id: String = row.try_get("id")?;
            let row = sqlx::query(
                "UPDATE backchannel_outbox SET next_attempt_at = $1 \
                 WHERE id = $2 AND next_attempt_at <= $3 \
                 RETURNING id, client_id, uri, user_id, sso_session_id, attempts, next_attempt_at, created_at, last_error",
            )
            .bind(claim_until)
            .bind(&id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                claimed.push(outbox_from_row(&row)?);
            }
        }
        Ok(claimed)
    }

    async fn retry_backchannel(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE backchannel_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4",
        )
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_backchannel(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM backchannel_outbox WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
