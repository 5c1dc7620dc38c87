//! The Graph webhook: `POST /graph/notifications` and `POST /graph/lifecycle`.
//!
//! - `?validationToken=…`: the subscription handshake. `200`, `text/plain` with `nosniff`,
//!   the URL-decoded token, exactly, as the whole body. Graph documents the token as opaque
//!   (reference/graph.md §3.3), so any token is echoed; only an empty one or one longer than
//!   1,024 bytes is refused (`400`). A plain-text body that browsers may not sniff cannot
//!   run markup, whatever the token holds.
//! - Otherwise the body must be JSON (`415`), at most `graph.webhook.max_body_bytes` (`413`),
//!   a notification collection (`400`); then [`NotificationReceiver::receive`] decides
//!   (`202` after the inbox write; `400`/`401`/`403`/`413`/`503` as documented there).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::ApiError;
use crate::graph::notifications::{NotificationCollection, NotificationReceiver, Rejection};

/// Longest validation token echoed back.
const MAX_VALIDATION_TOKEN_BYTES: usize = 1024;

/// The webhook routes, with their own body cap.
/// The webhook's state: the receiver and the body size cap of `graph.webhook.max_body_bytes`.
#[derive(Clone)]
pub struct GraphWebhook {
    receiver: NotificationReceiver,
    max_body_bytes: usize,
}

impl GraphWebhook {
    pub fn new(receiver: NotificationReceiver, max_body_bytes: usize) -> Self {
        Self {
            receiver,
            max_body_bytes,
        }
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

pub fn routes<S>(max_body_bytes: usize) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    GraphWebhook: FromRef<S>,
{
    Router::new()
        .route("/graph/notifications", post(receive))
        .route("/graph/lifecycle", post(receive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

async fn receive(
    State(state): State<GraphWebhook>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let batch = match collection(&query, &headers, &body)? {
        Incoming::Handshake(answer) => return Ok(answer),
        Incoming::Batch(batch) => batch,
    };
    answer(state.receiver.receive(batch).await)
}

/// What a POST to a change-notification endpoint carries.
pub(super) enum Incoming {
    /// The validation handshake, answered.
    Handshake(Response),
    Batch(NotificationCollection),
}

/// The handshake answer, or the JSON notification collection of the body.
pub(super) fn collection(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Incoming, ApiError> {
    if let Some(token) = query.get("validationToken") {
        return handshake(token).map(Incoming::Handshake);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body)
        .map(Incoming::Batch)
        .map_err(|_| ApiError::BadRequest("not a change notification collection".into()))
}

/// `202`, or the status of the rejection.
pub(super) fn answer<T>(result: Result<T, Rejection>) -> Result<Response, ApiError> {
    match result {
        Ok(_) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(Rejection::BadContent) => Err(ApiError::BadRequest(
            "no notification in the batch could be opened".into(),
        )),
        Err(Rejection::BadTokens) => Err(ApiError::Unauthorized),
        Err(Rejection::NotOurs) => Err(ApiError::Forbidden),
        Err(Rejection::Unavailable) => Err(ApiError::Unavailable),
        Err(Rejection::TooLarge) => Err(ApiError::PayloadTooLarge),
    }
}

fn handshake(token: &str) -> Result<Response, ApiError> {
    if token.is_empty() || token.len() > MAX_VALIDATION_TOKEN_BYTES {
        return Err(ApiError::BadRequest("unacceptable validation token".into()));
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        token.to_owned(),
    )
        .into_response())
}
