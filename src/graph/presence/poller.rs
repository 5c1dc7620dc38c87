//! App-only presence polling (`getPresencesByUserId`, 650 users per call), paced to
//! `graph.poll.calls_per_30s`, passing on only changes (shared [`PresenceMemory`]) as
//! observations with [`Source::GraphPoll`].
//!
//! Only the users in the sync scope ([`crate::graph::scope`]) are read.
//!
//! - `poll`: every user, as often as the budget and `interval_secs` allow.
//! - `hybrid`: users without a working subscription every `interval_secs`, everyone every
//!   `safety_interval_secs`.
//! - `webhook`: only users without a working subscription (no safety poll).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::engine::config::PresenceScope;
use crate::graph::notifications::config::{
    MAX_SHARD_SIZE, PollConfig, PresenceSource, poll_cadence,
};
use crate::graph::presence::memory::PresenceMemory;
use crate::graph::presence::scope_changes::ScopeChanges;
use crate::graph::scope::scoped_user_ids;
use crate::graph::subscriptions::Coverage;
use crate::graph::{GraphError, PresenceApi};
use crate::model::{Observation, Source, Status};
use crate::store::inbox::Inbox;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

pub struct Poller {
    pub api: Arc<dyn PresenceApi>,
    pub store: Arc<dyn Store>,
    pub inbox: Inbox,
    pub memory: PresenceMemory,
    /// The subscription manager's view; `None` when there is no manager (`poll` mode).
    pub coverage: Option<Coverage>,
    pub mode: PresenceSource,
    pub cfg: PollConfig,
    pub metrics: Metrics,
    /// Whose presence is polled (`sync.scope`, `sync.include`, `sync.exclude`).
    pub scope: PresenceScope,
    /// Fires when the directory or the matching changed: the users in scope are read from
    /// the store again and the cadence recomputed (never once per round).
    pub changes: ScopeChanges,
}

/// What a full round is made of, for the users in scope now.
struct Schedule {
    /// The users in scope, sorted (read from the store at start and on each change).
    users: Vec<String>,
    /// Time between two full rounds; `None` in `webhook` mode (no full rounds).
    every: Option<Duration>,
}

