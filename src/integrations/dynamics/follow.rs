//! From stored contact events to durable step jobs: one job per environment, contact and step,
//! keyed by environment and contact (so a contact's steps run in order) and de-duplicated by
//! environment, contact and step (so a redelivered event, before or after a restart, adds
//! nothing). The `created` step is pushed ahead of whatever event of a contact comes first.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::config::{DynamicsConfig, StepName};
use crate::connectors::{ContactEvent, ContactEventKind};
use crate::store::NewJob;

/// The queue the Dynamics steps run on.
pub const QUEUE: &str = "dynamics";

/// What a step job carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepJob {
    pub environment: String,
    pub connector: String,
    pub step: StepName,
    /// The contact event the step runs for.
    pub event: ContactEvent,
}

impl StepJob {
    /// The ordering key: the contact in one environment.
    pub fn key(&self) -> String {
        contact_key(&self.environment, &self.connector, &self.event.contact_id)
    }

    /// The de-duplication id: the contact's step in one environment.
    pub fn dedupe(&self) -> String {
        format!("{}/{}", self.key(), self.step.as_str())
    }
}

pub fn contact_key(env: &str, connector: &str, contact: &str) -> String {
    format!("{env}/{connector}/{contact}")
}

/// The step a contact event triggers (`offered` is the `created` step).
pub fn step_of(kind: ContactEventKind) -> StepName {
    match kind {
        ContactEventKind::Offered => StepName::Created,
        ContactEventKind::Connected => StepName::Connected,
        ContactEventKind::Ended => StepName::Ended,
        ContactEventKind::RecordingAvailable => StepName::RecordingAvailable,
    }
}

/// The step jobs of a batch of contact events, for every environment that follows
/// `connector`.
pub fn jobs(envs: &[Arc<DynamicsConfig>], connector: &str, events: &[ContactEvent]) -> Vec<NewJob> {
    let mut out = Vec::new();
    let now = Utc::now();
    for env in envs {
        if !env.connectors.is_empty() && !env.connectors.iter().any(|c| c == connector) {
            continue;
        }
        for e in events {
            let step = step_of(e.kind);
            let mut wanted = Vec::with_capacity(2);
            if env.steps.created.is_some() {
                wanted.push(StepName::Created);
            }
            if step != StepName::Created && env.steps.get(step).is_some() {
                wanted.push(step);
            }
            for s in wanted {
                let job = StepJob {
                    environment: env.name.clone(),
                    connector: connector.to_owned(),
                    step: s,
                    event: e.clone(),
                };
                out.push(NewJob {
                    queue: QUEUE.to_owned(),
                    key: job.key(),
                    dedupe: Some(job.dedupe()),
                    payload: serde_json::to_value(&job).unwrap_or_default(),
                    not_before: now,
                });
            }
        }
    }
    out
}
