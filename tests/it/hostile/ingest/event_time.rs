//! Event times out of range: an inbound webhook event dated 2099, sent in microseconds, or
//! `"NaN"` gets 400 and freezes nobody; a stream's future event is dropped and counted.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::connectors::http::config::HmacAlgorithm;
use presence_bridge::connectors::http::inbound::hmac_sign;
use presence_bridge::connectors::{
    Agent, AgentEvent, AgentStatus, CatalogStatus, ConnectorError, ConnectorEvent, ContactCenter,
};
use presence_bridge::model::health::HealthState;
use presence_bridge::model::{CcStatus, Source};
use presence_bridge::sim::contact_center::{self, SIM_WEBHOOK_SECRET, SimOptions};
use presence_bridge::store::UserRecord;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestApp, spawn_app_with, spawn_built, test_config};

pub(super) fn user(teams_id: &str, connector: &str, agent: &str) -> UserRecord {
    UserRecord {
        teams_id: teams_id.into(),
        upn: format!("{teams_id}@example.com"),
        mail: None,
        display_name: None,
        business_phones: vec![],
        mobile_phone: None,
        cc_connector: Some(connector.into()),
        cc_agent_id: Some(agent.into()),
        active: true,
        updated_at: Utc::now(),
    }
}

/// The daemon with the simulated contact center's generic-connector configuration, named
/// `sim` (inbound events signed `sha256=HMAC(timestamp.body)`).
pub(super) async fn app_with_sim_connector(connector_toml: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n[store]\nurl = \"sqlite://{}/test.db\"\n{connector_toml}",
        dir.path().display(),
    );
    let mut cfg =
        Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    spawn_app_with(cfg, dir).await
}

/// Posts `body` to the `sim` connector's webhook, signed over `{ts}.{body}` but sent with
/// the timestamp header `sent_ts`.
pub(super) async fn post_signed_as(
    app: &TestApp,
    body: &str,
    signed_ts: i64,
    sent_ts: i64,
) -> reqwest::Response {
    let sig = hmac_sign(
        HmacAlgorithm::Sha256,
        SIM_WEBHOOK_SECRET.as_bytes(),
        &[signed_ts.to_string().as_bytes(), b".", body.as_bytes()],
    );
    app.client
        .post(format!("{}/connectors/sim/events", app.address))
        .header("content-type", "application/json")
        .header("X-Sim-Timestamp", sent_ts.to_string())
        .header("X-Sim-Signature", format!("sha256={}", hex::encode(sig)))
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

async fn post_event(app: &TestApp, id: &str, status: &str, changed_at: Value) -> (u16, String) {
    let body = json!({
        "event_id": id,
        "agent_id": "agent-1",
        "status_id": status,
        "changed_at": changed_at,
    })
    .to_string();
    let now = Utc::now().timestamp();
    let r = post_signed_as(app, &body, now, now).await;
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn webhook_event_times_out_of_range_get_400_and_freeze_nobody() {
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    let app = app_with_sim_connector(&sim.connector_toml("sim")).await;
    app.store
        .upsert_users(&[user("u1", "sim", "agent-1")])
        .await
        .unwrap();
    let now = Utc::now();
    let hostile = [
        ("far-future", json!("2099-01-01T00:00:00Z"), "ahead"),
        // Microseconds read as milliseconds: tens of thousands of years ahead.
        ("micros", json!(now.timestamp_micros()), "ahead"),
        ("nan", json!("NaN"), "timestamp"),
        ("epoch", json!("1970-01-01T00:00:00Z"), "old"),
    ];
    for (id, at, why) in hostile {
        let (status, text) = post_event(&app, id, "break", at.clone()).await;
        assert_eq!(status, 400, "{id} ({at}) must be refused: {text}");
        assert!(text.contains(why), "{id}: the answer says why: {text}");
    }
    assert_eq!(app.store.inbox_len().await.unwrap(), 0, "nothing stored");
    // A real event afterwards is taken, not judged stale against a refused one.
    let (status, text) = post_event(&app, "real", "available", json!(now.to_rfc3339())).await;
    assert_eq!(status, 202, "{text}");
    let outcome: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(outcome["accepted"], 1, "{outcome}");
    assert_eq!(outcome["stale"], 0, "{outcome}");
    app.shutdown().await;
}

/// A contact center whose event stream sends the given events once released.
struct StreamingFake {
    events: Vec<AgentEvent>,
    release: Arc<Notify>,
}

#[async_trait]
impl ContactCenter for StreamingFake {
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
async fn stream_events_dated_in_the_future_are_dropped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(&dir);
    let event = |status: &str, at| AgentEvent {
        agent_id: "agent-9".into(),
        status: CcStatus {
            id: status.into(),
            name: status.into(),
        },
        at,
        event_id: None,
        source: Source::ConnectorPush,
        activity: None,
    };
    let release = Arc::new(Notify::new());
    let fake = StreamingFake {
        events: vec![
            event("Break", Utc::now() + chrono::Duration::days(365 * 70)),
            event("Available", Utc::now()),
        ],
        release: release.clone(),
    };
    let app = spawn_built(Application::builder(cfg).connector(Arc::new(fake)), dir).await;
    app.store
        .upsert_users(&[user("u9", "stream", "agent-9")])
        .await
        .unwrap();
    release.notify_one();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let m = app.get("/metrics").await.text().await.unwrap();
        let seen: u64 = ["accepted", "stale", "out_of_range", "duplicate"]
            .iter()
            .map(|o| counted(&m, o))
            .sum();
        if seen >= 2 {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both events handled: {m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(counted(&metrics, "out_of_range"), 1, "{metrics}");
    assert_eq!(counted(&metrics, "accepted"), 1, "{metrics}");
    assert_eq!(counted(&metrics, "stale"), 0, "{metrics}");
    app.shutdown().await;
}
