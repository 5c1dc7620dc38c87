//! The engine at work: takes items from the durable inbox, turns basic Graph notifications into
//! observations (one coalesced `getPresencesByUserId` per batch), routes observations to the
//! worker owning the user (users sharded by id, each user's items in order), and acknowledges
//! items once their decisions are made and saved. Writes go through the [`Writer`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::connectors::ContactCenter;
use crate::engine::config::{EngineConfig, check_rule_connectors};
use crate::engine::state::UserState;
use crate::engine::{Engine, rules};
use crate::graph::PresenceApi;
use crate::graph::presence::scope_changes::ScopeChanges;
use crate::job::Job;
use crate::model::health::{HealthRegistry, HealthState};
use crate::model::{Clock, InboxPayload, Observation, Source, Status, UserId};
use crate::runtime::pilot::{self, Pilot};
use crate::runtime::reconcile::Reconciler;
use crate::runtime::shards::{Workers, shard};
use crate::runtime::worker::{Worker, WorkerMsg};
use crate::runtime::writer::{Directory, Matched, Writer};
use crate::store::inbox::{Claimed, Inbox};
use crate::store::{JsonText, Store, StoreResult};
use crate::telemetry::Metrics;

/// Items taken from the inbox at once: big enough to coalesce a burst of notifications into
/// one Graph read (650 ids per call), small enough to keep per-batch latency low.
const CLAIM_BATCH: u32 = 650;
/// Lease on claimed items; a crashed replica's items come back after this.
const LEASE_SECS: u32 = 60;
/// Re-check the inbox this often even without a wake-up: items pushed by another replica or
/// whose lease ran out do not wake this process.
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// A refresh whose Graph read failed this many times is dropped (reconciliation repairs).
const MAX_REFRESH_ATTEMPTS: i32 = 5;
/// Queue depth per worker.
const WORKER_QUEUE: usize = 64;
/// Store key of the `sync.mode` the engine state was last saved under.
const MODE_KEY: &str = "engine.sync_mode";

/// What the runtime needs from the rest of the application.
pub struct RuntimeDeps {
    pub config: Arc<EngineConfig>,
    pub store: Arc<dyn Store>,
    pub inbox: Inbox,
    pub presence: Arc<dyn PresenceApi>,
    /// Connectors by name.
    pub connectors: HashMap<String, Arc<dyn ContactCenter>>,
    pub metrics: Metrics,
    pub health: HealthRegistry,
    /// Engine time (tests move it forward).
    pub clock: Clock,
    /// Where the engine reports suspensions and resumptions for alerts.
    pub alerts: crate::runtime::alerts::Signals,
    /// Signalled when a matching pass changed who is matched (the poller's scope).
    pub scope_changes: ScopeChanges,
}

/// State shared by the dispatcher, the workers and the reconciler: the dependencies (read
/// through `Deref`) and the runtime's own parts.
pub struct Shared {
    deps: RuntimeDeps,
    pub writer: Writer,
    pub directory: Directory,
    /// `sync.only` resolved to user ids (`None`: everyone is synced).
    pub pilot: Pilot,
    pub reconcile_now: Notify,
}

impl std::ops::Deref for Shared {
    type Target = RuntimeDeps;

    fn deref(&self) -> &RuntimeDeps {
        &self.deps
    }
}

/// The engine runtime, built and ready to run as jobs.
pub struct EngineRuntime {
    shared: Arc<Shared>,
    queues: Workers,
    workers: Vec<Worker>,
    cancel: CancellationToken,
}

/// The matched users, from one pass over the users (a page at a time).
pub async fn load_people(store: &dyn Store) -> StoreResult<HashMap<UserId, Matched>> {
    let mut dir = HashMap::new();
    let mut connectors: Vec<Arc<str>> = Vec::new();
    crate::store::each_user(store, |u| {
        if let (true, Some(c), Some(a)) = (u.active, &u.cc_connector, &u.cc_agent_id) {
            let connector = match connectors.iter().find(|k| &***k == c.as_str()) {
                Some(k) => k.clone(),
                None => {
                    let k: Arc<str> = Arc::from(c.as_str());
                    connectors.push(k.clone());
                    k
                }
            };
            let m = Matched {
                connector,
                agent: a.as_str().into(),
                label: u.label().into(),
            };
            dir.insert(u.teams_id, m);
        }
    })
    .await?;
    Ok(dir)
}

