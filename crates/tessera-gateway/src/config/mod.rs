//! Configuration of `tessera gateway`: one TOML file plus `TESSERA_GATEWAY_*` environment
//! overrides, read into one struct with one source of defaults, validated at start-up.
//!
//! Every scalar key is listed in [`KEYS`] with its environment variable, and every key that
//! only the file can set (lists and the `[[routes]]` tables) in [`FILE_ONLY_KEYS`];
//! `docs/gateway.md` documents each one, and a test keeps the three in step. An unknown key
//! or an invalid value is an error that names the key — never a silent default.
//!
//! The loading machinery is `tessera-config`'s, shared with the identity provider; the
//! routes (`[[routes]]`, their rate limits and CORS policies) and their checks are in
//! `routes.rs`, the key tables in `keys.rs`.

mod keys;
mod routes;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tessera_config::{one_line, Layers};
pub use tessera_config::{ConfigError, LogConfig, LogFormat, ValueKind};

pub use keys::{FILE_ONLY_KEYS, KEYS};
pub(crate) use routes::{normalize_prefix, parse_upstream};
use routes::{valid_segment, validate_route};
pub use routes::{CorsConfig, RateLimitConfig, RouteConfig};

/// An address range of trusted proxies: an IP, or `IP/bits`.
pub(crate) use tessera_proto::net::Cidr;

/// The whole configuration of a gateway instance.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address the gateway's HTTP server binds (HTTP/1.1 and cleartext HTTP/2).
    pub listen: SocketAddr,
    /// The identity provider's issuer identifier: tokens must carry exactly this `iss`, and
    /// `{issuer}/.well-known/openid-configuration` names the key set. Required.
    pub issuer: Option<String>,
    /// The audience every token's `aud` must contain; defaults to the issuer (Tessera's
    /// default `tokens.audience`).
    pub audience: Option<String>,
    /// The realm named in `WWW-Authenticate` challenges.
    pub realm: String,
    /// Path prefix of the gateway's own endpoints (`/healthz`, `/readyz`, `/metrics`).
    pub admin_prefix: String,
    /// Addresses (IPs or CIDR ranges) of load balancers whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<String>,
    /// Seconds between polls of the provider's revocation feed.
    pub revocation_poll_secs: u64,
    /// Clock skew tolerated for `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    /// The external base URL clients address the gateway by (`https://api.example.com`),
    /// against which DPoP proofs' `htu` is checked (RFC 9449 §4.3). Unset: DPoP-bound
    /// tokens are refused (a proof is only as good as the URL it is checked against).
    pub public_url: Option<String>,
    /// Seconds SIGTERM waits for in-flight requests before the process exits anyway.
    pub shutdown_grace_secs: u64,
    pub auth_cache: AuthCacheConfig,
    pub api_keys: ApiKeysConfig,
    pub log: LogConfig,
    /// The routes, `[[routes]]` tables.
    pub routes: Vec<RouteConfig>,
}

/// `[auth_cache]`: verified tokens remembered by their SHA-256 (see tessera-verify).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthCacheConfig {
    pub enabled: bool,
    /// Entries kept at most.
    pub capacity: usize,
}

/// `[api_keys]`: how routes with `api_keys = true` check partner API keys at the provider
/// (once per key; then from memory, see tessera-verify's `ApiKeys`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// The confidential client the gateway authenticates as at the check endpoint.
    pub client_id: Option<String>,
    pub client_secret: Option<tessera_config::Secret>,
    /// The check endpoint; default `{issuer}/oauth2/api-keys/check`.
    pub check_url: Option<String>,
    /// Seconds a key's answer is served before it is checked again in the background.
    pub cache_ttl_secs: u64,
    /// Keys remembered at most.
    pub capacity: usize,
    /// Key ids that get their own `key_id` label in `tessera_gateway_api_key_requests_total`
    /// (every other key counts as `other`, so labels stay bounded).
    pub metric_keys: Vec<String>,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig {
            client_id: None,
            client_secret: None,
            check_url: None,
            cache_ttl_secs: 300,
            capacity: 10_000,
            metric_keys: Vec::new(),
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            issuer: None,
            audience: None,
            realm: "api".to_owned(),
            admin_prefix: String::new(),
            trusted_proxies: Vec::new(),
            revocation_poll_secs: 5,
            leeway_secs: 30,
            public_url: None,
            shutdown_grace_secs: 30,
            auth_cache: AuthCacheConfig::default(),
            api_keys: ApiKeysConfig::default(),
            log: LogConfig::default(),
            routes: Vec::new(),
        }
    }
}

impl Default for AuthCacheConfig {
    fn default() -> Self {
        AuthCacheConfig {
            enabled: true,
            capacity: 10_000,
        }
    }
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, reason)
}

