//! The store, the Teams side and the contact centers as the owner of a lease sees them:
//! every write checks the [`Fence`] first and is refused once the lease is lost. Reads and
//! the ingestion writes any replica makes (inbox pushes, contact-center events, contact
//! events) pass unchecked.
//!
//! Outbound writes are checked immediately before they are sent; a pause between the check
//! and the request is the one window fencing cannot close without the vendor's help (no
//! vendor API here takes a fencing token). It is one request long, not a lease long.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::fence::{Fence, Fenced};
use crate::connectors::{
    AgentStatus, CatalogStatus, ConnectorError, ConnectorEvent, ContactCenter, InboundWebhook,
};
use crate::graph::{GraphError, PresenceApi};
use crate::model::contact_center::{Agent, ContactEvent, EventTimeBounds};
use crate::model::health::HealthState;
use crate::model::{CcStatus, TeamsPresence};
use crate::store::*;

fn store_err(e: Fenced) -> StoreError {
    StoreError::Conflict(e.to_string())
}

/// A [`Store`] whose writes pass the fence.
pub struct FencedStore {
    inner: Arc<dyn Store>,
    fence: Fence,
}

impl FencedStore {
    /// `store` itself when the fence is open (one replica).
    pub fn wrap(inner: Arc<dyn Store>, fence: &Fence) -> Arc<dyn Store> {
        if !fence.is_guarded() {
            return inner;
        }
        Arc::new(FencedStore {
            inner,
            fence: fence.clone(),
        })
    }

    async fn check(&self, what: &str) -> StoreResult<()> {
        self.fence.check(what).await.map_err(store_err)
    }
}

