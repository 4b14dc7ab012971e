//! The revocation feed: revoked session ids and access-token ids whose tokens may still be
//! presented, until those tokens expire, and revoked API keys (by key id) until they would
//! have expired. Verifiers poll it with a cursor (`seq`).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::StoreError;

/// What a revocation entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedKind {
    /// A session: every access token with this `sid` is revoked.
    Session,
    /// One access token, by `jti`.
    Token,
    /// A partner API key, by its key id.
    ApiKey,
}

impl RevokedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokedKind::Session => "sid",
            RevokedKind::Token => "jti",
            RevokedKind::ApiKey => "api_key",
        }
    }

    pub fn parse(text: &str) -> Option<RevokedKind> {
        match text {
            "sid" => Some(RevokedKind::Session),
            "jti" => Some(RevokedKind::Token),
            "api_key" => Some(RevokedKind::ApiKey),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    /// Increasing with insertion order (a cursor for pollers).
    pub seq: i64,
    pub kind: RevokedKind,
    pub value: String,
    /// When the last token it covers expires; the entry is dropped after.
    pub expires_at: i64,
    pub revoked_at: i64,
}

#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Adds an entry; returns its `seq`. Revoking the same value again adds nothing new
    /// if an entry with an expiry at least as late exists (returns that entry's `seq`).
    async fn add_revocation(
        &self,
        kind: RevokedKind,
        value: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<i64, StoreError>;

    /// Unexpired entries (`expires_at > now`) with `seq > after_seq`, plus every unexpired
    /// entry revoked at or after `recent_since` (a poller's cursor can pass an entry whose
    /// transaction committed late; re-sending recent ones closes that gap). Ordered by seq.
    async fn revocations(
        &self,
        after_seq: i64,
        recent_since: i64,
        now: i64,
    ) -> Result<Vec<RevocationRecord>, StoreError>;

    /// The highest `seq` ever assigned (0 when none). Never goes backwards: clean-up keeps
    /// the newest entry's row even once it has expired (it is then invisible to the feed).
    async fn latest_revocation_seq(&self) -> Result<i64, StoreError>;

    /// Whether an unexpired entry names `value`.
    async fn is_revoked(&self, kind: RevokedKind, value: &str, now: i64) -> Result<bool, StoreError>;
}

fn revocation_from_row(row: &AnyRow) -> Result<RevocationRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(RevocationRecord {
        seq: row.try_get("seq")?,
        kind: RevokedKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("revocations.kind {kind:?}")))?,
        value: row.try_get("value")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Appends an entry unconditionally (inside the caller's transaction); returns its `seq`.
pub(super) async fn insert_revocation<'c, E>(
    executor: E,
    kind: RevokedKind,
    value: &str,
    expires_at: i64,
    revoked_at: i64,
) -> Result<i64, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "INSERT INTO revocations (kind, value, expires_at, revoked_at) VALUES ($1, $2, $3, $4) RETURNING seq",
    )
    .bind(kind.as_str())
    .bind(value)
    .bind(expires_at)
    .bind(revoked_at)
    .fetch_one(executor)
    .await?;
    Ok(row.try_get("seq")?)
}

#[async_trait]
impl RevocationStore for SqlStore {
    async fn add_revocation(
        &self,
        kind: RevokedKind,
        value: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        // The insert comes first so that on SQLite the transaction holds the write lock from
        // its first statement (no lock upgrade after a read), which also makes the check and
        // the insert one atomic step there. On PostgreSQL two concurrent calls may both
        // insert; pollers dedupe by value, so a duplicate costs nothing.
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO revocations (kind, value, expires_at, revoked_at) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS ( \
                 SELECT 1 FROM revocations \
                 WHERE kind = $1 AND value = $2 AND expires_at >= $3 AND expires_at > $4) \
             RETURNING seq",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let seq = match inserted {
            Some(row) => row.try_get("seq")?,
            None => {
                let existing = sqlx::query(
                    "SELECT seq FROM revocations \
                     WHERE kind = $1 AND value = $2 AND expires_at >= $3 AND expires_at > $4 \
                     ORDER BY seq DESC LIMIT 1",
                )
                .bind(kind.as_str())
                .bind(value)
                .bind(expires_at)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                match existing {
                    Some(row) => row.try_get("seq")?,
                    // Purged in between (PostgreSQL only): add it after all.
                    None => insert_revocation(&mut *tx, kind, value, expires_at, now).await?,
                }
            }
        };
        tx.commit().await?;
        Ok(seq)
    }

    async fn revocations(
        &self,
        after_seq: i64,
        recent_since: i64,
        now: i64,
    ) -> Result<Vec<RevocationRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, value, expires_at, revoked_at FROM revocations \
             WHERE expires_at > $3 AND (seq > $1 OR revoked_at >= $2) ORDER BY seq",
        )
        .bind(after_seq)
        .bind(recent_since)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(revocation_from_row).collect()
    }

    async fn latest_revocation_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM revocations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("seq")?)
    }

    async fn is_revoked(&self, kind: RevokedKind, value: &str, now: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT seq FROM revocations WHERE kind = $1 AND value = $2 AND expires_at > $3 LIMIT 1",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
