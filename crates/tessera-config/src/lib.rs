//! Tessera's configuration loader, shared by the identity provider (`tessera serve`) and
//! the gateway (`tessera gateway`): one TOML file, then the environment variables of a
//! key table, deserialised into the caller's serde struct (which should
//! `deny_unknown_fields`). Errors name the key and where its value came from.
//!
//! A caller keeps its own struct, its defaults and its validation; this crate holds only
//! the machinery both would otherwise repeat:
//!
//! - [`Layers`]: the file's table with the environment overrides applied, and which
//!   sources took part (for error messages);
//! - [`ConfigError`]: the one error type, with [`Layers::attribute`] adding "(from VAR)"
//!   when an invalid value came from the environment;
//! - [`Secret`]: a value that never appears in `Debug` or serialised output;
//! - [`LogConfig`]: the `[log]` section both share;
//! - [`check`]: the keys-and-docs-in-step checks each crate runs in its tests.

pub mod check;
mod log;
mod secret;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use log::{LogConfig, LogFormat};
pub use secret::Secret;

/// How an environment variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Str,
    /// A whole number.
    Int,
    /// `true|1|yes|on` or `false|0|no|off`, in any case.
    Bool,
    /// A list of strings; in the environment, comma-separated.
    List,
}

/// One key that the environment can set: its dotted path in the file, its variable, and
/// how the variable's text is read.
pub type EnvKey = (&'static str, &'static str, ValueKind);

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

impl ConfigError {
    /// The value at `key` is unusable for `reason`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Reads a configuration file's text.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// A configuration's TOML table with the environment applied, and where it came from.
#[derive(Debug)]
pub struct Layers {
    pub table: toml::Table,
    file: Option<String>,
    /// The variables that were applied, in the order they were read.
    from_env: Vec<&'static str>,
    keys: &'static [EnvKey],
}

impl Layers {
    /// Parses `text` (the file named `file_name`, or nothing) and applies every variable of
    /// `keys` found in `env` on top; variables that are not in `keys` are ignored.
    pub fn read(
        text: &str,
        file_name: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
        keys: &'static [EnvKey],
    ) -> Result<Layers, ConfigError> {
        let mut table = toml::from_str::<toml::Table>(text).map_err(|e| ConfigError::Parse {
            source_name: file_name.unwrap_or("the configuration").to_owned(),
            message: one_line(&e.to_string()),
        })?;
        let mut from_env = Vec::new();
        for (name, value) in env {
            let Some(&(path, var, kind)) = keys.iter().find(|(_, var, _)| *var == name) else {
                continue;
            };
            set_path(&mut table, path, env_value(var, path, kind, &value)?);
            from_env.push(var);
        }
        Ok(Layers {
            table,
            file: file_name.map(str::to_owned),
            from_env,
            keys,
        })
    }

    /// Reads the file at `file` (if any), then applies the environment as [`Layers::read`].
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        keys: &'static [EnvKey],
    ) -> Result<Layers, ConfigError> {
        match file {
            Some(path) => {
                let text = read_file(path)?;
                Layers::read(&text, Some(&path.display().to_string()), env, keys)
            }
            None => Layers::read("", None, env, keys),
        }
    }

    /// The sources that took part, for an error message: `file (with VAR, …)`.
    pub fn source_name(&self) -> String {
        let vars = self.from_env.join(", ");
        match (&self.file, self.from_env.is_empty()) {
            (Some(file), true) => file.clone(),
            (Some(file), false) => format!("{file} (with {vars})"),
            (None, false) => vars,
            (None, true) => "defaults".to_owned(),
        }
    }

    /// A parse error at these sources.
    pub fn parse_error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Parse {
            source_name: self.source_name(),
            message: message.into(),
        }
    }

    /// Deserialises `value` (the table, or a part the caller took out of it) into `T`.
    pub fn deserialize<T: DeserializeOwned>(&self, value: toml::Value) -> Result<T, ConfigError> {
        value
            .try_into()
            .map_err(|e: toml::de::Error| self.parse_error(one_line(&e.to_string())))
    }

    /// Deserialises the whole table into `T`.
    /// Deserialises the table (what is left of it) into `T`; the layers stay for
    /// [`Layers::attribute`].
    pub fn into_config<T: DeserializeOwned>(mut self) -> Result<(T, Layers), ConfigError> {
        let table = std::mem::take(&mut self.table);
        let config = self.deserialize(toml::Value::Table(table))?;
        Ok((config, self))
    }

    /// Says where an invalid value came from when an environment variable set it.
    pub fn attribute(&self, err: ConfigError) -> ConfigError {
        match err {
            ConfigError::Invalid { key, reason } => {
                match self.keys.iter().find(|(path, _, _)| *path == key) {
                    Some((_, var, _)) if self.from_env.contains(var) => ConfigError::Invalid {
                        key,
                        reason: format!("{reason} (from {var})"),
                    },
                    _ => ConfigError::Invalid { key, reason },
                }
            }
            other => other,
        }
    }
}

fn env_value(var: &str, path: &str, kind: ValueKind, value: &str) -> Result<toml::Value, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        source_name: var.to_owned(),
        message,
    };
    Ok(match kind {
        ValueKind::Str => toml::Value::String(value.to_owned()),
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
        ValueKind::List => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        ),
    })
}

/// Sets `value` at the dotted `path` of `table`, creating (or replacing with) tables on
/// the way.
pub fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
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

/// A (multi-line) parser message on one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
