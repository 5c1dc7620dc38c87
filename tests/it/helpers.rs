//! `spawn_app()` and friends: the real application on port 0 with a fresh SQLite file.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use presence_bridge::app::config::Config;
use presence_bridge::app::{Application, ApplicationBuilder};
use presence_bridge::connectors::ConnectorRegistry;
use presence_bridge::graph::notifications::NotificationReceiver;
use presence_bridge::model::health::HealthRegistry;
use presence_bridge::store::Store;
use tokio_util::sync::CancellationToken;

/// A running application and what tests need to talk to it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub health: HealthRegistry,
    pub notifications: NotificationReceiver,
    pub connectors: ConnectorRegistry,
    pub client: reqwest::Client,
    pub stop: CancellationToken,
    pub join: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Keeps the database directory alive for the test's duration.
    pub dir: tempfile::TempDir,
}

/// A config that listens on 127.0.0.1:0 and stores into a fresh SQLite file in `dir`.
pub fn test_config(dir: &tempfile::TempDir) -> Config {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

[store]
url = "sqlite://{}/test.db"
"#,
        dir.path().display()
    );
    let mut cfg = Config::from_toml_str_with_env(&toml, Vec::<(String, String)>::new())
        .expect("test config parses");
    cfg.resolve_and_validate().expect("test config is valid");
    cfg
}

/// Starts the application with the default test config.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(&dir);
    spawn_app_with(cfg, dir).await
}

/// Starts the application with a given config.
pub async fn spawn_app_with(cfg: Config, dir: tempfile::TempDir) -> TestApp {
    spawn_built(Application::builder(cfg), dir).await
}

/// Starts the application from a builder (a listener, a clock or fakes set by the caller).
pub async fn spawn_built(builder: ApplicationBuilder, dir: tempfile::TempDir) -> TestApp {
    let app = builder.build().await.expect("application builds");
    let port = app.port();
    let stop = app.cancel_token();
    let (config, store, health) = (
        app.config().clone(),
        app.store().clone(),
        app.health().clone(),
    );
    let (notifications, connectors) = (app.notifications().clone(), app.connectors().clone());
    let join = tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        config,
        store,
        health,
        notifications,
        connectors,
        client: reqwest::Client::new(),
        stop,
        join,
        dir,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request sent")
    }

    /// Stops the application and waits for the drain.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.join
            .await
            .expect("app task")
            .expect("app stopped cleanly");
    }
}

/// Polls `check` every 20 ms until it holds; fails naming `what` once `within` has passed.
/// For conditions another task or process makes true (a status reached, a metric counted).
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free loopback port below the kernel's ephemeral range (32768 and up on Linux), for a
/// daemon that must come back on the same port after a restart: a port from `bind(0)` can be
/// handed to another test's connection between the stop and the restart.
pub fn port_for_restarts() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 4_000) as u16 * 3;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let port = 20_000 + (base - 20_000 + offset) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
