//! A simulated contact center, driven through the generic HTTP connector (the demo's
//! default): agents, a status catalog, OAuth2 client credentials, a set-status endpoint,
//! polling and list endpoints with cursors, signed event webhooks towards the daemon
//! (`X-Sim-Signature: sha256=HMAC(timestamp.body)`), and a control API for tests (in process
//! through [`SimContactCenter`] methods, or over HTTP under `/control`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::connectors::http::config::HmacAlgorithm;
use crate::connectors::http::inbound::hmac_sign;

/// OAuth client id the simulator accepts.
pub const SIM_CLIENT_ID: &str = "sim-client";
/// OAuth client secret the simulator accepts.
pub const SIM_CLIENT_SECRET: &str = "sim-secret";
/// HMAC key of the event webhooks.
pub const SIM_WEBHOOK_SECRET: &str = "sim-webhook-secret";

/// One agent of the simulator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimAgent {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status_id: String,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// One status of the simulator's catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimStatus {
    pub id: String,
    pub name: String,
    /// `routable`, `not_routable`, `offline`, `on_contact`.
    pub kind: String,
}

/// A status write the bridge made.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SimWrite {
    pub agent_id: String,
    pub body: serde_json::Value,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub agents: usize,
    /// Items per page on the list and poll endpoints.
    pub page_size: usize,
    /// `expires_in` of issued tokens.
    pub token_lifetime_secs: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            agents: 3,
            page_size: 2,
            token_lifetime_secs: 3600,
        }
    }
}

#[derive(Default)]
struct SimState {
    agents: BTreeMap<String, SimAgent>,
    statuses: Vec<SimStatus>,
    tokens: HashMap<String, Instant>,
    writes: Vec<SimWrite>,
    failures: VecDeque<(u16, Option<u64>)>,
    api_requests: u64,
    token_requests: u64,
    reject_credentials: bool,
    webhook_url: Option<String>,
    page_size: usize,
    token_lifetime: u64,
}

type Shared = Arc<Mutex<SimState>>;

