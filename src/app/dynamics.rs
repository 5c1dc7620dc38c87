//! How the Dynamics 365 integration joins the application: with `[[dynamics]]` entries, the
//! connectors' ingest paths hand contact events to its step queue, one queue runner works the
//! steps, a prune job drops the values captured per contact after `retention_days`, and the
//! management API serves the screen-pop links.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::app::{AppError, Core};
use crate::connectors::ingest::ContactFollower;
use crate::http::screen_pop::{ScreenPopSource, ScreenPops};
use crate::integrations::dynamics::client::DataverseClient;
use crate::integrations::dynamics::steps::{StepRunner, integration};
use crate::integrations::dynamics::{self, DynamicsConfig, follow};
use crate::job::Job;
use crate::runtime::queue::QueueRunner;

/// How often captured values past their retention are dropped: they are small and only
/// read while a contact is live, so an hourly sweep keeps the table bounded without cost.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Connect timeout of the Web API client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the integration adds to the application; empty without `[[dynamics]]`.
#[derive(Default)]
pub(crate) struct DynamicsParts {
    pub(crate) followers: Vec<Arc<dyn ContactFollower>>,
    pub(crate) screen_pops: ScreenPops,
    pub(crate) jobs: Vec<Job>,
}

struct Links(dynamics::ScreenPops);

#[async_trait]
impl ScreenPopSource for Links {
    async fn for_agent(
        &self,
        agent: &str,
        connector: Option<&str>,
    ) -> Result<Option<Value>, String> {
        self.0
            .for_agent(agent, connector)
            .await
            .map(|p| p.map(|p| serde_json::to_value(p).unwrap_or_default()))
            .map_err(|e| e.to_string())
    }

    async fn for_contact(&self, connector: &str, contact: &str) -> Result<Value, String> {
        self.0
            .for_contact(connector, contact)
            .await
            .map(|l| serde_json::to_value(l).unwrap_or_default())
            .map_err(|e| e.to_string())
    }
}

pub(crate) fn build(core: &Core, cancel: &CancellationToken) -> Result<DynamicsParts, AppError> {
    if core.config.dynamics.is_empty() {
        return Ok(DynamicsParts::default());
    }
    let envs: Vec<Arc<DynamicsConfig>> =
        core.config.dynamics.iter().cloned().map(Arc::new).collect();
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("presence-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AppError::Other(format!("dynamics HTTP client: {e}")))?;
    let mut clients = Vec::with_capacity(envs.len());
    for env in &envs {
        let client = DataverseClient::new(env, http.clone())
            .map_err(|e| AppError::Config(format!("dynamics {:?}: {e}", env.name)))?;
        clients.push((env.clone(), client));
    }
    let runner = StepRunner::new(clients, core.store.clone(), core.metrics.clone());
    let queue = QueueRunner::new(
        core.store.clone(),
        follow::QUEUE,
        Arc::new(runner),
        core.clock.clone(),
    );
    let follower = dynamics::Follower::new(envs.clone(), queue.waker());
    let prune = prune_job(core, envs.clone(), cancel.clone());
    Ok(DynamicsParts {
        followers: vec![Arc::new(follower)],
        screen_pops: ScreenPops::new(Arc::new(Links(dynamics::ScreenPops::new(
            envs,
            core.store.clone(),
        )))),
        jobs: vec![
            ("dynamics_steps", Box::pin(queue.run(cancel.clone()))),
            ("dynamics_prune", Box::pin(prune)),
        ],
    })
}

fn prune_job(
    core: &Core,
    envs: Vec<Arc<DynamicsConfig>>,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let store = core.store.clone();
    async move {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            for env in &envs {
                let before =
                    chrono::Utc::now() - chrono::Duration::days(i64::from(env.retention_days));
                match store
                    .contact_state_prune(&integration(&env.name), before)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(environment = %env.name, deleted = n, "pruned captured Dynamics values past their retention")
                    }
                    Err(e) => {
                        tracing::warn!(environment = %env.name, error = %e, "pruning captured Dynamics values failed; retrying at the next interval")
                    }
                }
            }
        }
    }
}
