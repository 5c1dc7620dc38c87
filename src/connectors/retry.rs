//! The one resilience layer every connector calls through: the request budget (the shared
//! [`TokenBucket`], `limits.requests_per_sec` spaced evenly), retries with exponential backoff
//! and jitter, `429`/`Retry-After` honoured for the whole connector (every caller waits, not
//! only the one that was throttled), the mapping of HTTP answers to [`ConnectorError`], and
//! the connector's own health derived from how calls end.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

use super::ConnectorError;
use super::config::LimitsConfig;
use crate::model::health::HealthState;
use crate::net::bucket::TokenBucket;
use crate::net::retry_after;

/// The connector's health as its calls show it.
#[derive(Debug)]
pub struct HealthCell(Mutex<(HealthState, String)>);

impl Default for HealthCell {
    fn default() -> Self {
        // Up until a request says otherwise: a webhook-only connector makes no requests.
        Self(Mutex::new((HealthState::Up, "no request made yet".into())))
    }
}

impl HealthCell {
    pub fn get(&self) -> (HealthState, String) {
        self.0.lock().expect("health lock").clone()
    }

    pub fn set(&self, state: HealthState, detail: impl Into<String>) {
        *self.0.lock().expect("health lock") = (state, detail.into());
    }

    /// Records how a call ended: success is up, an auth failure is down, transient failures
    /// that outlived the retries are degraded; other errors concern the data, not health.
    pub fn record<T>(&self, what: &str, r: &Result<T, ConnectorError>) {
        match r {
            Ok(_) => self.set(HealthState::Up, "ok"),
            Err(e @ ConnectorError::Unauthorized(_)) => {
                self.set(HealthState::Down, format!("{what}: {e}"))
            }
            Err(e) if e.is_transient() => self.set(HealthState::Degraded, format!("{what}: {e}")),
            Err(_) => {}
        }
    }
}

/// Rate limit + retries + health, one per connector.
#[derive(Debug)]
pub struct Resilience {
    limiter: TokenBucket,
    pub health: HealthCell,
    max_retries: u32,
    base: Duration,
    max: Duration,
}

impl Resilience {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self {
            limiter: TokenBucket::per_second(limits.requests_per_sec),
            health: HealthCell::default(),
            max_retries: limits.max_retries,
            base: Duration::from_millis(limits.backoff_base_ms),
            max: Duration::from_millis(limits.backoff_max_ms),
        }
    }

    /// Runs `op` (one attempt per call) until it succeeds, fails for good, or the retries are
    /// spent. `what` names the operation in the health detail.
    pub async fn call<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ConnectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        let mut attempt = 0u32;
        let result = loop {
            self.limiter.acquire(1).await;
            match op().await {
                Err(e) if e.is_transient() && attempt < self.max_retries => {
                    let delay = match &e {
                        ConnectorError::Throttled {
                            retry_after: Some(d),
                        } => {
                            let d = (*d).min(self.max);
                            self.limiter.pause_until(Instant::now() + d);
                            d
                        }
                        _ => self.backoff(attempt),
                    };
                    tracing::debug!(what, attempt, ?delay, error = %e, "retrying");
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                other => break other,
            }
        };
        self.health.record(what, &result);
        result
    }

    /// `base * 2^attempt`, capped, with jitter in [50 %, 100 %].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        exp.mul_f64(rand::random::<f64>() * 0.5 + 0.5)
    }
}

/// The error a non-success response means.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ConnectorError {
    let snippet: String = String::from_utf8_lossy(body).chars().take(300).collect();
    match status.as_u16() {
        429 => ConnectorError::Throttled {
            retry_after: retry_after::from_headers(headers),
        },
        503 if headers.contains_key(RETRY_AFTER) => ConnectorError::Throttled {
            retry_after: retry_after::from_headers(headers),
        },
        401 | 403 => ConnectorError::Unauthorized(format!("HTTP {status}")),
        404 => ConnectorError::NotFound(format!("HTTP {status}")),
        500..=599 | 408 => ConnectorError::Transport(format!("HTTP {status}")),
        _ => ConnectorError::Rejected {
            reason: format!("HTTP {status}: {snippet}"),
        },
    }
}

/// A transport failure (connection refused, timeout, TLS).
pub fn transport(e: reqwest::Error) -> ConnectorError {
    ConnectorError::Transport(e.without_url().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig {
            requests_per_sec: 10.0,
            max_retries: 3,
            backoff_base_ms: 100,
            backoff_max_ms: 10_000,
            request_timeout_secs: 5,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_call_waits_retry_after_then_succeeds() {
        let r = Resilience::new(&limits());
        let start = Instant::now();
        let mut calls = 0;
        let out = r
            .call("op", || {
                calls += 1;
                let n = calls;
                async move {
                    if n == 1 {
                        Err(ConnectorError::Throttled {
                            retry_after: Some(Duration::from_secs(7)),
                        })
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(out.unwrap(), 2);
        assert!(
            start.elapsed() >= Duration::from_secs(7),
            "{:?}",
            start.elapsed()
        );
        assert!(start.elapsed() < Duration::from_secs(8));
        assert_eq!(r.health.get().0, HealthState::Up);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded_and_permanent_errors_are_not_retried() {
        let r = Resilience::new(&limits());
        let mut calls = 0;
        let out: Result<(), _> = r
            .call("op", || {
                calls += 1;
                async { Err(ConnectorError::Transport("down".into())) }
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls, 4);
        assert_eq!(r.health.get().0, HealthState::Degraded);
        let mut calls = 0;
        let out: Result<(), _> = r
            .call("op", || {
                calls += 1;
                async { Err(ConnectorError::Unauthorized("bad".into())) }
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls, 1);
        assert_eq!(r.health.get().0, HealthState::Down);
    }

    #[test]
    fn classifies_statuses() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, b""),
            ConnectorError::Throttled { retry_after: Some(d) } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b""),
            ConnectorError::Transport(_)
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &HeaderMap::new(), b""),
            ConnectorError::Unauthorized(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &HeaderMap::new(), b"no"),
            ConnectorError::Rejected { .. }
        ));
    }
}
