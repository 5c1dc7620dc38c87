//! The subscription manager: one presence subscription per shard of ≤650 users, each owned by
//! one delegated sync account, plus one app-only `users` subscription for directory changes.
//!
//! Every [`CHECK_INTERVAL`] it plans the shards ([`crate::graph::subscriptions::shards`]) and acts: creates
//! what is missing (a `409` adopts the existing subscription), renews by PATCH on the configured
//! cadence (a `404` recreates), replaces a shard's subscription when its members changed
//! (the shard is polled meanwhile), and deletes what no shard needs. Graph sends presence no
//! `missed`/`subscriptionRemoved` events, so the manager is its own watchdog: an expired or
//! failing subscription marks its shard uncovered, and [`Coverage`] tells the poller which
//! users to poll fast. State is persisted in the store, so a restart adopts what exists.

pub mod api;
pub mod client;
pub mod coverage;
mod ops;
pub mod shards;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::engine::config::PresenceScope;
use crate::graph::notifications::config::SubscriptionsConfig;
use crate::graph::notifications::{LifecycleEvent, NotificationReceiver};
use crate::graph::scope::scoped_user_ids;
use crate::graph::subscriptions::api::{SubscriptionApi, presence_resource};
pub use crate::graph::subscriptions::coverage::{Coverage, CoverageState};
use crate::graph::subscriptions::shards::{Slot, plan};
use crate::model::clock::Clock;
use crate::model::health::{HealthRegistry, HealthState};
use crate::store::{Store, StoreError, SubscriptionRecord};
use crate::telemetry::Metrics;

/// How often subscriptions are checked. Renewals fall due every 10 minutes by default; a
/// minute bounds how long an expired or failing subscription goes unnoticed.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Graph forbids a reauthorize and a PATCH of one subscription within this window.
const REAUTH_WINDOW_SECS: i64 = 600;

/// Health component name.
pub const HEALTH_COMPONENT: &str = "graph_subscriptions";

/// Where notifications go and how subscriptions are asked for.
pub struct ManagerSettings {
    pub notification_url: String,
    pub lifecycle_url: String,
    /// `(encryptionCertificateId, base64 DER)` for rich notifications.
    pub certificate: Option<(String, String)>,
    pub cfg: SubscriptionsConfig,
    /// Whose presence is subscribed (`sync.scope`, `sync.include`, `sync.exclude`).
    pub scope: PresenceScope,
}

/// Built with a struct literal; `coverage` starts as `Coverage::default()`.
pub struct SubscriptionManager {
    pub api: Arc<dyn SubscriptionApi>,
    pub store: Arc<dyn Store>,
    pub receiver: NotificationReceiver,
    pub health: HealthRegistry,
    pub metrics: Metrics,
    pub settings: ManagerSettings,
    pub clock: Clock,
    /// Shared with the poller.
    pub coverage: Coverage,
    /// Subscriptions known to carry the notification URL and certificate configured now
    /// (made, or renewed with them, since this start). Starts empty.
    pub applied: Applied,
}

/// Ids of subscriptions whose settings are current; see [`SubscriptionManager::applied`].
#[derive(Debug, Default)]
pub struct Applied(std::sync::Mutex<std::collections::HashSet<String>>);

/// What one shard ended up as in a pass.
pub(super) enum ShardOutcome {
    Covered,
    Uncovered,
    Failing,
}

impl SubscriptionManager {
    pub fn coverage(&self) -> Coverage {
        self.coverage.clone()
    }

