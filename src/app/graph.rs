//! How the Graph side joins the application: the client (reporting the `graph` readiness
//! component) and the directory sync job. Nothing is built without `[graph]`.

use tokio_util::sync::CancellationToken;

use crate::app::Core;
use crate::graph::GraphError;
use crate::graph::client::GraphClient;
use crate::graph::directory::DirectorySync;
use crate::job::Job;
use crate::model::health::HealthState;

/// The Graph client and its jobs; `None` when `[graph]` is not configured.
pub(crate) fn build(
    core: &Core,
    cancel: &CancellationToken,
) -> Result<Option<(GraphClient, Vec<Job>)>, GraphError> {
    let cfg = &core.config.graph;
    if !cfg.enabled() {
        return Ok(None);
    }
    let client =
        GraphClient::with_metrics(cfg, Some(core.health.clone()), Some(core.metrics.clone()))?;
    core.health.set(
        crate::graph::client::auth::HEALTH_COMPONENT,
        true,
        HealthState::Degraded,
        "no token requested yet",
    );
    let jobs: Vec<Job> = vec![directory_job(core, &client, cancel)];
    Ok(Some((client, jobs)))
}

/// The directory sync job over `core`'s store.
pub(crate) fn directory_job(core: &Core, client: &GraphClient, cancel: &CancellationToken) -> Job {
    let sync = DirectorySync::new(client.clone(), core.store.clone())
        .with_scope(core.config.sync.presence_scope())
        .with_changes(core.scope_changes.clone());
    ("graph_directory_sync", Box::pin(sync.run(cancel.clone())))
}
