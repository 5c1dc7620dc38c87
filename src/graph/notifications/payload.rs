//! What Graph posts to the webhook (`changeNotificationCollection`, reference/graph.md §3),
//! what the receiver answers, and the user id a basic presence notification names.

use serde::Deserialize;

use crate::graph::notifications::crypto::EncryptedContent;

/// A `changeNotificationCollection`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationCollection {
    pub value: Vec<ChangeNotification>,
    #[serde(default)]
    pub validation_tokens: Option<Vec<String>>,
}

/// One `changeNotification` (a change or a lifecycle event).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotification {
    pub subscription_id: String,
    #[serde(default)]
    pub client_state: Option<String>,
    #[serde(default)]
    pub change_type: Option<String>,
    #[serde(default)]
    pub lifecycle_event: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub resource_data: Option<ResourceData>,
    #[serde(default)]
    pub encrypted_content: Option<EncryptedContent>,
}

#[derive(Debug, Deserialize)]
pub struct ResourceData {
    #[serde(default)]
    pub id: Option<String>,
}

/// The decrypted resource of a rich presence notification.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DecryptedPresence {
    pub(super) id: String,
    pub(super) availability: compact_str::CompactString,
    pub(super) activity: compact_str::CompactString,
    #[serde(default)]
    pub(super) sequence_number: Option<compact_str::CompactString>,
}

/// A lifecycle event for the subscription manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    pub subscription_id: String,
    /// `reauthorizationRequired`, `subscriptionRemoved`, `missed`.
    pub event: String,
}

/// Why a batch was refused; the HTTP layer maps it to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 400: nothing usable in it.
    BadContent,
    /// 413: more notifications than `graph.webhook.max_notifications_per_batch`.
    TooLarge,
    /// 401: validation tokens missing or invalid.
    BadTokens,
    /// 403: unknown subscriptions or wrong clientState only.
    NotOurs,
    /// 503: we could not store or check it; Graph should retry.
    Unavailable,
}

/// The user a basic presence notification is about.
pub(super) fn basic_user_id(n: &ChangeNotification) -> Option<String> {
    let id = n
        .resource_data
        .as_ref()
        .and_then(|d| d.id.clone())
        .or_else(|| {
            n.resource
                .as_deref()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_owned)
        })?;
    valid_user_id(&id).then_some(id)
}

/// Graph user ids are GUIDs; accept only id-like strings so no junk reaches the inbox.
pub(super) fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
