//! The team at 100,000 people: server time of `GET /api/v1/users` (first page, a search, a
//! state filter, each sort) and of the console's team page (first page, a search), measured over
//! loopback HTTP against the real daemon on SQLite (a temp file) and, when
//! `PRESENCE_BRIDGE_TEST_POSTGRES_URL` is set, on Postgres (a fresh schema, dropped
//! afterwards). Goals: 50 ms for the API's first page, 100 ms for a page. Prints figures;
//! asserts nothing.
//!
//! `cargo bench --bench console`

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::engine::UserState;
use presence_bridge::model::Side;
use presence_bridge::store::{AgentRecord, JsonText, ObservedStatus, Store, UserRecord};
use serde_json::json;

#[path = "../tests/it/store/scratch.rs"]
mod scratch;
use scratch::ScratchSchema;

const PEOPLE: usize = 100_000;
/// Agents on the one connector; all but the last tenth matched to a person.
const AGENTS: usize = 10_000;
const SUSPENDED: usize = 100;
/// Requests per measure (after one warm-up).
const ROUNDS: usize = 30;
const BATCH: usize = 5_000;

fn config(url: &str) -> Config {
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"{url}\"\n[api]\nbearer_token = \"bench\"\n\
         [console]\nenabled = true\nauth = \"none\"\n[log]\nfilter = \"warn\"\n"
    );
    let mut cfg =
        Config::from_toml_str_with_env(&toml, Vec::<(String, String)>::new()).expect("config");
    cfg.resolve_and_validate().expect("valid config");
    cfg
}

async fn seed(store: &Arc<dyn Store>) {
    let now = Utc::now();
    let matched = AGENTS * 9 / 10;
    for start in (0..PEOPLE).step_by(BATCH) {
        let users: Vec<UserRecord> = (start..(start + BATCH).min(PEOPLE))
            .map(|i| UserRecord {
                teams_id: format!("00000000-0000-4000-8000-{i:012}"),
                upn: format!("person{i:06}@example.com"),
                mail: Some(format!("person{i:06}@example.com")),
                display_name: Some(format!("Person {i:06}")),
                business_phones: vec![format!("+1 425 555 {:04}", i % 10_000)],
                mobile_phone: None,
                cc_connector: (i < matched).then(|| "cc".to_owned()),
                cc_agent_id: (i < matched).then(|| format!("agent-{i}")),
                active: true,
                updated_at: now,
            })
            .collect();
        store.upsert_users(&users).await.expect("users");
        let observed: Vec<ObservedStatus> = users
            .iter()
            .map(|u| ObservedStatus {
                user_id: u.teams_id.clone(),
                side: Side::Teams,
                status: json!({"side": "teams", "availability": "Available", "activity": "Available"}),
                observed_at: now,
                source: "graph_poll".into(),
            })
            .collect();
        store.put_observed(&observed).await.expect("observed");
    }
    let agents: Vec<AgentRecord> = (0..AGENTS)
        .map(|i| AgentRecord {
            connector: "cc".into(),
            agent_id: format!("agent-{i}"),
            email: Some(format!("person{i:06}@example.com")),
            username: None,
            display_name: Some(format!("Agent {i:06}")),
            updated_at: now,
        })
        .collect();
    store.replace_agents("cc", &agents).await.expect("agents");
    let suspended = JsonText::of(&UserState {
        suspended_until: Some(now.timestamp_millis() + 3_600_000),
        ..Default::default()
    })
    .unwrap();
    let states: Vec<(String, JsonText)> = (0..SUSPENDED)
        .map(|i| {
            (
                format!("00000000-0000-4000-8000-{:012}", i * 97),
                suspended.clone(),
            )
        })
        .collect();
    store.save_user_states(&states).await.expect("states");
}

async fn measure(http: &reqwest::Client, label: &str, url: &str, bearer: bool) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for round in 0..=ROUNDS {
        let mut req = http.get(url);
        if bearer {
            req = req.bearer_auth("bench");
        }
        let start = Instant::now();
        let res = req.send().await.expect("request");
        assert!(res.status().is_success(), "{label}: {}", res.status());
        let body = res.bytes().await.expect("body");
        let took = start.elapsed();
        bytes = body.len();
        if round > 0 {
            times.push(took);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {label:<40} median {:>7.1} ms   p95 {:>7.1} ms   ({bytes} bytes)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 95 / 100])
    );
}

async fn run(backend: &str, url: &str) {
    let cfg = config(url);
    let app = Application::builder(cfg).build().await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let store = app.store().clone();
    let stop = app.cancel_token();
    let join = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let start = Instant::now();
    seed(&store).await;
    println!(
        "{backend}: {PEOPLE} people, {AGENTS} agents ({} without a Teams user), seeded in {:.1} s",
        AGENTS / 10,
        start.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::new();
    for (label, path, bearer) in [
        ("API first page (100)", "/api/v1/users", true),
        ("API page 500 (100)", "/api/v1/users?page=500", true),
        (
            "API search \"person 04217\"",
            "/api/v1/users?query=person%2004217",
            true,
        ),
        ("API state=suspended", "/api/v1/users?state=suspended", true),
        (
            "API state=no_teams_user",
            "/api/v1/users?state=no_teams_user",
            true,
        ),
        ("API sort=state", "/api/v1/users?sort=state", true),
        (
            "API sort=last_change",
            "/api/v1/users?sort=last_change",
            true,
        ),
        ("team page, first page (100)", "/", false),
        ("team page, sort=last_change", "/?sort=last_change", false),
        (
            "team page, search \"person 04217\"",
            "/?query=person%2004217",
            false,
        ),
    ] {
        measure(&http, label, &format!("{base}{path}"), bearer).await;
    }
    stop.cancel();
    let _ = join.await;
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(
        "sqlite",
        &format!("sqlite://{}/console.db", dir.path().display()),
    )
    .await;
    if let Ok(base) = std::env::var("PRESENCE_BRIDGE_TEST_POSTGRES_URL") {
        let schema = ScratchSchema::create(&base, "console_bench").await;
        run("postgres", &schema.url).await;
        schema.drop().await;
    }
}
