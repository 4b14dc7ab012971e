//! The OpenID Provider Metadata document (OpenID Connect Discovery 1.0 §3, RFC 8414).
//! It lists only what this provider really serves; it grows as endpoints land.

use serde::Serialize;

use crate::paths;

#[derive(Debug, Clone, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
}

impl ProviderMetadata {
    /// The metadata of a provider at `issuer` (no trailing slash).
    pub fn new(issuer: &str, signing_algs: Vec<&'static str>) -> Self {
        ProviderMetadata {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{issuer}{}", paths::JWKS),
            // Required members (Discovery §3); the authorization endpoint that serves
            // `code` is added with the OAuth provider.
            response_types_supported: vec!["code"],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: signing_algs,
        }
    }
}
