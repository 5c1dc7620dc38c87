//! Contact activity and contact events end to end, per connector: the whole daemon against
//! the simulated Teams tenant and a contact center speaking its vendor's wire format (the
//! fake Genesys Cloud over its Notifications WebSocket; the generic HTTP connector by signed
//! webhooks), with a real SQLite file that outlives a restart. Real time, hold-down 1 s.

use std::time::{Duration, Instant};

use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::sim::graph::{self as sim_graph, SimGraphHandle, SimGraphOptions, SimUser};
use presence_bridge::store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub mod amazon;
pub mod genesys;
pub mod http;

pub const TOKEN: &str = "contact-states-token";
const HOLD_DOWN: Duration = Duration::from_secs(1);

/// The mapping rules under test: a contact → Busy / In a call; after-contact work by its
/// own rule (a different pair, to tell them apart); nothing else, so an ended contact
/// removes the bridge's session.
const RULES: &str = r#"
[[cc_to_teams]]
when = { cc_activity = ["offered", "on_contact"], channel = ["voice"] }
set = { availability = "Busy", activity = "InACall" }

[[cc_to_teams]]
when = { cc_activity = ["after_contact_work"] }
set = { availability = "Busy", activity = "InAConferenceCall" }
"#;

pub fn teams_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// The simulated tenant with `n` licensed users `user{i}@example.com`, Available.
pub async fn tenant(n: usize) -> SimGraphHandle {
    let graph = sim_graph::spawn(SimGraphOptions::default()).await;
    for i in 1..=n {
        graph.state.upsert_user(SimUser::licensed(
            &teams_id(i),
            &format!("user{i}@example.com"),
        ));
        graph
            .state
            .set_user_status(&teams_id(i), Some(("Available", "Available")));
    }
    graph
}

/// The daemon's config: the tenant, the rules, a SQLite file in `dir`, and `connector`.
pub fn config(graph: &SimGraphHandle, dir: &tempfile::TempDir, connector: &str) -> Config {
    let opts = &graph.state.options;
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

[store]
url = "sqlite://{db}/bridge.db"

[api]
bearer_token = "{TOKEN}"

[sync]
directions = ["cc_to_teams"]
hold_down_secs = {hold}
reconcile_interval_secs = 3600

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
{RULES}
{connector}
"#,
        db = dir.path().display(),
        hold = HOLD_DOWN.as_secs(),
        tenant = opts.tenant_id,
        client = opts.client_id,
        secret = opts.client_secret.as_deref().unwrap_or_default(),
        base = graph.base_url,
        authority = graph.authority_url,
    );
    let mut cfg =
        Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    cfg
}

/// A running daemon.
pub struct Daemon {
    pub address: String,
    pub store: std::sync::Arc<dyn Store>,
    stop: CancellationToken,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    pub async fn start(cfg: Config) -> Daemon {
        let app = Application::build(cfg).await.expect("builds");
        let address = format!("http://{}", app.local_addr());
        let store = app.store().clone();
        let stop = app.cancel_token();
        let join = tokio::spawn(app.run_until_stopped(std::future::pending()));
        Daemon {
            address,
            store,
            stop,
            join,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.join.await.expect("task").expect("stopped cleanly");
    }

    /// Waits until `n` users are matched to agents.
    pub async fn matched(&self, n: usize) {
        until("users matched to agents", || async {
            let users = self.store.list_users().await.unwrap();
            users.iter().filter(|u| u.cc_agent_id.is_some()).count() == n
        })
        .await;
    }

    /// `GET /api/v1/contacts?agent=…`: (contact id, kinds in order) of each contact.
    pub async fn contacts(&self, agent: &str) -> Vec<(String, Vec<String>)> {
        let v: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/contacts?agent={agent}", self.address))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let kinds = c["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["kind"].as_str().unwrap().to_owned())
                    .collect();
                (c["contact_id"].as_str().unwrap().to_owned(), kinds)
            })
            .collect()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    crate::helpers::eventually(what, Duration::from_secs(30), &mut check).await
}

/// Waits for the `n`-th Teams write (0-based) for the user; returns its call and pair and
/// when it was seen.
pub async fn teams_write(
    graph: &SimGraphHandle,
    user: &str,
    n: usize,
) -> (String, String, Instant) {
    let writes = || {
        graph
            .state
            .writes()
            .into_iter()
            .filter(|w| w.user_id == user)
            .collect::<Vec<_>>()
    };
    until("a Teams write", || async { writes().len() > n }).await;
    let seen = Instant::now();
    let w = &writes()[n];
    let pair = format!(
        "{}/{}",
        w.body["availability"].as_str().unwrap_or_default(),
        w.body["activity"].as_str().unwrap_or_default()
    );
    let call = if w.call.contains("clearPresence") {
        "clearPresence"
    } else if w.call.contains("setPresence") {
        "setPresence"
    } else {
        "other"
    };
    (call.to_owned(), pair, seen)
}

/// Waits until the user's last Teams write removed the bridge's presence.
pub async fn until_session_cleared(graph: &SimGraphHandle, user: &str) {
    until("the session cleared", || async {
        teams_writes(graph, user)
            .last()
            .is_some_and(|w| w.contains("clearPresence"))
    })
    .await;
}

/// The Teams writes of one user so far: call and pair.
pub fn teams_writes(graph: &SimGraphHandle, user: &str) -> Vec<String> {
    graph
        .state
        .writes()
        .into_iter()
        .filter(|w| w.user_id == user)
        .map(|w| {
            format!(
                "{} {}/{}",
                w.call,
                w.body["availability"].as_str().unwrap_or_default(),
                w.body["activity"].as_str().unwrap_or_default()
            )
        })
        .collect()
}
