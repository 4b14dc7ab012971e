//! Verifies Tessera access tokens inside a service, so that every request is authenticated
//! locally and the service keeps working while the identity provider is down.
//!
//! - [`Verifier`]: RFC 9068 JWT access tokens checked against a cached key set (JWKS) that
//!   is refreshed in the background and kept through an outage, a revocation deny-list
//!   pulled from the provider's feed (and optionally pushed through Redis), and a bounded
//!   authentication cache that critical routes can bypass ([`Verifier::verify_uncached`]).
//! - [`Introspector`]: RFC 7662 introspection for opaque tokens, with a timeout, retries,
//!   a circuit breaker and a short positive cache.
//! - [`ApiKeys`]: partner API keys (`X-API-Key: tsk_…`) checked once at the provider,
//!   cached, revoked through the same feed, kept working through an outage.
//! - [`axum`] (feature `axum`, on by default): a tower layer that authenticates the Bearer
//!   token, an [`Authenticated`](crate::axum::Authenticated) extractor, and scope and role
//!   guards answering as RFC 6750 §3 says.
//!
//! ```no_run
//! use std::time::Duration;
//! use tessera_verify::Verifier;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder("https://id.example.com")
//!     .audience("https://api.example.com")
//!     .leeway(Duration::from_secs(30))
//!     .discover()
//!     .await?;
//! let claims = verifier.verify("eyJ0eXAiOiJhdCtqd3QiLC…").await?;
//! println!("{} may {:?}", claims.subject, claims.scopes);
//! # Ok(()) }
//! ```

mod apikeys;
mod cache;
mod claims;
mod denylist;
pub mod dpop;
mod error;
mod fetch;
mod introspect;
mod keys;
mod verifier;

#[cfg(feature = "axum")]
pub mod axum;

use std::future::Future;
use std::pin::Pin;

pub use apikeys::{looks_like_api_key, ApiKeys, ApiKeysBuilder};
pub use claims::Claims;
pub use dpop::DpopRequest;
pub use error::{BuildError, VerifyError};
pub use introspect::{IntrospectError, Introspector};
pub use jsonwebtoken::jwk::JwkSet;
pub use jsonwebtoken::Algorithm;
pub use verifier::{Status, Verifier, VerifierBuilder};

/// The pub/sub channel on which Tessera announces revocations (with Redis).
pub const REVOCATIONS_CHANNEL: &str = "tessera:revocations";

/// A boxed, sendable future (what [`Authenticate`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that turns a presented bearer token into verified [`Claims`]: a [`Verifier`]
/// (local JWT verification) or an [`Introspector`] (opaque tokens). The axum layer takes
/// either.
pub trait Authenticate: Send + Sync + 'static {
    /// Authenticates `token`. `fresh` asks to bypass any cache (critical routes).
    fn authenticate<'a>(&'a self, token: &'a str, fresh: bool) -> BoxFuture<'a, Result<Claims, VerifyError>>;
}

impl Authenticate for Verifier {
    fn authenticate<'a>(&'a self, token: &'a str, fresh: bool) -> BoxFuture<'a, Result<Claims, VerifyError>> {
        Box::pin(async move {
            if fresh {
                self.verify_uncached(token).await
            } else {
                self.verify(token).await
            }
        })
    }
}

impl Authenticate for Introspector {
    fn authenticate<'a>(&'a self, token: &'a str, fresh: bool) -> BoxFuture<'a, Result<Claims, VerifyError>> {
        Box::pin(async move {
            let answer = if fresh {
                self.introspect_uncached(token).await
            } else {
                self.introspect(token).await
            };
            match answer {
                Ok(Some(claims)) => Ok(claims),
                Ok(None) => Err(VerifyError::Inactive),
                Err(err) => Err(VerifyError::Unavailable(err.to_string())),
            }
        })
    }
}

/// The current time in unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// SHA-256 of a token: the key of the caches (a token itself is never kept as a key).
pub(crate) fn token_digest(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
