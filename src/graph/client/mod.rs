//! The typed Graph client: one `send` path that every call goes through, with the per-family
//! budgets ([`limiter`]), app-only auth ([`auth`]; 401 → one refresh and retry), `Retry-After`
//! on 429/503 (the caller waits, and so does every other caller of the family) and bounded
//! exponential backoff with jitter for 5xx, dropped connections and timeouts. The policy
//! pieces (token bucket, `Retry-After` parser, refreshing token) come from [`crate::net`].

pub mod auth;
pub mod batch;
pub mod error;
mod health;
pub(crate) mod limiter;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::graph::GraphError;
use crate::graph::client::auth::AppAuth;
use crate::graph::config::GraphConfig;
use crate::model::health::HealthRegistry;
use crate::net::retry_after;
use crate::telemetry::Metrics;
use health::CallHealth;
pub use limiter::ApiFamily;
use limiter::Limiters;

/// A Graph client. Cheap to clone; clones share the token cache and the limiters.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Arc<GraphConfig>,
    http: reqwest::Client,
    auth: AppAuth,
    limiters: Limiters,
    metrics: Option<Metrics>,
    health: CallHealth,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.inner.cfg.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// One request to Graph.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub method: Method,
    /// Absolute URL, or a path relative to `graph.base_url`.
    pub url: String,
    pub body: Option<serde_json::Value>,
    pub family: ApiFamily,
    /// Budget units the request costs (a `$batch` costs one per item).
    pub cost: u32,
    pub headers: Vec<(&'static str, String)>,
    /// A delegated access token to send instead of the app token (sync-account calls).
    pub bearer: Option<secrecy::SecretString>,
}

impl GraphRequest {
    pub fn new(method: Method, url: impl Into<String>, family: ApiFamily) -> Self {
        Self {
            method,
            url: url.into(),
            body: None,
            family,
            cost: 1,
            headers: Vec::new(),
            bearer: None,
        }
    }

    /// Sends the call as a delegated account with this access token.
    pub fn bearer(mut self, token: secrecy::SecretString) -> Self {
        self.bearer = Some(token);
        self
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Graph's error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Maps a non-success status and its body to a typed error.
pub fn error_from(status: u16, retry_after: Option<Duration>, body: &[u8]) -> GraphError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_default()
        .error;
    match status {
        400 => GraphError::BadRequest {
            code: detail.code,
            message: detail.message,
        },
        401 => GraphError::Unauthorized(detail.code),
        403 => GraphError::Forbidden {
            reason: detail.message,
        },
        404 => GraphError::NotFound,
        409 => GraphError::Conflict(detail.message),
        429 | 503 => GraphError::Throttled { retry_after },
        s if s >= 500 => GraphError::Server { status: s },
        s => GraphError::BadRequest {
            code: format!("http_{s}"),
            message: detail.message,
        },
    }
}

impl GraphClient {
    /// Builds a client from the `[graph]` section; `health` receives the `graph` component.
    pub fn new(cfg: &GraphConfig, health: Option<HealthRegistry>) -> Result<Self, GraphError> {
        Self::with_metrics(cfg, health, None)
    }

    /// Like [`GraphClient::new`], also counting requests (`graph_requests_total` by family and
    /// status, `graph_retries_total`) and their latency (`graph_request_duration_seconds`).
    pub fn with_metrics(
        cfg: &GraphConfig,
        health: Option<HealthRegistry>,
        metrics: Option<Metrics>,
    ) -> Result<Self, GraphError> {
        let cfg = Arc::new(cfg.clone());
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GraphError::Transport(crate::net::transport::describe(&e)))?;
        let call_health = CallHealth::new(health.clone());
        let auth = auth::app_auth(cfg.clone(), http.clone(), health)?;
        Ok(Self {
            inner: Arc::new(Inner {
                limiters: Limiters::from_config(&cfg),
                cfg,
                http,
                auth,
                metrics,
                health: call_health,
            }),
        })
    }

    pub fn config(&self) -> &GraphConfig {
        &self.inner.cfg
    }

    /// The app's client id (the setPresence session id).
    pub fn client_id(&self) -> &str {
        self.inner.cfg.client_id.as_deref().unwrap_or_default()
    }

    /// An app-only access token (for callers that talk to Graph themselves).
    pub async fn app_token(&self) -> Result<secrecy::SecretString, GraphError> {
        self.inner.auth.token().await
    }

