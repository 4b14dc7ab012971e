//! The ephemeral store: short-lived shared state that may be lost without harm to
//! correctness of durable data — throttle counters, set-if-absent keys (idempotency,
//! one-time markers), deny-list entries and pub/sub for invalidations.
//!
//! Two implementations pass one test suite: [`MemoryStore`] (one process, the embedded
//! default) and [`RedisStore`] (many nodes). A node configured with Redis uses
//! [`FailoverStore`]: Redis, with a per-node fallback while Redis is unreachable.

mod failover;
mod memory;
mod redis;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::BoxStream;

pub use self::failover::FailoverStore;
pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
use crate::StoreError;

/// A message received on a pub/sub channel.
pub type Subscription = BoxStream<'static, String>;

/// Short-lived shared state with expiry. Keys are plain strings; callers namespace them
/// (`throttle:ip:…`, `idem:…`). Every write takes a time-to-live: nothing lives forever.
#[async_trait]
pub trait EphemeralStore: Send + Sync + 'static {
    /// Atomically increments the counter at `key` and returns the new value. A counter
    /// that did not exist starts at 1 and expires after `ttl`; incrementing an existing
    /// counter does not extend its expiry (a fixed window).
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError>;

    /// Atomically adds `delta` (which may be negative) to the counter at `key` and returns
    /// the new value. A counter that did not exist starts at 0 and expires after `ttl`;
    /// later additions keep that expiry (a fixed window, like [`EphemeralStore::incr`]).
    /// Lets a caller count an attempt before doing the work and give it back afterwards.
    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError>;

    /// Stores `value` at `key` only if the key is absent; returns whether it was stored.
    /// Exactly one of several concurrent callers wins.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError>;

    /// Stores `value` at `key`, replacing any previous value and expiry.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// The value at `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The time left before `key` expires, `None` if absent.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError>;

    /// Removes `key`; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Adds `member` to the deny-list `list` until `expires_at` (a later expiry for the
    /// same member replaces an earlier one, never the reverse).
    async fn deny(&self, list: &str, member: &str, expires_at: SystemTime) -> Result<(), StoreError>;

    /// Whether `member` is on the deny-list `list` and not yet expired.
    async fn is_denied(&self, list: &str, member: &str) -> Result<bool, StoreError>;

    /// Every unexpired member of the deny-list `list` with its expiry, oldest expiry first.
    /// Expired members are dropped.
    async fn denied(&self, list: &str) -> Result<Vec<(String, SystemTime)>, StoreError>;

    /// Publishes `message` to every current subscriber of `channel` (on every node).
    async fn publish(&self, channel: &str, message: &str) -> Result<(), StoreError>;

    /// Subscribes to `channel`. Messages published after this returns are delivered.
    async fn subscribe(&self, channel: &str) -> Result<Subscription, StoreError>;

    /// Checks that the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether the store runs on a per-node fallback because its shared backend is
    /// unreachable (see [`FailoverStore`]): counters and markers are then this node's only.
    fn degraded(&self) -> bool {
        false
    }

    /// A short name for logs and readiness documents: `memory` or `redis`.
    fn kind(&self) -> &'static str;
}
