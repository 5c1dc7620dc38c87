//! See `hostile/mod.rs`. The HTTP surface under hostile clients: metric labels that come from
//! input, slow and idle connections, the connection cap, Graph notification batches full of
//! unknown subscriptions, and validation tokens holding markup.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, test_config};

/// Longest any condition in this module is waited for.
const DEADLINE: Duration = Duration::from_secs(10);

/// Interval between two looks at a condition that has no notification to wait on.
const POLL: Duration = Duration::from_millis(20);

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

async fn metrics_text(app: &TestApp) -> String {
    app.get("/metrics")
        .await
        .text()
        .await
        .expect("metrics body")
}

/// Every value of label `name` in a Prometheus text exposition.
fn label_values(text: &str, name: &str) -> Vec<String> {
    let needle = format!("{name}=\"");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut rest = line;
        while let Some(i) = rest.find(&needle) {
            rest = &rest[i + needle.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// The value of the sample `series` (name and labels exactly as rendered), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

// ---- metric labels -------------------------------------------------------------------------

/// Made-up methods and random paths must not become label values: methods outside the
/// standard ones are counted as `other`, routes are the matched templates (or `unmatched`).
#[tokio::test]
async fn metric_labels_come_from_a_fixed_set() {
    let app = spawn_app().await;
    let mut made_up = Vec::new();
    for i in 0..200 {
        let method = format!("X{}", random_token(1000 + i * 10));
        let path = format!("/{}/{}", random_token(40), random_token(40));
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("token method");
        let _ = app
            .client
            .request(m, format!("{}{path}", app.address))
            .send()
            .await
            .expect("request sent");
        made_up.push((method, path));
    }
    // Unknown connector names come from the URL path too.
    let connector = random_token(64);
    let res = app
        .client
        .post(format!("{}/connectors/{connector}/events", app.address))
        .body("{}")
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 404);

    let text = metrics_text(&app).await;
    let standard = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
    ];
    for m in label_values(&text, "method") {
        assert!(standard.contains(&m.as_str()), "method label {m:.40}…");
    }
    assert!(
        text.contains("method=\"other\""),
        "made-up methods count as other"
    );
    for route in label_values(&text, "route") {
        assert!(
            route == "unmatched" || (route.starts_with('/') && route.len() < 64),
            "route label {route:.60}"
        );
    }
    for (method, path) in &made_up {
        assert!(
            !text.contains(method.as_str()),
            "a made-up method became a label"
        );
        assert!(!text.contains(path.as_str()), "a raw path became a label");
    }
    assert!(
        !text.contains(&connector),
        "an unknown connector name became a label"
    );
    assert!(text.len() < 64 * 1024, "/metrics is {} bytes", text.len());
    app.shutdown().await;
}

// ---- connections ---------------------------------------------------------------------------

async fn spawn_with_server(header_secs: u64, idle_secs: u64, max_connections: usize) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(&dir);
    cfg.server.header_read_timeout_secs = header_secs;
    cfg.server.idle_timeout_secs = idle_secs;
    cfg.server.max_connections = max_connections;
    spawn_app_with(cfg, dir).await
}

/// Reads until the server closes the connection (EOF or reset); `None` when it is still open
/// at the deadline.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.ok()?;
    Some(got)
}

/// A client that sends part of its headers and then nothing is disconnected after
/// `header_read_timeout_secs`, without an answer from a handler.
#[tokio::test]
async fn slow_header_connection_is_closed_after_the_timeout() {
    let app = spawn_with_server(1, 60, 64).await;
    let mut slow = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut slow)
        .await
        .expect("the slow-header connection was still open at the deadline");
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "a partial request was answered"
    );
    app.shutdown().await;
}

/// A keep-alive connection with no request in progress, and a connection that never sends a
/// byte, are closed after `idle_timeout_secs` (the header timeout being much longer).
#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let app = spawn_with_server(60, 1, 64).await;
    let mut keep_alive = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let mut silent = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    keep_alive
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut keep_alive)
        .await
        .expect("the idle keep-alive connection was still open at the deadline");
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "the request before going idle is answered"
    );
    read_until_closed(&mut silent)
        .await
        .expect("the silent connection was still open at the deadline");
    app.shutdown().await;
}

