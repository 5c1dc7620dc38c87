//! Typed, layered configuration: documented defaults < TOML file < environment
//! (`PRESENCE_BRIDGE__SECTION__KEY`). Every struct rejects unknown keys, and
//! [`Config::load`] reports every validation error at once, each with its key path.
//!
//! Each part owns the config of its section: `[graph]` is [`crate::graph::config`], `[sync]`
//! and the mapping tables are [`crate::engine::config`], `[[connectors]]` is
//! [`crate::connectors::config`]. This module owns the rest and the loading machinery.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::connectors::config::ConnectorConfig;
use crate::engine::config::{CcToTeamsRule, SyncConfig, TeamsToCcRule};
use crate::graph::config::GraphConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP listener and public URL.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where state lives.
    #[serde(default)]
    pub store: StoreConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The management API (`/api/v1/...`).
    #[serde(default)]
    pub api: ApiConfig,
    /// Microsoft Graph (the Teams side).
    #[serde(default)]
    pub graph: GraphConfig,
    /// Sync behaviour shared by both directions.
    #[serde(default)]
    pub sync: SyncConfig,
    /// Mapping table for Teams → contact center, first match wins.
    #[serde(default)]
    pub teams_to_cc: Vec<TeamsToCcRule>,
    /// Mapping table for contact center → Teams, first match wins.
    #[serde(default)]
    pub cc_to_teams: Vec<CcToTeamsRule>,
    /// Contact-center connectors, each with a unique name.
    #[serde(default)]
    pub connectors: Vec<ConnectorConfig>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server binds, e.g. `0.0.0.0:8080`. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Public HTTPS base URL under which Graph and connectors reach this daemon; webhook URLs
    /// are built from it (`{public_url}/graph/notifications`). Required for webhooks.
    pub public_url: Option<url::Url>,
    /// Largest request body accepted, in bytes; larger requests get 413.
    pub body_limit_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests and jobs, in seconds.
    pub shutdown_grace_secs: u64,
    /// Per-request timeout for inbound requests, in seconds.
    pub request_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".parse().expect("valid default address"),
            public_url: None,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_secs: 20,
            request_timeout_secs: 30,
        }
    }
}

/// `[store]`
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    /// May carry a password, so it is redacted when printed.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: SecretString,
    /// Maximum connections in the pool.
    pub max_connections: u32,
    /// SQLite busy timeout, in milliseconds.
    pub sqlite_busy_timeout_ms: u64,
    /// How long audit entries are kept, in days.
    pub audit_retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://data/presence-bridge.db"),
            max_connections: 8,
            sqlite_busy_timeout_ms: 5_000,
            audit_retention_days: 14,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("max_connections", &self.max_connections)
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .field("audit_retention_days", &self.audit_retention_days)
            .finish()
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `presence_bridge=debug,tower_http=info`.
    /// `RUST_LOG`, when set, wins.
    pub filter: String,
    /// `json`, `pretty`, or `auto` (JSON when stdout is not a terminal).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

/// `[api]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bearer token that `/api/v1/*` requires. Without one (inline or file) the API answers 404.
    #[serde(serialize_with = "serialize_redacted_opt")]
    pub bearer_token: Option<SecretString>,
    /// File holding the bearer token (trailing newline trimmed).
    pub bearer_token_file: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// Errors

/// One validation error: the key path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub path: String,
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl ConfigErrors {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigIssue> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", issue.path, issue.message)?;
        }
        Ok(())
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(ConfigErrors),
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Prefix of environment overrides: `PRESENCE_BRIDGE__SERVER__LISTEN=0.0.0.0:9000`.
pub const ENV_PREFIX: &str = "PRESENCE_BRIDGE";

