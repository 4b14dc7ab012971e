//! Every configuration key that the environment can set, with its variable.
//! `docs/configuration.md` documents each one; the tests keep the table, the struct and
//! the page in step.

use tessera_config::{EnvKey, ValueKind};

/// Every configuration key (dotted path) with its environment variable and value kind.
pub const KEYS: &[EnvKey] = &[
    ("listen", "TESSERA_LISTEN", ValueKind::Str),
    ("issuer", "TESSERA_ISSUER", ValueKind::Str),
    ("data_dir", "TESSERA_DATA_DIR", ValueKind::Str),
    ("database_url", "TESSERA_DATABASE_URL", ValueKind::Str),
    ("redis_url", "TESSERA_REDIS_URL", ValueKind::Str),
    ("master_key", "TESSERA_MASTER_KEY", ValueKind::Str),
    ("pepper", "TESSERA_PEPPER", ValueKind::Str),
    (
        "database.max_connections",
        "TESSERA_DATABASE__MAX_CONNECTIONS",
        ValueKind::Int,
    ),
    (
        "database.acquire_timeout_secs",
        "TESSERA_DATABASE__ACQUIRE_TIMEOUT_SECS",
        ValueKind::Int,
    ),
    (
        "keys.prepublish_secs",
        "TESSERA_KEYS__PREPUBLISH_SECS",
        ValueKind::Int,
    ),
    (
        "keys.retire_window_secs",
        "TESSERA_KEYS__RETIRE_WINDOW_SECS",
        ValueKind::Int,
    ),
    ("keys.reload_secs", "TESSERA_KEYS__RELOAD_SECS", ValueKind::Int),
    (
        "keys.rotate_after_secs",
        "TESSERA_KEYS__ROTATE_AFTER_SECS",
        ValueKind::Int,
    ),
    (
        "tokens.access_token_ttl_secs",
        "TESSERA_TOKENS__ACCESS_TOKEN_TTL_SECS",
        ValueKind::Int,
    ),
    (
        "tokens.refresh_token_ttl_secs",
        "TESSERA_TOKENS__REFRESH_TOKEN_TTL_SECS",
        ValueKind::Int,
    ),
    (
        "tokens.refresh_grace_secs",
        "TESSERA_TOKENS__REFRESH_GRACE_SECS",
        ValueKind::Int,
    ),
    (
        "tokens.access_token_alg",
        "TESSERA_TOKENS__ACCESS_TOKEN_ALG",
        ValueKind::Str,
    ),
    ("tokens.audience", "TESSERA_TOKENS__AUDIENCE", ValueKind::Str),
    (
        "tokens.leeway_secs",
        "TESSERA_TOKENS__LEEWAY_SECS",
        ValueKind::Int,
    ),
    (
        "sessions.idle_timeout_secs",
        "TESSERA_SESSIONS__IDLE_TIMEOUT_SECS",
        ValueKind::Int,
    ),
    (
        "sessions.max_sessions",
        "TESSERA_SESSIONS__MAX_SESSIONS",
        ValueKind::Int,
    ),
    ("sessions.on_limit", "TESSERA_SESSIONS__ON_LIMIT", ValueKind::Str),
    (
        "sessions.cleanup_interval_secs",
        "TESSERA_SESSIONS__CLEANUP_INTERVAL_SECS",
        ValueKind::Int,
    ),
    (
        "sessions.retention_secs",
        "TESSERA_SESSIONS__RETENTION_SECS",
        ValueKind::Int,
    ),
    (
        "audit.retention_secs",
        "TESSERA_AUDIT__RETENTION_SECS",
        ValueKind::Int,
    ),
    (
        "accounts.require_verified_email",
        "TESSERA_ACCOUNTS__REQUIRE_VERIFIED_EMAIL",
        ValueKind::Bool,
    ),
    (
        "accounts.verification_ttl_secs",
        "TESSERA_ACCOUNTS__VERIFICATION_TTL_SECS",
        ValueKind::Int,
    ),
    (
        "accounts.reset_ttl_secs",
        "TESSERA_ACCOUNTS__RESET_TTL_SECS",
        ValueKind::Int,
    ),
    (
        "accounts.idempotency_window_secs",
        "TESSERA_ACCOUNTS__IDEMPOTENCY_WINDOW_SECS",
        ValueKind::Int,
    ),
    (
        "passwords.min_length",
        "TESSERA_PASSWORDS__MIN_LENGTH",
        ValueKind::Int,
    ),
    (
        "passwords.max_bytes",
        "TESSERA_PASSWORDS__MAX_BYTES",
        ValueKind::Int,
    ),
    (
        "passwords.min_strength",
        "TESSERA_PASSWORDS__MIN_STRENGTH",
        ValueKind::Int,
    ),
    ("passwords.history", "TESSERA_PASSWORDS__HISTORY", ValueKind::Int),
    (
        "passwords.argon2_memory_kib",
        "TESSERA_PASSWORDS__ARGON2_MEMORY_KIB",
        ValueKind::Int,
    ),
    (
        "passwords.argon2_iterations",
        "TESSERA_PASSWORDS__ARGON2_ITERATIONS",
        ValueKind::Int,
    ),
    (
        "passwords.argon2_parallelism",
        "TESSERA_PASSWORDS__ARGON2_PARALLELISM",
        ValueKind::Int,
    ),
    (
        "login.max_failures",
        "TESSERA_LOGIN__MAX_FAILURES",
        ValueKind::Int,
    ),
    ("login.window_secs", "TESSERA_LOGIN__WINDOW_SECS", ValueKind::Int),
    (
        "login.lockout_secs",
        "TESSERA_LOGIN__LOCKOUT_SECS",
        ValueKind::Int,
    ),
    (
        "login.max_lockout_secs",
        "TESSERA_LOGIN__MAX_LOCKOUT_SECS",
        ValueKind::Int,
    ),
    (
        "login.max_failures_per_ip",
        "TESSERA_LOGIN__MAX_FAILURES_PER_IP",
        ValueKind::Int,
    ),
    (
        "login.captcha_after_failures",
        "TESSERA_LOGIN__CAPTCHA_AFTER_FAILURES",
        ValueKind::Int,
    ),
    (
        "device.code_ttl_secs",
        "TESSERA_DEVICE__CODE_TTL_SECS",
        ValueKind::Int,
    ),
    (
        "device.poll_interval_secs",
        "TESSERA_DEVICE__POLL_INTERVAL_SECS",
        ValueKind::Int,
    ),
    (
        "device.max_failures_per_ip",
        "TESSERA_DEVICE__MAX_FAILURES_PER_IP",
        ValueKind::Int,
    ),
    (
        "device.max_failures",
        "TESSERA_DEVICE__MAX_FAILURES",
        ValueKind::Int,
    ),
    (
        "alerts.new_sign_in_email",
        "TESSERA_ALERTS__NEW_SIGN_IN_EMAIL",
        ValueKind::Bool,
    ),
    (
        "alerts.new_sign_in_max_per_hour",
        "TESSERA_ALERTS__NEW_SIGN_IN_MAX_PER_HOUR",
        ValueKind::Int,
    ),
    (
        "alerts.device_cookie_days",
        "TESSERA_ALERTS__DEVICE_COOKIE_DAYS",
        ValueKind::Int,
    ),
    (
        "alerts.known_devices_per_user",
        "TESSERA_ALERTS__KNOWN_DEVICES_PER_USER",
        ValueKind::Int,
    ),
    (
        "alerts.known_device_retention_days",
        "TESSERA_ALERTS__KNOWN_DEVICE_RETENTION_DAYS",
        ValueKind::Int,
    ),
    (
        "alerts.abuse_window_secs",
        "TESSERA_ALERTS__ABUSE_WINDOW_SECS",
        ValueKind::Int,
    ),
    (
        "alerts.abuse_ips_per_account",
        "TESSERA_ALERTS__ABUSE_IPS_PER_ACCOUNT",
        ValueKind::Int,
    ),
    (
        "alerts.abuse_accounts_per_ip",
        "TESSERA_ALERTS__ABUSE_ACCOUNTS_PER_IP",
        ValueKind::Int,
    ),
    (
        "alerts.webhook_url",
        "TESSERA_ALERTS__WEBHOOK_URL",
        ValueKind::Str,
    ),
    (
        "alerts.webhook_secret",
        "TESSERA_ALERTS__WEBHOOK_SECRET",
        ValueKind::Str,
    ),
    (
        "federation.allow_signup",
        "TESSERA_FEDERATION__ALLOW_SIGNUP",
        ValueKind::Bool,
    ),
    (
        "federation.flow_ttl_secs",
        "TESSERA_FEDERATION__FLOW_TTL_SECS",
        ValueKind::Int,
    ),
    (
        "federation.http_timeout_secs",
        "TESSERA_FEDERATION__HTTP_TIMEOUT_SECS",
        ValueKind::Int,
    ),
    (
        "federation.max_response_bytes",
        "TESSERA_FEDERATION__MAX_RESPONSE_BYTES",
        ValueKind::Int,
    ),
    (
        "federation.metadata_cache_secs",
        "TESSERA_FEDERATION__METADATA_CACHE_SECS",
        ValueKind::Int,
    ),
    ("mail.transport", "TESSERA_MAIL__TRANSPORT", ValueKind::Str),
    ("mail.smtp_url", "TESSERA_MAIL__SMTP_URL", ValueKind::Str),
    ("mail.from", "TESSERA_MAIL__FROM", ValueKind::Str),
    ("mail.file_dir", "TESSERA_MAIL__FILE_DIR", ValueKind::Str),
    (
        "http.max_body_bytes",
        "TESSERA_HTTP__MAX_BODY_BYTES",
        ValueKind::Int,
    ),
    (
        "http.request_timeout_secs",
        "TESSERA_HTTP__REQUEST_TIMEOUT_SECS",
        ValueKind::Int,
    ),
    (
        "http.shutdown_grace_secs",
        "TESSERA_HTTP__SHUTDOWN_GRACE_SECS",
        ValueKind::Int,
    ),
    (
        "http.trusted_proxies",
        "TESSERA_HTTP__TRUSTED_PROXIES",
        ValueKind::List,
    ),
    ("log.format", "TESSERA_LOG__FORMAT", ValueKind::Str),
    ("log.level", "TESSERA_LOG__LEVEL", ValueKind::Str),
    ("metrics.enabled", "TESSERA_METRICS__ENABLED", ValueKind::Bool),
    (
        "metrics.refresh_secs",
        "TESSERA_METRICS__REFRESH_SECS",
        ValueKind::Int,
    ),
    ("mfa.policy", "TESSERA_MFA__POLICY", ValueKind::Str),
    ("mfa.totp_issuer", "TESSERA_MFA__TOTP_ISSUER", ValueKind::Str),
    (
        "mfa.challenge_ttl_secs",
        "TESSERA_MFA__CHALLENGE_TTL_SECS",
        ValueKind::Int,
    ),
    ("mfa.sms_sender", "TESSERA_MFA__SMS_SENDER", ValueKind::Str),
    ("mfa.sms_file_dir", "TESSERA_MFA__SMS_FILE_DIR", ValueKind::Str),
    (
        "mfa.sms_webhook_url",
        "TESSERA_MFA__SMS_WEBHOOK_URL",
        ValueKind::Str,
    ),
    (
        "mfa.sms_webhook_secret",
        "TESSERA_MFA__SMS_WEBHOOK_SECRET",
        ValueKind::Str,
    ),
];
