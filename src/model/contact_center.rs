//! The contact-center port: what every connector offers ([`ContactCenter`]) and the
//! normalised types it speaks (agents, the status catalog, status events, errors). The
//! connectors in `crate::connectors` implement it; the engine and its I/O shell use only this.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::health::HealthState;
use crate::model::{CcStatus, Source};

/// What connector calls fail with; callers branch on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    #[error("throttled (retry after {retry_after:?})")]
    Throttled { retry_after: Option<Duration> },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("rejected: {reason}")]
    Rejected { reason: String },
    #[error("transport: {0}")]
    Transport(String),
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl ConnectorError {
    /// Worth trying again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnectorError::Throttled { .. } | ConnectorError::Transport(_)
        )
    }
}

/// An agent as the platform lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
}

/// What a status means for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    Routable,
    NotRoutable,
    Offline,
    OnContact,
}

/// One entry of the platform's status catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogStatus {
    pub id: String,
    pub name: String,
    pub kind: StatusKind,
    /// False for statuses the platform sets itself (e.g. on-contact) and an API cannot set.
    pub settable: bool,
}

impl CatalogStatus {
    pub fn as_status(&self) -> CcStatus {
        CcStatus {
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }
}

/// What an agent is doing, normalised across platforms: besides the status they selected,
/// whether a contact is ringing for them, they are on it (on hold included), in after-contact
/// work, idle or logged out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactActivity {
    Offered,
    OnContact,
    AfterContactWork,
    Idle,
    LoggedOut,
}

impl ContactActivity {
    pub const ALL: [ContactActivity; 5] = [
        ContactActivity::Offered,
        ContactActivity::OnContact,
        ContactActivity::AfterContactWork,
        ContactActivity::Idle,
        ContactActivity::LoggedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactActivity::Offered => "offered",
            ContactActivity::OnContact => "on_contact",
            ContactActivity::AfterContactWork => "after_contact_work",
            ContactActivity::Idle => "idle",
            ContactActivity::LoggedOut => "logged_out",
        }
    }
}

/// The medium of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Voice,
    Chat,
    Email,
    Task,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::Voice, Channel::Chat, Channel::Email, Channel::Task];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Task => "task",
        }
    }
}

/// An agent's contact activity and, when known, the channel of the contact it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Activity {
    pub activity: ContactActivity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

/// An agent's current status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub agent_id: String,
    pub status: CcStatus,
    pub since: Option<DateTime<Utc>>,
    /// What the agent is doing, when the platform reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
}

/// A step in a contact's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactEventKind {
    /// Ringing or alerting at an agent (or created and queued, before an agent has it).
    Offered,
    /// Connected to an agent.
    Connected,
    Ended,
    RecordingAvailable,
}

impl ContactEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactEventKind::Offered => "offered",
            ContactEventKind::Connected => "connected",
            ContactEventKind::Ended => "ended",
            ContactEventKind::RecordingAvailable => "recording_available",
        }
    }
}

/// A normalised contact event: the input of integrations that follow a contact's lifecycle
/// (e.g. records written to a CRM). Connectors emit them; the durable inbox keeps them in
/// order per contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvent {
    pub contact_id: String,
    pub kind: ContactEventKind,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The agent the contact is offered or connected to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The customer's phone number, address or handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_endpoint: Option<String>,
    /// Where the recording can be fetched (`recording_available`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    /// The platform's event id, for de-duplication, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The platform's own attributes of the contact, as it sent them.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A normalised status change from the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    pub agent_id: String,
    pub status: CcStatus,
    pub at: DateTime<Utc>,
    /// The platform's event id, for de-duplication, when it has one.
    pub event_id: Option<String>,
    /// `ConnectorPush` or `ConnectorPoll`.
    pub source: Source,
    /// What the agent is doing, when the platform reports it with the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
}

/// What a connector's event source and inbound webhook produce: an agent's status (and
/// activity) changed, or a contact moved on in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectorEvent {
    Agent(AgentEvent),
    Contact(ContactEvent),
}

impl ConnectorEvent {
    pub fn as_agent(&self) -> Option<&AgentEvent> {
        match self {
            ConnectorEvent::Agent(a) => Some(a),
            ConnectorEvent::Contact(_) => None,
        }
    }

