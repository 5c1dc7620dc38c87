//! How the Graph side joins the application: the client (reporting the `graph` readiness
//! component) and the directory sync job. Nothing is built without `[graph]`.

use crate::app::Job;
use crate::graph::GraphError;
use crate::graph::client::GraphClient;
use crate::graph::directory::DirectorySync;
use crate::health::HealthState;
use crate::http::AppState;
use tokio_util::sync::CancellationToken;

/// Builds the Graph client and pushes its jobs; `None` when `[graph]` is not configured.
pub fn build(
    state: &AppState,
    cancel: &CancellationToken,
    jobs: &mut Vec<Job>,
) -> Result<Option<GraphClient>, GraphError> {
    let cfg = &state.config.graph;
    if !cfg.enabled() {
        return Ok(None);
    }
    let client =
        GraphClient::with_metrics(cfg, Some(state.health.clone()), Some(state.metrics.clone()))?;
    state.health.set(
        crate::graph::client::auth::HEALTH_COMPONENT,
        true,
        HealthState::Degraded,
        "no token requested yet",
    );
    let sync = DirectorySync::new(client.clone(), state.store.clone());
    jobs.push(("graph_directory_sync", Box::pin(sync.run(cancel.clone()))));
    Ok(Some(client))
}