/// Resolves `sync.only` against the store's users; logs when the group changes.
pub(crate) async fn refresh_pilot(s: &Shared) -> StoreResult<()> {
    let only = &s.config.sync.only;
    if only.is_empty() {
        return Ok(());
    }
    let users = s.store.list_users().await?;
    let (members, unmatched) = pilot::members(only, &users);
    let mut current = s.pilot.write().expect("pilot lock");
    if *current != members {
        let n = members.as_ref().map_or(0, |m| m.len());
        if unmatched.is_empty() {
            tracing::info!(
                users = n,
                "sync.only: the engine syncs {n} users (pilot group)"
            );
        } else {
            tracing::info!(
                users = n,
                unmatched = ?unmatched,
                "sync.only: the engine syncs {n} users (pilot group); entries naming no known \
                 user (yet): {}",
                unmatched.join(", ")
            );
        }
        *current = members;
    }
    Ok(())
}

impl EngineRuntime {
    /// Loads persisted user state and the directory; nothing runs until [`Self::jobs`].
    pub async fn new(deps: RuntimeDeps, cancel: CancellationToken) -> StoreResult<EngineRuntime> {
        let cfg = deps.config.clone();
        let directory: Directory = Arc::new(RwLock::new(load_people(deps.store.as_ref()).await?));
        let pilot: Pilot = Arc::new(RwLock::new(None));
        let writer = Writer::new(
            deps.presence.clone(),
            deps.connectors.clone(),
            directory.clone(),
            Duration::from_secs(cfg.sync.session_expiration_secs),
            Duration::from_secs(cfg.sync.write_retry_max_secs),
            deps.metrics.clone(),
            cancel.clone(),
            cfg.sync.shadow(),
        );
        let shared = Arc::new(Shared {
            deps,
            writer,
            directory,
            pilot,
            reconcile_now: Notify::new(),
        });
        refresh_pilot(&shared).await?;
        let mode = if cfg.sync.shadow() { "shadow" } else { "live" };
        if cfg.sync.shadow() {
            tracing::warn!(
                "shadow mode (sync.mode = \"shadow\"): decisions are made, logged and recorded, \
                 but nothing is written to Teams or the contact center"
            );
        }
        let previous = shared.store.get_kv(MODE_KEY).await?;
        // State saved in shadow mode records writes that were never made: live mode starts
        // from what both sides show (the first reconciliation reads them) instead.
        let discard = !cfg.sync.shadow() && previous.as_deref() == Some("shadow");
        let n = cfg.sync.workers;
        let mut states: Vec<HashMap<UserId, UserState>> = vec![HashMap::new(); n];
        let saved = shared.store.load_user_states().await?;
        if discard {
            let fresh = JsonText::of(&UserState::default()).expect("state serializes");
            let reset: Vec<(UserId, JsonText)> = saved
                .iter()
                .map(|(u, _)| (u.clone(), fresh.clone()))
                .collect();
            if !reset.is_empty() {
                shared.store.save_user_states(&reset).await?;
            }
            tracing::info!(
                users = reset.len(),
                "switched from shadow to live: the engine state of shadow mode (writes never \
                 made) is dropped; live starts from what both sides show"
            );
        }
        if previous.as_deref() != Some(mode) {
            shared.store.put_kv(MODE_KEY, mode).await?;
        }
        for (user, value) in saved.into_iter().filter(|_| !discard) {
            match value.parse::<UserState>() {
                Ok(st) => {
                    states[shard(&user, n)].insert(user, st);
                }
                Err(e) => tracing::warn!(%user, error = %e, "unreadable engine state dropped"),
            }
        }
        let engine = Engine::from_config(&cfg);
        let (mut senders, mut workers) = (Vec::new(), Vec::new());
        for users in states {
            let (tx, rx) = mpsc::channel(WORKER_QUEUE);
            senders.push(tx);
            workers.push(Worker::new(engine.clone(), users, shared.clone(), rx));
        }
        Ok(EngineRuntime {
            shared,
            queues: Workers::new(senders),
            workers,
            cancel,
        })
    }

