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
pub mod shards;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::graph::GraphError;
use crate::graph::notifications::config::SubscriptionsConfig;
use crate::graph::notifications::{LifecycleEvent, NotificationReceiver};
use crate::graph::subscriptions::api::{
    Caller, NewSubscription, RemoteSubscription, SubscriptionApi, presence_resource,
};
pub use crate::graph::subscriptions::coverage::{Coverage, CoverageState};
use crate::graph::subscriptions::shards::{Slot, active_user_ids, plan};
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
}

/// What one shard ended up as in a pass.
enum ShardOutcome {
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
        let users = active_user_ids(self.store.as_ref()).await?;
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
            } else if self.renewal_due(r, now) {
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

    async fn renew(
        &self,
        mut r: SubscriptionRecord,
        now: DateTime<Utc>,
    ) -> Result<ShardOutcome, StoreError> {
        let caller = caller(&r);
        match self
            .api
            .renew(caller, &r.id, self.expiry(&r.kind, now))
            .await
        {
            Ok(remote) => {
                r.expires_at = remote.expiration_date_time;
                r.last_renewed_at = Some(now);
                r.state = "active".into();
                r.last_error = None;
                self.store.upsert_subscription(&r).await?;
                self.count("renewed", &r.kind);
                Ok(ShardOutcome::Covered)
            }
            Err(GraphError::NotFound) => {
                tracing::warn!(subscription_id = %r.id, "subscription gone on renewal; recreating");
                self.forget(&r).await?;
                let account = r.account_id.clone();
                self.create(&r.kind, r.shard, account.as_deref(), r.resource, now)
                    .await
            }
            Err(e) => {
                tracing::warn!(subscription_id = %r.id, error = %e, "subscription renewal failed");
                r.state = "failing".into();
                r.last_error = Some(e.to_string());
                self.store.upsert_subscription(&r).await?;
                self.count("renew_failed", &r.kind);
                Ok(if r.expires_at > now {
                    // Still alive: keep it, but poll its users until a renewal works.
                    ShardOutcome::Failing
                } else {
                    ShardOutcome::Uncovered
                })
            }
        }
    }

    async fn create(
        &self,
        kind: &str,
        shard: Option<i64>,
        account: Option<&str>,
        resource: String,
        now: DateTime<Utc>,
    ) -> Result<ShardOutcome, StoreError> {
        let caller = account.map_or(Caller::App, Caller::Account);
        let rich = kind == "presence" && self.settings.certificate.is_some();
        let cert = self.settings.certificate.clone().filter(|_| rich);
        let req = NewSubscription {
            change_type: if kind == "users" {
                "updated,deleted"
            } else {
                "updated"
            }
            .into(),
            notification_url: self.settings.notification_url.clone(),
            lifecycle_notification_url: self.settings.lifecycle_url.clone(),
            resource: resource.clone(),
            expiration_date_time: self.expiry(kind, now),
            client_state: random_client_state(),
            include_resource_data: rich,
            encryption_certificate_id: cert.as_ref().map(|c| c.0.clone()),
            encryption_certificate: cert.map(|c| c.1),
        };
        let (remote, client_state) = match self.api.create(caller, &req).await {
            Ok(remote) => (remote, req.client_state.clone()),
            Err(GraphError::Conflict(_)) => match self.adopt(caller, &req).await {
                Some(found) => found,
                None => return Ok(ShardOutcome::Failing),
            },
            Err(e) => {
                tracing::warn!(kind, shard, error = %e, "subscription create failed");
                self.count("create_failed", kind);
                return Ok(ShardOutcome::Failing);
            }
        };
        let record = SubscriptionRecord {
            id: remote.id,
            kind: kind.into(),
            shard,
            account_id: account.map(str::to_owned),
            resource,
            client_state,
            expires_at: remote.expiration_date_time,
            created_at: now,
            last_renewed_at: Some(now),
            last_reauthorized_at: None,
            state: "active".into(),
            last_error: None,
        };
        self.store.upsert_subscription(&record).await?;
        self.receiver.remember(&record).await;
        self.count("created", kind);
        Ok(ShardOutcome::Covered)
    }

    /// After a 409: adopt the existing subscription when it is ours and covers the same
    /// resource; otherwise delete it so the next pass can create ours.
    async fn adopt(
        &self,
        caller: Caller<'_>,
        req: &NewSubscription,
    ) -> Option<(RemoteSubscription, String)> {
        let existing = match self.api.list(caller).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "listing subscriptions after a conflict failed");
                return None;
            }
        };
        let same_kind = |r: &RemoteSubscription| {
            r.change_type == req.change_type
                && (r.resource.starts_with("/communications/presences")
                    || r.resource.starts_with("communications/presences"))
                    == req.resource.starts_with("/communications/presences")
        };
        for r in existing.into_iter().filter(same_kind) {
            let same_resource =
                r.resource.trim_start_matches('/') == req.resource.trim_start_matches('/');
            match r.client_state.clone() {
                Some(state) if same_resource && !state.is_empty() => {
                    self.count("adopted", "presence");
                    return Some((r, state));
                }
                _ => {
                    let _ = self.api.delete(caller, &r.id).await;
                }
            }
        }
        None
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
            Some(r) if self.renewal_due(&r, now) => {
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

    async fn remove(&self, r: &SubscriptionRecord) -> Result<(), StoreError> {
        match self.api.delete(caller(r), &r.id).await {
            Ok(()) | Err(GraphError::NotFound) => {}
            Err(e) => tracing::warn!(subscription_id = %r.id, error = %e, "delete failed"),
        }
        self.forget(r).await
    }

    async fn forget(&self, r: &SubscriptionRecord) -> Result<(), StoreError> {
        self.receiver.forget(&r.id).await;
        match self.store.delete_subscription(&r.id).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
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

fn caller(r: &SubscriptionRecord) -> Caller<'_> {
    r.account_id.as_deref().map_or(Caller::App, Caller::Account)
}

/// 32 random bytes, base64url: 43 characters (Graph allows 128).
fn random_client_state() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
