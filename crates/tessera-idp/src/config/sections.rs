//! The sections of the configuration (`[tokens]`, `[sessions]`, …), each with its
//! defaults: the one place a default is written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;
pub use tessera_config::{LogConfig, LogFormat};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Refuse login until the e-mail address is verified.
    pub require_verified_email: bool,
    /// Seconds an e-mail verification link (and an e-mail change's confirmation link) stays
    /// valid.
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

/// The device authorization grant (RFC 8628): TVs and command-line tools that show a code
/// the user enters on the hosted `/device` page.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Seconds a device code and its user code stay valid (`expires_in`).
    pub code_ttl_secs: u64,
    /// Seconds a device must wait between polls of the token endpoint (`interval`).
    pub poll_interval_secs: u64,
    /// Wrong user codes entered from one client IP within `login.window_secs` before that
    /// IP is refused.
    pub max_failures_per_ip: u32,
    /// Wrong user codes entered from anywhere within `login.window_secs` before every
    /// entry is refused: bounds what a distributed guesser can try.
    pub max_failures: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            code_ttl_secs: 600,
            poll_interval_secs: 5,
            max_failures_per_ip: 10,
            max_failures: 1000,
        }
    }
}

/// JWT client authentication (`private_key_jwt`, `client_secret_jwt`; docs/clients.md):
/// how long an assertion may live, and how clients' `jwks_uri` documents are fetched.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthConfig {
    /// The longest lifetime (`exp` from now, and from `iat` when present) of a client
    /// assertion; a longer one is refused. Each assertion's `jti` is remembered until its
    /// `exp`, so this also bounds the replay cache.
    pub assertion_max_lifetime_secs: u64,
    /// Seconds a fetched `jwks_uri` document is used before it is fetched again.
    pub jwks_cache_secs: u64,
    /// At most one fetch of a `jwks_uri` per this many seconds, even when an assertion names
    /// a key id the cached document lacks (so forged key ids cannot make the provider hammer
    /// the client's server).
    pub jwks_refetch_interval_secs: u64,
    /// A `jwks_uri` document longer than this many bytes is refused.
    pub jwks_max_bytes: u64,
    /// A `jwks_uri` fetch that takes longer than this many milliseconds fails.
    pub jwks_fetch_timeout_ms: u64,
    /// Allow `jwks_uri` hosts that resolve to loopback addresses (127.0.0.0/8, ::1): for
    /// tests and single-host development only. Private, link-local (169.254.169.254) and
    /// other internal addresses are refused regardless.
    pub jwks_uri_allow_loopback: bool,
}

impl Default for ClientAuthConfig {
    fn default() -> Self {
        ClientAuthConfig {
            assertion_max_lifetime_secs: 3600,
            jwks_cache_secs: 300,
            jwks_refetch_interval_secs: 30,
            jwks_max_bytes: 65_536,
            jwks_fetch_timeout_ms: 3000,
            jwks_uri_allow_loopback: false,
        }
    }
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
    /// `file` writes each message as an `.eml` file into `mail.file_dir`; `smtp` delivers
    /// through `mail.smtp_url`. Unset: `smtp` when `mail.smtp_url` is set, else `file` (the
    /// embedded default); read it through [`MailConfig::transport`].
    pub transport: Option<MailTransport>,
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://host:465`. Credentials are refused over plaintext to a non-loopback host.
    pub smtp_url: Option<Secret>,
    /// The From address.
    pub from: String,
    /// Directory of the `file` transport; defaults to `data_dir/mail`.
    pub file_dir: Option<PathBuf>,
}

