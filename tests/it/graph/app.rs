//! The Graph side inside the running daemon: readiness and the directory sync job.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::{client_config, sim_with_users};
use crate::helpers::{TestApp, spawn_app_with, test_config};

/// Polls `/health/ready` until the `graph` check has `state`, within a deadline.
async fn wait_for_graph(app: &TestApp, state: &str) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp = app.get("/health/ready").await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        let graph = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "graph")
            .cloned();
        if graph.is_some_and(|g| g["state"] == state) {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "graph never became {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_daemon_syncs_the_directory_and_reports_graph_ready() {
    let sim = sim_with_users(5).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(&dir);
    cfg.graph = client_config(&sim);
    let app = spawn_app_with(cfg, dir).await;
    let (status, _) = wait_for_graph(&app, "up").await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.store.list_users().await.unwrap().len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "directory never synced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("graph_requests_total{family=\"directory\",status=\"200\"}"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn failing_token_acquisition_makes_the_daemon_not_ready() {
    let sim = sim_with_users(1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(&dir);
    cfg.graph = client_config(&sim);
    cfg.graph.client_secret = Some(SecretString::from("wrong".to_owned()));
    let app = spawn_app_with(cfg, dir).await;
    let (status, body) = wait_for_graph(&app, "down").await;
    assert_eq!(status, 503, "{body}");
    app.shutdown().await;
}
