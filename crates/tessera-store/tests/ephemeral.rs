//! One test suite for every ephemeral store: each `case_*` runs against the in-process
//! store (`*_memory`) and against Redis (`*_redis`).
//!
//! The Redis variants need `TESSERA_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`); without
//! it they print a note and pass. Every case names its keys, lists and channels uniquely
//! (test name, process id, timestamp, counter), so runs may share a Redis, in parallel
//! and repeatedly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tessera_store::ephemeral::{EphemeralStore, FailoverStore, MemoryStore, RedisStore, Subscription};
use tessera_store::StoreError;

/// How long a subscriber waits for a message that should arrive.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A name no other test, process or run uses.
fn unique(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("test:{name}:{}:{nanos}:{n}", std::process::id())
}

/// `now + offset`, truncated to whole milliseconds (Redis keeps deny-list expiries to
/// the millisecond, so aligned times come back exactly).
fn at_ms(offset: Duration) -> SystemTime {
    let millis = (SystemTime::now() + offset)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap())
}

fn before_ms(offset: Duration) -> SystemTime {
    let millis = (SystemTime::now() - offset)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap())
}

async fn next_message(subscription: &mut Subscription) -> String {
    tokio::time::timeout(DELIVERY_TIMEOUT, subscription.next())
        .await
        .expect("no message delivered in time")
        .expect("subscription ended")
}

async fn redis_store() -> Option<Arc<dyn EphemeralStore>> {
    let Ok(url) = std::env::var("TESSERA_TEST_REDIS_URL") else {
        eprintln!("skipped: TESSERA_TEST_REDIS_URL not set");
        return None;
    };
    let store = RedisStore::connect(&url)
        .await
        .expect("connect to TESSERA_TEST_REDIS_URL");
    Some(Arc::new(store))
}

/// `suite!(case_fn => memory_test, redis_test, ...)` generates one test per store.
macro_rules! suite {
    ($($case:ident => $memory:ident, $redis:ident, $failover:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            let store: Arc<dyn EphemeralStore> = Arc::new(MemoryStore::new());
            assert_eq!(store.kind(), "memory");
            $case(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $redis() {
            let Some(store) = redis_store().await else { return };
            assert_eq!(store.kind(), "redis");
            $case(store).await;
        }

        /// The same contract through the failover store while Redis is up.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $failover() {
            let Ok(url) = std::env::var("TESSERA_TEST_REDIS_URL") else { return };
            let store = FailoverStore::connect(&url).await.unwrap();
            assert!(!store.degraded());
            $case(Arc::new(store)).await;
        }
    )*};
}

suite! {
    case_incr_counts => incr_counts_memory, incr_counts_redis, incr_counts_failover;
    case_incr_fixed_window => incr_fixed_window_memory, incr_fixed_window_redis, incr_fixed_window_failover;
    case_incr_concurrent => incr_concurrent_memory, incr_concurrent_redis, incr_concurrent_failover;
    case_set_if_absent => set_if_absent_memory, set_if_absent_redis, set_if_absent_failover;
    case_set_if_absent_concurrent => set_if_absent_concurrent_memory, set_if_absent_concurrent_redis, set_if_absent_concurrent_failover;
    case_set_get_delete_ttl => set_get_delete_ttl_memory, set_get_delete_ttl_redis, set_get_delete_ttl_failover;
    case_set_expires => set_expires_memory, set_expires_redis, set_expires_failover;
    case_deny_basic => deny_basic_memory, deny_basic_redis, deny_basic_failover;
    case_deny_later_expiry_wins => deny_later_expiry_wins_memory, deny_later_expiry_wins_redis, deny_later_expiry_wins_failover;
    case_deny_expiry_and_order => deny_expiry_and_order_memory, deny_expiry_and_order_redis, deny_expiry_and_order_failover;
    case_pubsub_delivers => pubsub_delivers_memory, pubsub_delivers_redis, pubsub_delivers_failover;
    case_pubsub_two_subscribers => pubsub_two_subscribers_memory, pubsub_two_subscribers_redis, pubsub_two_subscribers_failover;
    case_pubsub_other_channel => pubsub_other_channel_memory, pubsub_other_channel_redis, pubsub_other_channel_failover;
    case_ping => ping_memory, ping_redis, ping_failover;
    case_add_counts_up_and_down => add_counts_up_and_down_memory, add_counts_up_and_down_redis, add_counts_up_and_down_failover;
    case_add_concurrent => add_concurrent_memory, add_concurrent_redis, add_concurrent_failover;
}

