//! Sessions and their refresh-token families.
//!
//! One session per login: it owns exactly one refresh-token family (a chain in which each
//! token names its successor). A session is *alive* while it is not revoked and neither its
//! idle nor its absolute expiry has passed. Revoking a session ends its family and puts its
//! `sid` on the revocation feed until the last access token issued in it expires — in the
//! same transaction, so a revoked session can never be missing from the feed.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::revocations::insert_revocation;
use super::{RevokedKind, SqlStore};
use crate::StoreError;

/// A session row. `id` is the `sid` claim: a public identifier, not a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub subject: String,
    pub client_id: String,
    /// `web`, `mobile`, `partner` or a configured name.
    pub channel: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Space-separated granted scopes.
    pub scope: String,
    /// Space-separated authentication methods (RFC 8176 `amr` values).
    pub amr: String,
    /// Space-separated roles assigned to the user at login (the user's current ones are
    /// read again at every refresh; these stand when the user is gone).
    pub roles: String,
    /// Space-separated roles the session chose to activate (dynamic separation of duty);
    /// `None`: it chose none.
    pub active_roles: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    /// The latest `exp` of any access token issued in this session.
    pub access_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    /// The SSO session (browser login at the provider) this token session came through;
    /// `None` for the first-party JSON API.
    pub sso_session_id: Option<String>,
    /// The RFC 7638 thumbprint of the DPoP key this session's refresh tokens are bound to
    /// (RFC 9449 §5: a public client that presented a proof); `None`: not bound.
    pub dpop_jkt: Option<String>,
    /// The upstream provider the sign-in went through (the `idp` claim); `None` for a
    /// sign-in at Tessera itself.
    pub idp: Option<String>,
}

impl SessionRecord {
    pub fn is_alive(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.idle_expires_at > now && self.absolute_expires_at > now
    }
}

/// A refresh token as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 of the token, base64url.
    pub token_hash: String,
    pub session_id: String,
    pub client_id: String,
    /// 0 for the token issued at login, +1 per rotation.
    pub generation: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    /// When it was exchanged for its successor.
    pub rotated_at: Option<i64>,
    pub successor_hash: Option<String>,
}

/// The concurrent-session policy applied when a session is created, counting the alive
/// sessions of the same subject and channel. N is meant to be at least 1 (configuration is
/// validated); given 0, `Reject(0)` refuses every session and `RevokeOldest(0)` revokes
/// every alive one before creating the new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionLimit {
    Unlimited,
    /// At most N: the oldest alive sessions are revoked to make room ("newest wins").
    RevokeOldest(u32),
    /// At most N: a new session beyond that is refused.
    Reject(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created; `revoked` lists sessions ended to make room (reason `session_limit`).
    Created { revoked: Vec<SessionRecord> },
    /// Refused by a [`SessionLimit::Reject`] policy; nothing was written.
    LimitReached,
}

