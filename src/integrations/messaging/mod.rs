//! Teams chat ⇄ Genesys Cloud Open Messaging: B2B customers write to a support account in
//! Teams; each message becomes an Open Messaging inbound message routed to an agent, and the
//! agent's reply is posted back into the same Teams chat as the support account.
//!
//! ```text
//! Graph rich notification ─> notify (check, decrypt) ─┐
//!                                                     ├─> queue "messaging" ─> hops ─┬─> Genesys inbound message / receipt
//! Genesys outbound webhook ─> webhook (signature) ────┘   key: chat / recipient      └─> POST /chats/{id}/messages
//!                                                         dedupe: message id
//! ```
//!
//! Every hop goes through the shared durable queue (`queue = "messaging"`): the key is the
//! Teams chat (inbound) or the Genesys recipient (outbound), so a conversation's hops run in
//! order; the dedupe id is the message id, so a message delivered twice (Graph retries,
//! Genesys retries) is carried once; a `429` from either side is retried after its
//! `Retry-After`; a restart resumes what was queued. Parts: [`config`], [`wire`] (both sides'
//! shapes and the queued [`wire::Hop`]), [`text`], [`files`] (signed attachment links),
//! [`genesys`] and [`teams`] (the calls), [`notify`] (the chat-message webhook),
//! [`webhook`] (Genesys' outbound webhook), [`subscriptions`] (chat-message subscriptions
//! per support account) and [`hops`] (carrying one hop out).
//!
//! Typing: Open Messaging sends typing events, but Graph has no API to show (or read) typing
//! in a chat, so agent typing is dropped (counted) and customer typing is never seen.

pub mod config;
pub mod files;
pub mod genesys;
pub mod hops;
pub mod notify;
pub mod subscriptions;
pub mod teams;
pub mod text;
pub mod webhook;
pub mod wire;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::integrations::messaging::config::MessagingConfig;
use crate::integrations::messaging::files::FileHost;
use crate::integrations::messaging::genesys::OpenMessagingApi;
use crate::integrations::messaging::teams::TeamsChats;
use crate::integrations::messaging::wire::{Hop, Party};
use crate::model::clock::Clock;
use crate::store::{NewJob, Store, StoreError};
use crate::telemetry::Metrics;

/// The queue every hop of the bridge goes through.
pub const QUEUE: &str = "messaging";

/// Where a Genesys recipient's messages go in Teams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadTarget {
    pub chat_id: String,
    pub account_id: String,
}

/// The Open Messaging identity a Teams chat currently speaks as.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ThreadState {
    from: Party,
    last_at: DateTime<Utc>,
}

/// The bridge: what every hop needs. Cheap to share behind an `Arc`.
pub struct Bridge {
    pub(crate) cfg: MessagingConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) teams: TeamsChats,
    pub(crate) genesys: OpenMessagingApi,
    pub(crate) files: FileHost,
    pub(crate) metrics: Metrics,
    pub(crate) clock: Clock,
    wake: OnceLock<Arc<Notify>>,
}

impl Bridge {
    pub fn new(
        cfg: MessagingConfig,
        store: Arc<dyn Store>,
        teams: TeamsChats,
        genesys: OpenMessagingApi,
        files: FileHost,
        metrics: Metrics,
        clock: Clock,
    ) -> Self {
        Self {
            cfg,
            store,
            teams,
            genesys,
            files,
            metrics,
            clock,
            wake: OnceLock::new(),
        }
    }

    /// The queue runner's waker: pushes wake it at once instead of at its next poll.
    pub fn set_waker(&self, wake: Arc<Notify>) {
        let _ = self.wake.set(wake);
    }

    pub fn files(&self) -> &FileHost {
        &self.files
    }

    pub fn config(&self) -> &MessagingConfig {
        &self.cfg
    }

    /// Queues hops durably; returns how many were new (the rest were duplicates).
    pub async fn enqueue(&self, hops: Vec<(String, String, Hop)>) -> Result<u64, StoreError> {
        enqueue(self.store.as_ref(), self.wake.get(), &self.clock, hops).await
    }

    pub(crate) fn count(&self, name: &'static str, what: &'static str) {
        self.metrics
            .counter(name, &[("what", what.to_owned())])
            .increment(1);
    }

    /// The identity a message of `chat_id` from `sender` speaks as: the chat's current one
    /// when its last message is within `thread_window_secs`, else a new one (a new Genesys
    /// conversation). Remembers where replies to that identity go.
    pub(crate) async fn thread(
        &self,
        chat_id: &str,
        account_id: &str,
        sender: Party,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<Party, StoreError> {
        let key = format!("messaging:thread:{chat_id}");
        let window = chrono::Duration::seconds(self.cfg.thread_window_secs as i64);
        let current = self
            .store
            .get_kv(&key)
            .await?
            .and_then(|v| serde_json::from_str::<ThreadState>(&v).ok())
            .filter(|t| now - t.last_at <= window);
        let from = match current {
            Some(t) => t.from,
            None => {
                let mut suffix = [0u8; 6];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut suffix);
                let id = format!("teams:{tenant}:{}:{}", sender.id, hex::encode(suffix));
                let target = ThreadTarget {
                    chat_id: chat_id.to_owned(),
                    account_id: account_id.to_owned(),
                };
                self.store
                    .put_kv(
                        &format!("messaging:party:{id}"),
                        &serde_json::to_string(&target).expect("serializable"),
                    )
                    .await?;
                self.count("messaging_threads_total", "started");
                Party { id, ..sender }
            }
        };
        let state = ThreadState {
            from: from.clone(),
            last_at: now,
        };
        self.store
            .put_kv(&key, &serde_json::to_string(&state).expect("serializable"))
            .await?;
        Ok(from)
    }

    /// Where replies to the Open Messaging identity `party_id` go.
    pub(crate) async fn target(&self, party_id: &str) -> Result<Option<ThreadTarget>, StoreError> {
        Ok(self
            .store
            .get_kv(&format!("messaging:party:{party_id}"))
            .await?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }
}

/// Pushes hops `(key, dedupe id, hop)` onto the queue and wakes the runner.
pub async fn enqueue(
    store: &dyn Store,
    wake: Option<&Arc<Notify>>,
    clock: &Clock,
    hops: Vec<(String, String, Hop)>,
) -> Result<u64, StoreError> {
    if hops.is_empty() {
        return Ok(0);
    }
    let now = clock.now();
    let jobs: Vec<NewJob> = hops
        .into_iter()
        .map(|(key, dedupe, hop)| NewJob {
            queue: QUEUE.to_owned(),
            key,
            dedupe: Some(dedupe),
            payload: serde_json::to_value(&hop).expect("serializable"),
            not_before: now,
        })
        .collect();
    let new = store.queue_push(&jobs).await?;
    if let Some(w) = wake {
        w.notify_one();
    }
    Ok(new)
}
