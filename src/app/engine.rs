//! How the sync engine joins the application: started when the Teams side and at least one
//! connector exist, with the engine's part of the configuration.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::{AppError, Core};
use crate::connectors::ConnectorRegistry;
use crate::graph::PresenceApi;
use crate::job::Job;
use crate::runtime::cluster::Fence;
use crate::runtime::cluster::fenced::{FencedContactCenter, FencedPresence};
use crate::runtime::{EngineRuntime, RuntimeDeps};

/// The engine runtime's jobs; none without a connector. Its writes to either side pass
/// `fence` (open with one replica).
pub(crate) async fn build(
    core: &Core,
    presence: Arc<dyn PresenceApi>,
    connectors: &ConnectorRegistry,
    cancel: &CancellationToken,
    fence: &Fence,
) -> Result<Vec<Job>, AppError> {
    if connectors.is_empty() {
        tracing::info!("no connector configured: the sync engine is not started");
        return Ok(Vec::new());
    }
    let deps = RuntimeDeps {
        config: Arc::new(core.config.engine()),
        store: core.store.clone(),
        inbox: core.inbox.clone(),
        presence: FencedPresence::wrap(presence, fence),
        connectors: connectors
            .iter()
            .map(|h| {
                (
                    h.connector.name().to_owned(),
                    FencedContactCenter::wrap(h.connector.clone(), fence),
                )
            })
            .collect(),
        metrics: core.metrics.clone(),
        health: core.health.clone(),
        clock: core.clock.clone(),
        alerts: core.alerts.clone(),
        scope_changes: core.scope_changes.clone(),
    };
    Ok(EngineRuntime::new(deps, cancel.clone()).await?.jobs())
}
