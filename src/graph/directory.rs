//! The directory: Teams-licensed users (an `assignedPlans` advanced query, paged), kept
//! current through `/users/delta` with the delta link persisted in the store. A rejected or
//! expired link triggers a full resync. Users who lose the licence, are disabled or deleted are
//! deactivated in the store (kept for the audit trail).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::GraphError;
use super::client::{GraphClient, GraphRequest};
use crate::engine::config::PresenceScope;
use crate::graph::client::ApiFamily;
use crate::graph::presence::scope_changes::ScopeChanges;
use crate::graph::scope;
use crate::store::{self, Store, StoreError, UserRecord};

/// Store key of the users delta link.
pub const DELTA_LINK_KEY: &str = "graph.users.delta_link";
/// Fields read for each user.
const USER_FIELDS: &str =
    "id,userPrincipalName,mail,displayName,businessPhones,mobilePhone,accountEnabled,assignedPlans";
/// Page size of the licensed-users query (Graph's maximum for users is 999).
const PAGE_SIZE: u32 = 999;
/// After a failed sync, the next try comes this soon rather than a full interval later: long
/// enough not to hammer a throttled tenant, short enough that new agents appear quickly.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedPlan {
    #[serde(default)]
    pub service_plan_id: String,
    #[serde(default)]
    pub capability_status: String,
}

/// A user as the directory queries return it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub business_phones: Option<Vec<String>>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// Absent when the answer did not carry it (delta may omit it; UNCERTAIN).
    #[serde(default)]
    pub assigned_plans: Option<Vec<AssignedPlan>>,
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

impl DirectoryUser {
    /// `Some(false)` when the answer shows the user is not (or no longer) a Teams user.
    fn licensed(&self, plans: &[String]) -> Option<bool> {
        if self.removed.is_some() || self.account_enabled == Some(false) {
            return Some(false);
        }
        self.assigned_plans.as_ref().map(|ap| {
            ap.iter().any(|p| {
                p.capability_status.eq_ignore_ascii_case("Enabled")
                    && plans
                        .iter()
                        .any(|id| id.eq_ignore_ascii_case(&p.service_plan_id))
            })
        })
    }

    /// The store record, keeping the agent match of `previous`.
    pub fn to_record(&self, previous: Option<&UserRecord>) -> UserRecord {
        UserRecord {
            teams_id: self.id.clone(),
            upn: self
                .user_principal_name
                .clone()
                .or_else(|| previous.map(|p| p.upn.clone()))
                .unwrap_or_default(),
            mail: self
                .mail
                .clone()
                .or_else(|| previous.and_then(|p| p.mail.clone())),
            display_name: self
                .display_name
                .clone()
                .or_else(|| previous.and_then(|p| p.display_name.clone())),
            business_phones: self
                .business_phones
                .clone()
                .or_else(|| previous.map(|p| p.business_phones.clone()))
                .unwrap_or_default(),
            mobile_phone: self
                .mobile_phone
                .clone()
                .or_else(|| previous.and_then(|p| p.mobile_phone.clone())),
            cc_connector: previous.and_then(|p| p.cc_connector.clone()),
            cc_agent_id: previous.and_then(|p| p.cc_agent_id.clone()),
            active: true,
            updated_at: Utc::now(),
        }
    }
}

#[derive(Deserialize)]
struct Page {
    value: Vec<DirectoryUser>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

/// Why a directory sync failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("graph: {0}")]
    Graph(#[from] GraphError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub full: bool,
    pub upserted: usize,
    pub deactivated: u64,
}

/// The pages of a paged Graph listing, read one at a time by following `@odata.nextLink`.
pub struct Pages<'a> {
    client: &'a GraphClient,
    next: Option<GraphRequest>,
    delta_link: Option<String>,
}

impl Pages<'_> {
    /// The next page's users; `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<DirectoryUser>>, GraphError> {
        let Some(req) = self.next.take() else {
            return Ok(None);
        };
        let page: Page = self.client.send_json(req.clone()).await?;
        match page.next_link {
            Some(next) => self.next = Some(GraphRequest { url: next, ..req }),
            None => self.delta_link = page.delta_link,
        }
        Ok(Some(page.value))
    }
}