impl Config {
    /// Load from a TOML file plus the process environment, then validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, env)
    }

    /// Load from a TOML file plus the given environment (tests pass their own), then validate.
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "not found (give --config PATH or set PRESENCE_BRIDGE_CONFIG)".into()
                }
                _ => e.to_string(),
            },
        })?;
        let mut cfg = Self::from_toml_str_with_env(&text, env).map_err(|e| match e {
            ConfigError::Parse(msg) => {
                ConfigError::Parse(format!("config file {}: {msg}", path.display()))
            }
            other => other,
        })?;
        cfg.resolve_and_validate()?;
        Ok(cfg)
    }

    /// Parse TOML text plus environment overrides, without validation.
    pub fn from_toml_str_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env_map: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env_map)),
            )
            .build()
            .map_err(|e| ConfigError::Parse(describe_config_error(&e)))?;
        built
            .try_deserialize::<Config>()
            .map_err(|e| ConfigError::Parse(describe_config_error(&e)))
    }

    /// Resolve `*_file` secrets and check every section; collects every error.
    pub fn resolve_and_validate(&mut self) -> Result<(), ConfigError> {
        let mut errs = ConfigErrors::default();
        self.validate_core(&mut errs);
        crate::graph::config::validate(self, &mut errs);
        crate::engine::config::validate(self, &mut errs);
        crate::connectors::config::validate(self, &mut errs);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }

    fn validate_core(&mut self, errs: &mut ConfigErrors) {
        if let Some(u) = &self.server.public_url
            && u.scheme() != "https"
            && u.scheme() != "http"
        {
            errs.push("server.public_url", "must be an http(s) URL");
        }
        if self.server.body_limit_bytes < 1024 {
            errs.push("server.body_limit_bytes", "must be at least 1024");
        }
        if self.server.request_timeout_secs == 0 {
            errs.push("server.request_timeout_secs", "must be at least 1");
        }
        let url = self.store.url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            errs.push(
                "store.url",
                "must start with sqlite:// or postgres:// (e.g. sqlite://data/presence-bridge.db)",
            );
        }
        if self.store.max_connections == 0 {
            errs.push("store.max_connections", "must be at least 1");
        }
        if self.store.audit_retention_days == 0 {
            errs.push("store.audit_retention_days", "must be at least 1");
        }
        self.api.bearer_token = resolve_secret(
            errs,
            "api.bearer_token",
            self.api.bearer_token.take(),
            self.api.bearer_token_file.as_deref(),
        );
    }

    /// The SQLite database file named by `store.url`, when the store is SQLite on a file.
    pub fn store_path(&self) -> Option<PathBuf> {
        let url = self.store.url.expose_secret();
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// The effective configuration as TOML, secrets shown as `[redacted]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not render: {e}"))
    }
}

/// Reads a secret given inline or by file (not both). A file's trailing newline is trimmed.
/// Errors are pushed under `path` / `{path}_file`; returns the secret when one was found.
pub fn resolve_secret(
    errs: &mut ConfigErrors,
    path: &str,
    inline: Option<SecretString>,
    file: Option<&Path>,
) -> Option<SecretString> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            errs.push(path, format!("give either {path} or {path}_file, not both"));
            None
        }
        (Some(s), None) => {
            if s.expose_secret().is_empty() {
                errs.push(path, "is empty");
                None
            } else {
                Some(s)
            }
        }
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(text) => {
                let trimmed = text.trim_end_matches(['\n', '\r']);
                if trimmed.is_empty() {
                    errs.push(format!("{path}_file"), format!("{} is empty", f.display()));
                    None
                } else {
                    Some(SecretString::from(trimmed.to_owned()))
                }
            }
            Err(e) => {
                errs.push(
                    format!("{path}_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                None
            }
        },
        (None, None) => None,
    }
}

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string().replacen(":REDACTED@", ":[redacted]@", 1)
        }
        _ => url.to_owned(),
    }
}

/// Serializes a secret as `[redacted]`.
pub fn serialize_redacted<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("[redacted]")
}

/// Serializes an optional secret as `[redacted]` when present.
pub fn serialize_redacted_opt<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("[redacted]"),
        None => s.serialize_none(),
    }
}

fn serialize_redacted_url<S: serde::Serializer>(v: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(v.expose_secret()))
}

fn describe_config_error(e: &config::ConfigError) -> String {
    // The config crate's messages already name the key ("unknown field `x`, expected one of ..
    // for key `server`"); keep them on one line.
    e.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests;
