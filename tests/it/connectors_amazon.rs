//! The Amazon Connect connector (aws-sdk-connect) against a small fake of Connect's REST-JSON
//! endpoints, reached through `endpoint_url`, over loopback.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use presence_bridge::app::config::Config;
use presence_bridge::connectors::amazon_connect::AmazonConnectConnector;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::{
    AgentEvent, ConnectorError, ConnectorEvent, ContactCenter, StatusKind,
};
use presence_bridge::model::health::HealthState;
use presence_bridge::model::{CcStatus, Source};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const INSTANCE: &str = "11111111-2222-3333-4444-555555555555";
const STATUSES: &[(&str, &str, &str)] = &[
    ("st-available", "Available", "ROUTABLE"),
    ("st-teams", "Busy (Teams)", "CUSTOM"),
    ("st-offline", "Offline", "OFFLINE"),
];

fn arn(id: &str) -> String {
    format!("arn:aws:connect:eu-west-2:123456789012:instance/{INSTANCE}/agent-state/{id}")
}

#[derive(Default)]
pub(crate) struct Fake {
    users: BTreeMap<String, String>,
    current: BTreeMap<String, (String, i64)>,
    puts: Vec<(String, Value)>,
    describes: usize,
    userdata_batches: Vec<usize>,
    failures: Vec<(u16, &'static str)>,
}

pub(crate) type Shared = Arc<Mutex<Fake>>;

fn fail(s: &mut Fake) -> Option<Response> {
    if s.failures.is_empty() {
        return None;
    }
    let (status, code) = s.failures.remove(0);
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({"message": "injected"})),
    )
        .into_response();
    r.headers_mut()
        .insert("x-amzn-errortype", code.parse().unwrap());
    Some(r)
}

#[derive(serde::Deserialize)]
struct PageQ {
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
}

async fn list_users(
    State(s): State<Shared>,
    Path(_i): Path<String>,
    Query(q): Query<PageQ>,
) -> Response {
    let mut s = s.lock().unwrap();
    if let Some(r) = fail(&mut s) {
        return r;
    }
    // two pages of at most 2 users, to exercise NextToken
    let all: Vec<&String> = s.users.keys().collect();
    let start: usize = q.next_token.as_deref().map_or(0, |t| t.parse().unwrap());
    let page: Vec<Value> = all.iter().skip(start).take(2).map(|id| json!({"Id": id, "Arn": format!("arn:user/{id}"), "Username": format!("{id}-login")})).collect();
    let next = (start + 2 < all.len()).then(|| (start + 2).to_string());
    Json(json!({"UserSummaryList": page, "NextToken": next})).into_response()
}

async fn describe_user(
    State(s): State<Shared>,
    Path((_i, id)): Path<(String, String)>,
) -> Response {
    let mut s = s.lock().unwrap();
    s.describes += 1;
    let Some(email) = s.users.get(&id).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            "{}",
        )
            .into_response();
    };
    Json(json!({"User": {"Id": id, "Arn": format!("arn:user/{id}"), "Username": format!("{id}-login"), "IdentityInfo": {"Email": email, "FirstName": "First", "LastName": id}}})).into_response()
}

async fn list_statuses(Path(_i): Path<String>) -> Json<Value> {
    let list: Vec<Value> = STATUSES
        .iter()
        .map(|(id, name, ty)| json!({"Id": id, "Arn": arn(id), "Name": name, "Type": ty}))
        .collect();
    Json(json!({"AgentStatusSummaryList": list}))
}

async fn userdata(
    State(s): State<Shared>,
    Path(_i): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut s = s.lock().unwrap();
    if let Some(r) = fail(&mut s) {
        return r;
    }
    let agents: Vec<String> =
        serde_json::from_value(body["Filters"]["Agents"].clone()).unwrap_or_default();
    s.userdata_batches.push(agents.len());
    if agents.len() > 100 {
        return (
            StatusCode::BAD_REQUEST,
            [("x-amzn-errortype", "InvalidParameterException")],
            "{}",
        )
            .into_response();
    }
    let list: Vec<Value> = agents
        .iter()
        .filter_map(|a| {
            let (st, ts) = s.current.get(a)?;
            let name = STATUSES.iter().find(|x| x.0 == st)?.1;
            Some(json!({"User": {"Id": a, "Arn": format!("arn:user/{a}")}, "Status": {"StatusArn": arn(st), "StatusName": name, "StatusStartTimestamp": ts}, "Contacts": []}))
        })
        .collect();
    Json(json!({"UserDataList": list, "ApproximateTotalCount": list.len()})).into_response()
}

