//! Types shared by every part: who a person is, what a status is on each side, the
//! observation every input is turned into, the clock, and the records the durable inbox and
//! the audit trail hold. Pure data: this module imports nothing else of the crate.

pub mod audit;
pub mod clock;
pub mod contact_center;
pub mod directory;
pub mod health;
pub mod inbox;
pub mod presence_pairs;

use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

pub use audit::{AuditInput, AuditRecord};
pub use clock::Clock;
pub use inbox::{InboxPayload, ResumeUser, TeamsRefresh};

/// The bridge's key for a person: the Microsoft Graph user object id (a GUID string).
pub type UserId = String;

/// One side of the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Teams,
    ContactCenter,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Teams => "teams",
            Side::ContactCenter => "contact_center",
        }
    }
}

/// A Teams presence as Graph reports it. Availability and activity are open sets (Graph
/// documents them as plain strings), compared case-insensitively.
///
/// The strings are `CompactString`s, which keep up to 24 bytes inline: every availability and
/// activity Graph documents fits, so those cost no allocation (a longer sequence number
/// allocates, as a `String` would). The engine keeps two presences per person (what Teams
/// shows and the person's own) plus the last sequence seen: at 100,000 people, hundreds of
/// thousands of small allocations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TeamsPresence {
    pub availability: CompactString,
    pub activity: CompactString,
    /// Graph's lexicographically sortable version stamp, when the source carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<CompactString>,
}

impl TeamsPresence {
    pub fn new(availability: impl Into<CompactString>, activity: impl Into<CompactString>) -> Self {
        Self {
            availability: availability.into(),
            activity: activity.into(),
            sequence: None,
        }
    }

    /// Same availability and activity, ignoring case and the sequence number.
    pub fn same_state(&self, other: &TeamsPresence) -> bool {
        self.availability.eq_ignore_ascii_case(&other.availability)
            && self.activity.eq_ignore_ascii_case(&other.activity)
    }
}

impl PartialEq for TeamsPresence {
    fn eq(&self, other: &Self) -> bool {
        self.same_state(other)
    }
}

impl Eq for TeamsPresence {}

/// A contact-center agent status: the connector's id and its display name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CcStatus {
    pub id: String,
    pub name: String,
}

/// A status on either side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "side", rename_all = "snake_case")]
pub enum Status {
    Teams(TeamsPresence),
    ContactCenter(CcStatus),
}

impl Status {
    pub fn side(&self) -> Side {
        match self {
            Status::Teams(_) => Side::Teams,
            Status::ContactCenter(_) => Side::ContactCenter,
        }
    }
}

/// Where an observation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A Graph change notification (rich or basic-then-read).
    GraphWebhook,
    /// A Graph presence poll.
    GraphPoll,
    /// A contact-center push event (webhook, WebSocket, stream).
    ConnectorPush,
    /// A contact-center poll.
    ConnectorPoll,
    /// A reconciliation read.
    Reconcile,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::GraphWebhook => "graph_webhook",
            Source::GraphPoll => "graph_poll",
            Source::ConnectorPush => "connector_push",
            Source::ConnectorPoll => "connector_poll",
            Source::Reconcile => "reconcile",
        }
    }
}

/// Every input becomes one of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub user: UserId,
    pub status: Status,
    pub observed_at: DateTime<Utc>,
    pub source: Source,
    /// Contact-center side only: what the agent is doing (on a contact, wrap-up…) when the
    /// source reports it. `None` says nothing about it: the engine keeps what it knew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<contact_center::Activity>,
}