#[async_trait]
impl Store for FencedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    fn instance_id(&self) -> &str {
        self.inner.instance_id()
    }
    async fn upsert_users(&self, users: &[UserRecord]) -> StoreResult<()> {
        self.check("store: users").await?;
        self.inner.upsert_users(users).await
    }
    async fn get_user(&self, teams_id: &str) -> StoreResult<UserRecord> {
        self.inner.get_user(teams_id).await
    }
    async fn get_users(&self, teams_ids: &[String]) -> StoreResult<Vec<UserRecord>> {
        self.inner.get_users(teams_ids).await
    }
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.inner.list_users().await
    }
    async fn list_users_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        self.inner.list_users_page(after, limit).await
    }
    async fn set_user_matches(&self, matches: &[UserMatch], at: DateTime<Utc>) -> StoreResult<u64> {
        self.check("store: users").await?;
        self.inner.set_user_matches(matches, at).await
    }
    async fn directory_version(&self) -> StoreResult<[String; 5]> {
        self.inner.directory_version().await
    }
    async fn deactivate_users(&self, teams_ids: &[String]) -> StoreResult<u64> {
        self.check("store: users").await?;
        self.inner.deactivate_users(teams_ids).await
    }
    async fn user_by_agent(&self, connector: &str, agent_id: &str) -> StoreResult<UserRecord> {
        self.inner.user_by_agent(connector, agent_id).await
    }
    async fn replace_agents(&self, connector: &str, agents: &[AgentRecord]) -> StoreResult<()> {
        self.check("store: agents").await?;
        self.inner.replace_agents(connector, agents).await
    }
    async fn list_agents(&self, connector: Option<&str>) -> StoreResult<Vec<AgentRecord>> {
        self.inner.list_agents(connector).await
    }
    async fn put_observed(&self, observed: &[ObservedStatus]) -> StoreResult<()> {
        self.check("store: observed statuses").await?;
        self.inner.put_observed(observed).await
    }
    async fn list_observed(&self) -> StoreResult<Vec<ObservedStatus>> {
        self.inner.list_observed().await
    }
    async fn put_writes(&self, writes: &[WriteRecord]) -> StoreResult<()> {
        self.check("store: write records").await?;
        self.inner.put_writes(writes).await
    }
    async fn list_writes(&self) -> StoreResult<Vec<WriteRecord>> {
        self.inner.list_writes().await
    }
    async fn save_user_states(&self, states: &[(String, JsonText)]) -> StoreResult<()> {
        self.check("store: engine state").await?;
        self.inner.save_user_states(states).await
    }
    async fn load_user_states(&self) -> StoreResult<Vec<(String, JsonText)>> {
        self.inner.load_user_states().await
    }
    async fn upsert_subscription(&self, sub: &SubscriptionRecord) -> StoreResult<()> {
        self.check("store: subscription").await?;
        self.inner.upsert_subscription(sub).await
    }
    async fn list_subscriptions(&self) -> StoreResult<Vec<SubscriptionRecord>> {
        self.inner.list_subscriptions().await
    }
    async fn get_subscription(&self, id: &str) -> StoreResult<SubscriptionRecord> {
        self.inner.get_subscription(id).await
    }
    async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
        self.check("store: subscription").await?;
        self.inner.delete_subscription(id).await
    }
    async fn insert_account(&self, account: &SyncAccountRecord) -> StoreResult<()> {
        self.inner.insert_account(account).await
    }
    async fn update_account(&self, account: &SyncAccountRecord) -> StoreResult<()> {
        self.check("store: sync account").await?;
        self.inner.update_account(account).await
    }
    async fn list_accounts(&self) -> StoreResult<Vec<SyncAccountRecord>> {
        self.inner.list_accounts().await
    }
    async fn get_account(&self, id: &str) -> StoreResult<SyncAccountRecord> {
        self.inner.get_account(id).await
    }
    async fn delete_account(&self, id: &str) -> StoreResult<()> {
        self.inner.delete_account(id).await
    }
    async fn get_kv(&self, key: &str) -> StoreResult<Option<String>> {
        self.inner.get_kv(key).await
    }
    async fn put_kv(&self, key: &str, value: &str) -> StoreResult<()> {
        self.check("store: key/value").await?;
        self.inner.put_kv(key, value).await
    }
    async fn delete_kv(&self, key: &str) -> StoreResult<()> {
        self.check("store: key/value").await?;
        self.inner.delete_kv(key).await
    }
    async fn get_cursors(&self, connector: &str) -> StoreResult<Vec<(String, String)>> {
        self.inner.get_cursors(connector).await
    }
    async fn put_cursors(&self, connector: &str, cursors: &[(String, String)]) -> StoreResult<()> {
        self.check("store: connector cursors").await?;
        self.inner.put_cursors(connector, cursors).await
    }
    async fn delete_cursors(&self, connector: &str, keys: &[String]) -> StoreResult<()> {
        self.check("store: connector cursors").await?;
        self.inner.delete_cursors(connector, keys).await
    }
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        self.check("store: audit").await?;
        self.inner.append_audit(entries).await
    }
    async fn list_audit(&self, user_id: &str, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        self.inner.list_audit(user_id, limit).await
    }
    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.prune_audit(before).await
    }
    async fn inbox_push(&self, items: &[NewInboxItem]) -> StoreResult<()> {
        self.inner.inbox_push(items).await
    }
    async fn inbox_claim(&self, limit: u32, lease_secs: u32) -> StoreResult<Vec<InboxItem>> {
        self.check("store: inbox claim").await?;
        self.inner.inbox_claim(limit, lease_secs).await
    }
    async fn inbox_reclaim(&self) -> StoreResult<u64> {
        self.check("store: inbox reclaim").await?;
        self.inner.inbox_reclaim().await
    }
    async fn inbox_ack(&self, ids: &[i64]) -> StoreResult<()> {
        self.check("store: inbox ack").await?;
        self.inner.inbox_ack(ids).await
    }
    async fn inbox_release(&self, ids: &[i64]) -> StoreResult<()> {
        self.check("store: inbox release").await?;
        self.inner.inbox_release(ids).await
    }
    async fn inbox_len(&self) -> StoreResult<u64> {
        self.inner.inbox_len().await
    }
    async fn ingest_push(
        &self,
        connector: &str,
        rows: &[IngestRow],
    ) -> StoreResult<Vec<IngestVerdict>> {
        self.inner.ingest_push(connector, rows).await
    }
    async fn prune_ingest(&self, before: DateTime<Utc>, per_agent: u32) -> StoreResult<u64> {
        self.inner.prune_ingest(before, per_agent).await
    }
    // The integrations' work queue leases each job itself: any replica may run them.
    async fn queue_push(&self, jobs: &[NewJob]) -> StoreResult<u64> {
        self.inner.queue_push(jobs).await
    }
    async fn queue_claim(
        &self,
        queue: &str,
        limit: u32,
        lease_secs: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>> {
        self.inner.queue_claim(queue, limit, lease_secs, now).await
    }
    async fn queue_done(&self, id: i64) -> StoreResult<()> {
        self.inner.queue_done(id).await
    }
    async fn queue_retry(
        &self,
        id: i64,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        self.inner.queue_retry(id, not_before, error).await
    }
    async fn queue_len(&self, queue: &str) -> StoreResult<u64> {
        self.inner.queue_len(queue).await
    }
    async fn queue_next_due(&self, queue: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.queue_next_due(queue).await
    }
    async fn prune_jobs(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.prune_jobs(before).await
    }
    async fn list_people(
        &self,
        query: &crate::store::people::PeopleQuery,
    ) -> StoreResult<crate::store::people::PeoplePage> {
        self.inner.list_people(query).await
    }
    // The integrations' per-contact state is written by queue jobs, which lease themselves:
    // not fenced, like the queue.
    async fn contact_state_get(
        &self,
        integration: &str,
        connector: &str,
        contact_id: &str,
    ) -> StoreResult<Option<crate::store::ContactStateRecord>> {
        self.inner
            .contact_state_get(integration, connector, contact_id)
            .await
    }
    async fn contact_state_put(
        &self,
        record: &crate::store::ContactStateRecord,
    ) -> StoreResult<()> {
        self.inner.contact_state_put(record).await
    }
    async fn contact_state_prune(
        &self,
        integration: &str,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.inner.contact_state_prune(integration, before).await
    }
    async fn contact_events_push(
        &self,
        connector: &str,
        events: &[ContactEvent],
    ) -> StoreResult<Vec<bool>> {
        self.inner.contact_events_push(connector, events).await
    }
    async fn list_contact_events(
        &self,
        agent_id: &str,
        connector: Option<&str>,
        contacts: u32,
    ) -> StoreResult<Vec<StoredContactEvent>> {
        self.inner
            .list_contact_events(agent_id, connector, contacts)
            .await
    }
    async fn prune_contact_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.prune_contact_events(before).await
    }
}

