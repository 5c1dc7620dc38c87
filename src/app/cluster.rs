//! How the application runs as one of several replicas (Postgres) or alone (SQLite).
//!
//! Alone, every job runs as it always did, and the SQLite file is locked so that a second
//! process on it is refused at start. With Postgres, each piece of work is gated by a lease
//! (`runtime::cluster`): its jobs are built when this replica takes the lease, over the
//! store, the Teams side and the connectors seen through the lease's fence.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::{AppError, Core, engine, graph, notifications};
use crate::connectors::{ConnectorRegistry, ContactCenter};
use crate::graph::PresenceApi;
use crate::graph::client::GraphClient;
use crate::graph::notifications::NotificationReceiver;
use crate::job::Job;
use crate::runtime::cluster::fenced::FencedStore;
use crate::runtime::cluster::{self, Factory, Fence, Member};
use crate::store::lease::{PgLeases, SqliteLock};

/// One replica or several.
pub(crate) enum Cluster {
    /// SQLite (or a store handed in by a test): the lock on the database file, if taken.
    Single {
        _lock: Option<SqliteLock>,
    },
    Replicas(Member),
}

impl Cluster {
    /// Locks the SQLite file, or joins the replicas on the Postgres database. `injected`:
    /// the store was handed in by the caller, which owns its exclusivity.
    pub(crate) async fn join(core: &Core, injected: bool) -> Result<Cluster, AppError> {
        let cfg = &core.config.store;
        if core.store.backend() == "postgres" {
            if injected && cfg.sqlite_path().is_some() {
                return Ok(Cluster::Single { _lock: None });
            }
            let leases = PgLeases::connect(cfg)?;
            let member = Member::new(
                leases,
                &cfg.instance_id(),
                Duration::from_secs(cfg.lease_secs),
                core.health.clone(),
                core.metrics.clone(),
            );
            tracing::info!(
                holder = member.holder(),
                lease_secs = cfg.lease_secs,
                "Postgres: running as one of several replicas (work owned by lease)"
            );
            return Ok(Cluster::Replicas(member));
        }
        match cfg.sqlite_path().filter(|_| !injected) {
            Some(path) => Ok(Cluster::Single {
                _lock: Some(SqliteLock::acquire(&path, &cfg.instance_id())?),
            }),
            None => Ok(Cluster::Single { _lock: None }),
        }
    }

    /// Whether work is gated by leases.
    pub(crate) fn replicated(&self) -> bool {
        matches!(self, Cluster::Replicas(_))
    }

    /// The jobs of one piece of work: built now and run as they are when alone; a keeper
    /// job that builds and runs them while this replica holds `lease` otherwise.
    async fn gate(
        &self,
        lease: String,
        standby: Option<&'static str>,
        cancel: &CancellationToken,
        factory: Factory,
    ) -> Result<Vec<Job>, AppError> {
        match self {
            Cluster::Single { .. } => factory(cancel.clone(), Fence::open())
                .await
                .map_err(AppError::Other),
            Cluster::Replicas(member) => Ok(vec![member.gate(lease, factory, standby, cancel)]),
        }
    }

    /// The wake-up listener (several replicas only).
    pub(crate) fn jobs(&self, core: &Core, cancel: &CancellationToken) -> Vec<Job> {
        match self {
            Cluster::Single { .. } => Vec::new(),
            Cluster::Replicas(member) => vec![member.listen_job(core.inbox.clone(), cancel)],
        }
    }

    /// Each connector's event stream and agent refresh, under `connector:{name}`.
    pub(crate) async fn connector_jobs(
        &self,
        core: &Core,
        connectors: &ConnectorRegistry,
        cancel: &CancellationToken,
    ) -> Result<Vec<Job>, AppError> {
        if !self.replicated() {
            return Ok(connectors.jobs(&core.store, &core.health, cancel));
        }
        let mut jobs = Vec::new();
        for handle in connectors.iter() {
            let name = handle.connector.name().to_owned();
            jobs.push(catalog_job(handle.connector.clone(), cancel.clone()));
            let one =
                ConnectorRegistry::new(vec![handle.connector.clone()], &core.inbox, &core.metrics);
            let (store, health) = (core.store.clone(), core.health.clone());
            let factory: Factory = Arc::new(move |cancel, fence| {
                let jobs = one.jobs(&FencedStore::wrap(store.clone(), &fence), &health, &cancel);
                Box::pin(async move { Ok(jobs) })
            });
            jobs.extend(
                self.gate(cluster::connector_lease(&name), None, cancel, factory)
                    .await?,
            );
        }
        Ok(jobs)
    }

