//! What the OAuth/OIDC flows keep between requests: the browser's SSO session at the
//! provider, authorization codes, and remembered consent.
//!
//! An SSO session is the user's login at the provider (one per browser, behind a cookie
//! whose secret is stored only as a hash). Each client that gets tokens through it has a
//! token session of its own (`SessionRecord`, linked by `sso_session_id`); ending the SSO
//! session ends them all.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::sessions::{alive as session_alive, session_from_row, SESSION_COLUMNS};
use super::{SessionRecord, SqlStore};
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSessionRecord {
    /// Public id: the `sid` of ID tokens and logout tokens.
    pub id: String,
    /// SHA-256 of the cookie secret, base64url.
    pub secret_hash: String,
    pub user_id: String,
    pub auth_time: i64,
    /// Space-separated RFC 8176 methods.
    pub amr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The upstream provider the sign-in went through (the `idp` claim); `None` for a
    /// sign-in at Tessera itself.
    pub idp: Option<String>,
}

impl SsoSessionRecord {
    pub fn is_alive(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// SHA-256 of the code, base64url.
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub sso_session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// `S256` when a challenge is present.
    pub code_challenge_method: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The token session created when the code was redeemed (revoked if it is replayed).
    pub token_session_id: Option<String>,
    /// The request's `claims` parameter (OIDC Core §5.5) as JSON, for the ID token.
    pub claims: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to (`dpop_jkt` of the
    /// authorization request); the token request must prove possession of that key.
    pub dpop_jkt: Option<String>,
}

/// The result of presenting an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use, unexpired: marked used and returned.
    Redeemed(AuthorizationCodeRecord),
    /// Used before: RFC 6749 §4.1.2 says revoke what it issued. The record (with its
    /// `token_session_id`) is returned for that.
    Replayed(AuthorizationCodeRecord),
    /// Unknown or expired.
    Invalid,
}

#[async_trait]
pub trait OidcStore: Send + Sync + 'static {
    /// Stores a new SSO session; `StoreError::Conflict` if the id or secret hash is taken.
    /// The user must exist (else a foreign-key failure, not a conflict).
    async fn create_sso_session(&self, session: &SsoSessionRecord) -> Result<(), StoreError>;