impl GatewayConfig {
    /// Reads the configuration: defaults, then the TOML file (if any), then every
    /// `TESSERA_GATEWAY_*` variable of [`KEYS`] found in `env`; then validates it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<GatewayConfig, ConfigError> {
        let (text, file_name) = match file {
            Some(path) => (tessera_config::read_file(path)?, Some(path.display().to_string())),
            None => (String::new(), None),
        };
        GatewayConfig::parse(&text, file_name.as_deref(), env)
    }

    /// Like [`GatewayConfig::load`] from the text of a file (named `file_name` in errors).
    pub fn parse(
        text: &str,
        file_name: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<GatewayConfig, ConfigError> {
        let mut layers = Layers::read(text, file_name, env, KEYS)?;
        // Each route is read on its own, so an error names the route it is in.
        let routes = match layers.table.remove("routes") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items,
            Some(_) => return Err(layers.parse_error("`routes` must be an array of tables ([[routes]])")),
        };
        let (mut config, layers) = layers.into_config::<GatewayConfig>()?;
        for (index, item) in routes.into_iter().enumerate() {
            if !item.is_table() {
                return Err(layers.parse_error(format!("`routes[{index}]` must be a table")));
            }
            let route: RouteConfig = item.try_into().map_err(|e: toml::de::Error| {
                layers.parse_error(format!("in `routes[{index}]`: {}", one_line(&e.to_string())))
            })?;
            config.routes.push(route);
        }
        config.validate().map_err(|err| layers.attribute(err))?;
        Ok(config)
    }

    /// The issuer, without a trailing `/` (as Tessera writes it into `iss`).
    pub fn issuer(&self) -> String {
        self.issuer
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The required audience: configured, or the issuer.
    pub fn audience(&self) -> String {
        self.audience.clone().unwrap_or_else(|| self.issuer())
    }

    /// Checks every value that the types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.issuer {
            None => {
                return Err(invalid(
                    "issuer",
                    "is required: the identity provider's issuer URL (TESSERA_GATEWAY_ISSUER)",
                ))
            }
            Some(issuer) => validate_issuer(issuer)?,
        }
        if let Some(audience) = &self.audience {
            if audience.trim().is_empty() {
                return Err(invalid("audience", "must not be empty"));
            }
        }
        if self.realm.is_empty()
            || !self
                .realm
                .chars()
                .all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\'))
        {
            return Err(invalid(
                "realm",
                "must be printable ASCII without quotes or backslashes",
            ));
        }
        if !self.admin_prefix.is_empty() {
            let ok = self.admin_prefix.starts_with('/')
                && !self.admin_prefix.ends_with('/')
                && self.admin_prefix[1..].split('/').all(valid_segment);
            if !ok {
                return Err(invalid(
                    "admin_prefix",
                    "must be empty or a path such as /_gateway (no trailing slash)",
                ));
            }
        }
        for (index, entry) in self.trusted_proxies.iter().enumerate() {
            Cidr::parse(entry).map_err(|reason| invalid(format!("trusted_proxies[{index}]"), reason))?;
        }
        if self.revocation_poll_secs == 0 {
            return Err(invalid("revocation_poll_secs", "must be greater than 0"));
        }
        if let Some(url) = &self.public_url {
            let parsed =
                url::Url::parse(url).map_err(|_| invalid("public_url", "must be an absolute http(s) URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() || parsed.query().is_some()
            {
                return Err(invalid(
                    "public_url",
                    "must be an absolute http(s) URL without a query",
                ));
            }
        }
        if self.leeway_secs > 300 {
            return Err(invalid("leeway_secs", "must be at most 300"));
        }
        if self.auth_cache.enabled && self.auth_cache.capacity == 0 {
            return Err(invalid(
                "auth_cache.capacity",
                "must be greater than 0 (set auth_cache.enabled = false to turn the cache off)",
            ));
        }
        self.validate_api_keys()?;
        self.log.validate()?;
        if self.routes.is_empty() {
            return Err(invalid("routes", "needs at least one [[routes]] table"));
        }
        let mut names = HashSet::new();
        let mut matches = HashSet::new();
        for (index, route) in self.routes.iter().enumerate() {
            validate_route(index, route)?;
            let key = |field: &str| format!("routes[{index}].{field}");
            if !names.insert(route.display_name()) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} is used by another route", route.display_name()),
                ));
            }
            let host = route.host.as_deref().map(str::to_ascii_lowercase);
            if !matches.insert((host, normalize_prefix(&route.path_prefix))) {
                return Err(invalid(
                    key("path_prefix"),
                    "another route has the same host and path_prefix",
                ));
            }
        }
        Ok(())
    }
}

impl GatewayConfig {
    fn validate_api_keys(&self) -> Result<(), ConfigError> {
        let keys = &self.api_keys;
        if let Some(index) = self.routes.iter().position(|r| r.api_keys) {
            if keys.client_id.as_deref().is_none_or(str::is_empty) || keys.client_secret.is_none() {
                return Err(invalid(
                    "api_keys.client_id",
                    format!(
                        "and api_keys.client_secret are required: routes[{index}] accepts API keys, \
                         which the gateway checks at the provider as a confidential client"
                    ),
                ));
            }
        }
        if keys.client_id.as_deref().is_some_and(|id| id.contains(':')) {
            return Err(invalid("api_keys.client_id", "must not contain `:`"));
        }
        if let Some(url) = &keys.check_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| invalid("api_keys.check_url", format!("is not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(
                    "api_keys.check_url",
                    "must be an https:// (or http://) URL",
                ));
            }
        }
        if keys.cache_ttl_secs == 0 || keys.cache_ttl_secs > 86_400 {
            return Err(invalid("api_keys.cache_ttl_secs", "must be between 1 and 86400"));
        }
        if keys.capacity == 0 {
            return Err(invalid("api_keys.capacity", "must be greater than 0"));
        }
        if keys.metric_keys.len() > 100 {
            return Err(invalid(
                "api_keys.metric_keys",
                "at most 100 key ids (labels must stay few)",
            ));
        }
        if let Some(bad) = keys.metric_keys.iter().find(|id| {
            id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        }) {
            return Err(invalid(
                "api_keys.metric_keys",
                format!("{bad:?} is not a key id"),
            ));
        }
        Ok(())
    }
}

fn validate_issuer(issuer: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(issuer).map_err(|e| invalid("issuer", format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid("issuer", "must be an https:// (or http://) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("issuer", "must not have a query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
