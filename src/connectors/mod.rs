//! Contact-center connectors behind one trait, [`ContactCenter`]. Each connector talks to one
//! platform and to nothing else: it lists agents and the status catalog, reads and sets agent
//! statuses, and turns the platform's events into [`AgentEvent`]s.
//!
//! Owns: `[[connectors]]` config ([`config`]), the shared resilience layer ([`retry`]: the
//! request budget, backoff, `Retry-After`, health), OAuth2 client credentials ([`oauth`]), the
//! REST client ([`rest`]), the three connectors ([`http`], [`genesys`], [`amazon_connect`]), the
//! ingest path from events to the durable inbox ([`ingest`]) and the per-connector jobs
//! ([`runtime`]). It does not decide anything: mapping, echo and loop rules are the engine's;
//! it only writes observations to the inbox and agent lists to the store.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::health::HealthState;
use crate::model::{CcStatus, Source};

pub mod amazon_connect;
pub mod config;
pub mod genesys;
pub mod http;
pub mod ingest;
pub(crate) mod oauth;
pub mod poll;
pub(crate) mod rest;
pub(crate) mod retry;
pub mod runtime;

pub use runtime::{ConnectorHandle, ConnectorRegistry, build_connectors, render_set_status};

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

/// An agent's current status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub agent_id: String,
    pub status: CcStatus,
    pub since: Option<DateTime<Utc>>,
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
        events: mpsc::Sender<AgentEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError>;
    /// The connector's own view of its health, shown by `/health/ready`.
    async fn health(&self) -> (HealthState, String);
    /// The connector's inbound webhook (`POST /connectors/{name}/events`), when it has one.
    fn webhook(&self) -> Option<&dyn InboundWebhook> {
        None
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
    ) -> Result<Vec<AgentEvent>, InboundError>;
}