/// The Teams side with fenced writes (a refusal is `Forbidden`: not retried).
pub struct FencedPresence {
    inner: Arc<dyn PresenceApi>,
    fence: Fence,
}

impl FencedPresence {
    /// `presence` itself when the fence is open.
    pub fn wrap(inner: Arc<dyn PresenceApi>, fence: &Fence) -> Arc<dyn PresenceApi> {
        if !fence.is_guarded() {
            return inner;
        }
        Arc::new(FencedPresence {
            inner,
            fence: fence.clone(),
        })
    }

    async fn check(&self, what: &str) -> Result<(), GraphError> {
        self.fence
            .check(what)
            .await
            .map_err(|e| GraphError::Forbidden {
                reason: e.to_string(),
            })
    }
}

#[async_trait]
impl PresenceApi for FencedPresence {
    async fn get_presences(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<(String, TeamsPresence)>, GraphError> {
        self.inner.get_presences(user_ids).await
    }
    async fn set_presence(
        &self,
        user_id: &str,
        availability: &str,
        activity: &str,
        expiration: Duration,
    ) -> Result<(), GraphError> {
        self.check("Teams: setPresence").await?;
        self.inner
            .set_presence(user_id, availability, activity, expiration)
            .await
    }
    async fn clear_presence(&self, user_id: &str) -> Result<(), GraphError> {
        self.check("Teams: clearPresence").await?;
        self.inner.clear_presence(user_id).await
    }
    async fn set_user_preferred_presence(
        &self,
        user_id: &str,
        availability: &str,
        activity: &str,
        expiration: Option<Duration>,
    ) -> Result<(), GraphError> {
        self.check("Teams: setUserPreferredPresence").await?;
        self.inner
            .set_user_preferred_presence(user_id, availability, activity, expiration)
            .await
    }
    async fn clear_user_preferred_presence(&self, user_id: &str) -> Result<(), GraphError> {
        self.check("Teams: clearUserPreferredPresence").await?;
        self.inner.clear_user_preferred_presence(user_id).await
    }
}

/// A contact center with fenced status writes (a refusal is `Rejected`: not retried).
pub struct FencedContactCenter {
    inner: Arc<dyn ContactCenter>,
    fence: Fence,
}

impl FencedContactCenter {
    /// `cc` itself when the fence is open.
    pub fn wrap(inner: Arc<dyn ContactCenter>, fence: &Fence) -> Arc<dyn ContactCenter> {
        if !fence.is_guarded() {
            return inner;
        }
        Arc::new(FencedContactCenter {
            inner,
            fence: fence.clone(),
        })
    }
}

#[async_trait]
impl ContactCenter for FencedContactCenter {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError> {
        self.inner.list_agents().await
    }
    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError> {
        self.inner.status_catalog().await
    }
    async fn current_statuses(
        &self,
        agent_ids: &[String],
    ) -> Result<Vec<AgentStatus>, ConnectorError> {
        self.inner.current_statuses(agent_ids).await
    }
    async fn set_status(&self, agent_id: &str, status: &CcStatus) -> Result<(), ConnectorError> {
        self.fence
            .check("contact center: set status")
            .await
            .map_err(|e| ConnectorError::Rejected {
                reason: e.to_string(),
            })?;
        self.inner.set_status(agent_id, status).await
    }
    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError> {
        self.inner.run_events(events, cancel).await
    }
    fn events_stored(&self, n: usize) {
        self.inner.events_stored(n)
    }
    async fn health(&self) -> (HealthState, String) {
        self.inner.health().await
    }
    fn webhook(&self) -> Option<&dyn InboundWebhook> {
        self.inner.webhook()
    }
    fn contact_webhook(&self) -> Option<&dyn InboundWebhook> {
        self.inner.contact_webhook()
    }
    fn event_time_bounds(&self) -> EventTimeBounds {
        self.inner.event_time_bounds()
    }
}
