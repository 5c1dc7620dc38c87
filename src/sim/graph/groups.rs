//! Simulated Entra groups: `GET /groups/{id}/members` (direct members) and
//! `GET /groups/{id}/transitiveMembers` (a flat list of every nested member, nested groups
//! included as members of type group), each member a directoryObject with `@odata.type`,
//! paged through `@odata.nextLink`.
//!
//! From learn.microsoft.com/graph/api/group-list-members and
//! learn.microsoft.com/graph/api/group-list-transitivemembers: application permission
//! GroupMember.Read.All; "This operation is transitive and returns a flat list of all nested
//! members"; an unknown group is `404 Request_ResourceNotFound`. The default page of 100
//! objects (at most 999 with `$top`) is documented for the user's transitiveMemberOf list and
//! assumed here.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{SimGraph, graph_error};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 999;

impl SimGraph {
    /// Creates or replaces a group; `members` are user ids and/or ids of other groups.
    pub fn set_group(&self, id: &str, members: Vec<String>) {
        self.lock().groups.insert(id.to_owned(), members);
    }
}

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route("/v1.0/groups/{id}/members", get(direct))
        .route("/v1.0/groups/{id}/transitiveMembers", get(transitive))
}

async fn direct(
    State(sim): State<SimGraph>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(sim, headers, id, q, false, "members")
}

async fn transitive(
    State(sim): State<SimGraph>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(sim, headers, id, q, true, "transitiveMembers")
}

fn list(
    sim: SimGraph,
    headers: HeaderMap,
    id: String,
    q: HashMap<String, String>,
    nested: bool,
    path: &str,
) -> Response {
    if let Err(r) = sim.authorize(&headers) {
        return *r;
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
    let items: Vec<Value> = {
        let t = sim.lock();
        if !t.groups.contains_key(&id) {
            drop(t);
            return graph_error(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            );
        }
        // Members in order, each once; nested groups expanded when transitive.
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut queue = vec![id.clone()];
        seen.insert(id.clone());
        while let Some(g) = queue.pop() {
            for m in t.groups.get(&g).into_iter().flatten() {
                if !seen.insert(m.clone()) {
                    continue;
                }
                if t.groups.contains_key(m) {
                    out.push(json!({"@odata.type": "#microsoft.graph.group", "id": m}));
                    if nested {
                        queue.push(m.clone());
                    }
                } else if let Some(u) = t.users.get(m).filter(|u| !u.deleted) {
                    let mut v = u.to_json(select);
                    v["@odata.type"] = json!("#microsoft.graph.user");
                    out.push(v);
                }
            }
            if !nested {
                break;
            }
        }
        out
    };
    let end = (offset + top).min(items.len());
    let value = items[offset.min(end)..end].to_vec();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#directoryObjects", sim.graph_base()),
        "value": value,
    });
    if end < items.len() {
        let mut url =
            url::Url::parse(&format!("{}/groups/{id}/{path}", sim.graph_base())).expect("valid");
        for (k, v) in q.iter().filter(|(k, _)| *k != "$skiptoken") {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.query_pairs_mut()
            .append_pair("$skiptoken", &end.to_string());
        body["@odata.nextLink"] = json!(url.to_string());
    }
    Json(body).into_response()
}