    /// The alive SSO session whose cookie secret hashes to `secret_hash` (`None` once it is
    /// revoked or `now >= expires_at`).
    async fn sso_session_by_secret(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<SsoSessionRecord>, StoreError>;

    /// The SSO session with this id, whatever its state.
    async fn sso_session(&self, id: &str) -> Result<Option<SsoSessionRecord>, StoreError>;

    /// Sets `last_seen_at` of an alive SSO session. Returns whether it was alive.
    async fn touch_sso_session(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// Revokes an alive SSO session; returns it as revoked, or `None` if it was not alive
    /// (nothing changed). Token sessions are not touched: the caller ends those
    /// ([`OidcStore::sessions_of_sso`], then `SessionStore::revoke_session`) so that they
    /// reach the revocation feed.
    async fn revoke_sso_session(&self, id: &str, now: i64) -> Result<Option<SsoSessionRecord>, StoreError>;

    /// Revokes every alive SSO session of a user (logout everywhere, password reset); returns
    /// those revoked, oldest first. Token sessions as for [`OidcStore::revoke_sso_session`].
    async fn revoke_sso_sessions_of(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SsoSessionRecord>, StoreError>;

    /// The alive token sessions created through this SSO session (alive as
    /// `SessionRecord::is_alive`), oldest first. Whatever the SSO session's own state.
    async fn sessions_of_sso(&self, sso_session_id: &str, now: i64)
        -> Result<Vec<SessionRecord>, StoreError>;

    /// Stores a new code; `StoreError::Conflict` if the hash is taken. The user must exist.
    async fn create_authorization_code(&self, code: &AuthorizationCodeRecord) -> Result<(), StoreError>;

    /// Redeems a code atomically: of concurrent redemptions exactly one gets `Redeemed`.
    /// Unused and unexpired (`now < expires_at`): marked used at `now` and `Redeemed`. Used
    /// before: `Replayed`, even once expired (what it issued must still be revoked), until
    /// the code is purged a day after its expiry. Otherwise `Invalid`.
    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<CodeRedemption, StoreError>;

    /// Records the token session created from a redeemed code. Write-once: does nothing if
    /// the code is unknown, unredeemed, or already has a token session.
    async fn attach_token_session(&self, code_hash: &str, token_session_id: &str) -> Result<(), StoreError>;

    /// The scope a user has consented to for a client (space-separated), if any.
    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError>;

    /// Remembers consent (replacing the previous scope and time).
    async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Forgets a user's consent for a client. Returns whether there was one.
    async fn revoke_consent(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError>;
}

const SSO_COLUMNS: &str =
    "id, secret_hash, user_id, auth_time, amr, created_at, last_seen_at, expires_at, revoked_at, idp";

const CODE_COLUMNS: &str = "code_hash, client_id, user_id, sso_session_id, redirect_uri, scope, nonce, \
     code_challenge, code_challenge_method, auth_time, amr, created_at, expires_at, used_at, token_session_id, \
     claims, dpop_jkt";

/// The condition "alive at `$now`" on the `sso_sessions` row.
fn sso_alive(now: &str) -> String {
    format!("revoked_at IS NULL AND expires_at > {now}")
}

fn sso_from_row(row: &AnyRow) -> Result<SsoSessionRecord, StoreError> {
    Ok(SsoSessionRecord {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        user_id: row.try_get("user_id")?,
        auth_time: row.try_get("auth_time")?,
        amr: row.try_get("amr")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        idp: row.try_get("idp")?,
    })
}

fn code_from_row(row: &AnyRow) -> Result<AuthorizationCodeRecord, StoreError> {
    Ok(AuthorizationCodeRecord {
        code_hash: row.try_get("code_hash")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        sso_session_id: row.try_get("sso_session_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        code_challenge: row.try_get("code_challenge")?,
        code_challenge_method: row.try_get("code_challenge_method")?,
        auth_time: row.try_get("auth_time")?,
        amr: row.try_get("amr")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        token_session_id: row.try_get("token_session_id")?,
        claims: row.try_get("claims")?,
        dpop_jkt: row.try_get("dpop_jkt")?,
    })
}

/// SSO sessions in `rows`, oldest first (RETURNING has no order of its own).
fn sso_sessions_oldest_first(rows: &[AnyRow]) -> Result<Vec<SsoSessionRecord>, StoreError> {
    let mut sessions = rows.iter().map(sso_from_row).collect::<Result<Vec<_>, _>>()?;
    sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(sessions)
}

#[async_trait]
impl OidcStore for SqlStore {
    async fn create_sso_session(&self, session: &SsoSessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_sessions (id, secret_hash, user_id, auth_time, amr, created_at, last_seen_at, \
             expires_at, revoked_at, idp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&session.id)
        .bind(&session.secret_hash)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(&session.amr)
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .bind(session.revoked_at)
        .bind(&session.idp)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sso_session_by_secret(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<SsoSessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SSO_COLUMNS} FROM sso_sessions WHERE secret_hash = $1 AND {}",
            sso_alive("$2")
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(sso_from_row).transpose()
    }

    async fn sso_session(&self, id: &str) -> Result<Option<SsoSessionRecord>, StoreError> {
        let sql = format!("SELECT {SSO_COLUMNS} FROM sso_sessions WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(sso_from_row).transpose()
    }

    async fn touch_sso_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE sso_sessions SET last_seen_at = $2 WHERE id = $1 AND {}",
            sso_alive("$2")
        );
        let done = sqlx::query(&sql).bind(id).bind(now).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_sso_session(&self, id: &str, now: i64) -> Result<Option<SsoSessionRecord>, StoreError> {
        // One statement: of concurrent revocations only the first finds it alive.
        let sql = format!(
            "UPDATE sso_sessions SET revoked_at = $2 WHERE id = $1 AND {} RETURNING {SSO_COLUMNS}",
            sso_alive("$2")
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(sso_from_row).transpose()
    }

    async fn revoke_sso_sessions_of(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SsoSessionRecord>, StoreError> {
        let sql = format!(
            "UPDATE sso_sessions SET revoked_at = $2 WHERE user_id = $1 AND {} RETURNING {SSO_COLUMNS}",
            sso_alive("$2")
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        sso_sessions_oldest_first(&rows)
    }

    async fn sessions_of_sso(
        &self,
        sso_session_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE sso_session_id = $1 AND {} \
             ORDER BY created_at, id",
            session_alive("$2")
        );
        let rows = sqlx::query(&sql)
            .bind(sso_session_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn create_authorization_code(&self, code: &AuthorizationCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, user_id, sso_session_id, redirect_uri, \
             scope, nonce, code_challenge, code_challenge_method, auth_time, amr, created_at, expires_at, \
             used_at, token_session_id, claims, dpop_jkt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.sso_session_id)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(&code.nonce)
        .bind(&code.code_challenge)
        .bind(&code.code_challenge_method)
        .bind(code.auth_time)
        .bind(&code.amr)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(code.used_at)
        .bind(&code.token_session_id)
        .bind(&code.claims)
        .bind(&code.dpop_jkt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<CodeRedemption, StoreError> {
        let mut tx = self.pool.begin().await?;
        // First statement, and a write: on SQLite the transaction takes the write lock now
        // (the look-up below cannot fail busy upgrading a read lock); on PostgreSQL
        // concurrent redemptions queue on the row lock, and each one after the first
        // re-checks the row, finds `used_at` set and matches nothing.
        let sql = format!(
            "UPDATE authorization_codes SET used_at = $2 \
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING {CODE_COLUMNS}"
        );
        let redeemed = sqlx::query(&sql)
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = redeemed {
            let code = code_from_row(&row)?;
            tx.commit().await?;
            return Ok(CodeRedemption::Redeemed(code));
        }
        // Not redeemable: a replay (used before, expired or not) or nothing valid. READ
        // COMMITTED takes a fresh snapshot here, so the winner's commit is seen.
        let sql = format!("SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1");
        let row = sqlx::query(&sql).bind(code_hash).fetch_optional(&mut *tx).await?;
        tx.rollback().await?;
        match row.as_ref().map(code_from_row).transpose()? {
            Some(code) if code.used_at.is_some() => Ok(CodeRedemption::Replayed(code)),
            _ => Ok(CodeRedemption::Invalid),
        }
    }

    async fn attach_token_session(&self, code_hash: &str, token_session_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE authorization_codes SET token_session_id = $2 \
             WHERE code_hash = $1 AND used_at IS NOT NULL AND token_session_id IS NULL",
        )
        .bind(code_hash)
        .bind(token_session_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| row.try_get("scope").map_err(StoreError::from))
            .transpose()
    }

    async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_consent(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
