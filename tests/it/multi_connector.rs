//! Two connectors of different kinds in one daemon (the simulated generic HTTP contact center
//! and the fake Genesys Cloud), each with its own status catalog and rules naming it, against
//! the simulated Teams tenant, all over loopback.

use std::time::Duration;

use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::model::health::HealthState;
use presence_bridge::sim::contact_center::{self, SimContactCenter, SimOptions};
use presence_bridge::sim::genesys::{self, DEFINITIONS, FakeGenesys};
use presence_bridge::sim::graph::{self as sim_graph, SimGraphHandle, SimGraphOptions, SimUser};
use presence_bridge::store::inbox::Inbox;

use crate::helpers::eventually;

const WAIT: Duration = Duration::from_secs(30);

/// Teams user of the simulated contact center's agent-1 (agent1@example.com).
const SIM_USER: &str = "00000000-0000-4000-8000-000000000001";
/// Teams user of the fake Genesys' user-1 (user1@example.com).
const GC_USER: &str = "00000000-0000-4000-8000-000000000002";

/// Rules naming each connector; `extra` is appended (more rules).
fn config(graph: &SimGraphHandle, sim: &SimContactCenter, gc: &FakeGenesys, extra: &str) -> Config {
    let dir_db = tempfile::tempdir().unwrap().keep();
    let opts = &graph.state.options;
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

[store]
url = "sqlite://{db}/test.db"

[sync]
hold_down_secs = 0
reconcile_interval_secs = 3600

[[teams_to_cc]]
connector = "simcc"
when = {{ activity = ["InACall"] }}
set = "Busy (Teams)"
restore = true

[[teams_to_cc]]
connector = "gc"
when = {{ activity = ["InACall"] }}
set = "Busy"
restore = true

[[cc_to_teams]]
connector = "simcc"
when = {{ status = ["On Contact"] }}
set = {{ availability = "Busy", activity = "InACall" }}

[[cc_to_teams]]
connector = "gc"
when = {{ status = ["Meeting"] }}
set = {{ availability = "Away", activity = "Away" }}
{extra}
[graph]
tenant_id = "{tenant}"
client_id = "{client}"
client_secret = "{secret}"
base_url = "{base}"
authority_url = "{authority}"
presence_source = "poll"
directory_sync_interval_secs = 60

[graph.poll]
interval_secs = 2
safety_interval_secs = 60

{sim_connector}

[[connectors]]
name = "gc"
kind = "genesys"
region = "mypurecloud.ie"
api_base_url = "{gc_api}"
login_base_url = "{gc_login}"
client_id = "{gc_id}"
client_secret = "{gc_secret}"

[connectors.limits]
requests_per_sec = 1000.0
"#,
        db = dir_db.display(),
        tenant = opts.tenant_id,
        client = opts.client_id,
        secret = opts.client_secret.as_deref().unwrap_or_default(),
        base = graph.base_url,
        authority = graph.authority_url,
        sim_connector = sim.connector_toml("simcc"),
        gc_api = gc.api_url,
        gc_login = gc.login_url,
        gc_id = genesys::GENESYS_CLIENT_ID,
        gc_secret = genesys::GENESYS_CLIENT_SECRET,
    );
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new())
        .expect("config parses");
    cfg.resolve_and_validate().expect("config is valid");
    cfg
}

