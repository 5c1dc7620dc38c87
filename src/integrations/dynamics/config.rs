//! `[[dynamics]]`: one entry per Dataverse environment, with its connection (environment URL,
//! Web API version, Entra app credentials), which contacts it follows, the request template of
//! each contact step and the screen-pop link template.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, serialize_redacted_opt};
use crate::connectors::Channel;

/// One Dataverse environment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicsConfig {
    /// Unique name: in logs, metrics, queue keys and the screen-pop API.
    pub name: String,
    /// The environment URL, e.g. `https://contoso.crm.dynamics.com` (no path).
    pub url: url::Url,
    /// Web API version in the path `/api/data/{api_version}/`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Microsoft Entra tenant (directory) id of the environment.
    pub tenant_id: String,
    /// Application (client) id of the app registration with an application user in the
    /// environment.
    pub client_id: String,
    /// Client secret (secret).
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub client_secret: Option<SecretString>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Identity platform; the token endpoint is `{authority_url}/{tenant_id}/oauth2/v2.0/token`.
    #[serde(default = "default_authority")]
    pub authority_url: url::Url,
    /// Token scope; default `{url}/.default`.
    pub scope: Option<String>,
    /// The token is renewed this many seconds before it expires.
    #[serde(default = "default_skew")]
    pub token_expiry_skew_secs: u64,
    /// The model-driven app id (`appid` of screen-pop links), available to templates as
    /// `environment.app_id`.
    #[serde(default)]
    pub app_id: String,
    /// Connectors whose contacts this environment follows; empty: all.
    #[serde(default)]
    pub connectors: Vec<String>,
    /// Channels followed (`voice`, `chat`, `email`, `task`); empty: all. An event that names
    /// no channel counts as its contact's channel when an earlier event named one.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Sends `MSCRM.SuppressDuplicateDetection: {value}` with every POST and PATCH when set
    /// (`false` makes Dataverse refuse a record its duplicate-detection rules match).
    pub suppress_duplicate_detection: Option<bool>,
    /// Template of the record's link for the agent (screen pop), e.g.
    /// `{{ environment.url }}main.aspx?appid={{ environment.app_id }}&pagetype=entityrecord&etn=phonecall&id={{ steps.created.activityid }}`.
    pub screen_pop_url: Option<String>,
    /// How long a step whose input (a value captured by an earlier step) is missing waits
    /// for it before it is given up.
    #[serde(default = "default_input_wait")]
    pub input_wait_secs: u64,
    /// How long the values captured per contact are kept (days).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Request timeout (seconds).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The request of each contact step; a step left out sends nothing.
    #[serde(default)]
    pub steps: Steps,
}

fn default_api_version() -> String {
    "v9.2".into()
}

fn default_authority() -> url::Url {
    url::Url::parse("https://login.microsoftonline.com/").expect("static URL")
}

fn default_skew() -> u64 {
    60
}

fn default_input_wait() -> u64 {
    3600
}

fn default_retention_days() -> u32 {
    7
}

fn default_timeout() -> u64 {
    30
}

/// The steps of a contact, in the order they run.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Steps {
    /// The contact is first seen (its first event, normally `offered`: created, queued or
    /// ringing). Runs before any other step of the contact, whatever event came first.
    pub created: Option<Step>,
    /// The contact is connected to an agent.
    pub connected: Option<Step>,
    /// The contact ended.
    pub ended: Option<Step>,
    /// Its recording (or transcript) is available (`contact.recording_url`).
    pub recording_available: Option<Step>,
}

/// The steps, named as in the configuration and in templates (`steps.created.activityid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    Created,
    Connected,
    Ended,
    RecordingAvailable,
}

impl StepName {
    pub const ALL: [StepName; 4] = [
        StepName::Created,
        StepName::Connected,
        StepName::Ended,
        StepName::RecordingAvailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Created => "created",
            StepName::Connected => "connected",
            StepName::Ended => "ended",
            StepName::RecordingAvailable => "recording_available",
        }
    }

    pub fn parse(s: &str) -> Option<StepName> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

