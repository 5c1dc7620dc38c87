//! Three (or more) daemon processes on one fresh Postgres database, with the simulated Teams
//! tenant and contact center in the calling process (also compiled into
//! `benches/failover.rs`). The contact center delivers its events to one replica at a time
//! (what a load balancer does); the Teams side is polled. Which replica owns what is read
//! from the `leases` table.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use presence_bridge::cli::demo::{DEMO_CONNECTOR, demo_user_id, start_simulators};
use presence_bridge::sim::contact_center::SimContactCenter;
use presence_bridge::sim::graph::SimGraphHandle;

pub const PG_ENV: &str = "PRESENCE_BRIDGE_TEST_POSTGRES_URL";
/// What the contact center's agents cycle through.
pub const STATUSES: [&str; 3] = ["available", "on_contact", "acw"];
/// How long a condition another process makes true may take (start, drain, settle).
pub const WAIT: Duration = Duration::from_secs(40);

/// The Teams presence the bridge holds for a contact-center status.
pub fn mapped(status: &str) -> Option<(&'static str, &'static str)> {
    matches!(status, "on_contact" | "acw").then_some(("Busy", "InACall"))
}

/// A database of its own on the test server, dropped by [`TestDatabase::drop_now`].
pub struct TestDatabase {
    admin: sqlx::PgPool,
    name: String,
    pub url: String,
}

impl TestDatabase {
    /// `None` (and a line saying so) without `PRESENCE_BRIDGE_TEST_POSTGRES_URL`.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let Ok(base) = std::env::var(PG_ENV) else {
            eprintln!("skipped {test}: {PG_ENV} is not set");
            return None;
        };
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("postgres reachable");
        let name = format!("pb_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        let mut url = url::Url::parse(&base).expect("postgres url");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            admin,
            name,
            url: url.to_string(),
        })
    }

    pub async fn drop_now(self) {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await;
        self.admin.close().await;
    }
}

/// One replica: its process while it runs.
pub struct Replica {
    pub instance: String,
    pub child: Option<Child>,
    pub base: String,
    pub runs: usize,
}