async fn case_incr_counts(store: Arc<dyn EphemeralStore>) {
    let key = unique("incr_counts");
    let other = unique("incr_counts_other");
    let ttl = Duration::from_secs(60);
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 1);
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 2);
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 3);
    // Another key is a separate counter.
    assert_eq!(store.incr(&other, ttl).await.unwrap(), 1);
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 4);
    // A counter reads back as its decimal text and has an expiry.
    assert_eq!(store.get(&key).await.unwrap(), Some(b"4".to_vec()));
    let left = store.ttl(&key).await.unwrap().expect("counter has a ttl");
    assert!(left > Duration::from_secs(50) && left <= ttl, "ttl {left:?}");
}

async fn case_add_counts_up_and_down(store: Arc<dyn EphemeralStore>) {
    let key = unique("add_counts");
    let ttl = Duration::from_secs(60);
    assert_eq!(store.add(&key, 1, ttl).await.unwrap(), 1);
    assert_eq!(store.add(&key, 5, ttl).await.unwrap(), 6);
    assert_eq!(store.add(&key, -2, ttl).await.unwrap(), 4);
    // A counter made by `add` expires like one made by `incr`, and `incr` continues it.
    let left = store.ttl(&key).await.unwrap().expect("counter has a ttl");
    assert!(left > Duration::from_secs(50) && left <= ttl, "ttl {left:?}");
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 5);
    // Starting below zero is allowed (a give-back that outlived its window).
    let fresh = unique("add_negative");
    assert_eq!(store.add(&fresh, -1, ttl).await.unwrap(), -1);
}

async fn case_add_concurrent(store: Arc<dyn EphemeralStore>) {
    let key = unique("add_concurrent");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        let key = key.clone();
        let delta = if i % 2 == 0 { 3 } else { -1 };
        tasks.push(tokio::spawn(async move {
            store.add(&key, delta, Duration::from_secs(60)).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // 20 × 3 − 20 × 1, whatever the interleaving.
    assert_eq!(store.add(&key, 0, Duration::from_secs(60)).await.unwrap(), 40);
}

async fn case_incr_fixed_window(store: Arc<dyn EphemeralStore>) {
    let key = unique("incr_window");
    let ttl = Duration::from_millis(1000);
    let started = Instant::now();
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A later increment with a fresh ttl does not extend the window.
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 2);
    let left = store.ttl(&key).await.unwrap().expect("counter has a ttl");
    let elapsed = started.elapsed();
    assert!(
        left <= ttl.saturating_sub(elapsed) + Duration::from_millis(50),
        "window was extended: {left:?} left after {elapsed:?}"
    );
    // Past the window the counter starts again, with a new full window.
    tokio::time::sleep((ttl + Duration::from_millis(150)).saturating_sub(started.elapsed())).await;
    assert_eq!(
        store.get(&key).await.unwrap(),
        None,
        "counter outlived its window"
    );
    assert_eq!(store.incr(&key, ttl).await.unwrap(), 1);
    let left = store.ttl(&key).await.unwrap().expect("counter has a ttl");
    assert!(
        left > Duration::from_millis(800),
        "new window too short: {left:?}"
    );
}

async fn case_incr_concurrent(store: Arc<dyn EphemeralStore>) {
    let key = Arc::new(unique("incr_concurrent"));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.incr(&key, Duration::from_secs(60)).await.unwrap() })
        })
        .collect();
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.unwrap());
    }
    values.sort_unstable();
    assert_eq!(values, (1..=50).collect::<Vec<u64>>());
    assert!(store.ttl(&key).await.unwrap().is_some(), "counter lost its ttl");
}

async fn case_set_if_absent(store: Arc<dyn EphemeralStore>) {
    let key = unique("set_if_absent");
    let ttl = Duration::from_secs(60);
    assert!(store.set_if_absent(&key, b"first", ttl).await.unwrap());
    assert!(!store.set_if_absent(&key, b"second", ttl).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), Some(b"first".to_vec()));
    assert!(store.ttl(&key).await.unwrap().is_some());
    // Once deleted, the key can be claimed again.
    assert!(store.delete(&key).await.unwrap());
    assert!(store.set_if_absent(&key, b"third", ttl).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), Some(b"third".to_vec()));
}

