//! Several replicas on one Postgres database: who runs what.
//!
//! Any replica takes Graph notifications and contact-center events into the shared inbox.
//! Everything else is owned through a lease (`store::lease`): the engine (one active engine
//! with hot standbys: the dispatcher, the per-user workers and reconciliation, so each user's
//! events are processed in order by one owner), the Graph presence source (the subscription
//! manager and the poller, one lease because the poller reads the manager's coverage),
//! directory sync, and each connector's event stream. A [`Member`] competes for each lease in
//! a keeper job; while it holds one it runs that work's jobs, built afresh on taking it, so
//! state comes from the store and timers from the persisted deadlines, never from the
//! memory of an earlier ownership. Every write of the work passes the lease's [`Fence`].
//!
//! Losing a lease (a renewal refused, or the local deadline passed while the database was
//! unreachable or the process was paused) stops the work at once and the replica follows
//! again. A stop (SIGTERM) stops the work, then releases the leases with a `NOTIFY` so a
//! follower takes over at once. A replica killed outright is replaced when its leases run
//! out (`store.lease_secs`).

pub mod fence;
pub mod fenced;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use fence::{Fence, Fenced};

use crate::job::Job;
use crate::model::health::{HealthRegistry, HealthState};
use crate::store::inbox::Inbox;
use crate::store::lease::{INBOX_CHANNEL, PgLeases};
use crate::telemetry::Metrics;

/// Lease of the engine (dispatcher, workers, reconciliation).
pub const ENGINE: &str = "engine";
/// Lease of the Graph presence source (subscription manager, poller, account refresh).
pub const GRAPH_PRESENCE: &str = "graph_presence";
/// Lease of directory sync.
pub const GRAPH_DIRECTORY: &str = "graph_directory";

/// Lease of one connector's event stream.
pub fn connector_lease(name: &str) -> String {
    format!("connector:{name}")
}

/// How long a stopping owner lets its work finish before it releases the lease anyway
/// (fenced from then on): the handover on SIGTERM must take at most 2 s, and the release
/// and the follower's take need a few milliseconds of that.
const HANDOVER_BUDGET: Duration = Duration::from_millis(1_500);
/// How long an owner that lost its lease waits for its work to stop before it follows
/// again; the work is fenced meanwhile, so this only bounds the wait.
const LOST_STOP_BUDGET: Duration = Duration::from_secs(10);
/// Pause after the notification listener failed (the followers still poll for leases).
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// What a piece of work runs while its lease is held, built afresh at each taking: the jobs,
/// given a token that stops them and the lease's fence. An error is logged and the lease
/// given back.
pub type Factory = Arc<
    dyn Fn(
            CancellationToken,
            Fence,
        ) -> Pin<Box<dyn Future<Output = Result<Vec<Job>, String>> + Send>>
        + Send
        + Sync,
>;

/// This process as one of the replicas. Cheap to clone.
#[derive(Clone)]
pub struct Member {
    inner: Arc<Inner>,
}

struct Inner {
    leases: PgLeases,
    holder: String,
    ttl: Duration,
    /// Leases competed for, with the token when held.
    owned: Mutex<BTreeMap<String, Option<i64>>>,
    /// A lease was released somewhere: followers try at once.
    released: Notify,
    health: HealthRegistry,
    metrics: Metrics,
}

impl Member {
    /// A member named after `instance` (plus a random suffix: a restarted process is a new
    /// holder, so the leases of its previous run are never mistaken for its own).
    pub fn new(
        leases: PgLeases,
        instance: &str,
        ttl: Duration,
        health: HealthRegistry,
        metrics: Metrics,
    ) -> Member {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let m = Member {
            inner: Arc::new(Inner {
                leases,
                holder: format!("{instance}/{}", &suffix[..8]),
                ttl,
                owned: Mutex::new(BTreeMap::new()),
                released: Notify::new(),
                health,
                metrics,
            }),
        };
        m.report();
        m
    }

