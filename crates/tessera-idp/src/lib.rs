//! The Tessera identity provider's domain: accounts, tokens and sessions, the OpenID
//! Connect flows, federated sign-in at upstream providers, signing keys, the client
//! registry, passwords, alerts, audit, mail, the cluster's background jobs, configuration
//! and the start of a node.
//!
//! No HTTP server or client lives here (no axum, tower, hyper or reqwest — a test of the
//! `tessera` crate checks it): `tessera-web` serves this crate's [`state::AppState`] and
//! supplies its outbound HTTP client ([`outbound::Outbound`]). Storage is reached only
//! through `tessera-store` traits; there is no SQL here. See docs/architecture.md.

pub mod accounts;
pub mod alerts;
pub mod apikeys;
pub mod audit;
pub mod authz;
pub mod clients;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dpop;
pub mod error;
pub mod federation;
pub mod keys;
pub mod mail;
pub mod mfa;
pub mod node;
pub mod oidc;
pub mod outbound;
pub mod passwords;
pub mod registry;
/// Configuration secrets (the type is `tessera-config`'s, shared with the gateway).
pub mod secret {
    pub use tessera_config::Secret;
}
pub mod state;
pub mod telemetry;
pub mod tokens;

pub use config::Config;
pub use node::{Node, StartError};
