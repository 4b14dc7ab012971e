//! DPoP at the provider (RFC 9449): the checks of a proof that need state, on top of the
//! stateless ones of `tessera_proto::dpop`.
//!
//! - `jti` replay: each accepted proof's key thumbprint and `jti` are marked in the
//!   ephemeral store (Redis with many nodes) for as long as its `iat` is acceptable, so a
//!   proof is accepted once on any node.
//! - Server nonces (§8, `tokens.dpop.require_nonce`): a nonce is the time window it was
//!   issued in, MACed with a key derived from the master key. Every node can check every
//!   node's nonces without shared state; one is good for its window and the next.
//!
//! Where tokens are bound (the access token's `cnf.jkt`, a public client's refresh tokens,
//! a code's `dpop_jkt`) is the token engine's and the provider's business; this module says
//! which key, if any, a request proved.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::{constant_time, hkdf, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tessera_proto::dpop::{self, Expectations, Proof, ProofError};
use tessera_proto::OAuthErrorCode;
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::OAuthFailure;

/// Bytes of MAC in a nonce (128 bits).
const NONCE_TAG_BYTES: usize = 16;

/// Why a request's DPoP proof is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DpopError {
    #[error("invalid DPoP proof: {0}")]
    Invalid(ProofError),
    /// The proof lacks a valid nonce while nonces are required: retry with this one.
    #[error("a DPoP nonce is required")]
    NonceRequired(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DpopError {
    /// The OAuth error (`invalid_dpop_proof`, `use_dpop_nonce`), with the fresh nonce when
    /// nonces are required.
    pub fn into_failure(self, nonce: Option<String>) -> OAuthFailure {
        match self {
            DpopError::Invalid(why) => {
                OAuthFailure::new(OAuthErrorCode::InvalidDpopProof, "the DPoP proof is invalid")
                    .caused_by(why)
                    .with_dpop_nonce(nonce)
            }
            DpopError::NonceRequired(fresh) => OAuthFailure::new(
                OAuthErrorCode::UseDpopNonce,
                "the DPoP proof must carry the nonce in the DPoP-Nonce header",
            )
            .with_dpop_nonce(Some(fresh)),
            DpopError::Store(err) => err.into(),
        }
    }
}

/// The provider's DPoP checks.
pub struct Dpop {
    config: Arc<Config>,
    issuer: Arc<str>,
    ephemeral: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    nonce_key: hmac::Key,
}

impl Dpop {
    pub fn new(
        config: Arc<Config>,
        ephemeral: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        master: &[u8; 32],
    ) -> Self {
        // HKDF with its own label: independent of every other key derived from the master.
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tessera").extract(master);
        let nonce_key = match prk.expand(&[b"dpop-nonce-v1"], hmac::HMAC_SHA256) {
            Ok(okm) => hmac::Key::from(okm),
            // Unreachable: the requested length (32) is far below HKDF's limit.
            Err(_) => hmac::Key::new(hmac::HMAC_SHA256, master),
        };
        Dpop {
            issuer: config.issuer().into(),
            config,
            ephemeral,
            clock,
            nonce_key,
        }
    }

    /// Whether proofs must carry a server nonce (`tokens.dpop.require_nonce`).
    pub fn requires_nonce(&self) -> bool {
        self.config.tokens.dpop.require_nonce
    }

    /// The nonce to hand out now, when nonces are required (sent in `DPoP-Nonce`).
    pub fn current_nonce(&self) -> Option<String> {
        self.requires_nonce()
            .then(|| self.nonce_for(self.window(self.clock.now())))
    }

    /// Checks the proof a request to `path` (of this provider) carries, if any. `None`
    /// without a proof; the key's thumbprint and the proof otherwise. `access_token` is the
    /// token presented with it (its `ath` is checked).
    pub async fn check(
        &self,
        proof: Option<&str>,
        method: &str,
        path: &str,
        access_token: Option<&str>,
    ) -> Result<Option<Proof>, DpopError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let now = self.clock.now();
        let leeway = i64::try_from(self.config.tokens.leeway_secs).unwrap_or(30);
        let max_age = i64::try_from(self.config.tokens.dpop.proof_max_age_secs).unwrap_or(60);
        let uri = format!("{}{path}", self.issuer);
        let verified = dpop::verify(
            proof,
            &Expectations {
                method,
                uri: &uri,
                now,
                max_age_secs: max_age,
                leeway_secs: leeway,
                access_token,
            },
        )
        .map_err(DpopError::Invalid)?;
        if self.requires_nonce()
            && !verified
                .nonce
                .as_deref()
                .is_some_and(|n| self.nonce_is_valid(n, now))
        {
            return Err(DpopError::NonceRequired(self.nonce_for(self.window(now))));
        }
        // Last: a proof refused above may be sent again once fixed... with a new jti.
        let ttl = Duration::from_secs(u64::try_from(max_age.saturating_add(leeway)).unwrap_or(90) + 1);
        let key = format!("dpop:jti:{}", verified.replay_key());
        if !self.ephemeral.set_if_absent(&key, b"1", ttl).await? {
            return Err(DpopError::Invalid(ProofError::Replayed));
        }
        Ok(Some(verified))
    }

    fn window(&self, now: i64) -> i64 {
        let lifetime = i64::try_from(self.config.tokens.dpop.nonce_lifetime_secs)
            .unwrap_or(300)
            .max(1);
        now.div_euclid(lifetime)
    }

    fn nonce_for(&self, window: i64) -> String {
        let tag = hmac::sign(&self.nonce_key, &window.to_be_bytes());
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag.as_ref()[..NONCE_TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn nonce_is_valid(&self, nonce: &str, now: i64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Ok(window_bytes) = <[u8; 8]>::try_from(bytes.get(..8).unwrap_or_default()) else {
            return false;
        };
        let window = i64::from_be_bytes(window_bytes);
        let current = self.window(now);
        if window != current && window != current - 1 {
            return false;
        }
        let expected = hmac::sign(&self.nonce_key, &window_bytes);
        bytes.len() == 8 + NONCE_TAG_BYTES
            && constant_time::verify_slices_are_equal(&bytes[8..], &expected.as_ref()[..NONCE_TAG_BYTES])
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use tessera_store::ephemeral::MemoryStore;

    fn dpop(master: u8, clock: Arc<ManualClock>) -> Dpop {
        let mut config = Config::default();
        config.tokens.dpop.require_nonce = true;
        Dpop::new(
            Arc::new(config),
            Arc::new(MemoryStore::new()),
            clock,
            &[master; 32],
        )
    }

    #[test]
    fn nonces_last_their_window_and_the_next_and_only_for_the_same_master_key() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let node_a = dpop(1, clock.clone());
        let node_b = dpop(1, clock.clone());
        let other = dpop(2, clock.clone());
        let nonce = node_a.current_nonce().unwrap();
        assert!(node_b.nonce_is_valid(&nonce, 1_000_000));
        assert!(!other.nonce_is_valid(&nonce, 1_000_000));
        assert!(node_b.nonce_is_valid(&nonce, 1_000_000 + 300));
        assert!(!node_b.nonce_is_valid(&nonce, 1_000_000 + 600));
        let mut tampered = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        tampered[3] ^= 1;
        assert!(!node_b.nonce_is_valid(&URL_SAFE_NO_PAD.encode(tampered), 1_000_000));
        for junk in ["", "!!", "AAAA", &"A".repeat(200)] {
            assert!(!node_b.nonce_is_valid(junk, 1_000_000));
        }
    }
}
