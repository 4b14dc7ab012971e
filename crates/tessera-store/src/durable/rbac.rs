//! Roles, their permissions and parents, and separation-of-duty rules (R26). The graph is
//! read whole ([`RbacStore::rbac`]) and changed one row at a time, each change conditional
//! on the graph's version being the one the caller checked (optimistic concurrency over the
//! whole graph): a cycle or a conflict checked on a snapshot cannot be made by two changes
//! racing each other.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::SqlStore;
use crate::StoreError;

/// A role: what it grants and whom it inherits from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub name: String,
    pub description: String,
    /// Permission names (`orders:read`), sorted, distinct.
    pub permissions: Vec<String>,
    /// Roles whose permissions this one inherits, sorted, distinct.
    pub parents: Vec<String>,
    /// Conditions on some of `permissions`: a JSON object from permission name to the
    /// condition (read by the domain).
    pub conditions: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Roles no user may hold together (static), or activate in one session (dynamic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SodRecord {
    pub id: String,
    /// Two or more role names, sorted.
    pub roles: Vec<String>,
    /// Dynamic: the roles may be held together, not be active in one session.
    pub dynamic: bool,
    pub created_at: i64,
}

/// The whole graph as of `version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RbacSnapshot {
    pub version: i64,
    /// By name.
    pub roles: Vec<RoleRecord>,
    /// By id.
    pub sod: Vec<SodRecord>,
}

#[async_trait]
pub trait RbacStore: Send + Sync + 'static {
    /// The graph, read in one transaction.
    async fn rbac(&self) -> Result<RbacSnapshot, StoreError>;

    /// The graph's version alone (one small query): a snapshot of the same version is
    /// still the graph.
    async fn rbac_version(&self) -> Result<i64, StoreError>;

    /// Creates or replaces role `role.name` (`created_at` is kept when it exists), if the
    /// graph is still at `version`; `false` when it moved on (nothing changed).
    async fn put_role(&self, role: &RoleRecord, version: i64) -> Result<bool, StoreError>;

    /// Deletes role `name` if the graph is still at `version`; `false` when it moved on.
    async fn delete_role(&self, name: &str, version: i64) -> Result<bool, StoreError>;

    /// Adds a separation-of-duty rule if the graph is still at `version`.
    async fn put_sod(&self, rule: &SodRecord, version: i64) -> Result<bool, StoreError>;

    /// Deletes rule `id` if the graph is still at `version`.
    async fn delete_sod(&self, id: &str, version: i64) -> Result<bool, StoreError>;
}

fn list(row: &AnyRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Moves the graph from `version` to the next one inside `tx`; `false` (and the caller
/// rolls back) when another change came first.
async fn bump(tx: &mut Transaction<'_, Any>, version: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE rbac_version SET version = version + 1 WHERE id = 1 AND version = $1")
        .bind(version)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl RbacStore for SqlStore {
    async fn rbac(&self) -> Result<RbacSnapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query("SELECT version FROM rbac_version WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get("version")?;
        let roles = sqlx::query(
            "SELECT name, description, permissions, parents, conditions, created_at, updated_at \
             FROM roles ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok(RoleRecord {
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                permissions: list(row, "permissions")?,
                parents: list(row, "parents")?,
                conditions: {
                    let text: String = row.try_get("conditions")?;
                    serde_json::from_str(&text)
                        .map_err(|e| StoreError::Corrupt(format!("conditions: {e}")))?
                },
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let sod = sqlx::query("SELECT id, roles, dynamic, created_at FROM sod_rules ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                Ok(SodRecord {
                    id: row.try_get("id")?,
                    roles: list(row, "roles")?,
                    dynamic: row.try_get::<i64, _>("dynamic")? != 0,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(RbacSnapshot { version, roles, sod })
    }

    async fn rbac_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT version FROM rbac_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("version")?)
    }

    async fn put_role(&self, role: &RoleRecord, version: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !bump(&mut tx, version).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO roles (name, description, permissions, parents, conditions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
             permissions = excluded.permissions, parents = excluded.parents, \
             conditions = excluded.conditions, updated_at = excluded.updated_at",
        )
        .bind(&role.name)
        .bind(&role.description)
        .bind(json(&role.permissions)?)
        .bind(json(&role.parents)?)
        .bind(role.conditions.to_string())
        .bind(role.created_at)
        .bind(role.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_role(&self, name: &str, version: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !bump(&mut tx, version).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM roles WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn put_sod(&self, rule: &SodRecord, version: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !bump(&mut tx, version).await? {
            return Ok(false);
        }
        sqlx::query("INSERT INTO sod_rules (id, roles, dynamic, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&rule.id)
            .bind(json(&rule.roles)?)
            .bind(i64::from(rule.dynamic))
            .bind(rule.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_sod(&self, id: &str, version: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !bump(&mut tx, version).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM sod_rules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