    /// Sends a request and parses a JSON answer.
    pub async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        req: GraphRequest,
    ) -> Result<T, GraphError> {
        let bytes = self.send(req).await?;
        serde_json::from_slice(&bytes).map_err(|e| GraphError::Decode(e.to_string()))
    }

    /// Sends a request, retrying as configured; returns the body of a 2xx answer.
    pub async fn send(&self, req: GraphRequest) -> Result<bytes::Bytes, GraphError> {
        let cfg = &self.inner.cfg;
        let url = if req.url.starts_with("http://") || req.url.starts_with("https://") {
            req.url.clone()
        } else {
            cfg.graph_url(&req.url)
        };
        let mut refreshed = false;
        let mut attempt: u32 = 0;
        loop {
            self.inner.limiters.acquire(req.family, req.cost).await;
            let token = match &req.bearer {
                Some(t) => t.clone(),
                None => self.inner.auth.token().await?,
            };
            let mut rb = self
                .inner
                .http
                .request(req.method.clone(), &url)
                .bearer_auth(token.expose_secret());
            for (k, v) in &req.headers {
                rb = rb.header(*k, v);
            }
            if let Some(b) = &req.body {
                rb = rb.json(b);
            }
            let started = tokio::time::Instant::now();
            let sent = rb.send().await;
            self.record(req.family, &sent, started);
            let failure = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after::from_headers(resp.headers());
                    match resp.bytes().await {
                        Ok(body) if status.is_success() => {
                            self.inner.health.answered();
                            return Ok(body);
                        }
                        Ok(_)
                            if status == StatusCode::UNAUTHORIZED
                                && !refreshed
                                && req.bearer.is_none() =>
                        {
                            refreshed = true;
                            self.inner.auth.invalidate(&token).await;
                            tracing::debug!("graph answered 401; refreshing the token once");
                            continue;
                        }
                        Ok(body) => error_from(status.as_u16(), retry_after, &body),
                        Err(e) => GraphError::Transport(crate::net::transport::describe(&e)),
                    }
                }
                Err(e) => GraphError::Transport(crate::net::transport::describe(&e)),
            };
            if let Some(ra) = failure.retry_after() {
                // Graph throttles the app, not the call: no request of the family leaves before
                // `Retry-After` has passed, whether this call waits for it in place or hands
                // the throttle back to its caller (beyond `max_retry_after_secs`).
                self.throttled(req.family, ra);
            }
            let wait = match self.retry_delay(&failure, attempt) {
                Some(w) => w,
                None => {
                    self.inner.health.call_failed(&failure);
                    return Err(failure);
                }
            };
            self.inner.health.attempt_failed(&failure);
            attempt += 1;
            if let Some(m) = &self.inner.metrics {
                m.counter(
                    "graph_retries_total",
                    &[("family", req.family.as_str().into())],
                )
                .increment(1);
            }
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %failure, "retrying graph call");
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every caller of `family` back for `retry_after` (Graph throttled the app).
    pub(crate) fn throttled(&self, family: ApiFamily, retry_after: Duration) {
        self.inner.limiters.pause_for(family, retry_after);
    }

    fn record(
        &self,
        family: ApiFamily,
        sent: &Result<reqwest::Response, reqwest::Error>,
        started: tokio::time::Instant,
    ) {
        let Some(m) = &self.inner.metrics else { return };
        let status = match sent {
            Ok(r) => r.status().as_u16().to_string(),
            Err(_) => "transport".into(),
        };
        let family = family.as_str().to_owned();
        m.counter(
            "graph_requests_total",
            &[("family", family.clone()), ("status", status)],
        )
        .increment(1);
        m.histogram("graph_request_duration_seconds", &[("family", family)])
            .record(started.elapsed().as_secs_f64());
    }

    /// How long to wait before retry number `attempt + 1`, or `None` to give up.
    pub(crate) fn retry_delay(&self, e: &GraphError, attempt: u32) -> Option<Duration> {
        let cfg = &self.inner.cfg;
        if !e.is_transient() || attempt >= cfg.max_retries {
            return None;
        }
        match e.retry_after() {
            Some(ra) if ra > Duration::from_secs(cfg.max_retry_after_secs) => None,
            Some(ra) => Some(ra),
            None => Some(self.backoff(attempt)),
        }
    }

    /// Exponential backoff with jitter (between half and all of the doubled delay).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let cfg = &self.inner.cfg;
        let base = cfg
            .backoff_initial_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(cfg.backoff_max_ms);
        let ms = rand::thread_rng().gen_range(base / 2..=base.max(1));
        Duration::from_millis(ms)
    }
}
