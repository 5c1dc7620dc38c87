//! Trying a configuration safely: shadow mode (`sync.mode = "shadow"`) runs the whole daemon
//! against the simulated Teams tenant and contact center but writes to neither; every
//! would-be write is counted, audited and shown by `explain`. The same store then switched to
//! live writes. `sync.only` limits sync to a pilot group.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::runtime::{audit, reconcile};
use presence_bridge::sim::contact_center::{self, SimContactCenter, SimOptions};
use presence_bridge::sim::graph::{self as sim_graph, SimGraphHandle, SimGraphOptions, SimUser};
use presence_bridge::store::Store;
use presence_bridge::store::inbox::Inbox;

use crate::helpers::eventually;

const WAIT: Duration = Duration::from_secs(30);

/// Teams users of the simulated contact center's agent-1 and agent-2 (matched by e-mail).
const USER_1: &str = "00000000-0000-4000-8000-000000000001";
const USER_2: &str = "00000000-0000-4000-8000-000000000002";

/// The config file's text: the simulators, the rules, and `sync` keys from `sync`.
fn config_text(db: &Path, graph: &SimGraphHandle, sim: &SimContactCenter, sync: &str) -> String {
    let opts = &graph.state.options;
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

[store]
url = "sqlite://{db}/test.db"

[sync]
hold_down_secs = 0
reconcile_interval_secs = 3600
{sync}

[[teams_to_cc]]
when = {{ activity = ["InACall"] }}
set = "Busy (Teams)"
restore = true

[[cc_to_teams]]
when = {{ status = ["On Contact"] }}
set = {{ availability = "Busy", activity = "InACall" }}

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
"#,
        db = db.display(),
        tenant = opts.tenant_id,
        client = opts.client_id,
        secret = opts.client_secret.as_deref().unwrap_or_default(),
        base = graph.base_url,
        authority = graph.authority_url,
        sim_connector = sim.connector_toml("simcc"),
    )
}

fn config(text: &str) -> Config {
    let mut cfg = Config::from_toml_str_with_env(text, Vec::<(String, String)>::new())
        .expect("config parses");
    cfg.resolve_and_validate().expect("config is valid");
    cfg
}

