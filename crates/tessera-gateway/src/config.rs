//! Configuration of `tessera gateway`: one TOML file plus `TESSERA_GATEWAY_*` environment
//! overrides, read into one struct with one source of defaults, validated at start-up.
//!
//! Every scalar key is listed in [`KEYS`] with its environment variable, and every key that
//! only the file can set (lists and the `[[routes]]` tables) in [`FILE_ONLY_KEYS`];
//! `docs/gateway.md` documents each one, and a test keeps the three in step. An unknown key
//! or an invalid value is an error that names the key — never a silent default.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

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
    /// Seconds SIGTERM waits for in-flight requests before the process exits anyway.
    pub shutdown_grace_secs: u64,
    pub auth_cache: AuthCacheConfig,
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

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,tessera_gateway=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// One `[[routes]]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The route's name in metrics and logs; defaults to `host` + `path_prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only requests for this host (the `Host` header or HTTP/2 `:authority`, without port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Requests whose path is this prefix or lies below it (segment-wise).
    pub path_prefix: String,
    /// `http://host:port[/base]` of the upstream instances, used round-robin.
    pub upstreams: Vec<String>,
    /// No token required (and no identity forwarded).
    #[serde(default)]
    pub public: bool,
    /// Scopes the token must grant, all of them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Roles of which the caller must hold at least one.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Remove `path_prefix` from the path before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Seconds to wait for the upstream's response headers before answering 504.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Seconds an upstream is skipped after a connection failure or a 502/503/504.
    #[serde(default = "default_unhealthy_secs")]
    pub unhealthy_secs: u64,
    /// `false`: every request is verified in full (critical routes).
    #[serde(default = "yes")]
    pub auth_cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
}

/// `rate_limit = { per_subject = N, per_ip = N, window_secs = S }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per window per token subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_subject: Option<u64>,
    /// Requests per window per client IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<u64>,
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
}

/// `cors = { allow_origins = [...], ... }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    pub allow_origins: Vec<String>,
    #[serde(default = "default_cors_methods")]
    pub allow_methods: Vec<String>,
    #[serde(default = "default_cors_headers")]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}
fn default_unhealthy_secs() -> u64 {
    10
}
fn default_window_secs() -> u64 {
    60
}
fn default_max_age_secs() -> u64 {
    600
}
fn yes() -> bool {
    true
}
fn default_cors_methods() -> Vec<String> {
    ["GET", "HEAD", "POST"].map(String::from).to_vec()
}
fn default_cors_headers() -> Vec<String> {
    ["authorization", "content-type"].map(String::from).to_vec()
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
            shutdown_grace_secs: 30,
            auth_cache: AuthCacheConfig::default(),
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

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

impl RouteConfig {
    /// A route with the defaults, for `path_prefix` on `upstreams` (for code that builds a
    /// configuration, such as tests).
    pub fn new(path_prefix: &str, upstreams: &[&str]) -> RouteConfig {
        RouteConfig {
            name: None,
            host: None,
            path_prefix: path_prefix.to_owned(),
            upstreams: upstreams.iter().map(|u| u.to_string()).collect(),
            public: false,
            scopes: Vec::new(),
            roles: Vec::new(),
            strip_prefix: false,
            timeout_secs: default_timeout_secs(),
            unhealthy_secs: default_unhealthy_secs(),
            auth_cache: true,
            rate_limit: None,
            cors: None,
        }
    }

    /// The name used in metrics and logs.
    pub fn display_name(&self) -> String {
        match (&self.name, &self.host) {
            (Some(name), _) => name.clone(),
            (None, Some(host)) => format!("{host}{}", self.path_prefix),
            (None, None) => self.path_prefix.clone(),
        }
    }
}

impl CorsConfig {
    /// A policy for `origins` with the default methods, headers and max age.
    pub fn new(origins: &[&str]) -> CorsConfig {
        CorsConfig {
            allow_origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_methods: default_cors_methods(),
            allow_headers: default_cors_headers(),
            expose_headers: Vec::new(),
            allow_credentials: false,
            max_age_secs: default_max_age_secs(),
        }
    }
}

/// How an environment variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Str,
    Int,
    Bool,
}

