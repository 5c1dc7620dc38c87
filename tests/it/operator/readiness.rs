//! An unready daemon probed every few seconds logs the change once, not a line per probe.

use std::process::Stdio;
use std::time::Duration;

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn an_unready_daemon_logs_the_change_once_not_every_probe() {
    // The identity platform refuses the app's credentials: Graph is down, a critical part.
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(".*/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided."
        })))
        .mount(&idp)
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pb.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "sqlite://{db}"
[log]
format = "json"
[graph]
tenant_id = "00000000-0000-0000-0000-000000000001"
client_id = "00000000-0000-0000-0000-000000000002"
client_secret = "wrong"
authority_url = "{idp}"
base_url = "{idp}/v1.0"
max_retries = 0
"#,
            db = dir.path().join("pb.db").display(),
            idp = idp.uri()
        ),
    )
    .unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let mut unready = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while unready < 6 {
        assert!(tokio::time::Instant::now() < deadline, "never unready");
        if let Ok(r) = http.get(&url).send().await
            && r.status() == 503
        {
            unready += 1;
        } else {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let pid = child.id().unwrap() as i32;
    // SIGTERM: a clean stop, so every log line is flushed.
    sigterm(pid);
    let out = child.wait_with_output().await.unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let not_ready = log.lines().filter(|l| l.contains("\"not ready\"")).count();
    assert_eq!(not_ready, 1, "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("\"level\":\"ERROR\"") && l.contains("/health/ready")),
        "a probe was logged at ERROR:\n{log}"
    );
}

fn sigterm(pid: i32) {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
}

#[tokio::test]
async fn readiness_says_when_nothing_is_configured_to_sync() {
    let app = crate::helpers::spawn_app().await;
    let body: serde_json::Value = app.get("/health/ready").await.json().await.unwrap();
    let checks = body["checks"].as_array().unwrap();
    let c = checks
        .iter()
        .find(|c| c["name"] == "configuration")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(c["state"], "degraded", "{body}");
    assert!(
        c["detail"].as_str().unwrap().contains("syncs nothing"),
        "{body}"
    );
    app.shutdown().await;
}
