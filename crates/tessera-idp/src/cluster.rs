//! This node among the others on one database: its heartbeat (so every node knows how many
//! are alive) and leases, so that each background job runs on exactly one node at a time
//! and moves to another node when its holder dies.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_store::durable::ClusterStore;
use tessera_store::StoreError;

use crate::clock::Clock;
use crate::tokens::opaque::random_id;

/// Seconds between heartbeats.
pub const HEARTBEAT_SECS: u64 = 5;
/// A node not heard from for this long is not counted as alive. Generous on purpose: the
/// count divides login limits while Redis is down, so counting a node that just died is
/// the safe error (stricter for a minute), and missing a live one whose heartbeat was late
/// under load is the unsafe one (looser).
const ALIVE_WITHIN_SECS: i64 = 60;
/// Seconds a lease lasts without renewal: how long a job waits before another node takes
/// it over from a node that died.
pub const LEASE_SECS: i64 = 30;
/// Seconds between lease renewals (and between checks of whether a job is due).
const LEASE_TICK_SECS: u64 = 10;

/// This node's identity in the cluster and what it knows of the others.
pub struct Cluster {
    node_id: String,
    started_at: i64,
    store: Arc<dyn ClusterStore>,
    clock: Arc<dyn Clock>,
    live_nodes: AtomicU32,
    /// When [`Cluster::live_nodes`] was last read from the database.
    counted_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Cluster {
    pub fn new(store: Arc<dyn ClusterStore>, clock: Arc<dyn Clock>) -> Self {
        Cluster {
            node_id: random_id(),
            started_at: clock.now(),
            store,
            clock,
            live_nodes: AtomicU32::new(1),
            counted_at: std::sync::Mutex::new(None),
        }
    }

    /// This node's random id (new at every start).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// How many nodes (this one included) sent a heartbeat recently, as of the last
    /// heartbeat; at least 1.
    pub fn live_nodes(&self) -> u32 {
        self.live_nodes.load(Ordering::Relaxed).max(1)
    }

    /// Sends one heartbeat and updates [`Cluster::live_nodes`]. On a database error the
    /// last known count stays.
    pub async fn heartbeat(&self) -> Result<u32, StoreError> {
        let now = self.clock.now();
        let n = self
            .store
            .heartbeat(&self.node_id, self.started_at, now, now - ALIVE_WITHIN_SECS)
            .await?;
        self.live_nodes.store(n.max(1), Ordering::Relaxed);
        *self.counted_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
        Ok(n)
    }

    /// [`Cluster::live_nodes`], counted again (with a heartbeat) if the last count is older
    /// than `max_age`: for decisions that must not use a count from before nodes joined.
    /// On a database error the last known count is used.
    pub async fn live_nodes_fresh(&self, max_age: Duration) -> u32 {
        let stale = self
            .counted_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|at| at.elapsed() >= max_age);
        if stale {
            if let Err(err) = self.heartbeat().await {
                tracing::debug!(error = %err, "cannot count the live nodes; using the last count");
            }
        }
        self.live_nodes()
    }

    /// Leaves the cluster (shutdown): the node stops counting and its leases are free.
    pub async fn leave(&self, leases: &[&str]) {
        for name in leases {
            let _ = self.store.release_lease(name, &self.node_id).await;
        }
        let _ = self.store.leave(&self.node_id).await;
    }

    /// Takes or renews the lease `name`; whether this node holds it now.
    pub async fn hold(&self, name: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        self.store
            .acquire_lease(name, &self.node_id, now, now + LEASE_SECS)
            .await
    }
}

/// Sends heartbeats forever.
pub async fn heartbeat_periodically(cluster: Arc<Cluster>) {
    let mut interval = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = cluster.heartbeat().await {
            tracing::debug!(error = %err, "heartbeat failed; the last known cluster size stays");
        }
    }
}

/// Runs `job` every `every` on whichever node holds the lease `name`: each node renews or
/// tries to take the lease every few seconds and runs the job only while it holds it. A
/// node that takes a lease over runs the job at once.
pub async fn run_leased<F, Fut>(cluster: Arc<Cluster>, name: &'static str, every: Duration, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let tick = every.min(Duration::from_secs(LEASE_TICK_SECS));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_run: Option<tokio::time::Instant> = None;
    loop {
        interval.tick().await;
        match cluster.hold(name).await {
            Ok(true) => {
                let now = tokio::time::Instant::now();
                if next_run.is_none_or(|at| now >= at) {
                    if next_run.is_none() {
                        tracing::info!(
                            job = name,
                            node = cluster.node_id(),
                            "holding the lease of a background job"
                        );
                    }
                    job().await;
                    next_run = Some(tokio::time::Instant::now() + every);
                }
            }
            Ok(false) => {
                if next_run.take().is_some() {
                    tracing::info!(job = name, "another node holds the lease of a background job now");
                }
            }
            Err(err) => tracing::debug!(job = name, error = %err, "cannot renew a lease; retrying"),
        }
    }
}
