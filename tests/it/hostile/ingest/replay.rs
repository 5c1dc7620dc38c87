//! The replay window must be covered by the signature. With a body-only HMAC the timestamp
//! header is not signed: a captured request refused as too old would be accepted once its
//! header is rewritten, so `check-config` refuses that combination and says why; with a
//! signed `timestamp.body` the rewritten request is refused.

use std::process::Command;

use chrono::Utc;
use presence_bridge::sim::contact_center::{self, SimOptions};
use serde_json::json;

use super::event_time::{app_with_sim_connector, post_signed_as, user};

/// `check-config` on a configuration holding `verify`, as the real binary runs it.
fn check_config(verify: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pb.toml");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://{}/pb.db"

[[connectors]]
name = "cc"
kind = "http"
statuses = [{{ id = "1", name = "Available", kind = "routable" }}]
[connectors.inbound]
agent_id_pointer = "/agent"
status_pointer = "/status"
[connectors.inbound.verify]
type = "hmac"
header = "X-Signature"
secret = "k"
{verify}
"#,
        dir.path().display()
    );
    std::fs::write(&path, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env_remove("PRESENCE_BRIDGE_CONFIG")
        .output()
        .expect("binary runs")
}

#[test]
fn check_config_refuses_a_replay_window_on_an_unsigned_timestamp() {
    for verify in [
        // The window by default, the timestamp header unsigned.
        "timestamp_header = \"X-Timestamp\"\n",
        "signed = \"body\"\ntimestamp_header = \"X-Timestamp\"\nreplay_window_secs = 300\n",
    ] {
        let out = check_config(verify);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(78),
            "{verify:?} must be refused; stderr: {stderr}"
        );
        assert!(
            stderr.contains("timestamp_header") && stderr.contains("rewritten"),
            "the refusal explains the bypass: {stderr}"
        );
    }
    // Signing the timestamp with the body is the safe form, and is accepted.
    let out = check_config("signed = \"timestamp_body\"\ntimestamp_header = \"X-Timestamp\"\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_captured_request_stays_refused_when_its_timestamp_is_rewritten() {
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    let app = app_with_sim_connector(&sim.connector_toml("sim")).await;
    app.store
        .upsert_users(&[user("u1", "sim", "agent-1")])
        .await
        .unwrap();
    let now = Utc::now().timestamp();
    let body = json!({
        "event_id": "captured",
        "agent_id": "agent-1",
        "status_id": "break",
        "changed_at": Utc::now().to_rfc3339(),
    })
    .to_string();
    let old = now - 3600;
    let r = post_signed_as(&app, &body, old, old).await;
    assert_eq!(r.status().as_u16(), 401, "outside the replay window");
    let r = post_signed_as(&app, &body, old, now).await;
    assert_eq!(
        r.status().as_u16(),
        401,
        "a rewritten timestamp breaks the signature"
    );
    assert_eq!(app.store.inbox_len().await.unwrap(), 0);
    // The simulator (and with it the demo) still gets its signed events through.
    sim.set_webhook_url(&format!("{}/connectors/sim/events", app.address));
    assert_eq!(sim.set_agent_status("agent-1", "break").await, Some(202));
    app.shutdown().await;
}
