//! Screen-pop links, behind the management API's bearer token:
//!
//! - `GET /api/v1/agents/{id}/screen-pop[?connector=…]`: the contact the agent is on now and
//!   the link to its record in each Dataverse environment (404 while the agent is on no
//!   contact; `links` is empty until the record exists). A softphone or CTI adapter polls it
//!   and opens the link.
//! - `GET /api/v1/contacts/{connector}/{contact}/screen-pop`: the links of one contact.
//!
//! The links come from a [`ScreenPopSource`] the application provides (the Dynamics
//! integration); without one the routes answer 404.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRef, Path, Query, State};
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::ApiError;
use super::api::ApiState;

/// Where screen-pop links come from. Errors are internal (logged, never shown).
#[async_trait]
pub trait ScreenPopSource: Send + Sync {
    /// The agent's current contact and its links, as JSON; `None` when on no contact.
    async fn for_agent(
        &self,
        agent: &str,
        connector: Option<&str>,
    ) -> Result<Option<Value>, String>;
    /// The links of one contact, as a JSON array.
    async fn for_contact(&self, connector: &str, contact: &str) -> Result<Value, String>;
}

/// The router's handle on the source, absent when no integration offers links.
#[derive(Clone, Default)]
pub struct ScreenPops(Option<Arc<dyn ScreenPopSource>>);

impl ScreenPops {
    pub fn new(source: Arc<dyn ScreenPopSource>) -> Self {
        Self(Some(source))
    }
}

pub fn routes<S>(api: ApiState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ScreenPops: FromRef<S>,
{
    Router::new()
        .route("/api/v1/agents/{id}/screen-pop", get(agent))
        .route(
            "/api/v1/contacts/{connector}/{contact}/screen-pop",
            get(contact),
        )
        .route_layer(middleware::from_fn_with_state(
            api,
            super::api::require_token,
        ))
}

#[derive(serde::Deserialize)]
struct AgentQuery {
    connector: Option<String>,
}

async fn agent(
    State(pops): State<ScreenPops>,
    Path(id): Path<String>,
    Query(q): Query<AgentQuery>,
) -> Result<Json<Value>, ApiError> {
    let source = pops.0.ok_or(ApiError::NotFound)?;
    match source
        .for_agent(&id, q.connector.as_deref())
        .await
        .map_err(ApiError::Internal)?
    {
        Some(v) => Ok(Json(v)),
        None => Err(ApiError::NotFound),
    }
}

async fn contact(
    State(pops): State<ScreenPops>,
    Path((connector, contact)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let source = pops.0.ok_or(ApiError::NotFound)?;
    let links = source
        .for_contact(&connector, &contact)
        .await
        .map_err(ApiError::Internal)?;
    Ok(Json(
        json!({ "connector": connector, "contact_id": contact, "links": links }),
    ))
}
