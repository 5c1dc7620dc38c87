//! `kill -9` with leased items in flight, three times over: the real binary takes a flood of
//! signed contact-center events from the simulated contact center, is killed while it holds
//! leased inbox items, and is started again. Then every agent's status on both sides (the
//! simulators and the store) must be what its last accepted event implies: none stale (an
//! older event applied over a newer one), none lost.
//!
//! The kill is timed on a condition, not a clock: the test takes SQLite's write lock (as any
//! other writer could) once the inbox holds leased rows, checks under the lock that they are
//! still leased (the daemon cannot finish them while the lock is held), and kills.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use presence_bridge::cli::demo::{DEMO_CONNECTOR, demo_user_id, start_simulators};
use presence_bridge::model::Side;
use presence_bridge::sim::contact_center::SimContactCenter;
use presence_bridge::sim::graph::SimGraphHandle;
use presence_bridge::store::config::StoreConfig;
use presence_bridge::store::{self, Store};
use sqlx::Connection;

const AGENTS: usize = 24;
const ROUNDS: usize = 3;
/// What the flood sets; "Break" is left out because an Away session under the person's own
/// Available is invisible in the aggregated presence, so it could not be checked there.
const STATUSES: [&str; 3] = ["available", "on_contact", "acw"];
/// Most events one agent sends in one flood (the flood stops at the kill long before).
const MAX_EVENTS_PER_AGENT: usize = 400;
/// How long the daemon may take to drain the inbox after a restart: well under the 60 s
/// lease, so leases left to run out instead of being taken back fail the test.
const DRAIN_WITHIN: Duration = Duration::from_secs(25);
const WAIT: Duration = Duration::from_secs(20);

/// The Teams presence the bridge holds for a contact-center status (the mapping below).
fn mapped(status: &str) -> Option<(&'static str, &'static str)> {
    matches!(status, "on_contact" | "acw").then_some(("Busy", "InACall"))
}

fn config(graph: &SimGraphHandle, cc: &SimContactCenter, port: u16, db: &str) -> String {
    let opts = &graph.state.options;
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_grace_secs = 2

[store]
url = "{db}"

[log]
filter = "warn"
format = "json"

[sync]
directions = ["cc_to_teams"]
hold_down_secs = 0
reconcile_interval_secs = 3600
flap_max_writes = 64
flap_window_secs = 1
flap_cooldown_secs = 1

[[cc_to_teams]]
when = {{ status = ["On Contact", "After Contact Work"] }}
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

{connector}
"#,
        tenant = opts.tenant_id,
        client = opts.client_id,
        secret = opts.client_secret.as_deref().unwrap_or_default(),
        base = graph.base_url,
        authority = graph.authority_url,
        connector = cc.connector_toml(DEMO_CONNECTOR),
    )
}

fn free_port() -> u16 {
    crate::helpers::port_for_restarts()
}

