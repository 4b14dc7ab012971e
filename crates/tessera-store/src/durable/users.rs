//! Accounts: users, their password history, and single-use tokens (e-mail verification,
//! password reset).

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::StoreError;

/// A user. `email` is stored normalised (trimmed, NFC, lower-case) and unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The stable subject id (`sub`), random; never the e-mail.
    pub id: String,
    pub email: String,
    pub email_verified_at: Option<i64>,
    /// A PHC string (or a bcrypt hash of an imported user); `None` for a user without a
    /// password (federated or passkey-only, later).
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
    /// Terms of some of `roles` (their expiry and condition, read by the domain), by role;
    /// a role without an entry is assigned without terms.
    pub role_terms: BTreeMap<String, serde_json::Value>,
    /// Preferred language tag for e-mails and pages (`en`, `ko`).
    pub locale: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub password_changed_at: Option<i64>,
}

/// A single-use token as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeTokenRecord {
    /// SHA-256 of the token, base64url.
    pub token_hash: String,
    /// `verify_email` or `reset_password`.
    pub purpose: String,
    pub user_id: String,
    /// The e-mail address the token was sent to (a verification is for that address only).
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The session the token may end (`end_session` links: `session:<id>` or `sso:<id>`);
    /// `None` for the other purposes.
    pub session_id: Option<String>,
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Stores a new user; `StoreError::Conflict` if the e-mail (or id) is taken.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// By normalised e-mail.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Sets a new password hash (a change or a reset): the current hash, if any, moves to the
    /// history, of which only the newest `keep_history` entries are kept. One transaction;
    /// `password_changed_at` and `updated_at` become `now`. Returns whether the user exists
    /// (`false`: nothing changed).
    async fn set_password(
        &self,
        id: &str,
        new_hash: &str,
        now: i64,
        keep_history: usize,
    ) -> Result<bool, StoreError>;

    /// Replaces the hash only if it is still `expected` (upgrading a hash at login must not
    /// undo a password change that happened meanwhile). Not a password change: no history,
    /// `password_changed_at` unchanged (`updated_at` becomes `now`). Returns whether it replaced.
    async fn upgrade_password_hash(
        &self,
        id: &str,
        expected: &str,
        new_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The user's previous password hashes, newest first, at most `limit`.
    async fn password_history(&self, id: &str, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Marks the e-mail verified, if it is still `email` (an address changed since the link
    /// was sent stays unverified). Returns whether it changed anything: `false` for an unknown
    /// user, another address, or an address already verified (its first time is kept).
    async fn mark_email_verified(&self, id: &str, email: &str, now: i64) -> Result<bool, StoreError>;

    /// Changes the user's address from `from` to `to`, verified as of `now` (the caller has
    /// proved the new address), if it is still `from`. Returns whether it changed;
    /// `StoreError::Conflict` when another user has `to`.
    async fn change_email(&self, id: &str, from: &str, to: &str, now: i64) -> Result<bool, StoreError>;

    /// Disables (`Some(now)`) or enables (`None`) the user. Returns whether the user exists.
    async fn set_disabled(&self, id: &str, disabled_at: Option<i64>, now: i64) -> Result<bool, StoreError>;

    /// Replaces the user's roles and their terms if they are still `from` (as the caller
    /// read them: a compare-and-set, so two concurrent grants cannot lose one). Returns
    /// whether it did; `false` when the user is gone or their roles changed meanwhile.
    async fn set_roles(
        &self,
        id: &str,
        from: (&[String], &BTreeMap<String, serde_json::Value>),
        roles: &[String],
        terms: &BTreeMap<String, serde_json::Value>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The user's profile claims (OIDC Core §5.1: name, address, phone number, …) as the
    /// domain validated them: a JSON object, empty for a user without one (or no user).
    async fn profile(&self, id: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError>;

    /// Changes the profile atomically: `merge` is handed the profile as stored now and
    /// returns the new one, which replaces it in the same transaction (two concurrent edits
    /// cannot lose one). `locale` (when `Some`) replaces the user's locale; `updated_at`
    /// becomes `now`. Returns the new profile, or `None` for an unknown user (nothing
    /// changed).
    async fn update_profile(
        &self,
        id: &str,
        locale: Option<Option<&str>>,
        now: i64,
        merge: &(dyn Fn(serde_json::Map<String, serde_json::Value>) -> serde_json::Map<String, serde_json::Value>
              + Send
              + Sync),
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError>;

    /// Deletes the user with their password history and single-use tokens. Sessions are
    /// ended by the caller first (so they reach the revocation feed).
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;

    /// How many users exist (for metrics and the import report).
    async fn count_users(&self) -> Result<u64, StoreError>;

    /// One page of users in id order: those with an id after `after_id` (the last id of the
    /// previous page), only the one with normalised e-mail `email` when given, at most
    /// `limit` (0 is taken as 1).
    async fn list_users(
        &self,
        email: Option<&str>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// Stores a single-use token; `StoreError::Conflict` if the hash is taken. The user must
    /// exist (a token for an unknown user is a foreign-key failure, not a conflict).
    async fn create_one_time_token(&self, token: &OneTimeTokenRecord) -> Result<(), StoreError>;

    /// Uses a token, atomically: it must exist with this purpose, be unused and unexpired at
    /// `now`; it is marked used and returned. Of concurrent consumers exactly one gets it.
    async fn consume_one_time_token(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<OneTimeTokenRecord>, StoreError>;

    /// Marks every unused token of `user_id` for `purpose` used (a newer one was sent, or the
    /// password changed). Returns how many.
    async fn invalidate_one_time_tokens(
        &self,
        user_id: &str,
        purpose: &str,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// The token, if it could be consumed now (same conditions as
    /// [`UserStore::consume_one_time_token`]), without using it: lets a caller validate the
    /// rest of a request before spending a single-use link. Only the later consume decides.
    async fn peek_one_time_token(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<OneTimeTokenRecord>, StoreError>;
}

const USER_COLUMNS: &str = "id, email, email_verified_at, password_hash, roles, role_terms, locale, \
     disabled_at, created_at, updated_at, password_changed_at";

const TOKEN_COLUMNS: &str =
    "token_hash, purpose, user_id, email, created_at, expires_at, used_at, session_id";

fn roles_json(roles: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(roles).map_err(|e| StoreError::Corrupt(format!("user roles: {e}")))
}

fn terms_json(terms: &BTreeMap<String, serde_json::Value>) -> Result<String, StoreError> {
    serde_json::to_string(terms).map_err(|e| StoreError::Corrupt(format!("user role terms: {e}")))
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let roles: String = row.try_get("roles")?;
    let terms: String = row.try_get("role_terms")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        email_verified_at: row.try_get("email_verified_at")?,
        password_hash: row.try_get("password_hash")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(format!("users.roles: {e}")))?,
        role_terms: serde_json::from_str(&terms)
            .map_err(|e| StoreError::Corrupt(format!("users.role_terms: {e}")))?,
        locale: row.try_get("locale")?,
        disabled_at: row.try_get("disabled_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<OneTimeTokenRecord, StoreError> {
    Ok(OneTimeTokenRecord {
        token_hash: row.try_get("token_hash")?,
        purpose: row.try_get("purpose")?,
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        session_id: row.try_get("session_id")?,
    })
}

fn profile_from_text(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("user_profiles.claims: {e}")))
}

/// A count or limit as SQL wants it (anything beyond `i64::MAX` is as good as unlimited).
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The `INSERT` of a new user row (also run inside the federation store's transaction).
pub(super) fn insert_user(
    user: &UserRecord,
) -> Result<sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>>, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO users (id, email, email_verified_at, password_hash, roles, role_terms, locale, \
         disabled_at, created_at, updated_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(user.email_verified_at)
    .bind(&user.password_hash)
    .bind(roles_json(&user.roles)?)
    .bind(terms_json(&user.role_terms)?)
    .bind(&user.locale)
    .bind(user.disabled_at)
    .bind(user.created_at)
    .bind(user.updated_at)
    .bind(user.password_changed_at))
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        insert_user(user)?.execute(&self.pool).await?;
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(&sql).bind(email).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn set_password(
        &self,
        id: &str,
        new_hash: &str,
        now: i64,
        keep_history: usize,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // First statement, and a write: on SQLite the transaction takes the write lock now
        // rather than failing to upgrade a read lock later; on PostgreSQL it locks the user's
        // row, so a concurrent change waits here and then (READ COMMITTED: a fresh snapshot
        // per statement) moves *this* change's hash to the history instead of losing it.
        let found = sqlx::query("UPDATE users SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if found == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO password_history (user_id, hash, created_at) \
             SELECT id, password_hash, $2 FROM users WHERE id = $1 AND password_hash IS NOT NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1")
            .bind(id)
            .bind(new_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM password_history WHERE user_id = $1 AND id NOT IN ( \
                 SELECT id FROM password_history WHERE user_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(id)
        .bind(sql_count(keep_history))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upgrade_password_hash(
        &self,
        id: &str,
        expected: &str,
        new_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2",
        )
        .bind(id)
        .bind(expected)
        .bind(new_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn password_history(&self, id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT hash FROM password_history WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(id)
        .bind(sql_count(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get("hash").map_err(StoreError::from))
            .collect()
    }

    async fn mark_email_verified(&self, id: &str, email: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET email_verified_at = $3, updated_at = $3 \
             WHERE id = $1 AND email = $2 AND email_verified_at IS NULL",
        )
        .bind(id)
        .bind(email)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn change_email(&self, id: &str, from: &str, to: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET email = $3, email_verified_at = $4, updated_at = $4 \
             WHERE id = $1 AND email = $2",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_disabled(&self, id: &str, disabled_at: Option<i64>, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET disabled_at = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(disabled_at)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_roles(
        &self,
        id: &str,
        from: (&[String], &BTreeMap<String, serde_json::Value>),
        roles: &[String],
        terms: &BTreeMap<String, serde_json::Value>,
        now: i64,
    ) -> Result<bool, StoreError> {
        // The columns hold what roles_json/terms_json wrote (sorted maps): equal values are
        // equal texts.
        let done = sqlx::query(
            "UPDATE users SET roles = $2, role_terms = $3, updated_at = $4 \
             WHERE id = $1 AND roles = $5 AND role_terms = $6",
        )
        .bind(id)
        .bind(roles_json(roles)?)
        .bind(terms_json(terms)?)
        .bind(now)
        .bind(roles_json(from.0)?)
        .bind(terms_json(from.1)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn profile(&self, id: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let row = sqlx::query("SELECT claims FROM user_profiles WHERE user_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(serde_json::Map::new()),
            Some(row) => profile_from_text(&row.try_get::<String, _>("claims")?),
        }
    }

    async fn update_profile(
        &self,
        id: &str,
        locale: Option<Option<&str>>,
        now: i64,
        merge: &(dyn Fn(serde_json::Map<String, serde_json::Value>) -> serde_json::Map<String, serde_json::Value>
              + Send
              + Sync),
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A write first, as in set_password: it takes SQLite's write lock and PostgreSQL's
        // row lock, so a concurrent edit waits and then merges into this one's result.
        let found = match locale {
            Some(locale) => sqlx::query("UPDATE users SET updated_at = $2, locale = $3 WHERE id = $1")
                .bind(id)
                .bind(now)
                .bind(locale)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            None => sqlx::query("UPDATE users SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
        };
        if found == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let current = match sqlx::query("SELECT claims FROM user_profiles WHERE user_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            None => serde_json::Map::new(),
            Some(row) => profile_from_text(&row.try_get::<String, _>("claims")?)?,
        };
        let profile = merge(current);
        let text =
            serde_json::to_string(&profile).map_err(|e| StoreError::Corrupt(format!("user profile: {e}")))?;
        sqlx::query(
            "INSERT INTO user_profiles (user_id, claims) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET claims = excluded.claims",
        )
        .bind(id)
        .bind(text)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(profile))
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        // password_history and one_time_tokens go with the row (ON DELETE CASCADE; sqlx
        // turns SQLite's foreign keys on for every connection).
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        u64::try_from(n).map_err(|e| StoreError::Corrupt(format!("user count {n}: {e}")))
    }

    async fn list_users(
        &self,
        email: Option<&str>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        // Only the filters given become conditions (values always bound), as for the audit
        // trail: no `($1 IS NULL OR …)`, which PostgreSQL cannot type and plans poorly.
        let filters = [("email = ", email), ("id > ", after_id)];
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
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users {where_clause} ORDER BY id LIMIT ${}",
            values.len() + 1
        );
        let mut statement = sqlx::query(&sql);
        for value in values {
            statement = statement.bind(value);
        }
        let rows = statement
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn create_one_time_token(&self, token: &OneTimeTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO one_time_tokens (token_hash, purpose, user_id, email, created_at, expires_at, used_at, \
             session_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.token_hash)
        .bind(&token.purpose)
        .bind(&token.user_id)
        .bind(&token.email)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.used_at)
        .bind(&token.session_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn peek_one_time_token(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<OneTimeTokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(purpose)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn consume_one_time_token(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<OneTimeTokenRecord>, StoreError> {
        // One statement: of concurrent consumers the first to update the row wins; on
        // PostgreSQL the others wait for its row lock, then find `used_at` set.
        let sql = format!(
            "UPDATE one_time_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING {TOKEN_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(purpose)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn invalidate_one_time_tokens(
        &self,
        user_id: &str,
        purpose: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(purpose)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