async fn simulators(agents: usize) -> (SimGraphHandle, SimContactCenter) {
    let graph = sim_graph::spawn(SimGraphOptions::default()).await;
    for (id, upn) in [
        (USER_1, "agent1@example.com"),
        (USER_2, "agent2@example.com"),
    ]
    .into_iter()
    .take(agents)
    {
        graph.state.upsert_user(SimUser::licensed(id, upn));
        graph
            .state
            .set_user_status(id, Some(("Available", "Available")));
    }
    let sim = contact_center::spawn(SimOptions {
        agents,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    (graph, sim)
}

/// A running daemon.
struct Running {
    address: String,
    store: std::sync::Arc<dyn Store>,
    stop: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(cfg: Config, sim: &SimContactCenter) -> Running {
        let app = Application::build(cfg).await.unwrap();
        let address = format!("http://{}", app.local_addr());
        sim.set_webhook_url(&format!("{address}/connectors/simcc/events"));
        let (store, stop) = (app.store().clone(), app.cancel_token());
        let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
        Running {
            address,
            store,
            stop,
            server,
        }
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `users` users are matched, then for a reconciliation of `checked` users.
    async fn matched_and_reconciled(&self, users: usize, checked: usize) {
        let store = &self.store;
        eventually("users matched", WAIT, || async {
            let u = store.list_users().await.unwrap();
            u.len() == users && u.iter().all(|u| u.cc_agent_id.is_some())
        })
        .await;
        reconcile::request(&Inbox::new(store.clone()))
            .await
            .unwrap();
        eventually("a reconciliation", WAIT, || async {
            reconcile::last_report(store.as_ref())
                .await
                .unwrap()
                .is_some_and(|r| r.users_checked == checked && r.errors.is_empty())
        })
        .await;
    }

    /// Asks for a reconciliation and waits for its report.
    async fn reconcile(&self) -> reconcile::ReconcileReport {
        let store = &self.store;
        let before = reconcile::last_report(store.as_ref())
            .await
            .unwrap()
            .map(|r| r.finished_at);
        reconcile::request(&Inbox::new(store.clone()))
            .await
            .unwrap();
        eventually("a new reconciliation report", WAIT, || async {
            reconcile::last_report(store.as_ref())
                .await
                .unwrap()
                .is_some_and(|r| Some(r.finished_at) != before)
        })
        .await;
        reconcile::last_report(store.as_ref())
            .await
            .unwrap()
            .unwrap()
    }

    async fn explain(&self, user: &str) -> Vec<String> {
        audit::explain(self.store.as_ref(), user, 100)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
    }
}

/// `presence-bridge --config … explain USER` through the binary; what it printed.
fn explain_cli(dir: &Path, config: &str, user: &str) -> String {
    let file = dir.join("pb.toml");
    std::fs::write(&file, config).unwrap();
    let out = Command::cargo_bin("presence-bridge")
        .unwrap()
        .env_clear()
        .arg("--config")
        .arg(&file)
        .arg("explain")
        .arg(user)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_decides_audits_and_counts_but_writes_nothing_then_live_writes() {
    let (graph, sim) = simulators(1).await;
    let db = tempfile::tempdir().unwrap();
    let shadow_text = config_text(db.path(), &graph, &sim, "mode = \"shadow\"");
    let app = Running::start(config(&shadow_text), &sim).await;
    app.matched_and_reconciled(1, 1).await;

    // A contact-center contact: live would set Teams Busy/InACall.
    assert_eq!(
        sim.set_agent_status("agent-1", "on_contact").await,
        Some(202)
    );
    let would_set_teams =
        "would set Teams to Busy/InACall (session) (shadow mode) [cc_to_teams[0]]";
    eventually("the would-be Teams write in the audit", WAIT, || async {
        app.explain(USER_1)
            .await
            .iter()
            .any(|l| l.contains(would_set_teams))
    })
    .await;
    // The contact ends: live would remove the bridge's presence again.
    assert_eq!(
        sim.set_agent_status("agent-1", "available").await,
        Some(202)
    );
    eventually("the would-be clear in the audit", WAIT, || async {
        app.explain(USER_1)
            .await
            .iter()
            .any(|l| l.contains("would remove the bridge's Teams presence (session) (shadow mode)"))
    })
    .await;
    // A Teams call: live would set the agent Busy (Teams).
    graph
        .state
        .set_user_status(USER_1, Some(("Busy", "InACall")));
    let would_set_cc = "would set the contact-center status to \"Busy (Teams)\" (shadow mode) \
                        [teams_to_cc[0]], because a mapping rule matched";
    eventually(
        "the would-be contact-center write in the audit",
        WAIT,
        || async {
            app.explain(USER_1)
                .await
                .iter()
                .any(|l| l.contains(would_set_cc))
        },
    )
    .await;

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("engine_shadow_writes_total{side=\"teams\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("engine_shadow_writes_total{side=\"contact_center\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("# HELP engine_shadow_writes_total "));
    assert!(!metrics.contains("engine_writes_total{"), "{metrics}");
    // The decisions API carries the mark too.
    let decided = audit::decisions(app.store.as_ref(), USER_1, 100)
        .await
        .unwrap();
    assert!(
        decided
            .iter()
            .filter(|d| d.input.decision.write.is_some())
            .all(|d| d.input.decision.shadow),
        "{decided:#?}"
    );
    // A reconciliation while the agent shows Available (shadow mode wrote nothing) and Teams
    // InACall: what the engine would have written is already decided, nothing new.
    let report = app.reconcile().await;
    assert_eq!(report.users_checked, 1, "{report:?}");
    assert_eq!((report.writes, report.shadow_writes), (0, 0), "{report:?}");
    app.stop().await;
    assert!(
        sim.writes().is_empty(),
        "the contact center received writes in shadow mode: {:?}",
        sim.writes()
    );
    assert!(
        graph.state.writes().is_empty(),
        "the Teams tenant received writes in shadow mode: {:?}",
        graph.state.writes()
    );

    // `presence-bridge explain` through the binary, on the same database.
    let shown = explain_cli(db.path(), &shadow_text, USER_1);
    assert!(shown.contains(would_set_cc), "{shown}");
    assert!(shown.contains(would_set_teams), "{shown}");

    // The same store, live: the agent still shows Available during the Teams call, so live
    // writes Busy (Teams), although shadow mode had decided (not made) that write before.
    let live = config(&config_text(db.path(), &graph, &sim, "mode = \"live\""));
    let app = Running::start(live, &sim).await;
    eventually("live writes Busy (Teams)", WAIT, || async {
        sim.agent("agent-1")
            .is_some_and(|a| a.status_id == "busy_teams")
    })
    .await;
    assert!(
        sim.writes().iter().all(|w| w.agent_id == "agent-1"),
        "{:?}",
        sim.writes()
    );
    app.stop().await;
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_only_limits_decisions_and_writes_to_the_pilot_group() {
    let (graph, sim) = simulators(2).await;
    let db = tempfile::tempdir().unwrap();
    // The pilot is named by UPN; agent-2's user is not in it.
    let text = config_text(db.path(), &graph, &sim, "only = [\"Agent1@example.com\"]");
    let app = Running::start(config(&text), &sim).await;
    // Reconciliation checks the pilot only.
    app.matched_and_reconciled(2, 1).await;

    for user in [USER_1, USER_2] {
        graph.state.set_user_status(user, Some(("Busy", "InACall")));
    }
    eventually("the pilot user's agent set Busy (Teams)", WAIT, || async {
        sim.agent("agent-1")
            .is_some_and(|a| a.status_id == "busy_teams")
    })
    .await;
    // The other user's call was read and stored (the directory shows it) but decided on by
    // nobody.
    eventually("the other user's call observed", WAIT, || async {
        app.store.list_observed().await.unwrap().iter().any(|o| {
            o.user_id == USER_2
                && o.status.get("activity").and_then(|a| a.as_str()) == Some("InACall")
        })
    })
    .await;
    let report = app.reconcile().await;
    assert_eq!(report.users_checked, 1, "{report:?}");
    assert!(
        sim.writes().iter().all(|w| w.agent_id == "agent-1"),
        "a write outside the pilot group: {:?}",
        sim.writes()
    );
    assert_eq!(
        sim.agent("agent-2").unwrap().status_id,
        "available",
        "agent-2 is outside sync.only"
    );
    assert!(app.explain(USER_2).await.is_empty());
    assert!(!app.explain(USER_1).await.is_empty());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("engine_not_in_sync_only_total"),
        "{metrics}"
    );
    app.stop().await;
    let shown = explain_cli(db.path(), &text, USER_2);
    assert!(
        shown.contains("is not in sync.only (the pilot group)"),
        "{shown}"
    );
    let shown = explain_cli(db.path(), &text, USER_1);
    assert!(!shown.contains("not in sync.only"), "{shown}");
    graph.shutdown().await;
}

#[test]
fn an_unknown_mode_and_an_empty_pilot_entry_are_reported_with_their_key_paths() {
    let err = |text: &str| {
        Config::from_toml_str_with_env(text, Vec::<(String, String)>::new())
            .and_then(|mut c| c.resolve_and_validate().map(|_| c))
            .unwrap_err()
            .to_string()
    };
    let e = err("[sync]\nmode = \"dry-run\"\n");
    assert!(e.contains("sync.mode") && e.contains("dry-run"), "{e}");
    let e = err("[sync]\nonly = [\"agent1@example.com\", \"  \", \"simcc:\"]\n");
    assert!(
        e.contains("sync.only[1]") && e.contains("sync.only[2]"),
        "{e}"
    );
    assert!(!e.contains("sync.only[0]"), "{e}");
}