async fn simulators() -> (SimGraphHandle, SimContactCenter, FakeGenesys) {
    let graph = sim_graph::spawn(SimGraphOptions::default()).await;
    for (id, upn) in [
        (SIM_USER, "agent1@example.com"),
        (GC_USER, "user1@example.com"),
    ] {
        graph.state.upsert_user(SimUser::licensed(id, upn));
        graph
            .state
            .set_user_status(id, Some(("Available", "Available")));
    }
    let sim = contact_center::spawn(SimOptions {
        agents: 1,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let gc = genesys::spawn(1, None).await.unwrap();
    (graph, sim, gc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connectors_each_get_their_own_status_ids() {
    let (graph, sim, gc) = simulators().await;
    let app = Application::build(config(&graph, &sim, &gc, ""))
        .await
        .unwrap();
    sim.set_webhook_url(&format!(
        "http://{}/connectors/simcc/events",
        app.local_addr()
    ));
    let (store, health, stop) = (
        app.store().clone(),
        app.health().clone(),
        app.cancel_token(),
    );
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));

    eventually("both users matched", WAIT, || async {
        let users = store.list_users().await.unwrap();
        users.len() == 2 && users.iter().all(|u| u.cc_agent_id.is_some())
    })
    .await;
    let users = store.list_users().await.unwrap();
    let on = |id: &str| users.iter().find(|u| u.teams_id == id).unwrap();
    assert_eq!(on(SIM_USER).cc_connector.as_deref(), Some("simcc"));
    assert_eq!(on(GC_USER).cc_connector.as_deref(), Some("gc"));
    // Both sides of both users known to the engine (a reconciliation reads them), so a Teams
    // override has a status to restore.
    presence_bridge::runtime::reconcile::request(&Inbox::new(store.clone()))
        .await
        .unwrap();
    eventually(
        "a reconciliation of both users without errors",
        WAIT,
        || async {
            let r = presence_bridge::runtime::reconcile::last_report(store.as_ref())
                .await
                .unwrap();
            r.is_some_and(|r| r.users_checked == 2 && r.errors.is_empty())
        },
    )
    .await;

    // A Teams call: each connector gets the status of its own rule, by its own id.
    graph
        .state
        .set_user_status(SIM_USER, Some(("Busy", "InACall")));
    graph
        .state
        .set_user_status(GC_USER, Some(("Busy", "InACall")));
    eventually(
        "agent-1 Busy (Teams) on the HTTP contact center",
        WAIT,
        || async {
            sim.agent("agent-1")
                .is_some_and(|a| a.status_id == "busy_teams")
        },
    )
    .await;
    let busy = DEFINITIONS.iter().find(|d| d.1 == "Busy").unwrap().0;
    eventually("user-1 Busy on Genesys", WAIT, || async {
        gc.patches()
            .iter()
            .any(|(u, body)| u == "user-1" && body["presenceDefinition"]["id"] == busy)
    })
    .await;
    assert!(
        gc.patches()
            .iter()
            .all(|(u, body)| u == "user-1" && body["presenceDefinition"]["id"] == busy),
        "Genesys received only its own definition id: {:?}",
        gc.patches()
    );
    assert!(
        sim.writes()
            .iter()
            .all(|w| w.agent_id == "agent-1" && w.body["status_id"] == "busy_teams"),
        "the HTTP contact center received only its own status id: {:?}",
        sim.writes()
    );
    let engine = health.get("engine").expect("engine health");
    assert_eq!(engine.state, HealthState::Up, "{}", engine.detail);

    // The call ends: each gets its previous status back, again by its own id.
    graph
        .state
        .set_user_status(SIM_USER, Some(("Available", "Available")));
    graph
        .state
        .set_user_status(GC_USER, Some(("Available", "Available")));
    eventually("agent-1 restored", WAIT, || async {
        sim.agent("agent-1")
            .is_some_and(|a| a.status_id == "available")
    })
    .await;
    let available = DEFINITIONS[0].0;
    eventually("user-1 restored on Genesys", WAIT, || async {
        gc.patches()
            .last()
            .is_some_and(|(_, body)| body["presenceDefinition"]["id"] == available)
    })
    .await;

    // Contact center -> Teams: each connector's statuses drive only its own rules.
    let meeting = DEFINITIONS.iter().find(|d| d.1 == "Meeting").unwrap().0;
    gc.set_presence("user-1", meeting);
    assert_eq!(
        sim.set_agent_status("agent-1", "on_contact").await,
        Some(202)
    );
    let wrote = |user: &str, availability: &str, activity: &str| {
        graph.state.writes().iter().any(|w| {
            w.user_id == user
                && w.call.contains("setPresence")
                && w.body["availability"] == availability
                && w.body["activity"] == activity
        })
    };
    eventually("Genesys Meeting -> Teams Away", WAIT, || async {
        wrote(GC_USER, "Away", "Away")
    })
    .await;
    eventually("HTTP On Contact -> Teams Busy/InACall", WAIT, || async {
        wrote(SIM_USER, "Busy", "InACall")
    })
    .await;
    assert!(!wrote(GC_USER, "Busy", "InACall") && !wrote(SIM_USER, "Away", "Away"));

    stop.cancel();
    server.await.unwrap().unwrap();
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_naming_a_status_unknown_to_its_connector_is_reported_with_its_index() {
    let (graph, sim, gc) = simulators().await;
    // "Busy (Teams)" exists on the HTTP contact center, not on Genesys.
    let extra = r#"
[[teams_to_cc]]
connector = "gc"
when = { activity = ["Presenting"] }
set = "Busy (Teams)"
"#;
    let app = Application::build(config(&graph, &sim, &gc, extra))
        .await
        .unwrap();
    let (health, stop) = (app.health().clone(), app.cancel_token());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    eventually("catalog problem reported", WAIT, || async {
        health
            .get("engine")
            .is_some_and(|h| h.state == HealthState::Degraded)
    })
    .await;
    let detail = health.get("engine").unwrap().detail;
    assert!(
        detail.contains("teams_to_cc[2].set") && detail.contains("\"gc\""),
        "{detail}"
    );
    assert!(!detail.contains("teams_to_cc[0]"), "{detail}");
    let rules = health.get("rules").unwrap();
    assert!(
        rules.critical && rules.state == HealthState::Down,
        "a misfit rule makes the daemon not ready: {rules:?}"
    );
    assert!(
        rules.detail.contains("teams_to_cc[2].set"),
        "{}",
        rules.detail
    );
    stop.cancel();
    server.await.unwrap().unwrap();
    graph.shutdown().await;
}

#[test]
fn a_rule_naming_an_unknown_connector_is_refused_at_start() {
    let text = r#"
[[teams_to_cc]]
when = { activity = ["InACall"] }
set = "Busy"

[[teams_to_cc]]
connector = "nowhere"
when = { activity = ["InACall"] }
set = "Busy"
"#;
    let mut cfg = Config::from_toml_str_with_env(text, Vec::<(String, String)>::new()).unwrap();
    let err = cfg.resolve_and_validate().unwrap_err().to_string();
    assert!(err.contains("teams_to_cc[1].connector"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
}
