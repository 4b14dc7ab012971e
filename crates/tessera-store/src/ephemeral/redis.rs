//! The Redis ephemeral store: state shared by every Tessera node.
//!
//! Layout (every name carries the `tessera:` prefix so Tessera can share a Redis):
//!
//! - values and counters: string keys `tessera:kv:{key}`, with a millisecond expiry;
//! - deny-lists: sorted sets `tessera:deny:{list}`, member → expiry in unix milliseconds,
//!   the set itself expiring a minute after its latest member;
//! - pub/sub: channels `tessera:{channel}`.
//!
//! Commands go through one [`ConnectionManager`], which reconnects on its own after
//! the connection drops; each [`subscribe`](EphemeralStore::subscribe) opens its own
//! pub/sub connection. Connecting and every command time out after two seconds, so a
//! dead Redis makes requests fail fast instead of hanging.
//!
//! The two multi-step updates (`incr`, `deny`) are small Lua scripts sent with `EVAL`
//! (Redis caches their compiled form), so each runs atomically. `ZADD … GT` needs
//! Redis 6.2 or later.
//!
//! Deny-list expiries are kept to the millisecond, rounded up (an entry never ends
//! early), and compared with this node's clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::future;
use futures_util::stream::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Value};

use super::{EphemeralStore, Subscription};
use crate::StoreError;

/// How long one attempt to connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times the connection manager retries a failed (re)connection attempt.
const CONNECT_RETRIES: usize = 1;
/// The longest time-to-live honoured; longer ones are shortened to this (about ten years).
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// How long a deny-list's sorted set outlives its latest member (absorbs clock skew
/// between this node and Redis, which expires the key on its own clock).
const DENY_KEY_GRACE: Duration = Duration::from_secs(60);

/// Increments a counter; only the increment that creates it sets its expiry (a fixed
/// window). A counter found without an expiry gets one, so none can live forever.
/// KEYS[1] = counter, ARGV[1] = time-to-live in milliseconds.
const INCR_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

/// Adds ARGV[2] to a counter, setting the expiry when it is created (or has none).
/// KEYS[1] = counter, ARGV[1] = ttl (ms), ARGV[2] = delta.
const ADD_SCRIPT: &str = r"
local existed = redis.call('EXISTS', KEYS[1])
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if existed == 0 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

/// Adds a deny-list member, keeping the later of its old and new expiries, and makes
/// the set expire a grace period after its latest member.
/// KEYS[1] = set, ARGV[1] = expiry (unix ms), ARGV[2] = member, ARGV[3] = grace (ms).
const DENY_SCRIPT: &str = r"
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(last[2]) + tonumber(ARGV[3])))
end
return 0
";

