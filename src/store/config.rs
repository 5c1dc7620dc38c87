//! `[store]`: where state lives.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, redact_url, serialize_redacted_url};

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
    /// SQLite only: `full` (the default) or `normal`. Both keep an acknowledged item through a
    /// process crash (WAL); `full` also syncs the log to disk at every commit, so it survives
    /// power loss or an OS crash too, at a throughput cost that group commits mostly hide
    /// (README: "Durability").
    pub sqlite_synchronous: SqliteSynchronousMode,
    /// The name this process holds inbox leases under. A restarted process takes back the
    /// leases held under its name at once. Must be stable across restarts and unique per
    /// replica sharing one Postgres database (a StatefulSet pod name, a host name). Default:
    /// the host name.
    pub instance_id: Option<String>,
    /// Postgres only: how long the daemon keeps trying to reach the database server at start
    /// (refused, unreachable, timing out), in seconds, logging each attempt; 0 = fail at once.
    /// Commands other than `run` and `demo` never wait.
    pub connect_wait_secs: u64,
    /// Postgres only: how long a replica owns a piece of work (the engine, the Graph presence
    /// source, directory sync, a connector's event stream) without renewing it, in seconds.
    /// A replica killed outright is replaced within this time; a paused one is refused
    /// (fenced) once it has passed. Renewed every third of it.
    pub lease_secs: u64,
}

/// `store.sqlite_synchronous`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronousMode {
    Normal,
    #[default]
    Full,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://data/presence-bridge.db"),
            max_connections: 8,
            sqlite_busy_timeout_ms: 5_000,
            audit_retention_days: 14,
            sqlite_synchronous: SqliteSynchronousMode::Full,
            instance_id: None,
            connect_wait_secs: 60,
            lease_secs: 15,
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
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("instance_id", &self.instance_id)
            .field("connect_wait_secs", &self.connect_wait_secs)
            .field("lease_secs", &self.lease_secs)
            .finish()
    }
}

impl StoreConfig {
    pub fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        let url = self.url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            errs.push(
                ConfigErrors::key(path, "url"),
                "must start with sqlite:// or postgres:// (e.g. sqlite://data/presence-bridge.db)",
            );
        }
        errs.at_least(path, "max_connections", self.max_connections, 1);
        errs.at_least(path, "audit_retention_days", self.audit_retention_days, 1);
        errs.at_least(path, "lease_secs", self.lease_secs, 3);
        if self
            .instance_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            errs.push(
                ConfigErrors::key(path, "instance_id"),
                "must not be empty; leave it out to use the host name",
            );
        }
    }

    /// The name inbox leases are held under: `instance_id`, else the host name.
    pub fn instance_id(&self) -> String {
        if let Some(id) = &self.instance_id {
            return id.trim().to_owned();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "presence-bridge".to_owned())
    }

    /// The SQLite database file named by `url`, when the store is SQLite on a file.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let url = self.url.expose_secret();
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted_in_debug_and_toml() {
        let cfg = StoreConfig {
            url: SecretString::from("postgres://bridge:pw@db/pb"),
            ..StoreConfig::default()
        };
        assert!(!format!("{cfg:?}").contains(":pw@"));
        assert!(!toml::to_string(&cfg).unwrap().contains(":pw@"));
    }

    #[test]
    fn wrong_scheme_and_zero_pool_are_reported_with_their_keys() {
        let mut cfg = StoreConfig {
            url: SecretString::from("mysql://x"),
            max_connections: 0,
            ..StoreConfig::default()
        };
        let mut errs = ConfigErrors::default();
        cfg.validate("store", &mut errs);
        let paths: Vec<_> = errs.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["store.url", "store.max_connections"]);
    }
}
