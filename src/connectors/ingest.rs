//! The one path from contact-center events to the durable inbox, shared by inbound webhooks
//! and `run_events` streams: resolve agent → Teams user, then drop duplicates and stale
//! events and write the observations. Which event ids were taken in and each agent's newest
//! event time live in the database, checked and recorded in the transaction that stores the
//! observations: a replay after a restart, or copies of one event arriving together (at one
//! replica or several), are refused.

use std::sync::Arc;

use super::{ConnectorEvent, ContactEvent};
use crate::model::{Observation, Status};
use crate::store::inbox::{CheckedObservation, Inbox};
use crate::store::{IngestVerdict, NewJob, Store, StoreError};
use crate::telemetry::Metrics;

/// What happened to a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicate: usize,
    pub stale: usize,
    pub unknown_agent: usize,
    /// Contact events stored for the first time.
    pub contact_accepted: usize,
    /// Contact events stored before (same event id, or same contact and step).
    pub contact_duplicate: usize,
}

/// An integration that follows contacts beyond the inbox (records written per step to a
/// CRM): given the contact events of a batch, the durable jobs to push once they are stored.
/// Jobs carry de-duplication ids, so the jobs of a redelivered event add nothing.
pub trait ContactFollower: Send + Sync {
    fn jobs(&self, connector: &str, events: &[ContactEvent]) -> Vec<NewJob>;
    /// Called once its jobs are pushed (wakes the runner of their queue).
    fn pushed(&self) {}
}

/// Per-connector ingest path. Holds no state of its own: cheap to share, and nothing is lost
/// on restart.
pub struct Ingest {
    connector: String,
    store: Arc<dyn Store>,
    inbox: Inbox,
    metrics: Metrics,
    followers: Vec<Arc<dyn ContactFollower>>,
}

impl Ingest {
    pub fn new(connector: &str, inbox: Inbox, metrics: Metrics) -> Self {
        Self {
            connector: connector.to_owned(),
            store: inbox.store().clone(),
            inbox,
            metrics,
            followers: Vec::new(),
        }
    }

    /// Hands the contact events this path stores to `followers` too.
    pub fn with_followers(mut self, followers: Vec<Arc<dyn ContactFollower>>) -> Self {
        self.followers = followers;
        self
    }

    fn count(&self, outcome: &'static str, n: usize) {
        if n > 0 {
            self.metrics
                .counter(
                    "connector_events_total",
                    &[
                        ("connector", self.connector.clone()),
                        ("outcome", outcome.to_owned()),
                    ],
                )
                .increment(n as u64);
        }
    }

    /// Stores the new events as observations (all or none). On error nothing is recorded, so
    /// a redelivery is accepted.
    pub async fn ingest(&self, events: Vec<ConnectorEvent>) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        let mut checked = Vec::with_capacity(events.len());
        let mut contacts = Vec::new();
        for e in events {
            let e = match e {
                ConnectorEvent::Agent(e) => e,
                ConnectorEvent::Contact(c) => {
                    contacts.push(c);
                    continue;
                }
            };
            match self.store.user_by_agent(&self.connector, &e.agent_id).await {
                Ok(user) => checked.push(CheckedObservation {
                    observation: Observation {
                        user: user.teams_id,
                        status: Status::ContactCenter(e.status),
                        observed_at: e.at,
                        source: e.source,
                        activity: e.activity,
                    },
                    event_id: e.event_id,
                    agent_id: e.agent_id,
                }),
                Err(StoreError::NotFound) => {
                    tracing::debug!(connector = %self.connector, agent = %e.agent_id, "event for an agent matched to no Teams user dropped");
                    out.unknown_agent += 1;
                }
                Err(other) => return Err(other),
            }
        }
        // Contact events first: an agent event in the same batch may be refused as stale, but
        // the contact's own steps are kept whatever the agent's status does.
        let fresh = self
            .store
            .contact_events_push(&self.connector, &contacts)
            .await?;
        for (c, new) in contacts.iter().zip(fresh) {
            if new {
                out.contact_accepted += 1;
                self.metrics
                    .counter(
                        "contact_events_total",
                        &[
                            ("connector", self.connector.clone()),
                            ("kind", c.kind.as_str().to_owned()),
                        ],
                    )
                    .increment(1);
            } else {
                out.contact_duplicate += 1;
            }
        }
        // Every event, new or not: a follower's job whose push failed after the events were
        // stored is pushed when the batch is offered again (pushing one twice is a no-op).
        if !contacts.is_empty() {
            for f in &self.followers {
                let jobs = f.jobs(&self.connector, &contacts);
                if !jobs.is_empty() {
                    self.store.queue_push(&jobs).await?;
                    f.pushed();
                }
            }
        }
        if !checked.is_empty() {
            for verdict in self.inbox.push_checked(&self.connector, checked).await? {
                match verdict {
                    IngestVerdict::Accepted => out.accepted += 1,
                    IngestVerdict::Duplicate => out.duplicate += 1,
                    IngestVerdict::Stale => out.stale += 1,
                }
            }
        }
        self.count("accepted", out.accepted);
        self.count("duplicate", out.duplicate);
        self.count("stale", out.stale);
        self.count("unknown_agent", out.unknown_agent);
        self.count("contact_accepted", out.contact_accepted);
        self.count("contact_duplicate", out.contact_duplicate);
        Ok(out)
    }
}
