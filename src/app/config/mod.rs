//! Typed, layered configuration: documented defaults < TOML file < environment
//! (`PRESENCE_BRIDGE__SECTION__KEY`). Every struct rejects unknown keys, and
//! [`Config::load`] reports every validation error at once, each with its key path.
//!
//! Each part owns its section's type and `validate`: `[server]` and `[api]` are
//! [`crate::http::config`], `[store]` is [`crate::store::config`], `[log]` is
//! [`crate::telemetry`], `[graph]` is [`crate::graph::config`], `[sync]` and the mapping tables
//! are [`crate::engine::config`], `[[connectors]]` is [`crate::connectors::config`]. This
//! module assembles them, loads the file and checks what spans several sections.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ConfigErrors;
use crate::connectors::config::ConnectorConfig;
use crate::engine::config::{CcToTeamsRule, EngineConfig, SyncConfig, TeamsToCcRule};
use crate::graph::config::GraphConfig;
use crate::graph::notifications::config::PresenceSource;
use crate::http::config::{ApiConfig, ServerConfig};
use crate::runtime::alerts::config::{AlertSinkConfig, AlertingConfig};
use crate::store::config::StoreConfig;
use crate::telemetry::LogConfig;

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
    /// Dataverse environments (Microsoft Dynamics 365) the contact lifecycle is written to.
    #[serde(default)]
    pub dynamics: Vec<crate::integrations::dynamics::DynamicsConfig>,
    /// `[messaging]`: the Teams chat ⇄ Genesys Cloud Open Messaging bridge.
    #[serde(default)]
    pub messaging: crate::integrations::messaging::config::MessagingConfig,
    /// Where alerts are sent (a generic JSON webhook or a Teams webhook), each with a name.
    #[serde(default)]
    pub alerts: Vec<AlertSinkConfig>,
    /// When a condition becomes an alert.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// The operator console at `/` and its sign-in.
    #[serde(default)]
    pub console: crate::http::console::config::ConsoleConfig,
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
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut cfg = Self::from_toml_str_with_env(&text, env.clone()).map_err(|e| match e {
            ConfigError::Parse(msg) => {
                ConfigError::Parse(format!("config file {}: {msg}", path.display()))
            }
            other => other,
        })?;
        cfg.resolve_and_validate().map_err(|e| match e {
            ConfigError::Invalid(errs) => {
                // A value set by the environment is blamed on its variable, not on the file.
                let mut named = ConfigErrors::default();
                for issue in errs.iter() {
                    match load::env_var_for(env.clone(), &issue.path) {
                        Some(var) => named.push(
                            format!("{} (environment variable {var})", issue.path),
                            issue.message.clone(),
                        ),
                        None => named.push(issue.path.clone(), issue.message.clone()),
                    }
                }
                ConfigError::Invalid(named)
            }
            other => other,
        })?;
        Ok(cfg)
    }

    /// Parse TOML text plus environment overrides, without validation. Unknown keys and
    /// values of the wrong type are all reported ([`ConfigError::Invalid`]), each with its
    /// key path; a TOML syntax error stops at the first ([`ConfigError::Parse`]).
    pub fn from_toml_str_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        load::parse(text, env)
    }

    /// Resolves `*_file` secrets and checks every section, then what spans sections;
    /// collects every error.
    pub fn resolve_and_validate(&mut self) -> Result<(), ConfigError> {
        let mut errs = ConfigErrors::default();
        self.server.validate("server", &mut errs);
        self.store.validate("store", &mut errs);
        self.log.validate("log", &mut errs);
        self.api.validate("api", &mut errs);
        self.graph.validate("graph", &mut errs);
        self.sync.validate("sync", &mut errs);
        crate::engine::config::validate_rules(&self.teams_to_cc, &self.cc_to_teams, &mut errs);
        crate::connectors::config::validate(&mut self.connectors, "connectors", &mut errs);
        crate::runtime::alerts::config::validate_sinks(&mut self.alerts, "alerts", &mut errs);
        self.alerting.validate("alerting", &mut errs);
        cross::check(self, &mut errs);
        self.messaging.validate("messaging", &mut errs);
        self.messaging.check_needs(
            "messaging",
            &self.graph,
            self.server.public_url.is_some(),
            &mut errs,
        );
        self.console.validate(
            "console",
            self.server.listen,
            self.graph.tenant_id.as_deref(),
            self.graph.client_id.as_deref(),
            &mut errs,
        );
        let names: Vec<&str> = self.connectors.iter().map(ConnectorConfig::name).collect();
        crate::integrations::dynamics::config::validate(
            &mut self.dynamics,
            &names,
            "dynamics",
            &mut errs,
        );
        crate::engine::config::check_rule_connectors(
            &self.teams_to_cc,
            &self.cc_to_teams,
            &names,
            &mut errs,
        );
        if matches!(
            self.graph.presence_source,
            Some(PresenceSource::Webhook | PresenceSource::Hybrid)
        ) && self.server.public_url.is_none()
        {
            errs.push(
                "graph.presence_source",
                "webhook and hybrid need server.public_url (where Graph sends notifications)",
            );
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }

    /// What is valid but probably not meant: shown by `check-config` and logged at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.graph.enabled() && self.connectors.is_empty() {
            out.push(
                "neither [graph] (graph.tenant_id) nor any [[connectors]] entry is configured: \
                 the daemon answers on its endpoints but syncs nothing"
                    .to_owned(),
            );
        }
        out
    }

    /// `[sync]` and both mapping tables, as the engine takes them.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            sync: self.sync.clone(),
            teams_to_cc: self.teams_to_cc.clone(),
            cc_to_teams: self.cc_to_teams.clone(),
        }
    }

    /// The effective configuration as TOML, secrets shown as `[redacted]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not render: {e}"))
    }
}

mod cross;
mod load;

#[cfg(test)]
mod tests;
