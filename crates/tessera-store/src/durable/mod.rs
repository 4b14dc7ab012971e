//! The durable store: one SQL implementation, [`SqlStore`], over SQLite (the embedded
//! default) and PostgreSQL, behind one trait per aggregate ([`KeyStore`], …).
//!
//! Queries are written once: both backends accept `$N` placeholders, `RETURNING` and
//! `ON CONFLICT`, and sqlx's `Any` driver carries the values. Only the migrations differ
//! per backend (column types), and they live in `migrations/{sqlite,postgres}`.

mod api_keys;
mod audit;
mod clients;
mod cluster;
mod devices;
mod federation;
mod keys;
mod mfa;
mod migrations;
mod oidc;
mod rbac;
mod revocations;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use self::api_keys::{ApiKeyOwner, ApiKeyRecord, ApiKeyStore};
pub use self::audit::{AuditQuery, AuditRecord, AuditStore, Maintenance, Purged, MAX_AUDIT_BATCH};
pub use self::clients::{ClientRecord, ClientStore};
pub use self::cluster::{ClusterStore, OutboxRecord};
pub use self::devices::{DeviceStore, KnownDeviceRecord};
pub use self::federation::{FederatedIdentityRecord, FederationStore};
pub use self::keys::{KeyStore, StoredKey};
pub use self::mfa::{MfaFactorRecord, MfaStore};
pub use self::oidc::{AuthorizationCodeRecord, CodeRedemption, OidcStore, SsoSessionRecord};
pub use self::rbac::{RbacSnapshot, RbacStore, RoleRecord, SodRecord};
pub use self::revocations::{RevocationRecord, RevocationStore, RevokedKind};
pub use self::sessions::{
    CreateOutcome, RefreshRecord, RotateOutcome, Rotation, SessionLimit, SessionRecord, SessionStore,
};
pub use self::users::{OneTimeTokenRecord, UserRecord, UserStore};
use crate::StoreError;

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(
                "expected a sqlite:// or postgres:// URL".to_owned(),
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How to open the durable store.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection (or a new one) before failing.
    pub acquire_timeout: Duration,
}

impl ConnectSettings {
    pub fn new(url: impl Into<String>) -> Self {
        ConnectSettings {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQL implementation of every durable-store trait.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

impl SqlStore {
    /// Opens a pool on the database and checks that it answers. Does not migrate.
    pub async fn connect(settings: &ConnectSettings) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        crate::install_crypto_provider();
        let backend = Backend::of_url(&settings.url)?;
        let options = AnyConnectOptions::from_str(&settings.url)
            .map_err(|e| StoreError::UnsupportedUrl(e.to_string()))?
            .disable_statement_logging();
        // One direct connection first: it fails fast with the real cause ("connection
        // refused", "password authentication failed") where a pool would only time out.
        let mut conn = options.connect().await?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed beside the one writer. The mode is stored in the
            // file, so it is set once before the pool opens more connections.
            conn.execute("PRAGMA journal_mode = WAL").await?;
        }
        conn.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time anyway; a few readers beside it.
                Backend::Sqlite => settings.max_connections.min(8),
                Backend::Postgres => settings.max_connections,
            })
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(SqlStore { pool, backend })
    }

    /// Applies every pending migration of this backend. Safe to run from several nodes
    /// at once (sqlx takes a database lock on PostgreSQL; SQLite serialises writers).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::migrator(self.backend)
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Applies migrations up to and including `version` only. For migration tests that
    /// insert fixture rows between steps; production code uses [`SqlStore::migrate`].
    #[doc(hidden)]
    pub async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        let mut migrator = migrations::migrator(self.backend);
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// The migrations this build knows and whether each is applied, in order.
    pub async fn migration_status(&self) -> Result<Vec<(i64, String, bool)>, StoreError> {
        migrations::status(&self.pool, self.backend).await
    }

    /// A round trip to the database (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every pooled connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