impl Poller {
    /// The job.
    pub async fn run(self, cancel: CancellationToken) {
        let mut changes = self.changes.subscribe();
        changes.mark_unchanged();
        let mut plan = self.schedule(Vec::new(), None, &cancel).await;
        let fast = Duration::from_secs(self.cfg.interval_secs);
        let mut round_started = tokio::time::Instant::now();
        let mut next_full = round_started;
        loop {
            let now = tokio::time::Instant::now();
            let result = if plan.every.is_some() && now >= next_full {
                round_started = now;
                next_full = now + plan.every.unwrap_or(fast);
                self.full_round(&plan.users, &cancel).await
            } else {
                self.poll_uncovered_of(&plan.users, &cancel).await
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "presence poll failed");
            }
            let wait_full = || next_full.saturating_duration_since(tokio::time::Instant::now());
            let mut until = tokio::time::Instant::now()
                + match self.mode {
                    PresenceSource::Poll => wait_full(),
                    _ => fast,
                };
            // Reads the subscription manager asks for (a shard lost or regained its
            // subscription) happen at once, without moving the schedule; so do reads of
            // people who just came into scope.
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(until) => break,
                    users = requested_reads(self.coverage.as_ref()) => {
                        if let Err(e) = self.poll_users(&users, &cancel).await {
                            tracing::error!(error = %e, users = users.len(), "presence read for a coverage gap failed");
                        }
                    }
                    Ok(()) = changes.changed() => {
                        let old = std::mem::take(&mut plan.users);
                        let old_count = old.len();
                        plan = self.schedule(old, Some(old_count), &cancel).await;
                        if let (PresenceSource::Poll, Some(every)) = (self.mode, plan.every) {
                            next_full = next_full.min(round_started + every);
                            until = until.min(next_full);
                        }
                    }
                }
            }
        }
    }

    /// Reads the users in scope from the store, recomputes the cadence (logged and shown in
    /// the metrics when the count changed) and reads the people new in scope at once.
    /// `previous` is the set before (empty at start); on a store error it is kept.
    async fn schedule(
        &self,
        previous: Vec<String>,
        logged: Option<usize>,
        cancel: &CancellationToken,
    ) -> Schedule {
        let users = match self.active_users().await {
            Ok(users) => users,
            Err(e) => {
                tracing::error!(error = %e, "users in presence scope unreadable; keeping the last known");
                previous.clone()
            }
        };
        let (interval, calls) = poll_cadence(users.len(), &self.cfg);
        let every = match self.mode {
            PresenceSource::Poll => Some(interval),
            PresenceSource::Hybrid => Some(Duration::from_secs(self.cfg.safety_interval_secs)),
            PresenceSource::Webhook => None,
        };
        if logged != Some(users.len()) {
            self.log_cadence(users.len(), interval, calls);
        }
        if !previous.is_empty() || logged.is_some() {
            // Both lists are sorted ([`scoped_user_ids`]).
            let added: Vec<String> = users
                .iter()
                .filter(|u| previous.binary_search(u).is_err())
                .cloned()
                .collect();
            if !added.is_empty()
                && let Err(e) = self.poll_users(&added, cancel).await
            {
                tracing::error!(error = %e, users = added.len(), "presence read of users new in scope failed");
            }
        }
        Schedule { users, every }
    }

    /// Says what a full round costs for `users` people in scope.
    fn log_cadence(&self, users: usize, interval: Duration, calls: usize) {
        self.metrics
            .gauge("graph_presence_poll_users", &[])
            .set(users as f64);
        self.metrics
            .gauge("graph_presence_poll_interval_seconds", &[])
            .set(interval.as_secs_f64());
        if users == 0 {
            tracing::info!(
                mode = ?self.mode,
                "presence polling: no user in scope yet (the directory and matching have not run); the cost of a round is logged once there are"
            );
            return;
        }
        let read_secs = calls as f64 * 30.0 / f64::from(self.cfg.calls_per_30s);
        tracing::info!(
            mode = ?self.mode,
            users,
            calls_per_round = calls,
            read_secs = format!("{read_secs:.1}"),
            staleness_secs = interval.as_secs_f64().round(),
            "presence polling: a full round reads every user in read_secs, at most staleness_secs apart"
        );
    }

    /// One full round over `users`; its length and calls go to the metrics.
    async fn full_round(
        &self,
        users: &[String],
        cancel: &CancellationToken,
    ) -> Result<usize, PollError> {
        let started = tokio::time::Instant::now();
        let stored = self.poll_users(users, cancel).await?;
        if !users.is_empty() && !cancel.is_cancelled() {
            let m = &self.metrics;
            m.counter("graph_presence_poll_rounds_total", &[])
                .increment(1);
            m.gauge("graph_presence_poll_round_seconds", &[])
                .set(started.elapsed().as_secs_f64());
            m.gauge("graph_presence_poll_round_calls", &[])
                .set(users.len().div_ceil(MAX_SHARD_SIZE) as f64);
        }
        Ok(stored)
    }

    async fn active_users(&self) -> Result<Vec<String>, StoreError> {
        scoped_user_ids(self.store.as_ref(), &self.scope).await
    }

    /// Reads every user in scope once (the scope read from the store now).
    pub async fn poll_all(&self, cancel: &CancellationToken) -> Result<usize, PollError> {
        let users = self.active_users().await?;
        self.poll_users(&users, cancel).await
    }

    /// Reads the users without a working subscription (all users before the manager's first
    /// pass), the scope read from the store now.
    pub async fn poll_uncovered(&self, cancel: &CancellationToken) -> Result<usize, PollError> {
        let users = self.active_users().await?;
        self.poll_uncovered_of(&users, cancel).await
    }

    /// Of `all` (the users in scope), reads those without a working subscription.
    async fn poll_uncovered_of(
        &self,
        all: &[String],
        cancel: &CancellationToken,
    ) -> Result<usize, PollError> {
        match &self.coverage {
            Some(c) => {
                let s = c.snapshot();
                if s.known {
                    self.poll_users(&s.uncovered_users, cancel).await
                } else {
                    // Before the manager's first pass nobody is known to be covered.
                    self.poll_users(all, cancel).await
                }
            }
            None => Ok(0),
        }
    }

    /// Reads `users` in calls of 650, paced to the budget; stores what changed. Returns how
    /// many observations were stored.
    pub async fn poll_users(
        &self,
        users: &[String],
        cancel: &CancellationToken,
    ) -> Result<usize, PollError> {
        let pace = Duration::from_secs_f64(30.0 / f64::from(self.cfg.calls_per_30s.max(1)));
        let mut tick = tokio::time::interval(pace);
        let mut stored = 0;
        for chunk in users.chunks(MAX_SHARD_SIZE) {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let presences = self.api.get_presences(chunk).await?;
            self.metrics
                .counter("graph_presence_polls_total", &[])
                .increment(1);
            let news: Vec<Observation> = presences
                .into_iter()
                .filter(|(id, p)| self.memory.is_news(id, p))
                .map(|(id, p)| Observation {
                    user: id,
                    status: Status::Teams(p),
                    observed_at: Utc::now(),
                    source: Source::GraphPoll,
                    activity: None,
                })
                .collect();
            if news.is_empty() {
                continue;
            }
            self.inbox.push_observations(&news).await?;
            for o in &news {
                if let Status::Teams(p) = &o.status {
                    self.memory.record(&o.user, p);
                }
            }
            stored += news.len();
        }
        Ok(stored)
    }
}

