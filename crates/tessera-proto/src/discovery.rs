//! The OpenID Provider Metadata document (OpenID Connect Discovery 1.0 §3, RFC 8414).
//! It lists only what this provider really serves; it grows as endpoints land.

use serde::Serialize;

use crate::paths;

#[derive(Debug, Clone, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
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
            token_endpoint: format!("{issuer}{}", paths::TOKEN),
            revocation_endpoint: format!("{issuer}{}", paths::REVOKE),
            introspection_endpoint: format!("{issuer}{}", paths::INTROSPECT),
            grant_types_supported: vec!["refresh_token"],
            token_endpoint_auth_methods_supported: vec!["client_secret_basic", "client_secret_post", "none"],
            revocation_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            introspection_endpoint_auth_methods_supported: vec!["client_secret_basic", "client_secret_post"],
            // Required members (Discovery §3); the authorization endpoint that serves
            // `code` is added with the OAuth provider.
            response_types_supported: vec!["code"],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: signing_algs,
        }
    }
}
