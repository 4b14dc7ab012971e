//! Configuration: one TOML file (optional) plus `TESSERA_*` environment overrides, read
//! into one struct with one source of defaults, validated at start-up.
//!
//! Every key is listed in [`KEYS`] with its environment variable; `docs/configuration.md`
//! documents each one, and a test keeps the two in step. An unknown key or an invalid value
//! is an error that names the key — never a silent default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The whole configuration of a node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The issuer identifier (`iss`): the external base URL of this provider, https in
    /// production (http only for a loopback host). Defaults to `http://<listen>`.
    pub issuer: Option<String>,
    /// Directory for the embedded default's files (SQLite database, generated master key).
    pub data_dir: PathBuf,
    /// `postgres://…` for many nodes; defaults to an SQLite file in `data_dir`.
    pub database_url: Option<Secret>,
    /// `redis://…` for short-lived shared state across nodes; defaults to in-process.
    pub redis_url: Option<Secret>,
    /// Key-encryption key for signing keys at rest: base64 of 32 random bytes. When absent,
    /// one is generated in `data_dir/master.key` (single development node only).
    pub master_key: Option<Secret>,
    /// Server-side pepper for password hashes (Argon2's secret input), kept out of the
    /// database: base64 of 32 random bytes. When absent it is derived from `master_key`.
    pub pepper: Option<Secret>,
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub tokens: TokensConfig,
    pub sessions: SessionsConfig,
    pub audit: AuditConfig,
    pub accounts: AccountsConfig,
    pub passwords: PasswordsConfig,
    pub login: LoginConfig,
    pub alerts: AlertsConfig,
    pub mail: MailConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Refuse login until the e-mail address is verified.
    pub require_verified_email: bool,
    /// Seconds an e-mail verification link stays valid.
    pub verification_ttl_secs: u64,
    /// Seconds a password-reset link stays valid.
    pub reset_ttl_secs: u64,
    /// Seconds within which a repeated `Idempotency-Key` gets the first response again.
    pub idempotency_window_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordsConfig {
    /// Minimum length in characters.
    pub min_length: usize,
    /// Maximum length in bytes (UTF-8).
    pub max_bytes: usize,
    /// Minimum zxcvbn strength score, 0 (anything) to 4 (very strong).
    pub min_strength: u8,
    /// How many previous passwords may not be reused.
    pub history: usize,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP: 2).
    pub argon2_iterations: u32,
    /// Argon2id parallelism (OWASP: 1).
    pub argon2_parallelism: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed logins per account within `window_secs` before the account is locked.
    pub max_failures: u32,
    /// The window over which failures are counted, in seconds.
    pub window_secs: u64,
    /// First lockout in seconds; each further lockout in the window doubles it.
    pub lockout_secs: u64,
    /// Longest lockout in seconds.
    pub max_lockout_secs: u64,
    /// Failed logins per client IP within `window_secs` before that IP is throttled.
    pub max_failures_per_ip: u32,
    /// Failures after which responses ask for a CAPTCHA (`captchaRequired`); 0 disables.
    pub captcha_after_failures: u32,
}

