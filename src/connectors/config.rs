//! `[[connectors]]`: a list of connectors, each with a unique `name` and a `kind`
//! (`http`, `genesys`, `amazon_connect`, `innovaphone`, `ccai`) plus the settings of that kind.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::config::{ConfigErrors, resolve_secret};
use crate::model::contact_center::EventTimeBounds;

pub use super::amazon_connect::config::AmazonConnectConfig;
pub use super::ccai::config::CcaiConfig;
pub use super::genesys::config::GenesysConfig;
pub use super::http::config::HttpConnectorConfig;
pub use super::innovaphone::config::InnovaphoneConfig;

/// One `[[connectors]]` entry; `kind` selects the variant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectorConfig {
    /// A platform without a dedicated connector, described by request templates.
    Http(Box<HttpConnectorConfig>),
    /// Genesys Cloud (OAuth client credentials, REST, Notifications WebSocket).
    Genesys(GenesysConfig),
    /// Amazon Connect (AWS SDK, GetCurrentUserData polling).
    AmazonConnect(AmazonConnectConfig),
    /// innovaphone PBX (AppWebsocket login, PbxApi presence).
    Innovaphone(Box<InnovaphoneConfig>),
    /// Google Contact Center AI Platform (Basic auth, REST, polling).
    Ccai(Box<CcaiConfig>),
}

impl ConnectorConfig {
    pub fn name(&self) -> &str {
        match self {
            ConnectorConfig::Http(c) => &c.name,
            ConnectorConfig::Genesys(c) => &c.name,
            ConnectorConfig::AmazonConnect(c) => &c.name,
            ConnectorConfig::Innovaphone(c) => &c.name,
            ConnectorConfig::Ccai(c) => &c.name,
        }
    }

    /// The status catalog when the configuration alone defines it (no API read): what
    /// `check-config` checks the mapping rules against before anything runs.
    pub fn static_catalog(&self) -> Option<Vec<crate::model::contact_center::CatalogStatus>> {
        match self {
            ConnectorConfig::Http(c) if c.list_statuses.is_none() && !c.statuses.is_empty() => {
                Some(
                    c.statuses
                        .iter()
                        .map(|s| crate::model::contact_center::CatalogStatus {
                            id: s.id.clone(),
                            name: s.name.clone(),
                            kind: s.kind,
                            settable: s.settable,
                        })
                        .collect(),
                )
            }
            ConnectorConfig::Innovaphone(c) => Some(super::innovaphone::static_catalog(c)),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorConfig::Http(_) => "http",
            ConnectorConfig::Genesys(_) => "genesys",
            ConnectorConfig::AmazonConnect(_) => "amazon_connect",
            ConnectorConfig::Innovaphone(_) => "innovaphone",
            ConnectorConfig::Ccai(_) => "ccai",
        }
    }

    pub fn limits(&self) -> &LimitsConfig {
        match self {
            ConnectorConfig::Http(c) => &c.limits,
            ConnectorConfig::Genesys(c) => &c.limits,
            ConnectorConfig::AmazonConnect(c) => &c.limits,
            ConnectorConfig::Innovaphone(c) => &c.limits,
            ConnectorConfig::Ccai(c) => &c.limits,
        }
    }

    pub fn event_time(&self) -> &EventTimeConfig {
        match self {
            ConnectorConfig::Http(c) => &c.event_time,
            ConnectorConfig::Genesys(c) => &c.event_time,
            ConnectorConfig::AmazonConnect(c) => &c.event_time,
            ConnectorConfig::Innovaphone(c) => &c.event_time,
            ConnectorConfig::Ccai(c) => &c.event_time,
        }
    }
}

/// `[connectors.event_time]`: the range an event's own time must fall in, shared by every
/// kind. Inbound webhook requests carrying an event outside it get 400; events from a
/// stream or poll outside it are dropped, logged and counted
/// (`connector_events_total{outcome="out_of_range"}`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventTimeConfig {
    /// Events dated more than this many seconds ahead of this server's clock are refused
    /// (1..=3600). A future date would make every real event after it look stale.
    pub max_future_skew_secs: u64,
    /// Pushed events older than this many seconds are refused (60..=31536000). Polled
    /// statuses carry the time the status began, so only the future bound applies to them.
    pub max_age_secs: u64,
}

