//! Wiring: [`Application::build`] opens the store, binds the listener, builds every part and
//! the router; [`Application::run_until_stopped`] serves until the shutdown future resolves,
//! then cancels the background jobs and drains within the configured grace period.

pub mod config;
pub mod graph;
pub mod notifications;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::config::Config;
use crate::health::HealthRegistry;
use crate::http::{self, AppState};
use crate::store::inbox::Inbox;
use crate::store::{self, StoreError};
use crate::telemetry::Metrics;

/// Why the application could not start. `main` maps these to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub use crate::job::Job;

/// A built application: the port is bound, nothing runs yet.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    cancel: CancellationToken,
    jobs: Vec<Job>,
    graph: Option<crate::graph::GraphClient>,
}

impl Application {
    /// Opens the store (applying migrations), binds `server.listen`, builds all parts.
    pub async fn build(config: Config) -> Result<Application, AppError> {
        let store = store::open(&config.store).await?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.server.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::Other(e.to_string()))?;
        let inbox = Inbox::new(store.clone());
        let metrics = Metrics::new();
        let connectors = if config.connectors.is_empty() {
            crate::connectors::ConnectorRegistry::default()
        } else {
            let built =
                crate::connectors::build_connectors(&config.connectors, Some(store.clone()))
                    .await
                    .map_err(|e| AppError::Config(format!("connectors: {e}")))?;
            crate::connectors::ConnectorRegistry::new(built, &inbox, &metrics)
        };
        let notifications = crate::app::notifications::receiver(&config, &inbox, &metrics)
            .map_err(AppError::Config)?;
        let state = AppState {
            config: Arc::new(config),
            inbox,
            notifications,
            store,
            health: HealthRegistry::new(),
            metrics,
            connectors,
        };
        let cancel = CancellationToken::new();
        let mut jobs: Vec<Job> = vec![(
            "audit_prune",
            Box::pin(store::prune::audit_prune_job(
                state.store.clone(),
                state.config.store.audit_retention_days,
                cancel.clone(),
            )),
        )];
        jobs.extend(state.connectors.jobs(&state.store, &state.health, &cancel));
        let graph = crate::app::graph::build(&state, &cancel, &mut jobs)
            .map_err(|e| AppError::Config(format!("graph: {e}")))?;
        if let Some(client) = &graph {
            crate::app::notifications::jobs(&state, client, &cancel, &mut jobs)
                .await
                .map_err(AppError::Config)?;
        }
        if let Some(client) = &graph {
            let presence = Arc::new(client.clone());
            crate::runtime::service::wire(&state, presence, &cancel, &mut jobs).await?;
        }
        Ok(Application {
            listener,
            addr,
            state,
            cancel,
            jobs,
            graph,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The Graph client, when `[graph]` is configured (it implements `PresenceApi`).
    pub fn graph(&self) -> Option<&crate::graph::GraphClient> {
        self.graph.as_ref()
    }

    /// A token that stops the application when cancelled (same effect as the shutdown future).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Serves until `shutdown` resolves (or the cancel token fires), then drains: in-flight
    /// requests and background jobs get `server.shutdown_grace_secs` to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            addr,
            state,
            cancel,
            jobs,
            ..
        } = self;
        let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
        let tracker = TaskTracker::new();
        for (name, job) in jobs {
            let span = tracing::info_span!("job", job = name);
            tracker.spawn(tracing::Instrument::instrument(job, span));
        }
        tracker.close();

        let app = http::router(state);
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown => stop.cancel(),
                _ = stop.cancelled() => {}
            }
        });
        tracing::info!(%addr, "listening");
        let serve_stop = cancel.clone();
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { serve_stop.cancelled().await });
        let mut server = std::pin::pin!(server.into_future());
        // The server future may finish first (graceful shutdown started by the same token);
        // remember that so it is never polled again after completion.
        let mut server_done = false;
        tokio::select! {
            res = &mut server => {
                server_done = true;
                if let Err(e) = res {
                    cancel.cancel();
                    return Err(e.into());
                }
            }
            _ = cancel.cancelled() => {}
        }
        // Whatever ended serving, the background jobs stop too.
        cancel.cancel();
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: draining requests and jobs"
        );
        let drained = tokio::time::timeout(grace, async {
            if !server_done {
                let _ = (&mut server).await;
            }
            tracker.wait().await;
        })
        .await
        .is_ok();
        if drained {
            tracing::info!("shutdown complete: drain finished");
        } else {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown: drain did not finish in time"
            );
        }
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
