//! Settings of a `kind = "http"` connector: request templates, auth, inbound webhook
//! verification and extraction, static or fetched catalog and agents, polling.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::serialize_redacted_opt;
use crate::connectors::StatusKind;
use crate::connectors::config::{EventTimeConfig, LimitsConfig};

pub use super::inbound_config::*;

/// `[[connectors]]` with `kind = "http"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConnectorConfig {
    /// Unique connector name; inbound events arrive at `/connectors/{name}/events`.
    pub name: String,
    /// Base URL of the platform's API, available to templates as `{{ base_url }}`.
    pub base_url: Option<url::Url>,
    /// Request rate, retries, timeouts.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The range an event's own time must fall in.
    #[serde(default)]
    pub event_time: EventTimeConfig,
    /// How outbound requests authenticate.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The request that sets an agent's status. Without it the connector is read-only.
    pub set_status: Option<RequestTemplate>,
    /// Inbound webhook verification and extraction. Without it the endpoint answers 404.
    pub inbound: Option<InboundConfig>,
    /// A static status catalog (use this or `list_statuses`).
    #[serde(default)]
    pub statuses: Vec<StaticStatus>,
    /// A templated request that fetches the status catalog.
    pub list_statuses: Option<ListStatusesConfig>,
    /// A static agent list (use this or `list_agents`).
    #[serde(default)]
    pub agents: Vec<StaticAgent>,
    /// A templated request that fetches the agents.
    pub list_agents: Option<ListAgentsConfig>,
    /// Polling mode: a templated request that reads every agent's current status; changes
    /// against the last snapshot become events. Also serves bulk status reads.
    pub poll: Option<PollConfig>,
    /// The contact-event webhook (`POST /connectors/{name}/contact-events`). Without it that
    /// endpoint answers 404.
    pub contact_events: Option<super::contact::ContactEventsConfig>,
}

/// `[connectors.auth]`, `type` selects the strategy.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// No authentication.
    #[default]
    None,
    /// A static header such as an API key: `name: value`.
    Header {
        /// Header name, e.g. `X-Api-Key`.
        name: String,
        /// Header value (secret).
        #[serde(default, serialize_with = "serialize_redacted_opt")]
        value: Option<SecretString>,
        /// File holding the header value.
        value_file: Option<PathBuf>,
    },
    /// HTTP Basic.
    Basic {
        /// User name (not secret).
        username: String,
        /// Password (secret).
        #[serde(default, serialize_with = "serialize_redacted_opt")]
        password: Option<SecretString>,
        /// File holding the password.
        password_file: Option<PathBuf>,
    },
    /// A static bearer token.
    Bearer {
        /// The token (secret).
        #[serde(default, serialize_with = "serialize_redacted_opt")]
        token: Option<SecretString>,
        /// File holding the token.
        token_file: Option<PathBuf>,
    },
    /// OAuth2 client credentials; the token is cached until `expires_in` minus
    /// `expiry_skew_secs`, and fetched again after a 401.
    Oauth2(OAuth2Config),
}

/// OAuth2 client-credentials settings (shared with the Genesys connector).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// Token endpoint URL.
    pub token_url: url::Url,
    /// Client id.
    pub client_id: String,
    /// Client secret (secret).
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub client_secret: Option<SecretString>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// `scope` parameter, when the platform wants one.
    pub scope: Option<String>,
    /// `resource` parameter (Azure AD v1 style), when the platform wants one.
    pub resource: Option<String>,
    /// How the client authenticates to the token endpoint: `basic` header or `body` fields.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The token is renewed this many seconds before `expires_in` runs out.
    #[serde(default = "default_skew")]
    pub expiry_skew_secs: u64,
}

fn default_skew() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Basic,
    Body,
}

/// A templated HTTP request (method, URL, headers and body are minijinja templates).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTemplate {
    /// HTTP method, e.g. `PUT`.
    #[serde(default = "default_method")]
    pub method: String,
    /// URL template, e.g. `{{ base_url }}api/agents/{{ agent_id }}/status`.
    pub url: String,
    /// Header templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `json` (body must render to JSON), `form` (fields of `form`, urlencoded) or `raw`.
    #[serde(default)]
    pub body_kind: BodyKind,
    /// Body template for `json` and `raw`.
    pub body: Option<String>,
    /// Field templates for `form` bodies.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Content type of a `raw` body.
    pub content_type: Option<String>,
    /// Response codes that mean success.
    #[serde(default = "default_accepted")]
    pub accepted_status_codes: Vec<u16>,
    /// Values to keep from the response, available later as `{{ captures.NAME }}` in requests
    /// about the same agent.
    #[serde(default)]
    pub captures: Vec<Capture>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_accepted() -> Vec<u16> {
    vec![200, 201, 202, 204]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    #[default]
    Json,
    Form,
    Raw,
}

