//! `demo --cc innovaphone` and `demo --cc ccai`: the whole daemon against the simulated Teams
//! tenant and the fake innovaphone PBX or CCAI Platform tenant, as the demo wires them.

use std::time::{Duration, Instant};

use presence_bridge::app::Application;
use presence_bridge::cli::demo::{
    DemoCc, DemoCenter, demo_config_for, demo_user_id, start_simulators_for,
};

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the daemon as the demo does; returns once the 3 people are matched to agents.
async fn start(
    kind: DemoCc,
) -> (
    presence_bridge::sim::graph::SimGraphHandle,
    DemoCenter,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tempfile::TempDir,
) {
    let (graph, cc) = start_simulators_for(kind, 3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = demo_config_for(&graph, &cc, 3, Some("127.0.0.1:0".parse().unwrap())).unwrap();
    cfg.store.url = format!("sqlite://{}/demo.db", dir.path().display()).into();
    cfg.sync.hold_down_secs = 0;
    let app = Application::build(cfg).await.unwrap();
    let store = app.store().clone();
    let stop = app.cancel_token();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let users = store.list_users().await.unwrap();
        if users.len() == 3 && users.iter().all(|u| u.cc_agent_id.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "users not matched: {users:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (graph, cc, stop, server, dir)
}

fn teams_in_call(graph: &presence_bridge::sim::graph::SimGraphHandle, user: &str) -> bool {
    graph.state.writes().iter().any(|w| {
        w.user_id == user
            && w.call.contains("setPresence")
            && w.body["availability"] == "Busy"
            && w.body["activity"] == "InACall"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_against_the_innovaphone_pbx() {
    let (graph, cc, stop, server, _dir) = start(DemoCc::Innovaphone).await;
    let DemoCenter::Innovaphone(pbx) = &cc else {
        panic!("innovaphone")
    };
    // PBX -> Teams: on the phone on the PBX makes the person Busy / In a call in Teams.
    let u1 = demo_user_id(1);
    cc.contact_begins(1).await;
    until("setPresence Busy/InACall for user 1", || {
        teams_in_call(&graph, &u1)
    })
    .await;

    // Teams -> PBX: a Teams call puts the available PBX user on the phone (SetPresence),
    // and back when it ends.
    let u2 = demo_user_id(2);
    graph.state.set_user_status(&u2, Some(("Busy", "InACall")));
    until("agent2 on-the-phone on the PBX", || {
        pbx.newest("agent2")
            .is_some_and(|i| i.activity == "on-the-phone")
    })
    .await;
    graph
        .state
        .set_user_status(&u2, Some(("Available", "Available")));
    until("agent2 available again", || {
        pbx.newest("agent2").is_some_and(|i| i.activity.is_empty())
    })
    .await;
    assert!(
        pbx.set_presence_messages()
            .iter()
            .all(|m| m["sip"] != "agent3"),
        "nothing written for the person who did nothing"
    );
    stop.cancel();
    server.await.unwrap().unwrap();
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_against_ccai_platform() {
    let (graph, cc, stop, server, _dir) = start(DemoCc::Ccai).await;
    let DemoCenter::Ccai(ccai) = &cc else {
        panic!("ccai")
    };
    let u1 = demo_user_id(1);
    cc.contact_begins(1).await;
    until("setPresence Busy/InACall for user 1", || {
        teams_in_call(&graph, &u1)
    })
    .await;

    let u2 = demo_user_id(2);
    graph.state.set_user_status(&u2, Some(("Busy", "InACall")));
    until("agent 2 Busy (Teams)", || {
        ccai.status_of(2) == Some("Busy (Teams)")
    })
    .await;
    graph
        .state
        .set_user_status(&u2, Some(("Available", "Available")));
    until("agent 2 Available again", || {
        ccai.status_of(2) == Some("Available")
    })
    .await;
    assert!(
        ccai.writes().iter().all(|w| !w["agent_ids"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(3))),
        "nothing written for the person who did nothing"
    );
    stop.cancel();
    server.await.unwrap().unwrap();
    graph.shutdown().await;
}
