//! The one resilience layer every connector calls through: the request budget (the shared
//! [`TokenBucket`], `limits.requests_per_sec` spaced evenly), retries with exponential backoff
//! and jitter, `429`/`Retry-After` honoured for the whole connector, the mapping of HTTP
//! answers to [`ConnectorError`], the connector's own health derived from how calls end, and
//! shutdown: every call ends as soon as the application stops, whatever the peer does.
//!
//! `Retry-After` rule: no request of the connector leaves before the wait the platform asked
//! for has passed, however long it is. `limits.backoff_max_ms` only decides who waits: a
//! caller waits in place for a wait up to that cap, and gets a longer one back at once as
//! [`ConnectorError::Throttled`] with the time still left, as does every caller that comes
//! back before it has passed (without a request being sent).

use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio_util::sync::CancellationToken;

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
    /// Cancelled when the application stops: calls in flight end at once.
    shutdown: CancellationToken,
}

/// A call refused because the application is stopping.
fn shutting_down() -> ConnectorError {
    ConnectorError::Transport("not sent: shutting down".into())
}

impl Resilience {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self {
            limiter: TokenBucket::per_second(limits.requests_per_sec),
            health: HealthCell::default(),
            max_retries: limits.max_retries,
            base: Duration::from_millis(limits.backoff_base_ms),
            max: Duration::from_millis(limits.backoff_max_ms),
            shutdown: CancellationToken::new(),
        }
    }

    /// Ends every call, in flight or to come, when `token` is cancelled.
    pub fn set_shutdown(&mut self, token: CancellationToken) {
        self.shutdown = token;
    }

    /// Runs `op` (one attempt per call) until it succeeds, fails for good, the retries are
    /// spent, the platform asks for a wait longer than the cap, or the application stops.
    /// `what` names the operation in the health detail.
    pub async fn call<T, F, Fut>(&self, what: &str, op: F) -> Result<T, ConnectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        if self.shutdown.is_cancelled() {
            return Err(shutting_down());
        }
        tokio::select! {
            biased;
            // Dropping the attempt aborts its request; health is not about stopping.
            _ = self.shutdown.cancelled() => Err(shutting_down()),
            result = self.attempts(op) => {
                self.health.record(what, &result);
                result
            }
        }
    }

    async fn attempts<T, F, Fut>(&self, mut op: F) -> Result<T, ConnectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        let mut attempt = 0u32;
        loop {
            if let Some(left) = self.limiter.paused_for()
                && left > self.max
            {
                return Err(ConnectorError::Throttled {
                    retry_after: Some(left),
                });
            }
            self.limiter.acquire(1).await;
            match op().await {
                Err(e) if e.is_transient() => {
                    let delay = match &e {
                        ConnectorError::Throttled {
                            retry_after: Some(d),
                        } => {
                            self.limiter.pause_for(*d);
                            if *d > self.max {
                                return Err(e);
                            }
                            *d
                        }
                        _ => self.backoff(attempt),
                    };
                    if attempt >= self.max_retries {
                        return Err(e);
                    }
                    tracing::debug!(attempt, ?delay, error = %e, "retrying");
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
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
    ConnectorError::Transport(crate::net::transport::describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

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
    async fn a_retry_after_above_the_cap_is_handed_back_and_holds_every_caller() {
        let r = Resilience::new(&LimitsConfig {
            backoff_max_ms: 1000,
            ..limits()
        });
        let sent = std::cell::Cell::new(0);
        let op = || {
            sent.set(sent.get() + 1);
            let n = sent.get();
            async move {
                if n == 1 {
                    Err(ConnectorError::Throttled {
                        retry_after: Some(Duration::from_secs(60)),
                    })
                } else {
                    Ok(n)
                }
            }
        };
        let start = Instant::now();
        let out = r.call("op", op).await;
        assert!(
            matches!(out, Err(ConnectorError::Throttled { retry_after: Some(d) }) if d == Duration::from_secs(60)),
            "{out:?}"
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "handed back at once");
        tokio::time::advance(Duration::from_secs(30)).await;
        let out = r.call("op", op).await;
        assert!(
            matches!(out, Err(ConnectorError::Throttled { retry_after: Some(d) }) if d == Duration::from_secs(30)),
            "{out:?}"
        );
        assert_eq!(sent.get(), 1, "nothing sent while the wait runs");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(r.call("op", op).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn shutdown_ends_a_call_in_flight() {
        let mut r = Resilience::new(&limits());
        let token = CancellationToken::new();
        r.set_shutdown(token.clone());
        let (out, ()) = tokio::join!(
            r.call("op", std::future::pending::<Result<(), ConnectorError>>),
            async { token.cancel() }
        );
        assert!(matches!(out, Err(ConnectorError::Transport(_))), "{out:?}");
        assert_eq!(
            r.health.get().0,
            HealthState::Up,
            "stopping is not ill health"
        );
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
