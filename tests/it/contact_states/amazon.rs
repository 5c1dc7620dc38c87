//! Amazon Connect: agent event stream records read from a fake Kinesis endpoint
//! (`src/sim/kinesis.rs`), and GetCurrentUserData's `Contacts` when polling, drive Teams; a
//! voice contact's steps (with `recording_available` from the contact-record stream) are
//! stored once, in order, across a restart of the daemon.
//!
//! Records follow the agent event stream data model
//! (<https://docs.aws.amazon.com/connect/latest/adminguide/agent-event-stream-model.html>)
//! and the contact record data model
//! (<https://docs.aws.amazon.com/connect/latest/adminguide/ctr-data-model.html>); the Connect
//! REST-JSON endpoints follow the Amazon Connect API reference (ListUsers, DescribeUser,
//! ListAgentStatuses, GetCurrentUserData).

use std::sync::Arc;

use presence_bridge::sim::kinesis::{self, FakeKinesis};
use serde_json::json;

use super::*;
use crate::connectors_amazon_contacts::{Current, INSTANCE, agent_arn, spawn_connect, status_arn};

const STREAM: &str = "connect-agent-events";
const CTR: &str = "connect-contact-records";
pub const AGENT: &str = "user1";

/// One agent, Available, on no contact.
pub fn one_agent() -> Current {
    let c: Current = Arc::default();
    c.lock()
        .unwrap()
        .insert(AGENT.into(), ("st-available".into(), json!([])));
    c
}

fn connector(connect: &str, extra: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "ac"
kind = "amazon_connect"
region = "eu-west-2"
instance_id = "{INSTANCE}"
endpoint_url = "{connect}"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
{extra}
[connectors.limits]
requests_per_sec = 1000.0
"#
    )
}

pub fn kinesis_connector(connect: &str, fake: &FakeKinesis) -> String {
    connector(
        connect,
        &format!(
            r#"events = "kinesis"
[connectors.kinesis]
stream_name = "{STREAM}"
contact_records_stream_name = "{CTR}"
endpoint_url = "{}"
poll_interval_ms = 200
shard_refresh_secs = 1
initial_position = "trim_horizon"
"#,
            fake.url()
        ),
    )
}

fn contact(id: &str, state: &str) -> Value {
    json!({"ContactId": id, "Channel": "VOICE", "State": state, "InitiationMethod": "INBOUND",
           "StateStartTimestamp": chrono::Utc::now().to_rfc3339(),
           "Queue": {"ARN": "arn:aws:connect:queue/q1", "Name": "Sales"}})
}

fn snapshot(contacts: Value) -> Value {
    json!({"AgentStatus": {"ARN": status_arn("st-available"), "Name": "Available",
                           "StartTimestamp": chrono::Utc::now().to_rfc3339()},
           "Configuration": {"Username": AGENT}, "Contacts": contacts})
}

/// The agent's snapshot with contact `id` in `state`, or with no contact (`None`).
pub fn on(id: &str, state: Option<&str>) -> Value {
    snapshot(match state {
        Some(s) => json!([contact(id, s)]),
        None => json!([]),
    })
}

/// Writes one STATE_CHANGE record of the agent, as Connect writes it to the agent event
/// stream (partition key: the agent ARN).
pub fn step(fake: &FakeKinesis, event_id: &str, prev: Value, cur: Value) {
    let v = json!({"AgentARN": agent_arn(AGENT), "AWSAccountId": "123456789012",
        "EventId": event_id, "EventTimestamp": chrono::Utc::now().to_rfc3339(),
        "EventType": "STATE_CHANGE",
        "InstanceARN": format!("arn:aws:connect:eu-west-2:123456789012:instance/{INSTANCE}"),
        "PreviousAgentSnapshot": prev, "CurrentAgentSnapshot": cur, "Version": "2019-05-25"});
    fake.put_record(&agent_arn(AGENT), v.to_string().as_bytes());
}

/// Writes the contact's record (with its recording) to the contact-record stream.
pub fn contact_record(fake: &FakeKinesis, id: &str) {
    let ctr = json!({"ContactId": id, "Channel": "VOICE", "InitiationMethod": "INBOUND",
        "Agent": {"ARN": agent_arn(AGENT), "Username": AGENT},
        "Queue": {"ARN": "arn:aws:connect:queue/q1", "Name": "Sales"},
        "CustomerEndpoint": {"Address": "+441234567890", "Type": "TELEPHONE_NUMBER"},
        "DisconnectTimestamp": chrono::Utc::now().to_rfc3339(),
        "LastUpdateTimestamp": chrono::Utc::now().to_rfc3339(),
        "Recording": {"Location": format!("connect-bucket/recordings/{id}.wav"), "Status": "AVAILABLE", "Type": "AUDIO"}});
    fake.put_record_to(CTR, id, ctr.to_string().as_bytes());
}

