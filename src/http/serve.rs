//! Serves the router on a bound listener with the connection limits of `[server]`.
//!
//! `axum::serve` keeps every connection for as long as the client likes; this loop does not:
//! - HTTP/1.1 headers must arrive within `header_read_timeout_secs` (hyper's own timer; it
//!   also runs while a keep-alive connection waits for its next request);
//! - a connection with no request in progress for `idle_timeout_secs` is shut down
//!   gracefully (a silent connection, an idle keep-alive or HTTP/2 connection);
//! - at most `max_connections` are served at once; one more is answered `503` at once and
//!   closed, so the listen queue keeps moving and a health check gets an answer;
//! - accept errors such as "too many open files" back off (up to 1 s) instead of spinning.
//!
//! When `stop` fires the listener closes, every connection finishes its current request and
//! closes, and [`serve`] returns once the last one is gone.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use metrics::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::ServerConfig;
use crate::telemetry::Metrics;

/// First pause after a failed accept; doubled on each failure in a row.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between accepts while they keep failing: long enough not to spin on a full
/// file-descriptor table, short enough to serve again soon after descriptors free up.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What a connection beyond the cap gets: the JSON error shape of every other 503.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 72\r\n\r\n\
{\"error\":{\"code\":\"service_unavailable\",\"message\":\"Service Unavailable\"}}";

/// The limits [`serve`] applies, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl From<&ServerConfig> for ConnectionLimits {
    fn from(cfg: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(cfg.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(cfg.idle_timeout_secs),
            max_connections: cfg.max_connections,
        }
    }
}

/// Accepts and serves connections until `stop` fires, then waits for the open connections to
/// finish their requests and close (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let open = metrics.gauge("http_connections_open", &[]);
    let refused = metrics.counter("http_connections_refused_total", &[]);
    let accept_errors = metrics.counter("http_accept_errors_total", &[]);
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                stream
            }
            // The peer gave up before we accepted: nothing wrong with the listener.
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                accept_errors.increment(1);
                tracing::warn!(
                    error = %e,
                    backoff_ms = backoff.as_millis() as u64,
                    "accepting a connection failed; pausing"
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => break,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused.increment(1);
            refuse(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let slot = Slot::new(permit, open.clone());
        connections.spawn(serve_connection(
            builder.clone(),
            stream,
            router.clone(),
            limits.idle_timeout,
            stop.clone(),
            slot,
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Accept errors that concern one connection only (it was reset before we took it).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

/// Answers 503 without waiting: the write goes to a fresh socket buffer or not at all.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSAL);
}

/// A connection's place under the cap, held until the connection ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, open: Gauge) -> Self {
        open.increment(1.0);
        Self {
            _permit: permit,
            open,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

/// Counts the requests in progress on one connection while it lives.
struct Busy(Arc<watch::Sender<usize>>);

impl Busy {
    fn start(requests: &Arc<watch::Sender<usize>>) -> Self {
        requests.send_modify(|n| *n += 1);
        Self(requests.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn serve_connection(
    builder: Arc<Builder<TokioExecutor>>,
    stream: TcpStream,
    router: Router,
    idle_timeout: Duration,
    stop: CancellationToken,
    _slot: Slot,
) {
    let (requests, in_progress) = watch::channel(0usize);
    let requests = Arc::new(requests);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::start(&requests);
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await;
            drop(busy);
            response
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut idle = std::pin::pin!(idle_for(in_progress, idle_timeout));
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Timeouts and clients that vanish end here; not worth more than debug.
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            () = &mut idle, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once no request has been in progress for `after`.
async fn idle_for(mut in_progress: watch::Receiver<usize>, after: Duration) {
    loop {
        if in_progress.wait_for(|n| *n == 0).await.is_err() {
            // The service is gone, so is the connection: nothing to time out.
            return std::future::pending().await;
        }
        match tokio::time::timeout(after, in_progress.changed()).await {
            Err(_) => return,
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v,
            super::super::error::error_body(hyper::StatusCode::SERVICE_UNAVAILABLE, None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_requests_to_finish() {
        let (tx, rx) = watch::channel(0usize);
        let tx = Arc::new(tx);
        let busy = Busy::start(&tx);
        let idle = tokio::spawn(idle_for(rx, Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!idle.is_finished(), "a request in progress is not idleness");
        drop(busy);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!idle.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(idle.is_finished());
    }
}
