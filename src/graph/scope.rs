//! The sync scope: whose Teams presence is read (subscribed and polled). By default the users
//! matched to a contact-center agent (`sync.scope = "matched"`), plus `sync.include` (Entra
//! groups, read transitively, and UPNs), minus `sync.exclude`. The directory keeps listing
//! every Teams-licensed user; only presence reads are scoped.
//!
//! Group members are read with the directory sync (`GET /groups/{id}/transitiveMembers`,
//! paged through `@odata.nextLink`, users only) and kept in the store, so a restart or a
//! failed read keeps the last known members instead of dropping or adding people at once.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use serde::Deserialize;

use super::GraphError;
use super::client::{ApiFamily, GraphClient, GraphRequest};
use crate::engine::config::{PresenceScope, ScopeMode};
use crate::store::{Store, StoreResult, UserRecord};

/// Store key of the last known members of the scope's groups (JSON: group id → user ids).
pub const GROUP_MEMBERS_KEY: &str = "graph.scope.group_members";

/// The last known members of each group, by group id.
pub type GroupMembers = BTreeMap<String, Vec<String>>;

/// The ids of the users in scope, sorted: active users that are matched (or all of them with
/// `sync.scope = "all"`) or included, and not excluded.
pub fn select(users: &[UserRecord], scope: &PresenceScope, groups: &GroupMembers) -> Vec<String> {
    let test = InScope::new(scope, groups);
    let mut ids: Vec<String> = users
        .iter()
        .filter(|u| test.includes(u))
        .map(|u| u.teams_id.clone())
        .collect();
    ids.sort();
    ids
}

/// Whether a user is in scope, with the scope's UPNs and group members gathered once.
struct InScope<'a> {
    mode: ScopeMode,
    in_groups: HashSet<&'a str>,
    out_groups: HashSet<&'a str>,
    in_upns: HashSet<String>,
    out_upns: HashSet<String>,
}

impl<'a> InScope<'a> {
    fn new(scope: &'a PresenceScope, groups: &'a GroupMembers) -> Self {
        let members = |ids: &[String]| -> HashSet<&'a str> {
            ids.iter()
                .filter_map(|g| groups.get(g.trim()))
                .flatten()
                .map(String::as_str)
                .collect()
        };
        let upns = |list: &[String]| -> HashSet<String> {
            list.iter().map(|u| u.trim().to_lowercase()).collect()
        };
        Self {
            mode: scope.mode,
            in_groups: members(&scope.include.groups),
            out_groups: members(&scope.exclude.groups),
            in_upns: upns(&scope.include.upns),
            out_upns: upns(&scope.exclude.upns),
        }
    }

    fn includes(&self, u: &UserRecord) -> bool {
        if !u.active {
            return false;
        }
        let upn = u.upn.to_lowercase();
        let base = match self.mode {
            ScopeMode::All => true,
            ScopeMode::Matched => u.cc_agent_id.is_some(),
        };
        let included =
            base || self.in_upns.contains(&upn) || self.in_groups.contains(u.teams_id.as_str());
        let excluded =
            self.out_upns.contains(&upn) || self.out_groups.contains(u.teams_id.as_str());
        included && !excluded
    }
}

/// The last known group members from the store (empty when never read or unreadable).
pub async fn stored_group_members(store: &dyn Store) -> StoreResult<GroupMembers> {
    Ok(store
        .get_kv(GROUP_MEMBERS_KEY)
        .await?
        .and_then(|v| match serde_json::from_str(&v) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "stored group members unreadable; read again at the next directory sync");
                None
            }
        })
        .unwrap_or_default())
}

/// The ids of the users in scope, read from the store.
/// The users are read a page at a time (only the ids in scope are kept).
pub async fn scoped_user_ids(store: &dyn Store, scope: &PresenceScope) -> StoreResult<Vec<String>> {
    let groups = if scope.groups().is_empty() {
        GroupMembers::new()
    } else {
        stored_group_members(store).await?
    };
    let test = InScope::new(scope, &groups);
    let mut ids = Vec::new();
    crate::store::each_user(store, |u| {
        if test.includes(&u) {
            ids.push(u.teams_id);
        }
    })
    .await?;
    // In id order already (pages are); sorted all the same, as `select` is.
    ids.sort();
    Ok(ids)
}

