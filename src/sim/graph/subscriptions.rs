//! Simulated change-notification subscriptions and their delivery.
//!
//! `POST /v1.0/subscriptions` performs the validation handshake against `notificationUrl` and
//! `lifecycleNotificationUrl` (both must echo the token, `200 text/plain`) before answering
//! `201`; presence resources take at most 650 ids, need a delegated caller, get their expiry
//! raised to 45 minutes and refused beyond 60; one presence subscription per delegated account
//! (and the same changeType + resource twice) is `409`. `PATCH` (see
//! [`super::subscription_update`]), `DELETE`,
//! `POST …/reauthorize` and `GET` work as documented; unknown or expired ids are `404`.
//!
//! Delivery of notifications is in [`super::delivery`]. Switches: drop deliveries, expire a
//! subscription early, send a lifecycle event. The JWKS of the validation tokens is served at
//! `/common/discovery/v2.0/keys`.
//!
//! Not modelled: Graph's 4-hour retry horizon (a few quick retries only), throttling of slow
//! endpoints, `users` change notifications, `missed`/`subscriptionRemoved` events.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::tokens::TokenIssuer;
use super::{SimGraph, graph_error};
use crate::graph::subscriptions::api::presence_resource_ids;

/// One live subscription.
#[derive(Debug, Clone)]
pub struct SimSubscription {
    pub id: String,
    pub resource: String,
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub include_resource_data: bool,
    pub certificate_id: Option<String>,
    pub certificate: Option<String>,
    /// The delegated user who created it; `None` for app-only.
    pub creator: Option<String>,
    pub user_ids: Vec<String>,
}

/// Subscriptions held by the tenant.
#[derive(Debug, Default)]
pub struct SubscriptionState {
    pub subs: BTreeMap<String, SimSubscription>,
    /// Successful creations so far.
    pub created: u32,
    /// While set, notifications are not delivered.
    pub drop_deliveries: bool,
    /// Notification batches delivered with a 2xx answer.
    pub delivered: u32,
    /// While set, a PATCH carrying certificate fields is refused (`400`), as a Graph that
    /// takes only the documented `expirationDateTime` and `notificationUrl` would.
    pub refuse_certificate_patch: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    change_type: String,
    notification_url: String,
    #[serde(default)]
    lifecycle_notification_url: Option<String>,
    resource: String,
    expiration_date_time: DateTime<Utc>,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    include_resource_data: bool,
    #[serde(default)]
    encryption_certificate: Option<String>,
    #[serde(default)]
    encryption_certificate_id: Option<String>,
}

pub(super) fn is_presence(resource: &str) -> bool {
    resource
        .trim_start_matches('/')
        .starts_with("communications/presences")
}

/// Presence expiry: raised to 45 minutes, capped at 60; more than a minute beyond 60 (clock
/// skew tolerance) is refused.
pub(super) fn presence_expiry(asked: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cap = now + chrono::Duration::minutes(60);
    if asked > cap + chrono::Duration::minutes(1) {
        return None;
    }
    Some(asked.clamp(now + chrono::Duration::minutes(45), cap))
}

pub(super) fn view(s: &SimSubscription) -> Value {
    json!({
        "id": s.id, "resource": s.resource, "changeType": s.change_type,
        "notificationUrl": s.notification_url, "lifecycleNotificationUrl": s.lifecycle_url,
        "clientState": s.client_state, "expirationDateTime": s.expires_at,
        "includeResourceData": s.include_resource_data,
        "encryptionCertificateId": s.certificate_id, "creatorId": s.creator,
    })
}

pub(super) fn bad(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "ValidationError", message)
}

pub(super) fn not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        "The object was not found.",
    )
}

impl SimGraph {
    /// Subscriptions created since start.
    pub fn subscriptions_created(&self) -> u32 {
        self.lock().subscriptions.created
    }

    /// Live subscriptions (expired ones included until someone touches them).
    pub fn subscriptions(&self) -> Vec<SimSubscription> {
        self.lock().subscriptions.subs.values().cloned().collect()
    }

    /// Drops (instead of delivers) notifications while `on`.
    pub fn drop_deliveries(&self, on: bool) {
        self.lock().subscriptions.drop_deliveries = on;
    }

    /// Notification batches delivered so far.
    pub fn deliveries(&self) -> u32 {
        self.lock().subscriptions.delivered
    }

    /// Makes a subscription expire now (Graph forgets it: the next PATCH is a 404).
    pub fn expire_subscription(&self, id: &str) -> bool {
        let now = self.now();
        let mut t = self.lock();
        match t.subscriptions.subs.get_mut(id) {
            Some(s) => {
                s.expires_at = now - chrono::Duration::seconds(1);
                true
            }
            None => false,
        }
    }

    /// Sends a lifecycle event (e.g. `reauthorizationRequired`) for a subscription.
    pub async fn send_lifecycle(&self, id: &str, event: &str) -> Option<u16> {
        let sub = self.lock().subscriptions.subs.get(id).cloned()?;
        let url = sub.lifecycle_url.clone()?;
        let body = json!({"value": [{
            "subscriptionId": sub.id, "subscriptionExpirationDateTime": sub.expires_at,
            "tenantId": self.options.tenant_id, "clientState": sub.client_state,
            "lifecycleEvent": event,
        }]});
        post_json(&url, &body).await
    }

