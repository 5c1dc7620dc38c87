//! A source's events are reported stored only once the runtime has committed them: a
//! connector that keeps a read position at its platform moves it only then, so a crash
//! between taking a batch from the channel and committing it loses nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use presence_bridge::connectors::{
    Agent, AgentEvent, AgentStatus, CatalogStatus, ConnectorError, ConnectorEvent, ContactCenter,
};
use presence_bridge::model::health::HealthState;
use presence_bridge::model::{CcStatus, Source};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::event_time::user;
use crate::helpers::{spawn_built, test_config};

/// Sends its events once released; reports each `events_stored` call on `stored`.
struct AckingFake {
    events: Vec<AgentEvent>,
    release: Arc<Notify>,
    stored: mpsc::UnboundedSender<usize>,
}

#[async_trait]
impl ContactCenter for AckingFake {
    fn name(&self) -> &str {
        "stream"
    }
    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError> {
        Ok(vec![])
    }
    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError> {
        Ok(vec![])
    }
    async fn current_statuses(&self, _: &[String]) -> Result<Vec<AgentStatus>, ConnectorError> {
        Ok(vec![])
    }
    async fn set_status(&self, _: &str, _: &CcStatus) -> Result<(), ConnectorError> {
        Ok(())
    }
    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError> {
        self.release.notified().await;
        for e in &self.events {
            let _ = events.send(e.clone().into()).await;
        }
        cancel.cancelled().await;
        Ok(())
    }
    fn events_stored(&self, n: usize) {
        let _ = self.stored.send(n);
    }
    async fn health(&self) -> (HealthState, String) {
        (HealthState::Up, "ok".into())
    }
}

fn counted(metrics: &str, outcome: &str) -> u64 {
    let key = format!("connector_events_total{{connector=\"stream\",outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn stream_events_are_reported_stored_only_after_they_are_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(&dir);
    let event = |id: &str, at| AgentEvent {
        agent_id: "agent-9".into(),
        status: CcStatus {
            id: "Available".into(),
            name: "Available".into(),
        },
        at,
        event_id: Some(id.into()),
        source: Source::ConnectorPush,
        activity: None,
    };
    let release = Arc::new(Notify::new());
    let (tx, mut stored) = mpsc::unbounded_channel();
    let now = Utc::now();
    let fake = AckingFake {
        events: vec![
            event("e1", now - chrono::Duration::seconds(2)),
            // Dropped before ingest (dated far ahead): counts as handled too.
            event("e2", now + chrono::Duration::days(365 * 70)),
            event("e3", now),
        ],
        release: release.clone(),
        stored: tx,
    };
    let app = spawn_built(
        presence_bridge::app::Application::builder(cfg).connector(Arc::new(fake)),
        dir,
    )
    .await;
    app.store
        .upsert_users(&[user("u9", "stream", "agent-9")])
        .await
        .unwrap();
    release.notify_one();
    let mut reported = 0;
    while reported < 3 {
        reported += tokio::time::timeout(Duration::from_secs(10), stored.recv())
            .await
            .expect("the events reported stored in time")
            .expect("reporter alive");
        // Each report comes after its batch was committed: what it covers is counted.
        let m = app.get("/metrics").await.text().await.unwrap();
        let handled = counted(&m, "accepted") + counted(&m, "out_of_range");
        assert!(
            handled >= reported as u64,
            "{reported} reported stored, {handled} handled: {m}"
        );
    }
    assert_eq!(reported, 3, "each event reported once");
    app.shutdown().await;
}
