//! The Google CCAI Platform connector against the fake tenant over loopback.

use std::time::{Duration, Instant};

use presence_bridge::app::config::Config;
use presence_bridge::connectors::ccai::CcaiConnector;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::{
    Channel, ConnectorError, ConnectorEvent, ContactActivity, ContactCenter, StatusKind,
};
use presence_bridge::model::health::HealthState;
use presence_bridge::model::{CcStatus, Source};
use presence_bridge::sim::ccai::{self, CCAI_SUBDOMAIN, CCAI_TOKEN, FakeCcai};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, spawn_app_with, test_config};

fn toml(fake: &FakeCcai, token: &str, extra: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "ccai"
kind = "ccai"
subdomain = "{CCAI_SUBDOMAIN}"
domain = "uc1.ccaiplatform.com"
base_url = "{}"
api_token = "{token}"
{extra}
"#,
        fake.base_url
    )
}

fn connector(fake: &FakeCcai, extra: &str) -> CcaiConnector {
    connector_with(fake, CCAI_TOKEN, extra)
}

fn connector_with(fake: &FakeCcai, token: &str, extra: &str) -> CcaiConnector {
    let mut cfg =
        Config::from_toml_str_with_env(&toml(fake, token, extra), Vec::<(String, String)>::new())
            .expect("parses");
    cfg.resolve_and_validate().expect("valid");
    let ConnectorConfig::Ccai(c) = cfg.connectors[0].clone() else {
        panic!("ccai")
    };
    CcaiConnector::new(*c, reqwest::Client::new()).expect("builds")
}

fn status(name: &str) -> CcStatus {
    let id = ccai::STATUSES.iter().find(|s| s.1 == name).unwrap().0;
    CcStatus {
        id: id.to_string(),
        name: name.into(),
    }
}