    fn live(&self, id: &str) -> Option<SimSubscription> {
        let now = self.now();
        let mut t = self.lock();
        let expired = t.subscriptions.subs.get(id).map(|s| s.expires_at <= now)?;
        if expired {
            t.subscriptions.subs.remove(id);
            return None;
        }
        t.subscriptions.subs.get(id).cloned()
    }
}

/// Handshake: POST `{url}?validationToken=…`; the answer must be 200 text/plain echoing it.
async fn handshake(url: &str) -> bool {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let Ok(mut target) = url::Url::parse(url) else {
        return false;
    };
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let res = reqwest::Client::new()
        .post(target)
        .header("content-type", "text/plain; charset=utf-8")
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let Ok(res) = res else { return false };
    let plain = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    res.status() == StatusCode::OK && plain && res.text().await.ok().as_deref() == Some(&token)
}

pub(super) async fn post_json(url: &str, body: &Value) -> Option<u16> {
    let res = reqwest::Client::new()
        .post(url)
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}

async fn create(
    State(sim): State<SimGraph>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Response {
    let creator = match sim.authorize(&headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let now = sim.now();
    let presence = is_presence(&body.resource);
    let user_ids = if presence {
        presence_resource_ids(&body.resource)
    } else {
        Vec::new()
    };
    let mut expires = body.expiration_date_time;
    if presence {
        if creator.is_none() {
            return graph_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Presence subscriptions need delegated permissions.",
            );
        }
        if user_ids.is_empty() || user_ids.len() > 650 {
            return bad("A presence subscription takes 1 to 650 user ids.");
        }
        if body.change_type != "updated" {
            return bad("Presence supports changeType 'updated' only.");
        }
        match presence_expiry(expires, now) {
            Some(e) => expires = e,
            None => return bad("expirationDateTime is beyond the 60 minute maximum for presence."),
        }
    } else if expires > now + chrono::Duration::minutes(41_760) {
        return bad("expirationDateTime is beyond the maximum.");
    }
    if body.include_resource_data
        && (body.encryption_certificate.is_none() || body.encryption_certificate_id.is_none())
    {
        return bad("includeResourceData needs encryptionCertificate and encryptionCertificateId.");
    }
    {
        let t = sim.lock();
        let clash = t.subscriptions.subs.values().find(|s| {
            s.expires_at > now
                && ((s.change_type == body.change_type && s.resource == body.resource)
                    || (presence && is_presence(&s.resource) && s.creator == creator))
        });
        if let Some(s) = clash {
            return graph_error(
                StatusCode::CONFLICT,
                "ExtensionError",
                &format!(
                    "Subscription Id {} already exists for the requested combination",
                    s.id
                ),
            );
        }
    }
    let mut urls = vec![body.notification_url.clone()];
    urls.extend(body.lifecycle_notification_url.clone());
    for url in &urls {
        if !handshake(url).await {
            return bad(
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
            );
        }
    }
    let sub = SimSubscription {
        id: uuid::Uuid::new_v4().to_string(),
        resource: body.resource,
        change_type: body.change_type,
        notification_url: body.notification_url,
        lifecycle_url: body.lifecycle_notification_url,
        client_state: body.client_state,
        expires_at: expires,
        include_resource_data: body.include_resource_data,
        certificate_id: body.encryption_certificate_id,
        certificate: body.encryption_certificate,
        creator,
        user_ids,
    };
    let out = view(&sub);
    let mut t = sim.lock();
    t.subscriptions.created += 1;
    t.subscriptions.subs.insert(sub.id.clone(), sub);
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn list(State(sim): State<SimGraph>, headers: HeaderMap) -> Response {
    let caller = match sim.authorize(&headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let now = sim.now();
    let t = sim.lock();
    let value: Vec<Value> = t
        .subscriptions
        .subs
        .values()
        .filter(|s| s.expires_at > now && s.creator == caller)
        .map(view)
        .collect();
    Json(json!({ "value": value })).into_response()
}

/// The caller is authorized and the subscription is live.
pub(super) fn authorized_live(
    sim: &SimGraph,
    headers: &HeaderMap,
    id: &str,
) -> Result<SimSubscription, Box<Response>> {
    sim.authorize(headers)?;
    sim.live(id).ok_or_else(|| Box::new(not_found()))
}

async fn remove(
    State(sim): State<SimGraph>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match authorized_live(&sim, &headers, &id) {
        Ok(_) => {
            sim.lock().subscriptions.subs.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => *r,
    }
}

async fn reauthorize(
    State(sim): State<SimGraph>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match authorized_live(&sim, &headers, &id) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => *r,
    }
}

async fn jwks() -> Json<Value> {
    Json(TokenIssuer::new().jwks().clone())
}

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route("/v1.0/subscriptions", post(create).get(list))
        .route(
            "/v1.0/subscriptions/{id}",
            patch(super::subscription_update::update).delete(remove),
        )
        .route("/v1.0/subscriptions/{id}/reauthorize", post(reauthorize))
        .route("/common/discovery/v2.0/keys", get(jwks))
}
