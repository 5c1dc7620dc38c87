//! A fake Genesys Cloud for tests: the REST endpoints the connector uses (OAuth token, users,
//! presence definitions, system presences, bulk presence, PATCH presence, notification
//! channels and subscriptions) and a Notifications WebSocket server that sends heartbeats,
//! presence events and `v2.system.socket_closing` on request; routing-status and conversation
//! notifications of an agent ([`FakeGenesys::set_routing_status`], [`FakeGenesys::call`]) in
//! the shapes of the SDK models `UserRoutingStatusNotification` and
//! `ConversationEventTopicConversation` (platform-client-sdk-java `build/docs/`
//! `UserRoutingStatusNotification.md`, `UserRoutingStatusNotificationRoutingStatus.md`,
//! `ConversationEventTopicParticipant.md`, `ConversationEventTopicCall.md`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Client credentials the fake accepts.
pub const GENESYS_CLIENT_ID: &str = "genesys-client";
pub const GENESYS_CLIENT_SECRET: &str = "genesys-secret";

/// Presence definitions of the fake (id, label, systemPresence).
pub const DEFINITIONS: &[(&str, &str, &str)] = &[
    (
        "6a3af858-942f-489d-9700-5f9bcdcdae9b",
        "Available",
        "AVAILABLE",
    ),
    (
        "e08eaf1b-ee47-4fa9-a231-1200e284798f",
        "On Queue",
        "ON_QUEUE",
    ),
    ("31fe3bac-dea6-44b7-bed7-47f91660a1a0", "Busy", "BUSY"),
    ("3fd96123-badb-4f69-bc03-1b1ccc6d8014", "Meeting", "MEETING"),
    ("ccf3c10a-aa2c-4845-8e8d-f59fa48c58e5", "Offline", "OFFLINE"),
];

#[derive(Default)]
struct FakeState {
    users: BTreeMap<String, (String, String)>,
    presence: HashMap<String, String>,
    routing: HashMap<String, String>,
    tokens_issued: u64,
    valid_tokens: std::collections::HashSet<String>,
    channels: BTreeMap<String, Vec<String>>,
    sockets: HashMap<String, Vec<mpsc::UnboundedSender<String>>>,
    connections: u64,
    bulk_calls: Vec<usize>,
    patches: Vec<(String, Value)>,
    failures: Vec<(u16, Option<u64>)>,
    reject_credentials: bool,
    heartbeat: Option<Duration>,
}

type Shared = Arc<Mutex<FakeState>>;

/// A running fake; dropped = stopped.
pub struct FakeGenesys {
    pub api_url: String,
    pub login_url: String,
    state: Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeGenesys {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the fake with `users` users (`user-1`…), each Available. `heartbeat` = interval of
/// server heartbeats (`None` = silent socket).
pub async fn spawn(users: usize, heartbeat: Option<Duration>) -> std::io::Result<FakeGenesys> {
    let mut st = FakeState {
        heartbeat,
        ..FakeState::default()
    };
    for i in 1..=users {
        let id = format!("user-{i}");
        st.users.insert(
            id.clone(),
            (format!("User {i}"), format!("user{i}@example.com")),
        );
        st.presence.insert(id.clone(), DEFINITIONS[0].0.to_owned());
        st.routing.insert(id, "IDLE".to_owned());
    }
    let state: Shared = Arc::new(Mutex::new(st));
    let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ws_addr = ws_listener.local_addr()?;
    let app = Router::new()
        .route("/api/v2/users", get(users_page))
        .route("/api/v2/presence/definitions", get(definitions))
        .route("/api/v2/systempresences", get(system_presences))
        .route("/api/v2/users/presences/purecloud/bulk", get(bulk))
        .route(
            "/api/v2/users/{id}/presences/purecloud",
            patch(patch_presence),
        )
        .route(
            "/api/v2/notifications/channels",
            post(move |s| create_channel(s, ws_addr)),
        )
        .route(
            "/api/v2/notifications/channels/{id}/subscriptions",
            axum::routing::put(subscribe),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bearer_guard,
        ))
        .route("/oauth/token", post(token))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let rest = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let ws_state = state.clone();
    let ws = tokio::spawn(async move {
        while let Ok((stream, _)) = ws_listener.accept().await {
            tokio::spawn(serve_socket(ws_state.clone(), stream));
        }
    });
    Ok(FakeGenesys {
        api_url: format!("http://{addr}/"),
        login_url: format!("http://{addr}/"),
        state,
        tasks: vec![rest, ws],
    })
}

fn addr_of(s: &str) -> SocketAddr {
    s.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("fake address")
}

impl FakeGenesys {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake lock")
    }