impl GraphClient {
    fn pages(&self, first: GraphRequest) -> Pages<'_> {
        Pages {
            client: self,
            next: Some(first),
            delta_link: None,
        }
    }

    /// Follows `@odata.nextLink` from `first`; returns the users and the final delta link.
    async fn follow(
        &self,
        first: GraphRequest,
    ) -> Result<(Vec<DirectoryUser>, Option<String>), GraphError> {
        let mut out = Vec::new();
        let mut pages = self.pages(first);
        while let Some(page) = pages.next_page().await? {
            out.extend(page);
        }
        Ok((out, pages.delta_link))
    }

    /// Every enabled user holding one of `plans` with capabilityStatus Enabled.
    pub async fn list_teams_users(
        &self,
        plans: &[String],
    ) -> Result<Vec<DirectoryUser>, GraphError> {
        Ok(self.follow(self.teams_users_request(plans)?).await?.0)
    }

    /// [`Self::list_teams_users`] a page at a time.
    pub fn teams_users_pages(&self, plans: &[String]) -> Result<Pages<'_>, GraphError> {
        Ok(self.pages(self.teams_users_request(plans)?))
    }

    fn teams_users_request(&self, plans: &[String]) -> Result<GraphRequest, GraphError> {
        let any: Vec<String> = plans
            .iter()
            .map(|p| {
                format!("assignedPlans/any(a:a/servicePlanId eq {p} and a/capabilityStatus eq 'Enabled')")
            })
            .collect();
        let filter = format!("accountEnabled eq true and ({})", any.join(" or "));
        let mut url = url::Url::parse(&self.config().graph_url("users"))
            .map_err(|e| GraphError::Decode(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$select", USER_FIELDS)
            .append_pair("$count", "true")
            .append_pair("$top", &PAGE_SIZE.to_string());
        Ok(
            GraphRequest::new(Method::GET, url.to_string(), ApiFamily::Directory)
                .header("ConsistencyLevel", "eventual"),
        )
    }

    /// Changes since `link`; or, with `None`, a fresh link without data (`$deltatoken=latest`).
    pub async fn users_delta(
        &self,
        link: Option<&str>,
    ) -> Result<(Vec<DirectoryUser>, String), GraphError> {
        let url = match link {
            Some(l) => l.to_owned(),
            None => self.config().graph_url(&format!(
                "users/delta?$select={USER_FIELDS}&$deltatoken=latest"
            )),
        };
        let (users, delta) = self
            .follow(GraphRequest::new(Method::GET, url, ApiFamily::Directory))
            .await?;
        let delta =
            delta.ok_or_else(|| GraphError::Decode("delta without @odata.deltaLink".into()))?;
        Ok((users, delta))
    }
}

/// True when Graph refused a delta link (expired or unknown sync state).
fn link_rejected(e: &GraphError) -> bool {
    match e {
        GraphError::BadRequest { code, .. } => {
            code.eq_ignore_ascii_case("syncStateNotFound")
                || code.eq_ignore_ascii_case("resyncRequired")
        }
        GraphError::NotFound => true,
        _ => e.to_string().contains("http_410"),
    }
}

/// Keeps the store's users in step with the tenant.
#[derive(Clone)]
pub struct DirectorySync {
    client: GraphClient,
    store: Arc<dyn Store>,
    scope: PresenceScope,
    changes: Option<ScopeChanges>,
}

impl DirectorySync {
    pub fn new(client: GraphClient, store: Arc<dyn Store>) -> Self {
        Self {
            client,
            store,
            scope: PresenceScope::default(),
            changes: None,
        }
    }

    /// Signals `changes` after each sync that stored users (the poller reads its scope again).
    pub fn with_changes(mut self, changes: ScopeChanges) -> Self {
        self.changes = Some(changes);
        self
    }

    /// The sync scope whose groups' members are read with each sync.
    pub fn with_scope(mut self, scope: PresenceScope) -> Self {
        self.scope = scope;
        self
    }

    /// One sync of the users, then of the sync scope's group members (a group that cannot be
    /// read keeps its last known members and does not fail the sync).
    pub async fn run_once(&self) -> Result<SyncReport, DirectoryError> {
        let report = self.sync_users().await?;
        if let Err(e) =
            scope::refresh_group_members(&self.client, self.store.as_ref(), &self.scope).await
        {
            tracing::warn!(error = %e, "sync scope: group members not all read");
        }
        // A delta that changed nothing (most of them) leaves the scope as it was: waking the
        // poller would make it read every user again for nothing. Group members are not
        // compared, so a scope with groups is always read again.
        let changed = report.full || report.upserted > 0 || report.deactivated > 0;
        if let Some(changes) = &self.changes
            && (changed || !self.scope.groups().is_empty())
        {
            changes.notify();
        }
        Ok(report)
    }

    /// Incremental from the stored link, or full when there is none or it is refused.
    async fn sync_users(&self) -> Result<SyncReport, DirectoryError> {
        if let Some(link) = self.store.get_kv(DELTA_LINK_KEY).await? {
            match self.client.users_delta(Some(&link)).await {
                Ok((changes, next)) => return self.apply_delta(changes, next).await,
                Err(e) if link_rejected(&e) => {
                    tracing::info!("users delta link refused; running a full directory resync");
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.full().await
    }

    /// The stored records of `ids` (those that exist), read [`store::USERS_PER_READ`] at a
    /// time: a delta or a page of the listing names a few hundred users, never the directory.
    async fn known_of(&self, ids: Vec<String>) -> Result<HashMap<String, UserRecord>, StoreError> {
        Ok(self
            .store
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.teams_id.clone(), u))
            .collect())
    }

    async fn full(&self) -> Result<SyncReport, DirectoryError> {
        // Take the link first so that changes made during the listing come with the next delta.
        let (_, link) = self.client.users_delta(None).await?;
        let plans = &self.client.config().teams_service_plan_ids;
        // A page at a time: each page's users are merged with their stored records and stored
        // before the next is read, so only the ids seen are kept for the whole listing (not
        // every user with its plans, nor every stored record).
        let mut pages = self.client.teams_users_pages(plans)?;
        let mut seen: HashSet<String> = HashSet::new();
        let mut upserted = 0;
        while let Some(page) = pages.next_page().await? {
            let known = self
                .known_of(page.iter().map(|u| u.id.clone()).collect())
                .await?;
            let records: Vec<UserRecord> =
                page.iter().map(|u| u.to_record(known.get(&u.id))).collect();
            self.store.upsert_users(&records).await?;
            upserted += records.len();
            seen.extend(page.into_iter().map(|u| u.id));
        }
        let mut gone: Vec<String> = Vec::new();
        store::each_user(self.store.as_ref(), |u| {
            if u.active && !seen.contains(u.teams_id.as_str()) {
                gone.push(u.teams_id);
            }
        })
        .await?;
        let deactivated = self.store.deactivate_users(&gone).await?;
        self.store.put_kv(DELTA_LINK_KEY, &link).await?;
        Ok(SyncReport {
            full: true,
            upserted,
            deactivated,
        })
    }

    async fn apply_delta(
        &self,
        changes: Vec<DirectoryUser>,
        next: String,
    ) -> Result<SyncReport, DirectoryError> {
        let plans = &self.client.config().teams_service_plan_ids;
        let known = self
            .known_of(changes.iter().map(|u| u.id.clone()).collect())
            .await?;
        let mut upserts = Vec::new();
        let mut gone = Vec::new();
        for u in &changes {
            match u.licensed(plans) {
                Some(true) => upserts.push(u.to_record(known.get(&u.id))),
                Some(false) => gone.push(u.id.clone()),
                // No licence information: refresh the fields of users we already sync.
                None => {
                    if let Some(prev) = known.get(&u.id).filter(|p| p.active) {
                        upserts.push(u.to_record(Some(prev)));
                    }
                }
            }
        }
        self.store.upsert_users(&upserts).await?;
        let deactivated = self.store.deactivate_users(&gone).await?;
        self.store.put_kv(DELTA_LINK_KEY, &next).await?;
        Ok(SyncReport {
            full: false,
            upserted: upserts.len(),
            deactivated,
        })
    }

    /// Syncs every `graph.directory_sync_interval_secs` until cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        let interval = Duration::from_secs(self.client.config().directory_sync_interval_secs);
        loop {
            let wait = match self.run_once().await {
                Ok(r) => {
                    tracing::info!(
                        full = r.full,
                        upserted = r.upserted,
                        deactivated = r.deactivated,
                        "directory synced"
                    );
                    interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, "directory sync failed");
                    RETRY_AFTER_FAILURE.min(interval)
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
