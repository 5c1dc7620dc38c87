//! The paged team list both `GET /api/v1/users` and the console's team page serve: the query
//! string they take and the JSON shape of each person.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use crate::engine::state::SyncState;
use crate::model::contact_center::Activity;
use crate::runtime::users::sync_of;
use crate::store::people::{PeoplePage, PeopleQuery, PeopleSort, PeopleState, Person};
use crate::store::{JsonText, Store};

/// People per page when `per_page` is not given, and the most one page may hold.
pub const DEFAULT_PER_PAGE: u32 = 100;
pub const MAX_PER_PAGE: u32 = 1_000;

/// `?query=&state=&connector=&sort=&page=&per_page=`; empty values count as absent.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PeopleParams {
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub connector: Option<String>,
    /// `name` (the default), `state` or `last_change`.
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub per_page: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl PeopleParams {
    /// The store query, or a 400 naming the bad parameter.
    pub fn to_query(&self, now: DateTime<Utc>) -> Result<PeopleQuery, ApiError> {
        let number = |v: &Option<String>, name: &str, default: u32, max: u32| match given(v) {
            None => Ok(default),
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::BadRequest(format!("{name} must be between 1 and {max}"))),
        };
        let state = match given(&self.state) {
            None => None,
            Some(s) => Some(PeopleState::parse(s).ok_or_else(|| {
                ApiError::BadRequest(
                    "state must be one of ok, holding, suspended, unmatched, no_teams_user".into(),
                )
            })?),
        };
        let sort = match given(&self.sort) {
            None => PeopleSort::default(),
            Some(s) => PeopleSort::parse(s).ok_or_else(|| {
                ApiError::BadRequest("sort must be one of name, state, last_change".into())
            })?,
        };
        Ok(PeopleQuery {
            query: given(&self.query).unwrap_or("").to_owned(),
            state,
            connector: given(&self.connector).map(str::to_owned),
            sort,
            page: number(&self.page, "page", 1, 1_000_000)?,
            per_page: number(&self.per_page, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?,
            now,
        })
    }
}

/// Reads one page from the store.
pub async fn page(store: &dyn Store, q: &PeopleQuery) -> Result<PeoplePage, ApiError> {
    store
        .list_people(q)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The JSON of a page: `{"users": […], "total", "page", "per_page"}`.
pub fn page_json(page: &PeoplePage, q: &PeopleQuery) -> Value {
    let users: Vec<Value> = page.people.iter().map(|p| person_json(p, q.now)).collect();
    json!({ "users": users, "total": page.total, "page": q.page, "per_page": q.per_page })
}

fn side_json(o: &Option<crate::store::ObservedStatus>) -> Value {
    match o {
        Some(o) => json!({ "status": o.status, "at": o.observed_at, "source": o.source }),
        None => Value::Null,
    }
}

/// The contact activity the engine last heard of (`cc_activity` in its state blob):
/// `{"activity", "channel"}`, or null.
fn activity_json(blob: &JsonText) -> Value {
    #[derive(Deserialize)]
    struct WithActivity {
        cc_activity: Option<Activity>,
    }
    match blob.parse::<WithActivity>() {
        Ok(WithActivity {
            cc_activity: Some(a),
        }) => json!({ "activity": a.activity, "channel": a.channel }),
        _ => Value::Null,
    }
}

/// One person: both statuses (with when and where each was seen), phones, sync state.
pub fn person_json(p: &Person, now: DateTime<Utc>) -> Value {
    match p {
        Person::User(p) => {
            let (u, teams, contact_center, engine_state) =
                (&p.user, &p.teams, &p.contact_center, &p.engine_state);
            let sync = engine_state.as_ref().and_then(|b| sync_of(b, now));
            let state = match (&u.cc_agent_id, &sync) {
                (None, _) => "unmatched",
                (Some(_), Some((s, _))) => match s.state {
                    SyncState::Ok => "ok",
                    SyncState::Holding => "holding",
                    SyncState::Suspended => "suspended",
                },
                (Some(_), None) => "ok",
            };
            let holding_until = sync
                .as_ref()
                .filter(|(s, _)| s.state == SyncState::Holding)
                .and_then(|(_, due)| *due);
            json!({
                "teams_id": u.teams_id,
                "upn": u.upn,
                "display_name": u.display_name,
                "business_phones": u.business_phones,
                "mobile_phone": u.mobile_phone,
                "cc_connector": u.cc_connector,
                "cc_agent_id": u.cc_agent_id,
                "teams": side_json(teams),
                "contact_center": side_json(contact_center),
                "contact_activity": engine_state.as_ref().map_or(Value::Null, activity_json),
                "suspended_until": sync.as_ref().and_then(|(s, _)| s.suspended_until),
                "holding_until": holding_until,
                "sync_state": state,
            })
        }
        Person::Agent(a) => json!({
            "teams_id": null,
            "upn": null,
            "display_name": a.display_name,
            "business_phones": [],
            "mobile_phone": null,
            "cc_connector": a.connector,
            "cc_agent_id": a.agent_id,
            "cc_email": a.email,
            "teams": null,
            "contact_center": null,
            "contact_activity": null,
            "suspended_until": null,
            "holding_until": null,
            "sync_state": "no_teams_user",
        }),
    }
}
