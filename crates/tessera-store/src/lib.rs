//! Storage for Tessera, behind traits so the identity provider never sees SQL or Redis:
//!
//! - the **durable store** ([`durable`]): signing keys, and later users, clients,
//!   sessions and refresh-token families — on SQLite (the embedded default) or PostgreSQL;
//! - the **ephemeral store** ([`ephemeral`]): counters, set-if-absent keys, deny-list
//!   entries and pub/sub — in-process or on Redis.

pub mod durable;
pub mod ephemeral;
pub mod tls;

pub use tls::install_crypto_provider;

/// A storage failure. The message is for logs; it never reaches an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database or Redis could not be reached or answered with an error.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint was violated (the caller decides what that means).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value the database cannot hold — PostgreSQL refuses a NUL character in text
    /// (SQLSTATE 22021). It came from the request: the request is malformed, the store is
    /// fine, and nothing was written.
    #[error("value cannot be stored: {0}")]
    InvalidInput(String),
    /// Stored data could not be decoded (a bug or a corrupted row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The configuration names a backend this build cannot use.
    #[error("unsupported storage url: {0}")]
    UnsupportedUrl(String),
    /// Applying schema migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
}

/// Counts a failure of a backing store in `tessera_store_errors_total{store}` (`database` or
/// `redis`): every database and Redis error passes through the conversions below. A
/// uniqueness conflict is an answer, not a failure, and is not counted. Without an
/// installed metrics recorder this does nothing.
pub(crate) fn count_error(store: &'static str) {
    metrics::counter!("tessera_store_errors_total", "store" => store).increment(1);
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            // character_not_in_repertoire, untranslatable_character: NUL or an invalid
            // sequence in a text value.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
                StoreError::InvalidInput(db.message().to_owned())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                count_error("database");
                StoreError::Corrupt(err.to_string())
            }
            _ => {
                count_error("database");
                StoreError::Unavailable(err.to_string())
            }
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        count_error("redis");
        StoreError::Unavailable(err.to_string())
    }
}
