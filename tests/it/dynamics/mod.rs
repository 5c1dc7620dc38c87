//! The contact lifecycle written to a simulated Dataverse (`src/sim/dataverse.rs`) by the whole
//! daemon: a voice contact from each connector kind that reports contacts creates one
//! `phonecalls` record and updates it twice with the captured `activityid`; the screen-pop link
//! is served while the agent is on the contact; a 429 is waited out; a restart between steps
//! resumes without a second record; `check-config` names a template error by its key.

use std::time::Duration;

use presence_bridge::sim::dataverse::{self, SimDataverse};
use presence_bridge::sim::graph::SimGraphHandle;
use serde_json::Value;

use crate::contact_states::{Daemon, TOKEN, config, tenant, until};

mod amazon;
mod check;
mod genesys;
mod http;

/// The phone-call recipe against `sim` (environment "crm").
pub fn environment(sim: &SimDataverse) -> String {
    sim.environment_toml("crm")
}

/// The daemon with the generic HTTP connector of the contact-state tests and `sim`.
pub async fn start(
    graph: &SimGraphHandle,
    sim: &SimDataverse,
    dir: &tempfile::TempDir,
    connector: &str,
) -> Daemon {
    Daemon::start(config(
        graph,
        dir,
        &format!("{connector}{}", environment(sim)),
    ))
    .await
}

/// `(method, path, status)` of every request the simulator answered.
pub fn requests(sim: &SimDataverse) -> Vec<(String, String, u16)> {
    sim.requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect()
}

/// The one phone call's id, once it exists.
pub async fn phonecall(sim: &SimDataverse) -> String {
    until("the phone call record", || async {
        !sim.records("phonecalls").is_empty()
    })
    .await;
    let records = sim.records("phonecalls");
    assert_eq!(records.len(), 1, "{records:?}");
    records.keys().next().unwrap().clone()
}

/// Waits until the phone call has `field`.
pub async fn until_field(sim: &SimDataverse, field: &str) -> Value {
    until(&format!("the phone call's {field}"), || async {
        sim.records("phonecalls")
            .values()
            .any(|r| r.contains_key(field))
    })
    .await;
    sim.records("phonecalls").values().next().unwrap()[field].clone()
}

/// `GET /api/v1/agents/{agent}/screen-pop`: status and body.
pub async fn screen_pop(d: &Daemon, agent: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/agents/{agent}/screen-pop", d.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until the agent's screen pop links to the record `id`; returns the link.
pub async fn until_screen_pop(d: &Daemon, sim: &SimDataverse, agent: &str, id: &str) -> String {
    let want = format!(
        "{}main.aspx?appid=app-1&pagetype=entityrecord&etn=phonecall&id={id}",
        sim.url
    );
    until("the screen-pop link", || async {
        let (status, body) = screen_pop(d, agent).await;
        status == 200 && body["links"][0]["url"] == want.as_str()
    })
    .await;
    want
}

/// The lifecycle's requests: one create, then two updates of the created record, each update
/// conditional on the record existing.
pub fn assert_one_record_updated_twice(sim: &SimDataverse, id: &str) {
    let ok: Vec<(String, String, u16)> = requests(sim)
        .into_iter()
        .filter(|(_, _, s)| *s < 300)
        .collect();
    let record = format!("phonecalls({id})");
    assert_eq!(
        ok,
        [
            ("POST".to_owned(), "phonecalls".to_owned(), 201),
            ("PATCH".to_owned(), record.clone(), 204),
            ("PATCH".to_owned(), record, 204),
        ],
        "{:?}",
        requests(sim)
    );
    for r in sim.requests().iter().filter(|r| r.method == "PATCH") {
        assert_eq!(r.headers.get("if-match").map(String::as_str), Some("*"));
    }
    let rec = &sim.records("phonecalls")[id];
    assert_eq!(rec["activityid"], id);
    assert_eq!(rec["category"], "contact center");
    assert!(rec["actualstart"].is_string() && rec["actualend"].is_string());
    assert!(
        rec["description"]
            .as_str()
            .unwrap()
            .starts_with("Recording: ")
    );
}

/// A simulated Dataverse on a port that stays the same across a daemon restart.
pub async fn sim() -> SimDataverse {
    dataverse::spawn().await.expect("simulated Dataverse")
}

/// Waits for a condition for up to `secs` (longer than [`until`] allows, for waits a test
/// causes on purpose).
pub async fn within<F, Fut>(what: &str, secs: u64, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    crate::helpers::eventually(what, Duration::from_secs(secs), check).await
}

/// The elapsed time between two requests of the log.
pub fn gap(sim: &SimDataverse, from: usize, to: usize) -> Duration {
    let log = sim.requests();
    log[to].at.duration_since(log[from].at)
}