impl MailConfig {
    /// The transport in use: the configured one, or `smtp` when only a server is given
    /// (an operator who names a server expects it to be used).
    pub fn transport(&self) -> MailTransport {
        match (self.transport, &self.smtp_url) {
            (Some(transport), _) => transport,
            (None, Some(_)) => MailTransport::Smtp,
            (None, None) => MailTransport::File,
        }
    }
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
    /// DPoP (RFC 9449): sender-constrained tokens.
    pub dpop: DpopConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Whether every DPoP proof must carry a nonce this provider issued (RFC 9449 §8): a
    /// proof without one is answered `use_dpop_nonce` with a fresh nonce in `DPoP-Nonce`.
    pub require_nonce: bool,
    /// Seconds a nonce is issued for; one is accepted for up to twice this (the window it was
    /// issued in and the next). Nonces are derived from the master key, so every node
    /// accepts every node's.
    pub nonce_lifetime_secs: u64,
    /// How old a proof's `iat` may be, in seconds; its `jti` is remembered (across nodes,
    /// through the ephemeral store) for this long plus `tokens.leeway_secs`.
    pub proof_max_age_secs: u64,
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
pub struct MetricsConfig {
    /// Record Prometheus metrics and serve them, unauthenticated, at `GET /metrics`. Keep
    /// that path off the internet (scrape nodes directly, or block it at the proxy).
    pub enabled: bool,
    /// Seconds between refreshes of the gauges read from the stores (readiness, Redis,
    /// active sessions, signing-key age).
    pub refresh_secs: u64,
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
            dpop: DpopConfig::default(),
        }
    }
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            require_nonce: false,
            nonce_lifetime_secs: 300,
            proof_max_age_secs: 60,
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
            transport: None,
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

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            refresh_secs: 30,
        }
    }
}

/// `[mfa]`: second factors.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// Who must pass a second factor (a client's `mfa_policy` overrides it for that client):
    /// `off`, `optional` (users opt in), `adaptive` (as optional, and a risky sign-in of a
    /// user without a factor passes an e-mailed code) or `required` (a user without a factor
    /// enrols one while signing in). A user with a factor is always asked for it.
    pub policy: MfaPolicy,
    /// The name authenticator apps show beside the account (the `issuer` of the otpauth URI).
    pub totp_issuer: String,
    /// Seconds a sign-in waits for its second factor (the mfaToken's lifetime).
    pub challenge_ttl_secs: u64,
    /// How SMS codes leave: `file` (JSON files in `sms_file_dir`, for development) or
    /// `webhook` (a signed JSON POST to the deployment's SMS gateway).
    pub sms_sender: SmsSenderKind,
    /// The directory of the `file` sender; defaults to `data_dir/sms`.
    pub sms_file_dir: Option<PathBuf>,
    /// The SMS gateway's URL (`webhook`).
    pub sms_webhook_url: Option<String>,
    /// The HMAC key of the webhook's `X-Tessera-Signature` (at least 16 characters).
    pub sms_webhook_secret: Option<Secret>,
}

/// Who must pass a second factor (`mfa.policy`, or a client's `mfa_policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    /// Only users who enrolled a factor pass one, and the deployment does not offer
    /// enrolment as a requirement anywhere.
    Off,
    /// Users opt in.
    #[default]
    Optional,
    /// As `optional`, and a risky sign-in (R25) of a user without a factor passes a code
    /// e-mailed to the verified address.
    Adaptive,
    /// Every user passes a factor; one without enrols an authenticator app while signing in.
    Required,
}

impl MfaPolicy {
    pub fn parse(text: &str) -> Option<MfaPolicy> {
        match text {
            "off" => Some(MfaPolicy::Off),
            "optional" => Some(MfaPolicy::Optional),
            "adaptive" => Some(MfaPolicy::Adaptive),
            "required" => Some(MfaPolicy::Required),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MfaPolicy::Off => "off",
            MfaPolicy::Optional => "optional",
            MfaPolicy::Adaptive => "adaptive",
            MfaPolicy::Required => "required",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsSenderKind {
    File,
    Webhook,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            policy: MfaPolicy::Optional,
            totp_issuer: "Tessera".to_owned(),
            challenge_ttl_secs: 300,
            sms_sender: SmsSenderKind::File,
            sms_file_dir: None,
            sms_webhook_url: None,
            sms_webhook_secret: None,
        }
    }
}
