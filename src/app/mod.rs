//! The composition root. [`Application::builder`] opens the store, binds the listener (or
//! takes one), builds every part through one wiring file per subsystem ([`graph`],
//! [`notifications`], [`engine`]) and the router; [`Application::run_until_stopped`] serves
//! until the shutdown future resolves, then cancels the background jobs and drains within
//! `server.shutdown_grace_secs`. `main`, every integration test and every bench start the
//! daemon this way; tests swap in a listener, a clock and fake outside worlds.

mod alerts;
mod cluster;
pub mod config;
mod console;
mod dynamics;
mod engine;
pub mod graph;
mod messaging;
pub mod notifications;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::config::Config;
use crate::connectors::{ConnectorRegistry, ContactCenter};
use crate::graph::PresenceApi;
use crate::graph::notifications::NotificationReceiver;
use crate::graph::presence::scope_changes::ScopeChanges;
use crate::http;
use crate::job::Job;
use crate::model::clock::Clock;
use crate::model::health::{HealthRegistry, HealthState};
use crate::store::inbox::Inbox;
use crate::store::{self, Store, StoreError};
use crate::telemetry::Metrics;

pub use notifications::NotifyParts;
use state::AppState;

/// Why the application could not start. `main` maps these to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] StoreError),
    /// The cause is printed here, once (it is not an error `source`, which would repeat it).
    #[error("cannot bind {addr}: {cause}; {}", bind_hint(cause))]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// What to do about a bind failure.
fn bind_hint(cause: &std::io::Error) -> &'static str {
    match cause.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process is listening there: stop it, or pick another address with server.listen (PRESENCE_BRIDGE__SERVER__LISTEN; `demo --listen ADDR` for the demo)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: pick a port of 1024 or above with server.listen"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this host has no such address: use 0.0.0.0 or one of its addresses in server.listen"
        }
        _ => "check server.listen",
    }
}

/// What every subsystem's wiring shares: built once, before the subsystems.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) inbox: Inbox,
    pub(crate) health: HealthRegistry,
    pub(crate) metrics: Metrics,
    pub(crate) clock: Clock,
    /// Where the engine reports what alerts are about (no-op without `[[alerts]]`).
    pub(crate) alerts: crate::runtime::alerts::Signals,
    /// Fires when the users in the presence scope may have changed (directory, matching).
    pub(crate) scope_changes: ScopeChanges,
}

/// Starts the daemon: the configuration, plus what tests replace.
pub struct ApplicationBuilder {
    config: Config,
    listener: Option<TcpListener>,
    clock: Option<Clock>,
    store: Option<Arc<dyn Store>>,
    presence: Option<Arc<dyn PresenceApi>>,
    connectors: Vec<Arc<dyn ContactCenter>>,
    run_jobs: bool,
}

impl ApplicationBuilder {
    /// Use this store instead of opening `[store]` (its migrations must have run).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Serve HTTP only: background jobs are built but not run, for a test that drives the
    /// parts it needs itself ([`Application::take_graph_parts`]).
    pub fn without_jobs(mut self) -> Self {
        self.run_jobs = false;
        self
    }

    /// Serve on this listener instead of binding `server.listen`.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The wall clock of the subscription logic (tests move it forward).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The Teams side the engine reads and writes, instead of the Graph client of `[graph]`.
    pub fn presence(mut self, presence: Arc<dyn PresenceApi>) -> Self {
        self.presence = Some(presence);
        self
    }

    /// A contact center in addition to those of `[[connectors]]`.
    pub fn connector(mut self, connector: Arc<dyn ContactCenter>) -> Self {
        self.connectors.push(connector);
        self
    }

