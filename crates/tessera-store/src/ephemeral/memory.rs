//! The in-process ephemeral store: one process, no network, the embedded default.
//!
//! State lives behind one `std::sync::Mutex` that is only ever held for a few map
//! operations, never across an `.await`. Expired values and deny-list members are
//! removed lazily when touched, and by a sweep that runs after enough writes that its
//! cost stays proportional to the writes (so memory stays bounded by the live data).
//!
//! Expiry uses [`tokio::time::Instant`], so tests built with Tokio's `test-util` that
//! pause its clock (`tokio::time::pause`) can drive counter and value expiry without
//! sleeping.
//! Deny-list expiries are wall-clock [`SystemTime`]s, as the trait requires.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{EphemeralStore, Subscription};
use crate::StoreError;

/// Messages a slow subscriber may fall behind by before it skips the oldest ones.
const CHANNEL_CAPACITY: usize = 1024;

/// The fewest writes between two sweeps of expired entries.
const MIN_SWEEP_INTERVAL: usize = 1024;

/// The longest time-to-live honoured; longer ones are shortened to this (about ten
/// years), so that adding it to the current instant can never overflow.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// An in-process [`EphemeralStore`]: state is shared by clones of nothing — wrap it in
/// an `Arc` to share it — and lost when the process exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    channels: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

#[derive(Debug, Default)]
struct State {
    /// Values and counters (counters are stored as their decimal text, as on Redis).
    values: HashMap<String, Entry>,
    /// Deny-lists: list → member → expiry.
    deny: HashMap<String, HashMap<String, SystemTime>>,
    /// Writes since the last sweep.
    writes: usize,
    /// Writes to wait for before the next sweep.
    sweep_after: usize,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_at: Instant,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a cache of short-lived data, and every update leaves it
        // consistent, so a panic elsewhere while holding the lock does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<String>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The live entry at `key`, dropping it first if it has expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.values.get(key).is_some_and(|entry| !entry.is_live(now)) {
            self.values.remove(key);
        }
        self.values.get_mut(key)
    }

    /// Counts a write, and sweeps every expired entry once enough writes have happened
    /// since the last sweep: at least [`MIN_SWEEP_INTERVAL`], and at least as many as
    /// entries survived the last sweep, so sweeping costs O(1) per write amortised.
    fn wrote(&mut self, now: Instant) {
        self.writes += 1;
        if self.writes < self.sweep_after.max(MIN_SWEEP_INTERVAL) {
            return;
        }
        self.sweep(now, SystemTime::now());
    }

    fn sweep(&mut self, now: Instant, wall_now: SystemTime) {
        self.values.retain(|_, entry| entry.is_live(now));
        self.deny.retain(|_, members| {
            members.retain(|_, expires_at| wall_now < *expires_at);
            !members.is_empty()
        });
        let remaining = self.values.len() + self.deny.values().map(HashMap::len).sum::<usize>();
        self.writes = 0;
        self.sweep_after = remaining;
    }
}