    /// The background jobs: the dispatcher, the workers and the reconciler.
    pub fn jobs(self) -> Vec<Job> {
        let mut jobs: Vec<Job> = Vec::new();
        for w in self.workers {
            jobs.push(("engine-worker", Box::pin(w.run(self.cancel.clone()))));
        }
        let reconciler = Reconciler {
            shared: self.shared.clone(),
            workers: self.queues.clone(),
        };
        jobs.push(("reconciler", Box::pin(reconciler.run(self.cancel.clone()))));
        let d = Dispatcher {
            shared: self.shared,
            workers: self.queues,
        };
        jobs.push(("engine", Box::pin(d.run(self.cancel))));
        jobs
    }
}

struct Dispatcher {
    shared: Arc<Shared>,
    workers: Workers,
}

impl Dispatcher {
    async fn run(self, cancel: CancellationToken) {
        let s = &self.shared;
        s.health.set("engine", false, HealthState::Up, "running");
        // Leases held under this instance's name belong to a previous run that died with
        // them: take them back now rather than wait for them to run out, so those items are
        // processed in their order, before newer ones.
        match s.store.inbox_reclaim().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                items = n,
                instance = s.store.instance_id(),
                "inbox: took back the leases of this instance's previous run"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "inbox: leases of a previous run could not be taken back; they return when they run out")
            }
        }
        let catalog_problems = self.fetch_catalogs().await;
        let mut inbox_failing = false;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let items = match s.inbox.claim(CLAIM_BATCH, LEASE_SECS).await {
                Ok(items) => {
                    if std::mem::take(&mut inbox_failing) {
                        tracing::info!("inbox: readable again");
                        self.report_health(catalog_problems.as_deref());
                    }
                    items
                }
                Err(e) => {
                    tracing::error!(error = %e, "inbox: claim failed");
                    inbox_failing = true;
                    s.health.set(
                        "engine",
                        false,
                        HealthState::Degraded,
                        "cannot read the inbox",
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_RECHECK) => continue,
                        _ = cancel.cancelled() => break,
                    }
                }
            };
            if items.is_empty() {
                tokio::select! {
                    _ = s.inbox.notified() => {}
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
                    _ = cancel.cancelled() => break,
                }
                continue;
            }
            self.handle(items).await;
        }
        s.writer.drain().await;
    }

    /// The engine's readiness line when the inbox is readable: degraded by catalog problems,
    /// else up.
    fn report_health(&self, catalog_problems: Option<&str>) {
        let h = &self.shared.health;
        match catalog_problems {
            Some(p) => h.set("engine", false, HealthState::Degraded, p),
            None if self.shared.config.sync.shadow() => h.set(
                "engine",
                false,
                HealthState::Up,
                "running in shadow mode: nothing is written",
            ),
            None => h.set("engine", false, HealthState::Up, "running"),
        }
    }

    /// Fetches each connector's status catalog, checks the rules against it and hands it to
    /// the workers and the writer. Problems are logged, make the engine degraded and are
    /// returned.
    pub async fn fetch_catalogs(&self) -> Option<String> {
        let s = &self.shared;
        let mut problems = Vec::new();
        let mut names: Vec<&str> = s.connectors.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut errs = crate::config::ConfigErrors::default();
        check_rule_connectors(
            &s.config.teams_to_cc,
            &s.config.cc_to_teams,
            &names,
            &mut errs,
        );
        for e in errs.iter() {
            tracing::error!(path = %e.path, "{}", e.message);
            problems.push(format!("{}: {}", e.path, e.message));
        }
        let mut connectors: Vec<_> = s.connectors.iter().collect();
        connectors.sort_unstable_by_key(|(name, _)| name.as_str());
        for (name, cc) in connectors {
            match cc.status_catalog().await {
                Ok(catalog) => {
                    let mut errs = crate::config::ConfigErrors::default();
                    rules::check_catalog(
                        name,
                        &s.config.teams_to_cc,
                        &s.config.cc_to_teams,
                        &catalog,
                        &mut errs,
                    );
                    for e in errs.iter() {
                        tracing::error!(path = %e.path, "{}", e.message);
                        problems.push(format!("{}: {}", e.path, e.message));
                    }
                    s.writer.set_catalog(name, catalog.clone());
                    self.workers
                        .broadcast(|| WorkerMsg::Catalog(name.clone(), catalog.clone()))
                        .await;
                }
                Err(e) => {
                    tracing::warn!(connector = %name, error = %e, "status catalog unavailable");
                    problems.push(format!("catalog of {name} unavailable"));
                }
            }
        }
        // A rule that names a status its connector does not have can never do what it says:
        // the daemon is not ready (a critical component), not merely degraded.
        let misfits: Vec<&str> = problems
            .iter()
            .filter(|p| !p.starts_with("catalog of "))
            .map(String::as_str)
            .collect();
        if misfits.is_empty() {
            s.health.set(
                "rules",
                true,
                HealthState::Up,
                "every rule fits the catalogs read",
            );
        } else {
            s.health
                .set("rules", true, HealthState::Down, misfits.join("; "));
        }
        let problems = (!problems.is_empty()).then(|| problems.join("; "));
        self.report_health(problems.as_deref());
        problems
    }

    async fn handle(&self, items: Vec<Claimed>) {
        let s = &self.shared;
        let mut ack = Vec::new();
        let mut release = Vec::new();
        let mut observations: Vec<Observation> = Vec::new();
        let mut refresh: BTreeSet<String> = BTreeSet::new();
        let mut refresh_ids = Vec::new();
        let mut resumes: Vec<crate::model::ResumeUser> = Vec::new();
        for item in items {
            let kind = match &item.payload {
                Ok(p) => p.kind(),
                Err(_) => "unreadable",
            };
            s.metrics
                .counter("engine_inbox_items_total", &[("kind", kind.to_owned())])
                .increment(1);
            match item.payload {
                Ok(InboxPayload::Observation(o)) => observations.push(o),
                Ok(InboxPayload::TeamsRefresh(r)) => {
                    refresh.extend(r.user_ids);
                    refresh_ids.push((item.id, item.attempts));
                    continue;
                }
                Ok(InboxPayload::ReconcileRequest) => s.reconcile_now.notify_one(),
                Ok(InboxPayload::ResumeUser(r)) => resumes.push(r),
                Err(e) => tracing::warn!(id = item.id, error = %e, "inbox item dropped"),
            }
            ack.push(item.id);
        }
        if !refresh.is_empty() {
            let ids: Vec<String> = refresh.into_iter().collect();
            match s.presence.get_presences(&ids).await {
                Ok(found) => {
                    let at = chrono::Utc::now();
                    observations.extend(found.into_iter().map(|(user, p)| Observation {
                        user,
                        status: Status::Teams(p),
                        observed_at: at,
                        source: Source::GraphWebhook,
                        activity: None,
                    }));
                    ack.extend(refresh_ids.iter().map(|(id, _)| *id));
                }
                Err(e) => {
                    tracing::warn!(error = %e, users = ids.len(), "presence read for notifications failed");
                    for (id, attempts) in refresh_ids {
                        if e.is_transient() && attempts + 1 < MAX_REFRESH_ATTEMPTS {
                            release.push(id);
                        } else {
                            ack.push(id);
                        }
                    }
                }
            }
        }
        self.route(observations).await;
        if !resumes.is_empty() {
            self.workers
                .scatter(
                    resumes,
                    |r| &r.user,
                    |items, done| WorkerMsg::Resume { items, done },
                )
                .await;
        }
        if !ack.is_empty()
            && let Err(e) = s.store.inbox_ack(&ack).await
        {
            tracing::error!(error = %e, "inbox: ack failed; items will be processed again");
        }
        if !release.is_empty()
            && let Err(e) = s.store.inbox_release(&release).await
        {
            tracing::error!(error = %e, "inbox: release failed");
        }
    }

    /// Sends observations to their workers (keeping each user's order) and waits until all
    /// are decided and saved.
    async fn route(&self, observations: Vec<Observation>) {
        self.workers
            .scatter(
                observations,
                |o| &o.user,
                |items, done| WorkerMsg::Observations { items, done },
            )
            .await;
    }
}
