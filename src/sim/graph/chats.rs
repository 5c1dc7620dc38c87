//! Simulated Teams chats and their change notifications, written from Microsoft's pages:
//!
//! - `POST /v1.0/chats/{chat-id}/messages` as a delegated member (`201` with the
//!   chatMessage; a non-member is `403`):
//!   <https://learn.microsoft.com/en-us/graph/api/chat-post-messages>;
//! - `GET …/messages/{message-id}/hostedContents/{id}/$value`, the bytes of an embedded
//!   image: <https://learn.microsoft.com/en-us/graph/api/chatmessagehostedcontent-get>;
//! - `GET /v1.0/shares/u!{base64url(url)}/driveItem/content`, a shared file:
//!   <https://learn.microsoft.com/en-us/graph/api/shares-get>;
//! - every new message is delivered to the live subscriptions on
//!   `/users/{member}/chats/getAllMessages` of the chat's members with `created` in their
//!   `changeType`: `resource` `chats('{chat}')/messages('{id}')`, rich ones with the
//!   chatMessage encrypted for the subscription's certificate and a validation token
//!   (<https://learn.microsoft.com/en-us/graph/teams-changenotifications-chatmessage>).
//!
//! Faults and 429 budgets of the tenant apply (`path_contains: "/chats/"`). Not modelled:
//! editing and deleting messages, chat creation over the API, the `model=A/B` payment
//! parameter, permissions and consent (tokens are opaque).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::delivery::{collection, deliver};
use super::subscriptions::SimSubscription;
use super::tokens::TokenIssuer;
use super::{SimGraph, graph_error};

/// One chat.
#[derive(Debug, Clone, Default)]
pub struct SimChat {
    pub members: Vec<String>,
    /// chatMessage resources, oldest first.
    pub messages: Vec<Value>,
}

/// The tenant's chats, hosted contents and shared files.
#[derive(Debug, Default)]
pub struct ChatState {
    pub chats: BTreeMap<String, SimChat>,
    /// `(chat, message, hosted content id)` → `(content type, bytes)`.
    hosted: HashMap<(String, String, String), (String, Vec<u8>)>,
    /// Share id (`u!…`) → `(content type, bytes)`.
    shared: HashMap<String, (String, Vec<u8>)>,
    next_id: u64,
}

/// A file a test user attaches: name, content type, bytes.
pub type SimFile = (String, String, Vec<u8>);

impl SimGraph {
    /// A chat between these users; returns its id.
    pub fn create_chat(&self, members: &[&str]) -> String {
        let id = format!("19:{}@unq.gbl.spaces", uuid::Uuid::new_v4().simple());
        self.lock().chats.chats.insert(
            id.clone(),
            SimChat {
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                messages: Vec::new(),
            },
        );
        id
    }

    /// The chat's messages, oldest first.
    pub fn chat_messages(&self, chat_id: &str) -> Vec<Value> {
        self.lock()
            .chats
            .chats
            .get(chat_id)
            .map(|c| c.messages.clone())
            .unwrap_or_default()
    }

    /// `user` writes `html` in the chat, with embedded images, shared files and, for a reply,
    /// the id of the message replied to; subscriptions are notified. Returns the message id.
    pub async fn user_says(
        &self,
        chat_id: &str,
        user: &str,
        html: &str,
        images: Vec<(String, Vec<u8>)>,
        files: Vec<SimFile>,
        reply_to: Option<&str>,
    ) -> String {
        let msg = {
            let mut t = self.lock();
            let id = next_message_id(&mut t.chats);
            let mut content = String::new();
            if let Some(r) = reply_to {
                content.push_str(&format!("<attachment id=\"{r}\"></attachment>"));
            }
            content.push_str(html);
            for (i, (mime, bytes)) in images.into_iter().enumerate() {
                let hc = base64::engine::general_purpose::STANDARD.encode(format!("id=hc-{i}"));
                content.push_str(&format!(
                    "<p><img src=\"{}/chats/{chat_id}/messages/{id}/hostedContents/{hc}/$value\" width=\"100\"></p>",
                    self.graph_base()
                ));
                t.chats
                    .hosted
                    .insert((chat_id.to_owned(), id.clone(), hc), (mime, bytes));
            }
            let mut attachments: Vec<Value> = Vec::new();
            if let Some(r) = reply_to {
                let original = t
                    .chats
                    .chats
                    .get(chat_id)
                    .and_then(|c| c.messages.iter().find(|m| m["id"] == r).cloned());
                if let Some(o) = original {
                    let preview = preview(&o);
                    attachments.push(json!({
                        "id": r, "contentType": "messageReference", "contentUrl": null, "name": null,
                        "content": json!({"messageId": r, "messagePreview": preview,
                            "messageSender": o["from"]}).to_string(),
                    }));
                }
            }
            for (name, mime, bytes) in files {
                let url = format!(
                    "https://contoso.sharepoint.com/personal/{user}/Documents/Microsoft%20Teams%20Chat%20Files/{name}"
                );
                let share = format!(
                    "u!{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&url)
                );
                t.chats.shared.insert(share, (mime, bytes));
                let aid = uuid::Uuid::new_v4().to_string();
                content.push_str(&format!("<attachment id=\"{aid}\"></attachment>"));
                attachments.push(json!({"id": aid, "contentType": "reference",
                    "contentUrl": url, "name": name, "content": null}));
            }
            let display = t
                .users
                .get(user)
                .and_then(|u| u.display_name.clone())
                .unwrap_or_else(|| user.to_owned());
            message(self, chat_id, &id, user, &display, &content, attachments)
        };
        self.store_and_notify(chat_id, msg).await
    }

