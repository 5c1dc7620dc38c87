//! Through the whole daemon, in process, against the simulators: a late, older observation
//! changes nothing; the engine's readiness comes back after a database lock; the SQLite
//! durability option.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::cli::demo::{demo_config, demo_user_id, start_simulators};
use presence_bridge::model::health::{HealthRegistry, HealthState};
use presence_bridge::model::{CcStatus, Observation, Side, Source, Status};
use presence_bridge::sim::contact_center::SimContactCenter;
use presence_bridge::sim::graph::SimGraphHandle;
use presence_bridge::store::Store;
use presence_bridge::store::inbox::Inbox;
use sqlx::Connection;

use crate::helpers::eventually;

/// How long a condition may take to become true.
const WAIT: Duration = Duration::from_secs(30);

/// The daemon against both simulators, its users matched.
struct SimApp {
    graph: SimGraphHandle,
    cc: SimContactCenter,
    store: Arc<dyn Store>,
    inbox: Inbox,
    health: HealthRegistry,
    url: String,
    stop: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn sim_app(users: usize, tweak: impl FnOnce(&mut Config)) -> SimApp {
    let (graph, cc) = start_simulators(users).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = demo_config(&graph, &cc, Some("127.0.0.1:0".parse().unwrap())).unwrap();
    let url = format!("sqlite://{}/bridge.db", dir.path().display());
    cfg.store.url = url.clone().into();
    cfg.sync.hold_down_secs = 0;
    tweak(&mut cfg);
    let app = Application::build(cfg).await.unwrap();
    let (store, inbox, health) = (
        app.store().clone(),
        app.inbox().clone(),
        app.health().clone(),
    );
    let stop = app.cancel_token();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    eventually("users matched to agents", WAIT, || {
        let store = store.clone();
        async move {
            let u = store.list_users().await.unwrap();
            u.len() == users && u.iter().all(|u| u.cc_agent_id.is_some())
        }
    })
    .await;
    SimApp {
        graph,
        cc,
        store,
        inbox,
        health,
        url,
        stop,
        server,
        _dir: dir,
    }
}

impl SimApp {
    async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
        self.graph.shutdown().await;
    }
}

fn cc_observation(user: &str, id: &str, name: &str, ago_secs: i64) -> Observation {
    Observation {
        user: user.into(),
        status: Status::ContactCenter(CcStatus {
            id: id.into(),
            name: name.into(),
        }),
        observed_at: chrono::Utc::now() - chrono::Duration::seconds(ago_secs),
        source: Source::ConnectorPush,
        activity: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observation_older_than_the_applied_one_changes_nothing_and_writes_nothing() {
    let app = sim_app(2, |_| {}).await;
    let u1 = demo_user_id(1);
    // The platform's state agrees with the event (no webhook is set, so it is not sent):
    // reconciliation reads the same.
    assert_eq!(app.cc.set_agent_status("agent-1", "on_contact").await, None);
    app.inbox
        .push_observations(&[cc_observation(&u1, "on_contact", "On Contact", 0)])
        .await
        .unwrap();
    eventually("setPresence Busy for user 1", WAIT, || async {
        app.graph.state.writes().iter().any(|w| {
            w.user_id == u1 && w.call.contains("setPresence") && w.body["availability"] == "Busy"
        })
    })
    .await;
    // What a crashed process's lease gives back a minute late: an older status.
    app.inbox
        .push_observations(&[cc_observation(&u1, "available", "Available", 30)])
        .await
        .unwrap();
    let decided = || async {
        let audit = app.store.list_audit(&u1, 50).await.unwrap();
        let late: Vec<_> = audit
            .into_iter()
            .filter(|e| e.input.to_string().contains("\"available\""))
            .collect();
        (!late.is_empty() && app.store.inbox_len().await.unwrap() == 0).then_some(late)
    };
    eventually("the late observation decided", WAIT, || async {
        decided().await.is_some()
    })
    .await;
    let late = decided().await.unwrap();
    assert!(
        late.iter().all(|e| e.action == "none"),
        "a stale observation caused a write: {late:?}"
    );
    assert!(
        late.iter().any(|e| e.reason.contains("older than")),
        "{late:?}"
    );
    let observed = app.store.list_observed().await.unwrap();
    let cc = observed
        .iter()
        .find(|o| o.user_id == u1 && o.side == Side::ContactCenter)
        .expect("user 1 observed");
    assert_eq!(cc.status["id"], "on_contact", "{cc:?}");
    assert!(
        !app.graph
            .state
            .writes()
            .iter()
            .any(|w| w.user_id == u1 && w.call.contains("clearPresence")),
        "the Teams status was moved back"
    );
    app.stop().await;
}

fn engine_state(health: &HealthRegistry) -> Option<(HealthState, String)> {
    health.get("engine").map(|c| (c.state, c.detail))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_back_up_when_the_database_lock_ends() {
    let app = sim_app(1, |cfg| cfg.store.sqlite_busy_timeout_ms = 200).await;
    eventually("engine up", WAIT, || async {
        engine_state(&app.health).is_some_and(|(s, _)| s == HealthState::Up)
    })
    .await;
    // Another process holds the write lock (a long migration, a backup, a stuck writer).
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&app.url)
        .unwrap()
        .busy_timeout(Duration::from_secs(10));
    let mut locker = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    eventually("engine degraded by the lock", WAIT, || async {
        engine_state(&app.health)
            .is_some_and(|(s, d)| s == HealthState::Degraded && d.contains("inbox"))
    })
    .await;
    assert!(
        app.store.ping().await.is_err(),
        "a database nobody can write to is not ready"
    );
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    eventually("engine up again once the inbox reads", WAIT, || async {
        engine_state(&app.health).is_some_and(|(s, _)| s == HealthState::Up)
    })
    .await;
    app.store.ping().await.expect("ready again");
    app.stop().await;
}

#[test]
fn sqlite_synchronous_takes_normal_or_full_only() {
    let parse = |value: &str| {
        let toml = format!("[store]\nurl = \"sqlite://x.db\"\nsqlite_synchronous = \"{value}\"\n");
        Config::from_toml_str_with_env(&toml, Vec::<(String, String)>::new())
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                c.resolve_and_validate()
                    .map(|()| c)
                    .map_err(|e| e.to_string())
            })
    };
    use presence_bridge::store::config::SqliteSynchronousMode;
    assert_eq!(
        parse("full").unwrap().store.sqlite_synchronous,
        SqliteSynchronousMode::Full
    );
    assert_eq!(
        parse("normal").unwrap().store.sqlite_synchronous,
        SqliteSynchronousMode::Normal
    );
    let err = parse("off").unwrap_err();
    assert!(err.contains("sqlite_synchronous"), "{err}");
}
