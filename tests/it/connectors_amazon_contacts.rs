//! Amazon Connect contact activity and contact events: GetCurrentUserData's `Contacts` when
//! polling, and the agent event stream read from a fake Kinesis endpoint (AWS JSON 1.1,
//! `src/sim/kinesis.rs`) with resharding and restart resume over a real SQLite store.
//!
//! Records follow the agent event stream data model
//! (<https://docs.aws.amazon.com/connect/latest/adminguide/agent-event-stream-model.html>);
//! contact states follow
//! <https://docs.aws.amazon.com/connect/latest/adminguide/about-contact-states.html>.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use presence_bridge::app::config::Config;
use presence_bridge::connectors::amazon_connect::AmazonConnectConnector;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::{
    Activity, Channel, ConnectorEvent, ContactActivity, ContactCenter, ContactEventKind,
};
use presence_bridge::sim::kinesis::{self, FakeKinesis};
use presence_bridge::store::{self, Store, config::StoreConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::eventually;

pub(crate) const INSTANCE: &str = "11111111-2222-3333-4444-555555555555";
const STREAM: &str = "connect-agent-events";
const STATUSES: &[(&str, &str, &str)] = &[
    ("st-available", "Available", "ROUTABLE"),
    ("st-teams", "Busy (Teams)", "CUSTOM"),
    ("st-offline", "Offline", "OFFLINE"),
];
const WAIT: Duration = Duration::from_secs(15);

pub(crate) fn status_arn(id: &str) -> String {
    format!("arn:aws:connect:eu-west-2:123456789012:instance/{INSTANCE}/agent-state/{id}")
}

pub(crate) fn agent_arn(id: &str) -> String {
    format!("arn:aws:connect:eu-west-2:123456789012:instance/{INSTANCE}/agent/{id}")
}

/// GetCurrentUserData's `UserDataList` entries by user id: (status id, contacts).
pub(crate) type Current = Arc<Mutex<BTreeMap<String, (String, Value)>>>;

/// The Connect REST-JSON endpoints the connector reads (ListUsers, DescribeUser,
/// ListAgentStatuses, GetCurrentUserData), shaped as in the Amazon Connect API reference. A
/// user `userN` has the e-mail `userN@example.com`. Shared with the daemon-level tests.
pub(crate) async fn spawn_connect(current: Current) -> String {
    async fn users(State(c): State<Current>, Path(_i): Path<String>) -> Json<Value> {
        let list: Vec<Value> = c
            .lock()
            .unwrap()
            .keys()
            .map(|id| json!({"Id": id, "Arn": agent_arn(id), "Username": id}))
            .collect();
        Json(json!({"UserSummaryList": list}))
    }
    async fn describe(Path((_i, id)): Path<(String, String)>) -> Json<Value> {
        Json(
            json!({"User": {"Id": id, "Username": id, "IdentityInfo": {"Email": format!("{id}@example.com")}}}),
        )
    }
    async fn statuses(Path(_i): Path<String>) -> Json<Value> {
        let list: Vec<Value> = STATUSES
            .iter()
            .map(
                |(id, name, ty)| json!({"Id": id, "Arn": status_arn(id), "Name": name, "Type": ty}),
            )
            .collect();
        Json(json!({"AgentStatusSummaryList": list}))
    }
    async fn userdata(
        State(c): State<Current>,
        Path(_i): Path<String>,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        let agents: Vec<String> =
            serde_json::from_value(body["Filters"]["Agents"].clone()).unwrap_or_default();
        let c = c.lock().unwrap();
        let list: Vec<Value> = agents
            .iter()
            .filter_map(|a| {
                let (st, contacts) = c.get(a)?;
                let name = STATUSES.iter().find(|x| x.0 == st)?.1;
                Some(json!({"User": {"Id": a, "Arn": agent_arn(a)},
                    "Status": {"StatusArn": status_arn(st), "StatusName": name, "StatusStartTimestamp": 1_700_000_000},
                    "Contacts": contacts}))
            })
            .collect();
        Json(json!({"UserDataList": list}))
    }
    let app = Router::new()
        .route("/users-summary/{i}", get(users))
        .route("/users/{i}/{id}", get(describe))
        .route("/agent-status/{i}", get(statuses))
        .route("/metrics/userdata/{i}", post(userdata))
        .with_state(current);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn connector(
    connect: &str,
    extra: &str,
    store: Option<Arc<dyn Store>>,
) -> Arc<AmazonConnectConnector> {
    let text = format!(
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
    );
    let mut cfg =
        Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    let ConnectorConfig::AmazonConnect(a) = cfg.connectors[0].clone() else {
        panic!("amazon_connect")
    };
    Arc::new(AmazonConnectConnector::new(a, store).await)
}

fn kinesis_extra(fake: &FakeKinesis, initial: &str) -> String {
    format!(
        r#"events = "kinesis"
[connectors.kinesis]
stream_name = "{STREAM}"
endpoint_url = "{}"
poll_interval_ms = 200
shard_refresh_secs = 1
initial_position = "{initial}"
"#,
        fake.url()
    )
}

fn contact(id: &str, state: &str, channel: &str) -> Value {
    json!({"ContactId": id, "Channel": channel, "State": state, "InitiationMethod": "INBOUND",
           "StateStartTimestamp": chrono::Utc::now().to_rfc3339(),
           "Queue": {"ARN": "arn:aws:connect:queue/q1", "Name": "Sales"}})
}

fn snapshot(status: &str, contacts: Value) -> Value {
    let name = STATUSES.iter().find(|x| x.0 == status).unwrap().1;
    json!({"AgentStatus": {"ARN": status_arn(status), "Name": name,
                           "StartTimestamp": chrono::Utc::now().to_rfc3339()},
           "Configuration": {"Username": "agent"}, "Contacts": contacts})
}

/// One agent event record as Connect writes it to the stream.
fn record(agent: &str, event_id: &str, kind: &str, prev: Option<Value>, cur: Value) -> Vec<u8> {
    let mut v = json!({"AgentARN": agent_arn(agent), "AWSAccountId": "123456789012",
        "EventId": event_id, "EventTimestamp": chrono::Utc::now().to_rfc3339(),
        "EventType": kind, "InstanceARN": format!("arn:aws:connect:eu-west-2:123456789012:instance/{INSTANCE}"),
        "CurrentAgentSnapshot": cur, "Version": "2019-05-25"});
    if let Some(p) = prev {
        v["PreviousAgentSnapshot"] = p;
    }
    v.to_string().into_bytes()
}

fn put(fake: &FakeKinesis, agent: &str, data: Vec<u8>) -> (String, String) {
    fake.put_record(&agent_arn(agent), &data)
}

/// A status flip of `agent` (so every record makes exactly one agent event), id `e`.
fn flip(fake: &FakeKinesis, agent: &str, n: u32) -> (String, String) {
    let (a, b) = if n.is_multiple_of(2) {
        ("st-available", "st-teams")
    } else {
        ("st-teams", "st-available")
    };
    let id = format!("{agent}-{n}");
    put(
        fake,
        agent,
        record(
            agent,
            &id,
            "STATE_CHANGE",
            Some(snapshot(a, json!([]))),
            snapshot(b, json!([])),
        ),
    )
}

/// A running event source; the test stands in for the runtime's ingest loop.
struct Running {
    rx: mpsc::Receiver<ConnectorEvent>,
    connector: Arc<AmazonConnectConnector>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

fn run(c: Arc<AmazonConnectConnector>) -> Running {
    let (tx, rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let tok = cancel.clone();
    let connector = c.clone();
    let task = tokio::spawn(async move { c.run_events(tx, tok).await.expect("event source") });
    Running {
        rx,
        connector,
        cancel,
        task,
    }
}

impl Running {
    /// The next event, reported stored at once.
    async fn next(&mut self) -> ConnectorEvent {
        let e = self.take().await;
        self.connector.events_stored(1);
        e
    }

    /// The next event, taken from the channel but not (yet) reported stored.
    async fn take(&mut self) -> ConnectorEvent {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("an event in time")
            .expect("source open")
    }

    async fn next_agent_id(&mut self) -> String {
        let e = self.next().await;
        e.as_agent()
            .expect("an agent event")
            .event_id
            .clone()
            .unwrap()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let cfg = StoreConfig {
        url: format!("sqlite://{}/store.db", dir.path().display()).into(),
        ..StoreConfig::default()
    };
    store::open(&cfg).await.unwrap()
}

#[tokio::test]
async fn polling_reads_contacts_as_activity() {
    let current: Current = Arc::default();
    {
        let mut c = current.lock().unwrap();
        let one =
            |s: &str, ch: &str| json!([{"ContactId": "c", "Channel": ch, "AgentContactState": s}]);
        c.insert(
            "u1".into(),
            ("st-available".into(), one("CONNECTED", "VOICE")),
        );
        c.insert(
            "u2".into(),
            ("st-available".into(), one("CONNECTED_ONHOLD", "VOICE")),
        );
        c.insert("u3".into(), ("st-available".into(), one("ENDED", "CHAT")));
        c.insert(
            "u4".into(),
            ("st-available".into(), one("CONNECTING", "VOICE")),
        );
        c.insert("u5".into(), ("st-available".into(), json!([])));
        c.insert("u6".into(), ("st-offline".into(), json!([])));
        c.insert("u7".into(), ("st-available".into(), one("MISSED", "VOICE")));
    }
    let url = spawn_connect(current.clone()).await;
    let c = connector(&url, "poll_interval_secs = 1", None).await;
    c.status_catalog().await.unwrap();
    let ids: Vec<String> = (1..=7).map(|i| format!("u{i}")).collect();
    let got: Vec<Option<Activity>> = c
        .current_statuses(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.activity)
        .collect();
    let a = |activity, channel| Some(Activity { activity, channel });
    use ContactActivity::*;
    assert_eq!(
        got,
        vec![
            a(OnContact, Some(Channel::Voice)),
            a(OnContact, Some(Channel::Voice)),
            a(AfterContactWork, Some(Channel::Chat)),
            a(Offered, Some(Channel::Voice)),
            a(Idle, None),
            a(LoggedOut, None),
            a(Idle, None),
        ]
    );

    // the polling event source carries the activity too
    let mut r = run(c.clone());
    let mut seen = BTreeMap::new();
    for _ in 0..7 {
        let e = r.next().await;
        let e = e.as_agent().unwrap();
        seen.insert(e.agent_id.clone(), e.activity.unwrap().activity);
    }
    assert_eq!(seen["u1"], OnContact);
    assert_eq!(seen["u3"], AfterContactWork);
    assert_eq!(seen["u6"], LoggedOut);
    r.stop().await;
}

#[tokio::test]
async fn kinesis_records_make_agent_activity_and_contact_events_in_order() {
    let fake = kinesis::spawn(STREAM, "eu-west-2", 1).await.unwrap();
    let url = spawn_connect(Arc::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = connector(
        &url,
        &kinesis_extra(&fake, "trim_horizon"),
        Some(sqlite(&dir).await),
    )
    .await;

    let idle = || snapshot("st-available", json!([]));
    let with = |state: &str| snapshot("st-available", json!([contact("c-1", state, "VOICE")]));
    let mut hold_cfg = with("CONNECTED_ONHOLD");
    hold_cfg["Configuration"]["Username"] = json!("renamed");
    let steps: Vec<(&str, Option<Value>, Value)> = vec![
        ("LOGIN", None, idle()),
        ("HEART_BEAT", Some(idle()), idle()),
        ("STATE_CHANGE", Some(idle()), with("CONNECTING")),
        ("STATE_CHANGE", Some(with("CONNECTING")), with("CONNECTED")),
        // on hold, then a configuration change while on hold: noise
        (
            "STATE_CHANGE",
            Some(with("CONNECTED")),
            with("CONNECTED_ONHOLD"),
        ),
        ("STATE_CHANGE", Some(with("CONNECTED_ONHOLD")), hold_cfg),
        (
            "STATE_CHANGE",
            Some(with("CONNECTED_ONHOLD")),
            with("ENDED"),
        ),
        ("HEART_BEAT", Some(with("ENDED")), with("ENDED")),
        ("STATE_CHANGE", Some(with("ENDED")), idle()),
        ("LOGOUT", None, snapshot("st-offline", json!([]))),
    ];
    for (i, (kind, prev, cur)) in steps.into_iter().enumerate() {
        put(&fake, "u1", record("u1", &format!("e{i}"), kind, prev, cur));
    }
    // A malformed record is skipped, not fatal.
    fake.put_record(&agent_arn("u1"), b"not json");
    put(&fake, "u1", record("u1", "e-last", "LOGIN", None, idle()));

    let mut r = run(c);
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(match r.next().await {
            ConnectorEvent::Agent(a) => {
                assert_eq!(a.agent_id, "u1");
                format!(
                    "agent {} {}{}",
                    a.event_id.unwrap(),
                    a.activity.unwrap().activity.as_str(),
                    a.activity
                        .unwrap()
                        .channel
                        .map(|c| format!("/{}", c.as_str()))
                        .unwrap_or_default()
                )
            }
            ConnectorEvent::Contact(c) => {
                assert_eq!(c.contact_id, "c-1");
                assert_eq!(c.agent_id.as_deref(), Some("u1"));
                assert_eq!(c.channel, Some(Channel::Voice));
                assert_eq!(c.queue.as_deref(), Some("Sales"));
                assert_eq!(c.attributes["InitiationMethod"], "INBOUND");
                format!("contact {} {}", c.event_id.unwrap(), c.kind.as_str())
            }
        });
    }
    assert_eq!(
        got,
        [
            "agent e0 idle",
            "agent e2 offered/voice",
            "contact e2/c-1/offered offered",
            "agent e3 on_contact/voice",
            "contact e3/c-1/connected connected",
            "agent e6 after_contact_work/voice",
            "contact e6/c-1/ended ended",
            "agent e8 idle",
            "agent e9 logged_out",
            "agent e-last idle",
        ]
    );
    let kinds: Vec<ContactEventKind> = got
        .iter()
        .filter(|g| g.starts_with("contact"))
        .map(|g| match g.rsplit(' ').next().unwrap() {
            "offered" => ContactEventKind::Offered,
            "connected" => ContactEventKind::Connected,
            _ => ContactEventKind::Ended,
        })
        .collect();
    assert!(kinds.is_sorted(), "per-contact order kept");
    assert!(
        r.rx.try_recv().is_err(),
        "heartbeats and noise made nothing"
    );
    r.stop().await;
}

#[tokio::test]
async fn resharding_reads_every_record_once_parent_before_children() {
    let fake = kinesis::spawn(STREAM, "eu-west-2", 1).await.unwrap();
    fake.set_list_page(1);
    let url = spawn_connect(Arc::default()).await;
    let agents = ["a1", "a2", "a3", "a4", "a5", "a6"];
    // Before the bridge starts: records in the parent, a split, more records in the
    // children. Read from the start, each agent's records must come in order.
    let mut n = 0;
    for _ in 0..3 {
        for a in agents {
            flip(&fake, a, n);
        }
        n += 1;
    }
    let (c1, c2) = fake.split_shard("shardId-000000000000");
    let mut shards_used = std::collections::BTreeSet::new();
    for _ in 0..3 {
        for a in agents {
            shards_used.insert(flip(&fake, a, n).1);
        }
        n += 1;
    }
    assert_eq!(
        shards_used,
        [c1.clone(), c2.clone()].into(),
        "both children written"
    );

    let dir = tempfile::tempdir().unwrap();
    // A few records per read, so the parent takes several rounds.
    let extra = kinesis_extra(&fake, "trim_horizon") + "max_records = 2\n";
    let c = connector(&url, &extra, Some(sqlite(&dir).await)).await;
    let mut r = run(c);
    let mut per_agent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..agents.len() * 6 {
        let id = r.next_agent_id().await;
        per_agent
            .entry(id.split('-').next().unwrap().to_owned())
            .or_default()
            .push(id);
    }
    // While running: a child splits again; its children are found and read after it.
    let (g1, _g2) = fake.split_shard(&c1);
    for _ in 0..2 {
        for a in agents {
            flip(&fake, a, n);
        }
        n += 1;
    }
    for _ in 0..agents.len() * 2 {
        let id = r.next_agent_id().await;
        per_agent
            .entry(id.split('-').next().unwrap().to_owned())
            .or_default()
            .push(id);
    }
    for a in agents {
        let want: Vec<String> = (0..n).map(|i| format!("{a}-{i}")).collect();
        assert_eq!(per_agent[a], want, "agent {a}: every record once, in order");
    }
    assert!(r.rx.try_recv().is_err(), "nothing read twice");
    // children were opened only after their parent was read to its end
    let requests = fake.iterator_requests();
    let first = |s: &str| requests.iter().position(|(id, _)| id == s).unwrap();
    assert!(first("shardId-000000000000") < first(&c1));
    assert!(first(&c1) < first(&g1));
    assert!(
        fake.calls().iter().filter(|c| *c == "ListShards").count() >= 3,
        "ListShards paged with NextToken"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_restart_resumes_after_the_last_processed_record() {
    let fake = kinesis::spawn(STREAM, "eu-west-2", 2).await.unwrap();
    let url = spawn_connect(Arc::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let extra = kinesis_extra(&fake, "latest");

    // Before the first start: not read ("latest").
    flip(&fake, "old", 0);
    let mut r = run(connector(&url, &extra, Some(store.clone())).await);
    eventually("start positions saved", WAIT, || {
        let s = store.clone();
        async move { s.get_cursors("ac").await.unwrap().len() == 2 }
    })
    .await;
    let mut last = BTreeMap::new();
    for n in 0..4 {
        for a in ["a1", "a2", "a3"] {
            let (seq, shard) = flip(&fake, a, n);
            last.insert(shard, seq);
        }
    }
    let mut first_run = Vec::new();
    for _ in 0..6 {
        first_run.push(r.next_agent_id().await);
    }
    // An expired iterator is replaced from the saved position: nothing lost or repeated.
    fake.expire_iterators();
    for _ in 0..6 {
        first_run.push(r.next_agent_id().await);
    }
    eventually("positions of the processed records saved", WAIT, || {
        let (s, last) = (store.clone(), last.clone());
        async move {
            let saved: BTreeMap<String, String> =
                s.get_cursors("ac").await.unwrap().into_iter().collect();
            last.iter()
                .all(|(shard, seq)| saved.get(shard) == Some(&format!("seq:{seq}")))
        }
    })
    .await;
    r.stop().await;

    for n in 4..6 {
        for a in ["a1", "a2", "a3"] {
            flip(&fake, a, n);
        }
    }
    let before = fake.iterator_requests().len();
    let mut r = run(connector(&url, &extra, Some(store.clone())).await);
    let mut second_run = Vec::new();
    for _ in 0..6 {
        second_run.push(r.next_agent_id().await);
    }
    assert!(
        fake.iterator_requests()[before..]
            .iter()
            .all(|(_, t)| t == "AFTER_SEQUENCE_NUMBER"),
        "resumed after the saved sequence numbers"
    );
    for a in ["a1", "a2", "a3"] {
        let of = |run: &[String]| -> Vec<String> {
            run.iter()
                .filter(|id| id.starts_with(&format!("{a}-")))
                .cloned()
                .collect()
        };
        assert_eq!(
            of(&first_run),
            (0..4).map(|i| format!("{a}-{i}")).collect::<Vec<_>>()
        );
        assert_eq!(
            of(&second_run),
            (4..6).map(|i| format!("{a}-{i}")).collect::<Vec<_>>()
        );
    }
    assert!(
        !first_run.iter().any(|id| id.starts_with("old-")),
        "latest: older records skipped"
    );
    assert!(r.rx.try_recv().is_err(), "no duplicates");
    r.stop().await;
}

#[tokio::test]
async fn a_position_is_saved_only_once_the_events_read_before_it_are_stored() {
    let fake = kinesis::spawn(STREAM, "eu-west-2", 1).await.unwrap();
    let url = spawn_connect(Arc::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let extra = kinesis_extra(&fake, "trim_horizon");
    let shard_cursor = || {
        let s = store.clone();
        async move {
            s.get_cursors("ac")
                .await
                .unwrap()
                .into_iter()
                .find(|(k, _)| k == "shardId-000000000000")
                .map(|(_, v)| v)
        }
    };
    let mut last = String::new();
    for n in 0..3 {
        last = flip(&fake, "a1", n).0;
    }

    // The runtime takes the three events from the channel, but the process stops before
    // its inbox transaction commits: they are never reported stored.
    let mut r = run(connector(&url, &extra, Some(store.clone())).await);
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(r.take().await.as_agent().unwrap().event_id.clone().unwrap());
    }
    // (Before positions waited for the store, the position moved as soon as the channel
    // was empty: well within this second.)
    let saved = tokio::time::timeout(Duration::from_secs(1), async {
        while shard_cursor().await.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        saved.is_err(),
        "position saved before its events were stored: {:?}",
        shard_cursor().await
    );
    r.stop().await;

    // After the restart the same records are read again (the ingest path drops repeats by
    // their event ids); once they are stored, the position follows.
    let mut r = run(connector(&url, &extra, Some(store.clone())).await);
    let mut again = Vec::new();
    for _ in 0..3 {
        again.push(r.next_agent_id().await);
    }
    assert_eq!(again, taken, "the unstored batch read again");
    eventually("the position saved once stored", WAIT, || {
        let (cursor, want) = (shard_cursor(), format!("seq:{last}"));
        async move { cursor.await == Some(want) }
    })
    .await;
    r.stop().await;

    // And a third start reads only what is new.
    flip(&fake, "a1", 3);
    let mut r = run(connector(&url, &extra, Some(store.clone())).await);
    assert_eq!(r.next_agent_id().await, "a1-3");
    assert!(r.rx.try_recv().is_err(), "nothing read twice");
    r.stop().await;
}

#[tokio::test]
async fn contact_records_add_recording_available_after_the_agent_stream_ended_it() {
    const CTR: &str = "connect-contact-records";
    let fake = kinesis::spawn(STREAM, "eu-west-2", 1).await.unwrap();
    fake.add_stream(CTR, 1);
    let url = spawn_connect(Arc::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    // One record per read of the agent stream: it is behind for several rounds, while the
    // contact record waits in its own stream from the start.
    let extra = kinesis_extra(&fake, "trim_horizon")
        + &format!("max_records = 1\ncontact_records_stream_name = \"{CTR}\"\n");
    let with = |state: &str| snapshot("st-available", json!([contact("c-9", state, "VOICE")]));
    let idle = || snapshot("st-available", json!([]));
    let steps = [
        (Some(idle()), with("CONNECTING")),
        (Some(with("CONNECTING")), with("CONNECTED")),
        (Some(with("CONNECTED")), with("ENDED")),
        (Some(with("ENDED")), idle()),
    ];
    for (i, (prev, cur)) in steps.into_iter().enumerate() {
        put(
            &fake,
            "u1",
            record("u1", &format!("e{i}"), "STATE_CHANGE", prev, cur),
        );
    }
    // The contact record (ctr-data-model.html), delivered twice as Connect may.
    let ctr = json!({"ContactId": "c-9", "Channel": "VOICE", "InitiationMethod": "INBOUND",
        "Agent": {"ARN": agent_arn("u1"), "Username": "u1"},
        "Queue": {"ARN": "arn:aws:connect:queue/q1", "Name": "Sales"},
        "CustomerEndpoint": {"Address": "+441234567890", "Type": "TELEPHONE_NUMBER"},
        "DisconnectTimestamp": chrono::Utc::now().to_rfc3339(),
        "LastUpdateTimestamp": chrono::Utc::now().to_rfc3339(),
        "Attributes": {"case": "42"},
        "Recording": {"Location": "connect-bucket/recordings/c-9.wav", "Status": "AVAILABLE", "Type": "AUDIO"}});
    fake.put_record_to(CTR, "c-9", ctr.to_string().as_bytes());
    fake.put_record_to(CTR, "c-9", ctr.to_string().as_bytes());

    let mut r = run(connector(&url, &extra, Some(store.clone())).await);
    let mut kinds = Vec::new();
    let mut recordings = Vec::new();
    while recordings.len() < 2 {
        if let ConnectorEvent::Contact(c) = r.next().await {
            kinds.push(c.kind);
            if c.kind == ContactEventKind::RecordingAvailable {
                assert_eq!(c.contact_id, "c-9");
                assert_eq!(c.agent_id.as_deref(), Some("u1"));
                assert_eq!(c.customer_endpoint.as_deref(), Some("+441234567890"));
                assert_eq!(
                    c.recording_url.as_deref(),
                    Some("connect-bucket/recordings/c-9.wav")
                );
                assert_eq!(c.attributes["Attributes"]["case"], "42");
                recordings.push(c.event_id.unwrap());
            }
        }
    }
    use ContactEventKind::*;
    assert_eq!(
        kinds,
        [
            Offered,
            Connected,
            Ended,
            RecordingAvailable,
            RecordingAvailable
        ],
        "a full voice contact, in order"
    );
    assert_eq!(
        recordings[0], recordings[1],
        "a redelivered record has the same event id"
    );
    // Both streams keep their positions apart.
    eventually("both streams' positions saved", WAIT, || {
        let s = store.clone();
        async move {
            let keys: Vec<String> = s
                .get_cursors("ac")
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.0)
                .collect();
            keys.contains(&"shardId-000000000000".to_owned())
                && keys.contains(&"ctr/shardId-000000000000".to_owned())
        }
    })
    .await;
    r.stop().await;
}

#[test]
fn kinesis_settings_are_checked() {
    let check = |extra: &str| {
        let text = format!(
            "[[connectors]]\nname = \"ac\"\nkind = \"amazon_connect\"\nregion = \"eu-west-2\"\ninstance_id = \"i\"\n{extra}"
        );
        let mut cfg =
            Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
        cfg.resolve_and_validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(check("events = \"kinesis\"\n").contains("connectors[0].kinesis"));
    let bad = check(
        "events = \"kinesis\"\n[connectors.kinesis]\npoll_interval_ms = 100\nmax_records = 0\nshard_refresh_secs = 0\n",
    );
    for key in [
        "connectors[0].kinesis.stream_name",
        "connectors[0].kinesis.poll_interval_ms",
        "connectors[0].kinesis.max_records",
        "connectors[0].kinesis.shard_refresh_secs",
    ] {
        assert!(bad.contains(key), "{key} in {bad}");
    }
    assert_eq!(
        check(
            "events = \"kinesis\"\n[connectors.kinesis]\nstream_arn = \"arn:aws:kinesis:eu-west-2:1:stream/s\"\n"
        ),
        ""
    );
    let unknown = "[[connectors]]\nname = \"ac\"\nkind = \"amazon_connect\"\nregion = \"r\"\ninstance_id = \"i\"\nevents = \"pubsub\"\n";
    assert!(
        Config::from_toml_str_with_env(unknown, Vec::<(String, String)>::new()).is_err(),
        "unknown modes are refused"
    );
}
