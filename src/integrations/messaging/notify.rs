//! The chat-message webhook: Graph posts rich notifications for new messages in the chats of
//! the support accounts (subscriptions on `/users/{id}/chats/getAllMessages`,
//! <https://learn.microsoft.com/en-us/graph/teams-changenotifications-chatmessage>).
//!
//! Checked as the presence webhook checks (and with its pieces: [`Decryptor`],
//! [`TokenValidator`]): each notification must name a chat-message subscription we hold with
//! its `clientState` (constant time); a batch with encrypted content must carry valid
//! validation tokens; each item must decrypt and verify. What passes is queued (dedupe id =
//! the Teams message id) before the answer: `202`. All unknown → `403`; bad tokens → `401`;
//! nothing opened → `400`; the queue unreachable → `503` so Graph retries.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use crate::graph::notifications::crypto::Decryptor;
use crate::graph::notifications::jwt::TokenValidator;
use crate::graph::notifications::{
    ChangeNotification, LifecycleEvent, NotificationCollection, Rejection,
};
use crate::integrations::messaging::Bridge;
use crate::integrations::messaging::subscriptions::KIND;
use crate::integrations::messaging::wire::{ChatMessage, Hop};
use crate::store::StoreError;

/// Most notifications looked at in one batch.
const MAX_BATCH: usize = 1000;

/// The chat-message notification receiver.
pub struct ChatNotifications {
    bridge: Arc<Bridge>,
    decryptor: Decryptor,
    tokens: Option<TokenValidator>,
    lifecycle: mpsc::UnboundedSender<LifecycleEvent>,
}

impl ChatNotifications {
    /// `tokens` is `None` without a Graph app identity: every rich batch is then refused.
    pub fn new(
        bridge: Arc<Bridge>,
        decryptor: Decryptor,
        tokens: Option<TokenValidator>,
        lifecycle: mpsc::UnboundedSender<LifecycleEvent>,
    ) -> Self {
        Self {
            bridge,
            decryptor,
            tokens,
            lifecycle,
        }
    }

    /// Checks and queues one batch; `Ok(n)` = `n` new messages queued.
    pub async fn receive(&self, batch: NotificationCollection) -> Result<u64, Rejection> {
        if batch.value.is_empty() {
            return Err(Rejection::BadContent);
        }
        if batch.value.len() > MAX_BATCH {
            return Err(Rejection::TooLarge);
        }
        let mut trusted: Vec<(String, ChangeNotification)> = Vec::new();
        for n in batch.value {
            match self.account_of(&n).await {
                Ok(Some(account)) => trusted.push((account, n)),
                Ok(None) => self
                    .bridge
                    .count("messaging_notifications_total", "not_ours"),
                Err(e) => {
                    tracing::error!(error = %e, "subscription lookup failed");
                    return Err(Rejection::Unavailable);
                }
            }
        }
        if trusted.is_empty() {
            return Err(Rejection::NotOurs);
        }
        if trusted.iter().any(|(_, n)| n.encrypted_content.is_some()) {
            let Some(validator) = &self.tokens else {
                return Err(Rejection::BadTokens);
            };
            let tokens = batch.validation_tokens.unwrap_or_default();
            if let Err(e) = validator.validate_all(&tokens).await {
                tracing::warn!(error = %e, "chat notification batch refused: validation tokens");
                return Err(if e.is_ours() {
                    Rejection::Unavailable
                } else {
                    Rejection::BadTokens
                });
            }
        }
        let mut hops = Vec::new();
        let mut lifecycle = Vec::new();
        let mut opened_any = false;
        for (account_id, n) in trusted {
            if let Some(event) = n.lifecycle_event {
                lifecycle.push(LifecycleEvent {
                    subscription_id: n.subscription_id,
                    event,
                });
                opened_any = true;
                continue;
            }
            if n.change_type.as_deref() != Some("created") {
                // Edits and deletions are not carried (Open Messaging has no edit).
                self.bridge
                    .count("messaging_notifications_total", "not_a_new_message");
                opened_any = true;
                continue;
            }
            let Some(content) = &n.encrypted_content else {
                self.bridge
                    .count("messaging_notifications_total", "no_resource_data");
                continue;
            };
            let message = match self
                .decryptor
                .decrypt(content)
                .map(|plain| serde_json::from_slice::<ChatMessage>(&plain))
            {
                Ok(Ok(m)) => m,
                _ => {
                    self.bridge
                        .count("messaging_notifications_total", "undecryptable");
                    continue;
                }
            };
            opened_any = true;
            let chat = message
                .chat_id
                .clone()
                .or_else(|| chat_of_resource(n.resource.as_deref().unwrap_or("")))
                .unwrap_or_default();
            let message = ChatMessage {
                chat_id: Some(chat.clone()),
                ..message
            };
            let dedupe = format!("in:{}", message.id);
            hops.push((
                format!("teams:{chat}"),
                dedupe,
                Hop::Inbound {
                    account_id,
                    message,
                },
            ));
        }
        if !opened_any {
            return Err(Rejection::BadContent);
        }
        let new = self.bridge.enqueue(hops).await.map_err(|e| {
            tracing::error!(error = %e, "chat messages not queued; asking Graph to retry");
            Rejection::Unavailable
        })?;
        for e in lifecycle {
            let _ = self.lifecycle.send(e);
        }
        self.bridge
            .metrics
            .counter(
                "messaging_notifications_total",
                &[("what", "queued".into())],
            )
            .increment(new);
        Ok(new)
    }

    /// The support account of the notification's subscription, when it is one of ours and
    /// its `clientState` matches.
    async fn account_of(&self, n: &ChangeNotification) -> Result<Option<String>, StoreError> {
        let sub = match self.bridge.store.get_subscription(&n.subscription_id).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let given = n.client_state.as_deref().unwrap_or("");
        let ok =
            sub.kind == KIND && bool::from(given.as_bytes().ct_eq(sub.client_state.as_bytes()));
        Ok(ok.then_some(sub.account_id).flatten())
    }
}

/// `chats('19:…')/messages('…')` → the chat id.
fn chat_of_resource(resource: &str) -> Option<String> {
    let start = resource.find("chats('")? + "chats('".len();
    let end = resource[start..].find('\'')? + start;
    Some(resource[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn chat_id_from_resource() {
        assert_eq!(
            super::chat_of_resource("chats('19:abc@unq.gbl.spaces')/messages('1612289765949')"),
            Some("19:abc@unq.gbl.spaces".into())
        );
        assert_eq!(super::chat_of_resource("users/x"), None);
    }
}
