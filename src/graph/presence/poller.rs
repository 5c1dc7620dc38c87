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
}

impl Poller {
    /// The job.
    pub async fn run(self, cancel: CancellationToken) {
        let users = self.active_users().await.map(|u| u.len()).unwrap_or(0);
        let (interval, _) = poll_cadence(users, &self.cfg);
        let mut logged = self.log_cadence(users, None);
        let fast = Duration::from_secs(self.cfg.interval_secs);
        let mut safety = match self.mode {
            PresenceSource::Poll => Some(interval),
            PresenceSource::Hybrid => Some(Duration::from_secs(self.cfg.safety_interval_secs)),
            PresenceSource::Webhook => None,
        };
        let mut next_full = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            let full = safety.is_some() && now >= next_full;
            let result = if full {
                if self.mode == PresenceSource::Poll {
                    // The scope grows as agents are matched (none are at a first start): pace
                    // the rounds for the users there are now.
                    let users = self.active_users().await.map(|u| u.len()).unwrap_or(0);
                    safety = Some(poll_cadence(users, &self.cfg).0);
                    logged = self.log_cadence(users, logged);
                }
                next_full = now + safety.unwrap_or(interval);
                self.poll_all(&cancel).await
            } else {
                self.poll_uncovered(&cancel).await
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "presence poll failed");
            }
            let wait = match safety {
                Some(_) if self.mode == PresenceSource::Poll => {
                    next_full.saturating_duration_since(tokio::time::Instant::now())
                }
                _ => fast,
            };
            let until = tokio::time::Instant::now() + wait;
            // Reads the subscription manager asks for (a shard lost or regained its
            // subscription) happen at once, without moving the schedule.
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(until) => break,
                    users = requested_reads(self.coverage.as_ref()) => {
                        if let Err(e) = self.poll_users(&users, &cancel).await {
                            tracing::error!(error = %e, users = users.len(), "presence read for a coverage gap failed");
                        }
                    }
                }
            }
        }
    }

    /// Says what a full round costs, once per number of users in scope (not before any user
    /// is: the directory and matching may not have run yet). Returns the number logged.
    fn log_cadence(&self, users: usize, logged: Option<usize>) -> Option<usize> {
        if users == 0 || logged == Some(users) {
            if logged.is_none() && users == 0 {
                tracing::info!(
                    mode = ?self.mode,
                    "presence polling: no user in scope yet (the directory and matching have not run); the cost of a round is logged once there are"
                );
                return Some(0);
            }
            return logged;
        }
        let (interval, calls) = poll_cadence(users, &self.cfg);
        let read_secs = calls as f64 * 30.0 / f64::from(self.cfg.calls_per_30s);
        tracing::info!(
            mode = ?self.mode,
            users,
            calls_per_round = calls,
            read_secs = format!("{read_secs:.1}"),
            staleness_secs = interval.as_secs_f64().round(),
            "presence polling: a full round reads every user in read_secs, at most staleness_secs apart"
        );
        Some(users)
    }

    async fn active_users(&self) -> Result<Vec<String>, StoreError> {
        scoped_user_ids(self.store.as_ref(), &self.scope).await
    }

    pub async fn poll_all(&self, cancel: &CancellationToken) -> Result<usize, PollError> {
        let users = self.active_users().await?;
        self.poll_users(&users, cancel).await
    }

    /// Reads the users without a working subscription (all users before the manager's first
    /// pass).
    pub async fn poll_uncovered(&self, cancel: &CancellationToken) -> Result<usize, PollError> {
        let users = match &self.coverage {
            Some(c) => {
                let s = c.snapshot();
                if s.known {
                    s.uncovered_users
                } else {
                    // Before the manager's first pass nobody is known to be covered.
                    self.active_users().await?
                }
            }
            None => return Ok(0),
        };
        self.poll_users(&users, cancel).await
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
        let users: Vec<UserRecord> = ["u1", "u2"]
            .iter()
            .map(|id| UserRecord {
                teams_id: (*id).into(),
                upn: format!("{id}@contoso.example"),
                mail: None,
                display_name: None,
                business_phones: vec![],
                mobile_phone: None,
                cc_connector: None,
                cc_agent_id: None,
                active: true,
                updated_at: Utc::now(),
            })
            .collect();
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
}
