//! Brute-force protection for password checks, in the ephemeral store so that every node
//! counts together (Redis `INCR` is atomic across nodes).
//!
//! Per account (keyed by a hash of the normalised e-mail, whether or not the account
//! exists, so the answers reveal nothing): every attempt is counted *before* the password is
//! checked, so a parallel burst gets no more than `login.max_failures` checks in a window.
//! The attempt that reaches the limit and fails locks the account for `login.lockout_secs`,
//! doubling with each further lockout up to `login.max_lockout_secs`. A success clears the
//! count. Per client IP, failures are counted and the IP is throttled past
//! `login.max_failures_per_ip`.
//!
//! While the ephemeral store is degraded (Redis unreachable, each node counting on its
//! own), both limits are divided by the number of live nodes (rounded down, at least 1), so
//! that the cluster as a whole allows no more failures than with Redis: stricter, never
//! looser. Lockouts set then are this node's only, and are forgotten when Redis returns.

use std::sync::Arc;
use std::time::Duration;

use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use crate::cluster::Cluster;
use crate::config::LoginConfig;
use crate::tokens::opaque::sha256_b64;

/// Whole seconds to wait, rounded up: a client told to wait must not be refused again for
/// coming back on time.
fn whole_secs(left: Duration) -> u64 {
    (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
}

/// How long lockout counts are remembered (the back-off resets after a quiet day).
const LOCK_MEMORY: Duration = Duration::from_secs(86_400);

/// Where the lockouts of `account` in the last day are counted (risk assessment reads it).
pub(crate) fn lockouts_key(account: &str) -> String {
    format!("login:lockouts:{account}")
}

/// Why an attempt may not proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account is locked after too many failures; retry after this many seconds.
    Locked(u64),
    /// Throttled (too many attempts in flight for the account, or failures from the IP);
    /// retry after this many seconds.
    RetryAfter(u64),
}

impl Refusal {
    /// Seconds until an attempt may be made again.
    pub fn retry_after(self) -> u64 {
        match self {
            Refusal::Locked(secs) | Refusal::RetryAfter(secs) => secs,
        }
    }
}

/// An admitted attempt: report its outcome with [`Throttle::succeeded`] or
/// [`Throttle::failed`].
#[derive(Debug)]
pub struct Attempt {
    account: String,
    ip: Option<String>,
    /// The account's failure limit when the attempt was admitted.
    max_failures: u32,
    /// This attempt's number in the window (1-based).
    pub number: u64,
}

/// An admitted guess at a short code: give it back with [`Throttle::guess_succeeded`] when
/// it was right; a wrong guess is simply dropped (it stays counted).
#[derive(Debug)]
pub struct Guess {
    keys: Vec<String>,
}

/// Cheap to clone: the MFA verification counts wrong codes on the same counters.
#[derive(Clone)]
pub struct Throttle {
    store: Arc<dyn EphemeralStore>,
    config: LoginConfig,
    cluster: Arc<Cluster>,
}

impl Throttle {
    pub fn new(store: Arc<dyn EphemeralStore>, config: LoginConfig, cluster: Arc<Cluster>) -> Self {
        Throttle {
            store,
            config,
            cluster,
        }
    }

