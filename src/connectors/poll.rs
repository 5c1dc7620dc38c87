//! Polling as an event source, shared by the generic HTTP connector, Amazon Connect and CCAI: read
//! every agent's status on an interval and turn what changed since the last read into events.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AgentEvent, AgentStatus, ConnectorError, ConnectorEvent};
use crate::model::contact_center::Activity;
use crate::model::{CcStatus, Source};

/// What a poll saw of each agent: the status and the contact activity.
pub type Snapshot = HashMap<String, (CcStatus, Option<Activity>)>;

/// The snapshot of one poll's statuses.
pub fn snapshot(now: Vec<AgentStatus>) -> Snapshot {
    now.into_iter()
        .map(|s| (s.agent_id, (s.status, s.activity)))
        .collect()
}

/// Events for agents whose status or contact activity differs from `last` (new agents
/// included). A changed status is dated by the status' own start time when the platform
/// gives it; a change of activity alone by `at` (the status began before the contact did).
pub fn diff_snapshot(last: &Snapshot, now: &[AgentStatus], at: DateTime<Utc>) -> Vec<AgentEvent> {
    now.iter()
        .filter_map(|s| {
            let when = match last.get(&s.agent_id) {
                Some((status, _)) if *status != s.status => s.since.unwrap_or(at),
                Some((_, activity)) if *activity != s.activity => at,
                Some(_) => return None,
                None => s.since.unwrap_or(at),
            };
            Some(AgentEvent {
                agent_id: s.agent_id.clone(),
                status: s.status.clone(),
                at: when,
                event_id: None,
                source: Source::ConnectorPoll,
                activity: s.activity,
            })
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
    let mut last = Snapshot::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let snapshot_now = read().await?;
        for e in diff_snapshot(&last, &snapshot_now, Utc::now()) {
            if events.send(e.into()).await.is_err() {
                return Ok(());
            }
        }
        last = snapshot(snapshot_now);
    }
}
