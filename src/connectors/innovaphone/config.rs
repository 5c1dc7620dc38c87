//! Settings of a `kind = "innovaphone"` connector.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, serialize_redacted_opt};
use crate::connectors::config::{EventTimeConfig, LimitsConfig, require_secret};

/// One monitored PBX user, by SIP name or phone number (`SubscribePresence` takes either).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InnovaphoneAgent {
    /// The user's SIP name (the `sip` of `SubscribePresence` and `SetPresence`).
    pub sip: Option<String>,
    /// The user's phone number, when subscribing by number.
    pub num: Option<String>,
    /// E-mail for matching to Teams; otherwise taken from the PBX (`PresenceState.email`).
    pub email: Option<String>,
    /// Display name for matching; otherwise taken from the PBX (`PresenceState.dn`).
    pub display_name: Option<String>,
}

impl InnovaphoneAgent {
    /// The agent's id in the bridge: the SIP name, else the number.
    pub fn id(&self) -> &str {
        self.sip
            .as_deref()
            .or(self.num.as_deref())
            .unwrap_or_default()
    }
}

/// `[[connectors]]` with `kind = "innovaphone"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InnovaphoneConfig {
    /// Unique connector name.
    pub name: String,
    /// The PBX's AppWebsocket URL, e.g. `wss://pbx.example.com/PBX0/APPS/websocket`.
    pub url: url::Url,
    /// Name of the PBX App object the bridge logs in as (the `app` of `AppLogin`). The object
    /// needs "PbxApi" granted (presence monitoring and writing).
    pub app: String,
    /// Password of the App object (the shared secret of the login digest).
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub password: Option<SecretString>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// The monitored users.
    #[serde(default)]
    pub agents: Vec<InnovaphoneAgent>,
    /// The presence `contact` the bridge writes with `SetPresence`. `tel:` is the presence the
    /// user sets themself (PbxApi documentation); another value keeps the bridge's presence
    /// apart. Which contact innovaphone's own connector writes is not documented.
    #[serde(default = "default_contact")]
    pub contact: String,
    /// The `note` sent with `SetPresence`.
    #[serde(default)]
    pub note: String,
    /// The presence activities offered as statuses (`""` is available). Documented: `""`,
    /// `away`, `busy`, `dnd`; innovaphone's Teams connector also writes `on-the-phone` and
    /// `meeting`.
    #[serde(default = "default_activities")]
    pub activities: Vec<String>,
    /// Activities that mean the user is on the phone (the PBX's line state shown as presence):
    /// reported as the `on_contact` activity on the voice channel.
    #[serde(default = "default_on_the_phone")]
    pub on_the_phone_activities: Vec<String>,
    /// Seconds between WebSocket pings.
    #[serde(default = "default_ping")]
    pub ping_interval_secs: u64,
    /// Reconnect when nothing (a pong included) arrived for this many seconds.
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Request rate, retries, timeouts; the backoff settings also pace reconnects.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The range an event's own time must fall in.
    #[serde(default)]
    pub event_time: EventTimeConfig,
}

fn default_contact() -> String {
    "tel:".into()
}
fn default_activities() -> Vec<String> {
    ["", "away", "busy", "dnd", "on-the-phone", "meeting"]
        .map(String::from)
        .to_vec()
}
fn default_on_the_phone() -> Vec<String> {
    vec!["on-the-phone".into()]
}
fn default_ping() -> u64 {
    30
}
fn default_idle() -> u64 {
    90
}

impl InnovaphoneConfig {
    pub(crate) fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        if !matches!(self.url.scheme(), "ws" | "wss") {
            errs.push(format!("{path}.url"), "must be a ws:// or wss:// URL");
        }
        if self.app.is_empty() {
            errs.push(
                format!("{path}.app"),
                "is required (the PBX App object name)",
            );
        }
        require_secret(
            errs,
            &format!("{path}.password"),
            &mut self.password,
            self.password_file.as_deref(),
        );
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let p = format!("{path}.agents[{i}]");
            match (&a.sip, &a.num) {
                (None, None) => errs.push(p.clone(), "needs sip or num"),
                (Some(s), _) if s.is_empty() => errs.push(format!("{p}.sip"), "is empty"),
                (None, Some(n)) if n.is_empty() => errs.push(format!("{p}.num"), "is empty"),
                _ => {}
            }
            if !a.id().is_empty() && !seen.insert(a.id().to_owned()) {
                errs.push(p, format!("duplicate agent {:?}", a.id()));
            }
        }
        if self.ping_interval_secs == 0 || self.idle_timeout_secs <= self.ping_interval_secs {
            errs.push(
                format!("{path}.idle_timeout_secs"),
                "ping_interval_secs must be at least 1 and below idle_timeout_secs",
            );
        }
        if !self.activities.iter().any(|a| a.is_empty()) {
            errs.push(
                format!("{path}.activities"),
                "must contain \"\" (available)",
            );
        }
    }
}
