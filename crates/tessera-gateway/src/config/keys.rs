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
    "routes.acr_values",
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
