//! Contact-center connectors in the running daemon: inbound webhooks into the inbox, the
//! per-connector job (agent refresh, readiness), and writes through the generic connector,
//! all against the simulated contact center over loopback HTTP.

use std::time::Duration;

use presence_bridge::app::config::Config;
use presence_bridge::connectors::http::config::HmacAlgorithm;
use presence_bridge::connectors::http::inbound::hmac_sign;
use presence_bridge::model::{CcStatus, Observation, Status};
use presence_bridge::sim::contact_center::{
    self, SIM_WEBHOOK_SECRET, SimContactCenter, SimOptions,
};
use presence_bridge::store::UserRecord;
use serde_json::json;

use crate::helpers::{TestApp, eventually, spawn_app_with};

async fn app_with_sim(sim: &SimContactCenter) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n[store]\nurl = \"sqlite://{}/test.db\"\n{}",
        dir.path().display(),
        sim.connector_toml("sim")
    );
    let mut cfg =
        Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    let app = spawn_app_with(cfg, dir).await;
    sim.set_webhook_url(&format!("{}/connectors/sim/events", app.address));
    app
}

fn user(teams_id: &str, agent: &str) -> UserRecord {
    UserRecord {
        teams_id: teams_id.into(),
        upn: format!("{teams_id}@example.com"),
        mail: None,
        display_name: None,
        business_phones: vec![],
        mobile_phone: None,
        cc_connector: Some("sim".into()),
        cc_agent_id: Some(agent.into()),
        active: true,
        updated_at: chrono::Utc::now(),
    }
}

async fn inbox_len(app: &TestApp) -> u64 {
    app.store.inbox_len().await.expect("inbox_len")
}