#[tokio::test]
async fn lists_agents_page_by_page_and_the_catalog() {
    let fake = ccai::spawn(5).await.unwrap();
    let c = connector(&fake, "page_size = 2");
    let agents = c.list_agents().await.unwrap();
    assert_eq!(agents.len(), 5);
    assert_eq!(agents[0].id, "1");
    assert_eq!(agents[0].email.as_deref(), Some("agent1@example.com"));
    assert_eq!(agents[0].display_name.as_deref(), Some("Agent 1"));
    let calls = fake.list_calls();
    assert_eq!(calls.len(), 3, "5 agents, 2 per page: {calls:?}");
    assert!(
        calls[2].contains("page=3") && calls[2].contains("per=2"),
        "{calls:?}"
    );

    let catalog = c.status_catalog().await.unwrap();
    let find = |n: &str| catalog.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(find("Available").kind, StatusKind::Routable);
    assert_eq!(find("Available").id, "1");
    assert_eq!(find("Offline").kind, StatusKind::Offline);
    assert_eq!(find("In-Call").kind, StatusKind::OnContact);
    assert!(!find("In-Call").settable, "a system status cannot be set");
    assert!(find("Break").settable);
    assert_eq!(c.health().await.0, HealthState::Up);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_shows_in_readiness() {
    let fake = ccai::spawn(1).await.unwrap();
    let c = connector_with(&fake, "wrong", "");
    assert!(matches!(
        c.list_agents().await,
        Err(ConnectorError::Unauthorized(_))
    ));
    assert_eq!(c.health().await.0, HealthState::Down);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(&dir);
    let extra =
        Config::from_toml_str_with_env(&toml(&fake, "wrong", ""), Vec::<(String, String)>::new())
            .unwrap();
    cfg.connectors = extra.connectors;
    cfg.resolve_and_validate().unwrap();
    let app = spawn_app_with(cfg, dir).await;
    eventually(
        "ccai down in readiness",
        Duration::from_secs(15),
        || async {
            let r = app.get("/health/ready").await;
            if r.status() != 503 {
                return false;
            }
            let body: serde_json::Value = r.json().await.unwrap();
            body["checks"].as_array().unwrap().iter().any(|c| {
                c["name"] == "connector:ccai"
                    && c["state"] == "down"
                    && c["detail"].as_str().unwrap_or("").contains("unauthorized")
            })
        },
    )
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn writes_batch_agents_getting_the_same_status_as_documented() {
    let fake = ccai::spawn(4).await.unwrap();
    let c = connector(&fake, "write_batch_window_ms = 300");
    let brk = status("Break");
    let lunch = status("Lunch");
    let (a, b, l) = tokio::join!(
        c.set_status("1", &brk),
        c.set_status("2", &brk),
        c.set_status("3", &lunch)
    );
    a.unwrap();
    b.unwrap();
    l.unwrap();
    let mut writes = fake.writes();
    writes.sort_by_key(|w| w["status"].as_str().unwrap().to_owned());
    // POST /apps/api/v1/agent_statuses {"status": <name>, "agent_ids": [<numbers>]}
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0]["status"], "Break");
    let mut ids: Vec<u64> = writes[0]["agent_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(writes[1], json!({"status": "Lunch", "agent_ids": [3]}));
    assert_eq!(fake.status_of(1), Some("Break"));
    assert_eq!(fake.status_of(3), Some("Lunch"));
    assert_eq!(fake.status_of(4), Some("Available"));
}

#[tokio::test]
async fn a_system_status_refusal_is_rejected_once_and_spares_the_rest_of_the_batch() {
    let fake = ccai::spawn(3).await.unwrap();
    fake.set_agent_status(2, "In-Call");
    let c = connector(&fake, "write_batch_window_ms = 300");
    let brk = status("Break");
    let (a, b) = tokio::join!(c.set_status("1", &brk), c.set_status("2", &brk));
    a.unwrap();
    assert!(
        matches!(&b, Err(ConnectorError::Rejected { reason }) if reason.contains("system status")),
        "{b:?}"
    );
    assert_eq!(fake.status_of(1), Some("Break"));
    assert_eq!(fake.status_of(2), Some("In-Call"));
    // The batch, then each agent alone; the refused one is not sent again.
    let posts = fake.request_times().len();
    let again = c.set_status("3", &status("In-Call")).await;
    assert!(
        matches!(again, Err(ConnectorError::Rejected { .. })),
        "{again:?}"
    );
    assert_eq!(
        fake.request_times().len(),
        posts + 1,
        "a refusal is never retried"
    );
    assert_eq!(
        c.health().await.0,
        HealthState::Up,
        "a refusal is not ill health"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_default_rate_keeps_under_the_limit() {
    let fake = ccai::spawn(1).await.unwrap();
    let c = connector(&fake, "");
    fake.inject_429(1);
    let start = Instant::now();
    c.list_agents().await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let times = fake.request_times();
    assert_eq!(times.len(), 2);
    assert!(times[1].duration_since(times[0]) >= Duration::from_secs(1));

    // 25 reads at the default rate: the fake's 10-per-second limit never trips.
    for _ in 0..25 {
        c.current_statuses(&["1".into()]).await.unwrap();
    }
    assert_eq!(fake.throttled(), 0, "the documented limit was exceeded");

    // Without the client-side rate the same reads trip it: the check above can fail.
    let fast = ccai::spawn(1).await.unwrap();
    let c = connector(
        &fast,
        "[connectors.limits]\nrequests_per_sec = 1000.0\nmax_retries = 0",
    );
    for _ in 0..25 {
        let _ = c.current_statuses(&["1".into()]).await;
    }
    assert!(fast.throttled() > 0);
}

async fn next(rx: &mut mpsc::Receiver<ConnectorEvent>) -> presence_bridge::connectors::AgentEvent {
    match tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event in time")
        .expect("open")
    {
        ConnectorEvent::Agent(a) => a,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn polling_normalises_status_wrap_up_and_in_call() {
    let fake = ccai::spawn(2).await.unwrap();
    let c = connector(&fake, "poll_interval_secs = 1");
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let run = {
        let cancel = cancel.clone();
        async move { c.run_events(tx, cancel).await }
    };
    let task = tokio::spawn(run);
    // First poll: everyone, idle and Available.
    let first = [next(&mut rx).await, next(&mut rx).await];
    for e in &first {
        assert_eq!(e.status.name, "Available");
        assert_eq!(e.source, Source::ConnectorPoll);
        assert_eq!(e.activity.unwrap().activity, ContactActivity::Idle);
    }
    fake.set_agent_status(1, "In-Call");
    let e = next(&mut rx).await;
    assert_eq!(
        (e.agent_id.as_str(), e.status.name.as_str()),
        ("1", "In-Call")
    );
    let a = e.activity.unwrap();
    assert_eq!(a.activity, ContactActivity::OnContact);
    assert_eq!(a.channel, Some(Channel::Voice));
    // Wrap-up with the status unchanged is still an event.
    fake.set_wrap_up(1, true);
    let e = next(&mut rx).await;
    assert_eq!(e.status.name, "In-Call");
    assert_eq!(
        e.activity.unwrap().activity,
        ContactActivity::AfterContactWork
    );
    fake.set_wrap_up(1, false);
    fake.set_agent_status(1, "Available");
    fake.set_online(2, false);
    let mut got = [next(&mut rx).await, next(&mut rx).await];
    got.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    assert_eq!(got[0].activity.unwrap().activity, ContactActivity::Idle);
    assert_eq!(
        got[1].activity.unwrap().activity,
        ContactActivity::LoggedOut
    );
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[test]
fn check_config_validates_ccai_connectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[[connectors]]
name = "ccai"
kind = "ccai"
subdomain = "acme.evil"
domain = ""
page_size = 0
poll_interval_secs = 0
user_statuses_path = "/manager/api/v1/user_statuses"
write_batch_window_ms = 60000
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    for key in [
        "connectors[0].subdomain",
        "connectors[0].domain",
        "connectors[0].api_token: is required",
        "connectors[0].page_size",
        "connectors[0].poll_interval_secs",
        "connectors[0].user_statuses_path",
        "connectors[0].write_batch_window_ms",
    ] {
        assert!(stderr.contains(key), "{key:?} missing from {stderr}");
    }
    // The default rate is the documented 10 per second.
    let ok = dir.path().join("ok.toml");
    std::fs::write(
        &ok,
        "[[connectors]]\nname = \"ccai\"\nkind = \"ccai\"\nsubdomain = \"acme\"\ndomain = \"uc1.ccaiplatform.com\"\napi_token = \"secret-token\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .args(["--config", ok.to_str().unwrap(), "check-config"])
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("requests_per_sec = 10.0"), "{stdout}");
    assert!(!stdout.contains("secret-token"), "secret leaked: {stdout}");
}
