//! Settings of a `kind = "genesys"` connector.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, serialize_redacted_opt};
use crate::connectors::config::{EventTimeConfig, LimitsConfig, require_secret};

/// `[[connectors]]` with `kind = "genesys"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GenesysConfig {
    /// Unique connector name.
    pub name: String,
    /// Region domain, e.g. `mypurecloud.com`, `mypurecloud.ie`, `euw2.pure.cloud`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Overrides `https://login.{region}` (tests, proxies).
    pub login_base_url: Option<url::Url>,
    /// Overrides `https://api.{region}` (tests, proxies).
    pub api_base_url: Option<url::Url>,
    /// OAuth client id (client-credentials grant).
    pub client_id: String,
    /// OAuth client secret.
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub client_secret: Option<SecretString>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Request rate, retries, timeouts. Genesys allows 300 requests per minute per
    /// client-credentials token (a figure from public client code, to be confirmed), so the
    /// default of 5 per second fits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The range an event's own time must fall in.
    #[serde(default)]
    pub event_time: EventTimeConfig,
    /// Users per page when listing agents (`pageSize`; the maximum is not documented, 100
    /// is widely used).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Topics per notification channel (Genesys documents 1,000 per WebSocket). Each agent
    /// takes one topic per subscribed kind (presence, plus routing status and conversations
    /// when on), so a channel carries `topics_per_channel / topics per agent` agents.
    #[serde(default = "default_topics")]
    pub topics_per_channel: usize,
    /// Subscribe `v2.users.{id}.routingStatus` (IDLE, INTERACTING, COMMUNICATING, …) and read
    /// it with the bulk reads after a reconnect: the agent's contact activity.
    #[serde(default = "default_true")]
    pub subscribe_routing_status: bool,
    /// Subscribe `v2.users.{id}.conversations`: the agent's interactions (alerting,
    /// connected, disconnected, wrap-up) as contact activity with its channel, and as contact
    /// events (`offered`, `connected`, `ended`, `recording_available`).
    #[serde(default = "default_true")]
    pub subscribe_conversations: bool,
    /// Emit `recording_available` when an interaction that was being recorded (`recording`
    /// on the agent's call) ends, pointing at `GET /api/v2/conversations/{id}/recordings`.
    /// ASSUMED: the conversation topic has no "recording ready" notification, and Genesys
    /// may still be processing the file when the call ends; turn off to emit none.
    #[serde(default = "default_true")]
    pub recording_events: bool,
    /// Reconnect when no message (heartbeats come about every 30 s) arrived for this long.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_timeout_secs: u64,
    /// Open a new channel before this age (channels live 24 h).
    #[serde(default = "default_channel_age")]
    pub channel_max_age_secs: u64,
}

fn default_region() -> String {
    "mypurecloud.com".into()
}
fn default_page_size() -> u32 {
    100
}
fn default_topics() -> usize {
    1000
}
fn default_true() -> bool {
    true
}
fn default_heartbeat() -> u64 {
    90
}
fn default_channel_age() -> u64 {
    23 * 3600
}

impl GenesysConfig {
    pub(crate) fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        if self.region.is_empty() || self.region.contains('/') {
            errs.push(
                format!("{path}.region"),
                "must be a region domain such as mypurecloud.com",
            );
        }
        if self.client_id.is_empty() {
            errs.push(format!("{path}.client_id"), "is required");
        }
        require_secret(
            errs,
            &format!("{path}.client_secret"),
            &mut self.client_secret,
            self.client_secret_file.as_deref(),
        );
        if !(1..=500).contains(&self.page_size) {
            errs.push(format!("{path}.page_size"), "must be between 1 and 500");
        }
        if !(self.topics_per_agent()..=1000).contains(&self.topics_per_channel) {
            errs.push(
                format!("{path}.topics_per_channel"),
                format!(
                    "must be between {} (the topics of one agent) and 1000",
                    self.topics_per_agent()
                ),
            );
        }
        if self.heartbeat_timeout_secs == 0 {
            errs.push(
                format!("{path}.heartbeat_timeout_secs"),
                "must be at least 1",
            );
        }
        if !(1..=24 * 3600).contains(&self.channel_max_age_secs) {
            errs.push(
                format!("{path}.channel_max_age_secs"),
                "must be between 1 and 86400",
            );
        }
    }

    /// Topics each agent takes on a channel.
    pub fn topics_per_agent(&self) -> usize {
        1 + usize::from(self.subscribe_routing_status) + usize::from(self.subscribe_conversations)
    }

    /// The topics of one agent.
    pub fn topics_of(&self, agent: &str) -> Vec<String> {
        let mut t = vec![format!("v2.users.{agent}.presence")];
        if self.subscribe_routing_status {
            t.push(format!("v2.users.{agent}.routingStatus"));
        }
        if self.subscribe_conversations {
            t.push(format!("v2.users.{agent}.conversations"));
        }
        t
    }

    /// `https://login.{region}/` unless overridden.
    pub fn login_base(&self) -> url::Url {
        self.login_base_url.clone().unwrap_or_else(|| {
            url::Url::parse(&format!("https://login.{}/", self.region)).expect("validated region")
        })
    }

    /// `https://api.{region}/` unless overridden.
    pub fn api_base(&self) -> url::Url {
        self.api_base_url.clone().unwrap_or_else(|| {
            url::Url::parse(&format!("https://api.{}/", self.region)).expect("validated region")
        })
    }
}
