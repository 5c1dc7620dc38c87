//! Building the configured connectors and running them: one job per connector runs its event
//! source into the shared ingest path, refreshes its agent list into the store, and reports
//! its health as the critical readiness component `connector:{name}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::ConnectorConfig;
use super::ingest::Ingest;
use super::{ConnectorError, ConnectorEvent, ContactCenter};
use crate::job::Job;
use crate::model::health::HealthRegistry;
use crate::store::inbox::Inbox;
use crate::store::{AgentRecord, Store};
use crate::telemetry::Metrics;

/// How often the agent list is read again. Agents are created and removed by admins, rarely;
/// a full list costs one call per page (plus one per agent on Amazon Connect).
const AGENT_REFRESH_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// How often the connector's health is copied into the readiness registry: quick enough that
/// an auth failure shows within one scrape of a typical readiness probe (10 s).
const HEALTH_REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Pause before an event source that failed is started again.
const EVENTS_RESTART_DELAY: Duration = Duration::from_secs(5);
/// Pause before a batch the store refused is offered again (the events stay in memory).
const INGEST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Events taken from the source in one inbox transaction.
const INGEST_BATCH: usize = 500;
/// Events buffered between the source and the ingest loop.
const EVENT_BUFFER: usize = 4096;
/// Connect timeout of the shared HTTP client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds every configured connector (configs must have been validated). Their requests
/// end, sent or not, once `shutdown` is cancelled.
pub async fn build_connectors(
    configs: &[ConnectorConfig],
    store: Option<Arc<dyn Store>>,
    shutdown: &CancellationToken,
) -> Result<Vec<Arc<dyn ContactCenter>>, ConnectorError> {
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("presence-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConnectorError::Transport(e.to_string()))?;
    let mut out: Vec<Arc<dyn ContactCenter>> = Vec::with_capacity(configs.len());
    for c in configs {
        out.push(match c {
            ConnectorConfig::Http(h) => Arc::new(
                super::http::HttpConnector::new((**h).clone(), http.clone(), store.clone())?
                    .with_shutdown(shutdown.clone()),
            ),
            ConnectorConfig::Genesys(g) => Arc::new(
                super::genesys::GenesysConnector::new(g.clone(), http.clone())?
                    .with_shutdown(shutdown.clone()),
            ),
            ConnectorConfig::AmazonConnect(a) => Arc::new(
                super::amazon_connect::AmazonConnectConnector::new(a.clone(), store.clone())
                    .await
                    .with_shutdown(shutdown.clone()),
            ),
            ConnectorConfig::Innovaphone(i) => Arc::new(
                super::innovaphone::InnovaphoneConnector::new((**i).clone())
                    .with_shutdown(shutdown.clone()),
            ),
            ConnectorConfig::Ccai(c) => Arc::new(
                super::ccai::CcaiConnector::new((**c).clone(), http.clone())?
                    .with_shutdown(shutdown.clone()),
            ),
        });
    }
    Ok(out)
}

/// Why a request could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no connector named {0:?}")]
    NoSuchConnector(String),
    #[error("connector {name:?} is of kind {kind}; only http connectors use request templates")]
    NotHttp { name: String, kind: &'static str },
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

/// `presence-bridge connectors render <name> <agent> <status>`: the exact `set_status`
/// request of an HTTP connector, secrets redacted. `status` is a catalog id or name.
pub async fn render_set_status(
    configs: &[ConnectorConfig],
    name: &str,
    agent: &str,
    status: &str,
) -> Result<String, RenderError> {
    let c = configs
        .iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| RenderError::NoSuchConnector(name.to_owned()))?;
    let ConnectorConfig::Http(h) = c else {
        return Err(RenderError::NotHttp {
            name: name.to_owned(),
            kind: c.kind(),
        });
    };
    let conn = super::http::HttpConnector::new((**h).clone(), reqwest::Client::new(), None)?;
    let resolved = h
        .statuses
        .iter()
        .find(|s| s.id == status || s.name == status)
        .map(|s| crate::model::CcStatus {
            id: s.id.clone(),
            name: s.name.clone(),
        })
        .unwrap_or_else(|| crate::model::CcStatus {
            id: status.to_owned(),
            name: status.to_owned(),
        });
    Ok(conn.render_set_status(agent, &resolved).await?.to_string())
}

/// A running connector and its ingest path.
#[derive(Clone)]
pub struct ConnectorHandle {
    pub connector: Arc<dyn ContactCenter>,
    pub ingest: Arc<Ingest>,
    /// Counts events dropped before ingest.
    metrics: Metrics,
}

/// The configured connectors by name. Cheap to clone; empty when none are configured.
#[derive(Clone, Default)]
pub struct ConnectorRegistry {
    inner: Arc<BTreeMap<String, ConnectorHandle>>,
}

impl ConnectorRegistry {
    pub fn new(connectors: Vec<Arc<dyn ContactCenter>>, inbox: &Inbox, metrics: &Metrics) -> Self {
        Self::following(connectors, inbox, metrics, Vec::new())
    }

    /// As [`ConnectorRegistry::new`], every ingest path handing its contact events to
    /// `followers` too.
    pub fn following(
        connectors: Vec<Arc<dyn ContactCenter>>,
        inbox: &Inbox,
        metrics: &Metrics,
        followers: Vec<Arc<dyn super::ingest::ContactFollower>>,
    ) -> Self {
        let inner = connectors
            .into_iter()
            .map(|c| {
                let ingest = Arc::new(
                    Ingest::new(c.name(), inbox.clone(), metrics.clone())
                        .with_followers(followers.clone()),
                );
                (
                    c.name().to_owned(),
                    ConnectorHandle {
                        connector: c,
                        ingest,
                        metrics: metrics.clone(),
                    },
                )
            })
            .collect();
        Self {
            inner: Arc::new(inner),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ConnectorHandle> {
        self.inner.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConnectorHandle> {
        self.inner.values()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// One background job per connector.
    pub fn jobs(
        &self,
        store: &Arc<dyn Store>,
        health: &HealthRegistry,
        cancel: &CancellationToken,
    ) -> Vec<Job> {
        self.iter()
            .map(|h| {
                let span = tracing::info_span!("connector", name = h.connector.name());
                let fut = tracing::Instrument::instrument(
                    run_connector(h.clone(), store.clone(), health.clone(), cancel.clone()),
                    span,
                );
                (
                    "connector",
                    Box::pin(fut) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
                )
            })
            .collect()
    }
}

async fn report(h: &ConnectorHandle, health: &HealthRegistry) {
    let (state, detail) = h.connector.health().await;
    health.set(
        &format!("connector:{}", h.connector.name()),
        true,
        state,
        detail,
    );
}

/// Reads the catalog (connectors cache it for event normalisation) and the agents.
async fn refresh_agents(h: &ConnectorHandle, store: &Arc<dyn Store>) {
    let name = h.connector.name();
    if let Err(e) = h.connector.status_catalog().await {
        tracing::warn!(connector = name, error = %e, "status catalog read failed");
    }
    match h.connector.list_agents().await {
        Ok(agents) => {
            let now = chrono::Utc::now();
            let records: Vec<AgentRecord> = agents
                .into_iter()
                .map(|a| AgentRecord::listed(name, a, now))
                .collect();
            match store.replace_agents(name, &records).await {
                Ok(()) => tracing::info!(
                    connector = name,
                    agents = records.len(),
                    "agent list stored"
                ),
                Err(e) => {
                    tracing::warn!(connector = name, error = %e, "saving the agent list failed")
                }
            }
        }
        Err(e) => tracing::warn!(connector = name, error = %e, "agent list read failed"),
    }
}

/// Runs the event source until cancelled, starting it again after failures.
async fn run_source(
    h: &ConnectorHandle,
    tx: mpsc::Sender<ConnectorEvent>,
    cancel: &CancellationToken,
) {
    loop {
        let mut delay = EVENTS_RESTART_DELAY;
        match h
            .connector
            .run_events(tx.clone(), cancel.child_token())
            .await
        {
            Ok(()) if cancel.is_cancelled() => return,
            Ok(()) => tracing::warn!(
                connector = h.connector.name(),
                "event source ended; starting it again"
            ),
            Err(e) => {
                // A throttled platform is asked again only once its Retry-After has passed.
                if let ConnectorError::Throttled {
                    retry_after: Some(d),
                } = &e
                {
                    delay = delay.max(*d);
                }
                tracing::warn!(connector = h.connector.name(), error = %e, ?delay, "event source failed; starting it again")
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Runs one connector's job until cancelled. Cancellation ends it at once, whatever it is
/// waiting for (a platform that never answers, the AWS credential chain, the store): the
/// work is dropped, not finished.
async fn run_connector(
    h: ConnectorHandle,
    store: Arc<dyn Store>,
    health: HealthRegistry,
    cancel: CancellationToken,
) {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => {}
        _ = connector_loop(&h, &store, &health, &cancel) => {}
    }
}

/// Drops the events whose own time is out of the connector's bounds (a platform clock that
/// is wrong, a unit mix-up), logging and counting them: one would make every real event after
/// it look stale.
fn drop_out_of_range(h: &ConnectorHandle, batch: &mut Vec<ConnectorEvent>) {
    let bounds = h.connector.event_time_bounds();
    let now = chrono::Utc::now();
    let before = batch.len();
    batch.retain(|e| {
        let (at, source, subject) = match e {
            ConnectorEvent::Agent(a) => (a.at, a.source, &a.agent_id),
            ConnectorEvent::Contact(c) => (c.at, crate::model::Source::ConnectorPush, &c.contact_id),
        };
        match bounds.check(at, source, now) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(connector = h.connector.name(), subject = %subject, reason = %why, "event dropped");
                false
            }
        }
    });
    let dropped = before - batch.len();
    if dropped > 0 {
        h.metrics
            .counter(
                "connector_events_total",
                &[
                    ("connector", h.connector.name().to_owned()),
                    ("outcome", "out_of_range".to_owned()),
                ],
            )
            .increment(dropped as u64);
    }
}

async fn connector_loop(
    h: &ConnectorHandle,
    store: &Arc<dyn Store>,
    health: &HealthRegistry,
    cancel: &CancellationToken,
) {
    let (tx, mut rx) = mpsc::channel(EVENT_BUFFER);
    // The source runs beside the loop below, not as one of its branches: a branch's body (the
    // agent refresh) that awaits what the source holds (the platform's token lock, taken
    // while the source's own request is in flight) would otherwise wait forever, because the
    // source is not polled while a body runs.
    let source = run_source(h, tx, cancel);
    let work = async {
        let mut refresh = tokio::time::interval(AGENT_REFRESH_INTERVAL);
        let mut tick = tokio::time::interval(HEALTH_REPORT_INTERVAL);
        loop {
            tokio::select! {
                Some(first) = rx.recv() => {
                    let mut batch = vec![first];
                    while batch.len() < INGEST_BATCH && let Ok(e) = rx.try_recv() {
                        batch.push(e);
                    }
                    let taken = batch.len();
                    drop_out_of_range(h, &mut batch);
                    while !batch.is_empty() {
                        match h.ingest.ingest(batch.clone()).await {
                            Ok(_) => break,
                            Err(e) => tracing::warn!(connector = h.connector.name(), error = %e, "storing events failed; retrying"),
                        }
                        tokio::time::sleep(INGEST_RETRY_DELAY).await;
                    }
                    // Only now may the source move its read position past these events.
                    h.connector.events_stored(taken);
                }
                _ = refresh.tick() => {
                    refresh_agents(h, store).await;
                    report(h, health).await;
                }
                _ = tick.tick() => report(h, health).await,
            }
        }
    };
    // The source only returns once cancelled.
    tokio::select! {
        _ = source => {}
        _ = work => {}
    }
}
