//! DPoP-bound access tokens at a service (RFC 9449 §7): a token whose `cnf.jkt` names a key
//! is accepted only with a proof of that key for this very request — its method and URI,
//! the token's hash in `ath`, a recent `iat`, a `jti` not seen before — and never as a
//! plain Bearer token. The proof checks are `tessera_proto::dpop`'s, shared with the
//! provider; the `jti` replay cache is this process's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub use tessera_proto::dpop::{challenge, ProofError, ALGORITHM_NAMES, HEADER, TOKEN_TYPE};

/// What a service knows of the request a DPoP-bound token came with.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method (`GET`).
    pub method: &'a str,
    /// The request's URI as the client addressed it (the service's external URL and the
    /// path; query and fragment are ignored).
    pub uri: &'a str,
    /// The request's one `DPoP` header (see [`tessera_proto::dpop::single_proof`]).
    pub proof: Option<&'a str>,
}

/// Proofs already accepted, by key thumbprint and `jti`, until they could no longer be
/// accepted anyway. Bounded: when full, the oldest half of the window is dropped first,
/// and if it is still full a proof is refused rather than forgotten.
pub(crate) struct ReplayCache {
    seen: Mutex<HashMap<String, i64>>,
    capacity: usize,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            seen: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Records `key` until `until` (unix seconds); `false` if it was seen and has not expired.
    pub fn first_use(&self, key: String, until: i64, now: i64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.get(&key).is_some_and(|&expires| expires > now) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires > now);
        }
        if seen.len() >= self.capacity {
            return false;
        }
        seen.insert(key, until);
        true
    }
}

/// How long a proof's `iat` may be old by default.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// Proofs remembered at most by default.
pub(crate) const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_within_its_window_and_the_cache_stays_bounded() {
        let cache = ReplayCache::new(2);
        assert!(cache.first_use("a".into(), 100, 10));
        assert!(!cache.first_use("a".into(), 100, 50));
        assert!(cache.first_use("b".into(), 20, 10));
        // Full: expired entries make room; live ones are never forgotten.
        assert!(!cache.first_use("c".into(), 100, 15));
        assert!(cache.first_use("c".into(), 100, 30));
        assert!(!cache.first_use("a".into(), 100, 30));
    }
}