async fn case_set_if_absent_concurrent(store: Arc<dyn EphemeralStore>) {
    let key = Arc::new(unique("set_if_absent_concurrent"));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let value = format!("caller-{i}").into_bytes();
                let won = store
                    .set_if_absent(&key, &value, Duration::from_secs(60))
                    .await
                    .unwrap();
                (won, value)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (won, value) = task.await.unwrap();
        if won {
            winners.push(value);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    // The stored value is the winner's.
    assert_eq!(store.get(&key).await.unwrap(), Some(winners[0].clone()));
}

async fn case_set_get_delete_ttl(store: Arc<dyn EphemeralStore>) {
    let key = unique("set_get");
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.ttl(&key).await.unwrap(), None);
    assert!(!store.delete(&key).await.unwrap());

    store
        .set(&key, b"\x00binary\xffvalue", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        store.get(&key).await.unwrap(),
        Some(b"\x00binary\xffvalue".to_vec())
    );
    let left = store.ttl(&key).await.unwrap().expect("set value has a ttl");
    assert!(
        left > Duration::from_secs(25) && left <= Duration::from_secs(30),
        "ttl {left:?}"
    );

    // `set` replaces both the value and the expiry (here: a longer one).
    store
        .set(&key, b"second", Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(b"second".to_vec()));
    let left = store.ttl(&key).await.unwrap().expect("set value has a ttl");
    assert!(
        left > Duration::from_secs(100) && left <= Duration::from_secs(120),
        "ttl {left:?}"
    );

    // ... or a shorter one.
    store.set(&key, b"third", Duration::from_secs(10)).await.unwrap();
    let left = store.ttl(&key).await.unwrap().expect("set value has a ttl");
    assert!(left <= Duration::from_secs(10), "ttl {left:?}");

    assert!(store.delete(&key).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.ttl(&key).await.unwrap(), None);
    assert!(!store.delete(&key).await.unwrap());
}

