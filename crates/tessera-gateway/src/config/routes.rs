//! The `[[routes]]` tables — path prefix, upstreams, requirements, rate limit, CORS — and
//! their checks.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

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
    /// Permissions the caller's roles must grant, all of them (the token's `permissions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// Permissions of which the caller's roles must grant at least one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_permission: Vec<String>,
    /// Authentication context classes of which the caller's sign-in must be one (or
    /// stronger), e.g. `["urn:tessera:acr:mfa"]`: a second factor; otherwise 401
    /// `insufficient_user_authentication` (RFC 9470) so the client steps up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
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
    /// Also accept partner API keys (`X-API-Key: tsk_…`), checked against the same
    /// requirements as tokens (needs `[api_keys]` client credentials).
    #[serde(default)]
    pub api_keys: bool,
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
    /// Requests per window per API key (requests with a token are not counted here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_key: Option<u64>,
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
            permissions: Vec::new(),
            any_permission: Vec::new(),
            acr_values: Vec::new(),
            strip_prefix: false,
            timeout_secs: default_timeout_secs(),
            unhealthy_secs: default_unhealthy_secs(),
            auth_cache: true,
            api_keys: false,
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

/// `path_prefix` as matched: without a trailing `/` (except the root).
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A path segment we accept in configured prefixes: unreserved characters and a few
/// sub-delimiters; no dot segments, no percent-encoding.
pub(super) fn valid_segment(segment: &str) -> bool {
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

pub(super) fn validate_route(index: usize, route: &RouteConfig) -> Result<(), ConfigError> {
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
    if route.public && !(route.permissions.is_empty() && route.any_permission.is_empty()) {
        return Err(invalid(key("permissions"), "must be empty on a public route"));
    }
    if route.public && route.api_keys {
        return Err(invalid(key("api_keys"), "cannot be true on a public route"));
    }
    if route.public && !route.acr_values.is_empty() {
        return Err(invalid(key("acr_values"), "must be empty on a public route"));
    }
    for (field, list) in [
        ("scopes", &route.scopes),
        ("roles", &route.roles),
        ("permissions", &route.permissions),
        ("any_permission", &route.any_permission),
        ("acr_values", &route.acr_values),
    ] {
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
        if limit.per_subject.is_none() && limit.per_ip.is_none() && limit.per_key.is_none() {
            return Err(invalid(key("rate_limit"), "needs per_subject, per_ip or per_key"));
        }
        if limit.per_key == Some(0) {
            return Err(invalid(key("rate_limit.per_key"), "must be greater than 0"));
        }
        if limit.per_key.is_some() && !route.api_keys {
            return Err(invalid(
                key("rate_limit.per_key"),
                "applies only to a route with api_keys = true",
            ));
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
