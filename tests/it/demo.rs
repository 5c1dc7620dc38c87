//! The whole daemon against both simulators over HTTP, as the demo runs it: directory sync,
//! agent listing, matching, the Graph poller, signed contact-center webhooks, the engine and
//! the writers. Real time, hold-down 0; conditions are polled with a deadline.

use std::time::{Duration, Instant};

use presence_bridge::app::Application;
use presence_bridge::cli::demo::{demo_config, demo_user_id, start_simulators};

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_through_the_simulators() {
    let (graph, cc) = start_simulators(3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = demo_config(&graph, &cc, Some("127.0.0.1:0".parse().unwrap())).unwrap();
    cfg.store.url = format!("sqlite://{}/demo.db", dir.path().display()).into();
    cfg.sync.hold_down_secs = 0;
    let app = Application::build(cfg).await.unwrap();
    cc.set_webhook_url(&format!(
        "http://{}/connectors/{}/events",
        app.local_addr(),
        presence_bridge::cli::demo::DEMO_CONNECTOR
    ));
    let store = app.store().clone();
    let stop = app.cancel_token();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));

    // Directory sync, agent listing and matching.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let users = store.list_users().await.unwrap();
        if users.len() == 3 && users.iter().all(|u| u.cc_agent_id.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "users not matched: {users:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Contact center -> Teams: a contact makes the person Busy / In a call in Teams.
    let u1 = demo_user_id(1);
    assert_eq!(
        cc.set_agent_status("agent-1", "on_contact").await,
        Some(202)
    );
    until("setPresence Busy/InACall for user 1", || {
        graph.state.writes().iter().any(|w| {
            w.user_id == u1
                && w.call.contains("setPresence")
                && w.body["availability"] == "Busy"
                && w.body["activity"] == "InACall"
        })
    })
    .await;
    // Back to available: the bridge removes its Teams session.
    cc.set_agent_status("agent-1", "available").await;
    until("clearPresence for user 1", || {
        graph
            .state
            .writes()
            .iter()
            .any(|w| w.user_id == u1 && w.call.contains("clearPresence"))
    })
    .await;

    // Teams -> contact center: a Teams call makes the available agent "Busy (Teams)", and
    // the previous status comes back when it ends.
    let u2 = demo_user_id(2);
    graph.state.set_user_status(&u2, Some(("Busy", "InACall")));
    until("agent-2 Busy (Teams)", || {
        cc.agent("agent-2")
            .is_some_and(|a| a.status_id == "busy_teams")
    })
    .await;
    graph
        .state
        .set_user_status(&u2, Some(("Available", "Available")));
    until("agent-2 restored to Available", || {
        cc.agent("agent-2")
            .is_some_and(|a| a.status_id == "available")
    })
    .await;
    // Nothing was written for the person who did nothing.
    assert!(cc.writes().iter().all(|w| w.agent_id != "agent-3"));

    stop.cancel();
    server.await.unwrap().unwrap();
    graph.shutdown().await;
}
