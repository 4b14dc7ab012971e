//! Configuration: one TOML file (optional) plus `TESSERA_*` environment overrides, read
//! into one struct with one source of defaults, validated at start-up.
//!
//! Every key is listed in [`KEYS`] with its environment variable; `docs/configuration.md`
//! documents each one, and a test keeps the two in step. An unknown key or an invalid value
//! is an error that names the key — never a silent default.

//!
//! The loading machinery (file, environment, error attribution) is `tessera-config`'s,
//! shared with the gateway; this module holds the identity provider's struct:
//! [`sections`] (one struct per `[section]`, with its defaults), [`KEYS`] (the key table)
//! and the checks at start-up ([`Config::validate`], in `validate.rs`).

mod federation;
mod keys;
mod sections;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tessera_config::Layers;
pub use tessera_config::{ConfigError, Secret, ValueKind};

pub use federation::{is_provider_id, ClaimMapping, FederationConfig, ProviderConfig, ProviderKind};
pub use keys::KEYS;
pub use sections::*;

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
    pub device: DeviceConfig,
    pub client_auth: ClientAuthConfig,
    pub alerts: AlertsConfig,
    pub mfa: MfaConfig,
    pub federation: FederationConfig,
    pub mail: MailConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
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
            device: DeviceConfig::default(),
            client_auth: ClientAuthConfig::default(),
            alerts: AlertsConfig::default(),
            mfa: MfaConfig::default(),
            federation: FederationConfig::default(),
            mail: MailConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Config {
    /// Reads the configuration: defaults, then the TOML file (if any), then every
    /// `TESSERA_*` variable of [`KEYS`] found in `env`; then validates it and reads the
    /// secrets that `federation.providers[].client_secret_env` names from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let (mut config, layers) = Layers::load(file, env.clone(), KEYS)?.into_config::<Config>()?;
        config.validate().map_err(|err| layers.attribute(err))?;
        config.federation.resolve_secrets(&env)?;
        Ok(config)
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

    /// The directory of the `file` SMS sender.
    pub fn sms_dir(&self) -> PathBuf {
        self.mfa
            .sms_file_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sms"))
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
        .map_err(|_| ConfigError::invalid("master_key", "is not base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| ConfigError::invalid("master_key", format!("must be 32 bytes, got {}", bytes.len())))
}

#[cfg(test)]
mod tests;
