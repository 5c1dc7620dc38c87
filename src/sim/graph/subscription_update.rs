//! `PATCH /v1.0/subscriptions/{id}` (reference graph.md §3.2): the body must carry
//! `expirationDateTime` or `notificationUrl`, the two documented updatable fields; the
//! rich-notifications page also describes PATCHing `encryptionCertificate` and
//! `encryptionCertificateId` for key rotation, which is accepted unless
//! [`SimGraph::refuse_certificate_patch`] is on. Presence expiries follow the create rules;
//! an unknown or expired id is `404`.
//!
//! Not modelled: a validation handshake against a new `notificationUrl` (not documented for
//! PATCH in the reference).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::SimGraph;
use super::subscriptions::{authorized_live, bad, is_presence, not_found, presence_expiry, view};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PatchBody {
    #[serde(default)]
    expiration_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    notification_url: Option<String>,
    #[serde(default)]
    encryption_certificate: Option<String>,
    #[serde(default)]
    encryption_certificate_id: Option<String>,
}

impl SimGraph {
    /// Refuses (`400`) PATCHes that carry certificate fields while `on`.
    pub fn refuse_certificate_patch(&self, on: bool) {
        self.lock().subscriptions.refuse_certificate_patch = on;
    }
}

pub(super) async fn update(
    State(sim): State<SimGraph>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<PatchBody>,
) -> Response {
    let sub = match authorized_live(&sim, &headers, &id) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if body.expiration_date_time.is_none() && body.notification_url.is_none() {
        return bad("The body must contain expirationDateTime or notificationUrl.");
    }
    let cert_fields =
        body.encryption_certificate.is_some() || body.encryption_certificate_id.is_some();
    if cert_fields {
        if sim.lock().subscriptions.refuse_certificate_patch {
            return bad("encryptionCertificate cannot be updated.");
        }
        if body.encryption_certificate.is_none() || body.encryption_certificate_id.is_none() {
            return bad("encryptionCertificate and encryptionCertificateId go together.");
        }
    }
    let now = sim.now();
    let mut expires = body.expiration_date_time;
    if let Some(asked) = expires
        && is_presence(&sub.resource)
    {
        match presence_expiry(asked, now) {
            Some(e) => expires = Some(e),
            None => return bad("expirationDateTime is beyond the 60 minute maximum for presence."),
        }
    }
    if let Some(url) = &body.notification_url
        && url::Url::parse(url).is_err()
    {
        return bad("notificationUrl is not a URL.");
    }
    let mut t = sim.lock();
    let Some(s) = t.subscriptions.subs.get_mut(&id) else {
        return not_found();
    };
    if let Some(e) = expires {
        s.expires_at = e;
    }
    if let Some(url) = body.notification_url {
        s.notification_url = url;
    }
    if cert_fields {
        s.certificate = body.encryption_certificate;
        s.certificate_id = body.encryption_certificate_id;
    }
    Json(view(s)).into_response()
}
