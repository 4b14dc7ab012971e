//! The audit trail: append-only records of authentication and administrative events.
//! Never a password, token or secret in any field.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRecord {
    /// Assigned by the store, increasing; 0 before insertion.
    pub id: i64,
    pub at: i64,
    /// e.g. `token.refreshed`, `token.reuse_detected`, `session.revoked`.
    pub event: String,
    /// Who acted: `user:<id>`, `client:<id>`, `operator`, `system`.
    pub actor: Option<String>,
    /// The user the event is about.
    pub subject: Option<String>,
    pub session_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `success`, `failure`, …
    pub outcome: String,
    pub request_id: Option<String>,
    /// A small JSON object with event-specific facts (a reason, a count).
    pub detail: Option<String>,
}

/// Which audit records to read, newest first. Every filter is optional; those given
/// combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub subject: Option<String>,
    pub event: Option<String>,
    /// Only records with `at >= since`.
    pub since: Option<i64>,
    /// Only records with `at < until`.
    pub until: Option<i64>,
    /// Only records with `id < before_id` (the next page).
    pub before_id: Option<i64>,
    /// Only records with `id > after_id` (what was written since a record already seen).
    pub after_id: Option<i64>,
    /// At most this many records: 0 means 100, and more than 1000 means 1000.
    pub limit: u32,
}

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends a record; returns its id.
    async fn record_audit(&self, record: &AuditRecord) -> Result<i64, StoreError>;
    /// Appends `records` in one transaction, in order: all of them or none. At most
    /// [`MAX_AUDIT_BATCH`] records (more is an error, and writes nothing).
    async fn record_audits(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
    /// Records matching `query`, newest first, at most `query.limit`.
    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// How many records of `event` fall in each `bucket_secs`-long interval from `since`
    /// (inclusive) to `until` (exclusive): one count per interval, oldest first, zeros
    /// included. At most [`MAX_AUDIT_BUCKETS`] intervals; `bucket_secs` must be positive.
    async fn count_audit_events(
        &self,
        event: &str,
        since: i64,
        until: i64,
        bucket_secs: i64,
    ) -> Result<Vec<u64>, StoreError>;
}

/// The most intervals one [`AuditStore::count_audit_events`] answers.
pub const MAX_AUDIT_BUCKETS: i64 = 1000;

/// What one clean-up pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub revocations: u64,
    pub audit_records: u64,
    /// Single-use tokens (e-mail verification, password reset).
    pub one_time_tokens: u64,
    pub authorization_codes: u64,
    pub sso_sessions: u64,
}

/// Continuous clean-up of expired rows (DESIGN: token tables must not grow without bound).
#[async_trait]
pub trait Maintenance: Send + Sync + 'static {
    /// Deletes, as of `now`: refresh tokens that expired, or whose session ended (revoked
    /// or expired) — keeping none of an ended session's tokens, while a live session keeps
    /// its rotated tokens (reuse detection needs them); sessions that ended more than
    /// `session_retention_secs` ago (kept until then for the user's history); revocation
    /// entries that expired (but the newest row, whatever its state, so that the feed's
    /// `seq` never goes backwards); audit records older than `audit_retention_secs`. Also
    /// drops session-creation lock rows untouched for `session_retention_secs` (not counted).
    /// Single-use tokens go once expired (`expires_at <= now`) or used (or invalidated) more
    /// than a day (86 400 s) before `now`. Authorization codes go more than a day after their
    /// expiry (`expires_at < now - 86 400`: until then a replay is still recognised, used or
    /// not); SSO sessions once ended (revoked or expired) more than `session_retention_secs`
    /// ago, as token sessions (whose `sso_session_id` may then name a purged row).
    async fn purge_expired(
        &self,
        now: i64,
        session_retention_secs: i64,
        audit_retention_secs: i64,
    ) -> Result<Purged, StoreError>;
}

/// How long a used (or invalidated) single-use token is kept before [`Maintenance`] removes it.
const ONE_TIME_TOKEN_USED_RETENTION_SECS: i64 = 86_400;

/// How long an expired authorization code is kept (so a late replay is still recognised and
/// what the code issued revoked) before [`Maintenance`] removes it.
const AUTHORIZATION_CODE_RETENTION_SECS: i64 = 86_400;