async fn post_signed(app: &TestApp, body: &str, key: &str) -> reqwest::Response {
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = hmac_sign(
        HmacAlgorithm::Sha256,
        key.as_bytes(),
        &[ts.as_bytes(), b".", body.as_bytes()],
    );
    app.client
        .post(format!("{}/connectors/sim/events", app.address))
        .header("X-Sim-Timestamp", ts)
        .header("X-Sim-Signature", format!("sha256={}", hex::encode(sig)))
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

/// The job has read the catalog and the agents once.
async fn wait_for_refresh(app: &TestApp) {
    eventually("agent refresh", Duration::from_secs(10), || async {
        app.store
            .list_agents(Some("sim"))
            .await
            .map(|a| a.len() == 3)
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test]
async fn signed_webhook_events_reach_the_inbox_once() {
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    let app = app_with_sim(&sim).await;
    app.store
        .upsert_users(&[user("u1", "agent-1"), user("u2", "agent-2")])
        .await
        .unwrap();
    wait_for_refresh(&app).await;
    let agents = app.store.list_agents(Some("sim")).await.unwrap();
    assert_eq!(agents[0].email.as_deref(), Some("agent1@example.com"));

    assert_eq!(sim.set_agent_status("agent-1", "break").await, Some(202));
    assert_eq!(inbox_len(&app).await, 1);
    let items = app.store.inbox_claim(10, 30).await.unwrap();
    let obs: Observation = serde_json::from_value(items[0].payload.clone()).unwrap();
    assert_eq!(obs.user, "u1");
    assert_eq!(
        obs.status,
        Status::ContactCenter(CcStatus {
            id: "break".into(),
            name: "Break".into()
        })
    );

    // a redelivery of the same event id is acknowledged but not stored again
    let body = json!({"event_id": "e-9", "agent_id": "agent-2", "status_id": "acw", "changed_at": chrono::Utc::now().to_rfc3339()}).to_string();
    let r = post_signed(&app, &body, SIM_WEBHOOK_SECRET).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["accepted"], 1);
    let r = post_signed(&app, &body, SIM_WEBHOOK_SECRET).await;
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["duplicate"], 1);
    assert_eq!(inbox_len(&app).await, 2);

    // older than the last applied event for the agent: dropped
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let stale = json!({"event_id": "e-10", "agent_id": "agent-2", "status_id": "available", "changed_at": an_hour_ago.to_rfc3339()}).to_string();
    let r = post_signed(&app, &stale, SIM_WEBHOOK_SECRET).await;
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["stale"], 1);

    // an agent matched to no Teams user: dropped and counted
    assert_eq!(sim.set_agent_status("agent-3", "break").await, Some(202));
    assert_eq!(inbox_len(&app).await, 2);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("connector_events_total{connector=\"sim\",outcome=\"unknown_agent\"} 1"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn unsigned_or_malformed_events_are_refused_without_state_change() {
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    let app = app_with_sim(&sim).await;
    app.store
        .upsert_users(&[user("u1", "agent-1")])
        .await
        .unwrap();
    let body = json!({"event_id": "x", "agent_id": "agent-1", "status_id": "break", "changed_at": chrono::Utc::now().to_rfc3339()}).to_string();

    let unsigned = app
        .client
        .post(format!("{}/connectors/sim/events", app.address))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let wrong = post_signed(&app, &body, "not-the-secret").await;
    assert_eq!(wrong.status(), 401);
    let malformed = post_signed(&app, r#"{"agent_id": "agent-1"}"#, SIM_WEBHOOK_SECRET).await;
    assert_eq!(malformed.status(), 400);
    let err: serde_json::Value = malformed.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/status_id"),
        "{err}"
    );
    let not_json = post_signed(&app, "nope", SIM_WEBHOOK_SECRET).await;
    assert_eq!(not_json.status(), 400);
    let unknown = app
        .client
        .post(format!("{}/connectors/other/events", app.address))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(inbox_len(&app).await, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn writes_go_to_the_platform_and_its_echo_comes_back_as_an_event() {
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    let app = app_with_sim(&sim).await;
    app.store
        .upsert_users(&[user("u2", "agent-2")])
        .await
        .unwrap();
    wait_for_refresh(&app).await;
    let handle = app.connectors.get("sim").expect("registered");
    let busy = CcStatus {
        id: "busy_teams".into(),
        name: "Busy (Teams)".into(),
    };
    handle.connector.set_status("agent-2", &busy).await.unwrap();
    let writes = sim.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].body,
        json!({"status_id": "busy_teams", "teams_user_id": "u2"}),
        "Teams id from the store"
    );
    eventually(
        "echo event in the inbox",
        Duration::from_secs(10),
        || async { inbox_len(&app).await == 1 },
    )
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn auth_failure_shows_in_readiness() {
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    sim.reject_credentials(true);
    let app = app_with_sim(&sim).await;
    eventually(
        "connector down in readiness",
        Duration::from_secs(10),
        || async {
            let r = app.get("/health/ready").await;
            if r.status() != 503 {
                return false;
            }
            let body: serde_json::Value = r.json().await.unwrap();
            body["checks"].as_array().unwrap().iter().any(|c| {
                c["name"] == "connector:sim"
                    && c["state"] == "down"
                    && c["critical"] == true
                    && c["detail"].as_str().unwrap_or("").contains("unauthorized")
            })
        },
    )
    .await;
    sim.reject_credentials(false);
    app.shutdown().await;
}

#[tokio::test]
async fn events_are_not_acknowledged_when_the_inbox_cannot_be_written() {
    use sqlx::Connection;
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    let app = app_with_sim(&sim).await;
    app.store
        .upsert_users(&[user("u1", "agent-1")])
        .await
        .unwrap();
    // break the inbox table behind the store's back
    let db = app.dir.path().join("test.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE inbox RENAME TO inbox_away")
        .execute(&mut conn)
        .await
        .unwrap();
    let body = json!({"event_id": "e-1", "agent_id": "agent-1", "status_id": "break", "changed_at": chrono::Utc::now().to_rfc3339()}).to_string();
    assert_eq!(
        post_signed(&app, &body, SIM_WEBHOOK_SECRET).await.status(),
        503
    );
    sqlx::query("ALTER TABLE inbox_away RENAME TO inbox")
        .execute(&mut conn)
        .await
        .unwrap();
    // the failed delivery was not remembered: the redelivery is stored
    let r = post_signed(&app, &body, SIM_WEBHOOK_SECRET).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["accepted"], 1);
    assert_eq!(inbox_len(&app).await, 1);
    app.shutdown().await;
}
