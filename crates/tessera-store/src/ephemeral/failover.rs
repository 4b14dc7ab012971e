//! Redis with a per-node fallback: the ephemeral store of a cluster node.
//!
//! While Redis answers, every operation goes to Redis and the nodes share their counters,
//! markers and messages. When an operation fails because Redis is unreachable, the store
//! switches to an in-process [`MemoryStore`] of its own at once (the failed operation is
//! repeated there, so the caller never sees the outage) and reports itself
//! [`degraded`](EphemeralStore::degraded). A probe pings Redis every second while degraded
//! (every [`PROBE_UP`] while healthy, so an idle node notices an outage too) and switches
//! back as soon as Redis answers. Each outage starts from an empty fallback: what was
//! counted locally during one outage is not carried into the next.
//!
//! What callers must know (see docs/architecture.md, "Redis outage"):
//! - counters are per node while degraded, so a limit enforced with them must be divided
//!   by the number of nodes to stay at least as strict (the login throttle does this);
//! - set-if-absent markers are per node while degraded: a correctness decision must never
//!   rest on them alone (Tessera settles every such race in the database);
//! - subscriptions made while degraded deliver this node's messages only, and end when
//!   Redis returns, so that subscribers re-subscribe to Redis.
//!
//! A node can also start while Redis is down: it starts degraded and connects when Redis
//! comes up.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::StreamExt;
use tokio::sync::{watch, Mutex, OnceCell};

use super::{EphemeralStore, MemoryStore, RedisStore, Subscription};
use crate::StoreError;

/// Pause between probes of Redis while degraded.
const PROBE_DOWN: Duration = Duration::from_secs(1);
/// Pause between probes of Redis while healthy.
const PROBE_UP: Duration = Duration::from_secs(5);

/// Redis, falling back to an in-process store while Redis is unreachable.
pub struct FailoverStore {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    redis: OnceCell<RedisStore>,
    /// `true` while Redis is in use.
    up: watch::Sender<bool>,
    /// The fallback of the current (or last) outage.
    local: Mutex<Arc<MemoryStore>>,
}

impl std::fmt::Debug for FailoverStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverStore")
            .field("degraded", &self.degraded())
            .finish_non_exhaustive()
    }
}

impl FailoverStore {
    /// Connects to the Redis at `url`. If Redis does not answer, the store starts degraded
    /// and connects in the background once it does; only a URL this build cannot use is
    /// an error. Must be called inside a Tokio runtime (it starts the probe task, which
    /// ends when the store is dropped).
    pub async fn connect(url: &str) -> Result<FailoverStore, StoreError> {
        redis::Client::open(url).map_err(|err| StoreError::UnsupportedUrl(err.to_string()))?;
        let (up, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            redis: OnceCell::new(),
            up,
            local: Mutex::new(Arc::new(MemoryStore::new())),
        });
        match RedisStore::connect(url).await {
            Ok(store) => {
                let _ = inner.redis.set(store);
                inner.up.send_replace(true);
            }
            Err(err) => {
                tracing::warn!(error = %err, "Redis is unreachable: starting degraded, with per-node state until it answers");
            }
        }
        tokio::spawn(probe(Arc::downgrade(&inner)));
        Ok(FailoverStore { inner })
    }

    /// The store to use now: Redis while it is up.
    fn redis(&self) -> Option<&RedisStore> {
        if *self.inner.up.borrow() {
            self.inner.redis.get()
        } else {
            None
        }
    }

    async fn local(&self) -> Arc<MemoryStore> {
        self.inner.local.lock().await.clone()
    }

    /// Called when an operation on Redis failed: an outage switches to the fallback.
    async fn failed(&self, err: &StoreError) -> bool {
        if !matches!(err, StoreError::Unavailable(_)) {
            return false;
        }
        self.inner.mark_down(err).await;
        true
    }
}

impl Inner {
    async fn mark_down(&self, err: &StoreError) {
        // Only the first failure of an outage starts a new fallback.
        let mut local = self.local.lock().await;
        if *self.up.borrow() {
            *local = Arc::new(MemoryStore::new());
            self.up.send_replace(false);
            tracing::error!(error = %err, "Redis is unreachable: degraded, using per-node state until it returns");
        }
    }
}

/// Pings Redis (or connects, if it never could) and switches between Redis and the
/// fallback accordingly. Ends when the store is dropped.
async fn probe(inner: Weak<Inner>) {
    loop {
        let Some(was_up) = inner.upgrade().map(|inner| *inner.up.borrow()) else {
            return;
        };
        let pause = if was_up { PROBE_UP } else { PROBE_DOWN };
        tokio::time::sleep(pause).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let redis = match inner.redis.get() {
            Some(redis) => redis,
            None => match RedisStore::connect(&inner.url).await {
                Ok(store) => inner.redis.get_or_init(|| async { store }).await,
                Err(_) => continue,
            },
        };
        let answer = redis.ping().await;
        let up = *inner.up.borrow();
        match (answer, up) {
            (Ok(()), false) => {
                inner.up.send_replace(true);
                tracing::warn!("Redis answers again: shared state restored, degraded mode over");
            }
            (Err(err), true) => inner.mark_down(&err).await,
            _ => {}
        }
    }
}

/// Runs `$op` on Redis while it is up; on an outage (or while degraded) on the fallback.
macro_rules! failover {
    ($self:ident, |$store:ident| $op:expr) => {{
        if let Some($store) = $self.redis() {
            match $op.await {
                Err(err) if $self.failed(&err).await => {}
                result => return result,
            }
        }
        let $store = &*$self.local().await;
        $op.await
    }};
}

#[async_trait]
impl EphemeralStore for FailoverStore {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        failover!(self, |store| store.incr(key, ttl))
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        failover!(self, |store| store.add(key, delta, ttl))
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        failover!(self, |store| store.set_if_absent(key, value, ttl))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        failover!(self, |store| store.set(key, value, ttl))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        failover!(self, |store| store.get(key))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        failover!(self, |store| store.ttl(key))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        failover!(self, |store| store.delete(key))
    }

    async fn deny(&self, list: &str, member: &str, expires_at: SystemTime) -> Result<(), StoreError> {
        failover!(self, |store| store.deny(list, member, expires_at))
    }

    async fn is_denied(&self, list: &str, member: &str) -> Result<bool, StoreError> {
        failover!(self, |store| store.is_denied(list, member))
    }

    async fn denied(&self, list: &str) -> Result<Vec<(String, SystemTime)>, StoreError> {
        failover!(self, |store| store.denied(list))
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), StoreError> {
        failover!(self, |store| store.publish(channel, message))
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, StoreError> {
        if let Some(redis) = self.redis() {
            match redis.subscribe(channel).await {
                Err(err) if self.failed(&err).await => {}
                result => return result,
            }
        }
        // A fallback subscription ends when Redis returns, so its owner re-subscribes there.
        let messages = self.local().await.subscribe(channel).await?;
        let mut up = self.inner.up.subscribe();
        let recovered = async move {
            let _ = up.wait_for(|up| *up).await;
        };
        Ok(messages.take_until(Box::pin(recovered)).boxed())
    }

    /// Answers while the node can work, which it always can (on the fallback if need be):
    /// whether it is degraded is [`EphemeralStore::degraded`].
    async fn ping(&self) -> Result<(), StoreError> {
        if let Some(redis) = self.redis() {
            if let Err(err) = redis.ping().await {
                self.failed(&err).await;
            }
        }
        Ok(())
    }

    fn degraded(&self) -> bool {
        !*self.inner.up.borrow()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