    /// The name this process holds leases under.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    pub fn leases(&self) -> &PgLeases {
        &self.inner.leases
    }

    /// A follower tries for a free lease this often (and at once when one is released):
    /// a fifth of the lease time, so a lease left by a killed owner is taken within 1.2
    /// lease times at worst.
    fn retry_every(&self) -> Duration {
        (self.inner.ttl / 5).clamp(Duration::from_millis(100), Duration::from_secs(3))
    }

    /// An owner renews this often: three renewals fit in one lease time, so one slow or
    /// failed renewal does not lose the lease.
    fn renew_every(&self) -> Duration {
        self.inner.ttl / 3
    }

    /// The keeper job of `lease`: follows until it takes the lease, runs `factory`'s jobs
    /// while it holds it, follows again when it loses it; releases it when `cancel` fires.
    /// `standby` names a readiness component to mark as standby while another replica runs
    /// the work.
    pub fn gate(
        &self,
        lease: String,
        factory: Factory,
        standby: Option<&'static str>,
        cancel: &CancellationToken,
    ) -> Job {
        let me = self.clone();
        let cancel = cancel.clone();
        let span = tracing::info_span!("lease", lease = %lease);
        (
            "cluster_lease",
            Box::pin(tracing::Instrument::instrument(
                async move { me.keep(lease, factory, standby, cancel).await },
                span,
            )),
        )
    }

    async fn keep(
        self,
        lease: String,
        factory: Factory,
        standby: Option<&'static str>,
        cancel: CancellationToken,
    ) {
        self.set(&lease, None);
        let mut failing = false;
        loop {
            if let Some(component) = standby {
                self.inner.health.set(
                    component,
                    false,
                    HealthState::Up,
                    format!("standby: another replica holds the {lease} lease"),
                );
            }
            let sent = Instant::now();
            match self
                .inner
                .leases
                .acquire(&lease, &self.inner.holder, self.inner.ttl)
                .await
            {
                Ok(Some(token)) => {
                    failing = false;
                    if !self.lead(&lease, token, sent, &factory, &cancel).await {
                        return;
                    }
                }
                Ok(None) => failing = false,
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, "lease {lease}: cannot reach the database; trying again");
                    }
                }
            }
            let released = self.inner.released.notified();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.retry_every()) => {}
                _ = released => {}
            }
        }
    }

    /// Runs the work while the lease is held. Returns `false` when stopped by `cancel` (the
    /// lease is released), `true` when the lease was lost (the caller follows again).
    async fn lead(
        &self,
        lease: &str,
        token: i64,
        sent: Instant,
        factory: &Factory,
        cancel: &CancellationToken,
    ) -> bool {
        let ttl = self.inner.ttl;
        let fence = Fence::held(
            self.inner.leases.clone(),
            lease,
            &self.inner.holder,
            token,
            sent + ttl,
            self.inner.metrics.clone(),
        );
        self.set(lease, Some(token));
        self.count(lease, "acquired");
        tracing::info!(
            token,
            holder = %self.inner.holder,
            "took the {lease} lease (token {token}): this replica runs it now"
        );
        let child = cancel.child_token();
        let tracker = TaskTracker::new();
        match factory(child.clone(), fence.clone()).await {
            Ok(jobs) => {
                for (name, job) in jobs {
                    let span = tracing::info_span!("job", job = name);
                    tracker.spawn(tracing::Instrument::instrument(job, span));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "{lease}: the work could not start; giving the lease back");
                fence.revoke();
                let _ = self
                    .inner
                    .leases
                    .release(lease, &self.inner.holder, token)
                    .await;
                self.set(lease, None);
                return !cancel.is_cancelled();
            }
        }
        tracker.close();
        let lost = loop {
            tokio::select! {
                _ = cancel.cancelled() => break false,
                _ = tokio::time::sleep(self.renew_every()) => {}
            }
            let sent = Instant::now();
            match self
                .inner
                .leases
                .renew(lease, &self.inner.holder, token, ttl)
                .await
            {
                Ok(true) if !fence.expired() => fence.extend(sent + ttl),
                Ok(_) => break true,
                Err(e) => {
                    tracing::warn!(error = %e, "{lease}: renewal failed");
                    if fence.expired() {
                        break true;
                    }
                }
            }
        };
        if lost {
            fence.revoke();
            child.cancel();
            tracing::warn!(
                token,
                "lost the {lease} lease (token {token}): another replica may hold it now; \
                 this replica's work on it stops and every write of it is refused; following"
            );
            self.set(lease, None);
            self.count(lease, "lost");
            if tokio::time::timeout(LOST_STOP_BUDGET, tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!("{lease}: the work did not stop within {LOST_STOP_BUDGET:?}");
            }
            return true;
        }
        child.cancel();
        let drained = tokio::time::timeout(HANDOVER_BUDGET, tracker.wait())
            .await
            .is_ok();
        fence.revoke();
        match self
            .inner
            .leases
            .release(lease, &self.inner.holder, token)
            .await
        {
            Ok(()) => tracing::info!(
                drained,
                "released the {lease} lease (token {token}) for another replica"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "{lease}: release failed; it runs out in {ttl:?}")
            }
        }
        self.set(lease, None);
        self.count(lease, "released");
        false
    }

    /// The job that turns Postgres notifications into wake-ups: new inbox rows wake the
    /// engine (on whichever replica runs it), a released lease wakes the followers.
    pub fn listen_job(&self, inbox: Inbox, cancel: &CancellationToken) -> Job {
        let me = self.clone();
        let cancel = cancel.clone();
        (
            "cluster_listen",
            Box::pin(async move {
                loop {
                    match me.inner.leases.listen().await {
                        Ok(mut listener) => {
                            // Rows stored while nobody listened.
                            inbox.wake();
                            loop {
                                tokio::select! {
                                    _ = cancel.cancelled() => return,
                                    n = listener.recv() => match n {
                                        Ok(n) if n.channel() == INBOX_CHANNEL => inbox.wake(),
                                        Ok(_) => me.inner.released.notify_waiters(),
                                        Err(e) => {
                                            tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                                            break;
                                        }
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot LISTEN for inbox rows and leases")
                        }
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(LISTEN_RETRY) => {}
                    }
                }
            }),
        )
    }

    fn set(&self, lease: &str, token: Option<i64>) {
        self.inner
            .owned
            .lock()
            .expect("cluster lock")
            .insert(lease.to_owned(), token);
        self.inner
            .metrics
            .gauge("cluster_lease_held", &[("lease", lease.to_owned())])
            .set(if token.is_some() { 1.0 } else { 0.0 });
        self.report();
    }

    fn count(&self, lease: &str, change: &'static str) {
        self.inner
            .metrics
            .counter(
                "cluster_lease_changes_total",
                &[("lease", lease.to_owned()), ("change", change.to_owned())],
            )
            .increment(1);
    }

    /// The `cluster` readiness line: this replica's role and what it owns.
    fn report(&self) {
        let owned = self.inner.owned.lock().expect("cluster lock").clone();
        let held: Vec<String> = owned
            .iter()
            .filter_map(|(l, t)| t.map(|t| format!("{l} (token {t})")))
            .collect();
        let followed: Vec<&str> = owned
            .iter()
            .filter(|(_, t)| t.is_none())
            .map(|(l, _)| l.as_str())
            .collect();
        let role = if held.is_empty() { "follower" } else { "owner" };
        self.inner
            .metrics
            .gauge("cluster_leases_held", &[])
            .set(held.len() as f64);
        let mut detail = format!("role: {role}; replica {}", self.inner.holder);
        if !held.is_empty() {
            detail.push_str(&format!("; owns {}", held.join(", ")));
        }
        if !followed.is_empty() {
            detail.push_str(&format!("; standby for {}", followed.join(", ")));
        }
        self.inner
            .health
            .set("cluster", false, HealthState::Up, detail);
    }
}
