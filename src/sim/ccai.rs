//! A fake Google CCAI Platform tenant, written from the public API pages:
//! - Basic auth with the subdomain as user name and the API token as password, and the
//!   limit of "10 request per second per customer" (answered with 429 and `Retry-After`):
//!   <https://cloud.google.com/contact-center/ccai-platform/docs/apps-api>
//! - `GET /manager/api/v1/agents?page=&per=&id[]=` (agents with `status{id,name}`,
//!   `status_updated_at`, `online`, `wrap_up`; default page size 100):
//!   <https://cloud.google.com/contact-center/ccai-platform/docs/manager-api-agent>
//! - `POST /apps/api/v1/agent_statuses` `{"status","agent_ids"}`, answering
//!   `[{agent_id,name,email,agent_number,previous_status,current_status}]`, and refusing
//!   transitions to or from system statuses such as In-Call:
//!   <https://cloud.google.com/contact-center/ccai-platform/docs/apps-api-agent-status>
//!
//! Assumed (not on those pages): the catalog at `GET /manager/api/v1/user_statuses` as a list
//! of `{id, name}`, the refusal as `400` with a JSON `message`, the limit enforced as a token bucket (bursts of
//! 10, refilled at 10 per second), and both list endpoints as bare
//! JSON arrays.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The tenant subdomain and API token the fake accepts.
pub const CCAI_SUBDOMAIN: &str = "acme";
pub const CCAI_TOKEN: &str = "ccai-token";

/// "10 request per second per customer".
const LIMIT_PER_SEC: f64 = 10.0;

/// The fake's statuses: (id, name, system status).
pub const STATUSES: &[(u64, &str, bool)] = &[
    (1, "Available", false),
    (2, "Break", false),
    (3, "Lunch", false),
    (4, "Busy (Teams)", false),
    (5, "In-Call", true),
    (6, "Offline", false),
];

/// One agent of the fake.
#[derive(Debug, Clone)]
pub struct FakeAgent {
    pub id: u64,
    pub email: String,
    pub status: u64,
    pub status_updated_at: chrono::DateTime<chrono::Utc>,
    pub online: bool,
    pub wrap_up: bool,
}

#[derive(Default)]
struct FakeState {
    agents: BTreeMap<u64, FakeAgent>,
    writes: Vec<Value>,
    requests: Vec<Instant>,
    /// The documented limit as a token bucket: 10 tokens, refilled at 10 per second.
    tokens: f64,
    refilled: Option<Instant>,
    throttled: u64,
    injected_429: Vec<u64>,
    list_calls: Vec<String>,
}

type Shared = Arc<Mutex<FakeState>>;

/// A running fake; dropped = stopped.
pub struct FakeCcai {
    pub base_url: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCcai {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the fake with agents `1..=agents` (`agent{i}@example.com`), all Available.
pub async fn spawn(agents: u64) -> std::io::Result<FakeCcai> {
    let mut st = FakeState::default();
    for id in 1..=agents {
        st.agents.insert(
            id,
            FakeAgent {
                id,
                email: format!("agent{id}@example.com"),
                status: 1,
                status_updated_at: chrono::Utc::now(),
                online: true,
                wrap_up: false,
            },
        );
    }
    let state: Shared = Arc::new(Mutex::new(st));
    let app = Router::new()
        .route("/manager/api/v1/agents", get(agents_page))
        .route("/manager/api/v1/user_statuses", get(user_statuses))
        .route("/apps/api/v1/agent_statuses", post(set_statuses))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(FakeCcai {
        base_url: format!("http://{addr}/"),
        state,
        task,
    })
}

fn status_name(id: u64) -> &'static str {
    STATUSES.iter().find(|s| s.0 == id).map_or("?", |s| s.1)
}

fn agent_json(a: &FakeAgent) -> Value {
    json!({
        "id": a.id,
        "email": a.email,
        "first_name": "Agent",
        "last_name": a.id.to_string(),
        "agent_number": format!("A{:04}", a.id),
        "status": {"id": a.status, "wfm_id": null, "name": status_name(a.status), "color": "#00ff00"},
        "status_updated_at": a.status_updated_at.to_rfc3339(),
        "online": a.online,
        "wrap_up": a.wrap_up,
        "roles": ["agent"],
        "teams": [],
        "channels": ["voice_inbound"],
    })
}

impl FakeCcai {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake lock")
    }

    /// The agent changes status in the agent adapter (or the platform does, e.g. In-Call).
    pub fn set_agent_status(&self, id: u64, status_name: &str) {
        let sid = STATUSES
            .iter()
            .find(|s| s.1 == status_name)
            .map(|s| s.0)
            .expect("known status");
        let mut s = self.lock();
        if let Some(a) = s.agents.get_mut(&id) {
            a.status = sid;
            a.status_updated_at = chrono::Utc::now();
        }
    }