/// The users the subscription manager wants read now; never, without a manager.
async fn requested_reads(coverage: Option<&Coverage>) -> Vec<String> {
    match coverage {
        Some(c) => c.requested_reads().await,
        None => std::future::pending().await,
    }
}

/// Why a poll round stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("graph: {0}")]
    Graph(#[from] GraphError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::graph::subscriptions::coverage::CoverageState;
    use crate::model::TeamsPresence;
    use crate::store::UserRecord;

    #[derive(Default)]
    struct FakeGraph {
        presence: Mutex<HashMap<String, (String, String)>>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl PresenceApi for FakeGraph {
        async fn get_presences(
            &self,
            ids: &[String],
        ) -> Result<Vec<(String, TeamsPresence)>, GraphError> {
            self.asked.lock().unwrap().extend_from_slice(ids);
            let p = self.presence.lock().unwrap();
            Ok(ids
                .iter()
                .filter_map(|id| {
                    p.get(id)
                        .map(|(a, b)| (id.clone(), TeamsPresence::new(a, b)))
                })
                .collect())
        }
        async fn set_presence(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: Duration,
        ) -> Result<(), GraphError> {
            Err(GraphError::NotFound)
        }
        async fn clear_presence(&self, _: &str) -> Result<(), GraphError> {
            Err(GraphError::NotFound)
        }
        async fn set_user_preferred_presence(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: Option<Duration>,
        ) -> Result<(), GraphError> {
            Err(GraphError::NotFound)
        }
        async fn clear_user_preferred_presence(&self, _: &str) -> Result<(), GraphError> {
            Err(GraphError::NotFound)
        }
    }

    async fn poller(
        mode: PresenceSource,
        coverage: Option<Coverage>,
    ) -> (Poller, Arc<FakeGraph>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::config::StoreConfig {
            url: format!("sqlite://{}/poll.db", dir.path().display()).into(),
            ..Default::default()
        };
        let store = crate::store::open(&cfg).await.unwrap();
        let users: Vec<UserRecord> = ["u1", "u2"].iter().map(|id| user(id.to_string())).collect();
        store.upsert_users(&users).await.unwrap();
        let api = Arc::new(FakeGraph::default());
        for id in ["u1", "u2"] {
            api.presence
                .lock()
                .unwrap()
                .insert(id.into(), ("Available".into(), "Available".into()));
        }
        let p = Poller {
            api: api.clone(),
            inbox: Inbox::new(store.clone()),
            store,
            memory: PresenceMemory::new(),
            coverage,
            mode,
            cfg: PollConfig::default(),
            metrics: Metrics::new(),
            scope: PresenceScope::all(),
            changes: ScopeChanges::default(),
        };
        (p, api, dir)
    }

    #[tokio::test]
    async fn only_changes_are_stored_as_poll_observations() {
        let (p, api, _dir) = poller(PresenceSource::Poll, None).await;
        let cancel = CancellationToken::new();
        assert_eq!(p.poll_all(&cancel).await.unwrap(), 2);
        assert_eq!(p.poll_all(&cancel).await.unwrap(), 0);
        api.presence
            .lock()
            .unwrap()
            .insert("u2".into(), ("Busy".into(), "InACall".into()));
        assert_eq!(p.poll_all(&cancel).await.unwrap(), 1);
        let items = p.store.inbox_claim(10, 30).await.unwrap();
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|i| i.payload["source"] == "graph_poll"));
        // poll mode has no subscriptions: nothing counts as uncovered.
        assert_eq!(p.poll_uncovered(&cancel).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn hybrid_fast_polls_only_uncovered_users_once_coverage_is_known() {
        let coverage = Coverage::default();
        let (p, api, _dir) = poller(PresenceSource::Hybrid, Some(coverage.clone())).await;
        let cancel = CancellationToken::new();
        // Before the manager's first pass everyone is polled.
        p.poll_uncovered(&cancel).await.unwrap();
        assert_eq!(api.asked.lock().unwrap().len(), 2);
        coverage.set(CoverageState {
            known: true,
            uncovered_users: vec!["u2".into()],
            shards: 1,
            accounts_missing: 1,
            failing: 0,
        });
        api.asked.lock().unwrap().clear();
        p.poll_uncovered(&cancel).await.unwrap();
        assert_eq!(*api.asked.lock().unwrap(), vec!["u2".to_owned()]);
    }

    /// The value of an unlabelled metric in the Prometheus text.
    fn metric(m: &Metrics, name: &str) -> f64 {
        m.render()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Polls `cond` every 20 ms for up to 10 s.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn user(id: String) -> UserRecord {
        UserRecord {
            upn: format!("{id}@contoso.example"),
            teams_id: id,
            mail: None,
            display_name: None,
            business_phones: vec![],
            mobile_phone: None,
            cc_connector: None,
            cc_agent_id: None,
            active: true,
            updated_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn the_users_in_scope_stay_in_memory_until_a_change_then_cadence_and_reads_follow() {
        let (mut p, api, _dir) = poller(PresenceSource::Poll, None).await;
        // One call a second: 2 users take one call (a round every interval_secs = 1 s);
        // 702 users take two calls (a round every 2 s).
        p.cfg.calls_per_30s = 30;
        p.cfg.interval_secs = 1;
        let (store, metrics, changes) = (p.store.clone(), p.metrics.clone(), p.changes.clone());
        let cancel = CancellationToken::new();
        let job = tokio::spawn(p.run(cancel.clone()));
        until("first round", || {
            metric(&metrics, "graph_presence_poll_rounds_total") >= 1.0
        })
        .await;
        assert_eq!(metric(&metrics, "graph_presence_poll_users"), 2.0);
        assert_eq!(
            metric(&metrics, "graph_presence_poll_interval_seconds"),
            1.0
        );

        // The directory grows, but nobody says so yet: the rounds keep to the users known.
        let more: Vec<UserRecord> = (0..700).map(|i| user(format!("v{i:03}"))).collect();
        store.upsert_users(&more).await.unwrap();
        until("two more rounds", || {
            metric(&metrics, "graph_presence_poll_rounds_total") >= 3.0
        })
        .await;
        assert!(
            api.asked.lock().unwrap().iter().all(|u| u.starts_with('u')),
            "the store is not read again for each round"
        );

        // The change is signalled: new people are read at once, the cadence follows.
        changes.notify();
        until("new users read", || {
            api.asked.lock().unwrap().iter().any(|u| u == "v699")
        })
        .await;
        assert_eq!(metric(&metrics, "graph_presence_poll_users"), 702.0);
        assert_eq!(
            metric(&metrics, "graph_presence_poll_interval_seconds"),
            2.0
        );
        let rounds = metric(&metrics, "graph_presence_poll_rounds_total");
        until("a full round of everyone", || {
            metric(&metrics, "graph_presence_poll_rounds_total") > rounds
                && metric(&metrics, "graph_presence_poll_round_calls") == 2.0
        })
        .await;
        cancel.cancel();
        job.await.unwrap();
    }
}