/// Every scalar key (dotted path) with its environment variable and value kind.
pub const KEYS: &[(&str, &str, ValueKind)] = &[
    ("listen", "TESSERA_GATEWAY_LISTEN", ValueKind::Str),
    ("issuer", "TESSERA_GATEWAY_ISSUER", ValueKind::Str),
    ("audience", "TESSERA_GATEWAY_AUDIENCE", ValueKind::Str),
    ("realm", "TESSERA_GATEWAY_REALM", ValueKind::Str),
    ("admin_prefix", "TESSERA_GATEWAY_ADMIN_PREFIX", ValueKind::Str),
    (
        "revocation_poll_secs",
        "TESSERA_GATEWAY_REVOCATION_POLL_SECS",
        ValueKind::Int,
    ),
    ("leeway_secs", "TESSERA_GATEWAY_LEEWAY_SECS", ValueKind::Int),
    (
        "shutdown_grace_secs",
        "TESSERA_GATEWAY_SHUTDOWN_GRACE_SECS",
        ValueKind::Int,
    ),
    (
        "auth_cache.enabled",
        "TESSERA_GATEWAY_AUTH_CACHE__ENABLED",
        ValueKind::Bool,
    ),
    (
        "auth_cache.capacity",
        "TESSERA_GATEWAY_AUTH_CACHE__CAPACITY",
        ValueKind::Int,
    ),
    ("log.format", "TESSERA_GATEWAY_LOG__FORMAT", ValueKind::Str),
    ("log.level", "TESSERA_GATEWAY_LOG__LEVEL", ValueKind::Str),
];

/// Keys only the file can set: lists, and the keys of each `[[routes]]` table
/// (`routes.x` is key `x` of a route).
pub const FILE_ONLY_KEYS: &[&str] = &[
    "trusted_proxies",
    "routes.name",
    "routes.host",
    "routes.path_prefix",
    "routes.upstreams",
    "routes.public",
    "routes.scopes",
    "routes.roles",
    "routes.strip_prefix",
    "routes.timeout_secs",
    "routes.unhealthy_secs",
    "routes.auth_cache",
    "routes.rate_limit.per_subject",
    "routes.rate_limit.per_ip",
    "routes.rate_limit.window_secs",
    "routes.cors.allow_origins",
    "routes.cors.allow_methods",
    "routes.cors.allow_headers",
    "routes.cors.expose_headers",
    "routes.cors.allow_credentials",
    "routes.cors.max_age_secs",
];

/// A configuration that cannot be used. The message names the key and the source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid configuration in {source_name}: {message}")]
    Parse { source_name: String, message: String },
    #[error("invalid configuration: `{key}` {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl GatewayConfig {
    /// Reads the configuration: defaults, then the TOML file (if any), then every
    /// `TESSERA_GATEWAY_*` variable of [`KEYS`] found in `env`; then validates it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<GatewayConfig, ConfigError> {
        let (text, file_name) = match file {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
                Some(path.display().to_string()),
            ),
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
        let file_source = file_name.unwrap_or("the configuration");
        let mut table = toml::from_str::<toml::Table>(text).map_err(|e| ConfigError::Parse {
            source_name: file_source.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        let mut from_env = Vec::new();
        for (name, value) in env {
            let Some(&(path, _, kind)) = KEYS.iter().find(|(_, var, _)| *var == name) else {
                continue;
            };
            let value = env_value(&name, path, kind, value)?;
            set_path(&mut table, path, value);
            from_env.push(name);
        }
        let source_name = match (file_name, from_env.is_empty()) {
            (Some(path), true) => path.to_owned(),
            (Some(path), false) => format!("{path} (with {})", from_env.join(", ")),
            (None, false) => from_env.join(", "),
            (None, true) => "defaults".to_owned(),
        };
        let parse_error = |message: String| ConfigError::Parse {
            source_name: source_name.clone(),
            message,
        };
        // Each route is read on its own, so an error names the route it is in.
        let routes = match table.remove("routes") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items,
            Some(_) => {
                return Err(parse_error(
                    "`routes` must be an array of tables ([[routes]])".to_owned(),
                ))
            }
        };
        let mut config: GatewayConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse_error(one_line(&e.to_string())))?;
        for (index, item) in routes.into_iter().enumerate() {
            if !item.is_table() {
                return Err(parse_error(format!("`routes[{index}]` must be a table")));
            }
            let route: RouteConfig = item.try_into().map_err(|e: toml::de::Error| {
                parse_error(format!("in `routes[{index}]`: {}", one_line(&e.to_string())))
            })?;
            config.routes.push(route);
        }
        config.validate().map_err(|err| match err {
            // Say where an invalid value came from when it was an environment variable.
            ConfigError::Invalid { key, reason } => match KEYS.iter().find(|(path, _, _)| *path == key) {
                Some((_, var, _)) if from_env.iter().any(|name| name == var) => ConfigError::Invalid {
                    key,
                    reason: format!("{reason} (from {var})"),
                },
                _ => ConfigError::Invalid { key, reason },
            },
            other => other,
        })?;
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
        if self.leeway_secs > 300 {
            return Err(invalid("leeway_secs", "must be at most 300"));
        }
        if self.auth_cache.enabled && self.auth_cache.capacity == 0 {
            return Err(invalid(
                "auth_cache.capacity",
                "must be greater than 0 (set auth_cache.enabled = false to turn the cache off)",
            ));
        }
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
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

