//! The deny-list: revoked session ids (`sid`), token ids (`jti`) and API-key ids
//! (`api_key`), pulled from the
//! provider's revocation feed (and optionally pushed through Redis), each kept until the
//! last token it covers has expired, and kept through an outage of the provider.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::fetch;

/// Largest feed document accepted (an entry is under 100 bytes).
const MAX_FEED_BYTES: usize = 32 * 1024 * 1024;

/// One revocation, as the feed and the pub/sub channel carry it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Entry {
    pub kind: String,
    pub value: String,
    /// After this (plus the leeway) no token the entry covers is accepted anyway.
    pub exp: i64,
}

#[derive(Deserialize)]
struct Feed {
    cursor: String,
    entries: Vec<Entry>,
}

#[derive(Default)]
struct Lists {
    sids: HashMap<String, i64>,
    jtis: HashMap<String, i64>,
    api_keys: HashMap<String, i64>,
}

#[derive(Default)]
struct FeedState {
    cursor: Option<String>,
    etag: Option<String>,
    last_success: Option<Instant>,
    last_error: Option<String>,
    failures: u64,
}

pub(crate) struct DenyList {
    lists: RwLock<Lists>,
    /// Seconds an entry is kept past its `exp`: the verifier's leeway, since a token is
    /// accepted until `exp + leeway`.
    grace: i64,
    feed: Option<url::Url>,
    state: Mutex<FeedState>,
    /// Whether the Redis subscription is up.
    channel_connected: AtomicBool,
}

impl DenyList {
    pub fn new(feed: Option<url::Url>, grace: i64) -> Self {
        DenyList {
            lists: RwLock::new(Lists::default()),
            grace,
            feed,
            state: Mutex::new(FeedState::default()),
            channel_connected: AtomicBool::new(false),
        }
    }

