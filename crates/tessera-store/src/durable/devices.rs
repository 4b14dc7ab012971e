//! Known devices: where each user has signed in from (device hash and network prefix), so
//! that a sign-in from somewhere new can be told apart.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::StoreError;

/// One sighting of a user on a device from a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDeviceRecord {
    pub user_id: String,
    /// A hash of the device id (never the id itself).
    pub device_hash: String,
    /// The client's network prefix (`203.0.113.0/24`, `2001:db8:1:2::/64`) or `unknown`.
    pub network: String,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
}

#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// Every remembered sighting of `user_id`, newest first.
    async fn known_devices(&self, user_id: &str) -> Result<Vec<KnownDeviceRecord>, StoreError>;

    /// Remembers a sighting (a repeated one only moves `last_seen_at` forward), then keeps
    /// only the `keep` most recently seen rows of the user. Returns how many were dropped.
    async fn remember_device(&self, sighting: &KnownDeviceRecord, keep: usize) -> Result<u64, StoreError>;

    /// Deletes every sighting last seen before `seen_before` (the clean-up pass).
    async fn purge_known_devices(&self, seen_before: i64) -> Result<u64, StoreError>;
}

const COLUMNS: &str = "user_id, device_hash, network, first_seen_at, last_seen_at";

fn from_row(row: &AnyRow) -> Result<KnownDeviceRecord, StoreError> {
    Ok(KnownDeviceRecord {
        user_id: row.try_get("user_id")?,
        device_hash: row.try_get("device_hash")?,
        network: row.try_get("network")?,
        first_seen_at: row.try_get("first_seen_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
    })
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn known_devices(&self, user_id: &str) -> Result<Vec<KnownDeviceRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM known_devices WHERE user_id = $1 \
             ORDER BY last_seen_at DESC, device_hash, network"
        );
        let rows = sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    async fn remember_device(&self, sighting: &KnownDeviceRecord, keep: usize) -> Result<u64, StoreError> {
        sqlx::query(
            "INSERT INTO known_devices (user_id, device_hash, network, first_seen_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, device_hash, network) DO UPDATE \
             SET last_seen_at = CASE WHEN excluded.last_seen_at > known_devices.last_seen_at \
                 THEN excluded.last_seen_at ELSE known_devices.last_seen_at END",
        )
        .bind(&sighting.user_id)
        .bind(&sighting.device_hash)
        .bind(&sighting.network)
        .bind(sighting.first_seen_at)
        .bind(sighting.last_seen_at)
        .execute(&self.pool)
        .await?;
        // The same order as `known_devices`, so exactly the newest `keep` rows stay.
        let dropped = sqlx::query(
            "DELETE FROM known_devices WHERE user_id = $1 AND (device_hash, network) NOT IN ( \
                 SELECT device_hash, network FROM known_devices WHERE user_id = $1 \
                 ORDER BY last_seen_at DESC, device_hash, network LIMIT $2)",
        )
        .bind(&sighting.user_id)
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(dropped)
    }

    async fn purge_known_devices(&self, seen_before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM known_devices WHERE last_seen_at < $1")
            .bind(seen_before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
