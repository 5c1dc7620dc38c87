//! `POST /connectors/{name}/events`: a contact center's inbound webhook, and
//! `POST /connectors/{name}/contact-events`: its contact-event webhook. The request is
//! verified and parsed by the connector, stored in the durable inbox, and only then
//! acknowledged (202). Bad signatures get 401, malformed bodies 400; neither changes state.
//! When the inbox cannot be written the answer is 503, so the platform redelivers.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::ApiError;
use crate::connectors::{ConnectorHandle, ConnectorRegistry, InboundError, InboundWebhook};
use crate::telemetry::Metrics;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConnectorRegistry: FromRef<S>,
    Metrics: FromRef<S>,
{
    Router::new()
        .route("/connectors/{name}/events", post(inbound_events))
        .route("/connectors/{name}/contact-events", post(contact_events))
}

async fn inbound_events(
    State(connectors): State<ConnectorRegistry>,
    State(metrics): State<Metrics>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let handle = connectors.get(&name).ok_or(ApiError::NotFound)?;
    let webhook = handle.connector.webhook().ok_or(ApiError::NotFound)?;
    take(handle, webhook, &metrics, name, &headers, &body).await
}

async fn contact_events(
    State(connectors): State<ConnectorRegistry>,
    State(metrics): State<Metrics>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let handle = connectors.get(&name).ok_or(ApiError::NotFound)?;
    let webhook = handle
        .connector
        .contact_webhook()
        .ok_or(ApiError::NotFound)?;
    take(handle, webhook, &metrics, name, &headers, &body).await
}

/// Verifies, parses and stores one request of either webhook.
async fn take(
    handle: &ConnectorHandle,
    webhook: &dyn InboundWebhook,
    metrics: &Metrics,
    name: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let rejected = |reason: &'static str| {
        metrics
            .counter(
                "connector_webhook_rejected_total",
                &[("connector", name.clone()), ("reason", reason.to_owned())],
            )
            .increment(1);
    };
    let events = match webhook.parse(headers, body, chrono::Utc::now()) {
        Ok(events) => events,
        Err(InboundError::Unauthorized(why)) => {
            tracing::info!(connector = %name, reason = %why, "inbound event refused");
            rejected("unauthorized");
            return Err(ApiError::Unauthorized);
        }
        Err(InboundError::Malformed(why)) => {
            rejected("malformed");
            return Err(ApiError::BadRequest(why));
        }
    };
    match handle.ingest.ingest(events).await {
        Ok(outcome) => Ok((StatusCode::ACCEPTED, Json(outcome)).into_response()),
        Err(e) => {
            tracing::error!(connector = %name, error = %e, "inbound events not stored");
            Err(ApiError::Unavailable)
        }
    }
}
