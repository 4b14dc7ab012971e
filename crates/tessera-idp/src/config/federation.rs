//! `[federation]`: sign-in through upstream OpenID Connect / OAuth 2.0 providers
//! (`[[federation.providers]]`), and its checks at start-up. docs/federation.md explains
//! each key with presets for the common providers.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// A first sign-in through a provider creates a Tessera account (when no account has
    /// the upstream's e-mail address). `false`: only identities already linked sign in.
    pub allow_signup: bool,
    /// Seconds a sign-in at an upstream may take, from the redirect to the callback (the
    /// flow's state, nonce and PKCE verifier live this long, single use).
    pub flow_ttl_secs: u64,
    /// Seconds one request to an upstream (discovery, JWKS, token, userinfo) may take.
    pub http_timeout_secs: u64,
    /// Largest upstream response read, in bytes; a larger one fails the sign-in.
    pub max_response_bytes: usize,
    /// Seconds an upstream's discovery document and key set are cached before they are
    /// fetched again (a key the cache lacks is fetched at once).
    pub metadata_cache_secs: u64,
    /// The upstream providers, one `[[federation.providers]]` table each.
    pub providers: Vec<ProviderConfig>,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            allow_signup: true,
            flow_ttl_secs: 600,
            http_timeout_secs: 10,
            max_response_bytes: 1024 * 1024,
            metadata_cache_secs: 3600,
            providers: Vec::new(),
        }
    }
}

/// How Tessera talks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenID Connect: discovery from `issuer`, an ID token verified against its JWKS.
    Oidc,
    /// OAuth 2.0 only (GitHub, Naver): explicit endpoints, the user from `userinfo_endpoint`.
    Oauth2,
}

/// One upstream provider.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Short name in URLs (`/federation/{id}/start`), the `idp` claim and linked identities:
    /// lower-case letters, digits, `-` and `_`, at most 32.
    pub id: String,
    /// The name on the login page's button.
    pub display_name: String,
    pub kind: ProviderKind,
    /// OpenID Connect: the issuer identifier; its discovery document is fetched from
    /// `{issuer}/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OAuth 2.0: the authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// OAuth 2.0: the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// OAuth 2.0: the user API (GitHub `https://api.github.com/user`); optional with OIDC
    /// (the discovery document's `userinfo_endpoint` is used for missing claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// OAuth 2.0: where the user's addresses are listed when the user API gives none
    /// (GitHub `https://api.github.com/user/emails`: `[{email, primary, verified}]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails_endpoint: Option<String>,
    pub client_id: String,
    /// The client secret; or name the environment variable that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// The environment variable holding the client secret (read at start-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Scopes asked for; `openid` is added for OpenID Connect.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Which upstream claims (or user API fields) hold the subject, e-mail, its
    /// verification and the name.
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Believe the upstream's verified e-mail enough to link to an existing account with
    /// that address without asking the user to prove it. Only for a provider that owns its
    /// addresses (a company's own IdP); never for a social provider.
    #[serde(default)]
    pub trust_email: bool,
    /// The value of `client_secret_env`, read at start-up (never serialised).
    #[serde(skip)]
    pub secret_from_env: Option<Secret>,
}

/// Names of the upstream claims (or user API fields) Tessera reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    /// The stable subject identifier (`sub`; GitHub `id`). Numbers are read as text.
    pub subject: String,
    pub email: String,
    /// A boolean (or `"true"`); absent: the address counts as unverified.
    pub email_verified: String,
    pub name: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            subject: "sub".to_owned(),
            email: "email".to_owned(),
            email_verified: "email_verified".to_owned(),
            name: "name".to_owned(),
        }
    }
}

impl ProviderConfig {
    /// The client secret (from `client_secret_env` once [`FederationConfig::resolve_secrets`]
    /// has run).
    pub fn secret(&self) -> Option<&str> {
        self.client_secret
            .as_ref()
            .or(self.secret_from_env.as_ref())
            .map(Secret::expose)
    }
}