/// A running simulator; dropped = stopped.
pub struct SimContactCenter {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/`
    pub base_url: String,
    state: Shared,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimContactCenter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The default catalog: what the demo's mapping rules name.
pub fn default_statuses() -> Vec<SimStatus> {
    [
        ("available", "Available", "routable"),
        ("busy_teams", "Busy (Teams)", "not_routable"),
        ("break", "Break", "not_routable"),
        ("on_contact", "On Contact", "on_contact"),
        ("acw", "After Contact Work", "not_routable"),
        ("offline", "Offline", "offline"),
    ]
    .into_iter()
    .map(|(id, name, kind)| SimStatus {
        id: id.into(),
        name: name.into(),
        kind: kind.into(),
    })
    .collect()
}

/// Starts a simulator on 127.0.0.1 with a free port.
pub async fn spawn(opts: SimOptions) -> std::io::Result<SimContactCenter> {
    spawn_on(tokio::net::TcpListener::bind("127.0.0.1:0").await?, opts)
}

/// Starts a simulator serving on `listener`.
pub fn spawn_on(
    listener: tokio::net::TcpListener,
    opts: SimOptions,
) -> std::io::Result<SimContactCenter> {
    let now = chrono::Utc::now();
    let agents = (1..=opts.agents)
        .map(|i| {
            let a = SimAgent {
                id: format!("agent-{i}"),
                email: format!("agent{i}@example.com"),
                name: format!("Agent {i}"),
                status_id: "available".into(),
                since: now,
            };
            (a.id.clone(), a)
        })
        .collect();
    let state: Shared = Arc::new(Mutex::new(SimState {
        agents,
        statuses: default_statuses(),
        page_size: opts.page_size.max(1),
        token_lifetime: opts.token_lifetime_secs,
        ..SimState::default()
    }));
    let api = Router::new()
        .route("/api/agents", get(list_agents))
        .route("/api/statuses", get(list_statuses))
        .route("/api/agents/status", get(poll_statuses))
        .route("/api/agents/{id}/status", put(put_status))
        .layer(middleware::from_fn_with_state(state.clone(), api_guard));
    let app = Router::new()
        .merge(api)
        .route("/oauth/token", post(token))
        .route("/control/agents/{id}/status", post(control_set))
        .route("/control/writes", get(control_writes))
        .route("/control/failures", post(control_failures))
        .route("/control/webhook", post(control_webhook))
        .route("/control/stats", get(control_stats))
        .with_state(state.clone());
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(SimContactCenter {
        addr,
        base_url: format!("http://{addr}/"),
        state,
        http: reqwest::Client::new(),
        task,
    })
}

impl SimContactCenter {
    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().expect("sim lock")
    }

    /// Where event webhooks go (the daemon's `/connectors/{name}/events`).
    pub fn set_webhook_url(&self, url: &str) {
        self.lock().webhook_url = Some(url.to_owned());
    }

    /// The agent changes status as if they clicked it; the signed event webhook is sent and
    /// its HTTP status returned (`None` when no webhook URL is set).
    pub async fn set_agent_status(&self, agent_id: &str, status_id: &str) -> Option<u16> {
        let event = change(&self.state, agent_id, status_id)?;
        let url = self.lock().webhook_url.clone()?;
        deliver(&self.http, &url, &event).await
    }

    pub fn agent(&self, agent_id: &str) -> Option<SimAgent> {
        self.lock().agents.get(agent_id).cloned()
    }

    /// Every status write the bridge made, oldest first.
    pub fn writes(&self) -> Vec<SimWrite> {
        self.lock().writes.clone()
    }

    /// The next `count` API requests fail with `status` (and `Retry-After` when given).
    pub fn inject_failures(&self, status: u16, retry_after_secs: Option<u64>, count: usize) {
        let mut s = self.lock();
        for _ in 0..count {
            s.failures.push_back((status, retry_after_secs));
        }
    }

    /// Every issued token stops working (as if it expired).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// The token endpoint refuses the client credentials.
    pub fn reject_credentials(&self, reject: bool) {
        self.lock().reject_credentials = reject;
    }

    pub fn token_requests(&self) -> u64 {
        self.lock().token_requests
    }

    pub fn api_requests(&self) -> u64 {
        self.lock().api_requests
    }

    /// A `[[connectors]]` entry (kind = "http") that drives this simulator.
    pub fn connector_toml(&self, name: &str) -> String {
        CONNECTOR_TEMPLATE
            .replace("@NAME@", name)
            .replace("@BASE@", &self.base_url)
            .replace("@CLIENT_ID@", SIM_CLIENT_ID)
            .replace("@CLIENT_SECRET@", SIM_CLIENT_SECRET)
            .replace("@WEBHOOK_SECRET@", SIM_WEBHOOK_SECRET)
    }
}

/// The generic-connector configuration that drives the simulator (placeholders `@…@`).
const CONNECTOR_TEMPLATE: &str = include_str!("contact_center_connector.toml");

/// Applies a status change; returns the event to deliver.
fn change(state: &Shared, agent_id: &str, status_id: &str) -> Option<serde_json::Value> {
    let mut s = state.lock().expect("sim lock");
    let a = s.agents.get_mut(agent_id)?;
    let now = chrono::Utc::now();
    a.status_id = status_id.to_owned();
    a.since = now;
    Some(json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "agent_id": agent_id,
        "status_id": status_id,
        "changed_at": now.to_rfc3339(),
    }))
}

/// Posts a signed event; returns the receiver's HTTP status.
async fn deliver(http: &reqwest::Client, url: &str, event: &serde_json::Value) -> Option<u16> {
    let body = event.to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = hmac_sign(
        HmacAlgorithm::Sha256,
        SIM_WEBHOOK_SECRET.as_bytes(),
        &[ts.as_bytes(), b".", body.as_bytes()],
    );
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("X-Sim-Timestamp", ts)
        .header("X-Sim-Signature", format!("sha256={}", hex::encode(sig)))
        .body(body)
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

/// Bearer check and injected failures for `/api/*`.
async fn api_guard(State(state): State<Shared>, req: Request, next: Next) -> Response {
    {
        let mut s = state.lock().expect("sim lock");
        s.api_requests += 1;
        if let Some((code, retry)) = s.failures.pop_front() {
            let mut r = (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "injected",
            )
                .into_response();
            if let Some(secs) = retry {
                r.headers_mut().insert("retry-after", secs.into());
            }
            return r;
        }
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let valid = token
            .and_then(|t| s.tokens.get(t))
            .is_some_and(|exp| Instant::now() < *exp);
        if !valid {
            return (StatusCode::UNAUTHORIZED, "invalid token").into_response();
        }
    }
    next.run(req).await
}

async fn token(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = state.lock().expect("sim lock");
    s.token_requests += 1;
    let want = base64::engine::general_purpose::STANDARD
        .encode(format!("{SIM_CLIENT_ID}:{SIM_CLIENT_SECRET}"));
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {want}"));
    if !ok || s.reject_credentials {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let t = uuid::Uuid::new_v4().to_string();
    let lifetime = s.token_lifetime;
    s.tokens
        .insert(t.clone(), Instant::now() + Duration::from_secs(lifetime));
    Json(json!({"access_token": t, "token_type": "bearer", "expires_in": lifetime})).into_response()
}

#[derive(Deserialize)]
struct Cursor {
    #[serde(default)]
    cursor: String,
}

/// One page of `items` starting at the numeric cursor.
fn page<T: Serialize>(items: Vec<T>, cursor: &str, size: usize) -> (Vec<T>, Option<String>) {
    let start: usize = cursor.parse().unwrap_or(0);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| (start + size).to_string());
    (page, next)
}

async fn list_agents(
    State(state): State<Shared>,
    Query(c): Query<Cursor>,
) -> Json<serde_json::Value> {
    let s = state.lock().expect("sim lock");
    let rows: Vec<_> = s
        .agents
        .values()
        .map(|a| json!({"id": a.id, "email": a.email, "name": a.name}))
        .collect();
    let (items, next) = page(rows, &c.cursor, s.page_size);
    Json(json!({"agents": items, "next": next}))
}

async fn list_statuses(State(state): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({"statuses": state.lock().expect("sim lock").statuses}))
}

async fn poll_statuses(
    State(state): State<Shared>,
    Query(c): Query<Cursor>,
) -> Json<serde_json::Value> {
    let s = state.lock().expect("sim lock");
    let rows: Vec<_> = s
        .agents
        .values()
        .map(|a| json!({"agent_id": a.id, "status_id": a.status_id, "since": a.since.to_rfc3339()}))
        .collect();
    let (items, next) = page(rows, &c.cursor, s.page_size);
    Json(json!({"items": items, "next": next}))
}

async fn put_status(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let Some(status_id) = body
        .get("status_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
    else {
        return (StatusCode::BAD_REQUEST, "status_id missing").into_response();
    };
    {
        let mut s = state.lock().expect("sim lock");
        if !s.statuses.iter().any(|st| st.id == status_id) {
            return (StatusCode::BAD_REQUEST, "unknown status").into_response();
        }
        if !s.agents.contains_key(&id) {
            return (StatusCode::NOT_FOUND, "unknown agent").into_response();
        }
        s.writes.push(SimWrite {
            agent_id: id.clone(),
            body: body.clone(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
    }
    // The platform reports every change, including the bridge's own, as an event.
    if let Some(event) = change(&state, &id, &status_id) {
        let url = state.lock().expect("sim lock").webhook_url.clone();
        if let Some(url) = url {
            tokio::spawn(async move {
                deliver(&reqwest::Client::new(), &url, &event).await;
            });
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct SetBody {
    status_id: String,
}

/// Requests served so far (for a benchmark in another process).
async fn control_stats(State(state): State<Shared>) -> Response {
    let s = state.lock().expect("sim lock");
    Json(json!({"api_requests": s.api_requests, "token_requests": s.token_requests}))
        .into_response()
}

async fn control_set(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(b): Json<SetBody>,
) -> Response {
    let Some(event) = change(&state, &id, &b.status_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let url = state.lock().expect("sim lock").webhook_url.clone();
    let delivered = match url {
        Some(u) => deliver(&reqwest::Client::new(), &u, &event).await,
        None => None,
    };
    Json(json!({"event": event, "webhook_status": delivered})).into_response()
}

async fn control_writes(State(state): State<Shared>) -> Json<Vec<SimWrite>> {
    Json(state.lock().expect("sim lock").writes.clone())
}

#[derive(Deserialize)]
struct FailBody {
    status: u16,
    retry_after_secs: Option<u64>,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

async fn control_failures(State(state): State<Shared>, Json(b): Json<FailBody>) -> StatusCode {
    let mut s = state.lock().expect("sim lock");
    for _ in 0..b.count {
        s.failures.push_back((b.status, b.retry_after_secs));
    }
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct WebhookBody {
    url: String,
}

async fn control_webhook(State(state): State<Shared>, Json(b): Json<WebhookBody>) -> StatusCode {
    state.lock().expect("sim lock").webhook_url = Some(b.url);
    StatusCode::NO_CONTENT
}