    pub fn channel_connected(&self) -> bool {
        self.channel_connected.load(Ordering::Relaxed)
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn set_channel_connected(&self, connected: bool) {
        self.channel_connected.store(connected, Ordering::Relaxed);
    }

    pub fn has_feed(&self) -> bool {
        self.feed.is_some()
    }

    fn lists(&self) -> std::sync::RwLockReadGuard<'_, Lists> {
        self.lists.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lists_mut(&self) -> std::sync::RwLockWriteGuard<'_, Lists> {
        self.lists
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the session or the token is revoked.
    pub fn is_revoked(&self, sid: Option<&str>, jti: &str) -> bool {
        let lists = self.lists();
        sid.is_some_and(|sid| lists.sids.contains_key(sid)) || lists.jtis.contains_key(jti)
    }

    /// Whether the API key with this id is revoked.
    pub fn is_key_revoked(&self, key_id: &str) -> bool {
        self.lists().api_keys.contains_key(key_id)
    }

    /// Adds entries (deduplicated by value: the feed re-sends recent ones). Returns how many
    /// were new.
    pub fn apply(&self, entries: &[Entry], now: i64) -> usize {
        let mut lists = self.lists_mut();
        let mut added = 0;
        for entry in entries {
            if entry.exp.saturating_add(self.grace) <= now {
                continue;
            }
            let list = match entry.kind.as_str() {
                "sid" => &mut lists.sids,
                "jti" => &mut lists.jtis,
                "api_key" => &mut lists.api_keys,
                other => {
                    tracing::debug!(kind = other, "ignoring a revocation of an unknown kind");
                    continue;
                }
            };
            let slot = list.entry(entry.value.clone()).or_insert_with(|| {
                added += 1;
                entry.exp
            });
            *slot = (*slot).max(entry.exp);
        }
        added
    }

    /// Forgets entries whose tokens have all expired.
    pub fn prune(&self, now: i64) {
        let grace = self.grace;
        let mut lists = self.lists_mut();
        lists.sids.retain(|_, exp| exp.saturating_add(grace) > now);
        lists.jtis.retain(|_, exp| exp.saturating_add(grace) > now);
        lists.api_keys.retain(|_, exp| exp.saturating_add(grace) > now);
    }

    pub fn len(&self) -> usize {
        let lists = self.lists();
        lists.sids.len() + lists.jtis.len() + lists.api_keys.len()
    }

    /// Polls the feed once: `?after=<cursor>` with `If-None-Match`. On failure the list
    /// stays as it was (the last good copy is kept through an outage).
    pub async fn poll(&self, http: &reqwest::Client) -> Result<(), String> {
        let Some(feed_url) = &self.feed else {
            return Ok(());
        };
        let (cursor, etag) = {
            let state = self.state();
            (state.cursor.clone(), state.etag.clone())
        };
        let result = self
            .fetch(http, feed_url, cursor.as_deref(), etag.as_deref())
            .await;
        let now = crate::unix_now();
        let mut state = self.state();
        match result {
            Ok(None) => {}
            Ok(Some((feed, new_etag))) => {
                let added = self.apply(&feed.entries, now);
                if added > 0 {
                    tracing::debug!(added, "revocations received");
                }
                let regressed = match (
                    cursor.as_deref().map(str::parse::<i64>),
                    feed.cursor.parse::<i64>(),
                ) {
                    (Some(Ok(old)), Ok(new)) => new < old,
                    _ => false,
                };
                if regressed {
                    // The provider's feed started over (a restored database): read it whole
                    // next time rather than wait for a cursor it will not reach soon.
                    tracing::warn!(
                        "the revocation feed's cursor went backwards; re-reading it from the start"
                    );
                    state.cursor = None;
                    state.etag = None;
                } else {
                    state.cursor = Some(feed.cursor);
                    state.etag = new_etag;
                }
            }
            Err(err) => {
                if state.last_error.is_none() {
                    tracing::warn!(error = %err, "revocation feed poll failed; keeping the last good deny-list");
                } else {
                    tracing::debug!(error = %err, "revocation feed poll failed again");
                }
                state.failures += 1;
                state.last_error = Some(err.clone());
                drop(state);
                self.prune(now);
                return Err(err);
            }
        }
        if state.last_error.take().is_some() {
            tracing::info!("revocation feed reachable again");
        }
        state.last_success = Some(Instant::now());
        drop(state);
        self.prune(now);
        Ok(())
    }

    /// `Ok(None)` for 304 Not Modified.
    async fn fetch(
        &self,
        http: &reqwest::Client,
        feed_url: &url::Url,
        cursor: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Option<(Feed, Option<String>)>, String> {
        let mut url = feed_url.clone();
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("after", cursor);
        }
        let mut request = http.get(url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(|e| fetch::describe(&e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("revocation feed answered HTTP {}", status.as_u16()));
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = fetch::read_limited(response, MAX_FEED_BYTES).await?;
        let feed: Feed = serde_json::from_slice(&body).map_err(|e| format!("not a revocation feed: {e}"))?;
        Ok(Some((feed, etag)))
    }

    /// Age of the last good poll, the last error and the failure count.
    pub fn report(&self) -> (Option<Duration>, Option<String>, u64) {
        let state = self.state();
        (
            state.last_success.map(|at| at.elapsed()),
            state.last_error.clone(),
            state.failures,
        )
    }
}

/// Subscribes to the Redis channel on which the provider announces revocations and applies
/// them at once; reconnects with backoff. The feed poller stays the source of truth (a
/// message missed while disconnected arrives with the next poll).
#[cfg(feature = "redis")]
pub(crate) async fn subscribe_redis(url: String, deny: std::sync::Weak<DenyList>) {
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_secs(1);
    let mut warned = false;
    loop {
        if deny.strong_count() == 0 {
            return;
        }
        let result = listen_redis(&url, &deny, &mut backoff).await;
        if let Some(deny) = deny.upgrade() {
            deny.set_channel_connected(false);
        }
        match result {
            Ok(()) => return,
            Err(err) if !warned => {
                tracing::warn!(error = %err, "revocation channel unavailable; relying on the feed until it is back");
                warned = true;
            }
            Err(err) => tracing::debug!(error = %err, "revocation channel still unavailable"),
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// `Ok(())` when the deny-list is gone (the verifier was dropped).
#[cfg(feature = "redis")]
async fn listen_redis(
    url: &str,
    deny: &std::sync::Weak<DenyList>,
    backoff: &mut Duration,
) -> Result<(), String> {
    use futures_util::StreamExt;

    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .map_err(|_| "connection timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    pubsub
        .subscribe(crate::REVOCATIONS_CHANNEL)
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!("subscribed to {}", crate::REVOCATIONS_CHANNEL);
    if let Some(deny) = deny.upgrade() {
        deny.set_channel_connected(true);
    }
    *backoff = Duration::from_secs(1);
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Some(deny) = deny.upgrade() else {
            return Ok(());
        };
        match serde_json::from_slice::<Entry>(message.get_payload_bytes()) {
            Ok(entry) => {
                deny.apply(std::slice::from_ref(&entry), crate::unix_now());
            }
            Err(err) => tracing::debug!(error = %err, "ignoring a malformed revocation message"),
        }
    }
    Err("the connection closed".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, value: &str, exp: i64) -> Entry {
        Entry {
            kind: kind.to_owned(),
            value: value.to_owned(),
            exp,
        }
    }

    #[test]
    fn keeps_entries_until_exp_plus_grace_and_dedupes() {
        let deny = DenyList::new(None, 30);
        let added = deny.apply(
            &[
                entry("sid", "s1", 100),
                entry("sid", "s1", 100),
                entry("jti", "j1", 50),
                entry("jti", "old", 10),
                entry("what", "x", 1000),
            ],
            60,
        );
        assert_eq!(added, 2);
        assert!(deny.is_revoked(Some("s1"), "other"));
        assert!(deny.is_revoked(None, "j1"));
        assert!(!deny.is_revoked(None, "old"));
        assert!(!deny.is_revoked(Some("j1"), "s1"), "kinds are separate");
        deny.apply(&[entry("api_key", "k1", 100)], 60);
        assert!(deny.is_key_revoked("k1") && !deny.is_revoked(Some("k1"), "k1"));
        assert!(!deny.is_key_revoked("s1"));
        deny.apply(&[entry("api_key", "k1", 100)], 60);
        deny.prune(79);
        assert!(deny.is_revoked(None, "j1"), "still within the leeway");
        deny.prune(80);
        assert!(!deny.is_revoked(None, "j1"));
        assert_eq!(deny.len(), 2, "s1 and k1");
        // A later exp for the same value extends it.
        deny.apply(&[entry("sid", "s1", 500)], 80);
        deny.prune(200);
        assert!(deny.is_revoked(Some("s1"), "x"));
    }
}