async fn case_set_expires(store: Arc<dyn EphemeralStore>) {
    let key = unique("set_expires");
    let claimed = unique("set_expires_claimed");
    store.set(&key, b"v", Duration::from_millis(300)).await.unwrap();
    assert!(store
        .set_if_absent(&claimed, b"v", Duration::from_millis(300))
        .await
        .unwrap());
    assert_eq!(store.get(&key).await.unwrap(), Some(b"v".to_vec()));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.ttl(&key).await.unwrap(), None);
    assert!(
        !store.delete(&key).await.unwrap(),
        "an expired key counts as absent"
    );
    // An expired claim can be claimed again.
    assert!(store
        .set_if_absent(&claimed, b"w", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(store.get(&claimed).await.unwrap(), Some(b"w".to_vec()));
}

async fn case_deny_basic(store: Arc<dyn EphemeralStore>) {
    let list = unique("deny_basic");
    let other_list = unique("deny_basic_other");
    let until = at_ms(Duration::from_secs(60));
    assert!(!store.is_denied(&list, "alice").await.unwrap());
    assert_eq!(store.denied(&list).await.unwrap(), Vec::new());

    store.deny(&list, "alice", until).await.unwrap();
    assert!(store.is_denied(&list, "alice").await.unwrap());
    assert!(!store.is_denied(&list, "bob").await.unwrap());
    assert!(!store.is_denied(&other_list, "alice").await.unwrap());
    assert_eq!(
        store.denied(&list).await.unwrap(),
        vec![("alice".to_owned(), until)]
    );
    assert_eq!(store.denied(&other_list).await.unwrap(), Vec::new());

    // Deny-lists and plain keys do not collide.
    assert_eq!(store.get(&list).await.unwrap(), None);
}

async fn case_deny_later_expiry_wins(store: Arc<dyn EphemeralStore>) {
    let list = unique("deny_later");
    let early = at_ms(Duration::from_secs(10));
    let late = at_ms(Duration::from_secs(20));
    let earlier = at_ms(Duration::from_secs(5));

    store.deny(&list, "m", early).await.unwrap();
    assert_eq!(store.denied(&list).await.unwrap(), vec![("m".to_owned(), early)]);
    // A later expiry replaces the earlier one.
    store.deny(&list, "m", late).await.unwrap();
    assert_eq!(store.denied(&list).await.unwrap(), vec![("m".to_owned(), late)]);
    // An earlier one does not shorten it.
    store.deny(&list, "m", earlier).await.unwrap();
    assert_eq!(store.denied(&list).await.unwrap(), vec![("m".to_owned(), late)]);
    // Nor does one in the past lift the denial.
    store
        .deny(&list, "m", before_ms(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(store.is_denied(&list, "m").await.unwrap());
    assert_eq!(store.denied(&list).await.unwrap(), vec![("m".to_owned(), late)]);
}

async fn case_deny_expiry_and_order(store: Arc<dyn EphemeralStore>) {
    let list = unique("deny_order");
    let soon = at_ms(Duration::from_millis(500));
    let middle = at_ms(Duration::from_secs(30));
    let last = at_ms(Duration::from_secs(60));
    // Added out of order, and one already expired.
    store.deny(&list, "last", last).await.unwrap();
    store.deny(&list, "soon", soon).await.unwrap();
    store
        .deny(&list, "gone", before_ms(Duration::from_secs(1)))
        .await
        .unwrap();
    store.deny(&list, "middle", middle).await.unwrap();

    assert!(!store.is_denied(&list, "gone").await.unwrap());
    assert!(store.is_denied(&list, "soon").await.unwrap());
    assert_eq!(
        store.denied(&list).await.unwrap(),
        vec![
            ("soon".to_owned(), soon),
            ("middle".to_owned(), middle),
            ("last".to_owned(), last)
        ]
    );

    tokio::time::sleep(Duration::from_millis(650)).await;
    assert!(!store.is_denied(&list, "soon").await.unwrap());
    assert!(store.is_denied(&list, "middle").await.unwrap());
    assert_eq!(
        store.denied(&list).await.unwrap(),
        vec![("middle".to_owned(), middle), ("last".to_owned(), last)]
    );
    // A member whose entry expired can be denied again.
    let again = at_ms(Duration::from_secs(45));
    store.deny(&list, "soon", again).await.unwrap();
    assert!(store.is_denied(&list, "soon").await.unwrap());
    assert_eq!(
        store.denied(&list).await.unwrap(),
        vec![
            ("middle".to_owned(), middle),
            ("soon".to_owned(), again),
            ("last".to_owned(), last)
        ]
    );
}

async fn case_pubsub_delivers(store: Arc<dyn EphemeralStore>) {
    let channel = unique("pubsub_delivers");
    let mut subscription = store.subscribe(&channel).await.unwrap();
    store.publish(&channel, "hello").await.unwrap();
    store.publish(&channel, "world").await.unwrap();
    assert_eq!(next_message(&mut subscription).await, "hello");
    assert_eq!(next_message(&mut subscription).await, "world");
}

async fn case_pubsub_two_subscribers(store: Arc<dyn EphemeralStore>) {
    let channel = unique("pubsub_two");
    let mut first = store.subscribe(&channel).await.unwrap();
    let mut second = store.subscribe(&channel).await.unwrap();
    store.publish(&channel, "to both").await.unwrap();
    assert_eq!(next_message(&mut first).await, "to both");
    assert_eq!(next_message(&mut second).await, "to both");
    // A dropped subscriber does not stop delivery to the other.
    drop(first);
    store.publish(&channel, "still here").await.unwrap();
    assert_eq!(next_message(&mut second).await, "still here");
}

async fn case_pubsub_other_channel(store: Arc<dyn EphemeralStore>) {
    let channel = unique("pubsub_channel");
    let other = unique("pubsub_other");
    let mut on_channel = store.subscribe(&channel).await.unwrap();
    let mut on_other = store.subscribe(&other).await.unwrap();
    store.publish(&channel, "for channel").await.unwrap();
    store.publish(&other, "for other").await.unwrap();
    store.publish(&channel, "for channel again").await.unwrap();
    // Each subscriber sees only its own channel's messages, in order.
    assert_eq!(next_message(&mut on_other).await, "for other");
    assert_eq!(next_message(&mut on_channel).await, "for channel");
    assert_eq!(next_message(&mut on_channel).await, "for channel again");
    let stray = tokio::time::timeout(Duration::from_millis(200), on_other.next()).await;
    assert!(
        stray.is_err(),
        "unexpected message on the other channel: {stray:?}"
    );
    // Publishing with nobody subscribed is not an error.
    store.publish(&unique("pubsub_nobody"), "lost").await.unwrap();
}

async fn case_ping(store: Arc<dyn EphemeralStore>) {
    store.ping().await.unwrap();
}

/// A Redis that does not answer makes `connect` fail quickly, not hang.
#[tokio::test]
async fn redis_unreachable_fails_fast() {
    let started = Instant::now();
    // Port 1 (tcpmux) is closed on any ordinary machine: the connection is refused.
    let result = RedisStore::connect("redis://127.0.0.1:1").await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
}

/// A Redis server of the test's own, on a free port, that can be killed and restarted
/// (never the shared one). `None` when `redis-server` is not installed.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn on_free_port() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        OwnRedis { port, child: None }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server; false when redis-server is missing.
    async fn start(&mut self) -> bool {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            assert!(
                std::env::var("TESSERA_REQUIRE_INTEROP").is_err(),
                "redis-server is required"
            );
            eprintln!("skipped: redis-server not installed");
            return false;
        };
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    /// SIGKILL: Redis vanishes without a goodbye, as in a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

/// Redis dies: every operation keeps answering (from a per-node fallback that starts
/// empty), the store says it is degraded, a subscription made meanwhile hears this node
/// and ends when Redis is back; then the nodes share state again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_survives_a_redis_crash_and_recovers() {
    let mut redis = OwnRedis::on_free_port();
    if !redis.start().await {
        return;
    }
    let store = FailoverStore::connect(&redis.url()).await.unwrap();
    let other_node = FailoverStore::connect(&redis.url()).await.unwrap();
    assert!(!store.degraded());
    let window = Duration::from_secs(60);
    assert_eq!(store.incr("shared", window).await.unwrap(), 1);
    assert_eq!(
        other_node.incr("shared", window).await.unwrap(),
        2,
        "shared through Redis"
    );
    let mut before = store.subscribe("news").await.unwrap();

    redis.kill();
    // The first operation meets the outage and is answered from the fallback.
    assert_eq!(store.incr("shared", window).await.unwrap(), 1);
    assert!(store.degraded());
    assert_eq!(store.incr("shared", window).await.unwrap(), 2);
    assert!(store.set_if_absent("once", b"1", window).await.unwrap());
    assert!(!store.set_if_absent("once", b"1", window).await.unwrap());
    assert_eq!(store.get("once").await.unwrap().as_deref(), Some(&b"1"[..]));
    store.ping().await.unwrap();
    // The subscription on Redis ended with its connection.
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), before.next())
            .await
            .unwrap(),
        None
    );
    let mut during = store.subscribe("news").await.unwrap();
    store.publish("news", "local").await.unwrap();
    assert_eq!(next_message(&mut during).await, "local");

    redis.start().await;
    wait_until("the store leaves degraded mode", || !store.degraded()).await;
    // The fallback subscription ends so its owner subscribes to Redis again.
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), during.next())
            .await
            .unwrap(),
        None
    );
    // Shared again (Redis restarted empty: it keeps nothing on disk here).
    other_node.ping().await.unwrap();
    wait_until("the other node is back on Redis", || !other_node.degraded()).await;
    assert_eq!(store.incr("after", window).await.unwrap(), 1);
    assert_eq!(other_node.incr("after", window).await.unwrap(), 2);
    let mut after = other_node.subscribe("news").await.unwrap();
    store.publish("news", "shared").await.unwrap();
    assert_eq!(next_message(&mut after).await, "shared");
}

/// A node may start while Redis is down: it starts degraded and joins Redis when it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_starts_without_redis_and_connects_when_it_comes() {
    let mut redis = OwnRedis::on_free_port();
    let store = FailoverStore::connect(&redis.url()).await.unwrap();
    assert!(store.degraded());
    assert_eq!(store.incr("k", Duration::from_secs(60)).await.unwrap(), 1);
    if !redis.start().await {
        return;
    }
    wait_until("the store connects", || !store.degraded()).await;
    let direct = RedisStore::connect(&redis.url()).await.unwrap();
    assert_eq!(store.incr("k", Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(
        direct.incr("k", Duration::from_secs(60)).await.unwrap(),
        2,
        "on Redis now"
    );
}

/// A URL that is not a Redis URL is a configuration error, not a degraded start.
#[tokio::test]
async fn failover_refuses_a_url_that_is_not_redis() {
    let result = FailoverStore::connect("http://127.0.0.1:6379").await;
    assert!(matches!(result, Err(StoreError::UnsupportedUrl(_))), "{result:?}");
}
