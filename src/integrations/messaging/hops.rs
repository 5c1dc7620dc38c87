//! Carrying out one queued hop: Teams message → Open Messaging inbound message, agent
//! message → Teams chat (then a receipt), receipt → Genesys. Returns what the queue should do:
//! done, again after `Retry-After`, or again with backoff.
//!
//! Loop guard: a Teams message from the support account itself (our own posted reply, seen
//! again through the subscription) is dropped by its sender id and, should Graph name the
//! sender differently, by the remembered ids of the messages we posted.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::graph::GraphError;
use crate::integrations::messaging::Bridge;
use crate::integrations::messaging::teams::DownloadError;
use crate::integrations::messaging::text::{hosted_images, inbound_text, text_to_html};
use crate::integrations::messaging::wire::{
    Attachment, ChatMessage, Content, Hop, InboundChannel, InboundMessage, NormalizedMessage,
    Party, Reason, Receipt, ReceiptChannel, ReceiptStatus,
};
use crate::model::contact_center::ConnectorError;
use crate::store::StoreError;

/// What the queue does with a hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopOutcome {
    Done,
    /// Throttled: again after this long.
    RetryAfter(Duration),
    /// Failed for now: again with backoff.
    Failed(String),
}

/// Wait when a `429` carries no `Retry-After`.
const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(5);

impl From<StoreError> for HopOutcome {
    fn from(e: StoreError) -> Self {
        HopOutcome::Failed(format!("store: {e}"))
    }
}

fn own_key(teams_message_id: &str) -> String {
    format!("messaging:own:{teams_message_id}")
}

fn sent_key(genesys_message_id: &str) -> String {
    format!("messaging:sent:{genesys_message_id}")
}

