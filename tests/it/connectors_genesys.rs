//! The Genesys Cloud connector against the fake Genesys (REST + Notifications WebSocket) over
//! loopback.

use std::time::{Duration, Instant};

use presence_bridge::app::config::Config;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::genesys::GenesysConnector;
use presence_bridge::connectors::{
    AgentEvent, ConnectorError, ConnectorEvent, ContactCenter, StatusKind,
};
use presence_bridge::model::contact_center::ContactActivity;
use presence_bridge::model::health::HealthState;
use presence_bridge::model::{CcStatus, Source};
use presence_bridge::sim::genesys::{self, DEFINITIONS, FakeGenesys};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn connector(fake: &FakeGenesys, extra: &str) -> GenesysConnector {
    let text = format!(
        r#"
[[connectors]]
name = "gc"
kind = "genesys"
region = "mypurecloud.ie"
api_base_url = "{}"
login_base_url = "{}"
client_id = "{}"
client_secret = "{}"
page_size = 2
{extra}
[connectors.limits]
requests_per_sec = 1000.0
"#,
        fake.api_url,
        fake.login_url,
        genesys::GENESYS_CLIENT_ID,
        genesys::GENESYS_CLIENT_SECRET
    );
    let mut cfg =
        Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    let ConnectorConfig::Genesys(g) = cfg.connectors[0].clone() else {
        panic!("genesys")
    };
    GenesysConnector::new(g, reqwest::Client::new()).expect("builds")
}

fn def(i: usize) -> CcStatus {
    CcStatus {
        id: DEFINITIONS[i].0.into(),
        name: DEFINITIONS[i].1.into(),
    }
}

async fn until<F: FnMut() -> bool>(what: &str, mut f: F) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_event(rx: &mut mpsc::Receiver<ConnectorEvent>) -> AgentEvent {
    let e = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("event in time")
        .expect("open");
    e.as_agent().expect("an agent event").clone()
}

/// Starts `run_events`; returns the receiver after the initial reconcile of `n` agents.
async fn start_events(
    c: std::sync::Arc<GenesysConnector>,
    n: usize,
) -> (
    mpsc::Receiver<ConnectorEvent>,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), ConnectorError>>,
) {
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let c2 = c.clone();
    let tok = cancel.clone();
    let task = tokio::spawn(async move { c2.run_events(tx, tok).await });
    for _ in 0..n {
        assert_eq!(next_event(&mut rx).await.source, Source::Reconcile);
    }
    (rx, cancel, task)
}

#[tokio::test]
async fn lists_paged_users_catalog_bulk_reads_and_sets_presence() {
    let fake = genesys::spawn(120, None).await.unwrap();
    let c = connector(&fake, "");
    let agents = c.list_agents().await.unwrap();
    assert_eq!(agents.len(), 120);
    assert_eq!(agents[0].email.as_deref(), Some("user1@example.com"));
    assert_eq!(agents[0].display_name.as_deref(), Some("User 1"));
    let catalog = c.status_catalog().await.unwrap();
    assert_eq!(catalog.len(), DEFINITIONS.len());
    let on_queue = catalog.iter().find(|s| s.name == "On Queue").unwrap();
    assert_eq!(on_queue.kind, StatusKind::Routable);
    assert_eq!(
        catalog.iter().find(|s| s.name == "Offline").unwrap().kind,
        StatusKind::Offline
    );

    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    let statuses = c.current_statuses(&ids).await.unwrap();
    assert_eq!(statuses.len(), 120);
    assert_eq!(statuses[0].status, def(0));
    assert_eq!(fake.bulk_calls(), vec![50, 50, 20]);

    c.set_status("user-7", &def(2)).await.unwrap();
    let patches = fake.patches();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].0, "user-7");
    assert_eq!(
        patches[0].1,
        serde_json::json!({"presenceDefinition": {"id": DEFINITIONS[2].0}})
    );
    let now = c.current_statuses(&["user-7".into()]).await.unwrap();
    assert_eq!(now[0].status, def(2));

    // Bulk reads carry the routing status as the agent's activity.
    let activity =
        |s: &[presence_bridge::connectors::AgentStatus]| s[0].activity.map(|a| a.activity);
    assert_eq!(activity(&now), Some(ContactActivity::Idle));
    fake.set_routing_status("user-7", "INTERACTING");
    let now = c.current_statuses(&["user-7".into()]).await.unwrap();
    assert_eq!(activity(&now), Some(ContactActivity::OnContact));
}