/// `path_prefix` as matched: without a trailing `/` (except the root).
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
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

/// A path segment we accept in configured prefixes: unreserved characters and a few
/// sub-delimiters; no dot segments, no percent-encoding.
fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b))
}

fn valid_token(text: &str) -> bool {
    // RFC 9110 §5.6.2 token.
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn validate_route(index: usize, route: &RouteConfig) -> Result<(), ConfigError> {
    let key = |field: &str| format!("routes[{index}].{field}");
    if let Some(name) = &route.name {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b));
        if !ok {
            return Err(invalid(key("name"), "must be 1-64 of letters, digits, - _ . / :"));
        }
    }
    if let Some(host) = &route.host {
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(invalid(
                key("host"),
                "must be a host name such as api.example.com (no port, no scheme)",
            ));
        }
    }
    let prefix = &route.path_prefix;
    let prefix_ok = prefix.starts_with('/')
        && (prefix == "/" || prefix[1..].trim_end_matches('/').split('/').all(valid_segment));
    if !prefix_ok {
        return Err(invalid(
            key("path_prefix"),
            "must be a path starting with / without dot segments, empty segments, query or percent-encoding",
        ));
    }
    if route.upstreams.is_empty() {
        return Err(invalid(key("upstreams"), "needs at least one upstream URL"));
    }
    for (i, upstream) in route.upstreams.iter().enumerate() {
        parse_upstream(upstream)
            .map_err(|reason| invalid(format!("routes[{index}].upstreams[{i}]"), reason))?;
    }
    if route.public && !route.scopes.is_empty() {
        return Err(invalid(key("scopes"), "must be empty on a public route"));
    }
    if route.public && !route.roles.is_empty() {
        return Err(invalid(key("roles"), "must be empty on a public route"));
    }
    for (field, list) in [("scopes", &route.scopes), ("roles", &route.roles)] {
        if list.iter().any(|item| {
            item.is_empty()
                || !item
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        }) {
            return Err(invalid(
                key(field),
                "entries must be non-empty printable ASCII without spaces or quotes",
            ));
        }
    }
    if route.timeout_secs == 0 || route.timeout_secs > 3600 {
        return Err(invalid(key("timeout_secs"), "must be between 1 and 3600"));
    }
    if route.unhealthy_secs > 3600 {
        return Err(invalid(key("unhealthy_secs"), "must be at most 3600"));
    }
    if let Some(limit) = &route.rate_limit {
        if limit.window_secs == 0 || limit.window_secs > 86_400 {
            return Err(invalid(
                key("rate_limit.window_secs"),
                "must be between 1 and 86400",
            ));
        }
        if limit.per_subject.is_none() && limit.per_ip.is_none() {
            return Err(invalid(key("rate_limit"), "needs per_subject, per_ip or both"));
        }
        if limit.per_subject == Some(0) {
            return Err(invalid(key("rate_limit.per_subject"), "must be greater than 0"));
        }
        if limit.per_ip == Some(0) {
            return Err(invalid(key("rate_limit.per_ip"), "must be greater than 0"));
        }
        if route.public && limit.per_subject.is_some() {
            return Err(invalid(
                key("rate_limit.per_subject"),
                "cannot apply to a public route (it has no subject); use per_ip",
            ));
        }
    }
    if let Some(cors) = &route.cors {
        validate_cors(index, cors)?;
    }
    Ok(())
}