pub async fn kinesis_fake() -> FakeKinesis {
    let fake = kinesis::spawn(STREAM, "eu-west-2", 1).await.unwrap();
    fake.add_stream(CTR, 1);
    fake
}

const FULL: [&str; 4] = ["offered", "connected", "ended", "recording_available"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_a_call_shows_in_teams_after_the_hold_down_and_acw_has_its_own_rule() {
    let graph = tenant(1).await;
    let fake = kinesis_fake().await;
    let connect = spawn_connect(one_agent()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(config(&graph, &dir, &kinesis_connector(&connect, &fake))).await;
    d.matched(1).await;
    let user = teams_id(1);

    // The call rings, then connects.
    let started = Instant::now();
    step(&fake, "e1", on("c-1", None), on("c-1", Some("CONNECTING")));
    step(
        &fake,
        "e2",
        on("c-1", Some("CONNECTING")),
        on("c-1", Some("CONNECTED")),
    );
    let (what, pair, seen) = teams_write(&graph, &user, 0).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InACall")
    );
    assert!(
        seen.duration_since(started) >= HOLD_DOWN,
        "written before the hold-down ended"
    );

    // The customer hangs up: the contact is ENDED in the snapshot, i.e. after-contact work.
    step(
        &fake,
        "e3",
        on("c-1", Some("CONNECTED")),
        on("c-1", Some("ENDED")),
    );
    let (what, pair, _) = teams_write(&graph, &user, 1).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InAConferenceCall")
    );

    // After-contact work done: the contact leaves the snapshot, the agent is idle and the
    // bridge's session is removed. Then the contact record, with its recording.
    step(&fake, "e4", on("c-1", Some("ENDED")), on("c-1", None));
    contact_record(&fake, "c-1");
    let (what, _, _) = teams_write(&graph, &user, 2).await;
    assert_eq!(what, "clearPresence", "{:?}", teams_writes(&graph, &user));

    until("the contact's recording stored", || async {
        d.contacts(AGENT)
            .await
            .first()
            .is_some_and(|(_, k)| k.len() >= 4)
    })
    .await;
    assert_eq!(
        d.contacts(AGENT).await,
        [("c-1".to_owned(), FULL.map(String::from).to_vec())]
    );
    let metrics = d.metrics().await;
    for kind in FULL {
        let line = format!("contact_events_total{{connector=\"ac\",kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line} not in metrics");
    }
    d.stop().await;
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_a_contact_survives_a_restart_mid_call() {
    let graph = tenant(1).await;
    let fake = kinesis_fake().await;
    let connect = spawn_connect(one_agent()).await;
    let dir = tempfile::tempdir().unwrap();
    let user = teams_id(1);
    let cfg = || config(&graph, &dir, &kinesis_connector(&connect, &fake));
    let d = Daemon::start(cfg()).await;
    d.matched(1).await;
    step(&fake, "e1", on("c-9", None), on("c-9", Some("CONNECTING")));
    step(
        &fake,
        "e2",
        on("c-9", Some("CONNECTING")),
        on("c-9", Some("CONNECTED")),
    );
    let (what, pair, _) = teams_write(&graph, &user, 0).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InACall")
    );
    until("the stream position saved", || async {
        d.store
            .get_cursors("ac")
            .await
            .unwrap()
            .iter()
            .any(|(k, v)| k == "shardId-000000000000" && v.starts_with("seq:"))
    })
    .await;
    d.stop().await;

    // Same SQLite file, same stream: the customer hangs up while the daemon is down.
    step(
        &fake,
        "e3",
        on("c-9", Some("CONNECTED")),
        on("c-9", Some("ENDED")),
    );
    let before = fake.iterator_requests().len();
    let d = Daemon::start(cfg()).await;
    until("the end read after the restart", || async {
        d.contacts(AGENT)
            .await
            .first()
            .is_some_and(|(_, k)| k.len() == 3)
    })
    .await;
    // Once the restarted daemon has read both sides (its first reconciliation), the agent's
    // after-contact work ends, and the contact record follows.
    until("the first reconciliation", || async {
        d.metrics().await.contains("engine_reconcile_runs_total 1")
    })
    .await;
    step(&fake, "e4", on("c-9", Some("ENDED")), on("c-9", None));
    contact_record(&fake, "c-9");
    until("the contact's recording stored", || async {
        d.contacts(AGENT)
            .await
            .first()
            .is_some_and(|(_, k)| k.len() >= 4)
    })
    .await;
    assert_eq!(
        d.contacts(AGENT).await,
        [("c-9".to_owned(), FULL.map(String::from).to_vec())]
    );
    // The agent stream resumed after its saved position. (The contact-record stream, which
    // had nothing to read before, starts from its trim horizon; its one shard has the same
    // id in the fake.)
    let resumed: Vec<String> = fake.iterator_requests()[before..]
        .iter()
        .filter(|(shard, _)| shard == "shardId-000000000000")
        .map(|(_, t)| t.clone())
        .collect();
    assert!(
        resumed.contains(&"AFTER_SEQUENCE_NUMBER".to_owned())
            && resumed.iter().filter(|t| *t == "TRIM_HORIZON").count() <= 1,
        "{resumed:?}"
    );
    // This daemon stored only the contact's last two steps, and was offered no repeat.
    let metrics = d.metrics().await;
    for (kind, n) in [("ended", 1), ("recording_available", 1)] {
        let line = format!("contact_events_total{{connector=\"ac\",kind=\"{kind}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in metrics");
    }
    for absent in [
        "kind=\"offered\"",
        "kind=\"connected\"",
        "outcome=\"contact_duplicate\"",
    ] {
        assert!(
            !metrics
                .lines()
                .any(|l| l.contains("connector=\"ac\"") && l.contains(absent)),
            "{absent} in metrics after the restart"
        );
    }
    // The Teams side follows: the session is removed once the agent is idle again.
    until_session_cleared(&graph, &user).await;
    d.stop().await;
    graph.shutdown().await;
}