    /// Opens the store (applying migrations), binds, builds all parts. Nothing runs yet.
    pub async fn build(self) -> Result<Application, AppError> {
        let ApplicationBuilder {
            config,
            listener,
            clock,
            store,
            presence,
            connectors: extra_connectors,
            run_jobs,
        } = self;
        let injected = store.is_some();
        let store = match store {
            Some(store) => store,
            None => store::open(&config.store).await?,
        };
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(config.server.listen)
                .await
                .map_err(|cause| AppError::Bind {
                    addr: config.server.listen,
                    cause,
                })?,
        };
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::Other(e.to_string()))?;
        let (alert_signals, alert_receiver) = if config.alerts.is_empty() {
            (Default::default(), None)
        } else {
            let (tx, rx) = crate::runtime::alerts::Signals::channel();
            (tx, Some(rx))
        };
        let core = Core {
            alerts: alert_signals,
            inbox: Inbox::new(store.clone()),
            store,
            health: HealthRegistry::new(),
            metrics: Metrics::new(),
            clock: clock.unwrap_or_default(),
            scope_changes: ScopeChanges::default(),
            config: Arc::new(config),
        };
        for warning in core.config.warnings() {
            tracing::warn!("{warning}");
            core.health
                .set("configuration", false, HealthState::Degraded, warning);
        }
        let cluster = cluster::Cluster::join(&core, injected).await?;
        let cancel = CancellationToken::new();
        let mut connectors = if core.config.connectors.is_empty() {
            Vec::new()
        } else {
            crate::connectors::build_connectors(
                &core.config.connectors,
                Some(core.store.clone()),
                &cancel,
            )
            .await
            .map_err(|e| AppError::Config(format!("connectors: {e}")))?
        };
        connectors.extend(extra_connectors);
        let dynamics = dynamics::build(&core, &cancel)?;
        let connectors = ConnectorRegistry::following(
            connectors,
            &core.inbox,
            &core.metrics,
            dynamics.followers.clone(),
        );
        let receiver = notifications::receiver(&core.config, &core.inbox, &core.metrics)?;

        let mut jobs: Vec<Job> = vec![(
            "audit_prune",
            Box::pin(store::prune::audit_prune_job(
                core.store.clone(),
                core.config.store.audit_retention_days,
                cancel.clone(),
            )),
        )];
        jobs.extend(cluster.jobs(&core, &cancel));
        jobs.extend(cluster.connector_jobs(&core, &connectors, &cancel).await?);
        jobs.extend(dynamics.jobs);
        jobs.extend(alerts::build(&core, alert_receiver, &cancel));
        let client = match graph::build(&core, &cancel)
            .map_err(|e| AppError::Config(format!("graph: {e}")))?
        {
            Some((client, _)) if cluster.replicated() => {
                jobs.extend(cluster.directory_jobs(&core, &client, &cancel).await?);
                jobs.extend(
                    cluster
                        .presence_jobs(&core, &receiver, &client, &cancel)
                        .await?,
                );
                Some(client)
            }
            Some((client, graph_jobs)) => {
                jobs.extend(graph_jobs);
                Some(client)
            }
            None => None,
        };
        let parts = match &client {
            Some(client) if !cluster.replicated() => {
                Some(notifications::parts(&core, &receiver, client).await?)
            }
            _ => None,
        };
        let presence =
            presence.or_else(|| client.clone().map(|c| Arc::new(c) as Arc<dyn PresenceApi>));
        if let Some(presence) = presence {
            jobs.extend(
                cluster
                    .engine_jobs(&core, presence, &connectors, &cancel)
                    .await?,
            );
        }
        let console = console::state(&core, addr, &cancel)?;
        let mut state = AppState::new(&core, receiver.clone(), connectors.clone(), console)
            .with_screen_pops(dynamics.screen_pops);
        if let Some((endpoints, messaging_jobs)) =
            messaging::build(&core, client.as_ref(), &cancel)?
        {
            jobs.extend(messaging_jobs);
            state = state.with_messaging(endpoints);
        }
        Ok(Application {
            listener,
            addr,
            state,
            core,
            receiver,
            connectors,
            cancel,
            jobs: if run_jobs { jobs } else { Vec::new() },
            parts,
            run_jobs,
            _cluster: cluster,
        })
    }
}