impl Default for EventTimeConfig {
    fn default() -> Self {
        let d = EventTimeBounds::default();
        Self {
            max_future_skew_secs: d.max_future_skew.as_secs(),
            max_age_secs: d.max_age.as_secs(),
        }
    }
}

impl EventTimeConfig {
    pub fn bounds(&self) -> EventTimeBounds {
        EventTimeBounds {
            max_future_skew: std::time::Duration::from_secs(self.max_future_skew_secs),
            max_age: std::time::Duration::from_secs(self.max_age_secs),
        }
    }

    fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        if !(1..=3600).contains(&self.max_future_skew_secs) {
            errs.push(
                format!("{path}.event_time.max_future_skew_secs"),
                "must be between 1 and 3600",
            );
        }
        if !(60..=365 * 24 * 3600).contains(&self.max_age_secs) {
            errs.push(
                format!("{path}.event_time.max_age_secs"),
                "must be between 60 and 31536000 (one year)",
            );
        }
    }
}

/// `[connectors.limits]`: request rate, retries and timeouts, shared by every kind.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request rate towards the platform, requests per second (fractions allowed,
    /// e.g. 5.0 = 300 per minute, the Genesys client-credentials budget).
    pub requests_per_sec: f64,
    /// Retries of a transient failure (throttled, 5xx, network) before giving up.
    pub max_retries: u32,
    /// First backoff delay, in milliseconds; doubles per retry, with jitter.
    pub backoff_base_ms: u64,
    /// Longest backoff or `Retry-After` wait honoured, in milliseconds.
    pub backoff_max_ms: u64,
    /// Timeout of one request, in seconds.
    pub request_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_sec: 5.0,
            max_retries: 4,
            backoff_base_ms: 500,
            backoff_max_ms: 60_000,
            request_timeout_secs: 15,
        }
    }
}

impl LimitsConfig {
    fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        if !(self.requests_per_sec > 0.0 && self.requests_per_sec.is_finite()) {
            errs.push(format!("{path}.limits.requests_per_sec"), "must be > 0");
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            errs.push(
                format!("{path}.limits.backoff_max_ms"),
                "backoff_base_ms must be > 0 and not above backoff_max_ms",
            );
        }
        if self.request_timeout_secs == 0 {
            errs.push(
                format!("{path}.limits.request_timeout_secs"),
                "must be at least 1",
            );
        }
    }
}

/// Resolves `{key}` / `{key}_file` into `inline`; reports a missing required secret.
pub fn require_secret(
    errs: &mut ConfigErrors,
    path: &str,
    inline: &mut Option<SecretString>,
    file: Option<&std::path::Path>,
) {
    *inline = resolve_secret(errs, path, inline.take(), file);
    if inline.is_none() && !errs.iter().any(|i| i.path.starts_with(path)) {
        errs.push(path, format!("is required (give {path} or {path}_file)"));
    }
}

/// Checks every `[[connectors]]` entry (`path` is the array's key) and resolves secrets.
pub fn validate(connectors: &mut [ConnectorConfig], path: &str, errs: &mut ConfigErrors) {
    let mut names = HashSet::new();
    for (i, c) in connectors.iter_mut().enumerate() {
        let path = format!("{path}[{i}]");
        let name = c.name().to_owned();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            errs.push(
                format!("{path}.name"),
                "must be non-empty and use only letters, digits, '-' and '_'",
            );
        }
        if !names.insert(name.clone()) {
            errs.push(
                format!("{path}.name"),
                format!("duplicate connector name {name:?}"),
            );
        }
        c.limits().validate(&path, errs);
        c.event_time().validate(&path, errs);
        match c {
            ConnectorConfig::Http(h) => h.validate(&path, errs),
            ConnectorConfig::Genesys(g) => g.validate(&path, errs),
            ConnectorConfig::AmazonConnect(a) => a.validate(&path, errs),
            ConnectorConfig::Innovaphone(i) => i.validate(&path, errs),
            ConnectorConfig::Ccai(c) => c.validate(&path, errs),
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
