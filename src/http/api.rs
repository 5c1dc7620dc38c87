//! The management API under `/api/v1`, behind the bearer token of `api.bearer_token`
//! (compared in constant time). Without a configured token the API does not exist (404).
//!
//! - `GET /api/v1/users?query=&state=&connector=&page=&per_page=`: one page of synced users
//!   with both statuses, phones, last change per side and sync state (`ok`, `holding`,
//!   `suspended`, `unmatched`), by name, then the contact-center agents matched to no Teams
//!   user (`teams_id` null, sync state `no_teams_user`), as the vendors' team views list every
//!   agent; with `total`, `page` and `per_page`.
//! - `GET /api/v1/users/{id}/decisions`: the user's last decisions (newest first).
//! - `GET /api/v1/reconcile/last`: the last reconciliation report.
//! - `POST /api/v1/reconcile`: requests a reconciliation now (202).
//! - `GET /api/v1/contacts?agent=…[&connector=…][&limit=…]`: an agent's recent contacts,
//!   each with its events in order (read-only; kept a week).
//! - `GET /api/v1/openapi.json`: the OpenAPI document of the above (no token needed).

use std::sync::Arc;

use axum::extract::{FromRef, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::runtime::{audit, reconcile};
use crate::store::Store;
use crate::store::inbox::Inbox;

/// Most decisions returned by the decisions endpoint.
const MAX_DECISIONS: u32 = 200;

/// What the management API uses: the store, the inbox (to request work) and the token.
#[derive(Clone)]
pub struct ApiState {
    store: Arc<dyn Store>,
    inbox: Inbox,
    bearer_token: Option<SecretString>,
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, inbox: Inbox, bearer_token: Option<SecretString>) -> Self {
        Self {
            store,
            inbox,
            bearer_token,
        }
    }
}

pub fn routes<S>(state: ApiState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ApiState: FromRef<S>,
{
    Router::new()
        .route("/api/v1/users", get(users))
        .route("/api/v1/users/{id}/decisions", get(decisions))
        .route("/api/v1/reconcile/last", get(last_reconcile))
        .route("/api/v1/reconcile", post(request_reconcile))
        .route("/api/v1/contacts", get(contacts))
        .route_layer(middleware::from_fn_with_state(state, require_token))
        // The description of the endpoints above is public: it holds no data.
        .route("/api/v1/openapi.json", get(openapi))
}

/// The OpenAPI document of `/api/v1`, written by hand next to the handlers.
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub(crate) async fn require_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.bearer_token else {
        return ApiError::NotFound.into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = given
        .as_bytes()
        .ct_eq(token.expose_secret().as_bytes())
        .into();
    if !ok {
        return ApiError::Unauthorized.into_response();
    }
    next.run(req).await
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// One page of the team (`?query=&state=&connector=&page=&per_page=`), users by name, then
/// the agents matched to no Teams user, with the total over all pages.
async fn users(
    State(state): State<ApiState>,
    axum::extract::Query(params): axum::extract::Query<super::people::PeopleParams>,
) -> Result<Json<Value>, ApiError> {
    let q = params.to_query(chrono::Utc::now())?;
    let page = super::people::page(state.store.as_ref(), &q).await?;
    Ok(Json(super::people::page_json(&page, &q)))
}

async fn decisions(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entries = audit::decisions(state.store.as_ref(), &id, MAX_DECISIONS)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "decisions": entries })))
}

async fn last_reconcile(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    match reconcile::last_report(state.store.as_ref())
        .await
        .map_err(internal)?
    {
        Some(report) => Ok(Json(json!(report))),
        None => Err(ApiError::NotFound),
    }
}

async fn request_reconcile(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    reconcile::request(&state.inbox).await.map_err(internal)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "requested" }))))
}

/// Contacts returned when `limit` is not given, and the most that may be asked for.
const DEFAULT_CONTACTS: u32 = 20;
const MAX_CONTACTS: u32 = 100;

#[derive(serde::Deserialize)]
struct ContactsQuery {
    agent: Option<String>,
    connector: Option<String>,
    limit: Option<u32>,
}

/// An agent's most recent contacts, newest first, each with its events in order.
async fn contacts(
    State(state): State<ApiState>,
    axum::extract::Query(q): axum::extract::Query<ContactsQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = q
        .agent
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::BadRequest("give the agent id: ?agent=…".into()))?;
    let limit = q.limit.unwrap_or(DEFAULT_CONTACTS);
    if !(1..=MAX_CONTACTS).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_CONTACTS}"
        )));
    }
    let events = state
        .store
        .list_contact_events(&agent, q.connector.as_deref(), limit)
        .await
        .map_err(internal)?;
    let mut out: Vec<Value> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for stored in events {
        let key = (stored.connector.clone(), stored.event.contact_id.clone());
        if current.as_ref() != Some(&key) {
            out.push(json!({
                "connector": key.0,
                "contact_id": key.1,
                "events": [],
            }));
            current = Some(key);
        }
        let contact = out.last_mut().expect("pushed above");
        let e = &stored.event;
        for (field, value) in [
            ("channel", e.channel.map(|c| json!(c))),
            ("queue", e.queue.as_ref().map(|q| json!(q))),
            (
                "customer_endpoint",
                e.customer_endpoint.as_ref().map(|c| json!(c)),
            ),
        ] {
            if let Some(v) = value {
                contact[field] = v;
            }
        }
        if let Some(a) = &e.agent_id {
            contact["agent_id"] = json!(a);
        }
        if let Some(events) = contact["events"].as_array_mut() {
            events.push(json!(e));
        }
    }
    Ok(Json(json!({ "agent": agent, "contacts": out })))
}
