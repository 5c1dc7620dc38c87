//! The generic HTTP connector against the simulated contact center over loopback: paging,
//! request shapes, throttling, tokens, signed inbound events and the rendered request.

use std::time::Instant;

use chrono::Utc;
use presence_bridge::app::config::Config;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::http::HttpConnector;
use presence_bridge::connectors::http::config::HmacAlgorithm;
use presence_bridge::connectors::http::inbound::hmac_sign;
use presence_bridge::connectors::{ConnectorError, ContactCenter, InboundError, StatusKind};
use presence_bridge::model::health::HealthState;
use presence_bridge::model::{CcStatus, Source};
use presence_bridge::sim::contact_center::{self, SimContactCenter, SimOptions};

fn config_from(toml_text: &str) -> Config {
    let mut cfg =
        Config::from_toml_str_with_env(toml_text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    cfg
}

async fn setup(opts: SimOptions) -> (SimContactCenter, HttpConnector) {
    let sim = contact_center::spawn(opts).await.expect("sim starts");
    let cfg = config_from(&sim.connector_toml("sim"));
    let ConnectorConfig::Http(h) = cfg.connectors[0].clone() else {
        panic!("http kind")
    };
    let c = HttpConnector::new(*h, reqwest::Client::new(), None).expect("builds");
    (sim, c)
}

fn status(id: &str) -> CcStatus {
    CcStatus {
        id: id.into(),
        name: id.into(),
    }
}

#[tokio::test]
async fn lists_paged_agents_and_the_catalog() {
    let (_sim, c) = setup(SimOptions::default()).await;
    let agents = c.list_agents().await.unwrap();
    assert_eq!(agents.len(), 3, "three agents over two pages");
    assert_eq!(agents[2].id, "agent-3");
    assert_eq!(agents[2].email.as_deref(), Some("agent3@example.com"));
    assert_eq!(agents[2].display_name.as_deref(), Some("Agent 3"));
    let catalog = c.status_catalog().await.unwrap();
    let busy = catalog.iter().find(|s| s.id == "busy_teams").unwrap();
    assert_eq!(busy.name, "Busy (Teams)");
    assert_eq!(busy.kind, StatusKind::NotRoutable);
    let oc = catalog.iter().find(|s| s.id == "on_contact").unwrap();
    assert_eq!(oc.kind, StatusKind::OnContact);
    assert!(!oc.settable);
}

#[tokio::test]
async fn bulk_read_and_set_status_with_request_shape() {
    let (sim, c) = setup(SimOptions::default()).await;
    c.status_catalog().await.unwrap();
    c.set_status("agent-2", &status("busy_teams"))
        .await
        .unwrap();
    let writes = sim.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].agent_id, "agent-2");
    assert_eq!(
        writes[0].body,
        serde_json::json!({"status_id": "busy_teams", "teams_user_id": ""})
    );
    assert_eq!(writes[0].content_type.as_deref(), Some("application/json"));
    let now = c
        .current_statuses(&["agent-2".into(), "agent-3".into()])
        .await
        .unwrap();
    assert_eq!(now.len(), 2);
    let a2 = now.iter().find(|s| s.agent_id == "agent-2").unwrap();
    assert_eq!(
        a2.status,
        CcStatus {
            id: "busy_teams".into(),
            name: "Busy (Teams)".into()
        }
    );
    assert!(a2.since.is_some());
    let err = c
        .set_status("agent-2", &status("no-such-status"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn throttling_waits_for_retry_after() {
    let (sim, c) = setup(SimOptions::default()).await;
    c.list_agents().await.unwrap();
    sim.inject_failures(429, Some(1), 1);
    let start = Instant::now();
    c.set_status("agent-1", &status("break")).await.unwrap();
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(sim.writes().len(), 1);
    sim.inject_failures(503, None, 2);
    c.set_status("agent-1", &status("available")).await.unwrap();
    assert_eq!(sim.writes().len(), 2, "5xx retried until success");
}

#[tokio::test]
async fn expired_token_is_fetched_again_and_auth_failure_is_reported() {
    let (sim, c) = setup(SimOptions::default()).await;
    c.list_agents().await.unwrap();
    c.list_agents().await.unwrap();
    assert_eq!(sim.token_requests(), 1, "token cached");
    sim.revoke_tokens();
    c.list_agents().await.unwrap();
    assert_eq!(sim.token_requests(), 2, "refetched after a 401");
    assert_eq!(c.health().await.0, HealthState::Up);
    sim.revoke_tokens();
    sim.reject_credentials(true);
    let err = c.list_agents().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized(_)), "{err:?}");
    let (state, detail) = c.health().await;
    assert_eq!(state, HealthState::Down);
    assert!(detail.contains("unauthorized"), "{detail}");
}