    pub fn set_wrap_up(&self, id: u64, wrap_up: bool) {
        if let Some(a) = self.lock().agents.get_mut(&id) {
            a.wrap_up = wrap_up;
        }
    }

    pub fn set_online(&self, id: u64, online: bool) {
        if let Some(a) = self.lock().agents.get_mut(&id) {
            a.online = online;
        }
    }

    pub fn agent(&self, id: u64) -> Option<FakeAgent> {
        self.lock().agents.get(&id).cloned()
    }

    /// The status name of an agent.
    pub fn status_of(&self, id: u64) -> Option<&'static str> {
        self.agent(id).map(|a| status_name(a.status))
    }

    /// Bodies of the accepted `POST agent_statuses` requests.
    pub fn writes(&self) -> Vec<Value> {
        self.lock().writes.clone()
    }

    /// Times every request arrived.
    pub fn request_times(&self) -> Vec<Instant> {
        self.lock().requests.clone()
    }

    /// Requests answered 429 because the documented limit was exceeded.
    pub fn throttled(&self) -> u64 {
        self.lock().throttled
    }

    /// The next request is answered 429 with `Retry-After: secs`.
    pub fn inject_429(&self, retry_after_secs: u64) {
        self.lock().injected_429.push(retry_after_secs);
    }

    /// Query strings of the agent listings.
    pub fn list_calls(&self) -> Vec<String> {
        self.lock().list_calls.clone()
    }
}

async fn guard(
    State(state): State<Shared>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use base64::Engine;
    let want =
        base64::engine::general_purpose::STANDARD.encode(format!("{CCAI_SUBDOMAIN}:{CCAI_TOKEN}"));
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Basic {want}").as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Unauthorized"})),
        )
            .into_response();
    }
    {
        let mut s = state.lock().expect("fake lock");
        let now = Instant::now();
        s.requests.push(now);
        if !s.injected_429.is_empty() {
            let secs = s.injected_429.remove(0);
            return too_many(secs);
        }
        let since = s
            .refilled
            .map_or(Duration::from_secs(1), |t| now.duration_since(t));
        s.tokens = (s.tokens + since.as_secs_f64() * LIMIT_PER_SEC).min(LIMIT_PER_SEC);
        s.refilled = Some(now);
        if s.tokens < 1.0 {
            s.throttled += 1;
            return too_many(1);
        }
        s.tokens -= 1.0;
    }
    next.run(req).await
}

fn too_many(secs: u64) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"message": "Too many requests"})),
    )
        .into_response();
    r.headers_mut().insert("retry-after", secs.into());
    r
}

async fn agents_page(State(state): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let mut page = 1usize;
    let mut per = 100usize;
    let mut ids: Vec<u64> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        match &*k {
            "page" => page = v.parse().unwrap_or(1),
            "per" => per = v.parse().unwrap_or(100),
            "id[]" => ids.extend(v.parse::<u64>().ok()),
            _ => {}
        }
    }
    let mut s = state.lock().expect("fake lock");
    s.list_calls.push(q.clone());
    let rows: Vec<Value> = s
        .agents
        .values()
        .filter(|a| ids.is_empty() || ids.contains(&a.id))
        .skip((page.max(1) - 1) * per)
        .take(per)
        .map(agent_json)
        .collect();
    Json(Value::Array(rows)).into_response()
}

async fn user_statuses() -> Json<Value> {
    Json(Value::Array(
        STATUSES
            .iter()
            .map(
                |(id, name, _)| json!({"id": id, "name": name, "color": "#cccccc", "wfm_id": null}),
            )
            .collect(),
    ))
}

async fn set_statuses(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut s = state.lock().expect("fake lock");
    let Some(name) = body.get("status").and_then(Value::as_str) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "status is required"})),
        )
            .into_response();
    };
    let Some(target) = STATUSES.iter().find(|st| st.1 == name) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "unknown status"})),
        )
            .into_response();
    };
    let ids: Vec<u64> = body
        .get("agent_ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    // Transitions to or from a system status are refused (documented for In-Call).
    let from_system = ids.iter().any(|id| {
        s.agents
            .get(id)
            .is_some_and(|a| STATUSES.iter().any(|st| st.0 == a.status && st.2))
    });
    if target.2 || from_system {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Cannot change status to or from a system status"})),
        )
            .into_response();
    }
    s.writes.push(body.clone());
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for id in ids {
        if let Some(a) = s.agents.get_mut(&id) {
            let previous = status_name(a.status);
            a.status = target.0;
            a.status_updated_at = now;
            out.push(json!({
                "agent_id": id,
                "name": format!("Agent {id}"),
                "email": a.email,
                "agent_number": format!("A{id:04}"),
                "previous_status": previous,
                "current_status": target.1,
            }));
        }
    }
    Json(Value::Array(out)).into_response()
}