/// Abnormal-login alerts: the new sign-in e-mail and abuse signals (docs/operations.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Recognise devices (the `tessera_device` cookie, or a native client's device id) and
    /// e-mail the user about a sign-in from a new device on a new network. `false`: no
    /// device cookie, nothing remembered, no e-mail.
    pub new_sign_in_email: bool,
    /// New sign-in e-mails per user per hour at most; sign-ins past it are still audited.
    pub new_sign_in_max_per_hour: u32,
    /// Lifetime of the `tessera_device` cookie in days (browsers cap it at 400).
    pub device_cookie_days: u64,
    /// Device-and-network sightings remembered per user (the most recent ones).
    pub known_devices_per_user: u32,
    /// Days after which a sighting not seen again is forgotten (by the clean-up pass).
    pub known_device_retention_days: u64,
    /// Length of the fixed windows in which abuse signals are counted, in seconds.
    pub abuse_window_secs: u64,
    /// Distinct client IPs failing to sign in to one account within a window that raise
    /// `abuse.distributed_failures`; 0 turns the signal off.
    pub abuse_ips_per_account: u32,
    /// Distinct accounts failing from one client IP within a window that raise
    /// `abuse.many_accounts_from_ip`; 0 turns the signal off.
    pub abuse_accounts_per_ip: u32,
    /// When set, each abuse signal is also POSTed here as JSON (http(s)).
    pub webhook_url: Option<String>,
    /// When set, webhook requests carry `X-Tessera-Signature: sha256=<hex HMAC-SHA256 of
    /// the body under this secret>`.
    pub webhook_secret: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `file` writes each message as an `.eml` file into `mail.file_dir` (the embedded
    /// default); `smtp` delivers through `mail.smtp_url`.
    pub transport: MailTransport,
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://host:465`. Credentials are refused over plaintext to a non-loopback host.
    pub smtp_url: Option<Secret>,
    /// The From address.
    pub from: String,
    /// Directory of the `file` transport; defaults to `data_dir/mail`.
    pub file_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Access-token lifetime in seconds (a client may set its own).
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh-token family in seconds: the absolute cap of a session,
    /// however often it is refreshed (a client may set its own).
    pub refresh_token_ttl_secs: u64,
    /// Seconds after a rotation during which the same refresh token, presented again by the
    /// same client, gets the same successor again instead of counting as theft (a response
    /// lost on a bad network). 0 turns it off.
    pub refresh_grace_secs: u64,
    /// Algorithm of access-token signatures: `ES256`, `RS256` or `EdDSA`.
    pub access_token_alg: String,
    /// `aud` of access tokens; defaults to the issuer.
    pub audience: Option<String>,
    /// Clock skew tolerated when checking `exp` and `nbf` of tokens this provider verifies.
    pub leeway_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Seconds without a refresh (or an extend) after which a session ends.
    pub idle_timeout_secs: u64,
    /// Concurrent sessions per user and channel; 0 is unlimited.
    pub max_sessions: u32,
    /// What happens at the limit: `revoke_oldest` (newest wins) or `reject`.
    pub on_limit: OnLimit,
    /// Policies per channel, overriding the two keys above (e.g. `[sessions.channels.mobile]`).
    /// `web`, `mobile` and `partner` always exist; other names add channels.
    pub channels: BTreeMap<String, ChannelPolicy>,
    /// Seconds between clean-up passes over expired sessions, tokens and feed entries.
    pub cleanup_interval_secs: u64,
    /// Seconds an ended session is kept (for the user's history) before it is deleted.
    pub retention_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPolicy {
    pub max_sessions: u32,
    #[serde(default = "OnLimit::default_policy")]
    pub on_limit: OnLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    RevokeOldest,
    Reject,
}

impl OnLimit {
    fn default_policy() -> Self {
        OnLimit::RevokeOldest
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Seconds audit records are kept.
    pub retention_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Upper bound of pooled database connections per node.
    pub max_connections: u32,
    /// Seconds a request waits for a database connection before failing with 503.
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Seconds a new key is published in JWKS before it signs anything, so that verifiers
    /// caching the key set learn it first.
    pub prepublish_secs: u64,
    /// Seconds a replaced key stays in JWKS after it stops signing. Must cover the longest
    /// token lifetime, so every token it signed can still be verified.
    pub retire_window_secs: u64,
    /// Seconds between reloads of the key set from the database (picks up rotations made
    /// by another node or by `tessera keys rotate`).
    pub reload_secs: u64,
    /// Age in seconds at which a signing key is rotated automatically (by one node, under a
    /// lease); 0 turns scheduled rotation off.
    pub rotate_after_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes; larger gets 413.
    pub max_body_bytes: usize,
    /// Seconds a request may take before the server answers 408 and stops working on it.
    pub request_timeout_secs: u64,
    /// Seconds SIGTERM waits for in-flight requests before the process exits anyway.
    pub shutdown_grace_secs: u64,
    /// Proxies and load balancers (IPs or CIDR ranges) whose `X-Forwarded-For` is believed:
    /// the client address is then the right-most address in it that is not one of these.
    /// Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one object per line).
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,tessera_idp=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Record Prometheus metrics and serve them, unauthenticated, at `GET /metrics`. Keep
    /// that path off the internet (scrape nodes directly, or block it at the proxy).
    pub enabled: bool,
    /// Seconds between refreshes of the gauges read from the stores (readiness, Redis,
    /// active sessions, signing-key age).
    pub refresh_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            data_dir: PathBuf::from("./tessera-data"),
            database_url: None,
            redis_url: None,
            master_key: None,
            pepper: None,
            database: DatabaseConfig::default(),
            keys: KeysConfig::default(),
            tokens: TokensConfig::default(),
            sessions: SessionsConfig::default(),
            audit: AuditConfig::default(),
            accounts: AccountsConfig::default(),
            passwords: PasswordsConfig::default(),
            login: LoginConfig::default(),
            alerts: AlertsConfig::default(),
            mail: MailConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            max_connections: 16,
            acquire_timeout_secs: 5,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            prepublish_secs: 3600,
            retire_window_secs: 86_400,
            reload_secs: 30,
            rotate_after_secs: 90 * 86_400,
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 86_400,
            refresh_grace_secs: 10,
            access_token_alg: "ES256".to_owned(),
            audience: None,
            leeway_secs: 30,
        }
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            idle_timeout_secs: 1800,
            max_sessions: 0,
            on_limit: OnLimit::RevokeOldest,
            channels: BTreeMap::new(),
            cleanup_interval_secs: 300,
            retention_secs: 7 * 86_400,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_secs: 90 * 86_400,
        }
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            require_verified_email: true,
            verification_ttl_secs: 86_400,
            reset_ttl_secs: 1800,
            idempotency_window_secs: 86_400,
        }
    }
}