#[tokio::test]
async fn short_lived_tokens_are_renewed_before_expiry() {
    // lifetime 30 s < default skew 60 s: every call needs a fresh token
    let (sim, c) = setup(SimOptions {
        token_lifetime_secs: 30,
        ..SimOptions::default()
    })
    .await;
    c.status_catalog().await.unwrap();
    c.status_catalog().await.unwrap();
    assert_eq!(sim.token_requests(), 2);
}

fn signed(body: &str, ts: i64, key: &str) -> reqwest::header::HeaderMap {
    let sig = hmac_sign(
        HmacAlgorithm::Sha256,
        key.as_bytes(),
        &[ts.to_string().as_bytes(), b".", body.as_bytes()],
    );
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-sim-timestamp", ts.to_string().parse().unwrap());
    h.insert(
        "x-sim-signature",
        format!("sha256={}", hex::encode(sig)).parse().unwrap(),
    );
    h
}

#[tokio::test]
async fn inbound_events_are_verified_and_normalised() {
    let (_sim, c) = setup(SimOptions::default()).await;
    c.status_catalog().await.unwrap();
    let hook = c.webhook().expect("inbound configured");
    // Received a minute after the event (events far older are refused).
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:05:05Z")
        .unwrap()
        .with_timezone(&Utc);
    let body = r#"{"event_id":"e1","agent_id":"agent-1","status_id":"on_contact","changed_at":"2026-01-02T03:04:05Z"}"#;
    let events = hook
        .parse(
            &signed(body, now.timestamp(), contact_center::SIM_WEBHOOK_SECRET),
            body.as_bytes(),
            now,
        )
        .unwrap();
    assert_eq!(events.len(), 1);
    let events: Vec<_> = events.iter().filter_map(|e| e.as_agent()).collect();
    assert_eq!(events[0].agent_id, "agent-1");
    assert_eq!(
        events[0].status,
        CcStatus {
            id: "on_contact".into(),
            name: "On Contact".into()
        }
    );
    assert_eq!(events[0].event_id.as_deref(), Some("e1"));
    assert_eq!(events[0].at.to_rfc3339(), "2026-01-02T03:04:05+00:00");
    assert_eq!(events[0].source, Source::ConnectorPush);

    let unsigned = hook.parse(&reqwest::header::HeaderMap::new(), body.as_bytes(), now);
    assert!(matches!(unsigned, Err(InboundError::Unauthorized(_))));
    let wrong_key = hook.parse(
        &signed(body, now.timestamp(), "other"),
        body.as_bytes(),
        now,
    );
    assert!(matches!(wrong_key, Err(InboundError::Unauthorized(_))));
    let old = now.timestamp() - 3600;
    let replayed = hook.parse(
        &signed(body, old, contact_center::SIM_WEBHOOK_SECRET),
        body.as_bytes(),
        now,
    );
    assert!(matches!(replayed, Err(InboundError::Unauthorized(m)) if m.contains("replay")));
    let tampered = body.replace("on_contact", "available");
    let t = hook.parse(
        &signed(body, now.timestamp(), contact_center::SIM_WEBHOOK_SECRET),
        tampered.as_bytes(),
        now,
    );
    assert!(matches!(t, Err(InboundError::Unauthorized(_))));
    let bad = r#"{"agent_id":"agent-1"}"#;
    let m = hook.parse(
        &signed(bad, now.timestamp(), contact_center::SIM_WEBHOOK_SECRET),
        bad.as_bytes(),
        now,
    );
    assert!(matches!(m, Err(InboundError::Malformed(msg)) if msg.contains("/status_id")));
}

#[tokio::test]
async fn render_shows_the_request_with_secrets_redacted() {
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    let cfg = config_from(&sim.connector_toml("sim"));
    let text = presence_bridge::connectors::render_set_status(
        &cfg.connectors,
        "sim",
        "agent 7",
        "Busy (Teams)",
    )
    .await
    .unwrap();
    // the static catalog is empty here (fetched catalog), so the status is used as given
    assert!(
        text.starts_with(&format!(
            "PUT {}api/agents/agent%207/status\n",
            sim.base_url
        )),
        "{text}"
    );
    assert!(text.contains("Authorization: Bearer [redacted]"), "{text}");
    assert!(!text.contains(contact_center::SIM_CLIENT_SECRET), "{text}");
    assert!(text.contains(r#""status_id": "Busy (Teams)""#), "{text}");
    assert_eq!(sim.token_requests(), 0, "rendering sends nothing");
    let e = presence_bridge::connectors::render_set_status(&cfg.connectors, "nope", "a", "b")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no connector named"), "{e}");
}
