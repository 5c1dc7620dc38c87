//! `[[alerts]]` (where alerts go) and `[alerting]` (when a condition becomes an alert).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, resolve_secret, serialize_redacted_opt};

/// What an alert is about. Each sink may take a subset (`conditions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    /// A user suspended by the oscillation breaker (cleared when sync resumes).
    UserSuspended,
    /// A sync account whose sign-in lapses within 14 days, lapsed, or was revoked.
    SyncAccount,
    /// The Graph client secret or certificate expires within `secret_warning_days`.
    ClientCredential,
    /// Presence shards without a working subscription (polled instead) for longer than
    /// `polling_fallback_minutes`.
    SubscriptionFallback,
    /// A connector down for longer than `connector_down_minutes`.
    ConnectorDown,
    /// The last reconciliation found more users with drift than `drift_threshold`.
    Drift,
}

impl ConditionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::UserSuspended => "user_suspended",
            ConditionKind::SyncAccount => "sync_account",
            ConditionKind::ClientCredential => "client_credential",
            ConditionKind::SubscriptionFallback => "subscription_fallback",
            ConditionKind::ConnectorDown => "connector_down",
            ConditionKind::Drift => "drift",
        }
    }
}

/// How a sink wants its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// A JSON document (`status`, `condition`, `severity`, `summary`, `detail`, `since`, `at`,
    /// `instance`) POSTed to `url`.
    Webhook,
    /// A Microsoft Teams incoming webhook or Workflows ("Post to a channel when a webhook
    /// request is received") URL: a message carrying an Adaptive Card.
    Teams,
}

/// One `[[alerts]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSinkConfig {
    /// Unique name, used in logs, metrics and `alerts test --sink`.
    pub name: String,
    /// `webhook` or `teams`.
    pub kind: SinkKind,
    /// Where to POST. A secret: webhook URLs carry their own credential.
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub url: Option<SecretString>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// The conditions this sink gets; empty (default) means all.
    #[serde(default)]
    pub conditions: Vec<ConditionKind>,
}

impl AlertSinkConfig {
    pub fn wants(&self, kind: ConditionKind) -> bool {
        self.conditions.is_empty() || self.conditions.contains(&kind)
    }
}

/// `[alerting]`: when a condition becomes an alert.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// How often conditions are looked at.
    pub evaluate_interval_secs: u64,
    /// A connector down this long raises `connector_down`.
    pub connector_down_minutes: u64,
    /// Presence shards polled instead of subscribed this long raise `subscription_fallback`.
    pub polling_fallback_minutes: u64,
    /// A reconciliation finding more users with drift than this raises `drift`.
    pub drift_threshold: usize,
    /// The Graph client secret or certificate expiring within this many days raises
    /// `client_credential`.
    pub secret_warning_days: i64,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            evaluate_interval_secs: 30,
            connector_down_minutes: 5,
            polling_fallback_minutes: 10,
            drift_threshold: 10,
            secret_warning_days: 30,
        }
    }
}

impl AlertingConfig {
    pub fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        errs.between(
            path,
            "evaluate_interval_secs",
            self.evaluate_interval_secs,
            1,
            3_600,
        );
        errs.at_least(path, "secret_warning_days", self.secret_warning_days, 1);
    }
}

/// Checks the `[[alerts]]` entries and reads their URLs from files.
pub fn validate_sinks(sinks: &mut [AlertSinkConfig], path: &str, errs: &mut ConfigErrors) {
    let mut names = std::collections::BTreeSet::new();
    for (i, s) in sinks.iter_mut().enumerate() {
        let at = format!("{path}[{i}]");
        if s.name.trim().is_empty() {
            errs.push(format!("{at}.name"), "is empty");
        } else if !names.insert(s.name.clone()) {
            errs.push(format!("{at}.name"), format!("{:?} is used twice", s.name));
        }
        let url_path = format!("{at}.url");
        s.url = resolve_secret(errs, &url_path, s.url.take(), s.url_file.as_deref());
        match s
            .url
            .as_ref()
            .map(|u| url::Url::parse(secrecy::ExposeSecret::expose_secret(u)))
        {
            None => {
                if !errs.iter().any(|e| e.path.starts_with(&url_path)) {
                    errs.push(url_path, "is required (or url_file)");
                }
            }
            Some(Ok(u)) => errs.http_url(url_path, &u),
            Some(Err(e)) => errs.push(url_path, format!("is not a URL ({e})")),
        }
    }
}
