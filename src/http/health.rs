//! `GET /health/live`, `GET /health/ready`, `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use crate::model::health::{ComponentHealth, HealthRegistry, HealthState};
use crate::store::Store;
use crate::telemetry::Metrics;

/// What `/health/ready` reads: the database (pinged live) and every part's reported state.
#[derive(Clone)]
pub struct Readiness {
    store: Arc<dyn Store>,
    health: HealthRegistry,
    /// The last answer's verdict and failing components, so only changes are logged.
    last: Arc<std::sync::Mutex<Option<Verdict>>>,
}

/// Ready or not, and the critical components that are down.
type Verdict = (bool, Vec<String>);

impl Readiness {
    pub fn new(store: Arc<dyn Store>, health: HealthRegistry) -> Self {
        Self {
            store,
            health,
            last: Arc::default(),
        }
    }

    /// Logs the verdict when it differs from the last one: one line per change, not one per
    /// probe.
    fn log_change(&self, ready: bool, checks: &[ComponentHealth]) {
        let down: Vec<String> = checks
            .iter()
            .filter(|c| c.critical && c.state == HealthState::Down)
            .map(|c| format!("{} ({})", c.name, c.detail))
            .collect();
        let mut last = self.last.lock().expect("readiness lock");
        if last.as_ref() == Some(&(ready, down.clone())) {
            return;
        }
        let first = last.is_none();
        *last = Some((ready, down.clone()));
        drop(last);
        if !ready {
            tracing::warn!(down = %down.join("; "), "not ready");
        } else if !first {
            tracing::info!("ready again");
        }
    }
}

/// How long readiness waits for the database before calling it down.
const DB_PING_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Readiness: FromRef<S>,
    Metrics: FromRef<S>,
{
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
}

async fn live() -> impl IntoResponse {
    Json(json!({ "status": "live" }))
}

impl Readiness {
    /// The database (pinged now) and every component's reported state.
    pub async fn checks(&self) -> Vec<ComponentHealth> {
        let db = match tokio::time::timeout(DB_PING_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => (
                HealthState::Up,
                format!("{} reachable", self.store.backend()),
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: database check failed");
                (
                    HealthState::Down,
                    format!("{} unreachable", self.store.backend()),
                )
            }
            Err(_) => (
                HealthState::Down,
                format!("{} did not answer in time", self.store.backend()),
            ),
        };
        let mut checks = vec![ComponentHealth {
            name: "database".into(),
            state: db.0,
            critical: true,
            detail: db.1,
            updated_at: Utc::now(),
        }];
        checks.extend(self.health.snapshot());
        checks
    }
}

async fn ready(State(state): State<Readiness>) -> impl IntoResponse {
    let checks = state.checks().await;
    let ready = !checks
        .iter()
        .any(|c| c.critical && c.state == HealthState::Down);
    state.log_change(ready, &checks);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
    });
    (status, Json(body))
}

async fn metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
