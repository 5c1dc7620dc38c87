//! The calls that change one subscription: renew (PATCH), create (POST, adopting on 409),
//! delete, and forgetting one Graph no longer has.

use base64::Engine;
use chrono::{DateTime, Utc};

use crate::graph::GraphError;
use crate::graph::subscriptions::api::{
    Caller, NewSubscription, RemoteSubscription, SubscriptionPatch, presence_resource_ids,
};
use crate::graph::subscriptions::{ShardOutcome, SubscriptionManager};
use crate::store::{StoreError, SubscriptionRecord};

impl SubscriptionManager {
    /// PATCHes a new expiry. The first renewal of a subscription after a start also carries
    /// the notification URL and certificate now configured, so that a moved endpoint or a
    /// rotated certificate reaches subscriptions made before; when Graph will not take the
    /// certificate by PATCH, the subscription is replaced (its shard read and polled meanwhile).
    pub(super) async fn renew(
        &self,
        mut r: SubscriptionRecord,
        now: DateTime<Utc>,
    ) -> Result<ShardOutcome, StoreError> {
        let caller = caller(&r);
        let expires = self.expiry(&r.kind, now);
        let result = if self.applied(&r.id) {
            let patch = SubscriptionPatch::renewal(expires);
            self.api
                .update(caller, &r.id, &patch)
                .await
                .map(|s| (s, true))
        } else {
            self.apply_settings(caller, &r, expires).await
        };
        match result {
            Ok((remote, current)) => {
                r.expires_at = remote.expiration_date_time;
                r.last_renewed_at = Some(now);
                r.state = "active".into();
                r.last_error = None;
                self.store.upsert_subscription(&r).await?;
                self.count("renewed", &r.kind);
                if !current {
                    tracing::info!(subscription_id = %r.id, "subscription carries another certificate; replacing it");
                    return self.replace(&r, now).await;
                }
                self.mark_applied(&r.id);
                Ok(ShardOutcome::Covered)
            }
            Err(GraphError::NotFound) => {
                tracing::warn!(subscription_id = %r.id, "subscription gone on renewal; recreating");
                // Changes made since it vanished reached nobody: read its users now.
                self.lost(&r);
                self.forget(&r).await?;
                let account = r.account_id.clone();
                self.create(&r.kind, r.shard, account.as_deref(), r.resource, now)
                    .await
            }
            Err(e) => {
                tracing::warn!(subscription_id = %r.id, error = %e, "subscription renewal failed");
                if r.state != "failing" {
                    self.coverage.request_read(&members(&r));
                }
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

    /// The first PATCH after a start: the expiry, the notification URL and (presence) the
    /// certificate in force. Returns the subscription and whether it carries that certificate.
    async fn apply_settings(
        &self,
        caller: Caller<'_>,
        r: &SubscriptionRecord,
        expires: DateTime<Utc>,
    ) -> Result<(RemoteSubscription, bool), GraphError> {
        let cert = self.certificate_for(&r.kind);
        let mut patch = SubscriptionPatch {
            notification_url: Some(self.settings.notification_url.clone()),
            encryption_certificate_id: cert.as_ref().map(|c| c.0.clone()),
            encryption_certificate: cert.as_ref().map(|c| c.1.clone()),
            ..SubscriptionPatch::renewal(expires)
        };
        let remote = match self.api.update(caller, &r.id, &patch).await {
            Err(GraphError::BadRequest { message, .. })
                if patch.encryption_certificate.is_some() =>
            {
                tracing::info!(subscription_id = %r.id, %message, "Graph refused the certificate in a PATCH; renewing without it");
                patch.encryption_certificate = None;
                patch.encryption_certificate_id = None;
                self.api.update(caller, &r.id, &patch).await?
            }
            other => other?,
        };
        let want = cert.map(|c| c.0);
        let have = remote.encryption_certificate_id.as_deref();
        let current = match (want.as_deref(), have) {
            // Not reported: nothing to compare.
            (_, None) => true,
            (None, Some(have)) => have.is_empty(),
            (Some(want), Some(have)) => want == have,
        };
        Ok((remote, current))
    }

    /// Replaces a subscription whose settings cannot be changed in place. Graph allows one
    /// presence subscription per sync account, so the old one goes first; its users are read
    /// at once and polled fast until the new one is confirmed, then read again.
    pub(super) async fn replace(
        &self,
        r: &SubscriptionRecord,
        now: DateTime<Utc>,
    ) -> Result<ShardOutcome, StoreError> {
        self.lost(r);
        self.remove(r).await?;
        self.create(
            &r.kind,
            r.shard,
            r.account_id.as_deref(),
            r.resource.clone(),
            now,
        )
        .await
    }

    /// A shard lost its subscription: poll its users fast, starting now.
    pub(super) fn lost(&self, r: &SubscriptionRecord) {
        let users = members(r);
        self.coverage.add_uncovered(&users);
        self.coverage.request_read(&users);
    }

    /// `(encryptionCertificateId, certificate)` for subscriptions of `kind` (rich presence).
    fn certificate_for(&self, kind: &str) -> Option<(String, String)> {
        self.settings
            .certificate
            .clone()
            .filter(|_| kind == "presence")
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
        let cert = self.certificate_for(kind);
        let rich = cert.is_some();
        let users = if kind == "presence" {
            presence_resource_ids(&resource)
        } else {
            Vec::new()
        };
        // The shard is read once the outcome is known: after a failure its users are polled
        // until a create works; after a success this closes the gap before the subscription
        // existed.
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
        let (remote, client_state, adopted) = match self.api.create(caller, &req).await {
            Ok(remote) => (remote, req.client_state.clone(), false),
            Err(GraphError::Conflict(_)) => match self.adopt(caller, &req).await {
                // Made before this start: the first renewal brings its settings up to date.
                Some((remote, state)) => (remote, state, true),
                None => {
                    self.coverage.request_read(&users);
                    return Ok(ShardOutcome::Failing);
                }
            },
            Err(e) => {
                tracing::warn!(kind, shard, error = %e, "subscription create failed");
                self.count("create_failed", kind);
                self.coverage.request_read(&users);
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
        if !adopted {
            self.mark_applied(&record.id);
        }
        self.count("created", kind);
        self.coverage.request_read(&users);
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

/// The users a presence subscription covers (none for other kinds).
pub(super) fn members(r: &SubscriptionRecord) -> Vec<String> {
    if r.kind == "presence" {
        presence_resource_ids(&r.resource)
    } else {
        Vec::new()
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