/// A built application: the port is bound, nothing runs yet.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    core: Core,
    receiver: NotificationReceiver,
    connectors: ConnectorRegistry,
    cancel: CancellationToken,
    jobs: Vec<Job>,
    /// The subscription manager and the poller, until they become jobs at run time (or a
    /// test takes them to drive them step by step).
    parts: Option<NotifyParts>,
    run_jobs: bool,
    /// The SQLite file lock, or this replica's membership; held until the application ends.
    _cluster: cluster::Cluster,
}

impl Application {
    /// The one way to start the daemon.
    pub fn builder(config: Config) -> ApplicationBuilder {
        ApplicationBuilder {
            config,
            listener: None,
            clock: None,
            store: None,
            presence: None,
            connectors: Vec::new(),
            run_jobs: true,
        }
    }

    /// `Application::builder(config).build()`.
    pub async fn build(config: Config) -> Result<Application, AppError> {
        Self::builder(config).build().await
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &Config {
        &self.core.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.core.store
    }

    /// The durable inbox; pushing through it wakes the engine at once.
    pub fn inbox(&self) -> &Inbox {
        &self.core.inbox
    }

    pub fn health(&self) -> &HealthRegistry {
        &self.core.health
    }

    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    pub fn notifications(&self) -> &NotificationReceiver {
        &self.receiver
    }

    pub fn connectors(&self) -> &ConnectorRegistry {
        &self.connectors
    }

    /// Takes the subscription manager and the poller out of the jobs, for a test that drives
    /// them itself; `None` without `[graph]`.
    pub fn take_graph_parts(&mut self) -> Option<NotifyParts> {
        self.parts.take()
    }

    /// A token that stops the application when cancelled (same effect as the shutdown future).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Serves until `shutdown` resolves (or the cancel token fires), then drains: in-flight
    /// requests and background jobs get `server.shutdown_grace_secs` to finish. Connections
    /// are served under the limits of `[server]` ([`http::serve`]).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            addr,
            state,
            core,
            cancel,
            mut jobs,
            parts,
            run_jobs,
            _cluster,
            ..
        } = self;
        if let Some(parts) = parts.filter(|_| run_jobs) {
            jobs.extend(parts.into_jobs(&cancel));
        }
        let grace = Duration::from_secs(core.config.server.shutdown_grace_secs);
        let tracker = TaskTracker::new();
        // Each job gets most of the grace to stop after the cancel, so the drain ends in time
        // even when one of them is stuck (the rest is left to the HTTP server's drain).
        let job_grace = grace.mul_f64(JOB_GRACE_SHARE);
        for (name, job) in jobs {
            let span = tracing::info_span!("job", job = name);
            let job = crate::job::bounded(name, job, cancel.clone(), job_grace);
            tracker.spawn(tracing::Instrument::instrument(job, span));
        }
        tracker.close();

        let app = http::router(state, &core.config.server);
        let stop = cancel.clone();
        // Polled once here so that signal handlers are installed before the log says
        // "listening": a SIGTERM from then on drains instead of killing the process.
        let mut shutdown = Box::pin(shutdown);
        if futures::poll!(shutdown.as_mut()).is_ready() {
            cancel.cancel();
        } else {
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        }
        tracing::info!(%addr, "listening");
        let server = http::serve::serve(
            listener,
            app,
            (&core.config.server).into(),
            core.metrics.clone(),
            cancel.clone(),
        );
        let mut server = std::pin::pin!(server);
        // The server future may finish first (graceful shutdown started by the same token);
        // remember that so it is never polled again after completion.
        let mut server_done = false;
        tokio::select! {
            () = &mut server => server_done = true,
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

/// Share of `server.shutdown_grace_secs` each background job has to stop after shutdown
/// begins: the remainder covers in-flight HTTP requests and the log line after the drain.
const JOB_GRACE_SHARE: f64 = 0.8;

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
