//! A simulated Genesys Cloud Open Messaging integration, written from Genesys' pages:
//!
//! - the org's client-credentials token (`POST /oauth/token`), required as a bearer on the API;
//! - inbound: `POST /api/v2/conversations/messages/{integrationId}/inbound/open/message`,
//!   `…/inbound/open/receipt` and `…/inbound/open/event` (reference/contact-centers.md §2.6;
//!   receipts `Delivered`/`Failed`:
//!   <https://developer.genesys.cloud/commdigital/digital/openmessaging/inboundReceiptMessages>),
//!   each call logged; an unknown integration id is `404`; a 429 mode answers the next calls
//!   with `429` and `Retry-After`;
//! - outbound: an agent's text (with attachments served by the simulator) or typing event is
//!   posted to the integration's `outboundNotificationWebhookUrl` as a `NormalizedMessage`
//!   (<https://developer.genesys.cloud/commdigital/digital/openmessaging/outboundMessages>)
//!   signed `X-Hub-Signature-256: sha256=<base64(HMAC-SHA256(secret, body))>`
//!   (<https://developer.genesys.cloud/commdigital/digital/openmessaging/validate.html>).
//!
//! Not modelled: conversations, routing and agents (the simulator is the integration's edge
//! only); Genesys' own webhook retries (5 tries, 5 s apart); fetching attachment URLs (tests
//! fetch them as Genesys would).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Client credentials the simulator accepts.
pub const OM_CLIENT_ID: &str = "om-client";
pub const OM_CLIENT_SECRET: &str = "om-secret";

/// One call the bridge made.
#[derive(Debug, Clone)]
pub struct OmCall {
    /// `message`, `receipt` or `event`.
    pub kind: String,
    pub body: Value,
}

#[derive(Default)]
struct OmState {
    integration_id: String,
    secret: String,
    webhook_url: Option<String>,
    tokens: std::collections::HashSet<String>,
    calls: Vec<OmCall>,
    /// `(remaining, retry_after_secs)`: the next calls answer 429.
    throttle: Option<(u32, u64)>,
    throttled: u32,
    media: std::collections::HashMap<String, (String, Vec<u8>)>,
}

/// A running simulated integration. Cheap to clone.
#[derive(Clone)]
pub struct SimOpenMessaging {
    state: Arc<Mutex<OmState>>,
    /// `http://127.0.0.1:port`
    pub url: String,
}