fn validate_cors(index: usize, cors: &CorsConfig) -> Result<(), ConfigError> {
    let key = |field: &str| format!("routes[{index}].cors.{field}");
    if cors.allow_origins.is_empty() {
        return Err(invalid(key("allow_origins"), "needs at least one origin"));
    }
    for origin in &cors.allow_origins {
        if origin == "*" {
            if cors.allow_credentials {
                return Err(invalid(
                    key("allow_origins"),
                    "must list origins when allow_credentials = true (never `*` with credentials)",
                ));
            }
            continue;
        }
        if !valid_origin(origin) {
            return Err(invalid(
                key("allow_origins"),
                format!("{origin:?} is not an origin such as https://app.example.com (scheme, host, optional port; no path)"),
            ));
        }
    }
    if cors.allow_methods.is_empty() || !cors.allow_methods.iter().all(|m| valid_token(m)) {
        return Err(invalid(
            key("allow_methods"),
            "must be HTTP method names such as GET",
        ));
    }
    for (field, list) in [
        ("allow_headers", &cors.allow_headers),
        ("expose_headers", &cors.expose_headers),
    ] {
        if !list.iter().all(|h| valid_token(h) && h != "*") {
            return Err(invalid(key(field), "must be header names (no wildcard)"));
        }
    }
    if cors.max_age_secs > 86_400 {
        return Err(invalid(key("max_age_secs"), "must be at most 86400"));
    }
    Ok(())
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`.
fn valid_origin(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.origin().ascii_serialization() == origin
}

/// An upstream base: `http://host:port` plus an optional path. https is not spoken to
/// upstreams (they sit on the private network; see docs/gateway.md).
pub(crate) struct UpstreamUrl {
    /// `host:port`.
    pub authority: String,
    /// The base path without a trailing `/` (empty for none).
    pub base_path: String,
}

pub(crate) fn parse_upstream(text: &str) -> Result<UpstreamUrl, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "{text:?} must be an http:// URL (upstreams are spoken to in cleartext on the private network)"
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(format!("{text:?} has no host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(UpstreamUrl {
        authority: format!("{host}:{port}"),
        base_path: url.path().trim_end_matches('/').to_owned(),
    })
}

/// An address range of trusted proxies: an IP, or `IP/bits`.
pub(crate) use tessera_proto::net::Cidr;

