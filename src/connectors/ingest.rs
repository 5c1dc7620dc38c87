//! The one path from contact-center events to the durable inbox, shared by inbound webhooks
//! and `run_events` streams: resolve agent → Teams user, drop duplicates and stale events,
//! write observations, and only then remember what was applied.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::AgentEvent;
use crate::model::{Observation, Status};
use crate::store::inbox::Inbox;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// Event ids remembered per connector for de-duplication. Platforms redeliver within minutes,
/// so a few thousand recent ids cover any realistic retry burst.
const RECENT_EVENT_IDS: usize = 10_000;

/// What happened to a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicate: usize,
    pub stale: usize,
    pub unknown_agent: usize,
}

#[derive(Default)]
struct Seen {
    last_at: HashMap<String, DateTime<Utc>>,
    ids: HashSet<String>,
    order: VecDeque<String>,
}

/// Per-connector ingest state. Cheap to share.
pub struct Ingest {
    connector: String,
    store: Arc<dyn Store>,
    inbox: Inbox,
    metrics: Metrics,
    seen: Mutex<Seen>,
}

impl Ingest {
    pub fn new(connector: &str, inbox: Inbox, metrics: Metrics) -> Self {
        Self {
            connector: connector.to_owned(),
            store: inbox.store().clone(),
            inbox,
            metrics,
            seen: Mutex::new(Seen::default()),
        }
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

    /// Stores the new events as observations (all or none). On error nothing is remembered,
    /// so a redelivery is accepted.
    pub async fn ingest(&self, events: Vec<AgentEvent>) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        let mut fresh = Vec::new();
        {
            let seen = self.seen.lock().expect("ingest lock");
            let mut batch_ids = HashSet::new();
            let mut batch_last: HashMap<&str, DateTime<Utc>> = HashMap::new();
            for e in &events {
                if let Some(id) = &e.event_id
                    && (seen.ids.contains(id) || !batch_ids.insert(id.clone()))
                {
                    out.duplicate += 1;
                    continue;
                }
                let last = batch_last
                    .get(e.agent_id.as_str())
                    .or_else(|| seen.last_at.get(&e.agent_id));
                if last.is_some_and(|l| e.at < *l) {
                    out.stale += 1;
                    continue;
                }
                batch_last.insert(&e.agent_id, e.at);
                fresh.push(e.clone());
            }
        }
        let mut observations = Vec::with_capacity(fresh.len());
        let mut applied = Vec::with_capacity(fresh.len());
        for e in fresh {
            match self.store.user_by_agent(&self.connector, &e.agent_id).await {
                Ok(user) => {
                    observations.push(Observation {
                        user: user.teams_id,
                        status: Status::ContactCenter(e.status.clone()),
                        observed_at: e.at,
                        source: e.source,
                    });
                    applied.push(e);
                }
                Err(StoreError::NotFound) => {
                    tracing::debug!(connector = %self.connector, agent = %e.agent_id, "event for an agent matched to no Teams user dropped");
                    out.unknown_agent += 1;
                }
                Err(other) => return Err(other),
            }
        }
        self.inbox.push_observations(&observations).await?;
        {
            let mut seen = self.seen.lock().expect("ingest lock");
            for e in &applied {
                let entry = seen.last_at.entry(e.agent_id.clone()).or_insert(e.at);
                *entry = (*entry).max(e.at);
                if let Some(id) = &e.event_id
                    && seen.ids.insert(id.clone())
                {
                    seen.order.push_back(id.clone());
                    if seen.order.len() > RECENT_EVENT_IDS
                        && let Some(old) = seen.order.pop_front()
                    {
                        seen.ids.remove(&old);
                    }
                }
            }
        }
        out.accepted = applied.len();
        self.count("accepted", out.accepted);
        self.count("duplicate", out.duplicate);
        self.count("stale", out.stale);
        self.count("unknown_agent", out.unknown_agent);
        Ok(out)
    }
}
