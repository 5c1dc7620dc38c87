//! The messaging bridge's endpoints (present only with `messaging.enabled`; otherwise `404`):
//!
//! - `POST /messaging/genesys/{integration}`: Genesys' outbound webhook. The signature is
//!   checked first: missing or wrong → `401` and nothing changes; unknown integration → `404`;
//!   not a normalized message → `400`; queued (or a duplicate) → `200`; the queue unreachable
//!   → `503` (Genesys retries).
//! - `POST /messaging/graph/notifications`, `POST /messaging/graph/lifecycle`: chat-message
//!   change notifications, with the validation handshake of the presence webhook; answers as
//!   documented in [`crate::integrations::messaging::notify`].
//! - `GET /messaging/files/{token}/{name}?expires=…&sig=…`: a re-hosted attachment; any
//!   wrong, expired or unknown link is a plain `404`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ApiError;
use super::graph::Incoming;
use crate::integrations::messaging::files::{FileError, FileHost};
use crate::integrations::messaging::notify::ChatNotifications;
use crate::integrations::messaging::webhook::{GenesysWebhook, WebhookRejection};
use crate::model::clock::Clock;

/// The routes' state: absent parts answer `404`.
#[derive(Clone, Default)]
pub struct MessagingHttp {
    inner: Option<Arc<Endpoints>>,
}

/// What the routes use.
pub struct Endpoints {
    pub webhook: GenesysWebhook,
    pub notifications: ChatNotifications,
    pub files: FileHost,
    pub clock: Clock,
    /// Body caps: Genesys webhook, Graph notifications.
    pub webhook_body_bytes: usize,
    pub notification_body_bytes: usize,
}

impl MessagingHttp {
    pub fn new(endpoints: Endpoints) -> Self {
        Self {
            inner: Some(Arc::new(endpoints)),
        }
    }

    /// The larger of the two body caps (the route group's limit).
    pub fn max_body_bytes(&self) -> usize {
        self.inner.as_ref().map_or(64 * 1024, |e| {
            e.webhook_body_bytes.max(e.notification_body_bytes)
        })
    }

    fn get(&self) -> Result<&Endpoints, ApiError> {
        self.inner.as_deref().ok_or(ApiError::NotFound)
    }
}

pub fn routes<S>(max_body_bytes: usize) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    MessagingHttp: FromRef<S>,
{
    Router::new()
        .route("/messaging/genesys/{integration}", post(genesys_webhook))
        .route("/messaging/graph/notifications", post(graph_notifications))
        .route("/messaging/graph/lifecycle", post(graph_notifications))
        .route("/messaging/files/{token}/{name}", get(file))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

async fn genesys_webhook(
    State(state): State<MessagingHttp>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let e = state.get()?;
    if body.len() > e.webhook_body_bytes {
        return Err(ApiError::PayloadTooLarge);
    }
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    match e.webhook.accept(&integration, signature, &body).await {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(WebhookRejection::UnknownIntegration) => Err(ApiError::NotFound),
        Err(WebhookRejection::BadSignature) => Err(ApiError::Unauthorized),
        Err(WebhookRejection::BadBody) => Err(ApiError::BadRequest(
            "not an Open Messaging normalized message".into(),
        )),
        Err(WebhookRejection::Unavailable) => Err(ApiError::Unavailable),
    }
}

async fn graph_notifications(
    State(state): State<MessagingHttp>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let e = state.get()?;
    if body.len() > e.notification_body_bytes {
        return Err(ApiError::PayloadTooLarge);
    }
    let batch = match super::graph::collection(&query, &headers, &body)? {
        Incoming::Handshake(answer) => return Ok(answer),
        Incoming::Batch(batch) => batch,
    };
    super::graph::answer(e.notifications.receive(batch).await)
}

async fn file(
    State(state): State<MessagingHttp>,
    Path((token, _name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let e = state.get()?;
    let expires: i64 = query
        .get("expires")
        .and_then(|v| v.parse().ok())
        .ok_or(ApiError::NotFound)?;
    let sig = query.get("sig").ok_or(ApiError::NotFound)?;
    match e.files.open(&token, expires, sig, e.clock.now()).await {
        Ok((meta, bytes)) => {
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&meta.content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{}\"", meta.filename))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            Ok(resp)
        }
        Err(FileError::NotFound) => Err(ApiError::NotFound),
        Err(FileError::Io(err)) => Err(ApiError::Internal(err.to_string())),
    }
}
