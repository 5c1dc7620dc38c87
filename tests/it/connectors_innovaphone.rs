//! The innovaphone PBX connector against the fake AppWebsocket endpoint over loopback.

use std::time::Duration;

use presence_bridge::app::config::Config;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::innovaphone::InnovaphoneConnector;
use presence_bridge::connectors::{
    AgentEvent, Channel, ConnectorError, ConnectorEvent, ContactActivity, ContactCenter, StatusKind,
};
use presence_bridge::model::health::HealthState;
use presence_bridge::model::{CcStatus, Source};
use presence_bridge::sim::innovaphone::{
    self, FakeInnovaphone, INNOVAPHONE_APP, INNOVAPHONE_PASSWORD,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventually, spawn_app_with, test_config};

fn toml(fake: &FakeInnovaphone, password: &str, agents: usize) -> String {
    let mut t = format!(
        r#"
[[connectors]]
name = "pbx"
kind = "innovaphone"
url = "{}"
app = "{INNOVAPHONE_APP}"
password = "{password}"
contact = "presence-bridge:"
[connectors.limits]
requests_per_sec = 1000.0
backoff_base_ms = 50
backoff_max_ms = 200
"#,
        fake.url
    );
    for i in 1..=agents {
        if i == agents {
            // The last one by phone number.
            t.push_str(&format!("[[connectors.agents]]\nnum = \"20{i}\"\n"));
        } else {
            t.push_str(&format!("[[connectors.agents]]\nsip = \"agent{i}\"\n"));
        }
    }
    t
}

fn connector(fake: &FakeInnovaphone, password: &str, agents: usize) -> InnovaphoneConnector {
    let mut cfg = Config::from_toml_str_with_env(
        &toml(fake, password, agents),
        Vec::<(String, String)>::new(),
    )
    .expect("parses");
    cfg.resolve_and_validate().expect("valid");
    let ConnectorConfig::Innovaphone(c) = cfg.connectors[0].clone() else {
        panic!("innovaphone")
    };
    InnovaphoneConnector::new(*c)
}

async fn next(rx: &mut mpsc::Receiver<ConnectorEvent>) -> AgentEvent {
    match tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event in time")
        .expect("open")
    {
        ConnectorEvent::Agent(a) => a,
        other => panic!("{other:?}"),
    }
}

struct Running {
    c: std::sync::Arc<InnovaphoneConnector>,
    rx: mpsc::Receiver<ConnectorEvent>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ConnectorError>>,
}