    /// `(max_failures, max_failures_per_ip)` as they apply on this node now: divided among
    /// the live nodes while the store counts per node (with a cluster size at most a
    /// second old, so nodes that just started or just died count at once).
    async fn limits(&self) -> (u32, u32) {
        let (account, ip) = (self.config.max_failures, self.config.max_failures_per_ip);
        if !self.store.degraded() {
            return (account, ip);
        }
        let nodes = self.cluster.live_nodes_fresh(Duration::from_secs(1)).await;
        ((account / nodes).max(1), (ip / nodes).max(1))
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window_secs)
    }

    /// Admits or refuses an attempt on `account` (a normalised e-mail) from `ip`. Both the
    /// account and the IP count the attempt *before* the password is checked, so a parallel
    /// burst gets no more checks than the limits; a success gives its IP count back.
    pub async fn admit(
        &self,
        account: &str,
        ip: Option<&str>,
    ) -> Result<Result<Attempt, Refusal>, StoreError> {
        let account = sha256_b64(account);
        if let Some(left) = self.store.ttl(&format!("login:lock:{account}")).await? {
            return Ok(Err(Refusal::Locked(whole_secs(left))));
        }
        let (max_failures, max_failures_per_ip) = self.limits().await;
        if let Some(ip) = ip {
            let key = format!("login:ip:{ip}");
            let n = self.store.add(&key, 1, self.window()).await?;
            if n > i64::from(max_failures_per_ip) {
                self.store.add(&key, -1, self.window()).await?;
                let left = self.store.ttl(&key).await?.unwrap_or(self.window());
                return Ok(Err(Refusal::RetryAfter(whole_secs(left))));
            }
        }
        let number = self
            .store
            .incr(&format!("login:attempts:{account}"), self.window())
            .await?;
        if number > u64::from(max_failures) {
            // The limit's worth of attempts is in flight or failed: refuse without checking.
            self.give_back_ip(ip).await?;
            let left = match self.store.ttl(&format!("login:lock:{account}")).await? {
                Some(left) => left,
                None => self
                    .store
                    .ttl(&format!("login:attempts:{account}"))
                    .await?
                    .unwrap_or(self.window()),
            };
            return Ok(Err(Refusal::RetryAfter(whole_secs(left))));
        }
        Ok(Ok(Attempt {
            account,
            ip: ip.map(str::to_owned),
            max_failures,
            number,
        }))
    }

    async fn give_back_ip(&self, ip: Option<&str>) -> Result<(), StoreError> {
        if let Some(ip) = ip {
            self.store
                .add(&format!("login:ip:{ip}"), -1, self.window())
                .await?;
        }
        Ok(())
    }

    /// The password was right: the account's count starts over, and the attempt no longer
    /// counts against its IP (many users behind one address log in all day).
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), StoreError> {
        self.store
            .delete(&format!("login:attempts:{}", attempt.account))
            .await?;
        self.give_back_ip(attempt.ip.as_deref()).await
    }

    /// The password was wrong (the attempt stays counted against account and IP). Returns
    /// the lockout now in force, if this failure caused one.
    pub async fn failed(&self, attempt: &Attempt) -> Result<Option<u64>, StoreError> {
        if attempt.number < u64::from(attempt.max_failures) {
            return Ok(None);
        }
        let lockouts = self
            .store
            .incr(&lockouts_key(&attempt.account), LOCK_MEMORY)
            .await?;
        let factor = 1u64
            .checked_shl(u32::try_from(lockouts.saturating_sub(1)).unwrap_or(63))
            .unwrap_or(u64::MAX);
        let secs = self
            .config
            .lockout_secs
            .saturating_mul(factor)
            .min(self.config.max_lockout_secs);
        self.store
            .set(
                &format!("login:lock:{}", attempt.account),
                b"1",
                Duration::from_secs(secs),
            )
            .await?;
        self.store
            .delete(&format!("login:attempts:{}", attempt.account))
            .await?;
        Ok(Some(secs))
    }

    /// Whether a response to this attempt should ask for a CAPTCHA (the front end's hook).
    pub fn captcha_required(&self, attempt: &Attempt) -> bool {
        self.config.captcha_after_failures > 0
            && attempt.number >= u64::from(self.config.captcha_after_failures)
    }

    /// Admits or refuses one guess at a short code of kind `kind` (the device grant's user
    /// codes): counted before the check against the client IP (at most `max_per_ip` in the
    /// window) and against everyone together (at most `max_global`), divided among the live
    /// nodes while the store counts per node. A right guess gives both counts back
    /// ([`Throttle::guess_succeeded`]); a wrong one stays counted.
    pub async fn admit_guess(
        &self,
        kind: &str,
        ip: Option<&str>,
        max_per_ip: u32,
        max_global: u32,
    ) -> Result<Result<Guess, Refusal>, StoreError> {
        let (max_per_ip, max_global) = if self.store.degraded() {
            let nodes = self.cluster.live_nodes_fresh(Duration::from_secs(1)).await;
            ((max_per_ip / nodes).max(1), (max_global / nodes).max(1))
        } else {
            (max_per_ip, max_global)
        };
        let mut keys = vec![(format!("guess:{kind}:all"), max_global)];
        if let Some(ip) = ip {
            keys.push((format!("guess:{kind}:ip:{ip}"), max_per_ip));
        }
        let mut counted: Vec<String> = Vec::new();
        for (key, limit) in keys {
            let n = self.store.add(&key, 1, self.window()).await?;
            counted.push(key.clone());
            if n > i64::from(limit) {
                let left = self.store.ttl(&key).await?.unwrap_or(self.window());
                for key in &counted {
                    self.store.add(key, -1, self.window()).await?;
                }
                return Ok(Err(Refusal::RetryAfter(whole_secs(left))));
            }
        }
        Ok(Ok(Guess { keys: counted }))
    }

    /// The guess was right: it no longer counts (the counts are of wrong guesses).
    pub async fn guess_succeeded(&self, guess: Guess) -> Result<(), StoreError> {
        for key in &guess.keys {
            self.store.add(key, -1, self.window()).await?;
        }
        Ok(())
    }

    /// Forgets an account's failures and lockouts (an operator unlocking it, or a reset).
    pub async fn clear(&self, account: &str) -> Result<(), StoreError> {
        let account = sha256_b64(account);
        for key in ["attempts", "lock", "lockouts"] {
            self.store.delete(&format!("login:{key}:{account}")).await?;
        }
        Ok(())
    }
}