/// The whole end of a contact happens while the daemon is down. The first reconciliation
/// after the restart reads the agent idle (with its activity) and is newer than the stream's
/// records of the downtime: the bridge's Teams presence is removed either way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_a_contact_that_ended_while_the_daemon_was_down_is_cleared_after_the_restart() {
    let graph = tenant(1).await;
    let fake = kinesis_fake().await;
    let connect = spawn_connect(one_agent()).await;
    let dir = tempfile::tempdir().unwrap();
    let user = teams_id(1);
    let cfg = || config(&graph, &dir, &kinesis_connector(&connect, &fake));
    let d = Daemon::start(cfg()).await;
    d.matched(1).await;
    step(&fake, "e1", on("c-7", None), on("c-7", Some("CONNECTED")));
    let (what, pair, _) = teams_write(&graph, &user, 0).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InACall")
    );
    d.stop().await;
    step(
        &fake,
        "e2",
        on("c-7", Some("CONNECTED")),
        on("c-7", Some("ENDED")),
    );
    step(&fake, "e3", on("c-7", Some("ENDED")), on("c-7", None));
    let d = Daemon::start(cfg()).await;
    until_session_cleared(&graph, &user).await;
    d.stop().await;
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_a_connected_voice_contact_shows_in_teams() {
    let graph = tenant(1).await;
    let current = one_agent();
    let connect = spawn_connect(current.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(config(
        &graph,
        &dir,
        &connector(&connect, "poll_interval_secs = 1"),
    ))
    .await;
    d.matched(1).await;
    let user = teams_id(1);

    // GetCurrentUserData now lists a connected voice contact (AgentContactState).
    let started = Instant::now();
    current.lock().unwrap().get_mut(AGENT).unwrap().1 = json!([{"ContactId": "c-5",
        "Channel": "VOICE", "InitiationMethod": "INBOUND", "AgentContactState": "CONNECTED",
        "StateStartTimestamp": 1_700_000_100, "Queue": {"Id": "q1", "Name": "Sales"}}]);
    let (what, pair, seen) = teams_write(&graph, &user, 0).await;
    assert_eq!(
        (what.as_str(), pair.as_str()),
        ("setPresence", "Busy/InACall")
    );
    assert!(
        seen.duration_since(started) >= HOLD_DOWN,
        "written before the hold-down ended"
    );

    // The contact is gone: the session is removed.
    current.lock().unwrap().get_mut(AGENT).unwrap().1 = json!([]);
    let (what, _, _) = teams_write(&graph, &user, 1).await;
    assert_eq!(what, "clearPresence", "{:?}", teams_writes(&graph, &user));
    d.stop().await;
    graph.shutdown().await;
}
