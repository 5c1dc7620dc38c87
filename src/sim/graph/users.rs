//! Simulated directory: users with licences and phones, `GET /users` with the assignedPlans
//! advanced query and paging, `GET /users/delta` with expiring delta links, and `GET /me`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{SimGraph, graph_error};

/// Delta links for identity resources live 7 days.
const DELTA_LINK_TTL_DAYS: i64 = 7;
/// Page size when the request gives no `$top`.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 999;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedPlan {
    pub service_plan_id: String,
    /// `Enabled`, `Suspended`, ...
    pub capability_status: String,
}

/// A user of the simulated tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimUser {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default)]
    pub assigned_plans: Vec<AssignedPlan>,
    #[serde(default, skip_serializing)]
    pub deleted: bool,
}

fn yes() -> bool {
    true
}

impl SimUser {
    /// A licensed (TEAMS1), enabled user named after `n`.
    pub fn licensed(id: &str, upn: &str) -> Self {
        Self {
            id: id.to_owned(),
            user_principal_name: upn.to_owned(),
            mail: Some(upn.to_owned()),
            display_name: Some(upn.split('@').next().unwrap_or(upn).to_owned()),
            business_phones: vec!["+1 425 555 0100".into()],
            mobile_phone: None,
            account_enabled: true,
            assigned_plans: vec![AssignedPlan {
                service_plan_id: crate::graph::config::TEAMS1_PLAN_ID.into(),
                capability_status: "Enabled".into(),
            }],
            deleted: false,
        }
    }

    pub(super) fn to_json(&self, select: Option<&str>) -> Value {
        let mut v = serde_json::to_value(self).expect("user serializes");
        if let (Some(sel), Value::Object(map)) = (select, &mut v) {
            let keep: Vec<&str> = sel.split(',').map(str::trim).collect();
            map.retain(|k, _| k == "id" || keep.contains(&k.as_str()));
        }
        v
    }
}

#[derive(Debug, Default)]
pub struct DirectoryState {
    /// Bumped on every user change.
    pub version: u64,
    /// Version of each user's last change (deleted users stay for delta).
    pub changed: HashMap<String, u64>,
    /// Delta tokens: token → (version, issued at).
    pub delta_tokens: HashMap<String, (u64, DateTime<Utc>)>,
}

impl SimGraph {
    /// Adds or replaces a user.
    pub fn upsert_user(&self, user: SimUser) {
        let mut t = self.lock();
        t.directory.version += 1;
        let v = t.directory.version;
        t.directory.changed.insert(user.id.clone(), v);
        t.users.insert(user.id.clone(), user);
    }

    /// Changes a user in place (licences, phones, ...); false when unknown.
    pub fn update_user(&self, id: &str, f: impl FnOnce(&mut SimUser)) -> bool {
        let Some(mut u) = self.lock().users.get(id).cloned() else {
            return false;
        };
        f(&mut u);
        self.upsert_user(u);
        true
    }

    /// Deletes a user (delta reports it as removed).
    pub fn delete_user(&self, id: &str) -> bool {
        self.update_user(id, |u| u.deleted = true)
    }

    /// Makes every delta link issued so far invalid (as after 7 days).
    pub fn expire_delta_links(&self) {
        self.lock().directory.delta_tokens.clear();
    }

    fn delta_link(&self, version: u64) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let now = self.now();
        self.lock()
            .directory
            .delta_tokens
            .insert(token.clone(), (version, now));
        format!("{}/users/delta?$deltatoken={token}", self.graph_base())
    }
}

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route("/v1.0/users", get(list_users))
        .route("/v1.0/users/delta", get(delta))
        .route("/v1.0/me", get(me))
}

/// The service plan ids named in an `assignedPlans/any(...)` filter.
fn filter_plan_ids(filter: &str) -> Vec<String> {
    filter
        .match_indices("servicePlanId eq ")
        .filter_map(|(i, m)| filter.get(i + m.len()..i + m.len() + 36))
        .map(|s| s.trim_matches('\'').to_ascii_lowercase())
        .collect()
}

fn matches_filter(u: &SimUser, filter: &str) -> bool {
    let plans = filter_plan_ids(filter);
    let need_enabled = filter.contains("capabilityStatus eq 'Enabled'");
    let licensed = u.assigned_plans.iter().any(|p| {
        plans.contains(&p.service_plan_id.to_ascii_lowercase())
            && (!need_enabled || p.capability_status == "Enabled")
    });
    let enabled_ok = !filter.contains("accountEnabled eq true") || u.account_enabled;
    (plans.is_empty() || licensed) && enabled_ok
}