/// Whether `id` is a usable provider id.
pub fn is_provider_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl FederationConfig {
    /// Checks every provider; errors name the key (`federation.providers[1].issuer`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("federation.flow_ttl_secs", self.flow_ttl_secs),
            ("federation.http_timeout_secs", self.http_timeout_secs),
            ("federation.metadata_cache_secs", self.metadata_cache_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be greater than 0"));
            }
        }
        if self.flow_ttl_secs > 3600 {
            return Err(ConfigError::invalid(
                "federation.flow_ttl_secs",
                "must be at most 3600",
            ));
        }
        if self.max_response_bytes < 4096 {
            return Err(ConfigError::invalid(
                "federation.max_response_bytes",
                "must be at least 4096",
            ));
        }
        for (index, provider) in self.providers.iter().enumerate() {
            provider.validate(index)?;
            if self.providers[..index].iter().any(|p| p.id == provider.id) {
                return Err(ConfigError::invalid(
                    format!("federation.providers[{index}].id"),
                    format!("{:?} is used by another provider", provider.id),
                ));
            }
        }
        Ok(())
    }

    /// Reads each `client_secret_env` not yet read from `env`.
    pub fn resolve_secrets(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        for (index, provider) in self.providers.iter_mut().enumerate() {
            let Some(var) = &provider.client_secret_env else {
                continue;
            };
            if provider.secret_from_env.is_some() {
                continue;
            }
            match env.iter().find(|(name, _)| name == var) {
                Some((_, value)) if !value.is_empty() => {
                    provider.secret_from_env = Some(Secret::new(value.clone()));
                }
                _ => {
                    return Err(ConfigError::invalid(
                        format!("federation.providers[{index}].client_secret_env"),
                        format!("names {var}, which is not set"),
                    ))
                }
            }
        }
        Ok(())
    }
}

impl ProviderConfig {
    /// Checks one provider, the `index`-th of the list.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let key = |field: &str| format!("federation.providers[{index}].{field}");
        if !is_provider_id(&self.id) {
            return Err(ConfigError::invalid(
                key("id"),
                "must be 1-32 lower-case letters, digits, `-` or `_`",
            ));
        }
        let name = self.display_name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                key("display_name"),
                "must be 1-64 printable characters",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::invalid(key("client_id"), "must not be empty"));
        }
        match (&self.client_secret, &self.client_secret_env) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    key("client_secret_env"),
                    "cannot be set together with client_secret",
                ))
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    key("client_secret"),
                    "is required (or client_secret_env)",
                ))
            }
            _ => {}
        }
        let endpoints = [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("userinfo_endpoint", &self.userinfo_endpoint),
            ("emails_endpoint", &self.emails_endpoint),
        ];
        for (field, value) in endpoints {
            if let Some(url) = value {
                check_upstream_url(&key(field), url, false)?;
            }
        }
        match self.kind {
            ProviderKind::Oidc => {
                let issuer = self
                    .issuer
                    .as_deref()
                    .ok_or_else(|| ConfigError::invalid(key("issuer"), "is required when kind = \"oidc\""))?;
                check_upstream_url(&key("issuer"), issuer, true)?;
                for (field, value) in endpoints.iter().take(2) {
                    if value.is_some() {
                        return Err(ConfigError::invalid(
                            key(field),
                            "is read from the issuer's discovery document when kind = \"oidc\"",
                        ));
                    }
                }
            }
            ProviderKind::Oauth2 => {
                if self.issuer.is_some() {
                    return Err(ConfigError::invalid(
                        key("issuer"),
                        "is for kind = \"oidc\"; an OAuth 2.0 provider names its endpoints",
                    ));
                }
                for (field, value) in endpoints.iter().take(3) {
                    if value.is_none() {
                        return Err(ConfigError::invalid(
                            key(field),
                            "is required when kind = \"oauth2\"",
                        ));
                    }
                }
            }
        }
        for scope in &self.scopes {
            if scope.is_empty()
                || !scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                return Err(ConfigError::invalid(
                    key("scopes"),
                    format!("{scope:?} is not a scope token (RFC 6749 §3.3)"),
                ));
            }
        }
        let claims = &self.claims;
        for (field, value) in [
            ("subject", &claims.subject),
            ("email", &claims.email),
            ("email_verified", &claims.email_verified),
            ("name", &claims.name),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::invalid(
                    key(&format!("claims.{field}")),
                    "must name a claim",
                ));
            }
        }
        Ok(())
    }
}

/// An upstream URL: https, or http to a loopback host (development and tests). An issuer
/// has no query or fragment (OpenID Connect Discovery §3).
fn check_upstream_url(key: &str, text: &str, issuer: bool) -> Result<(), ConfigError> {
    let url = url::Url::parse(text).map_err(|e| ConfigError::invalid(key, format!("is not a URL ({e})")))?;
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must be an https URL with a host and no credentials",
        ));
    }
    if issuer && (url.query().is_some() || url.fragment().is_some()) {
        return Err(ConfigError::invalid(key, "must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(ConfigError::invalid(
            key,
            "must use https (http is allowed only for a loopback host)",
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
