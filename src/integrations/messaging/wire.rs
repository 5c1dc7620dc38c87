//! Wire shapes of both sides and of the queued hops.
//!
//! Teams `chatMessage` (the decrypted resource of a rich notification):
//! <https://learn.microsoft.com/en-us/graph/api/resources/chatmessage>. Open Messaging inbound
//! message, receipt and the outbound `NormalizedMessage` the webhook carries:
//! <https://developer.genesys.cloud/commdigital/digital/openmessaging/inboundReceiptMessages>,
//! <https://developer.genesys.cloud/commdigital/digital/openmessaging/outboundMessages>
//! and reference/contact-centers.md §2.6. Unknown fields are ignored on the way in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A Teams chat message, the fields the bridge reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: String,
    #[serde(default)]
    pub chat_id: Option<String>,
    /// `message`, or `systemEventMessage` and others that are not bridged.
    #[serde(default)]
    pub message_type: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deleted_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub from: Option<ChatFrom>,
    pub body: ItemBody,
    #[serde(default)]
    pub attachments: Vec<ChatAttachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatFrom {
    #[serde(default)]
    pub user: Option<TeamsIdentity>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsIdentity {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    /// `html` or `text`.
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub content: String,
}

/// `chatMessageAttachment`: `reference` (a shared file link), `messageReference` (the message
/// a reply refers to; `content` is JSON with `messagePreview` and `messageSender`), cards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatAttachment {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub content_url: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// An Open Messaging party (`channel.from` / `channel.to`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
}

/// One `content` item: an attachment Genesys fetches from `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// `Image`, `Video`, `Audio` or `File`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// `channel` of an inbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundChannel {
    pub message_id: String,
    pub from: Party,
    pub time: DateTime<Utc>,
    /// Carried as `channel.metadata.customAttributes` (the shape in
    /// reference/contact-centers.md §2.6; UNVERIFIED for the per-integration path, where
    /// Genesys ignores fields it does not know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// `POST /api/v2/conversations/messages/{integrationId}/inbound/open/message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundMessage {
    pub channel: InboundChannel,
    /// Always `Text` ("text only or text with attachments").
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Content>,
    pub direction: String,
}

/// The `NormalizedMessage` Genesys posts to the outbound webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NormalizedMessage {
    /// Genesys' message id: the dedupe key, and the `id` of the receipt that answers it.
    pub id: String,
    pub channel: OutboundChannel,
    /// `Text`, `Event` (typing and other events) or `Receipt`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub content: Vec<Content>,
    #[serde(default)]
    pub direction: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundChannel {
    pub to: Party,
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
}

/// `Delivered` or `Failed`, the two statuses the receipt endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptStatus {
    Delivered,
    Failed,
}

/// `POST /api/v2/conversations/messages/{integrationId}/inbound/open/receipt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub id: String,
    pub channel: ReceiptChannel,
    pub status: ReceiptStatus,
    pub direction: String,
    pub is_final_receipt: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptChannel {
    pub to: Party,
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub code: String,
    pub message: String,
}

/// One hop of the bridge, as queued (queue `messaging`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "hop", rename_all = "snake_case")]
pub enum Hop {
    /// A Teams message for Genesys, as decrypted from the notification.
    Inbound {
        account_id: String,
        message: ChatMessage,
    },
    /// An agent's message (or event) for Teams.
    Outbound { message: NormalizedMessage },
    /// A receipt for an agent's message.
    Receipt { receipt: Receipt },
}