async fn list_users(
    State(sim): State<SimGraph>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = sim.authorize(&headers) {
        return *r;
    }
    let filter = q.get("$filter").cloned().unwrap_or_default();
    if filter.contains("assignedPlans/any")
        && (headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            != Some("eventual")
            || q.get("$count").map(String::as_str) != Some("true"))
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        );
    }
    let top = q
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_PAGE);
    if top == 0 || top > MAX_PAGE {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Invalid page size specified.",
        );
    }
    let offset: usize = q
        .get("$skiptoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let select = q.get("$select").map(String::as_str);
    // Count the matches and turn only the page's users into JSON: building every user's JSON
    // for each page made a full listing quadratic in the tenant's size.
    let (count, value) = {
        let state = sim.lock();
        let matching = || {
            state
                .users
                .values()
                .filter(|u| !u.deleted && matches_filter(u, &filter))
        };
        let value: Vec<Value> = matching()
            .skip(offset)
            .take(top)
            .map(|u| u.to_json(select))
            .collect();
        (matching().count(), value)
    };
    let end = offset.saturating_add(top);
    let next = (end < count).then_some(end);
    let mut body = json!({"@odata.context": format!("{}/$metadata#users", sim.graph_base()), "@odata.count": count, "value": value});
    if let Some(n) = next {
        let mut url = url::Url::parse(&format!("{}/users", sim.graph_base())).expect("valid");
        for (k, v) in q.iter().filter(|(k, _)| *k != "$skiptoken") {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.query_pairs_mut()
            .append_pair("$skiptoken", &n.to_string());
        body["@odata.nextLink"] = json!(url.to_string());
    }
    Json(body).into_response()
}

fn page(items: Vec<Value>, offset: usize, top: usize) -> (Vec<Value>, Option<usize>) {
    let end = (offset + top).min(items.len());
    let next = (end < items.len()).then_some(end);
    (items[offset.min(end)..end].to_vec(), next)
}

/// `$skiptoken` of a delta page: `{since}:{upto}:{offset}`.
async fn delta(
    State(sim): State<SimGraph>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = sim.authorize(&headers) {
        return *r;
    }
    let now = sim.now();
    let current = sim.lock().directory.version;
    let (since, upto, offset) = if let Some(tok) = q.get("$deltatoken") {
        if tok == "latest" {
            return Json(json!({"value": [], "@odata.deltaLink": sim.delta_link(current)}))
                .into_response();
        }
        let known = sim.lock().directory.delta_tokens.get(tok).copied();
        match known {
            Some((v, issued)) if now - issued < Duration::days(DELTA_LINK_TTL_DAYS) => {
                (Some(v), current, 0)
            }
            _ => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "syncStateNotFound",
                    "The sync state generation is not found or has expired.",
                );
            }
        }
    } else if let Some(skip) = q.get("$skiptoken") {
        let parts: Vec<u64> = skip.split(':').filter_map(|p| p.parse().ok()).collect();
        match parts.as_slice() {
            [s, u, o] => ((*s != u64::MAX).then_some(*s), *u, *o as usize),
            _ => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid skip token."),
        }
    } else {
        (None, current, 0)
    };
    let select = q.get("$select").map(String::as_str);
    let items: Vec<Value> = {
        let t = sim.lock();
        t.users
            .values()
            .filter(|u| {
                let v = t.directory.changed.get(&u.id).copied().unwrap_or(0);
                match since {
                    None => !u.deleted && v <= upto,
                    Some(s) => v > s && v <= upto,
                }
            })
            .map(|u| {
                if u.deleted {
                    json!({"id": u.id, "@removed": {"reason": "deleted"}})
                } else {
                    u.to_json(select)
                }
            })
            .collect()
    };
    let (value, next) = page(items, offset, DEFAULT_PAGE);
    let mut body =
        json!({"@odata.context": format!("{}/$metadata#users", sim.graph_base()), "value": value});
    match next {
        Some(n) => {
            let sel = select.map(|s| format!("&$select={s}")).unwrap_or_default();
            body["@odata.nextLink"] = json!(format!(
                "{}/users/delta?$skiptoken={}:{upto}:{n}{sel}",
                sim.graph_base(),
                since.unwrap_or(u64::MAX)
            ));
        }
        None => body["@odata.deltaLink"] = json!(sim.delta_link(upto)),
    }
    Json(body).into_response()
}

async fn me(State(sim): State<SimGraph>, headers: HeaderMap) -> Response {
    let user = match sim.authorize(&headers) {
        Ok(Some(u)) => u,
        Ok(None) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            );
        }
        Err(r) => return *r,
    };
    match sim.lock().users.get(&user) {
        Some(u) => Json(u.to_json(Some("userPrincipalName,displayName,mail"))).into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "User not found",
        ),
    }
}
