//! Dynamics 365 step benchmarks (printed figures, no assertions):
//! - step requests rendered per second (the phone-call create: context, path, headers, JSON
//!   body), the CPU cost of each step before it is sent;
//! - step jobs made per second from contact-event batches (what the ingest path adds per
//!   stored contact event).
//!
//! Run: `cargo bench --bench dynamics`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use presence_bridge::connectors::{Channel, ContactEvent, ContactEventKind};
use presence_bridge::integrations::dynamics::config::DynamicsConfig;
use presence_bridge::integrations::dynamics::template::{Captured, context, render_step};
use presence_bridge::integrations::dynamics::{StepName, follow};

const ENVIRONMENT: &str = r#"
name = "crm"
url = "https://contoso.crm.dynamics.com"
tenant_id = "tenant"
client_id = "client"
client_secret = "secret"

[steps.created]
path = "phonecalls"
query = "$select=activityid"
headers = { Prefer = "return=representation" }
body = '{"activityid": {{ contact.record_id | tojson }}, "subject": {{ ("Call from " ~ contact.customer_endpoint) | tojson }}, "phonenumber": {{ contact.customer_endpoint | tojson }}, "directioncode": false, "actualstart": {{ contact.at | tojson }}}'
captures = [{ name = "activityid", json_pointer = "/activityid" }]

[steps.ended]
method = "PATCH"
path = "phonecalls({{ steps.created.activityid }})"
headers = { "If-Match" = "*" }
body = '{"category": "contact center", "actualend": {{ contact.at | tojson }}}'
"#;

fn event(i: usize, kind: ContactEventKind) -> ContactEvent {
    ContactEvent {
        contact_id: format!("call-{i}"),
        kind,
        at: chrono::Utc::now(),
        channel: Some(Channel::Voice),
        agent_id: Some(format!("agent-{}", i % 700)),
        queue: Some("sales".into()),
        customer_endpoint: Some(format!("+1555{i:07}")),
        recording_url: None,
        event_id: Some(format!("ev-{i}")),
        attributes: Default::default(),
    }
}

fn main() {
    let mut env: DynamicsConfig = toml::from_str(ENVIRONMENT).expect("environment parses");
    env.steps.recording_available = None;
    let step = env
        .steps
        .get(StepName::Created)
        .expect("created step")
        .clone();

    let n = 20_000;
    let captured = Captured::new();
    let start = Instant::now();
    for i in 0..n {
        let e = event(i, ContactEventKind::Offered);
        let ctx = context(&env, "cc", &e, &captured);
        black_box(render_step(&env, &step, &ctx).expect("renders"));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "render: {n} create requests in {secs:.3} s = {:.0} per second ({:.1} µs each)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );

    let envs = vec![Arc::new(env)];
    let batch: Vec<ContactEvent> = (0..1000)
        .map(|i| event(i, ContactEventKind::Ended))
        .collect();
    let rounds = 50;
    let start = Instant::now();
    let mut jobs = 0;
    for _ in 0..rounds {
        jobs += black_box(follow::jobs(&envs, "cc", &batch)).len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "follow: {} contact events -> {jobs} step jobs in {secs:.3} s = {:.0} events per second",
        rounds * batch.len(),
        (rounds * batch.len()) as f64 / secs
    );
}