    pub fn addr(&self) -> SocketAddr {
        addr_of(&self.api_url)
    }

    /// The user changes presence in the Genesys UI: the state changes and subscribed sockets
    /// get a `v2.users.{id}.presence` event.
    pub fn set_presence(&self, user: &str, definition_id: &str) {
        let mut s = self.lock();
        s.presence.insert(user.to_owned(), definition_id.to_owned());
        notify(&mut s, user, definition_id);
    }

    /// The agent's ACD routing status changes (`OFF_QUEUE`, `IDLE`, `INTERACTING`,
    /// `NOT_RESPONDING`, `COMMUNICATING`): subscribed sockets get a
    /// `v2.users.{id}.routingStatus` event.
    pub fn set_routing_status(&self, user: &str, status: &str) {
        let mut s = self.lock();
        s.routing.insert(user.to_owned(), status.to_owned());
        let body = json!({"routingStatus": {"status": status, "startTime": chrono::Utc::now().to_rfc3339()}});
        publish(&s, &format!("v2.users.{user}.routingStatus"), body);
    }

    /// A `v2.users.{id}.conversations` event for the agent, about one voice call.
    pub fn call(&self, user: &str, call: &VoiceCall) {
        let s = self.lock();
        publish(
            &s,
            &format!("v2.users.{user}.conversations"),
            call.body(user),
        );
    }

    /// Adds a user (Available).
    pub fn add_user(&self, id: &str) {
        let mut s = self.lock();
        s.users
            .insert(id.to_owned(), (id.to_owned(), format!("{id}@example.com")));
        s.presence
            .insert(id.to_owned(), DEFINITIONS[0].0.to_owned());
    }

    /// Sends `v2.system.socket_closing` on every open socket.
    pub fn send_socket_closing(&self) {
        let s = self.lock();
        let frame = json!({"topicName": "v2.system.socket_closing", "eventBody": {"message": "Socket closing"}}).to_string();
        for senders in s.sockets.values() {
            for tx in senders {
                let _ = tx.send(frame.clone());
            }
        }
    }

    pub fn channels_created(&self) -> usize {
        self.lock().channels.len()
    }

    /// Topics per channel (in no particular order).
    pub fn subscriptions(&self) -> Vec<usize> {
        self.lock().channels.values().map(Vec::len).collect()
    }

    pub fn connections(&self) -> u64 {
        self.lock().connections
    }

    /// Ids per bulk presence call, in call order.
    pub fn bulk_calls(&self) -> Vec<usize> {
        self.lock().bulk_calls.clone()
    }

    pub fn patches(&self) -> Vec<(String, Value)> {
        self.lock().patches.clone()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.lock().tokens_issued
    }

    pub fn inject_failure(&self, status: u16, retry_after_secs: Option<u64>) {
        self.lock().failures.push((status, retry_after_secs));
    }

    /// Every issued token stops working (as if it expired).
    pub fn revoke_tokens(&self) {
        self.lock().valid_tokens.clear();
    }

    pub fn reject_credentials(&self, reject: bool) {
        self.lock().reject_credentials = reject;
    }
}

fn presence_body(definition_id: &str) -> Value {
    let sp = DEFINITIONS
        .iter()
        .find(|d| d.0 == definition_id)
        .map_or("BUSY", |d| d.2);
    json!({
        "source": "PURECLOUD",
        "presenceDefinition": {"id": definition_id, "systemPresence": sp},
        "modifiedDate": chrono::Utc::now().to_rfc3339(),
    })
}

fn notify(s: &mut FakeState, user: &str, definition_id: &str) {
    let topic = format!("v2.users.{user}.presence");
    publish(s, &topic, presence_body(definition_id));
}

/// Sends `{"topicName", "eventBody"}` on every socket whose channel subscribed the topic.
fn publish(s: &FakeState, topic: &str, body: Value) {
    let frame = json!({"topicName": topic, "eventBody": body}).to_string();
    for (ch, topics) in &s.channels {
        if topics.iter().any(|t| t == topic) {
            for tx in s.sockets.get(ch).into_iter().flatten() {
                let _ = tx.send(frame.clone());
            }
        }
    }
}

/// Fails the request when a failure was injected.
fn injected(s: &mut FakeState) -> Option<Response> {
    if s.failures.is_empty() {
        return None;
    }
    let (code, retry) = s.failures.remove(0);
    let mut r = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "injected",
    )
        .into_response();
    if let Some(secs) = retry {
        r.headers_mut().insert("retry-after", secs.into());
    }
    Some(r)
}