/// `now + ttl`, with `ttl` capped at [`MAX_TTL`].
fn expiry(now: Instant, ttl: Duration) -> Instant {
    let ttl = ttl.min(MAX_TTL);
    now.checked_add(ttl).unwrap_or(now)
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let value = match state.live(key, now) {
            Some(entry) => {
                let current = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("value at {key:?} is not a counter")))?;
                let next = current.saturating_add(1);
                entry.value = next.to_string().into_bytes();
                next
            }
            None => {
                let entry = Entry {
                    value: b"1".to_vec(),
                    expires_at: expiry(now, ttl),
                };
                state.values.insert(key.to_owned(), entry);
                1
            }
        };
        state.wrote(now);
        Ok(value)
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let value = match state.live(key, now) {
            Some(entry) => {
                let current = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|text| text.parse::<i64>().ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("value at {key:?} is not a counter")))?;
                let next = current.saturating_add(delta);
                entry.value = next.to_string().into_bytes();
                next
            }
            None => {
                let entry = Entry {
                    value: delta.to_string().into_bytes(),
                    expires_at: expiry(now, ttl),
                };
                state.values.insert(key.to_owned(), entry);
                delta
            }
        };
        state.wrote(now);
        Ok(value)
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        if state.live(key, now).is_some() {
            return Ok(false);
        }
        let entry = Entry {
            value: value.to_vec(),
            expires_at: expiry(now, ttl),
        };
        state.values.insert(key.to_owned(), entry);
        state.wrote(now);
        Ok(true)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let entry = Entry {
            value: value.to_vec(),
            expires_at: expiry(now, ttl),
        };
        state.values.insert(key.to_owned(), entry);
        state.wrote(now);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = Instant::now();
        Ok(self.state().live(key, now).map(|entry| entry.value.clone()))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, StoreError> {
        let now = Instant::now();
        Ok(self
            .state()
            .live(key, now)
            .map(|entry| entry.expires_at.saturating_duration_since(now)))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        // An expired entry counts as absent, as on Redis.
        let existed = state.live(key, now).is_some();
        state.values.remove(key);
        Ok(existed)
    }

    async fn deny(&self, list: &str, member: &str, expires_at: SystemTime) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let members = state.deny.entry(list.to_owned()).or_default();
        members
            .entry(member.to_owned())
            .and_modify(|current| *current = (*current).max(expires_at))
            .or_insert(expires_at);
        state.wrote(now);
        Ok(())
    }

    async fn is_denied(&self, list: &str, member: &str) -> Result<bool, StoreError> {
        let wall_now = SystemTime::now();
        let mut state = self.state();
        let Some(members) = state.deny.get_mut(list) else {
            return Ok(false);
        };
        match members.get(member) {
            Some(expires_at) if wall_now < *expires_at => Ok(true),
            Some(_) => {
                members.remove(member);
                if members.is_empty() {
                    state.deny.remove(list);
                }
                Ok(false)
            }
            None => Ok(false),
        }
    }

    async fn denied(&self, list: &str) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let wall_now = SystemTime::now();
        let mut state = self.state();
        let Some(members) = state.deny.get_mut(list) else {
            return Ok(Vec::new());
        };
        members.retain(|_, expires_at| wall_now < *expires_at);
        let mut live: Vec<(String, SystemTime)> = members
            .iter()
            .map(|(member, expires_at)| (member.clone(), *expires_at))
            .collect();
        if members.is_empty() {
            state.deny.remove(list);
        }
        drop(state);
        live.sort_by(|(a_member, a_expiry), (b_member, b_expiry)| {
            a_expiry.cmp(b_expiry).then_with(|| a_member.cmp(b_member))
        });
        Ok(live)
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), StoreError> {
        let mut channels = self.channels();
        if let Some(sender) = channels.get(channel) {
            // Sending fails only when nobody listens any more: forget the channel then.
            if sender.send(message.to_owned()).is_err() {
                channels.remove(channel);
            }
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, StoreError> {
        let receiver = {
            let mut channels = self.channels();
            // Forget channels whose subscribers have all gone (subscriptions are rare).
            channels.retain(|_, sender| sender.receiver_count() > 0);
            channels
                .entry(channel.to_owned())
                .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
                .subscribe()
        };
        let messages = stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(message) => return Some((message, receiver)),
                    // A subscriber that fell behind skips what it missed.
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "ephemeral store subscriber lagged; messages skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(messages.boxed())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sweep_bounds_memory() {
        let store = MemoryStore::new();
        // Many short-lived entries, none of them ever read again.
        for i in 0..5_000 {
            store
                .set(&format!("short:{i}"), b"x", Duration::from_millis(1))
                .await
                .unwrap();
            store
                .deny(
                    "list",
                    &format!("m{i}"),
                    SystemTime::now() + Duration::from_millis(1),
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // More writes than entries could have survived the last sweep: a sweep must run.
        let live = 10_001;
        for i in 0..live {
            store
                .set(&format!("live:{i}"), b"x", Duration::from_secs(60))
                .await
                .unwrap();
        }
        let state = store.state();
        let short = state
            .values
            .keys()
            .filter(|key| key.starts_with("short:"))
            .count();
        assert_eq!(short, 0, "expired values were not swept");
        assert!(
            !state.deny.contains_key("list"),
            "expired deny-list members were not swept"
        );
        assert_eq!(
            state.values.keys().filter(|key| key.starts_with("live:")).count(),
            live
        );
    }

    #[tokio::test]
    async fn lazily_purged_on_access() {
        let store = MemoryStore::new();
        store.set("k", b"v", Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(store.state().values.is_empty());
    }

    #[tokio::test]
    async fn huge_ttl_does_not_overflow() {
        let store = MemoryStore::new();
        store.set("k", b"v", Duration::MAX).await.unwrap();
        assert_eq!(store.incr("c", Duration::MAX).await.unwrap(), 1);
        let ttl = store.ttl("k").await.unwrap().unwrap();
        assert!(ttl > Duration::from_secs(365 * 24 * 60 * 60));
    }

    #[tokio::test]
    async fn incr_on_non_counter_is_an_error() {
        let store = MemoryStore::new();
        store
            .set("k", b"not a number", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(
            store.incr("k", Duration::from_secs(60)).await,
            Err(StoreError::Corrupt(_))
        ));
    }
}