#[derive(Deserialize)]
struct Member {
    id: String,
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
}

#[derive(Deserialize)]
struct MembersPage {
    value: Vec<Member>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

impl GraphClient {
    /// The user ids among a group's members, nested groups included
    /// (`GET /groups/{id}/transitiveMembers`, every page). Members that are not users
    /// (groups, devices, service principals, contacts) are left out.
    pub async fn group_user_ids(&self, group: &str) -> Result<Vec<String>, GraphError> {
        let mut url = url::Url::parse(
            &self
                .config()
                .graph_url(&format!("groups/{}/transitiveMembers", group.trim())),
        )
        .map_err(|e| GraphError::Decode(e.to_string()))?;
        url.query_pairs_mut().append_pair("$select", "id");
        let mut req = GraphRequest::new(Method::GET, url.to_string(), ApiFamily::Directory);
        let mut out = Vec::new();
        loop {
            let page: MembersPage = self.send_json(req.clone()).await?;
            out.extend(
                page.value
                    .into_iter()
                    .filter(|m| {
                        m.odata_type
                            .as_deref()
                            .is_none_or(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"))
                    })
                    .map(|m| m.id),
            );
            match page.next_link {
                Some(next) => req.url = next,
                None => return Ok(out),
            }
        }
    }
}

/// Reads the members of every group of `scope` and stores them. A group whose read fails
/// keeps its last known members; the first failure is returned after the others are read.
pub async fn refresh_group_members(
    client: &GraphClient,
    store: &dyn Store,
    scope: &PresenceScope,
) -> Result<usize, GraphError> {
    let groups = scope.groups();
    if groups.is_empty() {
        return Ok(0);
    }
    let old = stored_group_members(store)
        .await
        .map_err(|e| GraphError::Decode(e.to_string()))?;
    let mut fresh = GroupMembers::new();
    let mut first_error = None;
    for g in groups {
        match client.group_user_ids(&g).await {
            Ok(ids) => {
                fresh.insert(g, ids);
            }
            Err(e) => {
                tracing::warn!(group = %g, error = %e, "group members could not be read; the last known members are kept");
                if let Some(prev) = old.get(&g) {
                    fresh.insert(g, prev.clone());
                }
                first_error.get_or_insert(e);
            }
        }
    }
    let n = fresh.values().map(Vec::len).sum();
    let text = serde_json::to_string(&fresh).map_err(|e| GraphError::Decode(e.to_string()))?;
    store
        .put_kv(GROUP_MEMBERS_KEY, &text)
        .await
        .map_err(|e| GraphError::Decode(e.to_string()))?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::ScopeList;

    fn user(id: &str, matched: bool) -> UserRecord {
        UserRecord {
            teams_id: id.into(),
            upn: format!("{id}@Example.com"),
            mail: None,
            display_name: None,
            business_phones: vec![],
            mobile_phone: None,
            cc_connector: matched.then(|| "cc".into()),
            cc_agent_id: matched.then(|| format!("a-{id}")),
            active: true,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn matched_plus_included_minus_excluded() {
        let mut users = vec![
            user("agent", true),
            user("boss", false),
            user("expert", false),
            user("nobody", false),
            user("private", true),
            user("muted", true),
        ];
        let mut gone = user("left", true);
        gone.active = false;
        users.push(gone);
        let groups = GroupMembers::from([
            ("g-in".to_owned(), vec!["expert".to_owned()]),
            ("g-out".to_owned(), vec!["muted".to_owned()]),
        ]);
        let scope = PresenceScope {
            mode: ScopeMode::Matched,
            include: ScopeList {
                groups: vec!["g-in".into()],
                upns: vec!["BOSS@example.com".into()],
            },
            exclude: ScopeList {
                groups: vec!["g-out".into()],
                upns: vec!["private@example.com".into()],
            },
        };
        assert_eq!(
            select(&users, &scope, &groups),
            vec!["agent", "boss", "expert"]
        );
        assert_eq!(
            select(&users, &PresenceScope::default(), &groups),
            vec!["agent", "muted", "private"]
        );
        let all = select(&users, &PresenceScope::all(), &groups);
        assert_eq!(all.len(), 6, "every active user: {all:?}");
    }
}