/// The daemon binary, started on a fresh port with the events webhook pointed at it.
async fn start(
    graph: &SimGraphHandle,
    cc: &SimContactCenter,
    dir: &tempfile::TempDir,
    db: &str,
    run: usize,
) -> Child {
    let port = free_port();
    let path = dir.path().join(format!("bridge-{run}.toml"));
    std::fs::write(&path, config(graph, cc, port, db)).unwrap();
    let log = std::fs::File::create(dir.path().join(format!("bridge-{run}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .arg("--config")
        .arg(&path)
        .arg("run")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    while !http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "daemon did not start (run {run})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cc.set_webhook_url(&format!("{base}/connectors/{DEMO_CONNECTOR}/events"));
    child
}

/// What each agent's last delivery attempt was, and the last one the daemon accepted (202).
#[derive(Default, Clone)]
struct Sent {
    last_attempt: Option<(String, bool)>,
    last_accepted: Option<String>,
}

/// Sends status changes for every agent (one at a time per agent, all agents at once) until
/// `stop` is set.
async fn flood(cc: Arc<SimContactCenter>, round: usize, stop: Arc<AtomicBool>) -> Vec<Sent> {
    let tasks = (1..=AGENTS).map(|i| {
        let (cc, stop) = (cc.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sent = Sent::default();
            for k in 0..MAX_EVENTS_PER_AGENT {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let status = STATUSES[(i * 7 + k * 5 + round) % STATUSES.len()];
                let ok = cc.set_agent_status(&format!("agent-{i}"), status).await == Some(202);
                sent.last_attempt = Some((status.to_owned(), ok));
                if ok {
                    sent.last_accepted = Some(status.to_owned());
                }
            }
            sent
        })
    });
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect()
}

async fn leased(conn: &mut sqlx::SqliteConnection) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE lease_until > $1")
        .bind(now)
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Waits until the daemon holds leased items, then kills it with SIGKILL while they are
/// still leased. Returns how many were leased.
async fn kill_while_leased(child: &mut Child, url: &str) -> i64 {
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .busy_timeout(Duration::from_secs(10));
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the inbox never held leased items"
        );
        if leased(&mut conn).await > 0 {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            let held = leased(&mut conn).await;
            if held > 0 {
                child.kill().unwrap();
                child.wait().unwrap();
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                return held;
            }
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Every agent's disagreement with what its last accepted event implies, on both sides.
async fn mismatches(
    graph: &SimGraphHandle,
    cc: &SimContactCenter,
    store: &dyn Store,
    expected: &HashMap<usize, String>,
) -> Vec<String> {
    let observed = store.list_observed().await.unwrap();
    let states: HashMap<String, serde_json::Value> = store
        .load_user_states()
        .await
        .unwrap()
        .into_iter()
        .map(|(user, state)| (user, state.value()))
        .collect();
    let mut wrong = Vec::new();
    for (i, want) in expected {
        let user = demo_user_id(*i);
        let agent = format!("agent-{i}");
        let sim_cc = cc.agent(&agent).map(|a| a.status_id);
        if sim_cc.as_deref() != Some(want.as_str()) {
            wrong.push(format!(
                "{agent}: contact center shows {sim_cc:?}, want {want}"
            ));
        }
        let stored = observed
            .iter()
            .find(|o| o.user_id == user && o.side == Side::ContactCenter)
            .map(|o| o.status["id"].as_str().unwrap_or_default().to_owned());
        if stored.as_deref() != Some(want.as_str()) {
            wrong.push(format!("{agent}: store has {stored:?}, want {want}"));
        }
        let want_teams = mapped(want);
        let sessions: Vec<(String, String)> = graph
            .state
            .lock()
            .presence
            .get(&user)
            .map(|p| {
                p.sessions
                    .values()
                    .map(|s| (s.availability.clone(), s.activity.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let want_sessions: Vec<(String, String)> = want_teams
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        if sessions != want_sessions {
            wrong.push(format!(
                "{agent}: Teams sessions {sessions:?}, want {want_sessions:?}"
            ));
        }
        let held = states
            .get(&user)
            .and_then(|s| s["c2t"]["held"].as_object().cloned())
            .map(|h| (h["availability"].to_string(), h["activity"].to_string()));
        let want_held = want_teams.map(|(a, b)| (format!("{a:?}"), format!("{b:?}")));
        if held != want_held {
            wrong.push(format!(
                "{agent}: stored Teams hold {held:?}, want {want_held:?}"
            ));
        }
    }
    wrong.sort();
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_leased_items_leaves_no_agent_stale_or_lost() {
    let test_start = Instant::now();
    let (graph, cc) = start_simulators(AGENTS).await.unwrap();
    let cc = Arc::new(cc);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bridge.db", dir.path().display());
    let mut child = start(&graph, &cc, &dir, &url, 0).await;
    let store = store::open(&StoreConfig {
        url: url.clone().into(),
        ..StoreConfig::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let users = store.list_users().await.unwrap();
        if users.len() == AGENTS && users.iter().all(|u| u.cc_agent_id.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "users not matched: {users:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut expected: HashMap<usize, String> =
        (1..=AGENTS).map(|i| (i, "available".to_owned())).collect();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let flood = tokio::spawn(flood(cc.clone(), round, stop.clone()));
        let held = kill_while_leased(&mut child, &url).await;
        eprintln!("round {round}: killed with {held} leased inbox items");
        stop.store(true, Ordering::SeqCst);
        let sent = flood.await.unwrap();
        child = start(&graph, &cc, &dir, &url, round + 1).await;
        // Agents whose last delivery got no answer (it may or may not have been stored),
        // and every third one, get two more events after the restart: newer than anything
        // leased, and the second always a write (its mapping differs from the first's).
        for (n, s) in sent.iter().enumerate() {
            let i = n + 1;
            let settled = s.last_attempt.as_ref().is_none_or(|(_, ok)| *ok);
            if settled && i % 3 != round % 3 {
                if let Some(last) = &s.last_accepted {
                    expected.insert(i, last.clone());
                }
                continue;
            }
            let last = STATUSES[(i + round) % STATUSES.len()];
            let first = if mapped(last).is_some() {
                "available"
            } else {
                "on_contact"
            };
            for status in [first, last] {
                let code = cc.set_agent_status(&format!("agent-{i}"), status).await;
                assert_eq!(code, Some(202), "agent-{i} {status} after the restart");
            }
            expected.insert(i, last.to_owned());
        }
        let drained_by = Instant::now() + DRAIN_WITHIN;
        loop {
            let left = store.inbox_len().await.unwrap();
            if left == 0 {
                break;
            }
            assert!(
                Instant::now() < drained_by,
                "round {round}: {left} inbox items still waiting {DRAIN_WITHIN:?} after the \
                 restart ({held} were leased at the kill)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let settled_by = Instant::now() + WAIT;
        loop {
            let wrong = mismatches(&graph, &cc, store.as_ref(), &expected).await;
            if wrong.is_empty() {
                break;
            }
            assert!(
                Instant::now() < settled_by,
                "round {round} ({held} items leased at the kill): {} disagreements with the \
                 last accepted events:\n{}",
                wrong.len(),
                wrong.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    graph.shutdown().await;
    eprintln!("{ROUNDS} kill -9 rounds took {:?}", test_start.elapsed());
}
