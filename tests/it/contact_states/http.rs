//! The generic HTTP connector: activity and channel read by JSON pointer from the signed
//! status webhook, and contact events from the signed contact-event webhook.

use std::time::Instant;

use serde_json::json;

use super::*;

const SECRET: &str = "http-contact-secret";

pub const CONNECTOR: &str = r#"
[[connectors]]
name = "cc"
kind = "http"
statuses = [
  { id = "available", name = "Available", kind = "routable" },
  { id = "offline", name = "Offline", kind = "offline" },
]
agents = [{ id = "a1", email = "user1@example.com" }]

[connectors.inbound]
agent_id_pointer = "/agent"
status_pointer = "/status"
timestamp_pointer = "/at"
event_id_pointer = "/id"

[connectors.inbound.verify]
type = "shared_secret"
header = "X-Secret"
secret = "http-contact-secret"

[connectors.inbound.activity]
pointer = "/state"
channel_pointer = "/media"
values = { ringing = "offered", talking = "on_contact", wrapup = "after_contact_work", ready = "idle" }
channels = { phone = "voice" }

[connectors.contact_events]
contact_id_pointer = "/call/id"
kind_pointer = "/type"
kinds = { "call.ringing" = "offered", "call.answered" = "connected", "call.hangup" = "ended", "call.recording" = "recording_available" }
channel_pointer = "/call/media"
channels = { phone = "voice" }
agent_id_pointer = "/call/agent"
queue_pointer = "/call/queue"
customer_endpoint_pointer = "/call/from"
recording_url_pointer = "/call/recording"
timestamp_pointer = "/at"
event_id_pointer = "/id"

[connectors.contact_events.verify]
type = "shared_secret"
header = "X-Secret"
secret = "http-contact-secret"
"#;

pub async fn post(d: &Daemon, path: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/connectors/cc/{path}", d.address))
        .header("X-Secret", SECRET)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn state(d: &Daemon, n: u32, state: &str) {
    let body = json!({"id": format!("s{n}"), "agent": "a1", "status": "available",
                      "state": state, "media": "phone", "at": chrono::Utc::now().to_rfc3339()});
    assert_eq!(post(d, "events", body).await, 202);
}

pub async fn step(d: &Daemon, kind: &str) -> u16 {
    let body = json!({"id": format!("ev-{kind}"), "type": kind, "at": chrono::Utc::now().to_rfc3339(),
                      "call": {"id": "call-7", "media": "phone", "agent": "a1", "queue": "sales",
                               "from": "+15550199", "recording": "https://rec.example/call-7"}});
    post(d, "contact-events", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_activity_maps_after_the_hold_down_and_contact_events_survive_a_restart() {
    let graph = tenant(1).await;
    let dir = tempfile::tempdir().unwrap();
    let user = teams_id(1);
    let d = Daemon::start(config(&graph, &dir, CONNECTOR)).await;
    d.matched(1).await;
    state(&d, 1, "ready").await;

    // A contact rings and is answered: Busy / In a call after the hold-down.
    assert_eq!(step(&d, "call.ringing").await, 202);
    let started = Instant::now();
    state(&d, 2, "ringing").await;
    assert_eq!(step(&d, "call.answered").await, 202);
    state(&d, 3, "talking").await;
    let (what, pair, seen) = teams_write(&graph, &user, 0).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InACall")
    );
    assert!(seen.duration_since(started) >= HOLD_DOWN);

    // Restart mid-contact, on the same SQLite file; the platform redelivers "answered".
    d.stop().await;
    let d = Daemon::start(config(&graph, &dir, CONNECTOR)).await;
    assert_eq!(step(&d, "call.answered").await, 202);
    assert_eq!(step(&d, "call.hangup").await, 202);
    state(&d, 4, "wrapup").await;
    let (what, pair, _) = teams_write(&graph, &user, 1).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InAConferenceCall")
    );
    assert_eq!(step(&d, "call.recording").await, 202);
    assert_eq!(
        step(&d, "call.unrelated").await,
        202,
        "unmapped steps are dropped"
    );
    state(&d, 5, "ready").await;
    let (what, _, _) = teams_write(&graph, &user, 2).await;
    assert_eq!(what, "clearPresence", "{:?}", teams_writes(&graph, &user));

    assert_eq!(
        d.contacts("a1").await,
        [(
            "call-7".to_owned(),
            vec![
                "offered".to_owned(),
                "connected".to_owned(),
                "ended".to_owned(),
                "recording_available".to_owned()
            ]
        )]
    );
    // Unsigned contact events change nothing.
    let unsigned = reqwest::Client::new()
        .post(format!("{}/connectors/cc/contact-events", d.address))
        .json(&json!({"id": "x", "type": "call.ringing", "call": {"id": "call-8"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(d.contacts("a1").await.len(), 1);
    d.stop().await;
    graph.shutdown().await;
}