fn env_value(name: &str, path: &str, kind: ValueKind, value: String) -> Result<toml::Value, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        source_name: name.to_owned(),
        message,
    };
    Ok(match kind {
        ValueKind::Str => toml::Value::String(value),
        ValueKind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => {
                return Err(parse_error(format!(
                    "`{path}` expects true or false, got {value:?}"
                )))
            }
        },
        ValueKind::Int => match value.trim().parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => {
                return Err(parse_error(format!(
                    "`{path}` expects a whole number, got {value:?}"
                )))
            }
        },
    })
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_owned(), value);
        }
        Some((section, rest)) => {
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const MINIMAL: &str = r#"
issuer = "https://id.example.com"

[[routes]]
path_prefix = "/orders"
upstreams = ["http://127.0.0.1:9001"]
"#;

    fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse(text, Some("gateway.toml"), Vec::new())
    }

    fn error(text: &str) -> String {
        let err = parse(text).unwrap_err().to_string();
        assert!(!err.contains('\n'), "not one line: {err}");
        err
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(config.issuer(), "https://id.example.com");
        assert_eq!(config.audience(), "https://id.example.com");
        assert_eq!(config.revocation_poll_secs, 5);
        assert_eq!(config.leeway_secs, 30);
        assert!(config.auth_cache.enabled);
        let route = &config.routes[0];
        assert!(!route.public);
        assert_eq!(route.timeout_secs, 30);
        assert_eq!(route.unhealthy_secs, 10);
        assert!(route.auth_cache);
        assert!(!route.strip_prefix);
        assert_eq!(route.display_name(), "/orders");
    }

    #[test]
    fn unknown_keys_are_named_even_inside_routes() {
        let err = error(&format!("{MINIMAL}lissten = 1\n"));
        assert!(err.contains("lissten"), "{err}");
        let err = error(&format!("{MINIMAL}upstream = [\"http://x\"]\n"));
        assert!(err.contains("routes[0]") && err.contains("upstream"), "{err}");
        let err = error(&format!(
            "{MINIMAL}rate_limit = {{ per_ip = 1, per_second = 2 }}\n"
        ));
        assert!(err.contains("routes[0]") && err.contains("per_second"), "{err}");
        let err = error(&format!("{MINIMAL}cors = {{ allow_origin = [\"https://a\"] }}\n"));
        assert!(err.contains("allow_origin"), "{err}");
        let err = error("issuer = \"https://id\"\n[auth_cache]\nsize = 3\n");
        assert!(err.contains("size"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let cases: &[(&str, &str)] = &[
            ("[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`issuer`"),
            ("issuer = \"ftp://id\"\n", "`issuer`"),
            ("issuer = \"https://id\"\n", "`routes`"),
            ("issuer = \"https://id\"\nrevocation_poll_secs = 0\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`revocation_poll_secs`"),
            ("issuer = \"https://id\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`trusted_proxies[0]`"),
            ("issuer = \"https://id\"\nadmin_prefix = \"gw/\"\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`admin_prefix`"),
            ("issuer = \"https://id\"\n[auth_cache]\ncapacity = 0\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`auth_cache.capacity`"),
        ];
        for (text, key) in cases {
            let err = error(text);
            assert!(err.contains(key), "{key}: {err}");
        }
        let route_cases: &[(&str, &str)] = &[
            ("path_prefix = \"orders\"\nupstreams = [\"http://a\"]", "`routes[0].path_prefix`"),
            ("path_prefix = \"/a/../b\"\nupstreams = [\"http://a\"]", "`routes[0].path_prefix`"),
            ("path_prefix = \"/a\"\nupstreams = []", "`routes[0].upstreams`"),
            ("path_prefix = \"/a\"\nupstreams = [\"https://a\"]", "`routes[0].upstreams[0]`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\", \"nope\"]", "`routes[0].upstreams[1]`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\npublic = true\nscopes = [\"x\"]", "`routes[0].scopes`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\npublic = true\nrate_limit = { per_subject = 3 }", "`routes[0].rate_limit.per_subject`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\nrate_limit = { window_secs = 3 }", "`routes[0].rate_limit`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ntimeout_secs = 0", "`routes[0].timeout_secs`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\nhost = \"a.example:80\"", "`routes[0].host`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ncors = { allow_origins = [\"*\"], allow_credentials = true }", "`routes[0].cors.allow_origins`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ncors = { allow_origins = [\"https://a.example/path\"] }", "`routes[0].cors.allow_origins`"),
            ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ncors = { allow_origins = [\"https://a.example\"], allow_headers = [\"*\"] }", "`routes[0].cors.allow_headers`"),
        ];
        for (route, key) in route_cases {
            let err = error(&format!("issuer = \"https://id\"\n[[routes]]\n{route}\n"));
            assert!(err.contains(key), "{key}: {err}");
        }
        let err = error(
            "issuer = \"https://id\"\n[[routes]]\npath_prefix = \"/a\"\nupstreams = [\"http://a\"]\n\
             [[routes]]\npath_prefix = \"/a/\"\nname = \"other\"\nupstreams = [\"http://b\"]\n",
        );
        assert!(err.contains("`routes[1].path_prefix`"), "{err}");
        let err = GatewayConfig::parse(MINIMAL, None, env(&[("TESSERA_GATEWAY_LEEWAY_SECS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TESSERA_GATEWAY_LEEWAY_SECS") && err.contains("leeway_secs"),
            "{err}"
        );
        let err = GatewayConfig::parse(MINIMAL, None, env(&[("TESSERA_GATEWAY_ISSUER", "not a url")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`issuer`") && err.contains("(from TESSERA_GATEWAY_ISSUER)"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = GatewayConfig::parse(
            MINIMAL,
            Some("gateway.toml"),
            env(&[
                ("TESSERA_GATEWAY_LISTEN", "127.0.0.1:9999"),
                ("TESSERA_GATEWAY_ISSUER", "http://127.0.0.1:8080/"),
                ("TESSERA_GATEWAY_AUTH_CACHE__ENABLED", "false"),
                ("TESSERA_LISTEN", "127.0.0.1:1"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.issuer(), "http://127.0.0.1:8080");
        assert!(!config.auth_cache.enabled);
    }

    /// A configuration that sets every key, so its serialisation lists every field.
    fn everything() -> GatewayConfig {
        let mut route = RouteConfig::new("/a", &["http://127.0.0.1:1"]);
        route.name = Some("a".into());
        route.host = Some("api.example.com".into());
        route.rate_limit = Some(RateLimitConfig {
            per_subject: Some(1),
            per_ip: Some(1),
            window_secs: 1,
        });
        route.cors = Some(CorsConfig::new(&["https://app.example.com"]));
        GatewayConfig {
            issuer: Some("https://id.example.com".into()),
            audience: Some("https://api.example.com".into()),
            trusted_proxies: vec!["10.0.0.0/8".into()],
            routes: vec![route],
            ..GatewayConfig::default()
        }
    }

    fn leaf_paths(table: &toml::Table, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => out.extend(leaf_paths(inner, &path)),
                toml::Value::Array(items) if items.first().is_some_and(toml::Value::is_table) => {
                    for item in items {
                        if let toml::Value::Table(inner) = item {
                            out.extend(leaf_paths(inner, &path));
                        }
                    }
                }
                _ => out.push(path),
            }
        }
        out
    }

    #[test]
    fn every_key_is_accepted_and_every_field_is_listed() {
        for &(path, var, kind) in KEYS {
            assert!(var.starts_with("TESSERA_GATEWAY_"), "{var}");
            let value = match kind {
                ValueKind::Int => "20",
                ValueKind::Bool => "true",
                ValueKind::Str => match path {
                    "listen" => "127.0.0.1:1",
                    "log.format" => "json",
                    "issuer" | "audience" => "https://id.example.com",
                    "admin_prefix" => "/_gw",
                    _ => "x",
                },
            };
            let parsed = GatewayConfig::parse(MINIMAL, None, env(&[(var, value)]));
            assert!(parsed.is_ok(), "{path}: {parsed:?}");
        }
        let table = toml::Table::try_from(everything()).unwrap();
        let mut listed: Vec<&str> = KEYS.iter().map(|(p, _, _)| *p).collect();
        listed.extend(FILE_ONLY_KEYS);
        let found = leaf_paths(&table, "");
        for path in &found {
            assert!(
                listed.contains(&path.as_str()),
                "{path} is not listed in KEYS or FILE_ONLY_KEYS"
            );
        }
        for path in listed {
            assert!(
                found.iter().any(|f| f == path),
                "{path} is listed but is no field"
            );
        }
        // And the whole thing reads back.
        let text = toml::to_string(&everything()).unwrap();
        parse(&text).unwrap();
    }

    #[test]
    fn every_key_is_documented() {
        let docs = include_str!("../../../docs/gateway.md");
        for &(path, var, _) in KEYS {
            assert!(
                docs.contains(&format!("`{path}`")),
                "docs/gateway.md lacks `{path}`"
            );
            assert!(docs.contains(var), "docs/gateway.md lacks {var}");
        }
        for path in FILE_ONLY_KEYS {
            assert!(
                docs.contains(&format!("`{path}`")),
                "docs/gateway.md lacks `{path}`"
            );
        }
    }

    #[test]
    fn the_documented_example_file_is_valid() {
        let docs = include_str!("../../../docs/gateway.md");
        let start = docs.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + docs[start..].find("```").unwrap();
        let config = parse(&docs[start..end]).unwrap();
        assert!(config.routes.len() >= 3);
    }
}
