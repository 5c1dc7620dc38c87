//! Chat-message subscriptions: one per support account, on
//! `/users/{user-id}/chats/getAllMessages` (every chat the account is in; delegated
//! `Chat.Read`), rich (`includeResourceData` with our certificate), `changeType=created`,
//! with a lifecycle URL (required beyond one hour:
//! <https://learn.microsoft.com/en-us/graph/teams-changenotifications-chatmessage>).
//!
//! The lifecycle is the presence manager's, through the same [`SubscriptionApi`]: created
//! when missing (a `409` adopts the existing one when it is ours, else deletes it so the next
//! pass creates ours), renewed by PATCH on `subscription_renew_interval_secs` (a `404`
//! recreates), recreated once expired, deleted when its account is no longer configured.
//! Records are kept in the store with kind [`KIND`], so a restart adopts them.
//! Lifecycle events: `reauthorizationRequired` renews, `subscriptionRemoved` recreates,
//! `missed` is logged (messages missed then are not fetched again).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::graph::GraphError;
use crate::graph::notifications::LifecycleEvent;
use crate::graph::subscriptions::api::{
    Caller, NewSubscription, RemoteSubscription, SubscriptionApi, SubscriptionPatch,
};
use crate::model::clock::Clock;
use crate::model::health::{HealthRegistry, HealthState};
use crate::store::{Store, StoreError, SubscriptionRecord, SyncAccountRecord};
use crate::telemetry::Metrics;

/// Store kind of chat-message subscriptions (the presence manager leaves other kinds alone).
pub const KIND: &str = "chat_messages";

/// Readiness component.
pub const HEALTH_COMPONENT: &str = "messaging_subscriptions";

/// How often subscriptions are checked: renewals fall due in hours; a minute bounds how long
/// a lost subscription goes unnoticed.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The chat-message subscription manager.
pub struct ChatSubscriptions {
    pub api: Arc<dyn SubscriptionApi>,
    pub store: Arc<dyn Store>,
    pub support_accounts: Vec<String>,
    pub notification_url: String,
    pub lifecycle_url: String,
    /// `(encryptionCertificateId, base64 DER)`.
    pub certificate: Option<(String, String)>,
    pub expiry_secs: u64,
    pub renew_interval_secs: u64,
    pub clock: Clock,
    pub metrics: Metrics,
    pub health: HealthRegistry,
}

/// `/users/{id}/chats/getAllMessages`
pub fn resource(user_id: &str) -> String {
    format!("/users/{user_id}/chats/getAllMessages")
}