impl Default for PasswordsConfig {
    fn default() -> Self {
        PasswordsConfig {
            min_length: 8,
            max_bytes: 256,
            min_strength: 3,
            history: 5,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_failures: 5,
            window_secs: 900,
            lockout_secs: 60,
            max_lockout_secs: 3600,
            max_failures_per_ip: 100,
            captcha_after_failures: 3,
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            new_sign_in_email: true,
            new_sign_in_max_per_hour: 3,
            device_cookie_days: 400,
            known_devices_per_user: 20,
            known_device_retention_days: 400,
            abuse_window_secs: 900,
            abuse_ips_per_account: 10,
            abuse_accounts_per_ip: 20,
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransport::File,
            smtp_url: None,
            from: "Tessera <no-reply@localhost>".to_owned(),
            file_dir: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
            trusted_proxies: Vec::new(),
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

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            refresh_secs: 30,
        }
    }
}

/// How an environment variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Str,
    Int,
    Bool,
    /// A list of strings; in the environment, comma-separated.
    List,
}

/// Every configuration key (dotted path) with its environment variable and value kind.
pub const KEYS: &[(&str, &str, ValueKind)] = &[
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
];

/// A configuration that cannot be used. The message names the key and the source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid configuration in {source_name}: {message}")]
    Parse { source_name: String, message: String },
    #[error("invalid configuration: `{key}` {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Reads the configuration: defaults, then the TOML file (if any), then every
    /// `TESSERA_*` variable of [`KEYS`] found in `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Parse {
                    source_name: path.display().to_string(),
                    message: one_line(&e.to_string()),
                })?
            }
            None => toml::Table::new(),
        };
        let mut from_env = Vec::new();
        for (name, value) in env {
            let Some(&(path, _, kind)) = KEYS.iter().find(|(_, var, _)| *var == name) else {
                continue;
            };
            let value = match kind {
                ValueKind::Str => toml::Value::String(value),
                ValueKind::Bool => match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => toml::Value::Boolean(true),
                    "false" | "0" | "no" => toml::Value::Boolean(false),
                    _ => {
                        return Err(ConfigError::Parse {
                            source_name: name,
                            message: format!("`{path}` expects true or false, got {value:?}"),
                        })
                    }
                },
                ValueKind::List => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| toml::Value::String(item.to_owned()))
                        .collect(),
                ),
                ValueKind::Int => match value.trim().parse::<i64>() {
                    Ok(n) => toml::Value::Integer(n),
                    Err(_) => {
                        return Err(ConfigError::Parse {
                            source_name: name,
                            message: format!("`{path}` expects a whole number, got {value:?}"),
                        })
                    }
                },
            };
            set_path(&mut table, path, value);
            from_env.push(name);
        }
        let source_name = match (file, from_env.is_empty()) {
            (Some(path), true) => path.display().to_string(),
            (Some(path), false) => format!("{} (with {})", path.display(), from_env.join(", ")),
            (None, false) => from_env.join(", "),
            (None, true) => "defaults".to_owned(),
        };
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                source_name,
                message: one_line(&e.to_string()),
            })?;
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

    /// Checks every value that the types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            validate_issuer(issuer)?;
        }
        if let Some(url) = &self.database_url {
            tessera_store::durable::Backend::of_url(url.expose()).map_err(|_| ConfigError::Invalid {
                key: "database_url",
                reason: "must start with postgres:// or sqlite:".to_owned(),
            })?;
        }
        if let Some(url) = &self.redis_url {
            let url = url.expose();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::Invalid {
                    key: "redis_url",
                    reason: "must start with redis:// or rediss://".to_owned(),
                });
            }
        }
        match &self.master_key {
            Some(key) => {
                decode_master_key(key.expose())?;
            }
            None if !self.uses_embedded_database() => {
                return Err(ConfigError::Invalid {
                    key: "master_key",
                    reason: "is required when the database is not the embedded default: every node must \
                             share it (set TESSERA_MASTER_KEY to base64 of 32 random bytes)"
                        .to_owned(),
                })
            }
            None => {}
        }
        positive(
            "database.max_connections",
            u64::from(self.database.max_connections),
        )?;
        positive(
            "database.acquire_timeout_secs",
            self.database.acquire_timeout_secs,
        )?;
        positive("keys.reload_secs", self.keys.reload_secs)?;
        positive("keys.retire_window_secs", self.keys.retire_window_secs)?;
        positive("http.request_timeout_secs", self.http.request_timeout_secs)?;
        positive("metrics.refresh_secs", self.metrics.refresh_secs)?;
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "http.max_body_bytes",
                reason: "must be at least 1024".to_owned(),
            });
        }
        tracing_level_is_plausible(&self.log.level)?;
        for entry in &self.http.trusted_proxies {
            tessera_proto::net::Cidr::parse(entry).map_err(|reason| ConfigError::Invalid {
                key: "http.trusted_proxies",
                reason,
            })?;
        }
        let rotate_after = self.keys.rotate_after_secs;
        if rotate_after != 0 && (rotate_after < 3600 || rotate_after <= self.keys.prepublish_secs) {
            return Err(ConfigError::Invalid {
                key: "keys.rotate_after_secs",
                reason: "must be 0 (off), or at least 3600 and longer than keys.prepublish_secs".to_owned(),
            });
        }
        self.validate_tokens_and_sessions()
    }

    fn validate_tokens_and_sessions(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        if !["ES256", "RS256", "EdDSA"].contains(&self.tokens.access_token_alg.as_str()) {
            return Err(invalid(
                "tokens.access_token_alg",
                "must be ES256, RS256 or EdDSA",
            ));
        }
        positive("tokens.access_token_ttl_secs", self.tokens.access_token_ttl_secs)?;
        positive(
            "tokens.refresh_token_ttl_secs",
            self.tokens.refresh_token_ttl_secs,
        )?;
        positive("sessions.idle_timeout_secs", self.sessions.idle_timeout_secs)?;
        positive(
            "sessions.cleanup_interval_secs",
            self.sessions.cleanup_interval_secs,
        )?;
        if self.tokens.refresh_grace_secs > 60 {
            return Err(invalid(
                "tokens.refresh_grace_secs",
                "must be at most 60: a longer window weakens theft detection",
            ));
        }
        if self.keys.retire_window_secs < self.tokens.access_token_ttl_secs {
            return Err(invalid(
                "keys.retire_window_secs",
                "must be at least tokens.access_token_ttl_secs, or tokens outlive the key that verifies them",
            ));
        }
        if let Some(pepper) = &self.pepper {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(pepper.expose().trim())
                .map_err(|_| invalid("pepper", "is not base64"))?;
            if bytes.len() < 16 {
                return Err(invalid("pepper", "must be at least 16 bytes (32 recommended)"));
            }
        }
        if self.passwords.min_length < 8 {
            return Err(invalid(
                "passwords.min_length",
                "must be at least 8 (NIST SP 800-63B)",
            ));
        }
        if self.passwords.max_bytes < 64 || self.passwords.max_bytes > 4096 {
            return Err(invalid("passwords.max_bytes", "must be between 64 and 4096"));
        }
        if self.passwords.min_strength > 4 {
            return Err(invalid("passwords.min_strength", "must be 0 to 4"));
        }
        if self.passwords.argon2_memory_kib < 8 * self.passwords.argon2_parallelism.max(1)
            || self.passwords.argon2_iterations == 0
            || self.passwords.argon2_parallelism == 0
        {
            return Err(invalid(
                "passwords.argon2_memory_kib",
                "Argon2 parameters are out of range",
            ));
        }
        positive("login.max_failures", u64::from(self.login.max_failures))?;
        positive("login.window_secs", self.login.window_secs)?;
        positive("login.lockout_secs", self.login.lockout_secs)?;
        if self.login.max_lockout_secs < self.login.lockout_secs {
            return Err(invalid(
                "login.max_lockout_secs",
                "must be at least login.lockout_secs",
            ));
        }
        self.validate_alerts()?;
        if self.mail.transport == MailTransport::Smtp && self.mail.smtp_url.is_none() {
            return Err(invalid(
                "mail.smtp_url",
                "is required when mail.transport = \"smtp\"",
            ));
        }
        if let Some(url) = &self.mail.smtp_url {
            check_smtp_url(url.expose())?;
        }
        if !self.mail.from.contains('@') {
            return Err(invalid(
                "mail.from",
                "must be an e-mail address, e.g. \"Tessera <no-reply@example.com>\"",
            ));
        }
        if let Some(audience) = &self.tokens.audience {
            if audience.trim().is_empty() {
                return Err(invalid("tokens.audience", "must not be empty"));
            }
        }
        for name in self.sessions.channels.keys() {
            let valid = !name.is_empty()
                && name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid {
                return Err(ConfigError::Invalid {
                    key: "sessions.channels",
                    reason: format!("channel name {name:?} must be 1-32 of a-z, 0-9, - and _"),
                });
            }
        }
        Ok(())
    }

    fn validate_alerts(&self) -> Result<(), ConfigError> {
        let alerts = &self.alerts;
        positive(
            "alerts.new_sign_in_max_per_hour",
            u64::from(alerts.new_sign_in_max_per_hour),
        )?;
        positive("alerts.device_cookie_days", alerts.device_cookie_days)?;
        if alerts.device_cookie_days > 400 {
            return Err(ConfigError::Invalid {
                key: "alerts.device_cookie_days",
                reason: "must be at most 400 (browsers cap cookie lifetimes there)".to_owned(),
            });
        }
        positive(
            "alerts.known_devices_per_user",
            u64::from(alerts.known_devices_per_user),
        )?;
        positive(
            "alerts.known_device_retention_days",
            alerts.known_device_retention_days,
        )?;
        positive("alerts.abuse_window_secs", alerts.abuse_window_secs)?;
        if let Some(url) = &alerts.webhook_url {
            let parsed = url::Url::parse(url.trim()).map_err(|e| ConfigError::Invalid {
                key: "alerts.webhook_url",
                reason: format!("is not a URL ({e})"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::Invalid {
                    key: "alerts.webhook_url",
                    reason: "must be an http:// or https:// URL".to_owned(),
                });
            }
        }
        if let Some(secret) = &alerts.webhook_secret {
            if secret.expose().len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "alerts.webhook_secret",
                    reason: "must be at least 16 characters (32 random bytes recommended)".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The issuer identifier: configured, or derived from the listen address.
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None => {
                let mut addr = self.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        }
    }

    /// The database URL: configured, or the embedded SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("tessera.db").display()),
        }
    }

    /// Whether the node runs on the embedded default database (files in `data_dir`).
    pub fn uses_embedded_database(&self) -> bool {
        self.database_url.is_none()
    }

    /// The directory of the `file` mail transport.
    pub fn mail_dir(&self) -> PathBuf {
        self.mail
            .file_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mail"))
    }

    /// The `aud` of access tokens.
    pub fn audience(&self) -> String {
        self.tokens.audience.clone().unwrap_or_else(|| self.issuer())
    }

    /// The channels sessions may belong to.
    pub fn channels(&self) -> Vec<String> {
        let mut names: Vec<String> = ["web", "mobile", "partner"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for name in self.sessions.channels.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The concurrent-session policy of `channel`.
    pub fn channel_policy(&self, channel: &str) -> ChannelPolicy {
        self.sessions
            .channels
            .get(channel)
            .copied()
            .unwrap_or(ChannelPolicy {
                max_sessions: self.sessions.max_sessions,
                on_limit: self.sessions.on_limit,
            })
    }
}

/// Decodes a base64 (standard or URL-safe, padded or not) 32-byte master key.
pub fn decode_master_key(text: &str) -> Result<[u8; 32], ConfigError> {
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| ConfigError::Invalid {
            key: "master_key",
            reason: "is not base64".to_owned(),
        })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| ConfigError::Invalid {
        key: "master_key",
        reason: format!("must be 32 bytes, got {}", bytes.len()),
    })
}