    /// Directory sync, under `graph_directory`.
    pub(crate) async fn directory_jobs(
        &self,
        core: &Core,
        client: &GraphClient,
        cancel: &CancellationToken,
    ) -> Result<Vec<Job>, AppError> {
        let (core, client) = (core.clone(), client.clone());
        let factory: Factory = Arc::new(move |cancel, fence| {
            let jobs = vec![graph::directory_job(
                &fenced(&core, &fence),
                &client,
                &cancel,
            )];
            Box::pin(async move { Ok(jobs) })
        });
        self.gate(cluster::GRAPH_DIRECTORY.into(), None, cancel, factory)
            .await
    }

    /// The subscription manager, the poller and the account refresh, under `graph_presence`
    /// (several replicas only: alone they stay parts the application may hand to a test).
    pub(crate) async fn presence_jobs(
        &self,
        core: &Core,
        receiver: &NotificationReceiver,
        client: &GraphClient,
        cancel: &CancellationToken,
    ) -> Result<Vec<Job>, AppError> {
        let (core, receiver, client) = (core.clone(), receiver.clone(), client.clone());
        let factory: Factory = Arc::new(move |cancel, fence| {
            let (core, receiver, client) =
                (fenced(&core, &fence), receiver.clone(), client.clone());
            Box::pin(async move {
                let parts = notifications::parts(&core, &receiver, &client)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(parts.into_jobs(&cancel))
            })
        });
        self.gate(cluster::GRAPH_PRESENCE.into(), None, cancel, factory)
            .await
    }

    /// The engine, under `engine`: its state is loaded from the store each time this replica
    /// takes the lease, after the inbox items the previous owner had claimed are freed.
    pub(crate) async fn engine_jobs(
        &self,
        core: &Core,
        presence: Arc<dyn PresenceApi>,
        connectors: &ConnectorRegistry,
        cancel: &CancellationToken,
    ) -> Result<Vec<Job>, AppError> {
        let leases = match self {
            Cluster::Replicas(m) => Some(m.leases().clone()),
            Cluster::Single { .. } => None,
        };
        let (core, connectors) = (core.clone(), connectors.clone());
        let factory: Factory = Arc::new(move |cancel, fence| {
            let (core, presence, connectors, leases) = (
                fenced(&core, &fence),
                presence.clone(),
                connectors.clone(),
                leases.clone(),
            );
            Box::pin(async move {
                if let Some(leases) = leases {
                    fence
                        .check("inbox: free the previous owner's items")
                        .await
                        .map_err(|e| e.to_string())?;
                    match leases.free_inbox_items().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            items = n,
                            "inbox: freed the items the previous engine owner had claimed"
                        ),
                        Err(e) => return Err(format!("inbox: {e}")),
                    }
                }
                engine::build(&core, presence, &connectors, &cancel, &fence)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        self.gate(cluster::ENGINE.into(), Some("engine"), cancel, factory)
            .await
    }
}

/// How often every replica reads a connector's status catalog again: the owner of its
/// event stream reads it with each agent refresh (15 min); the others need it as much, to
/// normalise the webhook events they take.
const CATALOG_REFRESH: Duration = Duration::from_secs(15 * 60);
/// Pause before a failed catalog read is tried again.
const CATALOG_RETRY: Duration = Duration::from_secs(5);

/// Any replica takes a connector's webhook events, which are read against its status
/// catalog: this job keeps the catalog read on every replica, owner of the stream or not.
fn catalog_job(cc: Arc<dyn ContactCenter>, cancel: CancellationToken) -> Job {
    (
        "connector_catalog",
        Box::pin(async move {
            loop {
                let pause = match cc.status_catalog().await {
                    Ok(_) => CATALOG_REFRESH,
                    Err(e) => {
                        tracing::warn!(connector = cc.name(), error = %e, "status catalog read failed");
                        CATALOG_RETRY
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }),
    )
}

/// `core` with the store (and the inbox over it) seen through `fence`.
fn fenced(core: &Core, fence: &Fence) -> Core {
    let store = FencedStore::wrap(core.store.clone(), fence);
    Core {
        inbox: core.inbox.over(store.clone()),
        store,
        ..core.clone()
    }
}