#[tokio::test]
async fn presence_events_arrive_normalised_over_several_channels() {
    let fake = genesys::spawn(5, Some(Duration::from_millis(200)))
        .await
        .unwrap();
    // Three topics per agent (presence, routing status, conversations): two agents fit in
    // a channel of 7 topics.
    let c = std::sync::Arc::new(connector(&fake, "topics_per_channel = 7"));
    let (mut rx, cancel, task) = start_events(c.clone(), 5).await;
    let mut subs = fake.subscriptions();
    subs.sort_unstable();
    assert_eq!(
        subs,
        vec![3, 6, 6],
        "at most topics_per_channel per channel, an agent's topics never split"
    );
    until("three sockets", || fake.connections() == 3).await;
    fake.set_presence("user-5", DEFINITIONS[3].0);
    let e = next_event(&mut rx).await;
    assert_eq!(e.agent_id, "user-5");
    assert_eq!(e.status, def(3));
    assert_eq!(e.source, Source::ConnectorPush);
    assert_eq!(c.health().await.0, HealthState::Up);
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn socket_closing_rolls_over_to_a_new_channel_and_reconciles() {
    let fake = genesys::spawn(3, Some(Duration::from_millis(200)))
        .await
        .unwrap();
    let c = std::sync::Arc::new(connector(&fake, ""));
    let (mut rx, cancel, task) = start_events(c.clone(), 3).await;
    assert_eq!(fake.channels_created(), 1);
    until("socket", || fake.connections() == 1).await;
    fake.send_socket_closing();
    for _ in 0..3 {
        assert_eq!(
            next_event(&mut rx).await.source,
            Source::Reconcile,
            "bulk read after reconnect"
        );
    }
    assert_eq!(fake.channels_created(), 2);
    until("second socket", || fake.connections() == 2).await;
    fake.set_presence("user-1", DEFINITIONS[2].0);
    assert_eq!(
        next_event(&mut rx).await.status,
        def(2),
        "events flow on the new channel"
    );
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn silent_socket_and_channel_age_lead_to_new_channels() {
    let fake = genesys::spawn(1, None).await.unwrap();
    let c = std::sync::Arc::new(connector(&fake, "heartbeat_timeout_secs = 1"));
    let (mut rx, cancel, task) = start_events(c.clone(), 1).await;
    assert_eq!(
        next_event(&mut rx).await.source,
        Source::Reconcile,
        "reconnected after silence"
    );
    assert!(fake.channels_created() >= 2);
    cancel.cancel();
    task.await.unwrap().unwrap();

    let fake = genesys::spawn(1, Some(Duration::from_millis(100)))
        .await
        .unwrap();
    let c = std::sync::Arc::new(connector(&fake, "channel_max_age_secs = 1"));
    let (mut rx, cancel, task) = start_events(c.clone(), 1).await;
    assert_eq!(
        next_event(&mut rx).await.source,
        Source::Reconcile,
        "rolled over by age"
    );
    assert!(fake.channels_created() >= 2);
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn throttling_token_expiry_and_auth_failure() {
    let fake = genesys::spawn(3, None).await.unwrap();
    let c = connector(&fake, "");
    fake.inject_failure(429, Some(1));
    let start = Instant::now();
    assert_eq!(c.list_agents().await.unwrap().len(), 3);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(fake.tokens_issued(), 1);
    fake.revoke_tokens();
    assert_eq!(c.list_agents().await.unwrap().len(), 3);
    assert_eq!(fake.tokens_issued(), 2, "token fetched again after a 401");
    fake.revoke_tokens();
    fake.reject_credentials(true);
    let err = c.list_agents().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized(_)), "{err:?}");
    assert_eq!(c.health().await.0, HealthState::Down);
}

#[tokio::test]
async fn a_changed_agent_list_is_subscribed_again() {
    let fake = genesys::spawn(2, Some(Duration::from_millis(200)))
        .await
        .unwrap();
    let c = std::sync::Arc::new(connector(&fake, ""));
    c.list_agents().await.unwrap();
    let (mut rx, cancel, task) = start_events(c.clone(), 2).await;
    fake.add_user("user-new");
    assert_eq!(c.list_agents().await.unwrap().len(), 3);
    for _ in 0..3 {
        assert_eq!(next_event(&mut rx).await.source, Source::Reconcile);
    }
    assert_eq!(fake.channels_created(), 2);
    until("new socket", || fake.connections() == 2).await;
    fake.set_presence("user-new", DEFINITIONS[2].0);
    let e = next_event(&mut rx).await;
    assert_eq!((e.agent_id.as_str(), e.status), ("user-new", def(2)));
    cancel.cancel();
    task.await.unwrap().unwrap();
}
