//! The calls that change one subscription: renew (PATCH), create (POST, adopting on 409),
//! delete, and forgetting one Graph no longer has.

use base64::Engine;
use chrono::{DateTime, Utc};

use crate::graph::GraphError;
use crate::graph::subscriptions::api::{Caller, NewSubscription, RemoteSubscription};
use crate::graph::subscriptions::{ShardOutcome, SubscriptionManager};
use crate::store::{StoreError, SubscriptionRecord};

impl SubscriptionManager {
    pub(super) async fn renew(
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

    pub(super) async fn create(
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
    pub(super) async fn adopt(
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

    pub(super) async fn remove(&self, r: &SubscriptionRecord) -> Result<(), StoreError> {
        match self.api.delete(caller(r), &r.id).await {
            Ok(()) | Err(GraphError::NotFound) => {}
            Err(e) => tracing::warn!(subscription_id = %r.id, error = %e, "delete failed"),
        }
        self.forget(r).await
    }

    pub(super) async fn forget(&self, r: &SubscriptionRecord) -> Result<(), StoreError> {
        self.receiver.forget(&r.id).await;
        match self.store.delete_subscription(&r.id).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub(super) fn caller(r: &SubscriptionRecord) -> Caller<'_> {
    r.account_id.as_deref().map_or(Caller::App, Caller::Account)
}

/// 32 random bytes, base64url: 43 characters (Graph allows 128).
fn random_client_state() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
