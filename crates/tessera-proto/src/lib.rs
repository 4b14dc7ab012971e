//! OAuth 2.0 / OpenID Connect wire types and protocol rules for Tessera. Pure data and
//! functions: no I/O, no HTTP framework.

pub mod acr;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod net;
pub mod paths;
pub mod problem;

pub use error::{OAuthError, OAuthErrorCode};
pub use problem::Problem;

/// The grant type of the device authorization grant (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