    async fn store_and_notify(&self, chat_id: &str, msg: Value) -> String {
        let id = msg["id"].as_str().unwrap_or_default().to_owned();
        let targets = {
            let now = self.now();
            let mut t = self.lock();
            let Some(chat) = t.chats.chats.get_mut(chat_id) else {
                return id;
            };
            chat.messages.push(msg.clone());
            let members = chat.members.clone();
            if t.subscriptions.drop_deliveries {
                return id;
            }
            let targets: Vec<SimSubscription> = t
                .subscriptions
                .subs
                .values()
                .filter(|s| {
                    s.expires_at > now
                        && s.change_type.split(',').any(|c| c.trim() == "created")
                        && members.iter().any(|m| {
                            s.resource.trim_start_matches('/')
                                == format!("users/{m}/chats/getAllMessages")
                        })
                })
                .cloned()
                .collect();
            targets
        };
        let issuer = TokenIssuer::new();
        for sub in targets {
            let item = json!({
                "subscriptionId": sub.id, "clientState": sub.client_state, "changeType": "created",
                "tenantId": self.options.tenant_id,
                "resource": format!("chats('{chat_id}')/messages('{id}')"),
                "subscriptionExpirationDateTime": sub.expires_at,
                "resourceData": {"id": id, "@odata.type": "#Microsoft.Graph.chatMessage",
                    "@odata.id": format!("chats('{chat_id}')/messages('{id}')")},
            });
            let body = collection(self, &issuer, &sub, item, &msg);
            deliver(self, &sub.notification_url, &body).await;
        }
        id
    }
}

fn next_message_id(c: &mut ChatState) -> String {
    c.next_id += 1;
    // Teams message ids are epoch milliseconds; unique here by the counter.
    (chrono::Utc::now().timestamp_millis() * 1000 + (c.next_id % 1000) as i64).to_string()
}

/// The text of a message as a reply preview shows it.
pub(super) fn preview(m: &Value) -> String {
    let html = m["body"]["content"].as_str().unwrap_or_default();
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn message(
    sim: &SimGraph,
    chat_id: &str,
    id: &str,
    user: &str,
    display: &str,
    html: &str,
    attachments: Vec<Value>,
) -> Value {
    json!({
        "id": id, "replyToId": null, "etag": id, "messageType": "message",
        "createdDateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "lastModifiedDateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "deletedDateTime": null, "subject": null, "importance": "normal", "locale": "en-us",
        "chatId": chat_id,
        "from": {"application": null, "device": null, "user": {
            "@odata.type": "#microsoft.graph.teamworkUserIdentity",
            "id": user, "displayName": display, "userIdentityType": "aadUser",
            "tenantId": sim.options.tenant_id}},
        "body": {"contentType": "html", "content": html},
        "attachments": attachments, "mentions": [], "reactions": [],
    })
}

async fn post_message(
    State(sim): State<SimGraph>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let caller = match sim.authorize(&headers) {
        Ok(Some(user)) => user,
        Ok(None) => {
            return graph_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Sending chat messages needs delegated permissions outside migration.",
            );
        }
        Err(r) => return *r,
    };
    let content = body.pointer("/body/content").and_then(Value::as_str);
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "body.content is required.",
        );
    };
    let content_type = body
        .pointer("/body/contentType")
        .and_then(Value::as_str)
        .unwrap_or("text");
    let msg = {
        let mut t = sim.lock();
        let Some(chat) = t.chats.chats.get(&chat_id) else {
            return graph_error(StatusCode::NOT_FOUND, "NotFound", "Chat not found.");
        };
        if !chat.members.contains(&caller) {
            return graph_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Not a member of the chat.",
            );
        }
        let id = next_message_id(&mut t.chats);
        let display = t
            .users
            .get(&caller)
            .and_then(|u| u.display_name.clone())
            .unwrap_or_else(|| caller.clone());
        let mut m = message(&sim, &chat_id, &id, &caller, &display, content, vec![]);
        m["body"]["contentType"] = json!(content_type);
        m
    };
    sim.store_and_notify(&chat_id, msg.clone()).await;
    (StatusCode::CREATED, Json(msg)).into_response()
}

async fn hosted_content(
    State(sim): State<SimGraph>,
    Path((chat, msg, hc)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let caller = match sim.authorize(&headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let t = sim.lock();
    let member = t
        .chats
        .chats
        .get(&chat)
        .is_some_and(|c| caller.as_ref().is_none_or(|u| c.members.contains(u)));
    match t.chats.hosted.get(&(chat, msg, hc)) {
        Some((mime, bytes)) if member => {
            ([("content-type", mime.clone())], bytes.clone()).into_response()
        }
        _ => graph_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Hosted content not found.",
        ),
    }
}

async fn shared_content(
    State(sim): State<SimGraph>,
    Path(share): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.authorize(&headers) {
        return *r;
    }
    match sim.lock().chats.shared.get(&share) {
        Some((mime, bytes)) => ([("content-type", mime.clone())], bytes.clone()).into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The sharing link is not valid.",
        ),
    }
}

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route("/v1.0/chats/{chat}/messages", post(post_message))
        .route(
            "/v1.0/chats/{chat}/messages/{msg}/hostedContents/{hc}/$value",
            get(hosted_content),
        )
        .route(
            "/v1.0/shares/{share}/driveItem/content",
            get(shared_content),
        )
}