impl SimOpenMessaging {
    fn lock(&self) -> MutexGuard<'_, OmState> {
        self.state.lock().expect("open messaging sim lock")
    }

    /// Where agent messages are posted (the integration's `outboundNotificationWebhookUrl`).
    pub fn set_webhook_url(&self, url: &str) {
        self.lock().webhook_url = Some(url.to_owned());
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<OmCall> {
        self.lock().calls.clone()
    }

    /// The inbound messages so far.
    pub fn messages(&self) -> Vec<Value> {
        self.of_kind("message")
    }

    /// The receipts so far.
    pub fn receipts(&self) -> Vec<Value> {
        self.of_kind("receipt")
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.body.clone())
            .collect()
    }

    /// The next `n` API calls answer `429` with `Retry-After: secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.lock().throttle = Some((n, retry_after_secs));
    }

    /// How many calls were answered 429.
    pub fn throttled(&self) -> u32 {
        self.lock().throttled
    }

    /// Serves `bytes` at a URL, as Genesys serves an agent's attachment.
    pub fn host_media(&self, name: &str, mime: &str, bytes: Vec<u8>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.lock()
            .media
            .insert(id.clone(), (mime.to_owned(), bytes));
        format!("{}/media/{id}/{name}", self.url)
    }

    /// An agent's text message to `to` (the `channel.from` of the customer's messages), with
    /// attachments `(url, mime, filename)`. Returns Genesys' message id and the webhook's
    /// status.
    pub async fn agent_says(
        &self,
        to: &Value,
        text: &str,
        attachments: &[(String, String, String)],
    ) -> (String, u16) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let content: Vec<Value> = attachments
            .iter()
            .map(|(url, mime, name)| {
                let media = if mime.starts_with("image/") {
                    "Image"
                } else {
                    "File"
                };
                json!({"contentType": "Attachment", "attachment": {
                    "id": uuid::Uuid::new_v4().to_string(), "mediaType": media,
                    "url": url, "mime": mime, "filename": name}})
            })
            .collect();
        let mut body = self.normalized(&id, to, "Text");
        body["text"] = json!(text);
        if !content.is_empty() {
            body["content"] = json!(content);
        }
        let status = self.post_signed(&body).await;
        (id, status)
    }

    /// The agent starts typing.
    pub async fn agent_types(&self, to: &Value) -> u16 {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut body = self.normalized(&id, to, "Event");
        body["events"] = json!([{"eventType": "Typing", "typing": {"type": "On"}}]);
        self.post_signed(&body).await
    }

    fn normalized(&self, id: &str, to: &Value, kind: &str) -> Value {
        let integration = self.lock().integration_id.clone();
        json!({
            "id": id,
            "channel": {
                "id": integration, "platform": "Open", "type": "Private",
                "to": to,
                "from": {"nickname": "Agent", "id": integration, "idType": "Opaque"},
                "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "messageId": id,
            },
            "type": kind,
            "direction": "Outbound",
            "conversationId": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Posts `body` to the webhook, signed; returns the status.
    pub async fn post_signed(&self, body: &Value) -> u16 {
        let raw = serde_json::to_vec(body).expect("json");
        let sig = signature(&self.lock().secret, &raw);
        self.post_raw(raw, Some(&sig)).await
    }

    /// Posts raw bytes with the given `X-Hub-Signature-256` (or none); returns the status.
    pub async fn post_raw(&self, raw: Vec<u8>, signature: Option<&str>) -> u16 {
        let url = self.lock().webhook_url.clone().expect("webhook url set");
        let mut req = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(raw);
        if let Some(s) = signature {
            req = req.header("X-Hub-Signature-256", s);
        }
        match req.send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// `sha256=` + base64 of HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Starts the simulator on loopback for `integration_id`, signing with `secret`.
pub async fn spawn(integration_id: &str, secret: &str) -> SimOpenMessaging {
    let state = Arc::new(Mutex::new(OmState {
        integration_id: integration_id.to_owned(),
        secret: secret.to_owned(),
        ..OmState::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind open messaging sim");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let sim = SimOpenMessaging {
        state,
        url: format!("http://{addr}"),
    };
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route(
            "/api/v2/conversations/messages/{integration}/inbound/open/{kind}",
            post(inbound),
        )
        .route("/media/{id}/{name}", get(media))
        .with_state(sim.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    sim
}

async fn token(State(sim): State<SimOpenMessaging>, headers: HeaderMap, body: String) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{OM_CLIENT_ID}:{OM_CLIENT_SECRET}");
    let ok = basic.as_deref() == Some(expected.as_str())
        || (form.get("client_id").map(String::as_str) == Some(OM_CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(OM_CLIENT_SECRET));
    if !ok || form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let t = uuid::Uuid::new_v4().to_string();
    sim.lock().tokens.insert(t.clone());
    Json(json!({"access_token": t, "token_type": "bearer", "expires_in": 86399})).into_response()
}

async fn inbound(
    State(sim): State<SimOpenMessaging>,
    Path((integration, kind)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut s = sim.lock();
    if !bearer.is_some_and(|b| s.tokens.contains(&b)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "bad token"})),
        )
            .into_response();
    }
    if integration != s.integration_id || !["message", "receipt", "event"].contains(&kind.as_str())
    {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "not found"}))).into_response();
    }
    if let Some((n, secs)) = s.throttle
        && n > 0
    {
        s.throttle = (n > 1).then_some((n - 1, secs));
        s.throttled += 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            Json(json!({"message": "Rate limit exceeded", "status": 429})),
        )
            .into_response();
    }
    if kind == "message" && body.pointer("/channel/from/id").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "channel.from is required"})),
        )
            .into_response();
    }
    s.calls.push(OmCall {
        kind: kind.clone(),
        body: body.clone(),
    });
    let id = uuid::Uuid::new_v4().simple().to_string();
    (
        StatusCode::OK,
        Json(json!({"id": id, "channel": body.get("channel"), "direction": "Inbound"})),
    )
        .into_response()
}

async fn media(
    State(sim): State<SimOpenMessaging>,
    Path((id, _name)): Path<(String, String)>,
) -> Response {
    match sim.lock().media.get(&id).cloned() {
        Some((mime, bytes)) => ([("content-type", mime)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