async fn bearer_guard(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let ok = token.is_some_and(|t| state.lock().expect("fake lock").valid_tokens.contains(&t));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": 401, "code": "bad.credentials"})),
        )
            .into_response();
    }
    next.run(req).await
}

async fn token(State(state): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    use base64::Engine;
    let mut s = state.lock().expect("fake lock");
    let want = base64::engine::general_purpose::STANDARD
        .encode(format!("{GENESYS_CLIENT_ID}:{GENESYS_CLIENT_SECRET}"));
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Basic {want}").as_str());
    if !ok || s.reject_credentials {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    s.tokens_issued += 1;
    let t = format!("tok-{}", s.tokens_issued);
    s.valid_tokens.insert(t.clone());
    Json(json!({"access_token": t, "token_type": "bearer", "expires_in": 86399})).into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(rename = "pageSize")]
    page_size: usize,
    #[serde(rename = "pageNumber")]
    page_number: usize,
    /// `id=a,b,…`: only these users.
    id: Option<String>,
    /// `expand=routingStatus` adds `routingStatus {status, startTime}` to each user.
    expand: Option<String>,
}

async fn users_page(State(state): State<Shared>, Query(q): Query<PageQuery>) -> Response {
    let mut s = state.lock().expect("fake lock");
    if let Some(r) = injected(&mut s) {
        return r;
    }
    let wanted: Option<Vec<&str>> = q.id.as_deref().map(|ids| ids.split(',').collect());
    let routing = q
        .expand
        .as_deref()
        .is_some_and(|e| e.split(',').any(|x| x == "routingStatus"));
    let all: Vec<Value> = s
        .users
        .iter()
        .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(&id.as_str())))
        .map(|(id, (name, email))| {
            let mut u = json!({"id": id, "name": name, "email": email, "username": email});
            if routing {
                let status = s.routing.get(id).map_or("OFF_QUEUE", String::as_str);
                u["routingStatus"] = json!({"userId": id, "status": status, "startTime": chrono::Utc::now().to_rfc3339()});
            }
            u
        })
        .collect();
    let count = all.len().div_ceil(q.page_size.max(1));
    let page: Vec<Value> = all
        .into_iter()
        .skip((q.page_number - 1) * q.page_size)
        .take(q.page_size)
        .collect();
    Json(json!({"entities": page, "pageSize": q.page_size, "pageNumber": q.page_number, "pageCount": count})).into_response()
}

async fn definitions() -> Json<Value> {
    let entities: Vec<Value> = DEFINITIONS
        .iter()
        .map(|(id, label, sp)| json!({"id": id, "languageLabels": {"en_US": label}, "systemPresence": sp, "deactivated": false, "primary": true}))
        .collect();
    Json(json!({"entities": entities, "total": entities.len()}))
}

async fn system_presences() -> Json<Value> {
    Json(
        json!([{"id": "AVAILABLE", "name": "Available"}, {"id": "BUSY", "name": "Busy"}, {"id": "ON_QUEUE", "name": "On Queue"}, {"id": "OFFLINE", "name": "Offline"}]),
    )
}

#[derive(Deserialize)]
struct BulkQuery {
    id: String,
}

async fn bulk(State(state): State<Shared>, Query(q): Query<BulkQuery>) -> Response {
    let mut s = state.lock().expect("fake lock");
    if let Some(r) = injected(&mut s) {
        return r;
    }
    let ids: Vec<&str> = q.id.split(',').collect();
    s.bulk_calls.push(ids.len());
    if ids.len() > 50 {
        return (StatusCode::BAD_REQUEST, "at most 50 ids").into_response();
    }
    let rows: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            let def = s.presence.get(*id)?;
            let mut v = presence_body(def);
            v["userId"] = json!(id);
            Some(v)
        })
        .collect();
    Json(Value::Array(rows)).into_response()
}

