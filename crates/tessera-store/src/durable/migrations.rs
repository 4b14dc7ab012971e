//! Schema migrations, embedded in the binary: one ordered list per backend, the same
//! versions and descriptions in both (a test checks they stay in step).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use super::Backend;
use crate::StoreError;

/// (version, description, SQLite text, PostgreSQL text).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "signing keys",
        include_str!("../../migrations/sqlite/0001_signing_keys.sql"),
        include_str!("../../migrations/postgres/0001_signing_keys.sql"),
    ),
    (
        2,
        "sessions tokens clients",
        include_str!("../../migrations/sqlite/0002_sessions_tokens_clients.sql"),
        include_str!("../../migrations/postgres/0002_sessions_tokens_clients.sql"),
    ),
    (
        3,
        "users",
        include_str!("../../migrations/sqlite/0003_users.sql"),
        include_str!("../../migrations/postgres/0003_users.sql"),
    ),
    (
        4,
        "oidc",
        include_str!("../../migrations/sqlite/0004_oidc.sql"),
        include_str!("../../migrations/postgres/0004_oidc.sql"),
    ),
    (
        5,
        "cluster",
        include_str!("../../migrations/sqlite/0005_cluster.sql"),
        include_str!("../../migrations/postgres/0005_cluster.sql"),
    ),
    (
        6,
        "known devices",
        include_str!("../../migrations/sqlite/0006_known_devices.sql"),
        include_str!("../../migrations/postgres/0006_known_devices.sql"),
    ),
    (
        7,
        "mfa",
        include_str!("../../migrations/sqlite/0007_mfa.sql"),
        include_str!("../../migrations/postgres/0007_mfa.sql"),
    ),
    (
        8,
        "passkeys",
        include_str!("../../migrations/sqlite/0008_passkeys.sql"),
        include_str!("../../migrations/postgres/0008_passkeys.sql"),
    ),
    (
        9,
        "client mfa policy",
        include_str!("../../migrations/sqlite/0009_client_mfa_policy.sql"),
        include_str!("../../migrations/postgres/0009_client_mfa_policy.sql"),
    ),
    (
        10,
        "rbac",
        include_str!("../../migrations/sqlite/0010_rbac.sql"),
        include_str!("../../migrations/postgres/0010_rbac.sql"),
    ),
    (
        11,
        "role conditions",
        include_str!("../../migrations/sqlite/0011_role_conditions.sql"),
        include_str!("../../migrations/postgres/0011_role_conditions.sql"),
    ),
    (
        12,
        "assignment terms and dynamic separation of duty",
        include_str!("../../migrations/sqlite/0012_assignments_dsd.sql"),
        include_str!("../../migrations/postgres/0012_assignments_dsd.sql"),
    ),
    (
        13,
        "api keys",
        include_str!("../../migrations/sqlite/0013_api_keys.sql"),
        include_str!("../../migrations/postgres/0013_api_keys.sql"),
    ),
    (
        14,
        "client require pushed authorization requests",
        include_str!("../../migrations/sqlite/0014_client_require_par.sql"),
        include_str!("../../migrations/postgres/0014_client_require_par.sql"),
    ),
    (
        15,
        "federation",
        include_str!("../../migrations/sqlite/0015_federation.sql"),
        include_str!("../../migrations/postgres/0015_federation.sql"),
    ),
    (
        16,
        "user profiles and claims requests",
        include_str!("../../migrations/sqlite/0016_user_profiles.sql"),
        include_str!("../../migrations/postgres/0016_user_profiles.sql"),
    ),
    (
        17,
        "client jwt authentication and request objects",
        include_str!("../../migrations/sqlite/0017_client_jwt_auth.sql"),
        include_str!("../../migrations/postgres/0017_client_jwt_auth.sql"),
    ),
    (
        18,
        "dpop bindings",
        include_str!("../../migrations/sqlite/0018_dpop_bindings.sql"),
        include_str!("../../migrations/postgres/0018_dpop_bindings.sql"),
    ),
];

pub(super) fn migrator(backend: Backend) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = match backend {
                Backend::Sqlite => sqlite,
                Backend::Postgres => postgres,
            };
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

pub(super) async fn status(pool: &AnyPool, backend: Backend) -> Result<Vec<(i64, String, bool)>, StoreError> {
    let applied: Vec<i64> = match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
    {
        Ok(rows) => rows
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?,
        // No migration table yet: nothing applied.
        Err(sqlx::Error::Database(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    Ok(migrator(backend)
        .iter()
        .map(|m| (m.version, m.description.to_string(), applied.contains(&m.version)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_both_backends_have_text() {
        let mut last = 0;
        for &(version, description, sqlite, postgres) in MIGRATIONS {
            assert!(version > last, "migration {version} is out of order");
            assert!(!description.is_empty());
            assert!(sqlite.contains("CREATE") || sqlite.contains("ALTER"));
            assert!(postgres.contains("CREATE") || postgres.contains("ALTER"));
            assert!(
                !postgres.contains("BLOB"),
                "BLOB is SQLite's; PostgreSQL wants BYTEA"
            );
            last = version;
        }
    }
}
