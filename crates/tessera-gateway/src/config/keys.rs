//! The keys the environment can set, and those only the file can.

use tessera_config::{EnvKey, ValueKind};

/// Every scalar key (dotted path) with its environment variable and value kind.
pub const KEYS: &[EnvKey] = &[
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
    ("public_url", "TESSERA_GATEWAY_PUBLIC_URL", ValueKind::Str),
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
    (
        "api_keys.client_id",
        "TESSERA_GATEWAY_API_KEYS__CLIENT_ID",
        ValueKind::Str,
    ),
    (
        "api_keys.client_secret",
        "TESSERA_GATEWAY_API_KEYS__CLIENT_SECRET",
        ValueKind::Str,
    ),
    (
        "api_keys.check_url",
        "TESSERA_GATEWAY_API_KEYS__CHECK_URL",
        ValueKind::Str,
    ),
    (
        "api_keys.cache_ttl_secs",
        "TESSERA_GATEWAY_API_KEYS__CACHE_TTL_SECS",
        ValueKind::Int,
    ),
    (
        "api_keys.capacity",
        "TESSERA_GATEWAY_API_KEYS__CAPACITY",
        ValueKind::Int,
    ),
    ("log.format", "TESSERA_GATEWAY_LOG__FORMAT", ValueKind::Str),
    ("log.level", "TESSERA_GATEWAY_LOG__LEVEL", ValueKind::Str),
];

/// Keys only the file can set: lists, and the keys of each `[[routes]]` table
/// (`routes.x` is key `x` of a route).
pub const FILE_ONLY_KEYS: &[&str] = &[
    "trusted_proxies",
    "api_keys.metric_keys",
    "routes.name",
    "routes.host",
    "routes.path_prefix",
    "routes.upstreams",
    "routes.public",
    "routes.scopes",
    "routes.roles",
    "routes.acr_values",
    "routes.strip_prefix",
    "routes.timeout_secs",
    "routes.unhealthy_secs",
    "routes.auth_cache",
    "routes.api_keys",
    "routes.rate_limit.per_subject",
    "routes.rate_limit.per_ip",
    "routes.rate_limit.per_key",
    "routes.rate_limit.window_secs",
    "routes.cors.allow_origins",
    "routes.cors.allow_methods",
    "routes.cors.allow_headers",
    "routes.cors.expose_headers",
    "routes.cors.allow_credentials",
    "routes.cors.max_age_secs",
];
