//! Genesys Cloud: routing status and conversation notifications over the Notifications
//! WebSocket drive Teams, and the conversation's steps are stored once, in order, across a
//! restart of the daemon.

use std::time::Instant;

use presence_bridge::sim::genesys::{self, FakeGenesys, VoiceCall};

use super::*;

pub fn connector(fake: &FakeGenesys) -> String {
    format!(
        r#"
[[connectors]]
name = "gc"
kind = "genesys"
region = "mypurecloud.ie"
api_base_url = "{}"
login_base_url = "{}"
client_id = "{}"
client_secret = "{}"
heartbeat_timeout_secs = 30
[connectors.limits]
requests_per_sec = 1000.0
"#,
        fake.api_url,
        fake.login_url,
        genesys::GENESYS_CLIENT_ID,
        genesys::GENESYS_CLIENT_SECRET
    )
}

pub async fn subscribed(fake: &FakeGenesys, connections: u64) {
    until("the notification socket", || async {
        fake.connections() >= connections && fake.subscriptions().contains(&3)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_shows_in_teams_after_the_hold_down_and_wrap_up_has_its_own_rule() {
    let graph = tenant(1).await;
    let fake = genesys::spawn(1, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(config(&graph, &dir, &connector(&fake))).await;
    d.matched(1).await;
    subscribed(&fake, 1).await;
    let user = teams_id(1);

    // The call rings, then connects: the routing status goes INTERACTING.
    let mut call = VoiceCall::new("conv-1");
    call.recording = true;
    let started = Instant::now();
    fake.call("user-1", &call);
    fake.set_routing_status("user-1", "INTERACTING");
    fake.call("user-1", &call.clone().state("connected"));
    let (what, pair, seen) = teams_write(&graph, &user, 0).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InACall")
    );
    assert!(
        seen.duration_since(started) >= HOLD_DOWN,
        "written before the hold-down ended"
    );

    // The customer hangs up; wrap-up is required: after-contact work, its own rule.
    call.wrapup_required = true;
    fake.call("user-1", &call.clone().state("disconnected"));
    let (what, pair, _) = teams_write(&graph, &user, 1).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InAConferenceCall")
    );

    // Wrap-up done, routing idle: the bridge's session is removed.
    call.wrapped_up = true;
    fake.call("user-1", &call.clone().state("disconnected"));
    fake.set_routing_status("user-1", "IDLE");
    let (what, _, _) = teams_write(&graph, &user, 2).await;
    assert_eq!(what, "clearPresence", "{:?}", teams_writes(&graph, &user));

    // The contact's steps, once each, in order (the disconnected frame came twice).
    assert_eq!(
        d.contacts("user-1").await,
        [(
            "conv-1".to_owned(),
            vec![
                "offered".to_owned(),
                "connected".to_owned(),
                "ended".to_owned(),
                "recording_available".to_owned()
            ]
        )]
    );
    let metrics = d.metrics().await;
    for kind in ["offered", "connected", "ended", "recording_available"] {
        let line = format!("contact_events_total{{connector=\"gc\",kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line} not in metrics");
    }
    d.stop().await;
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_survives_a_restart_mid_call() {
    let graph = tenant(1).await;
    let fake = genesys::spawn(1, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let user = teams_id(1);
    let d = Daemon::start(config(&graph, &dir, &connector(&fake))).await;
    d.matched(1).await;
    subscribed(&fake, 1).await;
    let mut call = VoiceCall::new("conv-9");
    call.recording = true;
    fake.call("user-1", &call);
    fake.call("user-1", &call.clone().state("connected"));
    let (what, _, _) = teams_write(&graph, &user, 0).await;
    assert_eq!(what, "setPresence");
    d.stop().await;

    // Same SQLite file; the platform repeats the connected state after the reconnect.
    let d = Daemon::start(config(&graph, &dir, &connector(&fake))).await;
    subscribed(&fake, 2).await;
    fake.call("user-1", &call.clone().state("connected"));
    fake.call("user-1", &call.clone().state("disconnected"));
    fake.set_routing_status("user-1", "IDLE");
    until("the contact's end stored", || async {
        d.contacts("user-1")
            .await
            .first()
            .is_some_and(|(_, k)| k.len() == 4)
    })
    .await;
    assert_eq!(
        d.contacts("user-1").await[0].1,
        ["offered", "connected", "ended", "recording_available"]
    );
    // And the Teams side follows: the held session is removed after the contact.
    let (what, _, _) = teams_write(&graph, &user, 1).await;
    assert_eq!(what, "clearPresence", "{:?}", teams_writes(&graph, &user));
    d.stop().await;
    graph.shutdown().await;
}