fn start(c: InnovaphoneConnector) -> Running {
    let c = std::sync::Arc::new(c);
    let (tx, rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let task = {
        let (c, cancel) = (c.clone(), cancel.clone());
        tokio::spawn(async move { c.run_events(tx, cancel).await })
    };
    Running {
        c,
        rx,
        cancel,
        task,
    }
}

#[tokio::test]
async fn logs_in_subscribes_and_lists_agents_and_catalog() {
    let fake = innovaphone::spawn(3).await.unwrap();
    let mut r = start(connector(&fake, INNOVAPHONE_PASSWORD, 3));
    // One reconcile event per agent: the first update of each subscription.
    let mut first: Vec<AgentEvent> = vec![
        next(&mut r.rx).await,
        next(&mut r.rx).await,
        next(&mut r.rx).await,
    ];
    first.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    assert_eq!(
        first
            .iter()
            .map(|e| e.agent_id.as_str())
            .collect::<Vec<_>>(),
        ["203", "agent1", "agent2"]
    );
    for e in &first {
        assert_eq!(e.source, Source::Reconcile);
        assert_eq!(e.status.id, "available");
        assert_eq!(e.activity.unwrap().activity, ContactActivity::Idle);
    }
    assert_eq!(fake.logins_ok(), 1);
    let subs = fake.subscribes();
    assert_eq!(subs.len(), 3, "{subs:?}");
    assert_eq!(r.c.health().await.0, HealthState::Up);

    // Agents: e-mail, display name and SIP name from PresenceState.
    let agents = r.c.list_agents().await.unwrap();
    let by_num = agents.iter().find(|a| a.id == "203").unwrap();
    assert_eq!(by_num.email.as_deref(), Some("agent3@example.com"));
    assert_eq!(by_num.display_name.as_deref(), Some("Agent 3"));
    assert_eq!(by_num.username.as_deref(), Some("agent3"));

    let catalog = r.c.status_catalog().await.unwrap();
    let ids: Vec<&str> = catalog.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "available",
            "away",
            "busy",
            "dnd",
            "on-the-phone",
            "meeting"
        ]
    );
    assert_eq!(catalog[0].kind, StatusKind::Routable);
    assert_eq!(catalog[4].kind, StatusKind::OnContact);

    let now =
        r.c.current_statuses(&["agent1".into(), "nobody".into()])
            .await
            .unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].status.id, "available");
    r.cancel.cancel();
    r.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_shows_in_readiness() {
    let fake = innovaphone::spawn(1).await.unwrap();
    let mut r = start(connector(&fake, "wrong-password", 1));
    let out = r.task.await.unwrap();
    assert!(
        matches!(out, Err(ConnectorError::Unauthorized(_))),
        "{out:?}"
    );
    assert_eq!(fake.logins_refused(), 1);
    assert_eq!(fake.logins_ok(), 0);
    assert!(fake.subscribes().is_empty(), "nothing before the login");
    let (state, detail) = r.c.health().await;
    assert_eq!(state, HealthState::Down, "{detail}");
    assert!(r.rx.try_recv().is_err());

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(&dir);
    cfg.connectors = Config::from_toml_str_with_env(
        &toml(&fake, "wrong-password", 1),
        Vec::<(String, String)>::new(),
    )
    .unwrap()
    .connectors;
    cfg.resolve_and_validate().unwrap();
    let app = spawn_app_with(cfg, dir).await;
    eventually(
        "innovaphone down in readiness",
        Duration::from_secs(15),
        || async {
            let r = app.get("/health/ready").await;
            if r.status() != 503 {
                return false;
            }
            let body: serde_json::Value = r.json().await.unwrap();
            body["checks"].as_array().unwrap().iter().any(|c| {
                c["name"] == "connector:pbx"
                    && c["state"] == "down"
                    && c["detail"].as_str().unwrap_or("").contains("refused")
            })
        },
    )
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn set_status_sends_the_documented_set_presence() {
    let fake = innovaphone::spawn(2).await.unwrap();
    let mut r = start(connector(&fake, INNOVAPHONE_PASSWORD, 2));
    next(&mut r.rx).await;
    next(&mut r.rx).await;
    let busy = CcStatus {
        id: "on-the-phone".into(),
        name: "on-the-phone".into(),
    };
    r.c.set_status("agent1", &busy).await.unwrap();
    // By number: the SIP name learnt from PresenceState.
    let available = InnovaphoneConnector::status_of_activity("");
    r.c.set_status("202", &available).await.unwrap();
    let sent = fake.set_presence_messages();
    assert_eq!(sent.len(), 2);
    let mut first = sent[0].clone();
    assert!(first["src"].is_string(), "{first}");
    first.as_object_mut().unwrap().remove("src");
    assert_eq!(
        first,
        json!({"api": "PbxApi", "mt": "SetPresence", "sip": "agent1", "contact": "presence-bridge:", "activity": "on-the-phone", "note": ""})
    );
    assert_eq!(sent[1]["sip"], "agent2");
    assert_eq!(sent[1]["activity"], "");
    assert_eq!(fake.newest("agent1").unwrap().activity, "on-the-phone");
    // The echo arrives as a push event.
    let e = next(&mut r.rx).await;
    assert_eq!(
        (e.agent_id.as_str(), e.status.id.as_str()),
        ("agent1", "on-the-phone")
    );
    assert_eq!(e.source, Source::ConnectorPush);

    // A SetPresenceResult with an error is a refusal.
    let unknown = r.c.set_status("ghost", &busy).await;
    assert!(
        matches!(unknown, Err(ConnectorError::NotFound(_))),
        "{unknown:?}"
    );
    r.cancel.cancel();
    r.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn presence_and_line_state_are_normalised() {
    let fake = innovaphone::spawn(1).await.unwrap();
    let mut r = start(connector(&fake, INNOVAPHONE_PASSWORD, 1));
    next(&mut r.rx).await;
    fake.set_user_presence("agent1", "away");
    let e = next(&mut r.rx).await;
    assert_eq!(e.status.id, "away");
    assert_eq!(e.activity.unwrap().activity, ContactActivity::Idle);
    fake.set_on_the_phone("agent1", true);
    let e = next(&mut r.rx).await;
    assert_eq!(e.status.id, "on-the-phone");
    let a = e.activity.unwrap();
    assert_eq!(
        (a.activity, a.channel),
        (ContactActivity::OnContact, Some(Channel::Voice))
    );
    fake.set_on_the_phone("agent1", false);
    let e = next(&mut r.rx).await;
    assert_eq!(e.status.id, "away");
    assert_eq!(e.activity.unwrap().activity, ContactActivity::Idle);
    assert_eq!(e.source, Source::ConnectorPush);
    r.cancel.cancel();
    r.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn reconnects_subscribes_everyone_again_and_reconciles() {
    let fake = innovaphone::spawn(2).await.unwrap();
    let mut r = start(connector(&fake, INNOVAPHONE_PASSWORD, 2));
    next(&mut r.rx).await;
    next(&mut r.rx).await;
    fake.drop_connections();
    // Changed while the connection is down: the reconcile after the reconnect reports it.
    fake.set_user_presence("agent2", "dnd");
    let mut after = vec![next(&mut r.rx).await, next(&mut r.rx).await];
    after.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    assert!(
        after.iter().all(|e| e.source == Source::Reconcile),
        "{after:?}"
    );
    let agent2 = after
        .iter()
        .find(|e| e.agent_id == "202")
        .expect("agent 2 (by number)");
    assert_eq!(agent2.status.id, "dnd", "{after:?}");
    assert_eq!(fake.logins_ok(), 2);
    let subs = fake.subscribes();
    let second: Vec<&String> = subs
        .iter()
        .filter(|(c, _)| *c == 2)
        .map(|(_, u)| u)
        .collect();
    assert_eq!(second.len(), 2, "every agent subscribed again: {subs:?}");
    // Events flow on the new connection.
    fake.set_user_presence("agent1", "busy");
    let e = next(&mut r.rx).await;
    assert_eq!(
        (e.agent_id.as_str(), e.status.id.as_str(), e.source),
        ("agent1", "busy", Source::ConnectorPush)
    );
    assert_eq!(r.c.health().await.0, HealthState::Up);
    r.cancel.cancel();
    r.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_shipped_innovaphone_rules_fit_the_connector_catalog() {
    let fake = innovaphone::spawn(1).await.unwrap();
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/innovaphone-rules.example.toml"
    ))
    .unwrap();
    let text = format!("{}\n{rules}", toml(&fake, INNOVAPHONE_PASSWORD, 1));
    let mut cfg =
        Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate()
        .expect("valid against Graph's pairs");
    assert_eq!(cfg.teams_to_cc.len(), 6);
    let c = connector(&fake, INNOVAPHONE_PASSWORD, 1);
    let catalog = c.status_catalog().await.unwrap();
    let settable = |s: &str| {
        catalog
            .iter()
            .any(|c| c.settable && c.id.eq_ignore_ascii_case(s))
    };
    for r in &cfg.teams_to_cc {
        assert!(settable(&r.set), "{} is not a settable status", r.set);
    }
    for r in &cfg.cc_to_teams {
        for s in &r.when.status {
            assert!(settable(s), "{s} is not in the catalog");
        }
    }
}

#[test]
fn check_config_validates_innovaphone_connectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[[connectors]]
name = "pbx"
kind = "innovaphone"
url = "https://pbx.example.com/PBX0/APPS/websocket"
app = ""
ping_interval_secs = 30
idle_timeout_secs = 10
activities = ["away"]
[[connectors.agents]]
sip = "alice"
[[connectors.agents]]
sip = "alice"
[[connectors.agents]]
email = "nobody@example.com"
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
        "connectors[0].url: must be a ws:// or wss:// URL",
        "connectors[0].app: is required",
        "connectors[0].password: is required",
        "connectors[0].agents[1]: duplicate agent",
        "connectors[0].agents[2]: needs sip or num",
        "connectors[0].idle_timeout_secs",
        "connectors[0].activities",
    ] {
        assert!(stderr.contains(key), "{key:?} missing from {stderr}");
    }
}

