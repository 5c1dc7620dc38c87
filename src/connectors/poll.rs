//! Polling as an event source, shared by the generic HTTP connector and Amazon Connect: read
//! every agent's status on an interval and turn what changed since the last read into events.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AgentEvent, AgentStatus, ConnectorError, ConnectorEvent};
use crate::model::{CcStatus, Source};

/// Events for agents whose status differs from `last` (new agents included).
pub fn diff_snapshot(
    last: &HashMap<String, CcStatus>,
    now: &[AgentStatus],
    at: DateTime<Utc>,
) -> Vec<AgentEvent> {
    now.iter()
        .filter(|s| last.get(&s.agent_id) != Some(&s.status))
        .map(|s| AgentEvent {
            agent_id: s.agent_id.clone(),
            status: s.status.clone(),
            at: s.since.unwrap_or(at),
            event_id: None,
            source: Source::ConnectorPoll,
            activity: s.activity,
        })
        .collect()
}

/// Runs a polling loop: `read` every `interval`, events for what changed.
pub async fn poll_loop<F, Fut>(
    interval: Duration,
    events: mpsc::Sender<ConnectorEvent>,
    cancel: CancellationToken,
    mut read: F,
) -> Result<(), ConnectorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<AgentStatus>, ConnectorError>>,
{
    let mut last: HashMap<String, CcStatus> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let snapshot = read().await?;
        for e in diff_snapshot(&last, &snapshot, Utc::now()) {
            if events.send(e.into()).await.is_err() {
                return Ok(());
            }
        }
        last = snapshot
            .into_iter()
            .map(|s| (s.agent_id, s.status))
            .collect();
    }
}
