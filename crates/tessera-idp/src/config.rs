//! Configuration: one TOML file (optional) plus `TESSERA_*` environment overrides, read
//! into one struct with one source of defaults, validated at start-up.
//!
//! Every key is listed in [`KEYS`] with its environment variable; `docs/configuration.md`
//! documents each one, and a test keeps the two in step. An unknown key or an invalid value
//! is an error that names the key — never a silent default.

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
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            data_dir: PathBuf::from("./tessera-data"),
            database_url: None,
            redis_url: None,
            master_key: None,
            database: DatabaseConfig::default(),
            keys: KeysConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
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
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
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

/// How an environment variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Str,
    Int,
}

/// Every configuration key (dotted path) with its environment variable and value kind.
pub const KEYS: &[(&str, &str, ValueKind)] = &[
    ("listen", "TESSERA_LISTEN", ValueKind::Str),
    ("issuer", "TESSERA_ISSUER", ValueKind::Str),
    ("data_dir", "TESSERA_DATA_DIR", ValueKind::Str),
    ("database_url", "TESSERA_DATABASE_URL", ValueKind::Str),
    ("redis_url", "TESSERA_REDIS_URL", ValueKind::Str),
    ("master_key", "TESSERA_MASTER_KEY", ValueKind::Str),
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
    ("log.format", "TESSERA_LOG__FORMAT", ValueKind::Str),
    ("log.level", "TESSERA_LOG__LEVEL", ValueKind::Str),
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
        config.validate()?;
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
        if let Some(key) = &self.master_key {
            decode_master_key(key.expose())?;
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
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "http.max_body_bytes",
                reason: "must be at least 1024".to_owned(),
            });
        }
        tracing_level_is_plausible(&self.log.level)?;
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
                ValueKind::Int => toml::Value::Integer(2048),
                ValueKind::Str => toml::Value::String(sample_string(path)),
            };
            let mut table = toml::Table::new();
            set_path(&mut table, path, value);
            let parsed: Result<Config, _> = toml::Value::Table(table).try_into();
            assert!(parsed.is_ok(), "{path}: {parsed:?}");
        }
        // Each field of the default serialisation is listed.
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for path in leaf_paths(&defaults, "") {
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
}
