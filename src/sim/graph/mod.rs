//! A simulated Microsoft Graph tenant: the identity platform's token and device-code
//! endpoints, users with licences and `/users/delta`, presence with sessions, fading,
//! preferred presence and aggregation, budgets that answer 429, fault injection and a control
//! API. State lives in one [`SimGraph`] (cheap to clone) so tests can drive it directly.
//!
//! Growing it: a new area adds a file with `pub(super) fn routes() -> Router<SimGraph>`, its
//! state as a field of [`Tenant`], and one `.merge(...)` line in [`router`]. Presence changes
//! are published on [`SimGraph::subscribe_presence`] for a notification sender to use.
//!
//! Not modelled: access tokens are opaque (not JWTs) and permissions, roles and consent are
//! not checked; HTTP Basic client authentication; device-code `slow_down`; refresh-token
//! lifetimes (only a revoke/expire switch); calendar- and mailbox-driven states (InAMeeting,
//! OutOfOffice), workLocation, PresenceUnknown for never-signed-in users; the Teams client's
//! minutes of display latency; status-message expiry; resource-unit throttling, the global
//! limit and the `x-ms-throttle-*` headers (budgets count requests only); `$filter` beyond
//! the licence/accountEnabled form the client sends; `Prefer: return=minimal` and the
//! soft-delete (`changed`) reason in delta; `dependsOn` and 424 in `$batch`. Time-driven
//! presence changes (fade, expiry) are computed when presence is read or the clock advances.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub mod batch;
pub mod chats;
pub mod control;
pub mod delivery;
pub mod encrypt;
pub mod groups;
pub mod identity;
pub mod oidc;
pub mod presence;
mod subscription_update;
pub mod subscriptions;
pub mod tokens;
pub mod users;

#[cfg(test)]
mod tests;

pub use presence::{PresenceEvent, PresenceState};
pub use users::SimUser;

/// The app registration the simulated tenant knows.
#[derive(Debug, Clone)]
pub struct SimGraphOptions {
    pub tenant_id: String,
    pub client_id: String,
    /// Accepted client secret, if the app uses one.
    pub client_secret: Option<String>,
    /// PEM certificate whose key signs accepted client assertions.
    pub certificate_pem: Option<String>,
    /// `expires_in` of issued access tokens, in seconds.
    pub token_lifetime_secs: u64,
}

impl Default for SimGraphOptions {
    fn default() -> Self {
        Self {
            tenant_id: "11111111-2222-3333-4444-555555555555".into(),
            client_id: "22553876-f5ab-4529-bffb-cfe50aa89f87".into(),
            client_secret: Some("sim-client-secret".into()),
            certificate_pem: None,
            token_lifetime_secs: 3599,
        }
    }
}

/// A fault applied to the next `remaining` requests whose path contains `path_contains`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(default)]
    pub path_contains: String,
    pub remaining: u32,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status (and `Retry-After` when given).
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// Delay the answer by this many (real) milliseconds.
    Delay { ms: u64 },
    /// Send headers, then drop the connection mid-body.
    Drop,
}

/// At most `limit` requests whose path contains `path_contains` per `window_secs` of the
/// simulated clock; above it, 429 with `Retry-After`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Budget {
    pub path_contains: String,
    pub limit: u32,
    pub window_secs: u64,
    #[serde(skip)]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub used: u32,
}

/// A write the bridge made, as the simulator received it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteLogEntry {
    pub at: DateTime<Utc>,
    pub user_id: String,
    /// `setPresence`, `clearPresence`, ...
    pub call: String,
    pub body: serde_json::Value,
}

/// Everything the tenant holds.
#[derive(Debug, Default)]
pub struct Tenant {
    pub users: BTreeMap<String, SimUser>,
    pub presence: HashMap<String, PresenceState>,
    pub identity: identity::IdentityState,
    pub directory: users::DirectoryState,
    pub writes: Vec<WriteLogEntry>,
    pub faults: Vec<FaultRule>,
    pub budgets: Vec<Budget>,
    pub subscriptions: subscriptions::SubscriptionState,
    /// How far the simulated clock is ahead of the real one.
    pub clock_offset: chrono::Duration,
    /// Requests seen, by path (for tests that count calls).
    pub request_log: Vec<String>,
    /// Entra groups: group id → member ids (users or groups).
    pub groups: BTreeMap<String, Vec<String>>,
    /// Teams chats, their messages and attachments.
    pub chats: chats::ChatState,
    /// Web sign-in: codes handed out, app roles assigned.
    pub oidc: oidc::OidcState,
}

/// The shared state; cheap to clone.
#[derive(Clone)]
pub struct SimGraph {
    inner: Arc<Mutex<Tenant>>,
    pub options: Arc<SimGraphOptions>,
    /// `http://127.0.0.1:port`, set once bound (used to build links and the assertion audience).
    pub origin: Arc<String>,
    events: broadcast::Sender<PresenceEvent>,
}

/// Default 429 budget: the documented presence figure, 1500 requests per 30 s.
const DEFAULT_PRESENCE_BUDGET: u32 = 1500;
const DEFAULT_PRESENCE_WINDOW_SECS: u64 = 30;

