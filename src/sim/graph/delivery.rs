//! Delivery of simulated change notifications: presence changes (the tenant's broadcast) go to
//! every live subscription covering the user, rich ones encrypted with the subscription's
//! certificate and carrying a validation token signed by the simulator's key, basic ones with
//! the user id only. Non-2xx answers are retried a few times with backoff.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::SimGraph;
use super::encrypt::encrypt_for_notification;
use super::subscriptions::{SimSubscription, post_json};
use super::tokens::TokenIssuer;
use crate::graph::notifications::crypto::public_key_from_certificate_der;

/// Delivery attempts per notification batch (Graph retries for hours; tests need a few).
const DELIVERY_ATTEMPTS: u32 = 4;
/// First retry delay; doubles per attempt.
const RETRY_BASE: Duration = Duration::from_millis(50);

/// Delivers presence changes to the subscriptions covering them until `cancel` fires.
pub fn start_delivery(sim: SimGraph, cancel: CancellationToken) {
    let mut events = sim.subscribe_presence();
    let issuer = std::sync::Arc::new(TokenIssuer::new());
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = events.recv() => ev,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let now = sim.now();
            let targets: Vec<SimSubscription> = {
                let t = sim.lock();
                if t.subscriptions.drop_deliveries {
                    continue;
                }
                t.subscriptions
                    .subs
                    .values()
                    .filter(|s| s.expires_at > now && s.user_ids.contains(&ev.user_id))
                    .cloned()
                    .collect()
            };
            for sub in targets {
                let body = notification(&sim, &issuer, &sub, &ev);
                let sim = sim.clone();
                tokio::spawn(async move { deliver(&sim, &sub.notification_url, &body).await });
            }
        }
    });
}

fn notification(
    sim: &SimGraph,
    issuer: &TokenIssuer,
    sub: &SimSubscription,
    ev: &super::PresenceEvent,
) -> Value {
    let user = &ev.user_id;
    let item = json!({
        "subscriptionId": sub.id, "clientState": sub.client_state, "changeType": "updated",
        "tenantId": sim.options.tenant_id, "resource": format!("communications/presences/{user}"),
        "subscriptionExpirationDateTime": sub.expires_at,
        "resourceData": {"@odata.id": format!("users/{user}/presence"),
            "@odata.type": "#microsoft.graph.presence", "id": user},
        "organizationId": sim.options.tenant_id,
    });
    let plain = json!({
        "@odata.id": format!("users/{user}/presence"), "@odata.type": "#microsoft.graph.presence",
        "id": user, "availability": ev.availability, "activity": ev.activity,
        "sequenceNumber": ev.sequence_number,
    });
    collection(sim, issuer, sub, item, &plain)
}

/// The notification collection for one item: for a rich subscription, the resource `plain`
/// encrypted to its certificate and a validation token.
pub(super) fn collection(
    sim: &SimGraph,
    issuer: &TokenIssuer,
    sub: &SimSubscription,
    mut item: Value,
    plain: &Value,
) -> Value {
    let mut body = json!({});
    if let (true, Some(cert), Some(cert_id)) = (
        sub.include_resource_data,
        &sub.certificate,
        &sub.certificate_id,
    ) {
        let der = base64::engine::general_purpose::STANDARD
            .decode(cert)
            .unwrap_or_default();
        if let Ok(public) = public_key_from_certificate_der(&der)
            && let Ok(content) =
                encrypt_for_notification(&public, cert_id, plain.to_string().as_bytes())
        {
            item["encryptedContent"] = json!(content);
        }
        body["validationTokens"] = json!([issuer.validation_token(
            &sim.options.client_id,
            &sim.options.tenant_id,
            &sim.origin
        )]);
    }
    body["value"] = json!([item]);
    body
}

pub(super) async fn deliver(sim: &SimGraph, url: &str, body: &Value) {
    let mut wait = RETRY_BASE;
    for _ in 0..DELIVERY_ATTEMPTS {
        if let Some(status) = post_json(url, body).await
            && (200..300).contains(&status)
        {
            sim.lock().subscriptions.delivered += 1;
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