fn validate_issuer(issuer: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "issuer",
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(issuer).map_err(|e| invalid(&format!("is not a URL ({e})")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "must not have a query or fragment (OpenID Connect Discovery §3)",
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(url::Host::Domain("localhost")) => Ok(()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err(invalid(
                "must use https (http is allowed only for a loopback host)",
            )),
        },
        _ => Err(invalid("must be an https URL")),
    }
}

/// An SMTP URL must not send credentials in the clear to another host.
fn check_smtp_url(text: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "mail.smtp_url",
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(text).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(invalid("must start with smtp:// or smtps://"));
    }
    let has_credentials = !url.username().is_empty() || url.password().is_some();
    let tls_required = url.scheme() == "smtps"
        || url
            .query_pairs()
            .any(|(k, v)| k == "tls" && (v == "required" || v == "starttls"));
    // `smtp:` is not a "special" scheme to the URL standard: its host is an opaque string.
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if has_credentials && !tls_required && !loopback {
        return Err(invalid(
            "carries credentials without TLS: use smtps:// or add ?tls=required (STARTTLS)",
        ));
    }
    Ok(())
}

fn positive(key: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be greater than 0".to_owned(),
        });
    }
    Ok(())
}

fn tracing_level_is_plausible(level: &str) -> Result<(), ConfigError> {
    if level.trim().is_empty() {
        return Err(ConfigError::Invalid {
            key: "log.level",
            reason: "must not be empty".to_owned(),
        });
    }
    Ok(())
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
    use super::*;

    fn load_toml(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), Vec::new())
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_configuration_at_all_gives_the_embedded_default() {
        let config = Config::load(None, Vec::new()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.issuer(), "http://127.0.0.1:8080");
        assert!(config.uses_embedded_database());
        assert_eq!(
            config.database_url(),
            "sqlite://./tessera-data/tessera.db?mode=rwc"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_toml("lissten = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(err.contains("lissten"), "{err}");
        let err = load_toml("[keys]\nprepublish = 1\n").unwrap_err().to_string();
        assert!(err.contains("prepublish"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = load_toml("listen = \"not an address\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
        let err = load_toml("issuer = \"http://idp.example.com\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`issuer`") && err.contains("https"), "{err}");
        let err = load_toml("database_url = \"mysql://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`database_url`"), "{err}");
        let err = load_toml("master_key = \"c2hvcnQ=\"\n").unwrap_err().to_string();
        assert!(err.contains("`master_key`") && err.contains("32 bytes"), "{err}");
        let err = load_toml("[http]\nmax_body_bytes = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`http.max_body_bytes`"), "{err}");
        let err = Config::load(None, env(&[("TESSERA_KEYS__RELOAD_SECS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TESSERA_KEYS__RELOAD_SECS") && err.contains("keys.reload_secs"),
            "{err}"
        );
    }

    #[test]
    fn postgres_requires_a_master_key_and_errors_name_the_variable() {
        let err = Config::load(
            None,
            env(&[("TESSERA_DATABASE_URL", "postgres://u@127.0.0.1/db")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`master_key`") && err.contains("required"), "{err}");
        let err = Config::load(None, env(&[("TESSERA_MASTER_KEY", "short")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("(from TESSERA_MASTER_KEY)"), "{err}");
    }

    #[test]
    fn smtp_credentials_need_tls_unless_local() {
        let load = |url: &str| {
            Config::load(
                None,
                env(&[
                    ("TESSERA_MAIL__TRANSPORT", "smtp"),
                    ("TESSERA_MAIL__SMTP_URL", url),
                ]),
            )
        };
        let err = load("smtp://user:hunter2@smtp.example.com:587")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`mail.smtp_url`") && !err.contains("hunter2"),
            "{err}"
        );
        load("smtp://user:pw@smtp.example.com:587?tls=required").unwrap();
        load("smtps://user:pw@smtp.example.com").unwrap();
        load("smtp://user:pw@127.0.0.1:2525").unwrap();
        load("smtp://relay.internal:25").unwrap();
        assert!(load("http://x").is_err());
        let err = Config::load(None, env(&[("TESSERA_MAIL__TRANSPORT", "smtp")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`mail.smtp_url`"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n[keys]\nreload_secs = 7\n").unwrap();
        let config = Config::load(
            Some(&path),
            env(&[
                ("TESSERA_LISTEN", "127.0.0.1:9001"),
                ("TESSERA_ISSUER", "https://id.example.com/"),
                ("TESSERA_DATABASE_URL", "postgres://u@127.0.0.1/db"),
                (
                    "TESSERA_MASTER_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
                ("TESSERA_HTTP__SHUTDOWN_GRACE_SECS", "3"),
                ("TESSERA_UNRELATED", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.issuer(), "https://id.example.com");
        assert_eq!(config.keys.reload_secs, 7);
        assert_eq!(config.http.shutdown_grace_secs, 3);
        assert_eq!(config.database_url(), "postgres://u@127.0.0.1/db");
        assert!(!config.uses_embedded_database());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = Config::load(
            None,
            env(&[
                ("TESSERA_DATABASE_URL", "postgres://user:hunter2@127.0.0.1/db"),
                (
                    "TESSERA_MASTER_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
            ]),
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("AAAAAAAA"), "{debug}");
    }

    #[test]
    fn every_key_is_accepted_and_every_field_is_listed() {
        // Each listed path exists in the struct (deny_unknown_fields would reject it).
        for &(path, var, kind) in KEYS {
            assert!(var.starts_with("TESSERA_"));
            let value = match kind {
                ValueKind::Int => toml::Value::Integer(200),
                ValueKind::Bool => toml::Value::Boolean(true),
                ValueKind::Str => toml::Value::String(sample_string(path)),
                ValueKind::List => toml::Value::Array(vec![toml::Value::String(sample_string(path))]),
            };
            let mut table = toml::Table::new();
            set_path(&mut table, path, value);
            let parsed: Result<Config, _> = toml::Value::Table(table).try_into();
            assert!(parsed.is_ok(), "{path}: {parsed:?}");
        }
        // Each field of the default serialisation is listed.
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for path in leaf_paths(&defaults, "")
            .into_iter()
            .filter(|p| !p.starts_with("sessions.channels"))
        {
            assert!(
                KEYS.iter().any(|(p, _, _)| *p == path),
                "{path} is missing from KEYS"
            );
        }
    }

    #[test]
    fn every_key_is_documented() {
        let docs = include_str!("../../../docs/configuration.md");
        for &(path, var, _) in KEYS {
            assert!(
                docs.contains(&format!("`{path}`")),
                "docs/configuration.md lacks `{path}`"
            );
            assert!(docs.contains(var), "docs/configuration.md lacks {var}");
        }
    }

    #[test]
    fn the_documented_example_file_is_valid() {
        let docs = include_str!("../../../docs/configuration.md");
        let start = docs.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + docs[start..].find("```").unwrap();
        let config: Config = toml::from_str(&docs[start..end]).unwrap();
        config.validate().unwrap();
        assert_eq!(config.issuer(), "https://id.example.com");
    }

    fn sample_string(path: &str) -> String {
        match path {
            "listen" => "127.0.0.1:1".into(),
            "log.format" => "json".into(),
            "mail.transport" => "file".into(),
            "sessions.on_limit" => "reject".into(),
            "tokens.access_token_alg" => "RS256".into(),
            "mail.from" => "a@b.c".into(),
            _ => "x".into(),
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
                _ => out.push(path),
            }
        }
        out
    }

    #[test]
    fn alert_settings_are_checked_and_named() {
        let config = Config::load(None, Vec::new()).unwrap();
        assert!(config.alerts.new_sign_in_email);
        assert_eq!(config.alerts.new_sign_in_max_per_hour, 3);
        let config = Config::load(
            None,
            env(&[
                ("TESSERA_ALERTS__NEW_SIGN_IN_EMAIL", "false"),
                ("TESSERA_ALERTS__WEBHOOK_URL", "https://hooks.example.com/tessera"),
                ("TESSERA_ALERTS__WEBHOOK_SECRET", "0123456789abcdef0123"),
            ]),
        )
        .unwrap();
        assert!(!config.alerts.new_sign_in_email);
        assert_eq!(
            config.alerts.webhook_url.as_deref(),
            Some("https://hooks.example.com/tessera")
        );
        for (text, key) in [
            ("[alerts]\nwebhook_url = \"ftp://x\"\n", "`alerts.webhook_url`"),
            ("[alerts]\nwebhook_url = \"not a url\"\n", "`alerts.webhook_url`"),
            (
                "[alerts]\nwebhook_secret = \"short\"\n",
                "`alerts.webhook_secret`",
            ),
            (
                "[alerts]\ndevice_cookie_days = 401\n",
                "`alerts.device_cookie_days`",
            ),
            (
                "[alerts]\nnew_sign_in_max_per_hour = 0\n",
                "`alerts.new_sign_in_max_per_hour`",
            ),
            ("[alerts]\nabuse_window_secs = 0\n", "`alerts.abuse_window_secs`"),
        ] {
            let err = load_toml(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = load_toml("[alerts]\nwebhook_secret = \"short\"\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("short"), "{err}");
    }
}