/// One captured value: from a response header or a JSON pointer into the response body.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// Name under `captures`.
    pub name: String,
    /// Response header to read.
    pub header: Option<String>,
    /// JSON pointer into the response body (RFC 6901), e.g. `/id`.
    pub json_pointer: Option<String>,
}

/// One entry of a static catalog.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticStatus {
    /// The platform's status id (what `set_status` sends).
    pub id: String,
    /// Display name (what mapping rules name).
    pub name: String,
    /// `routable`, `not_routable`, `offline` or `on_contact`.
    pub kind: StatusKind,
    /// False for statuses the platform sets itself.
    #[serde(default = "default_true")]
    pub settable: bool,
}

fn default_true() -> bool {
    true
}

/// One entry of a static agent list.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticAgent {
    pub id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
}

fn default_max_pages() -> u32 {
    1000
}

/// A view of the paging fields shared by `list_statuses`, `list_agents` and `poll`: the
/// `request` is sent with `{{ cursor }}` empty, then with the value at `next_pointer` until it
/// is absent, null or empty.
#[derive(Debug, Clone, Copy)]
pub struct Paging<'a> {
    pub request: &'a RequestTemplate,
    pub items_pointer: &'a str,
    pub next_pointer: Option<&'a str>,
    pub max_pages: u32,
}

/// `[connectors.list_statuses]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListStatusesConfig {
    /// The request template (variables: `base_url`, `cursor`, `now`, `now_unix`).
    pub request: RequestTemplate,
    /// JSON pointer to the array of items; empty = the body is the array.
    #[serde(default)]
    pub items_pointer: String,
    /// JSON pointer to the next page's cursor (absent = one page).
    pub next_pointer: Option<String>,
    /// Safety stop for pagination.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// JSON pointer to the status id inside an item.
    pub id_pointer: String,
    /// JSON pointer to the status name inside an item.
    pub name_pointer: String,
    /// JSON pointer to the kind (`routable`, `not_routable`, `offline`, `on_contact`).
    pub kind_pointer: Option<String>,
    /// Kind of items without a recognisable kind.
    #[serde(default = "default_kind")]
    pub default_kind: StatusKind,
}

fn default_kind() -> StatusKind {
    StatusKind::NotRoutable
}

/// `[connectors.list_agents]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListAgentsConfig {
    /// The request template (variables: `base_url`, `cursor`, `now`, `now_unix`).
    pub request: RequestTemplate,
    /// JSON pointer to the array of items; empty = the body is the array.
    #[serde(default)]
    pub items_pointer: String,
    /// JSON pointer to the next page's cursor (absent = one page).
    pub next_pointer: Option<String>,
    /// Safety stop for pagination.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// JSON pointer to the agent id inside an item.
    pub id_pointer: String,
    pub email_pointer: Option<String>,
    pub username_pointer: Option<String>,
    pub display_name_pointer: Option<String>,
}

/// `[connectors.poll]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// The request template (variables: `base_url`, `cursor`, `now`, `now_unix`).
    pub request: RequestTemplate,
    /// JSON pointer to the array of items; empty = the body is the array.
    #[serde(default)]
    pub items_pointer: String,
    /// JSON pointer to the next page's cursor (absent = one page).
    pub next_pointer: Option<String>,
    /// Safety stop for pagination.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// Seconds between two polls; 0 = bulk reads only, no polling loop.
    pub interval_secs: u64,
    pub agent_id_pointer: String,
    pub status_pointer: String,
    #[serde(default)]
    pub status_is: StatusIs,
    /// JSON pointer to when the status started; absent = poll time.
    pub timestamp_pointer: Option<String>,
    /// Where the agent's contact activity (and its channel) is in a row.
    pub activity: Option<super::contact::ActivityConfig>,
}

macro_rules! paging {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn paging(&self) -> Paging<'_> {
                Paging {
                    request: &self.request,
                    items_pointer: &self.items_pointer,
                    next_pointer: self.next_pointer.as_deref(),
                    max_pages: self.max_pages,
                }
            }
        }
    )*};
}
paging!(ListStatusesConfig, ListAgentsConfig, PollConfig);
