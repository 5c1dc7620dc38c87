//! `Retry-After` above the configured cap (`limits.backoff_max_ms`): no request reaches the
//! platform before the wait has passed. A 429 answer with `Retry-After` is RFC 6585 §4 and
//! RFC 9110 §10.2.3 (delta-seconds); Genesys documents 429 with `Retry-After`
//! (reference/contact-centers.md, Genesys rate limits). The fakes record when each request
//! arrives on the test's paused tokio clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use presence_bridge::app::config::Config;
use presence_bridge::connectors::amazon_connect::AmazonConnectConnector;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::http::HttpConnector;
use presence_bridge::connectors::{ConnectorError, ContactCenter};
use presence_bridge::model::CcStatus;
use tokio::time::Instant;

/// Seconds the platform asks to wait: far above the 1 s cap configured below.
const RETRY_AFTER_SECS: u64 = 120;

#[derive(Clone, Default)]
struct Recorder {
    /// When each request arrived.
    at: Arc<Mutex<Vec<Instant>>>,
}

/// The first request is throttled with `Retry-After: 120`, every later one succeeds with
/// `ok` (an empty JSON object; Amazon Connect's PutUserStatus answers `{}` with 200).
async fn throttle_once(State(r): State<Recorder>, extra: Option<&'static str>) -> Response {
    let n = {
        let mut at = r.at.lock().unwrap();
        at.push(Instant::now());
        at.len()
    };
    if n == 1 {
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, "{}").into_response();
        resp.headers_mut()
            .insert("retry-after", RETRY_AFTER_SECS.to_string().parse().unwrap());
        if let Some(code) = extra {
            // AWS JSON protocols name the error in this header.
            resp.headers_mut()
                .insert("x-amzn-errortype", code.parse().unwrap());
        }
        return resp;
    }
    (StatusCode::OK, "{}").into_response()
}

async fn spawn_recorder(aws_error: Option<&'static str>) -> (String, Recorder) {
    let rec = Recorder::default();
    let app = Router::new()
        .fallback(move |s: State<Recorder>| throttle_once(s, aws_error))
        .with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rec)
}

fn connector_config(toml_text: &str) -> ConnectorConfig {
    let mut cfg =
        Config::from_toml_str_with_env(toml_text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    cfg.connectors[0].clone()
}

const LIMITS: &str = r#"
[connectors.limits]
requests_per_sec = 100.0
max_retries = 4
backoff_base_ms = 100
backoff_max_ms = 1000
"#;

fn status() -> CcStatus {
    CcStatus {
        id: "7".into(),
        name: "Busy (Teams)".into(),
    }
}

/// Calls `set_status` as a writer would on its own schedule, and checks that the platform saw
/// no request before its `Retry-After` had passed.
async fn no_request_before_retry_after(c: &dyn ContactCenter, rec: &Recorder) {
    let start = Instant::now();
    let first = c.set_status("agent-1", &status()).await;
    match &first {
        Err(ConnectorError::Throttled {
            retry_after: Some(d),
        }) => assert!(
            *d > Duration::from_secs(RETRY_AFTER_SECS - 5),
            "the wait left is handed back: {d:?}"
        ),
        other => panic!("a wait above the cap is handed back, not waited out early: {other:?}"),
    }
    assert_eq!(rec.at.lock().unwrap().len(), 1);
    // The caller comes back on its normal schedule: nothing is sent yet.
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(30)).await;
        let again = c.set_status("agent-1", &status()).await;
        assert!(
            matches!(again, Err(ConnectorError::Throttled { .. })),
            "{again:?}"
        );
    }
    assert_eq!(
        rec.at.lock().unwrap().len(),
        1,
        "no request before Retry-After"
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    c.set_status("agent-1", &status())
        .await
        .expect("sent once the wait has passed");
    let at = rec.at.lock().unwrap().clone();
    assert_eq!(at.len(), 2, "{at:?}");
    assert!(
        at[1] - start >= Duration::from_secs(RETRY_AFTER_SECS),
        "second request after {:?}",
        at[1] - start
    );
}

#[tokio::test(start_paused = true)]
async fn http_connector_sends_nothing_before_a_long_retry_after() {
    let (base, rec) = spawn_recorder(None).await;
    let cfg = connector_config(&format!(
        r#"
[[connectors]]
name = "cc"
kind = "http"
base_url = "{base}/"
statuses = [{{ id = "7", name = "Busy (Teams)", kind = "not_routable" }}]
[connectors.set_status]
method = "PUT"
url = "{{{{ base_url }}}}agents/{{{{ agent_id | urlencode }}}}/status"
accepted_status_codes = [200]
{LIMITS}"#
    ));
    let ConnectorConfig::Http(h) = cfg else {
        panic!("http")
    };
    let c = HttpConnector::new(*h, reqwest::Client::new(), None).unwrap();
    no_request_before_retry_after(&c, &rec).await;
}

#[tokio::test(start_paused = true)]
async fn amazon_connect_sends_nothing_before_a_long_retry_after() {
    let (base, rec) = spawn_recorder(Some("TooManyRequestsException")).await;
    let cfg = connector_config(&format!(
        r#"
[[connectors]]
name = "ac"
kind = "amazon_connect"
region = "eu-west-2"
instance_id = "11111111-2222-3333-4444-555555555555"
endpoint_url = "{base}"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
{LIMITS}"#
    ));
    let ConnectorConfig::AmazonConnect(a) = cfg else {
        panic!("amazon_connect")
    };
    let c = AmazonConnectConnector::new(a, None).await;
    no_request_before_retry_after(&c, &rec).await;
}