impl Bridge {
    /// Carries out the hop in a queued payload.
    pub async fn handle(&self, payload: &serde_json::Value) -> HopOutcome {
        let hop: Hop = match serde_json::from_value(payload.clone()) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "unreadable messaging hop dropped");
                self.count("messaging_hops_total", "unreadable");
                return HopOutcome::Done;
            }
        };
        match &hop {
            Hop::Inbound {
                account_id,
                message,
            } => self.inbound(account_id, message).await,
            Hop::Outbound { message } => self.outbound(message).await,
            Hop::Receipt { receipt } => match self.genesys.send_receipt(receipt).await {
                Ok(()) => {
                    self.count("messaging_hops_total", "receipt");
                    HopOutcome::Done
                }
                Err(e) => self.genesys_failure(e, "receipt"),
            },
        }
    }

    fn genesys_failure(&self, e: ConnectorError, what: &'static str) -> HopOutcome {
        match e {
            ConnectorError::Throttled { retry_after } => {
                self.count("messaging_throttled_total", "genesys");
                HopOutcome::RetryAfter(retry_after.unwrap_or(DEFAULT_THROTTLE_WAIT))
            }
            ConnectorError::Transport(m) | ConnectorError::Unauthorized(m) => {
                HopOutcome::Failed(format!("genesys {what}: {m}"))
            }
            other => {
                // Refused as it is: retrying cannot help; say so once and move on.
                tracing::error!(error = %other, what, "Genesys refused a messaging hop; dropped");
                self.count("messaging_hops_total", "refused_by_genesys");
                HopOutcome::Done
            }
        }
    }

    async fn inbound(&self, account_id: &str, msg: &ChatMessage) -> HopOutcome {
        if msg.message_type.as_deref().is_some_and(|t| t != "message")
            || msg.deleted_date_time.is_some()
        {
            self.count("messaging_hops_total", "not_a_message");
            return HopOutcome::Done;
        }
        let account = match self.store.get_account(account_id).await {
            Ok(a) => a,
            Err(StoreError::NotFound) => {
                self.count("messaging_hops_total", "account_gone");
                return HopOutcome::Done;
            }
            Err(e) => return e.into(),
        };
        let Some(sender) = msg.from.as_ref().and_then(|f| f.user.clone()) else {
            // Bots and apps: nobody to answer.
            self.count("messaging_hops_total", "no_user_sender");
            return HopOutcome::Done;
        };
        if account.user_object_id.as_deref() == Some(sender.id.as_str()) {
            self.count("messaging_loop_guard_total", "sender");
            return HopOutcome::Done;
        }
        match self.store.get_kv(&own_key(&msg.id)).await {
            Ok(Some(_)) => {
                self.count("messaging_loop_guard_total", "own_message_id");
                return HopOutcome::Done;
            }
            Ok(None) => {}
            Err(e) => return e.into(),
        }
        let Some(chat_id) = msg.chat_id.clone() else {
            self.count("messaging_hops_total", "no_chat_id");
            return HopOutcome::Done;
        };
        let now = self.clock.now();
        let upn = self.store.get_user(&sender.id).await.ok().map(|u| u.upn);
        let display = sender.display_name.clone().unwrap_or_default();
        let (first, last) = match display.split_once(' ') {
            Some((f, l)) => (f.to_owned(), l.to_owned()),
            None => (display.clone(), String::new()),
        };
        let tenant = sender.tenant_id.clone().unwrap_or_default();
        let party = Party {
            id: sender.id.clone(),
            id_type: Some("Opaque".into()),
            first_name: (!first.is_empty()).then_some(first),
            last_name: (!last.is_empty()).then_some(last),
            nickname: upn.clone(),
        };
        let from = match self.thread(&chat_id, account_id, party, &tenant, now).await {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        let mut text = inbound_text(msg, self.cfg.reply_policy);
        let content = match self.rehost_inbound(account_id, msg, now, &mut text).await {
            Ok(c) => c,
            Err(out) => return out,
        };
        let body = InboundMessage {
            channel: InboundChannel {
                message_id: msg.id.clone(),
                from,
                time: msg.created_date_time.unwrap_or(now),
                metadata: Some(serde_json::json!({"customAttributes": {
                    "teamsUserId": sender.id,
                    "teamsUserPrincipalName": upn.unwrap_or_default(),
                    "teamsTenantId": tenant,
                    "teamsChatId": chat_id,
                    "teamsMessageId": msg.id,
                }})),
            },
            kind: "Text".into(),
            text,
            content,
            direction: "Inbound".into(),
        };
        match self.genesys.send_message(&body).await {
            Ok(()) => {
                self.count("messaging_hops_total", "inbound");
                HopOutcome::Done
            }
            Err(e) => self.genesys_failure(e, "inbound message"),
        }
    }

    /// Downloads the message's images and shared files and re-hosts them; what cannot be
    /// carried (too large, refused) becomes a notice at the end of `text`.
    async fn rehost_inbound(
        &self,
        account_id: &str,
        msg: &ChatMessage,
        now: DateTime<Utc>,
        text: &mut String,
    ) -> Result<Vec<Content>, HopOutcome> {
        let max = self.cfg.max_attachment_bytes;
        let mut wanted: Vec<(String, String, bool)> = hosted_images(&msg.body.content)
            .into_iter()
            .enumerate()
            .map(|(i, src)| (src, format!("image-{}", i + 1), true))
            .collect();
        for a in &msg.attachments {
            if a.content_type.as_deref() == Some("reference")
                && let Some(url) = &a.content_url
            {
                let name = a.name.clone().unwrap_or_else(|| "file".into());
                wanted.push((url.clone(), name, false));
            }
        }
        let mut content = Vec::new();
        for (i, (url, name, hosted)) in wanted.into_iter().enumerate() {
            let got = if hosted {
                self.teams.download_hosted(account_id, &url, max).await
            } else {
                self.teams.download_shared(account_id, &url, max).await
            };
            match got {
                Ok(d) => {
                    let mime = d
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into());
                    let origin = format!("in:{}:{i}", msg.id);
                    let link = self
                        .files
                        .put(&origin, &name, &mime, &d.bytes, now)
                        .await
                        .map_err(|e| HopOutcome::Failed(e.to_string()))?;
                    self.count("messaging_attachments_total", "rehosted");
                    content.push(Content {
                        content_type: "Attachment".into(),
                        attachment: Some(Attachment {
                            media_type: Some(if mime.starts_with("image/") {
                                "Image".into()
                            } else {
                                "File".into()
                            }),
                            url: link,
                            mime: Some(mime),
                            filename: Some(name),
                        }),
                    });
                }
                Err(DownloadError::TooLarge { bytes }) => {
                    self.count("messaging_attachments_total", "too_large");
                    text.push_str(&format!(
                        "\n\n[Attachment \"{name}\" was not forwarded: it is {} or larger, above the {} limit.]",
                        human(bytes),
                        human(max)
                    ));
                }
                Err(DownloadError::Throttled(ra)) => {
                    self.count("messaging_throttled_total", "graph");
                    return Err(HopOutcome::RetryAfter(ra.unwrap_or(DEFAULT_THROTTLE_WAIT)));
                }
                Err(DownloadError::Transient(m)) => {
                    return Err(HopOutcome::Failed(format!("attachment download: {m}")));
                }
                Err(DownloadError::Refused(m)) => {
                    self.count("messaging_attachments_total", "unavailable");
                    tracing::warn!(reason = %m, "attachment not forwarded");
                    text.push_str(&format!(
                        "\n\n[Attachment \"{name}\" could not be fetched from Teams and was not forwarded.]"
                    ));
                }
            }
        }
        Ok(content)
    }

    async fn outbound(&self, msg: &NormalizedMessage) -> HopOutcome {
        if msg.kind != "Text" {
            // Typing and other events: Graph cannot show them in a chat.
            self.count("messaging_hops_total", "event_not_forwarded");
            return HopOutcome::Done;
        }
        let to = &msg.channel.to;
        let target = match self.target(&to.id).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.count("messaging_hops_total", "unknown_recipient");
                return self
                    .receipt(
                        msg,
                        ReceiptStatus::Failed,
                        Some("no Teams chat for this recipient"),
                    )
                    .await;
            }
            Err(e) => return e.into(),
        };
        match self.store.get_kv(&sent_key(&msg.id)).await {
            Ok(Some(_)) => return self.receipt(msg, ReceiptStatus::Delivered, None).await,
            Ok(None) => {}
            Err(e) => return e.into(),
        }
        let now = self.clock.now();
        let mut html = text_to_html(msg.text.as_deref().unwrap_or(""));
        let max = self.cfg.max_attachment_bytes;
        for (i, c) in msg.content.iter().enumerate() {
            let Some(a) = &c.attachment else { continue };
            let name = a.filename.clone().unwrap_or_else(|| "attachment".into());
            let line = match self.teams.download_public(&a.url, max).await {
                Ok(d) => {
                    let mime = a
                        .mime
                        .clone()
                        .or(d.content_type)
                        .unwrap_or_else(|| "application/octet-stream".into());
                    let origin = format!("out:{}:{i}", msg.id);
                    match self.files.put(&origin, &name, &mime, &d.bytes, now).await {
                        Ok(link) => format!(
                            "<a href=\"{}\">{}</a>",
                            text_to_html(&link),
                            text_to_html(&name)
                        ),
                        Err(e) => return HopOutcome::Failed(e.to_string()),
                    }
                }
                Err(DownloadError::TooLarge { bytes }) => format!(
                    "[{} was not forwarded: {} or larger, above the {} limit]",
                    text_to_html(&name),
                    human(bytes),
                    human(max)
                ),
                Err(DownloadError::Throttled(ra)) => {
                    return HopOutcome::RetryAfter(ra.unwrap_or(DEFAULT_THROTTLE_WAIT));
                }
                Err(DownloadError::Transient(m)) => return HopOutcome::Failed(m),
                Err(DownloadError::Refused(_)) => {
                    format!("[{} could not be fetched]", text_to_html(&name))
                }
            };
            html.push_str("<br>");
            html.push_str(&line);
        }
        match self
            .teams
            .post_message(&target.account_id, &target.chat_id, &html)
            .await
        {
            Ok(id) => {
                // Remembered before anything else: the notification of this message may
                // already be on its way.
                if let Err(e) = self.store.put_kv(&own_key(&id), &now.to_rfc3339()).await {
                    tracing::error!(error = %e, "own message id not remembered");
                }
                if let Err(e) = self.store.put_kv(&sent_key(&msg.id), &id).await {
                    tracing::error!(error = %e, "sent message not remembered");
                }
                self.count("messaging_hops_total", "outbound");
                self.receipt(msg, ReceiptStatus::Delivered, None).await
            }
            Err(GraphError::Throttled { retry_after }) => {
                self.count("messaging_throttled_total", "graph");
                HopOutcome::RetryAfter(retry_after.unwrap_or(DEFAULT_THROTTLE_WAIT))
            }
            Err(e) if e.is_transient() => HopOutcome::Failed(format!("graph: {e}")),
            Err(e) => {
                tracing::error!(error = %e, "agent message could not be posted to Teams");
                self.count("messaging_hops_total", "refused_by_graph");
                self.receipt(
                    msg,
                    ReceiptStatus::Failed,
                    Some("Teams refused the message"),
                )
                .await
            }
        }
    }

    /// Queues the receipt for an agent message (when receipts are on).
    async fn receipt(
        &self,
        msg: &NormalizedMessage,
        status: ReceiptStatus,
        reason: Option<&str>,
    ) -> HopOutcome {
        let receipts = self.cfg.genesys.as_ref().is_some_and(|g| g.receipts);
        if !receipts {
            return HopOutcome::Done;
        }
        let receipt = Receipt {
            id: msg.id.clone(),
            channel: ReceiptChannel {
                to: msg.channel.to.clone(),
                time: self.clock.now(),
            },
            status,
            direction: "Outbound".into(),
            is_final_receipt: true,
            reasons: reason
                .map(|m| {
                    vec![Reason {
                        code: "GeneralError".into(),
                        message: m.into(),
                    }]
                })
                .unwrap_or_default(),
        };
        let key = format!("genesys:{}", msg.channel.to.id);
        match self
            .enqueue(vec![(
                key,
                format!("receipt:{}", msg.id),
                Hop::Receipt { receipt },
            )])
            .await
        {
            Ok(_) => HopOutcome::Done,
            Err(e) => e.into(),
        }
    }
}

/// `12.0 MB`-style sizes for notices.
fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}