/// Beyond `max_connections` a new connection gets `503` at once (or is closed) instead of
/// being served; once a slot frees, `/health/live` answers again.
#[tokio::test]
async fn connections_beyond_the_cap_are_refused_until_a_slot_frees() {
    let app = spawn_with_server(60, 60, 2).await;
    // Accepted in the order they connected: these two take both slots.
    let first = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let _second = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let mut third = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let _ = third
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let got = read_until_closed(&mut third)
        .await
        .expect("the connection beyond the cap was neither answered nor closed");
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 503"),
        "beyond the cap: {got:.80}"
    );

    drop(first);
    get_once_a_slot_frees(&app, "/health/live").await;
    // Slots free as the server notices closed connections: poll for /metrics the same way.
    let text = get_once_a_slot_frees(&app, "/metrics").await;
    assert!(sample(&text, "http_connections_refused_total") >= 1.0);
    app.shutdown().await;
}

/// GETs `path` on new connections until one is served (200), within the deadline.
async fn get_once_a_slot_frees(app: &TestApp, path: &str) -> String {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let served = tokio::time::timeout(DEADLINE, async {
        loop {
            let res = client.get(format!("{}{path}", app.address)).send().await;
            if let Ok(res) = res
                && res.status() == 200
            {
                return res.text().await.unwrap_or_default();
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    served.unwrap_or_else(|_| panic!("{path} was never served after a slot freed"))
}

// ---- Graph notification batches ------------------------------------------------------------

fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn basic_item(subscription_id: &str) -> Value {
    let user = guid();
    json!({
        "subscriptionId": subscription_id, "clientState": "whatever", "changeType": "updated",
        "resource": format!("communications/presences/{user}"), "resourceData": {"id": user},
    })
}

async fn post_batch(app: &TestApp, items: Vec<Value>) -> u16 {
    app.client
        .post(format!("{}/graph/notifications", app.address))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&json!({ "value": items })).unwrap())
        .send()
        .await
        .expect("batch posted")
        .status()
        .as_u16()
}

/// Collects formatted log lines for this thread (the test runtime is current-thread, so the
/// application's request tasks log here too).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn lines_containing(&self, what: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|l| l.contains(what)).count()
    }
}

const UNKNOWN_LOOKUPS: &str = "graph_subscription_lookups_total{result=\"unknown\"}";

/// Notifications naming unknown subscriptions: a few log lines per batch whatever its size,
/// one lookup per distinct id-like subscription id, none for ids seen recently or for ids
/// that cannot be Graph's.
#[tokio::test]
async fn unknown_subscription_ids_cost_bounded_logs_and_lookups() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = spawn_app().await;

    let ids: Vec<String> = (0..1000).map(|_| guid()).collect();
    let batch: Vec<Value> = ids.iter().map(|id| basic_item(id)).collect();
    assert_eq!(post_batch(&app, batch.clone()).await, 403);
    let lines = logs.lines_containing("unknown subscription");
    assert!(
        (1..=3).contains(&lines),
        "{lines} log lines for one batch of 1,000 unknown subscriptions"
    );
    let lookups = sample(&metrics_text(&app).await, UNKNOWN_LOOKUPS);
    assert_eq!(lookups, 1000.0, "one lookup per distinct unknown id");

    // The same ids again: remembered as unknown, not looked up again.
    assert_eq!(post_batch(&app, batch).await, 403);
    // Ids Graph cannot have issued are dropped without a lookup.
    let junk: Vec<Value> = (0..1000)
        .map(|i| basic_item(&format!("<{}>&{i}", random_token(300))))
        .collect();
    assert_eq!(post_batch(&app, junk).await, 403);
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, UNKNOWN_LOOKUPS), 1000.0);
    assert!(logs.lines_containing("unknown subscription") <= 3);
    app.shutdown().await;
}

/// More notifications in one POST than `graph.webhook.max_notifications_per_batch` (1,000 by
/// default): 413, and none of them is looked up.
#[tokio::test]
async fn an_over_cap_batch_is_refused_with_413() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..1001).map(|_| basic_item(&guid())).collect();
    assert_eq!(post_batch(&app, batch).await, 413);
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, UNKNOWN_LOOKUPS), 0.0);
    app.shutdown().await;
}

// ---- validation handshake ------------------------------------------------------------------

/// reference/graph.md §3.3: the token is opaque and echoed exactly (URL-decoded) as
/// `text/plain`; markup and quotes in it are not a reason to refuse the subscription.
#[tokio::test]
async fn validation_tokens_with_markup_are_echoed_exactly() {
    let app = spawn_app().await;
    let token = "a&b=\"c\"<d>'e' f+g%h\ni";
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    for endpoint in ["notifications", "lifecycle"] {
        let res = app
            .client
            .post(format!(
                "{}/graph/{endpoint}?validationToken={encoded}",
                app.address
            ))
            .header("content-type", "text/plain; charset=utf-8")
            .send()
            .await
            .expect("handshake sent");
        assert_eq!(res.status(), 200, "{endpoint}");
        let headers = res.headers().clone();
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(res.text().await.unwrap(), token);
    }
    app.shutdown().await;
}