/// The most records one [`AuditStore::record_audits`] takes: one multi-row `INSERT` of
/// 11 parameters a row stays far below SQLite's and PostgreSQL's parameter limits.
pub const MAX_AUDIT_BATCH: usize = 256;

const AUDIT_COLUMNS: &str =
    "id, at, event, actor, subject, session_id, client_id, ip, user_agent, outcome, request_id, detail";

/// Page size when the query names none, and the most one query returns.
const DEFAULT_AUDIT_LIMIT: u32 = 100;
const MAX_AUDIT_LIMIT: u32 = 1000;

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        event: row.try_get("event")?,
        actor: row.try_get("actor")?,
        subject: row.try_get("subject")?,
        session_id: row.try_get("session_id")?,
        client_id: row.try_get("client_id")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        outcome: row.try_get("outcome")?,
        request_id: row.try_get("request_id")?,
        detail: row.try_get("detail")?,
    })
}

/// A value bound to an audit query's filter.
enum Bound<'a> {
    Text(&'a str),
    Int(i64),
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn record_audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO audit_events (at, event, actor, subject, session_id, client_id, ip, user_agent, \
             outcome, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(record.at)
        .bind(&record.event)
        .bind(&record.actor)
        .bind(&record.subject)
        .bind(&record.session_id)
        .bind(&record.client_id)
        .bind(&record.ip)
        .bind(&record.user_agent)
        .bind(&record.outcome)
        .bind(&record.request_id)
        .bind(&record.detail)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn record_audits(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if records.len() > MAX_AUDIT_BATCH {
            return Err(StoreError::InvalidInput(format!(
                "{} audit records in one batch (at most {MAX_AUDIT_BATCH})",
                records.len()
            )));
        }
        if records.is_empty() {
            return Ok(());
        }
        // One statement is one implicit transaction on both backends; the rows get
        // increasing ids in the order of VALUES.
        let mut sql = String::from(
            "INSERT INTO audit_events (at, event, actor, subject, session_id, client_id, ip, user_agent, \
             outcome, request_id, detail) VALUES ",
        );
        for row in 0..records.len() {
            let p = row * 11;
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for column in 1..=11 {
                if column > 1 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(p + column).to_string());
            }
            sql.push(')');
        }
        let mut statement = sqlx::query(&sql);
        for record in records {
            statement = statement
                .bind(record.at)
                .bind(&record.event)
                .bind(&record.actor)
                .bind(&record.subject)
                .bind(&record.session_id)
                .bind(&record.client_id)
                .bind(&record.ip)
                .bind(&record.user_agent)
                .bind(&record.outcome)
                .bind(&record.request_id)
                .bind(&record.detail);
        }
        statement.execute(&self.pool).await?;
        Ok(())
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        // Only the filters given become conditions (out of a fixed set, values always
        // bound): a `($1 IS NULL OR …)` form would keep PostgreSQL's generic plans off the
        // (subject, id) and (event, id) indexes.
        let filters = [
            ("subject = ", query.subject.as_deref().map(Bound::Text)),
            ("event = ", query.event.as_deref().map(Bound::Text)),
            ("at >= ", query.since.map(Bound::Int)),
            ("at < ", query.until.map(Bound::Int)),
            ("id < ", query.before_id.map(Bound::Int)),
            ("id > ", query.after_id.map(Bound::Int)),
        ];
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        for (condition, value) in filters {
            if let Some(value) = value {
                values.push(value);
                conditions.push(format!("{condition}${}", values.len()));
            }
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = match query.limit {
            0 => DEFAULT_AUDIT_LIMIT,
            n => n.min(MAX_AUDIT_LIMIT),
        };
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events {where_clause} ORDER BY id DESC LIMIT ${}",
            values.len() + 1
        );
        let mut statement = sqlx::query(&sql);
        for value in values {
            statement = match value {
                Bound::Text(text) => statement.bind(text),
                Bound::Int(int) => statement.bind(int),
            };
        }
        let rows = statement.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn count_audit_events(
        &self,
        event: &str,
        since: i64,
        until: i64,
        bucket_secs: i64,
    ) -> Result<Vec<u64>, StoreError> {
        if bucket_secs <= 0 || until <= since {
            return Err(StoreError::InvalidInput(format!(
                "audit counts need bucket_secs > 0 and since < until (got {bucket_secs}, {since}..{until})"
            )));
        }
        // Both positive here: a partial last interval counts as one.
        let buckets = (until - since + bucket_secs - 1) / bucket_secs;
        if buckets > MAX_AUDIT_BUCKETS {
            return Err(StoreError::InvalidInput(format!(
                "audit counts over {buckets} intervals (at most {MAX_AUDIT_BUCKETS})"
            )));
        }
        // Integer division of a non-negative offset: the same bucket on SQLite and PostgreSQL.
        let rows = sqlx::query(
            "SELECT (at - $2) / $4 AS bucket, COUNT(*) AS n FROM audit_events \
             WHERE event = $1 AND at >= $2 AND at < $3 GROUP BY bucket",
        )
        .bind(event)
        .bind(since)
        .bind(until)
        .bind(bucket_secs)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = vec![0u64; usize::try_from(buckets).unwrap_or(0)];
        for row in &rows {
            let bucket: i64 = row.try_get("bucket")?;
            let n: i64 = row.try_get("n")?;
            let slot = usize::try_from(bucket)
                .ok()
                .and_then(|i| counts.get_mut(i))
                .ok_or_else(|| StoreError::Corrupt(format!("audit bucket {bucket} out of range")))?;
            *slot = u64::try_from(n).map_err(|e| StoreError::Corrupt(format!("audit count {n}: {e}")))?;
        }
        Ok(counts)
    }
}

#[async_trait]
impl Maintenance for SqlStore {
    async fn purge_expired(
        &self,
        now: i64,
        session_retention_secs: i64,
        audit_retention_secs: i64,
    ) -> Result<Purged, StoreError> {
        // Separate statements, each atomic on its own: no long transaction holds locks
        // while a large backlog is cleaned. Tokens go first so that those of sessions about
        // to be deleted are counted rather than removed silently by the cascade.
        let ended_before = now.saturating_sub(session_retention_secs);
        let refresh_tokens = sqlx::query(
            "DELETE FROM refresh_tokens WHERE expires_at <= $1 OR session_id IN ( \
                 SELECT id FROM sessions \
                 WHERE revoked_at IS NOT NULL OR idle_expires_at <= $1 OR absolute_expires_at <= $1)",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let sessions = sqlx::query(
            "DELETE FROM sessions \
             WHERE revoked_at <= $1 OR idle_expires_at <= $1 OR absolute_expires_at <= $1",
        )
        .bind(ended_before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let revocations = sqlx::query(
            "DELETE FROM revocations \
             WHERE expires_at <= $1 AND seq < (SELECT MAX(seq) FROM revocations)",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let audit_records = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(now.saturating_sub(audit_retention_secs))
            .execute(&self.pool)
            .await?
            .rows_affected();
        let one_time_tokens =
            sqlx::query("DELETE FROM one_time_tokens WHERE expires_at <= $1 OR used_at < $2")
                .bind(now)
                .bind(now.saturating_sub(ONE_TIME_TOKEN_USED_RETENTION_SECS))
                .execute(&self.pool)
                .await?
                .rows_affected();
        let authorization_codes = sqlx::query("DELETE FROM authorization_codes WHERE expires_at < $1")
            .bind(now.saturating_sub(AUTHORIZATION_CODE_RETENTION_SECS))
            .execute(&self.pool)
            .await?
            .rows_affected();
        let sso_sessions = sqlx::query("DELETE FROM sso_sessions WHERE revoked_at <= $1 OR expires_at <= $1")
            .bind(ended_before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        // A lock row holds no data, it only queues creations: the next creation for the
        // pair inserts it again, and one in progress holds it (the delete waits, then sees
        // a fresh `touched_at` and leaves it).
        sqlx::query("DELETE FROM session_locks WHERE touched_at <= $1")
            .bind(ended_before)
            .execute(&self.pool)
            .await?;
        Ok(Purged {
            refresh_tokens,
            sessions,
            revocations,
            audit_records,
            one_time_tokens,
            authorization_codes,
            sso_sessions,
        })
    }
}