/// The replicas, the simulators and the database.
pub struct Replicas {
    pub db: Option<TestDatabase>,
    pub pool: sqlx::PgPool,
    pub graph: SimGraphHandle,
    pub cc: Arc<SimContactCenter>,
    pub dir: tempfile::TempDir,
    pub replicas: Vec<Replica>,
    pub lease_secs: u64,
    pub agents: usize,
    /// The `[graph]` part of every replica's configuration (Teams presence polled unless a
    /// test changes it).
    pub graph_toml: String,
    /// `server.public_url` of every replica (a load balancer in front of them), if any.
    pub public_url: Option<String>,
    /// Each replica's base URL while it runs, as a load balancer in front of them sees them.
    pub backends: Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Replicas {
    /// The simulators and `n` replicas (not started) on `db`.
    pub async fn new(db: TestDatabase, n: usize, agents: usize, lease_secs: u64) -> Replicas {
        let (graph, cc) = start_simulators(agents).await.unwrap();
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        Replicas {
            db: Some(db),
            pool,
            cc: Arc::new(cc),
            dir: tempfile::tempdir().unwrap(),
            replicas: (0..n)
                .map(|i| Replica {
                    instance: format!("replica-{i}"),
                    child: None,
                    base: String::new(),
                    runs: 0,
                })
                .collect(),
            lease_secs,
            agents,
            graph_toml: graph.polled_graph_toml(),
            public_url: None,
            backends: Arc::new(std::sync::Mutex::new(vec![None; n])),
            graph,
        }
    }

    fn config(&self, i: usize, port: u16) -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_grace_secs = 5
{public_url}

[store]
url = "{db}"
instance_id = "{instance}"
lease_secs = {lease}
max_connections = 4

[log]
filter = "info"
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

{graph}
{connector}
"#,
            db = self.db.as_ref().expect("database").url,
            instance = self.replicas[i].instance,
            lease = self.lease_secs,
            graph = self.graph_toml,
            public_url = self
                .public_url
                .as_ref()
                .map(|u| format!("public_url = \"{u}\""))
                .unwrap_or_default(),
            connector = self.cc.connector_toml(DEMO_CONNECTOR),
        )
    }

    /// The log file of replica `i`'s current (or last) run.
    pub fn log_path(&self, i: usize) -> PathBuf {
        let r = &self.replicas[i];
        self.dir
            .path()
            .join(format!("{}-{}.log", r.instance, r.runs.saturating_sub(1)))
    }

    /// Starts replica `i` (again) on a fresh port and waits until it answers.
    pub async fn start(&mut self, i: usize) {
        let port = free_port();
        let run = self.replicas[i].runs;
        let path = self
            .dir
            .path()
            .join(format!("{}-{run}.toml", self.replicas[i].instance));
        std::fs::write(&path, self.config(i, port)).unwrap();
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("{}-{run}.log", self.replicas[i].instance)),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
            .arg("--config")
            .arg(&path)
            .arg("run")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let r = &mut self.replicas[i];
        r.child = Some(child);
        r.base = base.clone();
        r.runs += 1;
        self.backends.lock().unwrap()[i] = Some(base.clone());
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
                "replica {i} did not start:\n{}",
                std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of every replica's current log, for a failure message.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for i in 0..self.replicas.len() {
            let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            out.push_str(&format!("--- replica {i}\n"));
            for l in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Sends the contact center's events to replica `i` (the load balancer's choice).
    pub fn route_events_to(&self, i: usize) {
        self.cc.set_webhook_url(&format!(
            "{}/connectors/{DEMO_CONNECTOR}/events",
            self.replicas[i].base
        ));
    }

    /// The replica holding `lease` now (by the database's clock), with its token.
    pub async fn owner(&self, lease: &str) -> Option<(usize, i64)> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT holder, token FROM leases WHERE name = $1 AND expires_at > now()",
        )
        .bind(lease)
        .fetch_optional(&self.pool)
        .await
        .unwrap();
        let (holder, token) = row?;
        let instance = holder.split('/').next().unwrap_or_default();
        let i = self.replicas.iter().position(|r| r.instance == instance)?;
        Some((i, token))
    }

    /// Waits until a replica other than `not` holds `lease`; returns it.
    pub async fn wait_owner(&self, lease: &str, not: Option<usize>) -> (usize, i64) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some((i, t)) = self.owner(lease).await
                && Some(i) != not
            {
                return (i, t);
            }
            assert!(
                Instant::now() < deadline,
                "no replica (other than {not:?}) took the {lease} lease"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every agent is matched to its Teams user.
    pub async fn wait_matched(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE cc_agent_id IS NOT NULL AND active",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap_or(0);
            if n as usize == self.agents {
                return;
            }
            assert!(Instant::now() < deadline, "only {n} users matched");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts every replica: the first alone (so it takes every lease and matches the
    /// people), then the others as followers.
    pub async fn start_all(&mut self) {
        self.start(0).await;
        self.wait_owner("engine", None).await;
        self.wait_matched().await;
        for i in 1..self.replicas.len() {
            self.start(i).await;
        }
    }

    /// Sends a signal to replica `i`'s process.
    pub fn signal(&self, i: usize, signal: libc::c_int) {
        let pid = self.replicas[i].child.as_ref().expect("running").id();
        // SAFETY: kill(2) on a child process this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
    }

    /// `kill -9` replica `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.replicas[i].child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        self.backends.lock().unwrap()[i] = None;
    }

    /// SIGTERM replica `i` and waits for it to exit; returns its exit status.
    pub fn stop(&mut self, i: usize) -> std::process::ExitStatus {
        self.signal(i, libc::SIGTERM);
        self.backends.lock().unwrap()[i] = None;
        self.replicas[i]
            .child
            .take()
            .expect("running")
            .wait()
            .unwrap()
    }

    /// The number of Teams writes the tenant has logged.
    pub fn teams_writes(&self) -> usize {
        self.graph.state.lock().writes.len()
    }

    /// Waits until the tenant has logged more than `n` writes.
    pub async fn wait_writes_past(&self, n: usize) -> Instant {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.teams_writes() > n {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "no Teams write past {n}; the replicas' logs end with:\n{}",
                self.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Every agent whose statuses disagree with `expected` on either simulator.
    pub fn mismatches(&self, expected: &HashMap<usize, String>) -> Vec<String> {
        let mut wrong = Vec::new();
        let tenant = self.graph.state.lock();
        for (i, want) in expected {
            let agent = format!("agent-{i}");
            let sim_cc = self.cc.agent(&agent).map(|a| a.status_id);
            if sim_cc.as_deref() != Some(want.as_str()) {
                wrong.push(format!("{agent}: contact center {sim_cc:?}, want {want}"));
            }
            let sessions: Vec<(String, String)> = tenant
                .presence
                .get(&demo_user_id(*i))
                .map(|p| {
                    p.sessions
                        .values()
                        .map(|s| (s.availability.clone(), s.activity.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let want_sessions: Vec<(String, String)> = mapped(want)
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            if sessions != want_sessions {
                wrong.push(format!(
                    "{agent}: Teams sessions {sessions:?}, want {want_sessions:?}"
                ));
            }
        }
        wrong.sort();
        wrong
    }

    /// Waits until both sides show what the last accepted event of every agent implies.
    pub async fn wait_settled(&self, expected: &HashMap<usize, String>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let wrong = self.mismatches(expected);
            if wrong.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} agents lost a transition:\n{}",
                wrong.len(),
                wrong.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// People with more Teams writes on the tenant's log than write decisions in the
    /// bridge's audit trail: a transition written twice (by two owners, or twice by one).
    /// Every decision is saved before its write is sent, so a write without a decision, or
    /// two writes of one decision, show here; fewer writes than decisions is the writer
    /// skipping a write a newer one superseded.
    pub async fn double_writes(&self) -> Vec<String> {
        let mut logged: HashMap<String, usize> = HashMap::new();
        for w in self.graph.state.lock().writes.iter() {
            *logged.entry(w.user_id.clone()).or_default() += 1;
        }
        let decided: HashMap<String, i64> = sqlx::query_as(
            "SELECT user_id, COUNT(*) FROM audit_log \
             WHERE action IN ('write_teams', 'clear_teams') GROUP BY user_id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
        let mut doubles: Vec<String> = logged
            .into_iter()
            .filter_map(|(user, n)| {
                let d = decided.get(&user).copied().unwrap_or(0) as usize;
                (n > d).then(|| format!("{user} {n} writes for {d} decisions"))
            })
            .collect();
        doubles.sort();
        doubles
    }

    /// The decisions recorded for `user`, oldest first, for a failure message.
    pub async fn audit(&self, user: &str) -> String {
        let rows: Vec<(
            chrono::DateTime<chrono::Utc>,
            String,
            String,
            serde_json::Value,
        )> = sqlx::query_as(
            "SELECT at, action, reason, input FROM audit_log WHERE user_id = $1 ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        rows.iter()
            .map(|(at, action, reason, input)| format!("{at} {action} {reason} {input}\n"))
            .collect()
    }

    /// Kills what still runs and drops the database.
    pub async fn finish(mut self) {
        for r in &mut self.replicas {
            if let Some(mut c) = r.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.pool.close().await;
        if let Some(db) = self.db.take() {
            db.drop_now().await;
        }
    }
}

/// A failing test still stops its processes (their database is left to the server's
/// housekeeping).
impl Drop for Replicas {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            if let Some(mut c) = r.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Steady traffic: every agent changes status in turn, one event at a time per agent, each
/// `pace` apart, until stopped. Returns each agent's last accepted status.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(usize, Option<String>)>>,
}

impl Traffic {
    pub fn start(cc: &Arc<SimContactCenter>, agents: usize, pace: Duration) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (1..=agents)
            .map(|i| {
                let (cc, stop) = (cc.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(pace);
                    let mut last = None;
                    let mut k = i;
                    while !stop.load(Ordering::SeqCst) {
                        tick.tick().await;
                        let status = STATUSES[k % STATUSES.len()];
                        k += 1;
                        // A delivery without a 202 is sent again (as the platform would),
                        // so the simulator's status is always the last one accepted.
                        let deadline = Instant::now() + WAIT;
                        while cc.set_agent_status(&format!("agent-{i}"), status).await != Some(202)
                        {
                            assert!(
                                Instant::now() < deadline,
                                "agent-{i}: {status} never accepted"
                            );
                            tick.tick().await;
                        }
                        last = Some(status.to_owned());
                    }
                    (i, last)
                })
            })
            .collect();
        Traffic { stop, tasks }
    }

    /// Stops the traffic; each agent's last accepted status (`available` for none).
    pub async fn stop(self) -> HashMap<usize, String> {
        self.stop.store(true, Ordering::SeqCst);
        let mut out = HashMap::new();
        for t in self.tasks {
            let (i, last) = t.await.unwrap();
            out.insert(i, last.unwrap_or_else(|| "available".to_owned()));
        }
        out
    }
}
