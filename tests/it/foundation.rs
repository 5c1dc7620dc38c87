//! The daemon's skeleton over real HTTP: health, readiness, metrics, error shapes, shutdown,
//! and the CLI's handling of good and bad configuration.

use std::process::Command;

use presence_bridge::model::health::HealthState;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn live_answers_200() {
    let app = spawn_app().await;
    let res = app.get("/health/live").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-request-id"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "live");
    app.shutdown().await;
}

#[tokio::test]
async fn ready_lists_the_database_and_goes_503_when_a_critical_component_is_down() {
    let app = spawn_app().await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let checks = body["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "database" && c["state"] == "up" && c["critical"] == true),
        "{body}"
    );

    app.health
        .set("example", true, HealthState::Down, "simulated outage");
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");

    // A non-critical component that is down does not make the daemon unready.
    app.health
        .set("example", false, HealthState::Down, "optional part down");
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/health/live").await;
    app.get("/no/such/route").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"/health/live\"")
            && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_requests_total") && l.contains("status=\"404\"")),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn errors_are_json_404_405_413() {
    let app = spawn_app().await;
    let res = app.get("/nope").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers().contains_key("x-request-id"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let res = app
        .client
        .post(format!("{}/health/live", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    let big = vec![b'x'; app.config.server.body_limit_bytes + 1];
    let res = app
        .client
        .post(format!("{}/health/live", app.address))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_and_stops_serving() {
    let app = spawn_app().await;
    let address = app.address.clone();
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    app.shutdown().await;
    let err = reqwest::Client::new()
        .get(format!("{address}/health/live"))
        .send()
        .await;
    assert!(err.is_err(), "server still answers after shutdown");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_accepts_the_example_and_redacts_secrets() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/presence-bridge.example.toml"
    );
    let out = bin()
        .args(["--config", example, "check-config"])
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("[redacted]"), "{stdout}");
    assert!(
        !stdout.contains("example-api-token"),
        "secret leaked: {stdout}"
    );
}

#[test]
fn bad_configuration_exits_78_with_one_line_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("missing file", String::new(), "not found"),
        ("unparsable", "[server\nlisten=".into(), "config"),
        (
            "unknown key",
            "[server]\nlisten_port = 3\n".into(),
            "listen_port",
        ),
        (
            "wrong type",
            "[server]\nbody_limit_bytes = \"big\"\n".into(),
            "body_limit_bytes",
        ),
        (
            "out of range",
            "[server]\nbody_limit_bytes = 10\n".into(),
            "server.body_limit_bytes: must be at least 1024",
        ),
        (
            "unreadable secret file",
            "[api]\nbearer_token_file = \"/nonexistent/token\"\n".into(),
            "api.bearer_token_file: cannot read /nonexistent/token",
        ),
        (
            "bad store url",
            "[store]\nurl = \"mysql://x\"\n".into(),
            "store.url: must start with sqlite:// or postgres://",
        ),
    ];
    for (name, text, expected) in cases {
        let path = if name == "missing file" {
            dir.path().join("absent.toml")
        } else {
            write(&dir, &format!("{}.toml", name.replace(' ', "_")), &text)
        };
        let out = bin()
            .args(["--config", path.to_str().unwrap(), "check-config"])
            .env_clear()
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "many.toml",
        "[server]\nbody_limit_bytes = 10\nrequest_timeout_secs = 0\n[store]\nmax_connections = 0\n",
    );
    let out = bin()
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    for key in [
        "server.body_limit_bytes",
        "server.request_timeout_secs",
        "store.max_connections",
    ] {
        assert!(stderr.contains(key), "missing {key} in {stderr}");
    }
}

#[test]
fn unreachable_database_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = write(
        &dir,
        "db.toml",
        &format!("[store]\nurl = \"postgres://postgres:hunter2@127.0.0.1:{port}/test\"\n"),
    );
    let out = bin()
        .args(["--config", path.to_str().unwrap(), "migrate"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("database"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
}

/// A loopback TCP proxy that can be cut, to take a real database away from a running app.
struct CuttableProxy {
    port: u16,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CuttableProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(handle);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { port, tasks }
    }

    /// Stops accepting and drops every proxied connection.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test]
async fn ready_goes_503_when_the_database_goes_away() {
    crate::store::with_postgres("ready_db_down", |db| async move {
        use secrecy::ExposeSecret;
        let mut url = url::Url::parse(db.cfg.url.expose_secret()).unwrap();
        let upstream: std::net::SocketAddr =
            format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
                .parse()
                .unwrap();
        let proxy = CuttableProxy::start(upstream).await;
        url.set_port(Some(proxy.port)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::helpers::test_config(&dir);
        cfg.store.url = secrecy::SecretString::from(url.to_string());
        let app = crate::helpers::spawn_app_with(cfg, dir).await;
        assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);

        proxy.cut();
        let res = app.get("/health/ready").await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = res.json().await.unwrap();
        let db_check = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "database")
            .cloned()
            .unwrap();
        assert_eq!(db_check["state"], "down", "{body}");
        // Liveness is unaffected.
        assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
        app.stop.cancel();
    })
    .await;
}
