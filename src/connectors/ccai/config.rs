//! Settings of a `kind = "ccai"` connector (Google Contact Center AI Platform, formerly UJET).

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, serialize_redacted_opt};
use crate::connectors::config::{EventTimeConfig, LimitsConfig, require_secret};
use crate::model::contact_center::Channel;

/// `[[connectors]]` with `kind = "ccai"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CcaiConfig {
    /// Unique connector name.
    pub name: String,
    /// The tenant's subdomain (`customer` in `https://customer.uc1.ccaiplatform.com`); also
    /// the user name of HTTP Basic auth.
    pub subdomain: String,
    /// The rest of the tenant's host name (`uc1.ccaiplatform.com`).
    pub domain: String,
    /// Overrides `https://{subdomain}.{domain}/` (tests, proxies).
    pub base_url: Option<url::Url>,
    /// API credential token (Settings > Developer Settings > API Credentials): the password
    /// of HTTP Basic auth.
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub api_token: Option<SecretString>,
    /// File holding the API token.
    pub api_token_file: Option<PathBuf>,
    /// Request rate, retries, timeouts. The platform documents "10 requests per second per
    /// customer", the default here.
    #[serde(default = "default_limits")]
    pub limits: LimitsConfig,
    /// The range an event's own time must fall in.
    #[serde(default)]
    pub event_time: EventTimeConfig,
    /// Agents per page when listing (`per`; the documented default is 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Seconds between two reads of every agent's status (the event source: the platform
    /// offers no push for agent status).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Path of the status catalog ("User status" group of the Manager API), relative to the
    /// base URL. The exact path is not confirmed by the public documentation.
    #[serde(default = "default_user_statuses_path")]
    pub user_statuses_path: String,
    /// Status names the platform sets itself; transitions to or from them are refused by the
    /// API, so the catalog marks them not settable.
    #[serde(default = "default_system_statuses")]
    pub system_statuses: Vec<String>,
    /// Status names meaning the agent is on a contact, with the contact's channel: reported
    /// as the `on_contact` activity.
    #[serde(default = "default_on_contact")]
    pub on_contact_statuses: BTreeMap<String, Channel>,
    /// Status names that route contacts to the agent (catalog kind `routable`).
    #[serde(default = "default_routable")]
    pub routable_statuses: Vec<String>,
    /// Status names meaning logged out (catalog kind `offline`).
    #[serde(default = "default_offline")]
    pub offline_statuses: Vec<String>,
    /// How long a status write waits for other agents getting the same status, so they
    /// share one request, in milliseconds (0 = no batching).
    #[serde(default = "default_batch_window")]
    pub write_batch_window_ms: u64,
}

fn default_limits() -> LimitsConfig {
    LimitsConfig {
        requests_per_sec: 10.0,
        ..LimitsConfig::default()
    }
}
fn default_page_size() -> u32 {
    100
}
fn default_poll() -> u64 {
    10
}
fn default_user_statuses_path() -> String {
    "manager/api/v1/user_statuses".into()
}
fn default_system_statuses() -> Vec<String> {
    vec!["In-Call".into()]
}
fn default_on_contact() -> BTreeMap<String, Channel> {
    BTreeMap::from([("In-Call".to_owned(), Channel::Voice)])
}
fn default_routable() -> Vec<String> {
    vec!["Available".into()]
}
fn default_offline() -> Vec<String> {
    vec!["Offline".into()]
}
fn default_batch_window() -> u64 {
    200
}

impl CcaiConfig {
    pub(crate) fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        let host_part = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        if !host_part(&self.subdomain) || self.subdomain.contains('.') {
            errs.push(
                format!("{path}.subdomain"),
                "must be the tenant subdomain (letters, digits, '-')",
            );
        }
        if !host_part(&self.domain) {
            errs.push(
                format!("{path}.domain"),
                "must be a host name such as uc1.ccaiplatform.com",
            );
        }
        require_secret(
            errs,
            &format!("{path}.api_token"),
            &mut self.api_token,
            self.api_token_file.as_deref(),
        );
        if !(1..=1000).contains(&self.page_size) {
            errs.push(format!("{path}.page_size"), "must be between 1 and 1000");
        }
        if !(1..=3600).contains(&self.poll_interval_secs) {
            errs.push(
                format!("{path}.poll_interval_secs"),
                "must be between 1 and 3600",
            );
        }
        if self.user_statuses_path.is_empty() || self.user_statuses_path.starts_with('/') {
            errs.push(
                format!("{path}.user_statuses_path"),
                "must be a path relative to the base URL (no leading '/')",
            );
        }
        if self.write_batch_window_ms > 5000 {
            errs.push(
                format!("{path}.write_batch_window_ms"),
                "must be at most 5000",
            );
        }
    }

    /// `https://{subdomain}.{domain}/` unless overridden.
    pub fn base(&self) -> url::Url {
        self.base_url.clone().unwrap_or_else(|| {
            url::Url::parse(&format!("https://{}.{}/", self.subdomain, self.domain))
                .expect("validated host")
        })
    }
}