/// A Redis-backed [`EphemeralStore`], for deployments with more than one node.
pub struct RedisStore {
    client: Client,
    commands: ConnectionManager,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info may hold a password: do not print it.
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`).
    ///
    /// Fails with [`StoreError::UnsupportedUrl`] if the URL is not a Redis URL this build
    /// can use, and with [`StoreError::Unavailable`] if Redis does not answer within a
    /// few seconds.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        crate::install_crypto_provider();
        let client = Client::open(url).map_err(|err| StoreError::UnsupportedUrl(err.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_millis(500));
        // Every attempt is bounded by CONNECT_TIMEOUT; this bounds them all together.
        let overall = CONNECT_TIMEOUT * (CONNECT_RETRIES as u32 + 1) + Duration::from_secs(1);
        let commands = with_timeout(overall, "connecting to redis", async {
            ConnectionManager::new_with_config(client.clone(), config).await
        })
        .await?;
        Ok(RedisStore { client, commands })
    }

    /// A handle for one command (cheap: the manager is shared behind an `Arc`).
    fn conn(&self) -> ConnectionManager {
        self.commands.clone()
    }
}

fn value_key(key: &str) -> String {
    format!("tessera:kv:{key}")
}

fn deny_key(list: &str) -> String {
    format!("tessera:deny:{list}")
}

fn channel_name(channel: &str) -> String {
    format!("tessera:{channel}")
}

/// A time-to-live in whole milliseconds, at least 1 (Redis rejects 0) and at most [`MAX_TTL`].
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.min(MAX_TTL).as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// `time` in unix milliseconds, rounded up; times before 1970 count as 0.
fn unix_millis_ceil(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let millis = since_epoch.as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// The current time in unix milliseconds, rounded down.
fn now_millis() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// A sorted-set score (unix milliseconds) as a time.
fn score_time(score: f64) -> SystemTime {
    // `as` saturates: NaN and negatives become 0, huge values u64::MAX.
    let millis = score as u64;
    UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .unwrap_or(UNIX_EPOCH + MAX_TTL)
}

async fn with_timeout<T>(
    limit: Duration,
    what: &str,
    work: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            crate::count_error("redis");
            Err(StoreError::Unavailable(format!(
                "{what}: timed out after {limit:?}"
            )))
        }
    }
}

#[async_trait]
impl EphemeralStore for RedisStore {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let value: i64 = redis::cmd("EVAL")
            .arg(INCR_SCRIPT)
            .arg(1)
            .arg(value_key(key))
            .arg(ttl_millis(ttl))
            .query_async(&mut self.conn())
            .await?;
        u64::try_from(value)
            .map_err(|_| StoreError::Corrupt(format!("counter at {key:?} is negative: {value}")))
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        let value: i64 = redis::cmd("EVAL")
            .arg(ADD_SCRIPT)
            .arg(1)
            .arg(value_key(key))
            .arg(ttl_millis(ttl))
            .arg(delta)
            .query_async(&mut self.conn())
            .await?;
        Ok(value)
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let reply: Value = redis::cmd("SET")
            .arg(value_key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut self.conn())
            .await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        redis::cmd("SET")
            .arg(value_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl))
            .exec_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(redis::cmd("GET")
            .arg(value_key(key))
            .query_async(&mut self.conn())
            .await?)
    }

    /// `PTTL`: an absent key is `None`. A key without an expiry — which this store
    /// never creates — is also reported as `None`, as the in-process store cannot hold one.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let millis: i64 = redis::cmd("PTTL")
            .arg(value_key(key))
            .query_async(&mut self.conn())
            .await?;
        Ok(u64::try_from(millis).ok().map(Duration::from_millis))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let removed: u64 = redis::cmd("DEL")
            .arg(value_key(key))
            .query_async(&mut self.conn())
            .await?;
        Ok(removed > 0)
    }

    async fn deny(&self, list: &str, member: &str, expires_at: SystemTime) -> Result<(), StoreError> {
        let grace = u64::try_from(DENY_KEY_GRACE.as_millis()).unwrap_or(u64::MAX);
        redis::cmd("EVAL")
            .arg(DENY_SCRIPT)
            .arg(1)
            .arg(deny_key(list))
            .arg(unix_millis_ceil(expires_at))
            .arg(member)
            .arg(grace)
            .exec_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn is_denied(&self, list: &str, member: &str) -> Result<bool, StoreError> {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(deny_key(list))
            .arg(member)
            .query_async(&mut self.conn())
            .await?;
        // Denied while now < expiry (in milliseconds).
        Ok(score.is_some_and(|expires_at| expires_at > now_millis() as f64))
    }

    async fn denied(&self, list: &str) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let key = deny_key(list);
        let (members,): (Vec<(String, f64)>,) = redis::pipe()
            .atomic()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now_millis())
            .ignore()
            .cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await?;
        Ok(members
            .into_iter()
            .map(|(member, score)| (member, score_time(score)))
            .collect())
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), StoreError> {
        redis::cmd("PUBLISH")
            .arg(channel_name(channel))
            .arg(message)
            .exec_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Opens a dedicated pub/sub connection. The stream ends if that connection is
    /// lost; subscribe again to resume (messages published in between are missed).
    async fn subscribe(&self, channel: &str) -> Result<Subscription, StoreError> {
        let mut pubsub = with_timeout(CONNECT_TIMEOUT, "opening a redis pub/sub connection", async {
            self.client.get_async_pubsub().await
        })
        .await?;
        let name = channel_name(channel);
        with_timeout(
            RESPONSE_TIMEOUT,
            "subscribing to a redis channel",
            pubsub.subscribe(&name),
        )
        .await?;
        let messages = pubsub.into_on_message().filter_map(|message| {
            let text = String::from_utf8(message.get_payload_bytes().to_vec()).ok();
            if text.is_none() {
                tracing::warn!(
                    channel = message.get_channel_name(),
                    "skipped a pub/sub message that is not UTF-8"
                );
            }
            future::ready(text)
        });
        Ok(messages.boxed())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let reply: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "unexpected reply to PING: {reply:?}"
            )))
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up() {
        let exact = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(unix_millis_ceil(exact), 1_700_000_000_123);
        assert_eq!(
            unix_millis_ceil(exact + Duration::from_nanos(1)),
            1_700_000_000_124
        );
        assert_eq!(unix_millis_ceil(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(score_time(1_700_000_000_123.0), exact);
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)), 1);
        assert_eq!(ttl_millis(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL.as_millis() as u64);
    }

    #[tokio::test]
    async fn unusable_url_is_rejected() {
        let err = RedisStore::connect("http://example.invalid/").await.unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err:?}");
    }
}
