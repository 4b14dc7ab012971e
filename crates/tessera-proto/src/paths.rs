//! Endpoint paths, shared by the router and the discovery document so the two cannot
//! disagree.

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/.well-known/jwks.json";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