    pub fn as_contact(&self) -> Option<&ContactEvent> {
        match self {
            ConnectorEvent::Contact(c) => Some(c),
            ConnectorEvent::Agent(_) => None,
        }
    }
}

impl From<AgentEvent> for ConnectorEvent {
    fn from(e: AgentEvent) -> Self {
        ConnectorEvent::Agent(e)
    }
}

impl From<ContactEvent> for ConnectorEvent {
    fn from(e: ContactEvent) -> Self {
        ConnectorEvent::Contact(e)
    }
}

/// A contact-center platform.
#[async_trait]
pub trait ContactCenter: Send + Sync + 'static {
    /// The connector's configured name (unique in a deployment).
    fn name(&self) -> &str;
    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError>;
    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError>;
    /// Current statuses of the given agents, read in the platform's bulk form.
    async fn current_statuses(
        &self,
        agent_ids: &[String],
    ) -> Result<Vec<AgentStatus>, ConnectorError>;
    async fn set_status(&self, agent_id: &str, status: &CcStatus) -> Result<(), ConnectorError>;
    /// Runs the platform's event source (WebSocket, stream, poll) until `cancel` fires, sending
    /// normalised events. A connector fed only by inbound webhooks waits for `cancel`.
    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError>;
    /// The runtime has stored (or dropped for good) the next `n` events it took from the
    /// `run_events` channel, in the order they were sent. A connector that keeps a read
    /// position at the platform (a stream offset) saves it only once the events read before
    /// it are stored, so a crash in between makes it read them again.
    fn events_stored(&self, _n: usize) {}
    /// The connector's own view of its health, shown by `/health/ready`.
    async fn health(&self) -> (HealthState, String);
    /// The connector's inbound webhook (`POST /connectors/{name}/events`), when it has one.
    fn webhook(&self) -> Option<&dyn InboundWebhook> {
        None
    }
    /// The connector's contact-event webhook (`POST /connectors/{name}/contact-events`),
    /// when it has one.
    fn contact_webhook(&self) -> Option<&dyn InboundWebhook> {
        None
    }
    /// How far the times of this connector's events may lie from the local clock.
    fn event_time_bounds(&self) -> EventTimeBounds {
        EventTimeBounds::default()
    }
}

/// The range an event's own time must fall in, relative to the receiving server's clock. An
/// event dated in the future (a wrong clock, microseconds read as milliseconds) would make
/// every real event after it look stale until its date passes; one dated decades back is a
/// parsing accident, not news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimeBounds {
    /// Largest distance ahead of the local clock still taken as clock skew.
    pub max_future_skew: Duration,
    /// Largest age of a pushed event. Polled and reconciled statuses carry the time the
    /// status *began*, legitimately old, so only the future bound applies to them.
    pub max_age: Duration,
}

impl Default for EventTimeBounds {
    fn default() -> Self {
        Self {
            max_future_skew: Duration::from_secs(60),
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why an event's time is outside [`EventTimeBounds`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTimeError {
    #[error("event time {at} is more than {skew_secs} s ahead of this server's clock")]
    Ahead { at: DateTime<Utc>, skew_secs: u64 },
    #[error("event time {at} is more than {age_secs} s old")]
    TooOld { at: DateTime<Utc>, age_secs: u64 },
}

impl EventTimeBounds {
    /// Whether an event from `source` dated `at` may be taken at `now`.
    pub fn check(
        &self,
        at: DateTime<Utc>,
        source: Source,
        now: DateTime<Utc>,
    ) -> Result<(), EventTimeError> {
        let ahead =
            chrono::Duration::from_std(self.max_future_skew).unwrap_or(chrono::Duration::MAX);
        if at.signed_duration_since(now) > ahead {
            return Err(EventTimeError::Ahead {
                at,
                skew_secs: self.max_future_skew.as_secs(),
            });
        }
        let age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
        if source == Source::ConnectorPush && now.signed_duration_since(at) > age {
            return Err(EventTimeError::TooOld {
                at,
                age_secs: self.max_age.as_secs(),
            });
        }
        Ok(())
    }
}

/// Why an inbound webhook request was refused; nothing is stored for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// Missing or wrong signature or secret, or outside the replay window (401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Not the expected shape (400); the message describes the client's input.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// Verifies and parses an inbound webhook request into events.
pub trait InboundWebhook: Send + Sync {
    fn parse(
        &self,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ConnectorEvent>, InboundError>;
}