async fn put_status(
    State(s): State<Shared>,
    Path((_i, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let mut s = s.lock().unwrap();
    if let Some(r) = fail(&mut s) {
        return r;
    }
    let st = body["AgentStatusId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.puts.push((id.clone(), body));
    s.current.insert(id, (st, chrono::Utc::now().timestamp()));
    Json(json!({})).into_response()
}

pub(crate) async fn spawn_fake(users: usize) -> (String, Shared) {
    let mut f = Fake::default();
    for i in 1..=users {
        let id = format!("u{i:03}");
        f.users.insert(id.clone(), format!("{id}@example.com"));
        f.current.insert(id, ("st-available".into(), 1_700_000_000));
    }
    let state: Shared = Arc::new(Mutex::new(f));
    let app = Router::new()
        .route("/users-summary/{i}", get(list_users))
        .route("/users/{i}/{id}", get(describe_user))
        .route("/users/{i}/{id}/status", put(put_status))
        .route("/agent-status/{i}", get(list_statuses))
        .route("/metrics/userdata/{i}", post(userdata))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

async fn connector(endpoint: &str, extra: &str) -> AmazonConnectConnector {
    let text = format!(
        r#"
[[connectors]]
name = "ac"
kind = "amazon_connect"
region = "eu-west-2"
instance_id = "{INSTANCE}"
endpoint_url = "{endpoint}"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
{extra}
"#
    );
    let mut cfg =
        Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    let ConnectorConfig::AmazonConnect(a) = cfg.connectors[0].clone() else {
        panic!("amazon_connect")
    };
    AmazonConnectConnector::new(a, None).await
}

fn status(i: usize) -> CcStatus {
    CcStatus {
        id: STATUSES[i].0.into(),
        name: STATUSES[i].1.into(),
    }
}

#[tokio::test]
async fn agents_catalog_bulk_read_and_put_user_status() {
    let (url, fake) = spawn_fake(150).await;
    // fast limiter: the fake pages 2 users at a time, so this is ~230 calls
    let c = connector(&url, "[connectors.limits]\nrequests_per_sec = 1000.0\n").await;
    let agents = c.list_agents().await.unwrap();
    assert_eq!(agents.len(), 150);
    assert_eq!(agents[0].id, "u001");
    assert_eq!(agents[0].email.as_deref(), Some("u001@example.com"));
    assert_eq!(agents[0].username.as_deref(), Some("u001-login"));
    assert_eq!(agents[0].display_name.as_deref(), Some("First u001"));
    assert_eq!(fake.lock().unwrap().describes, 150);
    c.list_agents().await.unwrap();
    assert_eq!(
        fake.lock().unwrap().describes,
        150,
        "DescribeUser results are cached"
    );

    let catalog = c.status_catalog().await.unwrap();
    assert_eq!(catalog.len(), 3);
    assert_eq!(catalog[0].kind, StatusKind::Routable);
    assert_eq!(catalog[1].kind, StatusKind::NotRoutable);
    assert_eq!(catalog[2].kind, StatusKind::Offline);

    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    let now = c.current_statuses(&ids).await.unwrap();
    assert_eq!(now.len(), 150);
    assert_eq!(now[0].status, status(0));
    assert_eq!(now[0].since.unwrap().timestamp(), 1_700_000_000);
    assert_eq!(fake.lock().unwrap().userdata_batches, vec![100, 50]);

    c.set_status("u007", &status(1)).await.unwrap();
    let puts = fake.lock().unwrap().puts.clone();
    assert_eq!(
        puts,
        vec![("u007".to_owned(), json!({"AgentStatusId": "st-teams"}))]
    );
}

async fn recv(rx: &mut mpsc::Receiver<ConnectorEvent>) -> AgentEvent {
    let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("event in time")
        .expect("open");
    e.as_agent().expect("an agent event").clone()
}

#[tokio::test]
async fn polling_reports_only_changes() {
    let (url, fake) = spawn_fake(3).await;
    let c = Arc::new(connector(&url, "poll_interval_secs = 1").await);
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let (c2, tok) = (c.clone(), cancel.clone());
    let task = tokio::spawn(async move { c2.run_events(tx, tok).await });
    for _ in 0..3 {
        let e = recv(&mut rx).await;
        assert_eq!(e.source, Source::ConnectorPoll);
        assert_eq!(e.status, status(0));
    }
    let before = fake.lock().unwrap().userdata_batches.len();
    fake.lock()
        .unwrap()
        .current
        .insert("u002".into(), ("st-offline".into(), 1_800_000_000));
    let e = recv(&mut rx).await;
    assert_eq!(e.agent_id, "u002");
    assert_eq!(e.status, status(2));
    assert_eq!(e.at.timestamp(), 1_800_000_000);
    assert!(fake.lock().unwrap().userdata_batches.len() > before);
    assert!(rx.try_recv().is_err(), "unchanged agents produce no events");
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn throttling_is_retried_and_access_denied_is_reported() {
    let (url, fake) = spawn_fake(2).await;
    let c = connector(&url, "[connectors.limits]\nbackoff_base_ms = 200\n").await;
    fake.lock()
        .unwrap()
        .failures
        .push((429, "ThrottlingException"));
    let start = Instant::now();
    c.set_status("u001", &status(1)).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "backed off before retrying"
    );
    assert_eq!(fake.lock().unwrap().puts.len(), 1);
    fake.lock()
        .unwrap()
        .failures
        .push((403, "AccessDeniedException"));
    let err = c.set_status("u001", &status(0)).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized(_)), "{err:?}");
    let (state, detail) = c.health().await;
    assert_eq!(state, HealthState::Down);
    assert!(detail.contains("AccessDenied"), "{detail}");
    fake.lock()
        .unwrap()
        .failures
        .push((400, "InvalidParameterException"));
    let err = c.set_status("u001", &status(0)).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_one_sentence_in_readiness() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = connector(
        &format!("http://127.0.0.1:{port}"),
        "[connectors.limits]\nbackoff_base_ms = 10\nmax_retries = 0\n",
    )
    .await;
    let err = c.list_agents().await.unwrap_err();
    let (state, detail) = c.health().await;
    assert_ne!(state, HealthState::Up, "{err:?}");
    assert!(detail.contains("cannot reach"), "{detail}");
    assert!(
        !detail.contains('{') && !detail.contains("Some(") && !detail.contains('\n'),
        "no debug structure: {detail}"
    );
}
