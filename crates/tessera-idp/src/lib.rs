//! The Tessera identity provider: configuration, signing keys, and the HTTP endpoints of a
//! node. Storage is reached only through `tessera-store` traits; there is no SQL here.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod clients;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod mail;
pub mod node;
pub mod oidc;
pub mod pages;
pub mod passwords;
pub mod registry;
pub mod secret;
pub mod state;
pub mod telemetry;
pub mod tokens;

pub use config::Config;
pub use node::{Node, StartError};