/// One refresh-token rotation, applied atomically by [`SessionStore::rotate_refresh_token`].
#[derive(Debug, Clone)]
pub struct Rotation {
    pub presented_hash: String,
    pub client_id: String,
    pub child_hash: String,
    pub now: i64,
    /// The session's idle expiry becomes `min(now + idle_secs, absolute_expires_at)`.
    pub idle_secs: i64,
    /// The `exp` of the access token issued with the child.
    pub access_expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

// Returned once per rotation and matched at once: the size costs nothing worth a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was live and is now rotated; `child` is its successor and
    /// `session` the session after the update.
    Rotated {
        session: SessionRecord,
        child: RefreshRecord,
    },
    /// Nothing changed: the token is unknown, already rotated, expired, owned by another
    /// client, or its session is not alive. The caller looks closer with
    /// [`SessionStore::refresh_token`] to tell reuse from the rest.
    NotRotated,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Creates `session` with the first token of its family, enforcing `limit` over the alive
    /// sessions of (`subject`, `channel`). Atomic: concurrent creations for the same subject
    /// and channel never exceed the limit together. Sessions revoked to make room get
    /// reason `session_limit` and a `sid` revocation entry. "Now" is `session.created_at`;
    /// the token joins `session` whatever its `session_id` says. A taken session id or token
    /// hash is `StoreError::Conflict` and writes nothing.
    async fn create_session(
        &self,
        session: &SessionRecord,
        first_token: &RefreshRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError>;

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// The alive sessions of `subject` at `now`, most recently seen first.
    async fn alive_sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError>;

    /// How many sessions, of every subject, are alive at `now` (for the
    /// `tessera_active_sessions` gauge: one count, no rows).
    async fn count_alive_sessions(&self, now: i64) -> Result<u64, StoreError>;

    /// One page of the alive sessions of every subject at `now`, most recently active
    /// first: by idle expiry (which every use pushes out), then id, both descending — the
    /// order of the `sessions_idle_expires` index. `after` is the (idle expiry, id) of the
    /// previous page's last session; at most `limit` (1–1000) sessions.
    async fn alive_sessions_page(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// How many sessions are alive at `now`, by channel (`web`, `mobile`, `partner`, …),
    /// channels in name order; a channel without one is absent.
    async fn count_alive_sessions_by_channel(&self, now: i64) -> Result<Vec<(String, u64)>, StoreError>;

    /// Revokes the session if it is alive; returns it as revoked, or `None` if it was not
    /// alive (nothing changed). Adds a `sid` revocation entry expiring at
    /// `access_expires_at` when that is after `now`.
    async fn revoke_session(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Revokes every alive session of `subject` the same way; returns those revoked.
    async fn revoke_sessions_of(
        &self,
        subject: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Extends an alive session: idle expiry becomes `min(now + idle_secs, absolute)`,
    /// `last_seen_at` becomes `now`. Returns the updated session, or `None` if not alive.
    async fn extend_session(
        &self,
        id: &str,
        idle_secs: i64,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Records that an access token expiring at `access_expires_at` was issued in the
    /// alive session `id` (keeps the later of the stored and the given expiry).
    async fn note_access_token(&self, id: &str, access_expires_at: i64, now: i64)
        -> Result<bool, StoreError>;

    /// Applies a rotation in one transaction (see [`Rotation`]): marks the presented token
    /// rotated (naming the child), inserts the child (generation + 1, same session and
    /// client, expiring with the session's absolute expiry), and touches the session. Of
    /// many concurrent rotations of one token exactly one gets `Rotated`.
    async fn rotate_refresh_token(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError>;

    /// The stored refresh token with this hash, whatever its state.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError>;

    /// Records the roles session `id` chose to activate (space-separated); `false` when
    /// there is no alive session `id`.
    async fn set_active_roles(&self, id: &str, active_roles: &str, now: i64) -> Result<bool, StoreError>;
}

pub(super) const SESSION_COLUMNS: &str =
    "id, subject, client_id, channel, user_agent, ip, scope, amr, roles, auth_time, \
     created_at, last_seen_at, idle_expires_at, absolute_expires_at, access_expires_at, revoked_at, \
     revoke_reason, sso_session_id, active_roles, dpop_jkt, idp";

const TOKEN_COLUMNS: &str =
    "token_hash, session_id, client_id, generation, issued_at, expires_at, rotated_at, successor_hash";

/// Why a session was revoked to make room under a [`SessionLimit`].
const LIMIT_REASON: &str = "session_limit";

pub(super) fn session_from_row(row: &AnyRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        client_id: row.try_get("client_id")?,
        channel: row.try_get("channel")?,
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
        scope: row.try_get("scope")?,
        amr: row.try_get("amr")?,
        roles: row.try_get("roles")?,
        auth_time: row.try_get("auth_time")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        idle_expires_at: row.try_get("idle_expires_at")?,
        absolute_expires_at: row.try_get("absolute_expires_at")?,
        access_expires_at: row.try_get("access_expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revoke_reason: row.try_get("revoke_reason")?,
        sso_session_id: row.try_get("sso_session_id")?,
        active_roles: row.try_get("active_roles")?,
        dpop_jkt: row.try_get("dpop_jkt")?,
        idp: row.try_get("idp")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        token_hash: row.try_get("token_hash")?,
        session_id: row.try_get("session_id")?,
        client_id: row.try_get("client_id")?,
        generation: row.try_get("generation")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        rotated_at: row.try_get("rotated_at")?,
        successor_hash: row.try_get("successor_hash")?,
    })
}

/// Sessions revoked in `rows`, oldest first (RETURNING has no order of its own).
fn revoked_sessions(rows: &[AnyRow]) -> Result<Vec<SessionRecord>, StoreError> {
    let mut sessions = rows.iter().map(session_from_row).collect::<Result<Vec<_>, _>>()?;
    sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(sessions)
}

/// Whose alive sessions [`revoke_alive_sessions`] ends.
pub(super) enum SessionsOf<'a> {
    Subject(&'a str),
    Client(&'a str),
}

/// Revokes every alive session of a subject or a client inside `tx` and puts their `sid`s
/// on the feed; returns them as revoked.
pub(super) async fn revoke_alive_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    of: SessionsOf<'_>,
    reason: &str,
    now: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    let (column, value) = match of {
        SessionsOf::Subject(subject) => ("subject", subject),
        SessionsOf::Client(client_id) => ("client_id", client_id),
    };
    let sql = format!(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE {column} = $1 AND {} \
         RETURNING {SESSION_COLUMNS}",
        alive("$2")
    );
    let rows = sqlx::query(&sql)
        .bind(value)
        .bind(now)
        .bind(reason)
        .fetch_all(&mut **tx)
        .await?;
    let revoked = revoked_sessions(&rows)?;
    announce_revoked(tx, &revoked, now).await?;
    Ok(revoked)
}

/// Puts each revoked session's `sid` on the feed while access tokens issued in it may live.
async fn announce_revoked(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    revoked: &[SessionRecord],
    now: i64,
) -> Result<(), StoreError> {
    for session in revoked.iter().filter(|s| s.access_expires_at > now) {
        insert_revocation(
            &mut **tx,
            RevokedKind::Session,
            &session.id,
            session.access_expires_at,
            now,
        )
        .await?;
    }
    Ok(())
}

async fn insert_session<'c, E>(executor: E, session: &SessionRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO sessions (id, subject, client_id, channel, user_agent, ip, scope, amr, roles, auth_time, \
         created_at, last_seen_at, idle_expires_at, absolute_expires_at, access_expires_at, revoked_at, \
         revoke_reason, sso_session_id, active_roles, dpop_jkt, idp) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    )
    .bind(&session.id)
    .bind(&session.subject)
    .bind(&session.client_id)
    .bind(&session.channel)
    .bind(&session.user_agent)
    .bind(&session.ip)
    .bind(&session.scope)
    .bind(&session.amr)
    .bind(&session.roles)
    .bind(session.auth_time)
    .bind(session.created_at)
    .bind(session.last_seen_at)
    .bind(session.idle_expires_at)
    .bind(session.absolute_expires_at)
    .bind(session.access_expires_at)
    .bind(session.revoked_at)
    .bind(&session.revoke_reason)
    .bind(&session.sso_session_id)
    .bind(&session.active_roles)
    .bind(&session.dpop_jkt)
    .bind(&session.idp)
    .execute(executor)
    .await?;
    Ok(())
}

async fn insert_token<'c, E>(executor: E, token: &RefreshRecord, session_id: &str) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, client_id, generation, issued_at, expires_at, \
         rotated_at, successor_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&token.token_hash)
    .bind(session_id)
    .bind(&token.client_id)
    .bind(token.generation)
    .bind(token.issued_at)
    .bind(token.expires_at)
    .bind(token.rotated_at)
    .bind(&token.successor_hash)
    .execute(executor)
    .await?;
    Ok(())
}

/// `min(a, b)` in SQL both backends read alike (SQLite has no LEAST, PostgreSQL no 2-arg MIN).
fn sql_min(a: &str, b: &str) -> String {
    format!("CASE WHEN {a} < {b} THEN {a} ELSE {b} END")
}

fn sql_max(a: &str, b: &str) -> String {
    format!("CASE WHEN {a} > {b} THEN {a} ELSE {b} END")
}

/// The condition "alive at `$now`" on the `sessions` row.
pub(super) fn alive(now: &str) -> String {
    format!("revoked_at IS NULL AND idle_expires_at > {now} AND absolute_expires_at > {now}")
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(
        &self,
        session: &SessionRecord,
        first_token: &RefreshRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let now = session.created_at;
        let mut tx = self.pool.begin().await?;
        let mut revoked = Vec::new();
        let cap = match limit {
            SessionLimit::Unlimited => None,
            SessionLimit::RevokeOldest(n) | SessionLimit::Reject(n) => Some(i64::from(n)),
        };
        if let Some(cap) = cap {
            // First statement, and a write: on PostgreSQL the row lock queues concurrent
            // creations for this subject and channel; on SQLite the transaction takes the
            // write lock up front instead of upgrading (and failing busy) after a read.
            sqlx::query(
                "INSERT INTO session_locks (subject, channel, touched_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (subject, channel) DO UPDATE SET touched_at = excluded.touched_at",
            )
            .bind(&session.subject)
            .bind(&session.channel)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let sql = format!(
                "SELECT COUNT(*) AS alive FROM sessions WHERE subject = $1 AND channel = $2 AND {}",
                alive("$3")
            );
            let count: i64 = sqlx::query(&sql)
                .bind(&session.subject)
                .bind(&session.channel)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .try_get("alive")?;
            if count >= cap {
                match limit {
                    SessionLimit::RevokeOldest(_) => {
                        let excess = count - cap + 1;
                        let sql = format!(
                            "UPDATE sessions SET revoked_at = $3, revoke_reason = $4 \
                             WHERE {alive} AND id IN ( \
                                 SELECT id FROM sessions WHERE subject = $1 AND channel = $2 AND {alive} \
                                 ORDER BY created_at, id LIMIT $5) \
                             RETURNING {SESSION_COLUMNS}",
                            alive = alive("$3"),
                        );
                        let rows = sqlx::query(&sql)
                            .bind(&session.subject)
                            .bind(&session.channel)
                            .bind(now)
                            .bind(LIMIT_REASON)
                            .bind(excess)
                            .fetch_all(&mut *tx)
                            .await?;
                        revoked = revoked_sessions(&rows)?;
                        announce_revoked(&mut tx, &revoked, now).await?;
                    }
                    _ => {
                        tx.rollback().await?;
                        return Ok(CreateOutcome::LimitReached);
                    }
                }
            }
        }
        insert_session(&mut *tx, session).await?;
        insert_token(&mut *tx, first_token, &session.id).await?;
        tx.commit().await?;
        Ok(CreateOutcome::Created { revoked })
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn alive_sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE subject = $1 AND {} \
             ORDER BY last_seen_at DESC, created_at DESC, id",
            alive("$2")
        );
        let rows = sqlx::query(&sql)
            .bind(subject)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn count_alive_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) AS n FROM sessions WHERE {}", alive("$1"));
        let n: i64 = sqlx::query(&sql)
            .bind(now)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        u64::try_from(n).map_err(|e| StoreError::Corrupt(format!("session count {n}: {e}")))
    }

    async fn alive_sessions_page(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        let rows = match after {
            None => {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE {} \
                     ORDER BY idle_expires_at DESC, id DESC LIMIT $2",
                    alive("$1")
                );
                sqlx::query(&sql)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some((idle, id)) => {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE {} \
                     AND (idle_expires_at < $2 OR (idle_expires_at = $2 AND id < $3)) \
                     ORDER BY idle_expires_at DESC, id DESC LIMIT $4",
                    alive("$1")
                );
                sqlx::query(&sql)
                    .bind(now)
                    .bind(idle)
                    .bind(id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(session_from_row).collect()
    }

    async fn count_alive_sessions_by_channel(&self, now: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = format!(
            "SELECT channel, COUNT(*) AS n FROM sessions WHERE {} GROUP BY channel ORDER BY channel",
            alive("$1")
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let channel: String = row.try_get("channel")?;
                let n: i64 = row.try_get("n")?;
                let n =
                    u64::try_from(n).map_err(|e| StoreError::Corrupt(format!("session count {n}: {e}")))?;
                Ok((channel, n))
            })
            .collect()
    }

    async fn revoke_session(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND {} \
             RETURNING {SESSION_COLUMNS}",
            alive("$2")
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(now)
            .bind(reason)
            .fetch_all(&mut *tx)
            .await?;
        let mut revoked = revoked_sessions(&rows)?;
        if revoked.is_empty() {
            tx.rollback().await?;
            return Ok(None);
        }
        announce_revoked(&mut tx, &revoked, now).await?;
        tx.commit().await?;
        Ok(revoked.pop())
    }

    async fn revoke_sessions_of(
        &self,
        subject: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revoked = revoke_alive_sessions(&mut tx, SessionsOf::Subject(subject), reason, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn extend_session(
        &self,
        id: &str,
        idle_secs: i64,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "UPDATE sessions SET last_seen_at = $2, idle_expires_at = {} WHERE id = $1 AND {} \
             RETURNING {SESSION_COLUMNS}",
            sql_min("absolute_expires_at", "$3"),
            alive("$2")
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(now)
            .bind(now.saturating_add(idle_secs))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn note_access_token(
        &self,
        id: &str,
        access_expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE sessions SET access_expires_at = {} WHERE id = $1 AND {}",
            sql_max("access_expires_at", "$3"),
            alive("$2")
        );
        let done = sqlx::query(&sql)
            .bind(id)
            .bind(now)
            .bind(access_expires_at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_refresh_token(&self, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        // First statement, and a write (see create_session). Of concurrent rotations of
        // one token, the first to update the row wins; on PostgreSQL the others wait for
        // its row lock, then find `rotated_at` set and match nothing.
        let parent = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $3, successor_hash = $4 \
             WHERE token_hash = $1 AND client_id = $2 AND rotated_at IS NULL AND expires_at > $3 \
             RETURNING session_id, generation",
        )
        .bind(&rotation.presented_hash)
        .bind(&rotation.client_id)
        .bind(rotation.now)
        .bind(&rotation.child_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(parent) = parent else {
            tx.rollback().await?;
            return Ok(RotateOutcome::NotRotated);
        };
        let session_id: String = parent.try_get("session_id")?;
        let generation: i64 = parent.try_get("generation")?;

        let sql = format!(
            "UPDATE sessions SET last_seen_at = $2, idle_expires_at = {idle}, access_expires_at = {access}, \
             ip = COALESCE($5, ip), user_agent = COALESCE($6, user_agent) \
             WHERE id = $1 AND {alive} RETURNING {SESSION_COLUMNS}",
            idle = sql_min("absolute_expires_at", "$3"),
            access = sql_max("access_expires_at", "$4"),
            alive = alive("$2"),
        );
        let session = sqlx::query(&sql)
            .bind(&session_id)
            .bind(rotation.now)
            .bind(rotation.now.saturating_add(rotation.idle_secs))
            .bind(rotation.access_expires_at)
            .bind(&rotation.ip)
            .bind(&rotation.user_agent)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(session) = session else {
            // The session ended: the presented token stays as it was.
            tx.rollback().await?;
            return Ok(RotateOutcome::NotRotated);
        };
        let session = session_from_row(&session)?;

        let child = RefreshRecord {
            token_hash: rotation.child_hash.clone(),
            session_id,
            client_id: rotation.client_id.clone(),
            generation: generation.saturating_add(1),
            issued_at: rotation.now,
            expires_at: session.absolute_expires_at,
            rotated_at: None,
            successor_hash: None,
        };
        insert_token(&mut *tx, &child, &child.session_id).await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated { session, child })
    }

    async fn set_active_roles(&self, id: &str, active_roles: &str, now: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE sessions SET active_roles = $2 WHERE id = $1 AND {}",
            alive("$3")
        );
        let done = sqlx::query(&sql)
            .bind(id)
            .bind(active_roles)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }
}
