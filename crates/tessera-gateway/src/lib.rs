//! Tessera's API gateway (R17): a reverse proxy that verifies access tokens once at the edge
//! with [`tessera_verify`], enforces each route's requirements (scopes, roles, rate limits,
//! CORS), and forwards the caller's identity to upstream services in `X-Auth-*` headers.
//!
//! A request never waits on the identity provider: tokens are verified against the cached
//! key set, revocations arrive through the background deny-list feed, and both are kept
//! through a provider outage (R16, R18). Instances share no state, so any number run side by
//! side behind a load balancer. See `docs/gateway.md`.
//!
//! ```no_run
//! use tessera_gateway::{Gateway, GatewayConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GatewayConfig::load(Some("gateway.toml".as_ref()), std::env::vars())?;
//! let gateway = Gateway::bind(config).await?;
//! println!("listening on {}", gateway.local_addr()?);
//! gateway.serve(std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod config;

mod auth;
mod cors;
mod headers;
mod metrics;
mod proxy;
mod ratelimit;
mod response;
mod routes;
mod server;

/// The request-head checks, for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::headers::path_is_acceptable;
    pub use crate::routes::prefix_matches;

    /// The access token the gateway would verify and whether it came with the `DPoP`
    /// scheme (else `Bearer`), or `None` when it refuses the header.
    pub fn access_token(headers: &http::HeaderMap) -> Option<(bool, &str)> {
        crate::auth::access_token(headers).ok()
    }
}

pub use config::{ConfigError, CorsConfig, GatewayConfig, LogFormat, RateLimitConfig, RouteConfig};
pub use server::{run, Gateway, GatewayError};