impl Steps {
    pub fn get(&self, name: StepName) -> Option<&Step> {
        match name {
            StepName::Created => self.created.as_ref(),
            StepName::Connected => self.connected.as_ref(),
            StepName::Ended => self.ended.as_ref(),
            StepName::RecordingAvailable => self.recording_available.as_ref(),
        }
    }
}

/// One templated Web API request (minijinja, strict: an unknown variable is an error).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// `GET`, `POST` or `PATCH`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Path under `{url}/api/data/{api_version}/`: an entity set (`phonecalls`) or a record
    /// (`phonecalls({{ steps.created.activityid }})`).
    pub path: String,
    /// Query string without `?` (e.g. `$select=activityid`).
    pub query: Option<String>,
    /// JSON body.
    pub body: Option<String>,
    /// Extra headers (`Prefer = "return=representation"`, `If-Match = "*"`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Values kept from the response, available to later steps as `steps.{step}.{name}`.
    #[serde(default)]
    pub captures: Vec<Capture>,
}

fn default_method() -> String {
    "POST".into()
}

/// A value kept from a step's response: the record id of the `OData-EntityId` header
/// (`entity_id = true`), a JSON pointer into the body, or a response header.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    pub name: String,
    /// The id in parentheses at the end of the `OData-EntityId` header.
    #[serde(default)]
    pub entity_id: bool,
    /// RFC 6901 pointer into the JSON body, e.g. `/activityid`.
    pub json_pointer: Option<String>,
    /// A response header, read as is.
    pub header: Option<String>,
}

/// Checks every `[[dynamics]]` entry (`path` is the array's key), resolving secrets and
/// rendering each template against sample values so an unknown variable is reported with
/// its key path.
pub fn validate(
    envs: &mut [DynamicsConfig],
    connectors: &[&str],
    path: &str,
    errs: &mut ConfigErrors,
) {
    let mut names = std::collections::HashSet::new();
    for (i, e) in envs.iter_mut().enumerate() {
        let p = format!("{path}[{i}]");
        if e.name.is_empty() {
            errs.push(format!("{p}.name"), "is required");
        } else if !names.insert(e.name.clone()) {
            errs.push(format!("{p}.name"), format!("{:?} is used twice", e.name));
        }
        errs.http_url(format!("{p}.url"), &e.url);
        errs.http_url(format!("{p}.authority_url"), &e.authority_url);
        if e.tenant_id.is_empty() {
            errs.push(format!("{p}.tenant_id"), "is required");
        }
        if e.client_id.is_empty() {
            errs.push(format!("{p}.client_id"), "is required");
        }
        crate::connectors::config::require_secret(
            errs,
            &format!("{p}.client_secret"),
            &mut e.client_secret,
            e.client_secret_file.as_deref(),
        );
        errs.at_least(&p, "timeout_secs", e.timeout_secs, 1);
        errs.at_least(&p, "retention_days", e.retention_days, 1);
        for (j, c) in e.connectors.iter().enumerate() {
            if !connectors.contains(&c.as_str()) {
                errs.push(
                    format!("{p}.connectors[{j}]"),
                    format!("no connector is named {c:?}"),
                );
            }
        }
        for name in StepName::ALL {
            let Some(step) = e.steps.get(name) else {
                continue;
            };
            let sp = format!("{p}.steps.{}", name.as_str());
            if !matches!(
                step.method.to_ascii_uppercase().as_str(),
                "GET" | "POST" | "PATCH"
            ) {
                errs.push(format!("{sp}.method"), "must be GET, POST or PATCH");
            }
            for (k, c) in step.captures.iter().enumerate() {
                let sources = usize::from(c.entity_id)
                    + usize::from(c.json_pointer.is_some())
                    + usize::from(c.header.is_some());
                if sources != 1 {
                    errs.push(
                        format!("{sp}.captures[{k}]"),
                        "give exactly one of entity_id = true, json_pointer or header",
                    );
                }
                if c.json_pointer.as_ref().is_some_and(|j| !j.starts_with('/')) {
                    errs.push(
                        format!("{sp}.captures[{k}].json_pointer"),
                        "must start with / (RFC 6901)",
                    );
                }
            }
        }
        for issue in super::template::check(e) {
            errs.push(format!("{p}.{}", issue.field), issue.message);
        }
    }
}
