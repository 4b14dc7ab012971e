//! The OpenID Provider Metadata document (OpenID Connect Discovery 1.0 §3, RFC 8414). It
//! lists what this provider serves — every advertised value works, and nothing works that
//! is not advertised (a test checks both directions).

use serde::Serialize;

use crate::client_auth::{all_assertion_algs, request_object_algs, AUTH_METHODS};
use crate::paths;

/// The `display` values of an authorization request (OIDC Core §3.1.2.1): all four are
/// accepted, as the hosted pages fit every screen.
pub const DISPLAY_VALUES: &[&str] = &["page", "popup", "touch", "wap"];

#[derive(Debug, Clone, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub device_authorization_endpoint: String,
    pub pushed_authorization_request_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub display_values_supported: Vec<&'static str>,
    pub ui_locales_supported: Vec<&'static str>,
    pub acr_values_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_object_signing_alg_values_supported: Vec<&'static str>,
    pub request_uri_parameter_supported: bool,
    pub authorization_response_iss_parameter_supported: bool,
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    /// RFC 9126 §5: server-wide, pushing is optional (a client may require it for itself).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.1: the algorithms DPoP proofs may be signed with.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
}

impl ProviderMetadata {
    /// The metadata of a provider at `issuer` (no trailing slash).
    pub fn new(issuer: &str) -> Self {
        let at = |path: &str| format!("{issuer}{path}");
        ProviderMetadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: at(paths::AUTHORIZE),
            token_endpoint: at(paths::TOKEN),
            userinfo_endpoint: at(paths::USERINFO),
            jwks_uri: at(paths::JWKS),
            end_session_endpoint: at(paths::END_SESSION),
            revocation_endpoint: at(paths::REVOKE),
            introspection_endpoint: at(paths::INTROSPECT),
            device_authorization_endpoint: at(paths::DEVICE_AUTHORIZATION),
            pushed_authorization_request_endpoint: at(paths::PAR),
            scopes_supported: crate::claims::SCOPES.to_vec(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec![
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "password",
                crate::DEVICE_CODE_GRANT,
            ],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: vec!["RS256"],
            // Every endpoint where a client authenticates takes every method (public
            // clients, `none`, are refused at introspection).
            token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            token_endpoint_auth_signing_alg_values_supported: all_assertion_algs(),
            revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            revocation_endpoint_auth_signing_alg_values_supported: all_assertion_algs(),
            introspection_endpoint_auth_methods_supported: AUTH_METHODS
                .iter()
                .copied()
                .filter(|m| *m != "none")
                .collect(),
            introspection_endpoint_auth_signing_alg_values_supported: all_assertion_algs(),
            code_challenge_methods_supported: vec!["S256"],
            prompt_values_supported: vec!["none", "login", "consent"],
            claims_supported: [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "sid",
                "at_hash",
            ]
            .into_iter()
            .chain(crate::claims::user_claims())
            .collect(),
            display_values_supported: DISPLAY_VALUES.to_vec(),
            ui_locales_supported: vec!["en", "ko"],
            acr_values_supported: crate::acr::SUPPORTED.to_vec(),
            claims_parameter_supported: true,
            request_parameter_supported: true,
            request_object_signing_alg_values_supported: request_object_algs(),
            request_uri_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            require_pushed_authorization_requests: false,
            dpop_signing_alg_values_supported: crate::dpop::ALGORITHM_NAMES.to_vec(),
        }
    }
}