impl ChatSubscriptions {
    /// The job: a pass every [`CHECK_INTERVAL`], lifecycle events as they come.
    pub async fn run(
        self,
        mut events: mpsc::UnboundedReceiver<LifecycleEvent>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = self.reconcile().await {
                        tracing::error!(error = %e, "chat subscription pass failed");
                    }
                }
                Some(ev) = events.recv() => self.on_lifecycle(ev).await,
            }
        }
    }

    /// One pass; returns how many support accounts are covered.
    pub async fn reconcile(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let accounts = self.store.list_accounts().await?;
        let records: Vec<SubscriptionRecord> = self
            .store
            .list_subscriptions()
            .await?
            .into_iter()
            .filter(|r| r.kind == KIND)
            .collect();
        let wanted: Vec<&SyncAccountRecord> = accounts
            .iter()
            .filter(|a| {
                self.support_accounts
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(&a.upn))
            })
            .collect();
        for r in &records {
            let keep = wanted
                .iter()
                .any(|a| r.account_id.as_deref() == Some(a.id.as_str()));
            if !keep {
                self.remove(r).await?;
            }
        }
        let mut covered = 0;
        let mut missing = Vec::new();
        for a in &wanted {
            let Some(user) = a.user_object_id.as_deref().filter(|_| a.state == "healthy") else {
                missing.push(a.upn.clone());
                continue;
            };
            let record = records
                .iter()
                .find(|r| r.account_id.as_deref() == Some(a.id.as_str()));
            let ok = match record {
                Some(r) if r.expires_at > now && r.resource == resource(user) => {
                    let last = r.last_renewed_at.unwrap_or(r.created_at);
                    if now - last >= chrono::Duration::seconds(self.renew_interval_secs as i64) {
                        self.renew(r, user, now).await?
                    } else {
                        true
                    }
                }
                Some(r) => {
                    self.remove(r).await?;
                    self.create(&a.id, user, now).await?
                }
                None => self.create(&a.id, user, now).await?,
            };
            if ok {
                covered += 1;
            } else {
                missing.push(a.upn.clone());
            }
        }
        for upn in &self.support_accounts {
            if !wanted.iter().any(|a| a.upn.eq_ignore_ascii_case(upn)) {
                missing.push(upn.clone());
            }
        }
        let state = if missing.is_empty() {
            HealthState::Up
        } else {
            HealthState::Degraded
        };
        let detail = if missing.is_empty() {
            format!("{covered} support account(s) subscribed")
        } else {
            format!(
                "{covered} support account(s) subscribed; not subscribed (sign in with `accounts add`, or see the log): {}",
                missing.join(", ")
            )
        };
        self.health.set(HEALTH_COMPONENT, false, state, detail);
        Ok(covered)
    }

    async fn create(
        &self,
        account_id: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let caller = Caller::Account(account_id);
        let req = NewSubscription {
            change_type: "created".into(),
            notification_url: self.notification_url.clone(),
            lifecycle_notification_url: self.lifecycle_url.clone(),
            resource: resource(user),
            expiration_date_time: now + chrono::Duration::seconds(self.expiry_secs as i64),
            client_state: random_client_state(),
            include_resource_data: self.certificate.is_some(),
            encryption_certificate_id: self.certificate.as_ref().map(|c| c.0.clone()),
            encryption_certificate: self.certificate.as_ref().map(|c| c.1.clone()),
        };
        let (remote, client_state) = match self.api.create(caller, &req).await {
            Ok(r) => (r, req.client_state.clone()),
            Err(GraphError::Conflict(_)) => match self.adopt(caller, &req).await {
                Some(found) => found,
                None => return Ok(false),
            },
            Err(e) => {
                tracing::warn!(error = %e, "chat subscription create failed");
                self.count("create_failed");
                return Ok(false);
            }
        };
        let record = SubscriptionRecord {
            id: remote.id,
            kind: KIND.into(),
            shard: None,
            account_id: Some(account_id.to_owned()),
            resource: req.resource,
            client_state,
            expires_at: remote.expiration_date_time,
            created_at: now,
            last_renewed_at: Some(now),
            last_reauthorized_at: None,
            state: "active".into(),
            last_error: None,
        };
        self.store.upsert_subscription(&record).await?;
        self.count("created");
        Ok(true)
    }

    /// After a `409`: the existing subscription on the same resource, when it carries a
    /// clientState (ours, from before a restart that lost the record); others are deleted.
    async fn adopt(
        &self,
        caller: Caller<'_>,
        req: &NewSubscription,
    ) -> Option<(RemoteSubscription, String)> {
        let list = match self.api.list(caller).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing subscriptions after a conflict failed");
                return None;
            }
        };
        let same = |r: &RemoteSubscription| {
            r.resource.trim_start_matches('/') == req.resource.trim_start_matches('/')
        };
        for r in list.into_iter().filter(same) {
            match r.client_state.clone().filter(|s| !s.is_empty()) {
                Some(state)
                    if r.notification_url
                        .as_deref()
                        .is_none_or(|u| u == req.notification_url) =>
                {
                    self.count("adopted");
                    return Some((r, state));
                }
                _ => {
                    let _ = self.api.delete(caller, &r.id).await;
                }
            }
        }
        None
    }

    async fn renew(
        &self,
        r: &SubscriptionRecord,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(account) = r.account_id.as_deref() else {
            return Ok(false);
        };
        let patch =
            SubscriptionPatch::renewal(now + chrono::Duration::seconds(self.expiry_secs as i64));
        match self
            .api
            .update(Caller::Account(account), &r.id, &patch)
            .await
        {
            Ok(remote) => {
                let mut rec = r.clone();
                rec.expires_at = remote.expiration_date_time;
                rec.last_renewed_at = Some(now);
                rec.state = "active".into();
                rec.last_error = None;
                self.store.upsert_subscription(&rec).await?;
                self.count("renewed");
                Ok(true)
            }
            Err(GraphError::NotFound) => {
                self.forget(r).await?;
                self.create(account, user, now).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "chat subscription renewal failed");
                self.count("renew_failed");
                Ok(r.expires_at > now)
            }
        }
    }

    /// `reauthorizationRequired`: renew now; `subscriptionRemoved`: recreate now.
    pub async fn on_lifecycle(&self, ev: LifecycleEvent) {
        let Ok(r) = self.store.get_subscription(&ev.subscription_id).await else {
            return;
        };
        if r.kind != KIND {
            return;
        }
        let now = self.clock.now();
        let user = r
            .resource
            .trim_start_matches("/users/")
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let result = match ev.event.as_str() {
            "reauthorizationRequired" => self.renew(&r, &user, now).await,
            "subscriptionRemoved" => match (self.forget(&r).await, r.account_id.as_deref()) {
                (Ok(()), Some(account)) => self.create(account, &user, now).await,
                (Err(e), _) => Err(e),
                _ => Ok(false),
            },
            other => {
                tracing::warn!(
                    event = other,
                    "chat subscription lifecycle event; messages sent meanwhile may be missing"
                );
                Ok(true)
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "chat subscription lifecycle handling failed");
        }
    }

    async fn remove(&self, r: &SubscriptionRecord) -> Result<(), StoreError> {
        let caller = r.account_id.as_deref().map_or(Caller::App, Caller::Account);
        match self.api.delete(caller, &r.id).await {
            Ok(()) | Err(GraphError::NotFound) => {}
            Err(e) => tracing::warn!(subscription_id = %r.id, error = %e, "delete failed"),
        }
        self.forget(r).await
    }

    async fn forget(&self, r: &SubscriptionRecord) -> Result<(), StoreError> {
        match self.store.delete_subscription(&r.id).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn count(&self, op: &'static str) {
        self.metrics
            .counter(
                "graph_subscription_operations_total",
                &[("op", op.to_owned()), ("kind", KIND.to_owned())],
            )
            .increment(1);
    }
}

/// 32 random bytes, base64url.
fn random_client_state() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