#[tokio::test]
async fn a_silent_pbx_is_left_for_a_new_connection() {
    let fake = innovaphone::spawn(1).await.unwrap();
    let text = toml(&fake, INNOVAPHONE_PASSWORD, 1).replace(
        "contact = ",
        "ping_interval_secs = 1\nidle_timeout_secs = 2\ncontact = ",
    );
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).unwrap();
    cfg.resolve_and_validate().unwrap();
    let ConnectorConfig::Innovaphone(c) = cfg.connectors[0].clone() else {
        panic!("innovaphone")
    };
    let mut r = start(InnovaphoneConnector::new(*c));
    next(&mut r.rx).await;
    // Pings keep a healthy connection open past the idle timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.logins_ok(), 1, "pongs count as traffic");
    fake.freeze_connections();
    let e = next(&mut r.rx).await;
    assert_eq!(
        e.source,
        Source::Reconcile,
        "reconciled on a new connection"
    );
    assert_eq!(fake.logins_ok(), 2);
    r.cancel.cancel();
    r.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn works_without_a_running_event_source_and_reports_set_presence_errors() {
    let fake = innovaphone::spawn(2).await.unwrap();
    let text = format!(
        "{}[[connectors.agents]]\nsip = \"ghost\"\n",
        toml(&fake, INNOVAPHONE_PASSWORD, 2)
    );
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).unwrap();
    cfg.resolve_and_validate().unwrap();
    let ConnectorConfig::Innovaphone(c) = cfg.connectors[0].clone() else {
        panic!("innovaphone")
    };
    let c = InnovaphoneConnector::new(*c);
    fake.set_user_presence("agent1", "busy");
    // Listing and the bulk read use a connection of their own.
    let agents = c.list_agents().await.unwrap();
    assert_eq!(agents.len(), 3);
    assert_eq!(agents[1].email.as_deref(), Some("agent2@example.com"));
    let now = c
        .current_statuses(&["agent1".into(), "202".into(), "ghost".into()])
        .await
        .unwrap();
    assert_eq!(now.len(), 2, "the PBX does not know ghost: {now:?}");
    assert_eq!(now[0].status.id, "busy");
    eventually(
        "the snapshot connection closed",
        Duration::from_secs(5),
        || async { fake.open_connections() == 0 },
    )
    .await;

    // SetPresence needs the event source's connection; a refusal is Rejected.
    let mut r = start(c);
    next(&mut r.rx).await;
    next(&mut r.rx).await;
    let away = CcStatus {
        id: "away".into(),
        name: "away".into(),
    };
    let out = r.c.set_status("ghost", &away).await;
    assert!(
        matches!(&out, Err(ConnectorError::Rejected { reason }) if reason.contains("object not found")),
        "{out:?}"
    );
    r.cancel.cancel();
    r.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unreachable_pbx_is_named_with_the_cause_and_what_to_check() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "[[connectors]]\nname = \"pbx\"\nkind = \"innovaphone\"\nurl = \"ws://127.0.0.1:{port}/PBX0/APPS/websocket\"\napp = \"{INNOVAPHONE_APP}\"\npassword = \"pw\"\n[[connectors.agents]]\nsip = \"agent1\"\n"
    );
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).unwrap();
    cfg.resolve_and_validate().unwrap();
    let ConnectorConfig::Innovaphone(c) = cfg.connectors[0].clone() else {
        panic!("innovaphone")
    };
    let r = start(InnovaphoneConnector::new(*c));
    eventually(
        "the connect failure in the connector's health",
        Duration::from_secs(10),
        || {
            let c = r.c.clone();
            async move {
                let (state, d) = c.health().await;
                state != HealthState::Up && d.contains("cannot reach")
            }
        },
    )
    .await;
    let (_, detail) = r.c.health().await;
    assert!(
        detail.contains(&format!("127.0.0.1:{port}")),
        "names the PBX: {detail}"
    );
    assert!(
        detail.contains("nothing listens there"),
        "says what to check: {detail}"
    );
    r.cancel.cancel();
}