impl SimGraph {
    pub fn new(options: SimGraphOptions, origin: String) -> Self {
        let (events, _) = broadcast::channel(4096);
        let tenant = Tenant {
            budgets: vec![Budget {
                path_contains: "presence".into(),
                limit: DEFAULT_PRESENCE_BUDGET,
                window_secs: DEFAULT_PRESENCE_WINDOW_SECS,
                window_start: None,
                used: 0,
            }],
            ..Tenant::default()
        };
        Self {
            inner: Arc::new(Mutex::new(tenant)),
            options: Arc::new(options),
            origin: Arc::new(origin),
            events,
        }
    }

    /// Locks the tenant. Do not hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Tenant> {
        self.inner.lock().expect("sim tenant lock poisoned")
    }

    /// The simulated clock.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.lock().clock_offset
    }

    /// Moves the simulated clock forward and publishes presence that changed with time.
    pub fn advance(&self, by: std::time::Duration) {
        let ids: Vec<String> = {
            let mut t = self.lock();
            t.clock_offset += chrono::Duration::from_std(by).expect("duration in range");
            t.presence.keys().cloned().collect()
        };
        for id in ids {
            self.effective_presence(&id);
        }
    }

    /// Presence changes (user writes, bridge writes, time) as they happen.
    pub fn subscribe_presence(&self) -> broadcast::Receiver<PresenceEvent> {
        self.events.subscribe()
    }

    /// `{origin}/v1.0`
    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.origin)
    }

    pub fn writes(&self) -> Vec<WriteLogEntry> {
        self.lock().writes.clone()
    }

    /// How many requests reached a path containing `needle`.
    pub fn request_count(&self, needle: &str) -> usize {
        self.lock()
            .request_log
            .iter()
            .filter(|p| p.contains(needle))
            .count()
    }

    pub fn inject_fault(&self, rule: FaultRule) {
        self.lock().faults.push(rule);
    }

    /// Replaces the budgets (an empty list turns 429s off).
    pub fn set_budgets(&self, budgets: Vec<Budget>) {
        self.lock().budgets = budgets;
    }
}

/// The whole simulated tenant's router.
pub fn router(state: SimGraph) -> Router {
    let api = Router::new()
        .merge(identity::routes())
        .merge(presence::routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(batch::routes())
        .merge(oidc::routes())
        .merge(subscriptions::routes())
        .merge(chats::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            control::faults_and_budgets,
        ));
    Router::new()
        .merge(api)
        .merge(control::routes())
        .with_state(state)
}

/// A running simulated tenant.
pub struct SimGraphHandle {
    pub state: SimGraph,
    pub addr: SocketAddr,
    /// `graph.base_url` for the client (`http://127.0.0.1:port/v1.0`).
    pub base_url: String,
    /// `graph.authority_url` for the client (`http://127.0.0.1:port`).
    pub authority_url: String,
    /// Prefix of the control API (`http://127.0.0.1:port/_control`).
    pub control_url: String,
    shutdown: CancellationToken,
    join: tokio::task::JoinHandle<()>,
}

impl SimGraphHandle {
    /// The `[graph]` section that points the daemon at this tenant: app-only credentials,
    /// presence polled every 2 s, the directory read every minute.
    pub fn polled_graph_toml(&self) -> String {
        let opts = &self.state.options;
        format!(
            "[graph]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
             base_url = \"{}\"\nauthority_url = \"{}\"\npresence_source = \"poll\"\n\
             directory_sync_interval_secs = 60\n\n[graph.poll]\ninterval_secs = 2\n\
             safety_interval_secs = 60\n",
            opts.tenant_id,
            opts.client_id,
            opts.client_secret.as_deref().unwrap_or_default(),
            self.base_url,
            self.authority_url,
        )
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.join.await;
    }
}

/// Binds 127.0.0.1:0 and serves the simulated tenant until the handle shuts it down.
pub async fn spawn(options: SimGraphOptions) -> SimGraphHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind simulated Graph on loopback");
    spawn_on(listener, options)
}

/// Serves the simulated tenant on `listener` until the handle shuts it down.
pub fn spawn_on(listener: tokio::net::TcpListener, options: SimGraphOptions) -> SimGraphHandle {
    let addr = listener.local_addr().expect("local addr");
    let origin = format!("http://{addr}");
    let state = SimGraph::new(options, origin.clone());
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let app = router(state.clone());
    delivery::start_delivery(state.clone(), shutdown.clone());
    let join = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    SimGraphHandle {
        state,
        addr,
        base_url: format!("{origin}/v1.0"),
        authority_url: origin.clone(),
        control_url: format!("{origin}/_control"),
        shutdown,
        join,
    }
}

/// Graph's error shape: `{"error": {"code", "message", "innerError": {...}}}`.
pub(crate) fn graph_error(
    status: axum::http::StatusCode,
    code: &str,
    message: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": uuid::Uuid::new_v4().to_string(),
            "client-request-id": uuid::Uuid::new_v4().to_string(),
        }
    }});
    (status, axum::Json(body)).into_response()
}