async fn patch_presence(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut s = state.lock().expect("fake lock");
    if let Some(r) = injected(&mut s) {
        return r;
    }
    let Some(def) = body
        .pointer("/presenceDefinition/id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return (StatusCode::BAD_REQUEST, "presenceDefinition.id required").into_response();
    };
    if !s.users.contains_key(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    s.patches.push((id.clone(), body));
    s.presence.insert(id.clone(), def.clone());
    notify(&mut s, &id, &def);
    Json(presence_body(&def)).into_response()
}

async fn create_channel(State(state): State<Shared>, ws_addr: SocketAddr) -> Json<Value> {
    let mut s = state.lock().expect("fake lock");
    let id = uuid::Uuid::new_v4().to_string();
    s.channels.insert(id.clone(), Vec::new());
    Json(
        json!({"id": id, "connectUri": format!("ws://{ws_addr}/v1/streaming/{id}"), "expires": (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339()}),
    )
}

async fn subscribe(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(topics): Json<Vec<Value>>,
) -> Response {
    let mut s = state.lock().expect("fake lock");
    if topics.len() > 1000 {
        return (StatusCode::BAD_REQUEST, "more than 1000 topics").into_response();
    }
    let Some(ch) = s.channels.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    *ch = topics
        .iter()
        .filter_map(|t| t.get("id")?.as_str().map(str::to_owned))
        .collect();
    Json(json!({"entities": topics})).into_response()
}

#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
async fn serve_socket(state: Shared, stream: tokio::net::TcpStream) {
    let mut channel = String::new();
    let cb = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
        channel = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, cb).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let heartbeat = {
        let mut s = state.lock().expect("fake lock");
        s.connections += 1;
        s.sockets.entry(channel.clone()).or_default().push(tx);
        s.heartbeat
    };
    let (mut sink, mut read) = ws.split();
    let mut beat = tokio::time::interval(heartbeat.unwrap_or(Duration::from_secs(3600)));
    beat.tick().await;
    loop {
        tokio::select! {
            Some(frame) = rx.recv() => if sink.send(Message::text(frame)).await.is_err() { break },
            _ = beat.tick(), if heartbeat.is_some() => {
                let hb = json!({"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}).to_string();
                if sink.send(Message::text(hb)).await.is_err() { break }
            }
            msg = read.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            },
        }
    }
    drop(rx);
    if let Some(v) = state.lock().expect("fake lock").sockets.get_mut(&channel) {
        v.retain(|t| !t.is_closed());
    }
}

/// One voice call of an agent, as the agent's conversation topic shows it: an `acd`
/// participant (the queue), the `customer` (their number in `address`) and the agent's
/// participant (`purpose = "agent"`, `userId`) whose `calls[0].state` moves from `alerting`
/// to `connected` to `disconnected`; `wrapupRequired` without a `wrapup` yet means the agent
/// is in after-call work.
#[derive(Debug, Clone)]
pub struct VoiceCall {
    pub conversation_id: String,
    pub queue_id: String,
    pub customer: String,
    /// `alerting`, `connected`, `disconnected`, …
    pub state: String,
    pub recording: bool,
    pub wrapup_required: bool,
    /// The agent entered the wrap-up code (after-call work is over).
    pub wrapped_up: bool,
}

impl VoiceCall {
    pub fn new(conversation_id: &str) -> Self {
        Self {
            conversation_id: conversation_id.into(),
            queue_id: "queue-support".into(),
            customer: "tel:+15550100".into(),
            state: "alerting".into(),
            recording: false,
            wrapup_required: false,
            wrapped_up: false,
        }
    }

    pub fn state(mut self, state: &str) -> Self {
        self.state = state.into();
        self
    }

    fn body(&self, user: &str) -> Value {
        let now = chrono::Utc::now().to_rfc3339();
        let connected = matches!(
            self.state.as_str(),
            "connected" | "disconnected" | "terminated"
        );
        let ended = matches!(self.state.as_str(), "disconnected" | "terminated");
        let mut call = json!({
            "id": format!("{}-agent-call", self.conversation_id),
            "state": self.state,
            "recording": self.recording,
            "recordingState": if self.recording { "active" } else { "none" },
            "held": false,
            "direction": "inbound",
            "other": {"addressNormalized": self.customer},
        });
        if connected {
            call["connectedTime"] = json!(now);
        }
        if ended {
            call["disconnectedTime"] = json!(now);
            call["disconnectType"] = json!("endpoint");
        }
        let mut agent = json!({
            "id": format!("{}-agent", self.conversation_id),
            "userId": user,
            "purpose": "agent",
            "queueId": self.queue_id,
            "wrapupRequired": self.wrapup_required,
            "calls": [call],
        });
        if self.wrapped_up {
            agent["wrapup"] = json!({"code": "resolved", "name": "Resolved"});
            agent["endAcwTime"] = json!(now);
        }
        json!({
            "id": self.conversation_id,
            "maxParticipants": 3,
            "participants": [
                {"id": format!("{}-customer", self.conversation_id), "purpose": "customer", "address": self.customer,
                 "calls": [{"state": if ended { "disconnected" } else { "connected" }}]},
                {"id": format!("{}-acd", self.conversation_id), "purpose": "acd", "queueId": self.queue_id,
                 "calls": [{"state": "disconnected"}]},
                agent,
            ],
        })
    }
}