    /// The job: a pass every [`CHECK_INTERVAL`], lifecycle events as they come.
    pub async fn run(self, cancel: CancellationToken) {
        let mut events = self.receiver.take_lifecycle_events();
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = self.reconcile().await {
                        tracing::error!(error = %e, "subscription pass failed");
                    }
                }
                Some(ev) = async { match events.as_mut() { Some(rx) => rx.recv().await, None => None } } => {
                    self.on_lifecycle(ev).await;
                }
            }
        }
    }

    /// One pass over all subscriptions.
    pub async fn reconcile(&self) -> Result<CoverageState, StoreError> {
        let now = self.clock.now();
        let users = scoped_user_ids(self.store.as_ref(), &self.settings.scope).await?;
        let mut accounts: Vec<String> = self
            .store
            .list_accounts()
            .await?
            .into_iter()
            .filter(|a| a.state == "healthy")
            .map(|a| a.id)
            .collect();
        accounts.sort();
        let records = self.store.list_subscriptions().await?;
        let (presence, other): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|r| r.kind == "presence");
        let (slots, orphans) = plan(&users, &accounts, &presence, self.settings.cfg.shard_size);
        for r in orphans {
            self.remove(&r).await?;
        }
        let mut state = CoverageState {
            known: true,
            shards: slots.len(),
            ..Default::default()
        };
        for slot in slots {
            match self.shard(slot.clone(), now).await? {
                ShardOutcome::Covered => {}
                ShardOutcome::Uncovered => {
                    state.accounts_missing += usize::from(slot.account.is_none());
                    state.uncovered_users.extend(slot.members);
                }
                ShardOutcome::Failing => {
                    state.failing += 1;
                    state.uncovered_users.extend(slot.members);
                }
            }
        }
        self.users_subscription(other, now).await?;
        self.report(&state);
        self.coverage.set(state.clone());
        Ok(state)
    }

    async fn shard(&self, slot: Slot, now: DateTime<Utc>) -> Result<ShardOutcome, StoreError> {
        let Some(account) = slot.account.clone() else {
            if let Some(r) = &slot.record {
                self.remove(r).await?;
            }
            return Ok(ShardOutcome::Uncovered);
        };
        if let Some(r) = &slot.record {
            let same_owner = r.account_id.as_deref() == Some(account.as_str());
            if !same_owner || !slot.record_matches() || r.expires_at <= now {
                // Replace: the old one goes first (one presence subscription per account);
                // the shard is polled until the new one exists.
                self.coverage.add_uncovered(&slot.members);
                self.remove(r).await?;
            } else if self.renewal_due(r, now) || !self.applied(&r.id) {
                return self.renew(r.clone(), now).await;
            } else {
                return Ok(if r.state == "failing" {
                    ShardOutcome::Failing
                } else {
                    ShardOutcome::Covered
                });
            }
        }
        let resource = presence_resource(&slot.members);
        self.create("presence", Some(slot.shard), Some(&account), resource, now)
            .await
    }

    fn applied(&self, id: &str) -> bool {
        self.applied.0.lock().expect("applied lock").contains(id)
    }

    fn mark_applied(&self, id: &str) {
        self.applied
            .0
            .lock()
            .expect("applied lock")
            .insert(id.to_owned());
    }

    fn renewal_due(&self, r: &SubscriptionRecord, now: DateTime<Utc>) -> bool {
        let every = if r.kind == "users" {
            self.settings.cfg.users_renew_interval_secs
        } else {
            self.settings.cfg.presence_renew_interval_secs
        };
        let last = r.last_renewed_at.unwrap_or(r.created_at);
        r.state == "failing" || now - last >= chrono::Duration::seconds(every as i64)
    }

    fn expiry(&self, kind: &str, now: DateTime<Utc>) -> DateTime<Utc> {
        let secs = if kind == "users" {
            self.settings.cfg.users_expiry_secs
        } else {
            self.settings.cfg.presence_expiry_secs
        };
        now + chrono::Duration::seconds(secs as i64)
    }

    async fn users_subscription(
        &self,
        records: Vec<SubscriptionRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut users: Vec<_> = records.into_iter().filter(|r| r.kind == "users").collect();
        let keep = users.pop().filter(|_| self.settings.cfg.users_subscription);
        for r in users {
            self.remove(&r).await?;
        }
        match keep {
            Some(r) if r.expires_at <= now => {
                self.forget(&r).await?;
                self.create("users", None, None, "users".into(), now)
                    .await?;
            }
            Some(r) if self.renewal_due(&r, now) || !self.applied(&r.id) => {
                self.renew(r, now).await?;
            }
            Some(_) => {}
            None if self.settings.cfg.users_subscription => {
                self.create("users", None, None, "users".into(), now)
                    .await?;
            }
            None => {}
        }
        Ok(())
    }

    /// `reauthorizationRequired`: PATCH with a new expiry (which also reauthorizes), unless a
    /// PATCH or reauthorize happened within Graph's 10-minute window.
    pub async fn on_lifecycle(&self, ev: LifecycleEvent) {
        if ev.event != "reauthorizationRequired" {
            // Presence gets only reauthorizationRequired; the next pass repairs anything else.
            return;
        }
        let Ok(r) = self.store.get_subscription(&ev.subscription_id).await else {
            return;
        };
        let now = self.clock.now();
        let recent = [r.last_renewed_at, r.last_reauthorized_at]
            .into_iter()
            .flatten()
            .any(|t| now - t < chrono::Duration::seconds(REAUTH_WINDOW_SECS));
        if recent {
            return;
        }
        if let Err(e) = self.renew(r, now).await {
            tracing::error!(error = %e, "reauthorization failed");
        }
    }

    fn report(&self, s: &CoverageState) {
        let covered = s.shards - s.accounts_missing - s.failing;
        let detail = format!(
            "{covered} of {} presence shards subscribed; {} sync account(s) missing; {} failing",
            s.shards, s.accounts_missing, s.failing
        );
        let state = if s.accounts_missing == 0 && s.failing == 0 {
            HealthState::Up
        } else {
            HealthState::Degraded
        };
        self.health.set(HEALTH_COMPONENT, false, state, detail);
        self.metrics
            .gauge("graph_sync_accounts_missing", &[])
            .set(s.accounts_missing as f64);
        self.metrics
            .gauge("graph_presence_shards_uncovered", &[])
            .set((s.accounts_missing + s.failing) as f64);
    }

    fn count(&self, what: &'static str, kind: &str) {
        self.metrics
            .counter(
                "graph_subscription_operations_total",
                &[("op", what.to_owned()), ("kind", kind.to_owned())],
            )
            .increment(1);
    }
}
